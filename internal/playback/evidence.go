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

// EvidenceInfo says what an evidence export covers (File.Evidence); the
// same facts are in the file's signed manifest.
type EvidenceInfo struct {
	// Part is this file's place in Parts, from 1.
	Part int
	// Parts are the files the requested range was split into, one per
	// stretch of recording that can be one fragmented MP4 (one run, one
	// set of stream parameters, no hole), each the exact wall time its
	// fragments cover, in time order.
	Parts []integrity.Span
	// Gaps are the stretches of the requested range that no part covers,
	// with their reasons, in time order. Empty when the range is covered.
	Gaps []integrity.Gap
}

// gapTolerance is the largest hole between two segments that is not a
// gap (segments of one run abut exactly; this absorbs rounding).
const gapTolerance = time.Millisecond

// evidenceSeg is one segment of an evidence export.
type evidenceSeg struct {
	row          store.Segment
	entry        integrity.Entry
	head         *integrity.Head
	x            *segIndex
	spans        [][2]int64 // fragments (moof through mdat) in the file
	init         [][2]int64 // ftyp and moov
	hash         [][32]byte // of every fragment
	first, count int
}

// Evidence returns part `part` (from 1) of an evidence export of [from,
// to) of a camera's stream (docs/evidence.md): the first segment's ftyp
// and moov, a manifest box signed with key, then the recorded fragments
// byte for byte.
//
// The range is split into parts, one per stretch of recording that one
// fragmented MP4 can hold unchanged: a new part begins after a gap, at a
// new recording run and at a change of the stream's parameters. The
// first part starts at the fragment with the key frame at or before from,
// the last ends with the fragment holding to. What no part covers is a
// gap with its reason: no recording, the segment still being written
// (not yet sealed in the chain; it is never included), or segments
// without a chain entry. Every part's manifest lists all parts and gaps;
// File.Evidence says the same.
//
// Each segment of the returned part is re-hashed against its chain entry
// first, so a file that changed since recording is refused (409). A range
// with no part is a 409 (only unsealed or unchained video) or 404 (none);
// a part out of range is a 400. It reads every segment of the part in
// full, the sample tables of the other parts' first and last segments,
// and blocks.
func (s *Source) Evidence(ctx context.Context, camera, stream string, from, to time.Time, part int, chains ChainReader, key ed25519.PrivateKey) (*File, error) {
	if err := s.checkRange(from, to); err != nil {
		return nil, err
	}
	st, err := s.Index.Stream(ctx, camera, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s/%s: %w", camera, stream, err)
	}
	rng := fmt.Sprintf("%s/%s between %s and %s", camera, stream, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	parts, gaps, err := s.planEvidence(ctx, st.ID, from, to, chains)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		reasons := map[string]bool{}
		for _, g := range gaps {
			reasons[g.Reason] = true
		}
		switch {
		case reasons[integrity.GapNoChain]:
			return nil, &Error{Status: 409, Message: fmt.Sprintf("the video of %s has no hash chain entry (recorded before hash chains, or cut short by a crash): it cannot be exported as evidence", rng)}
		case reasons[integrity.GapNotSealed]:
			return nil, &Error{Status: 409, Message: fmt.Sprintf("the video of %s is still being written: evidence exports cover closed segments (about a minute behind live)", rng)}
		}
		return nil, noVideo("no recorded video of %s", rng)
	}
	if part < 1 || part > len(parts) {
		return nil, &Error{Status: 400, Message: fmt.Sprintf("part %d: the evidence export of %s has %d part(s)", part, rng, len(parts))}
	}
	// Every part's span, from sample tables only; the chosen part's
	// segments are read and re-hashed.
	spans := make([]integrity.Span, len(parts))
	for i, segs := range parts {
		if i == part-1 {
			for _, es := range segs {
				if err := s.evidenceSegment(ctx, es); err != nil {
					return nil, err
				}
			}
		} else {
			for _, es := range []*evidenceSeg{segs[0], segs[len(segs)-1]} {
				if es.x == nil {
					if es.x, err = s.Cache.get(ctx, es.row, s.load); err != nil {
						return nil, err
					}
				}
			}
		}
		selectFragments(segs, from, to, i == 0, i == len(parts)-1)
		first, last := segs[0], segs[len(segs)-1]
		lf := last.first + last.count - 1
		spans[i] = integrity.Span{From: toWall(&first.row, first.x.frags[first.first].base90k).UTC(),
			To: toWall(&last.row, last.x.frags[lf].base90k+fragDur(last.x, lf)).UTC()}
	}
	segs := parts[part-1]
	first, last := segs[0], segs[len(segs)-1]
	if last.head == nil {
		return nil, fmt.Errorf("segment %s: its chain entry %d carries no signed head", last.row.Key, last.entry.Seq)
	}
	m := &integrity.Manifest{Camera: camera, Stream: stream, From: from.UTC(), To: to.UTC(),
		CreatedAt: last.head.SignedAt, Head: *last.head, Part: part, Parts: spans, Gaps: gaps}
	for _, es := range segs {
		ms := integrity.ManifestSegment{ChainSeq: es.entry.Seq, Fragments: es.hash, First: es.first, Count: es.count}
		for k := es.first; k <= es.first+es.count; k++ {
			var t time.Time
			if k < es.first+es.count {
				t = toWall(&es.row, es.x.frags[k].base90k)
			} else {
				t = toWall(&es.row, es.x.frags[k-1].base90k+fragDur(es.x, k-1))
			}
			d := t.Sub(es.entry.At)
			if d < 0 {
				return nil, fmt.Errorf("segment %s: fragment %d starts before its chain entry %d's start", es.row.Key, k+1, es.entry.Seq)
			}
			ms.StartsNS = append(ms.StartsNS, int64(d))
		}
		m.Segments = append(m.Segments, ms)
	}
	for after := first.entry.Seq - 1; after < m.Head.Seq; {
		es, _, err := chains.ChainEntries(ctx, st.ID, after, int(min(1000, m.Head.Seq-after)))
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, fmt.Errorf("chain of %s/%s ends before entry %d", camera, stream, m.Head.Seq)
		}
		m.Chain = append(m.Chain, es...)
		after = es[len(es)-1].Seq
	}
	if err := m.Sign(key); err != nil {
		return nil, err
	}
	box, err := m.MarshalBox()
	if err != nil {
		return nil, err
	}
	f := &File{ContentType: "video/mp4", disks: s.Disks, ModTime: last.row.Start,
		Evidence: &EvidenceInfo{Part: part, Parts: spans, Gaps: gaps}}
	for _, sp := range first.init {
		f.addRange(first.row.Disk, first.row.Key, sp[0], sp[1]-sp[0])
	}
	f.addMem(box)
	for _, es := range segs {
		for k := es.first; k < es.first+es.count; k++ {
			f.addRange(es.row.Disk, es.row.Key, es.spans[k][0], es.spans[k][1]-es.spans[k][0])
		}
	}
	f.From, f.To = spans[part-1].From, spans[part-1].To
	sum := sha256.Sum256(box)
	f.ETag = `"ev-` + hex.EncodeToString(sum[:16]) + `"`
	const layout = "20060102T150405Z"
	suffix := ""
	if len(parts) > 1 {
		suffix = fmt.Sprintf("-part%dof%d", part, len(parts))
	}
	f.Name = safeName(fmt.Sprintf("%s-%s-%s-%s-evidence%s.mp4", camera, stream, f.From.UTC().Format(layout), f.To.UTC().Format(layout), suffix))
	return f, nil
}

// planEvidence splits [from, to) into parts (runs of consecutive chained
// segments of one recording run and init segment, abutting) and gaps. It
// reads the index and the chain entries, not the files.
func (s *Source) planEvidence(ctx context.Context, streamID int64, from, to time.Time, chains ChainReader) ([][]*evidenceSeg, []integrity.Gap, error) {
	rows, err := s.Index.Segments(ctx, streamID, from, to)
	if err != nil {
		return nil, nil, err
	}
	var parts [][]*evidenceSeg
	var gaps []integrity.Gap
	addGap := func(a, b time.Time, reason string) {
		a, b = maxTime(a, from).UTC(), minTime(b, to).UTC()
		if b.Sub(a) <= gapTolerance {
			return
		}
		if n := len(gaps); n > 0 && gaps[n-1].Reason == reason && !a.After(gaps[n-1].To.Add(gapTolerance)) {
			gaps[n-1].To = maxTime(gaps[n-1].To, b)
			return
		}
		gaps = append(gaps, integrity.Gap{From: a, To: b, Reason: reason})
	}
	cursor := from // the end of what is accounted for
	var cur []*evidenceSeg
	flush := func() {
		if len(cur) > 0 {
			parts = append(parts, cur)
		}
		cur = nil
	}
	for _, row := range rows {
		if row.State != store.SegmentClosed {
			// The segment being written: its hashes are not in the chain
			// until it closes. It is the last; to its end of the range.
			addGap(cursor, row.Start, integrity.GapNoRecording)
			addGap(maxTime(cursor, row.Start), to, integrity.GapNotSealed)
			cursor = maxTime(cursor, to)
			break
		}
		entry, head, err := chains.ChainSegment(ctx, streamID, row.Key)
		if errors.Is(err, store.ErrNotFound) {
			flush()
			addGap(cursor, row.Start, integrity.GapNoRecording)
			addGap(maxTime(cursor, row.Start), row.End(), integrity.GapNoChain)
			cursor = maxTime(cursor, row.End())
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if len(cur) > 0 {
			prev := cur[len(cur)-1]
			if row.RunID != prev.row.RunID || entry.InitHash != prev.entry.InitHash || row.Start.Sub(prev.row.End()) > gapTolerance {
				flush() // decode times restart, a new moov, or a hole
			}
		}
		addGap(cursor, row.Start, integrity.GapNoRecording)
		cur = append(cur, &evidenceSeg{row: row, entry: entry, head: head})
		cursor = maxTime(cursor, row.End())
	}
	flush()
	addGap(cursor, to, integrity.GapNoRecording)
	return parts, gaps, nil
}

// selectFragments sets first and count of a part's segments: all their
// fragments, except that the first part starts at the fragment with the
// key frame at or before from and the last ends with the fragment holding
// to. The first and last segment's sample tables must be loaded.
func selectFragments(segs []*evidenceSeg, from, to time.Time, firstPart, lastPart bool) {
	for _, es := range segs {
		es.first, es.count = 0, len(es.spans)
		if es.x != nil {
			es.count = len(es.x.frags)
		}
	}
	if es := segs[0]; firstPart {
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
		es.first, es.count = lo, len(es.x.frags)-lo
	}
	if es := segs[len(segs)-1]; lastPart {
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

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// evidenceSegment reads and re-hashes one segment against its chain
// entry, filling in es.x, spans, init and hash.
func (s *Source) evidenceSegment(ctx context.Context, es *evidenceSeg) error {
	row, entry := es.row, es.entry
	x, err := s.Cache.get(ctx, row, s.load)
	if err != nil {
		return err
	}
	d := s.Disks[row.Disk]
	if d == nil {
		return &Error{Status: 503, Message: fmt.Sprintf("segment %s: storage %s is unavailable", row.Key, row.Disk)}
	}
	r, err := d.Open(ctx, row.Key)
	if err != nil {
		return fmt.Errorf("segment %s: %w", row.Key, err)
	}
	defer r.Close()
	es.x = x
	if es.init, err = integrity.InitSpans(r, row.Bytes); err == nil {
		es.spans, _, err = integrity.FindFragmentsReader(r, row.Bytes)
	}
	if err == nil {
		es.hash, err = integrity.HashSpans(r, es.spans)
	}
	if err != nil {
		return &Error{Status: 409, Message: fmt.Sprintf("segment %s cannot be read as recorded (%v): run custos check", row.Key, err)}
	}
	initHash, err := integrity.InitHash(r, row.Bytes)
	if err != nil {
		return fmt.Errorf("segment %s: %w", row.Key, err)
	}
	if initHash != entry.InitHash || integrity.SegmentHash(es.hash) != entry.SegmentHash {
		return &Error{Status: 409, Message: fmt.Sprintf("segment %s changed since it was recorded (its hashes do not match chain entry %d): run custos check", row.Key, entry.Seq)}
	}
	if len(es.spans) != len(x.frags) {
		return fmt.Errorf("segment %s: %d fragments in the file, %d in its sample table", row.Key, len(es.spans), len(x.frags))
	}
	return nil
}
