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

// StoredOptions says what VerifyStored compares the index with.
type StoredOptions struct {
	// Key is the node's public key (nil: signatures are not checked).
	Key ed25519.PublicKey
	// HashFiles re-reads and re-hashes every closed segment file.
	HashFiles bool
	// Checkpoint is the newest signed checkpoint (its signature already
	// checked), or nil: every stream's chain must reach the entry it names.
	Checkpoint *integrity.Checkpoint
	// Journal is chains.log as ReadJournal returns it, or nil: the index
	// must hold every entry it holds.
	Journal map[string][]JournalEntry
	// Progress, when set, is called after each segment.
	Progress func(StoredReport)
}

// VerifyStored checks every stream's chain in the index (links, hashes,
// the newest head's signature with opts.Key), walks it to check that every
// segment it lists and does not record as deleted still has its index row,
// compares its end with the signed checkpoint and the journal (so that the
// newest entries cannot be removed unnoticed), and, when opts.HashFiles,
// re-hashes every closed segment file and compares it with its chain
// entry. Files on disks missing from disks are skipped. It reads every
// segment when hashing (I/O-bound: about the disk's read rate) and blocks.
func VerifyStored(ctx context.Context, idx Reader, disks map[string]blob.Store, opts StoredOptions) (StoredReport, error) {
	var rep StoredReport
	streams, err := idx.Streams(ctx)
	if err != nil {
		return rep, err
	}
	seen := map[string]bool{}
	for _, st := range streams {
		rep.Streams++
		seen[st.Camera+"/"+st.Name] = true
		w := &chainWalk{live: map[string]integrity.Entry{}, at: map[int64][32]byte{}}
		if opts.Checkpoint != nil {
			if h, ok := opts.Checkpoint.Stream(st.Camera, st.Name); ok {
				w.at[h.Seq] = [32]byte{}
			}
		}
		var jl []JournalEntry
		if opts.Journal != nil {
			jl = opts.Journal[st.Camera+"/"+st.Name]
			if len(jl) > 0 {
				w.at[jl[len(jl)-1].Entry.Seq] = [32]byte{}
			}
		}
		// The rows before the chain: beside a running server, a segment
		// deleted in between then shows its deletion entry, and one
		// recorded in between has its row already (rows come first).
		segs, err := idx.Segments(ctx, st.ID, time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			return rep, err
		}
		if err := verifyChain(ctx, idx, st, opts.Key, &rep, w); err != nil {
			return rep, err
		}
		compareTail(st, w, opts.Checkpoint, jl, &rep)
		rows := make(map[string]bool, len(segs))
		for _, sg := range segs {
			rows[sg.Key] = true
		}
		if w.ok {
			missingRows(st, w.live, rows, &rep)
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
			if opts.HashFiles {
				if p := hashFile(ctx, disks[sg.Disk], sg, e); p != "" {
					rep.Problems = append(rep.Problems, p)
				}
				rep.HashedBytes += sg.Bytes
			}
			if opts.Progress != nil {
				opts.Progress(rep)
			}
		}
	}
	if opts.Checkpoint != nil {
		for _, h := range opts.Checkpoint.Streams {
			if !seen[h.Camera+"/"+h.Stream] {
				rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s: the checkpoint signed at %s names its entry %d, but the index has no such stream (removed with its chain)",
					h.Camera, h.Stream, opts.Checkpoint.SignedAt.Format(time.RFC3339), h.Seq))
			}
		}
	}
	return rep, nil
}

// chainWalk is what verifyChain gathers for the later comparisons.
type chainWalk struct {
	ok   bool                       // the chain verified (links and hashes)
	last *integrity.Entry           // its last entry (nil: empty)
	live map[string]integrity.Entry // segment entries not followed by a deletion of the same key
	at   map[int64][32]byte         // seqs asked for → their hashes (zero when absent)
}

// verifyChain walks a stream's chain page by page.
func verifyChain(ctx context.Context, idx Reader, st store.Stream, pub ed25519.PublicKey, rep *StoredReport, w *chainWalk) error {
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
			switch es[i].Kind {
			case integrity.KindSegment:
				w.live[es[i].Key] = es[i]
			case integrity.KindDeletion:
				delete(w.live, es[i].Key)
			}
			if _, ok := w.at[es[i].Seq]; ok {
				w.at[es[i].Seq] = es[i].Hash
			}
		}
		rep.Entries += len(es)
		last = &es[len(es)-1]
		after = last.Seq
	}
	w.ok, w.last = true, last
	if head == nil || pub == nil {
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
