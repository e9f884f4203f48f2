package playback

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// ChainReader is what evidence exports read of the streams' hash chains
// (sqlite.Store).
type ChainReader interface {
	ChainSegment(ctx context.Context, streamID int64, key string) (integrity.Entry, *integrity.Head, error)
	ChainEntries(ctx context.Context, streamID, afterSeq int64, limit int) ([]integrity.Entry, []*integrity.Head, error)
}

// evidenceSeg is one segment of an evidence export.
type evidenceSeg struct {
	row          store.Segment
	x            *segIndex
	entry        integrity.Entry
	head         *integrity.Head
	spans        [][2]int64 // fragments (moof through mdat) in the file
	init         [][2]int64 // ftyp and moov
	hash         [][32]byte // of every fragment
	first, count int
}

// Evidence returns an evidence export of [from, to) of a camera's stream
// (docs/evidence.md): the first segment's ftyp and moov, a manifest box,
// then the recorded fragments byte for byte, from the fragment holding
// the key frame before from to the one holding to. Each segment's bytes
// are re-hashed against its chain entry first, so a file that changed
// since recording is refused (409), as is a segment without a chain
// entry. The export stops at the end of the first run in the range (a
// gap), at a change of the stream's parameters, and before the segment
// still being written: To says where it ends. It reads every segment it
// uses in full and blocks.
func (s *Source) Evidence(ctx context.Context, camera, stream string, from, to time.Time, chains ChainReader, recorderKey ed25519.PublicKey) (*File, error) {
	if err := s.checkRange(from, to); err != nil {
		return nil, err
	}
	st, err := s.Index.Stream(ctx, camera, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s/%s: %w", camera, stream, err)
	}
	rows, err := s.Index.Segments(ctx, st.ID, from, to)
	if err != nil {
		return nil, err
	}
	rng := fmt.Sprintf("%s/%s between %s and %s", camera, stream, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	var segs []*evidenceSeg
	for _, row := range rows {
		if row.State != store.SegmentClosed {
			break // the open segment is not sealed in the chain yet
		}
		if len(segs) > 0 && row.RunID != segs[0].row.RunID {
			break // a gap: decode times restart with the next run
		}
		es, err := s.evidenceSegment(ctx, st.ID, row, chains)
		if err != nil {
			return nil, err
		}
		if len(segs) > 0 && es.entry.InitHash != segs[0].entry.InitHash {
			break // new stream parameters: they need another moov
		}
		segs = append(segs, es)
	}
	if len(segs) == 0 {
		if len(rows) > 0 && rows[0].State != store.SegmentClosed {
			return nil, &Error{Status: 409, Message: fmt.Sprintf("the video of %s is still being written: evidence exports cover closed segments (about a minute behind live)", rng)}
		}
		return nil, noVideo("no recorded video of %s", rng)
	}
	// Fragments: from the one with the key frame at or before from, to
	// the one holding to.
	for i, es := range segs {
		es.first, es.count = 0, len(es.spans)
		if i == 0 {
			lo := 0
			for k := range es.x.frags {
				fr := &es.x.frags[k]
				if toWall(&es.row, fr.base90k).After(from) {
					break
				}
				if es.x.samples[fr.first].key {
					lo = k
				}
			}
			es.first, es.count = lo, len(es.spans)-lo
		}
		if i == len(segs)-1 {
			hi := es.first
			for k := es.first; k < len(es.x.frags); k++ {
				if !toWall(&es.row, es.x.frags[k].base90k).Before(to) {
					break
				}
				hi = k + 1
			}
			es.count = max(hi-es.first, 1)
		}
	}
	last := segs[len(segs)-1]
	if last.head == nil {
		return nil, fmt.Errorf("segment %s: its chain entry %d carries no signed head", last.row.Key, last.entry.Seq)
	}
	m := &integrity.Manifest{Version: 1, Camera: camera, Stream: stream, From: from.UTC(), To: to.UTC(),
		CreatedAt: last.head.SignedAt, RecorderKey: integrity.PublicKeyString(recorderKey), Head: *last.head}
	for _, es := range segs {
		m.Segments = append(m.Segments, integrity.ManifestSegment{ChainSeq: es.entry.Seq, Fragments: es.hash, First: es.first, Count: es.count})
	}
	for after := segs[0].entry.Seq - 1; after < last.entry.Seq; {
		es, _, err := chains.ChainEntries(ctx, st.ID, after, int(min(1000, last.entry.Seq-after)))
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, fmt.Errorf("chain of %s/%s ends before entry %d", camera, stream, last.entry.Seq)
		}
		m.Chain = append(m.Chain, es...)
		after = es[len(es)-1].Seq
	}
	box, err := m.MarshalBox()
	if err != nil {
		return nil, err
	}
	f := &File{ContentType: "video/mp4", disks: s.Disks, ModTime: last.row.Start}
	first := segs[0]
	for _, sp := range first.init {
		f.addRange(first.row.Disk, first.row.Key, sp[0], sp[1]-sp[0])
	}
	f.addMem(box)
	for _, es := range segs {
		for k := es.first; k < es.first+es.count; k++ {
			f.addRange(es.row.Disk, es.row.Key, es.spans[k][0], es.spans[k][1]-es.spans[k][0])
		}
	}
	f.From = toWall(&first.row, first.x.frags[first.first].base90k)
	lf := last.first + last.count - 1
	f.To = toWall(&last.row, last.x.frags[lf].base90k+fragDur(last.x, lf))
	sum := sha256.Sum256(box)
	f.ETag = `"ev-` + hex.EncodeToString(sum[:16]) + `"`
	const layout = "20060102T150405Z"
	f.Name = safeName(fmt.Sprintf("%s-%s-%s-%s-evidence.mp4", camera, stream, f.From.UTC().Format(layout), f.To.UTC().Format(layout)))
	return f, nil
}

// evidenceSegment reads and re-hashes one segment against its chain
// entry.
func (s *Source) evidenceSegment(ctx context.Context, streamID int64, row store.Segment, chains ChainReader) (*evidenceSeg, error) {
	entry, head, err := chains.ChainSegment(ctx, streamID, row.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Status: 409, Message: fmt.Sprintf("segment %s has no hash chain entry (recorded before hash chains, cut short by a crash, or its index rebuilt without a trustworthy chains.log: custos check --repair names the reason): it cannot be exported as evidence", row.Key)}
	}
	if err != nil {
		return nil, err
	}
	x, err := s.Cache.get(ctx, row, s.load)
	if err != nil {
		return nil, err
	}
	d := s.Disks[row.Disk]
	if d == nil {
		return nil, &Error{Status: 503, Message: fmt.Sprintf("segment %s: storage %s is unavailable", row.Key, row.Disk)}
	}
	r, err := d.Open(ctx, row.Key)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", row.Key, err)
	}
	defer r.Close()
	es := &evidenceSeg{row: row, x: x, entry: entry, head: head}
	if es.init, err = integrity.InitSpans(r, row.Bytes); err == nil {
		es.spans, _, err = integrity.FindFragmentsReader(r, row.Bytes)
	}
	if err == nil {
		es.hash, err = integrity.HashSpans(r, es.spans)
	}
	if err != nil {
		return nil, &Error{Status: 409, Message: fmt.Sprintf("segment %s cannot be read as recorded (%v): run custos check", row.Key, err)}
	}
	initHash, err := integrity.InitHash(r, row.Bytes)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", row.Key, err)
	}
	if initHash != entry.InitHash || integrity.SegmentHash(es.hash) != entry.SegmentHash {
		return nil, &Error{Status: 409, Message: fmt.Sprintf("segment %s changed since it was recorded (its hashes do not match chain entry %d): run custos check", row.Key, entry.Seq)}
	}
	if len(es.spans) != len(x.frags) {
		return nil, fmt.Errorf("segment %s: %d fragments in the file, %d in its sample table", row.Key, len(es.spans), len(x.frags))
	}
	return es, nil
}
