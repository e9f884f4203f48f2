package check

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/store"
)

// RepairReport says what Rebuild did.
type RepairReport struct {
	Segments int       `json:"segments"`
	Runs     int       `json:"runs"`
	Skipped  []Problem `json:"skipped"`
	// Matched counts segments whose file hashes to its entry in the
	// chain journal (their wall duration is then the recorded one).
	Matched int `json:"matched"`
	// Unmatched says, per segment, why it has no trusted chain entry.
	Unmatched []Problem `json:"unmatched"`
}

// RebuildOptions gives Rebuild the chain journal (chains.log, read by
// evidence.ReadJournal; nil when there is none) and the node's public
// key that its heads must verify with.
type RebuildOptions struct {
	Journal map[string][]evidence.JournalEntry
	Key     ed25519.PublicKey
}

type found struct {
	disk string
	key  string
	meta recorder.SegmentMeta
	info *mp4.FileInfo
}

// Rebuild fills an empty index from the segment files on disks: each file
// names its camera, stream, run and start in its metadata box, and its
// fragments give frames and duration. Torn tails are truncated as at
// recovery. Files without Custos metadata, or that do not parse, are
// listed as skipped and left untouched. Segments of one run that abut in
// media time get wall durations that abut too (the exact clock correction
// is not stored in files); others get their media duration. The deletion
// log, which lives only in the index, cannot be rebuilt.
//
// With a chain journal, each file whose segment hash, init hash, length
// and frame count equal its journal entry gets that entry's exact wall
// duration; every other file is listed in Unmatched with the reason.
func Rebuild(ctx context.Context, idx store.Store, disks map[string]blob.Store, opts RebuildOptions) (*RepairReport, error) {
	rep := &RepairReport{Skipped: []Problem{}, Unmatched: []Problem{}}
	trusted, _ := trustedJournal(opts.Journal, opts.Key)
	recorded := journalSegments(trusted)
	var files []found
	for name, d := range disks {
		for obj, err := range d.List(ctx, "") {
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", name, err)
			}
			f, why := readSegmentFile(ctx, d, obj)
			if why != "" {
				rep.Skipped = append(rep.Skipped, Problem{Disk: name, Key: obj.Key, What: why})
				continue
			}
			f.disk = name
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].meta.StartNs < files[j].meta.StartNs })

	type runKey struct {
		camera, stream string
		run            int64
		runStart       int64
	}
	runs := map[runKey]store.Run{}
	runEnd := map[runKey]time.Time{}
	var order []runKey
	for i := range files {
		f := &files[i]
		st, err := idx.Stream(ctx, f.meta.Camera, f.meta.Stream)
		if err != nil {
			return nil, fmt.Errorf("stream %s/%s: %w", f.meta.Camera, f.meta.Stream, err)
		}
		rk := runKey{f.meta.Camera, f.meta.Stream, f.meta.Run, f.meta.RunStartNs}
		run, ok := runs[rk]
		if !ok {
			if run, err = idx.StartRun(ctx, st.ID, time.Unix(0, f.meta.RunStartNs)); err != nil {
				return nil, fmt.Errorf("start run: %w", err)
			}
			runs[rk] = run
			order = append(order, rk)
		}
		var frames, keys, dur int64
		for _, fr := range f.info.Fragments {
			frames += int64(fr.Samples)
			keys += int64(fr.KeyFrames)
			dur += int64(fr.Dur90k)
		}
		seg := store.Segment{StreamID: st.ID, RunID: run.ID, Disk: f.disk, Key: f.key,
			Start: time.Unix(0, f.meta.StartNs), Dur90k: dur, StartPTS90k: f.meta.StartPTS90k,
			Bytes: f.info.ValidEnd, Frames: frames, KeyFrames: keys, State: store.SegmentClosed,
			Codec: mp4.CodecString(f.info.Track), Width: f.info.Track.Width, Height: f.info.Track.Height}
		seg.WallDur = time.Duration(dur) * time.Second / 90000
		// The next segment of the same run, if it abuts in media time,
		// fixes this one's wall end.
		for j := i + 1; j < len(files); j++ {
			n := &files[j]
			if n.meta.Camera == f.meta.Camera && n.meta.Stream == f.meta.Stream && n.meta.Run == f.meta.Run && n.meta.RunStartNs == f.meta.RunStartNs {
				if n.meta.StartPTS90k == f.meta.StartPTS90k+dur {
					seg.WallDur = time.Duration(n.meta.StartNs - f.meta.StartNs)
				}
				break
			}
		}
		if opts.Journal != nil {
			if e, ok := recorded[f.meta.Camera+"/"+f.meta.Stream+"\x00"+f.key]; !ok {
				rep.Unmatched = append(rep.Unmatched, Problem{Disk: f.disk, Key: f.key, What: "no trusted entry in chains.log (recorded before the journal existed, or after the point where it stops being trustworthy)"})
			} else if why := matchEntry(ctx, disks[f.disk], f, frames, e); why != "" {
				rep.Unmatched = append(rep.Unmatched, Problem{Disk: f.disk, Key: f.key, What: why})
			} else {
				seg.WallDur = time.Duration(e.WallDurNS)
				rep.Matched++
			}
		}
		if err := idx.AddSegment(ctx, &seg); err != nil {
			return nil, fmt.Errorf("index %s: %w", f.key, err)
		}
		if e := seg.End(); e.After(runEnd[rk]) {
			runEnd[rk] = e
		}
		rep.Segments++
	}
	for _, rk := range order {
		run := runs[rk]
		if err := idx.EndRun(ctx, run.ID, runEnd[rk], "rebuilt by custos check --repair"); err != nil {
			return nil, fmt.Errorf("end run: %w", err)
		}
	}
	rep.Runs = len(order)
	return rep, nil
}

// matchEntry compares a file with its journal entry; it returns why they
// differ, or "".
func matchEntry(ctx context.Context, d blob.Store, f *found, frames int64, e integrity.Entry) string {
	if f.info.ValidEnd != e.Bytes || frames != e.Frames {
		return fmt.Sprintf("the file has %d bytes and %d frames, its chain entry %d says %d and %d (cut short or altered)", f.info.ValidEnd, frames, e.Seq, e.Bytes, e.Frames)
	}
	r, err := d.Open(ctx, f.key)
	if err != nil {
		return fmt.Sprintf("unreadable: %v", err)
	}
	defer r.Close()
	segHash, initHash, _, err := integrity.HashSegment(io.NewSectionReader(r, 0, e.Bytes), e.Bytes)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot hash it: %v (chain entry %d)", err, e.Seq)
	case initHash != e.InitHash:
		return fmt.Sprintf("its header (ftyp/moov) does not hash to chain entry %d's init hash (altered)", e.Seq)
	case segHash != e.SegmentHash:
		return fmt.Sprintf("its fragments do not hash to chain entry %d's segment hash (altered)", e.Seq)
	}
	return ""
}

// readSegmentFile scans one file, truncating a torn tail; why is non-empty
// when the file cannot be indexed.
func readSegmentFile(ctx context.Context, d blob.Store, obj blob.Object) (f found, why string) {
	r, err := d.Open(ctx, obj.Key)
	if err != nil {
		return f, fmt.Sprintf("unreadable: %v", err)
	}
	info, err := mp4.ScanFile(r, r.Size())
	var raw []byte
	if err == nil {
		raw, err = mp4.ReadMetadata(r, r.Size())
	}
	r.Close()
	if err != nil {
		return f, fmt.Sprintf("not a segment: %v", err)
	}
	if raw == nil {
		return f, "no Custos metadata in the file: not indexed"
	}
	if err := json.Unmarshal(raw, &f.meta); err != nil || f.meta.Version != 1 || f.meta.Camera == "" || f.meta.Stream == "" {
		return f, fmt.Sprintf("unreadable metadata %q", raw)
	}
	if info.ValidEnd < obj.Size {
		w, err := d.OpenAppend(ctx, obj.Key)
		if err != nil {
			return f, fmt.Sprintf("reopen to truncate: %v", err)
		}
		err = w.Truncate(info.ValidEnd)
		if err == nil {
			err = w.Sync()
		}
		w.Close()
		if err != nil {
			return f, fmt.Sprintf("truncate torn tail: %v", err)
		}
	}
	f.key, f.info = obj.Key, info
	return f, ""
}
