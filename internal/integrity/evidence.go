package integrity

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"
)

// Report describes an export that verified.
type Report struct {
	OK             bool
	Camera, Stream string
	// The covered wall time: from the start of the first exported
	// fragment's segment to the end of the last exported segment (chain
	// At and At+WallDurNS). Exact per-fragment times are not in the chain,
	// so the clip itself may start later and end earlier.
	SegmentsFrom, SegmentsTo time.Time
	Key                      string // the recorder key, PublicKeyString
	Fingerprint              string // KeyFingerprint of Key
	Fragments, Segments      int    // in the file
	HeadSeq                  int64  // the signed head's chain entry
	SignedAt                 time.Time
	// Version is the manifest's. Version 2 signs what follows; version 1
	// does not (its selection of fragments, and so the range, could have
	// been cut without detection): Covered, Part, Parts and Gaps are zero.
	Version int
	// Covered is the exact wall time of the video in the file: from the
	// start of its first fragment to the end of its last.
	Covered Span
	// Requested is the range that was asked for (signed in version 2).
	Requested Span
	// Part is this file's place among Parts, the files the export was
	// split into (one per recording run); Gaps are what no part covers.
	Part  int
	Parts []Span
	Gaps  []Gap
	// Notes are remarks for people about what the chain says lies between
	// the first and the last exported segment but is not in the file:
	// segments left out (and their deletion, if the chain records one),
	// restarts of the recording (gaps), segments only partly included.
	// Empty for a gapless clip.
	Notes []string
}

// VerifyEvidence checks an export: m is its manifest and frags the
// fragments found in the file, in file order (each the bytes of a moof
// through its mdat, as FindFragments delimits them). want, if not nil, is
// the key the recorder is known to have (--key).
//
// It checks from the signature down, so that the first failure names the
// place that was altered: the recorder key (equal to want), for version 2
// the manifest's own signature (which covers every field, so also the
// range, parts, gaps and fragment selection), the head's
// signature with the recorder key and its camera and stream; the chain
// (VerifyChain, the manifest's camera and stream, ending exactly at the
// signed head); each segment (a KindSegment entry of the chain, in chain
// order, whose SegmentHash is that of the manifest's fragment hashes); and
// last the file's fragments (as many as the manifest's Counts add up to,
// each hashing to the manifest's hash at its place). It returns the Report
// and nil, or an empty Report and a *Problem for the first failure.
//
// It does no I/O and holds no fragment longer than it takes to hash it;
// VerifyEvidenceHashes takes the hashes instead, for files too large for
// memory.
func VerifyEvidence(m *Manifest, frags [][]byte, want ed25519.PublicKey) (Report, error) {
	hashes := make([][32]byte, len(frags))
	for i, f := range frags {
		hashes[i] = FragmentHash(f)
	}
	return VerifyEvidenceHashes(m, hashes, want)
}

// VerifyEvidenceHashes is VerifyEvidence given the FragmentHash of each of
// the file's fragments (see HashSpans) instead of their bytes.
func VerifyEvidenceHashes(m *Manifest, frags [][32]byte, want ed25519.PublicKey) (Report, error) {
	if m == nil {
		return Report{}, &Problem{Msg: "the file has no manifest"}
	}
	if err := m.validate(); err != nil {
		return Report{}, &Problem{Msg: "manifest: " + err.Error()}
	}
	if err := verifySigned(m, want); err != nil {
		return Report{}, err
	}
	if err := verifySegments(m); err != nil {
		return Report{}, err
	}
	if m.Version == 2 {
		if err := verifySelection(m); err != nil {
			return Report{}, err
		}
	}
	if err := verifyFragments(m, frags); err != nil {
		return Report{}, err
	}
	first := m.entry(m.Segments[0].ChainSeq)
	last := m.entry(m.Segments[len(m.Segments)-1].ChainSeq)
	pub, _ := ParsePublicKey(m.RecorderKey)
	rep := Report{
		OK: true, Camera: m.Camera, Stream: m.Stream,
		SegmentsFrom: first.At.UTC(), SegmentsTo: last.At.Add(time.Duration(last.WallDurNS)).UTC(),
		Key: PublicKeyString(pub), Fingerprint: KeyFingerprint(pub),
		Fragments: len(frags), Segments: len(m.Segments),
		HeadSeq: m.Head.Seq, SignedAt: m.Head.SignedAt.UTC(),
		Version: m.Version, Requested: Span{m.From.UTC(), m.To.UTC()},
	}
	if m.Version == 1 {
		rep.Notes = notes(m)
		return rep, nil
	}
	rep.Covered = m.covered()
	rep.Part = m.Part
	for _, p := range m.Parts {
		rep.Parts = append(rep.Parts, Span{p.From.UTC(), p.To.UTC()})
	}
	for _, g := range m.Gaps {
		rep.Gaps = append(rep.Gaps, Gap{g.From.UTC(), g.To.UTC(), g.Reason})
	}
	return rep, nil
}

// fragTime returns the wall start of fragment j of segment k (version 2),
// or its end for j == First+Count.
func (m *Manifest) fragTime(k, j int) time.Time {
	s := &m.Segments[k]
	return m.entry(s.ChainSeq).At.Add(time.Duration(s.StartsNS[j-s.First])).UTC()
}

// covered is the wall time of a version 2 file's fragments.
func (m *Manifest) covered() Span {
	n := len(m.Segments) - 1
	return Span{m.fragTime(0, m.Segments[0].First), m.fragTime(n, m.Segments[n].First+m.Segments[n].Count)}
}

// verifySelection checks what version 2 adds: the file is one unbroken
// stretch of recording (its segments are consecutive in the chain with no
// restart between them, and only the first and the last are partly
// exported), and the signed part for this file is the time its fragments
// cover.
func verifySelection(m *Manifest) error {
	exported := make(map[int64]bool, len(m.Segments))
	for k, s := range m.Segments {
		exported[s.ChainSeq] = true
		if k > 0 && s.First > 0 || k < len(m.Segments)-1 && s.First+s.Count < len(s.Fragments) {
			return problemAt(s.ChainSeq, "segment %d (chain entry %d) is only partly in the file but is not at its start or end (manifest inconsistent)", k+1, s.ChainSeq)
		}
	}
	for seq := m.Segments[0].ChainSeq + 1; seq < m.Segments[len(m.Segments)-1].ChainSeq; seq++ {
		switch e := m.entry(seq); {
		case e.Kind == KindRunStart:
			return problemAt(seq, "chain entry %d: the recording restarted inside the file's range (manifest inconsistent)", seq)
		case e.Kind == KindSegment && !exported[seq]:
			return problemAt(seq, "chain entry %d: segment %s is inside the file's range but not in the file (manifest inconsistent)", seq, stamp(e.At))
		}
	}
	if got, want := m.covered(), m.Parts[m.Part-1]; !got.From.Equal(want.From) || !got.To.Equal(want.To) {
		return &Problem{Msg: fmt.Sprintf("the file's fragments cover %s to %s but its part %d says %s to %s (manifest inconsistent)",
			stampNano(got.From), stampNano(got.To), m.Part, stampNano(want.From), stampNano(want.To))}
	}
	return verifyTiling(m)
}

// tilingSlack is the largest stretch of the requested range that may be
// in neither a part nor a gap (the exporter does not list gaps up to a
// millisecond: rounding between abutting segments).
const tilingSlack = time.Millisecond

// verifyTiling checks that the parts and gaps account for the whole
// requested range, so that "no gaps" means the range is covered.
func verifyTiling(m *Manifest) error {
	spans := make([]Span, 0, len(m.Parts)+len(m.Gaps))
	spans = append(spans, m.Parts...)
	for _, g := range m.Gaps {
		spans = append(spans, Span{g.From, g.To})
	}
	slices.SortFunc(spans, func(a, b Span) int { return a.From.Compare(b.From) })
	at := m.From // accounted for up to here
	for _, sp := range spans {
		if !at.Before(m.To) {
			break
		}
		if sp.From.Sub(at) > tilingSlack {
			break
		}
		if sp.To.After(at) {
			at = sp.To
		}
	}
	if m.To.Sub(at) > tilingSlack {
		end := m.To
		for _, sp := range spans {
			if sp.From.After(at) && sp.From.Before(end) {
				end = sp.From
			}
		}
		return &Problem{Msg: fmt.Sprintf("%s to %s of the requested range is in neither a part nor a gap (manifest inconsistent)", stampNano(at), stampNano(end))}
	}
	return nil
}

// entry returns the chain entry seq; the chain must have been verified
// consecutive and seq must lie within it.
func (m *Manifest) entry(seq int64) *Entry { return &m.Chain[seq-m.Chain[0].Seq] }

// verifySigned checks the key, the signed head and the chain up to it.
func verifySigned(m *Manifest, want ed25519.PublicKey) error {
	pub, err := ParsePublicKey(m.RecorderKey)
	if err != nil {
		return &Problem{Msg: "manifest: " + err.Error()}
	}
	if want != nil && !pub.Equal(want) {
		return &Problem{Msg: fmt.Sprintf("recorder key is %s (fingerprint %s) but --key says %s (fingerprint %s)",
			PublicKeyString(pub), KeyFingerprint(pub), PublicKeyString(want), KeyFingerprint(want))}
	}
	if m.Version == 2 {
		if err := m.verifyExportSignature(pub); err != nil {
			return err
		}
	}
	h := &m.Head
	if err := VerifyHead(pub, h); err != nil {
		return &Problem{ChainSeq: h.Seq, Msg: err.Error()}
	}
	if h.Camera != m.Camera || h.Stream != m.Stream {
		return problemAt(h.Seq, "the signed head is for camera %q stream %q, the manifest for camera %q stream %q",
			h.Camera, h.Stream, m.Camera, m.Stream)
	}
	if err := VerifyChain(m.Chain); err != nil {
		return err
	}
	first, last := &m.Chain[0], &m.Chain[len(m.Chain)-1]
	if first.Camera != m.Camera || first.Stream != m.Stream {
		return problemAt(first.Seq, "chain entry %d is for camera %q stream %q, the manifest for camera %q stream %q",
			first.Seq, first.Camera, first.Stream, m.Camera, m.Stream)
	}
	switch {
	case last.Seq < h.Seq:
		return problemAt(last.Seq, "the chain ends at entry %d but the signed head is entry %d (chain truncated)", last.Seq, h.Seq)
	case last.Seq > h.Seq:
		return problemAt(last.Seq, "the chain goes on to entry %d past the signed head, entry %d (entries appended)", last.Seq, h.Seq)
	case last.Hash != h.Hash:
		return problemAt(last.Seq, "chain entry %d does not match the signed head (altered and re-hashed)", last.Seq)
	}
	return nil
}

// verifySegments checks each segment's place in the chain and its hash.
func verifySegments(m *Manifest) error {
	lo, hi := m.Chain[0].Seq, m.Chain[len(m.Chain)-1].Seq
	for k, s := range m.Segments {
		if s.ChainSeq < lo || s.ChainSeq > hi {
			return problemAt(s.ChainSeq, "segment %d: chain entry %d is not in the manifest's chain, entries %d to %d (chain truncated or manifest altered)",
				k+1, s.ChainSeq, lo, hi)
		}
		if k > 0 && s.ChainSeq <= m.Segments[k-1].ChainSeq {
			return problemAt(s.ChainSeq, "segment %d: chain entry %d does not come after segment %d's entry %d (segments out of order or repeated)",
				k+1, s.ChainSeq, k, m.Segments[k-1].ChainSeq)
		}
		e := m.entry(s.ChainSeq)
		if e.Kind != KindSegment {
			return problemAt(s.ChainSeq, "segment %d: chain entry %d is a %s entry, not a segment", k+1, s.ChainSeq, e.Kind)
		}
		if SegmentHash(s.Fragments) != e.SegmentHash {
			return problemAt(s.ChainSeq, "segment %d: its fragment hashes do not give the segment hash in chain entry %d (manifest altered)",
				k+1, s.ChainSeq)
		}
	}
	return nil
}

// fragRef is a place in the manifest: segment k, fragment j of it.
type fragRef struct{ k, j int }

// verifyFragments compares the file's fragments with the manifest's,
// naming the first that differs and, when it can tell, how (missing,
// inserted, repeated, moved).
func verifyFragments(m *Manifest, frags [][32]byte) error {
	var refs []fragRef
	for k, s := range m.Segments {
		for j := s.First; j < s.First+s.Count; j++ {
			refs = append(refs, fragRef{k, j})
		}
	}
	hashAt := func(i int) [32]byte { return m.Segments[refs[i].k].Fragments[refs[i].j] }
	place := func(i int) string {
		r := refs[i]
		s := &m.Segments[r.k]
		if m.Version == 2 {
			return fmt.Sprintf("segment %d, fragment %d of %d, at %s",
				r.k+1, r.j+1, len(s.Fragments), stampNano(m.fragTime(r.k, r.j)))
		}
		return fmt.Sprintf("segment %d, fragment %d of %d, segment start %s",
			r.k+1, r.j+1, len(s.Fragments), m.entry(s.ChainSeq).At.UTC().Format(time.RFC3339))
	}
	nf, nm := len(frags), len(refs)
	counts := fmt.Sprintf("the file has %d fragments but the manifest lists %d", nf, nm)
	var index map[[32]byte]int // manifest position of each hash, built on the first mismatch
	for i := 0; i < min(nf, nm); i++ {
		if frags[i] == hashAt(i) {
			continue
		}
		if index == nil {
			index = make(map[[32]byte]int, nm)
			for p := nm - 1; p >= 0; p-- {
				index[hashAt(p)] = p
			}
		}
		p := &Problem{Fragment: i + 1, ChainSeq: m.Segments[refs[i].k].ChainSeq}
		j, known := index[frags[i]]
		switch {
		case known && j == i+1 && nf < nm:
			p.Msg = fmt.Sprintf("fragment %d of the file should be %s, but is the one after it: fragment missing (%s)", i+1, place(i), counts)
		case known && j > i && nf < nm:
			p.Msg = fmt.Sprintf("fragment %d of the file should be %s, but is the manifest's fragment %d: %d fragments missing from there on (%s)", i+1, place(i), j+1, j-i, counts)
		case known && j < i:
			p.Msg = fmt.Sprintf("fragment %d of the file (%s) is a copy of fragment %d of the file: fragment repeated or moved", i+1, place(i), j+1)
		case known:
			p.Msg = fmt.Sprintf("fragment %d of the file (%s) is the manifest's fragment %d (%s): fragments out of order", i+1, place(i), j+1, place(j))
		case nf > nm && i+1 < nf && frags[i+1] == hashAt(i):
			p.Msg = fmt.Sprintf("fragment %d of the file (before %s) is not in the manifest: fragment inserted (%s)", i+1, place(i), counts)
		default:
			p.Msg = fmt.Sprintf("fragment %d of the file (%s): hash does not match the recording", i+1, place(i))
		}
		return p
	}
	switch {
	case nf < nm:
		return &Problem{Fragment: nf + 1, ChainSeq: m.Segments[refs[nf].k].ChainSeq,
			Msg: fmt.Sprintf("%s (fragment missing from %s on)", counts, place(nf))}
	case nf > nm:
		return &Problem{Fragment: nm + 1, Msg: fmt.Sprintf("%s (extra fragment at the end of the file)", counts)}
	}
	return nil
}

// notes describes what the verified chain holds between the first and last
// exported segments that is not in the file (Report.Notes).
func notes(m *Manifest) []string {
	var out []string
	exported := make(map[int64]int, len(m.Segments)) // chain seq -> index in Segments
	for k, s := range m.Segments {
		exported[s.ChainSeq] = k
		n := len(s.Fragments)
		if k > 0 && s.First > 0 {
			out = append(out, fmt.Sprintf("segment %d (chain entry %d): its first %d of %d fragments are not in the file", k+1, s.ChainSeq, s.First, n))
		}
		if k < len(m.Segments)-1 && s.First+s.Count < n {
			out = append(out, fmt.Sprintf("segment %d (chain entry %d): its last %d of %d fragments are not in the file", k+1, s.ChainSeq, n-s.First-s.Count, n))
		}
	}
	deleted := make(map[string]*Entry) // segment key -> its deletion entry
	for i := range m.Chain {
		if e := &m.Chain[i]; e.Kind == KindDeletion {
			if _, ok := deleted[e.Key]; !ok {
				deleted[e.Key] = e
			}
		}
	}
	for seq := m.Segments[0].ChainSeq + 1; seq < m.Segments[len(m.Segments)-1].ChainSeq; seq++ {
		e := m.entry(seq)
		switch e.Kind {
		case KindRunStart:
			out = append(out, fmt.Sprintf("chain entry %d: the recording restarted at %s (gap before it)", seq, stamp(e.At)))
		case KindSegment:
			if _, ok := exported[seq]; ok {
				continue
			}
			s := fmt.Sprintf("chain entry %d: segment %s to %s is not in the file", seq, stamp(e.At), stamp(e.At.Add(time.Duration(e.WallDurNS))))
			if d := deleted[e.Key]; d != nil && d.Seq > seq {
				s += fmt.Sprintf("; deleted at %s (chain entry %d): %s", stamp(d.At), d.Seq, d.Reason)
			}
			out = append(out, s)
		}
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func stampNano(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
