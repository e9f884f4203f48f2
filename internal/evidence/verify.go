package evidence

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// Reader is what VerifyStored reads from the index (sqlite.Store).
type Reader interface {
	Streams(ctx context.Context) ([]store.Stream, error)
	Segments(ctx context.Context, streamID int64, from, to time.Time) ([]store.Segment, error)
	ChainEntries(ctx context.Context, streamID, afterSeq int64, limit int) ([]integrity.Entry, []*integrity.Head, error)
	ChainSegment(ctx context.Context, streamID int64, key string) (integrity.Entry, *integrity.Head, error)
}

// StoredReport is what VerifyStored found.
type StoredReport struct {
	Streams, Entries, Segments int
	// HashedBytes is how much segment data was read and hashed.
	HashedBytes int64
	// Unchained counts closed segments without a chain entry (recorded
	// before chains existed, or whose close was cut short by a crash).
	Unchained int
	// Problems name each stream whose chain is broken and each segment
	// whose bytes differ from what was recorded.
	Problems []string
}

// VerifyStored checks every stream's chain in the index (links, hashes,
// the newest head's signature with pub) and, when hashFiles, re-hashes
// every closed segment file and compares it with its chain entry. Files
// on disks missing from disks are skipped. It reads every segment when
// hashFiles (I/O-bound: about the disk's read rate) and blocks; progress,
// when set, is called after each segment.
func VerifyStored(ctx context.Context, idx Reader, disks map[string]blob.Store, pub ed25519.PublicKey, hashFiles bool, progress func(StoredReport)) (StoredReport, error) {
	var rep StoredReport
	streams, err := idx.Streams(ctx)
	if err != nil {
		return rep, err
	}
	for _, st := range streams {
		rep.Streams++
		if err := verifyChain(ctx, idx, st, pub, &rep); err != nil {
			return rep, err
		}
		segs, err := idx.Segments(ctx, st.ID, time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			return rep, err
		}
		for _, sg := range segs {
			if sg.State != store.SegmentClosed {
				continue
			}
			rep.Segments++
			e, _, err := idx.ChainSegment(ctx, st.ID, sg.Key)
			if errors.Is(err, store.ErrNotFound) {
				rep.Unchained++
				continue
			}
			if err != nil {
				return rep, err
			}
			if e.Bytes != sg.Bytes || e.Frames != sg.Frames {
				rep.Problems = append(rep.Problems, fmt.Sprintf("segment %s: the index says %d bytes, %d frames; its chain entry %d says %d bytes, %d frames (index altered)",
					sg.Key, sg.Bytes, sg.Frames, e.Seq, e.Bytes, e.Frames))
				continue
			}
			if hashFiles {
				if p := hashFile(ctx, disks[sg.Disk], sg, e); p != "" {
					rep.Problems = append(rep.Problems, p)
				}
				rep.HashedBytes += sg.Bytes
			}
			if progress != nil {
				progress(rep)
			}
		}
	}
	return rep, nil
}

// verifyChain walks a stream's chain page by page.
func verifyChain(ctx context.Context, idx Reader, st store.Stream, pub ed25519.PublicKey, rep *StoredReport) error {
	var last *integrity.Entry
	var head *integrity.Head
	for after := int64(0); ; {
		es, hs, err := idx.ChainEntries(ctx, st.ID, after, 1000)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		run := es
		if last != nil {
			run = append([]integrity.Entry{*last}, es...)
		} else if es[0].Seq != 1 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s starts at entry %d, not 1 (entries removed)", st.Camera, st.Name, es[0].Seq))
			return nil
		}
		if err := integrity.VerifyChain(run); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s: %v", st.Camera, st.Name, err))
			return nil
		}
		for i := range es {
			if es[i].Camera != st.Camera || es[i].Stream != st.Name {
				rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s: entry %d names %s/%s (altered)", st.Camera, st.Name, es[i].Seq, es[i].Camera, es[i].Stream))
				return nil
			}
			if hs[i] != nil {
				head = hs[i]
			}
		}
		rep.Entries += len(es)
		last = &es[len(es)-1]
		after = last.Seq
	}
	if head == nil {
		return nil
	}
	if err := integrity.VerifyHead(pub, head); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s: the head signed at entry %d does not verify with this node's key (%v)", st.Camera, st.Name, head.Seq, err))
	}
	return nil
}

// hashFile re-hashes one segment file against its chain entry and
// returns the problem, or "".
func hashFile(ctx context.Context, d blob.Store, sg store.Segment, e integrity.Entry) string {
	if d == nil {
		return ""
	}
	r, err := d.Open(ctx, sg.Key)
	if err != nil {
		return fmt.Sprintf("segment %s: cannot read it to check its hash: %v", sg.Key, err)
	}
	defer r.Close()
	if r.Size() != sg.Bytes {
		return fmt.Sprintf("segment %s: the file has %d bytes, %d were recorded (chain entry %d)", sg.Key, r.Size(), sg.Bytes, e.Seq)
	}
	segHash, initHash, _, err := integrity.HashSegment(io.NewSectionReader(r, 0, sg.Bytes), sg.Bytes)
	switch {
	case err != nil:
		return fmt.Sprintf("segment %s: its bytes changed since recording: %v (chain entry %d)", sg.Key, err, e.Seq)
	case initHash != e.InitHash:
		return fmt.Sprintf("segment %s: its header (ftyp/moov) changed since recording (chain entry %d)", sg.Key, e.Seq)
	case segHash != e.SegmentHash:
		return fmt.Sprintf("segment %s: its video bytes changed since recording (chain entry %d)", sg.Key, e.Seq)
	}
	return ""
}
