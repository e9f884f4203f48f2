package integrity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// recording is a synthetic chain of door/main with the bytes of every
// segment's fragments, signed by key:
//
//	1 run_start 09:00    2 segment A 09:00 (4 fragments)
//	3 run_start 09:05    4 segment B 09:05 (6)   5 segment C 09:06 (5)
//	6 segment D 09:07 (7)   7 deletion of A (or of the segment given)
//	8 segment E 09:08 (3)   9 run_start 09:20   10 segment F 09:20 (2)
type recording struct {
	key   ed25519.PrivateKey
	chain []Entry
	frags map[int64][][]byte // segment entry seq -> its fragments
	head  Head
}

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

// fakeInit is the ftyp and moov of exportFile; the segment entries of
// newRecording carry its hash as their InitHash.
var fakeInit = []byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0,
	0, 0, 0, 12, 'm', 'o', 'o', 'v', 1, 2, 3, 4}

// newRecording builds the recording above; deleted is the seq of the
// segment entry 7 deletes (2: A).
func newRecording(t testing.TB, deleted int64) *recording {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	r := &recording{key: rfc8032Key(t), frags: make(map[int64][][]byte)}
	add := func(e Entry) {
		e.Seq, e.Camera, e.Stream = int64(len(r.chain)+1), "door", "main"
		r.chain = append(r.chain, e)
	}
	segment := func(start time.Duration, n int, name string) {
		var frags [][]byte
		var hashes [][32]byte
		size := int64(500) // the init segment
		for range n {
			f := fakeFragment(rng)
			frags = append(frags, f)
			hashes = append(hashes, FragmentHash(f))
			size += int64(len(f))
		}
		r.frags[int64(len(r.chain)+1)] = frags
		add(Entry{Kind: KindSegment, At: t0.Add(start), Key: "door/main/2026-11-29/" + name + ".mp4",
			WallDurNS: int64(time.Minute), Dur90k: 60 * 90000, Frames: 1500, Bytes: size, SegmentHash: SegmentHash(hashes),
			InitHash: sha256.Sum256(fakeInit)})
	}
	add(Entry{Kind: KindRunStart, At: t0})
	segment(0, 4, "090000")
	add(Entry{Kind: KindRunStart, At: t0.Add(5 * time.Minute)})
	segment(5*time.Minute, 6, "090500")
	segment(6*time.Minute, 5, "090600")
	segment(7*time.Minute, 7, "090700")
	add(Entry{Kind: KindDeletion, At: t0.Add(8*time.Minute + 30*time.Second), Key: r.chain[deleted-1].Key,
		WallDurNS: r.chain[deleted-1].WallDurNS, Dur90k: r.chain[deleted-1].Dur90k, Frames: r.chain[deleted-1].Frames,
		Bytes: r.chain[deleted-1].Bytes, SegmentHash: r.chain[deleted-1].SegmentHash, Reason: "retention"})
	segment(8*time.Minute, 3, "090800")
	add(Entry{Kind: KindRunStart, At: t0.Add(20 * time.Minute)})
	segment(20*time.Minute, 2, "092000")
	rehash(r.chain, 0)
	last := r.chain[len(r.chain)-1]
	r.head = Head{Camera: "door", Stream: "main", Seq: last.Seq, Hash: last.Hash, SignedAt: t0.Add(30 * time.Minute)}
	SignHead(r.key, &r.head)
	return r
}

// fakeFragment returns a moof box and an mdat box of random contents.
func fakeFragment(rng *rand.Rand) []byte {
	var b []byte
	for _, typ := range []string{"moof", "mdat"} {
		n := 8 + 20 + rng.IntN(200)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = append(b, typ...)
		for range n - 8 {
			b = append(b, byte(rng.Uint32()))
		}
	}
	return b
}

// sel selects fragments [first, first+count) of the segment of chain
// entry seq.
type sel struct {
	seq          int64
	first, count int
}

// export returns the manifest and the fragments of an export of the
// selected segments, with the chain from the first one to the head.
func (r *recording) export(t testing.TB, sels ...sel) (*Manifest, [][]byte) {
	t.Helper()
	m := &Manifest{
		Version: 1, Camera: "door", Stream: "main",
		From: t0.Add(5 * time.Minute), To: t0.Add(8 * time.Minute), CreatedAt: t0.Add(31 * time.Minute),
		RecorderKey: PublicKeyString(r.key.Public().(ed25519.PublicKey)),
		Chain:       append([]Entry(nil), r.chain[sels[0].seq-1:]...),
		Head:        r.head,
	}
	m.Head.Signature = append([]byte(nil), r.head.Signature...)
	var out [][]byte
	for _, s := range sels {
		all := r.frags[s.seq]
		ms := ManifestSegment{ChainSeq: s.seq, First: s.first, Count: s.count}
		for _, f := range all {
			ms.Fragments = append(ms.Fragments, FragmentHash(f))
		}
		m.Segments = append(m.Segments, ms)
		out = append(out, all[s.first:s.first+s.count]...)
	}
	return m, out
}

// standard is the export most tests tamper with: the last 4 fragments of
// B, all 5 of C, the first 4 of D (13 fragments).
func (r *recording) standard(t testing.TB) (*Manifest, [][]byte) {
	return r.export(t, sel{4, 2, 4}, sel{5, 0, 5}, sel{6, 0, 4})
}

// exportFile lays out a whole export file: ftyp, moov, the manifest box,
// then the fragments.
func exportFile(t testing.TB, m *Manifest, frags [][]byte) []byte {
	t.Helper()
	b := append([]byte(nil), fakeInit...)
	box, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, box...)
	for _, f := range frags {
		b = append(b, f...)
	}
	return b
}

// clone deep-copies a manifest through its JSON form. A version 2 clone
// forgets the JSON it was parsed from, so that edits to it are checked
// against its signature.
func clone(t testing.TB, m *Manifest) *Manifest {
	t.Helper()
	box, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseManifest(box[24:])
	if err != nil {
		t.Fatal(err)
	}
	c.signed = nil
	return c
}

// exportV2 is export as version 2, signed by the recording's key: each
// fragment of a segment lasts a minute divided by their number, parts is
// the one covered span unless given, and gaps as given; without parts and
// gaps the requested range is the covered one.
func (r *recording) exportV2(t testing.TB, parts []Span, gaps []Gap, sels ...sel) (*Manifest, [][]byte) {
	t.Helper()
	m, frags := r.export(t, sels...)
	for k := range m.Segments {
		s := &m.Segments[k]
		n := int64(len(s.Fragments))
		for j := s.First; j <= s.First+s.Count; j++ {
			s.StartsNS = append(s.StartsNS, int64(j)*int64(time.Minute)/n)
		}
	}
	m.Version, m.Part, m.Parts, m.Gaps = 2, 1, parts, gaps
	if parts == nil {
		m.Parts = []Span{m.covered()}
		if gaps == nil {
			m.From, m.To = m.Parts[0].From, m.Parts[0].To
		}
	}
	if err := m.Sign(r.key); err != nil {
		t.Fatal(err)
	}
	return m, frags
}

// standardV2 is standard as version 2.
func (r *recording) standardV2(t testing.TB) (*Manifest, [][]byte) {
	return r.exportV2(t, nil, nil, sel{4, 2, 4}, sel{5, 0, 5}, sel{6, 0, 4})
}
