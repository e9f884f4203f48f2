package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// Recover finishes what a crash left: every segment still in state
// writing is scanned, complete fragments are kept (and counted into the
// row), torn bytes after the last complete fragment are truncated, and the
// row is closed; half-done deletions are completed. Segments on disks that
// are not available are left for a later start. It blocks and does I/O.
func Recover(ctx context.Context, idx store.Store, disks map[string]blob.Store, log *slog.Logger, chain RecoveryChain) error {
	segs, err := idx.WritingSegments(ctx)
	if err != nil {
		return fmt.Errorf("list unfinished segments: %w", err)
	}
	names := map[int64]store.Stream{}
	if len(segs) > 0 {
		streams, err := idx.Streams(ctx)
		if err != nil {
			return fmt.Errorf("list streams: %w", err)
		}
		for _, st := range streams {
			names[st.ID] = st
		}
	}
	for i := range segs {
		seg := &segs[i]
		d := disks[seg.Disk]
		if d == nil || blob.Check(d) != nil {
			continue
		}
		if err := recoverSegment(ctx, idx, d, seg, names[seg.StreamID], chain); err != nil {
			return err
		}
		log.Info("recovered unfinished segment", "disk", seg.Disk, "key", seg.Key,
			"bytes", seg.Bytes, "frames", seg.Frames, "seconds", float64(seg.Dur90k)/90000)
	}
	garbage, err := idx.GarbageList(ctx)
	if err != nil {
		return fmt.Errorf("list pending deletions: %w", err)
	}
	for _, g := range garbage {
		d := disks[g.Disk]
		if d == nil || blob.Check(d) != nil {
			continue
		}
		if err := d.Delete(ctx, g.Key); err != nil {
			return fmt.Errorf("finish deleting %s on %s: %w", g.Key, g.Disk, err)
		}
		if err := idx.UnmarkGarbage(ctx, g.Disk, g.Key); err != nil {
			return fmt.Errorf("finish deleting %s on %s: %w", g.Key, g.Disk, err)
		}
	}
	return nil
}

// RecoveryChain is what Recover records in the streams' hash chains
// (*evidence.Chains).
type RecoveryChain interface {
	ChainRecorder
	SegmentDeleted(ctx context.Context, camera, stream string, seg store.Segment, reason string, at time.Time) error
}

func recoverSegment(ctx context.Context, idx store.Store, d blob.Store, seg *store.Segment, st store.Stream, chain RecoveryChain) error {
	r, err := d.Open(ctx, seg.Key)
	if errors.Is(err, blob.ErrNotExist) {
		// The row was inserted only after the file's init was synced, so
		// this is an outside deletion; record it instead of hiding it.
		seg.State = store.SegmentClosed
		if err := idx.UpdateSegment(ctx, seg); err != nil {
			return fmt.Errorf("index missing %s: %w", seg.Key, err)
		}
		if chain != nil {
			if err := chain.SegmentDeleted(ctx, st.Camera, st.Name, *seg, "file missing at recovery", time.Now()); err != nil {
				return err
			}
		}
		if err := idx.MarkGarbage(ctx, seg.ID, "file missing at recovery", time.Now()); err != nil {
			return fmt.Errorf("index missing %s: %w", seg.Key, err)
		}
		return idx.UnmarkGarbage(ctx, seg.Disk, seg.Key)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", seg.Key, err)
	}
	info, err := mp4.ScanFile(r, r.Size())
	r.Close()
	if err != nil {
		return fmt.Errorf("scan %s: %w", seg.Key, err)
	}
	if info.ValidEnd < r.Size() {
		w, err := d.OpenAppend(ctx, seg.Key)
		if err != nil {
			return fmt.Errorf("reopen %s: %w", seg.Key, err)
		}
		err = w.Truncate(info.ValidEnd)
		if err == nil {
			err = w.Sync()
		}
		w.Close()
		if err != nil {
			return fmt.Errorf("truncate torn tail of %s: %w", seg.Key, err)
		}
	}
	var dur90k, frames, keys int64
	for _, f := range info.Fragments {
		dur90k += int64(f.Dur90k)
		frames += int64(f.Samples)
		keys += int64(f.KeyFrames)
	}
	seg.Bytes, seg.Frames, seg.KeyFrames, seg.Dur90k = info.ValidEnd, frames, keys, dur90k
	seg.WallDur = time.Duration(dur90k) * time.Second / 90000
	seg.State = store.SegmentClosed
	if err := idx.UpdateSegment(ctx, seg); err != nil {
		return fmt.Errorf("index recovered %s: %w", seg.Key, err)
	}
	if chain == nil {
		return nil
	}
	// The recorder's hashes died with it: hash what was kept.
	r, err = d.Open(ctx, seg.Key)
	if err != nil {
		return fmt.Errorf("open %s: %w", seg.Key, err)
	}
	segHash, initHash, _, err := integrity.HashSegment(io.NewSectionReader(r, 0, seg.Bytes), seg.Bytes)
	r.Close()
	if err != nil {
		return fmt.Errorf("hash recovered %s: %w", seg.Key, err)
	}
	return chain.SegmentClosed(ctx, st.Camera, st.Name, *seg, segHash, initHash)
}
