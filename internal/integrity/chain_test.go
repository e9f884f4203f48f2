package integrity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// katEntry is the fixed entry of the known-answer tests; its encoding is
// spelled out byte by byte in TestEntryEncodingKnownAnswer.
func katEntry() Entry {
	e := Entry{
		Seq: 1234, Kind: KindSegment, Camera: "door", Stream: "main",
		At:  time.Date(2026, 11, 29, 9, 31, 4, 123456789, time.UTC),
		Key: "door/main/2026-11-29/093104.mp4", WallDurNS: 60_000_123_456, Dur90k: 5_400_011,
		Frames: 1800, Bytes: 7_654_321,
	}
	for i := range e.SegmentHash {
		e.SegmentHash[i] = byte(i)
		e.InitHash[i] = byte(32 + i)
		e.Prev[i] = 0xab
	}
	e.Hash = e.ComputeHash()
	return e
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	var digits []string
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "//")
		digits = append(digits, strings.Fields(line)...)
	}
	b, err := hex.DecodeString(strings.Join(digits, ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The known answers here were checked against an independent
// implementation (Python's hashlib over the layout in docs/evidence.md).
// A change to any of them breaks every verifier in the field.
func TestEntryEncodingKnownAnswer(t *testing.T) {
	e := katEntry()
	want := mustHex(t, `
		637573746f732d636861696e2d7631 // "custos-chain-v1"
		00000000000004d2 // seq 1234
		0000000000000007 7365676d656e74 // kind "segment"
		0000000000000004 646f6f72 // camera "door"
		0000000000000004 6d61696e // stream "main"
		18ec7a281d563d15 // at 1795944664123456789 ns
		000000000000001f 646f6f722f6d61696e2f323032362d31312d32392f3039333130342e6d7034 // key
		0000000df8493a40 // wall_dur_ns 60000123456
		00000000005265cb // dur90k 5400011
		0000000000000708 // frames 1800
		000000000074cbb1 // bytes 7654321
		000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f // segment_hash
		202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f // init_hash
		0000000000000000 // reason ""
		abababababababababababababababababababababababababababababababab // prev`)
	if got := e.encoding(); !bytes.Equal(got, want) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
	}
	const wantHash = "76e63b15b249e20e2fcfa1b5ae113271f1a7e118724072b0c05b4ff52ea26033"
	if got := hex.EncodeToString(e.Hash[:]); got != wantHash {
		t.Errorf("ComputeHash = %s, want %s", got, wantHash)
	}
	// A deletion with a reason and a run_start, to fix those too.
	d := e
	d.Kind, d.Reason, d.Seq = KindDeletion, "retention: disk /srv/a over quota", 1300
	if got, want := hex.EncodeToString(ptr(d.ComputeHash())), "169e84c1352cd7c2fe1f03835cef065d018a5d502401084516560abe34968b24"; got != want {
		t.Errorf("deletion hash = %s, want %s", got, want)
	}
	r := Entry{Seq: 1, Kind: KindRunStart, Camera: "door", Stream: "sub", At: time.Unix(1796031000, 0)}
	if got, want := hex.EncodeToString(ptr(r.ComputeHash())), "61db969dedef19733aa0db9f86cfffa26339a96e501e4b06c22c88e6a945b57c"; got != want {
		t.Errorf("run_start hash = %s, want %s", got, want)
	}
}

func ptr(h [32]byte) []byte { return h[:] }

func TestSegmentHashKnownAnswer(t *testing.T) {
	a, b := FragmentHash([]byte("abc")), FragmentHash(nil)
	if got, want := hex.EncodeToString(a[:]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("FragmentHash(abc) = %s", got)
	}
	// SHA-256("custos-segment-v1" || 00..02 || a || b)
	msg := append([]byte("custos-segment-v1"), 0, 0, 0, 0, 0, 0, 0, 2)
	msg = append(append(msg, a[:]...), b[:]...)
	got := SegmentHash([][32]byte{a, b})
	if want := FragmentHash(msg); got != want {
		t.Fatalf("SegmentHash = %x, want %x", got, want)
	}
	if got, want := hex.EncodeToString(got[:]), "cca3a0e228683adb15eb305378e93b463938f88d99547098d330d17098af232e"; got != want {
		t.Errorf("SegmentHash = %s, want %s", got, want)
	}
	if SegmentHash([][32]byte{b, a}) == got {
		t.Error("SegmentHash ignores order")
	}
}

// rehash recomputes Prev and Hash from entry i on, as someone rewriting
// the chain would.
func rehash(es []Entry, i int) {
	for ; i < len(es); i++ {
		if i > 0 {
			es[i].Prev = es[i-1].Hash
		}
		es[i].Hash = es[i].ComputeHash()
	}
}

// testChain returns entries 1..n of a chain of door/main: a run start,
// then segments of a minute each.
func testChain(n int) []Entry {
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	es := make([]Entry, n)
	for i := range es {
		e := Entry{Seq: int64(i + 1), Kind: KindSegment, Camera: "door", Stream: "main",
			At: t0.Add(time.Duration(i) * time.Minute), Key: "door/main/" + string(rune('a'+i%26)) + ".mp4",
			WallDurNS: int64(time.Minute), Dur90k: 60 * 90000, Frames: 1500, Bytes: 1 << 20}
		e.SegmentHash = FragmentHash([]byte(e.Key))
		if i == 0 {
			e = Entry{Seq: 1, Kind: KindRunStart, Camera: "door", Stream: "main", At: t0}
		}
		es[i] = e
	}
	rehash(es, 0)
	return es
}

func TestVerifyChain(t *testing.T) {
	cases := []struct {
		name    string
		edit    func([]Entry) []Entry
		seq     int64  // entry the problem names, 0 for none
		message string // substring of the problem
	}{
		{"intact", func(es []Entry) []Entry { return es }, 0, ""},
		{"empty", func([]Entry) []Entry { return nil }, 0, ""},
		{"from the middle", func(es []Entry) []Entry { return es[3:] }, 0, ""},
		{"frames altered", func(es []Entry) []Entry { es[4].Frames++; return es }, 5, "chain entry 5: hash does not match its contents (altered)"},
		{"time altered", func(es []Entry) []Entry { es[2].At = es[2].At.Add(1); return es }, 3, "chain entry 3: hash does not match"},
		{"altered and re-hashed", func(es []Entry) []Entry { es[4].Key = "x"; es[4].Hash = es[4].ComputeHash(); return es },
			6, "chain entry 6: prev does not match entry 5"},
		{"entry removed", func(es []Entry) []Entry { return append(es[:4], es[5:]...) }, 6, "chain entry 6 follows entry 4 (entry 5 missing)"},
		{"entries removed", func(es []Entry) []Entry { return append(es[:2], es[5:]...) }, 6, "chain entry 6 follows entry 2 (entries 3 to 5 missing)"},
		{"entries swapped", func(es []Entry) []Entry { es[3], es[4] = es[4], es[3]; return es }, 5, "chain entry 5 follows entry 3 (entry 4 missing)"},
		{"entry repeated", func(es []Entry) []Entry { return append(es[:5], es[4:]...) }, 5, "chain entry 5 follows entry 5"},
		{"other camera, re-hashed", func(es []Entry) []Entry { es[6].Camera = "yard"; rehash(es, 6); return es }, 7, `chain entry 7: camera "yard" stream "main" differ from entry 6's`},
		{"first of other camera", func(es []Entry) []Entry { es[0].Camera = "yard"; rehash(es, 0); return es }, 2, `chain entry 2: camera "door"`},
		{"other stream, re-hashed", func(es []Entry) []Entry { es[6].Stream = "sub"; rehash(es, 6); return es }, 7, `stream "sub"`},
		{"unknown kind", func(es []Entry) []Entry { es[3].Kind = "Segment"; rehash(es, 3); return es }, 4, `chain entry 4: unknown kind "Segment"`},
		{"seq 0", func(es []Entry) []Entry { es[0].Seq = 0; rehash(es, 0); return es }, 0, "chain entry 0: seq is less than 1"},
		{"entry 1 with prev", func(es []Entry) []Entry { es[0].Prev[0] = 1; rehash(es, 0); return es }, 1, "chain entry 1: prev is not zero"},
		{"negative bytes", func(es []Entry) []Entry { es[2].Bytes = -1; rehash(es, 2); return es }, 3, "chain entry 3: negative"},
		{"time out of range", func(es []Entry) []Entry { es[2].At = time.Time{}; rehash(es, 2); return es }, 3, "chain entry 3: time out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyChain(c.edit(testChain(10)))
			if c.message == "" {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("VerifyChain = %v, want a *Problem", err)
			}
			if !strings.Contains(p.Msg, c.message) || p.ChainSeq != c.seq {
				t.Errorf("problem at %d: %q\nwant at %d: %q", p.ChainSeq, p.Msg, c.seq, c.message)
			}
		})
	}
}

// TestEntryEveryFieldHashed changes each field of an entry in turn and
// checks that the hash changes, so no field is left out of the encoding.
func TestEntryEveryFieldHashed(t *testing.T) {
	base := katEntry()
	for name, edit := range fieldEdits() {
		e := base
		edit(&e)
		if e.ComputeHash() == base.Hash {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	// The time zone does not matter, only the instant.
	e := base
	e.At = e.At.In(time.FixedZone("x", 3600))
	if e.ComputeHash() != base.Hash {
		t.Error("hash depends on the time zone")
	}
}

// fieldEdits changes one field of an entry each (Hash aside).
func fieldEdits() map[string]func(*Entry) {
	return map[string]func(*Entry){
		"seq": func(e *Entry) { e.Seq++ }, "kind": func(e *Entry) {
			e.Kind = map[string]string{KindRunStart: KindSegment, KindSegment: KindDeletion, KindDeletion: KindRunStart}[e.Kind]
		},
		"camera": func(e *Entry) { e.Camera += "x" }, "stream": func(e *Entry) { e.Stream = "sub" },
		"at": func(e *Entry) { e.At = e.At.Add(time.Nanosecond) }, "key": func(e *Entry) { e.Key += "x" },
		"wall_dur_ns": func(e *Entry) { e.WallDurNS++ }, "dur90k": func(e *Entry) { e.Dur90k++ },
		"frames": func(e *Entry) { e.Frames++ }, "bytes": func(e *Entry) { e.Bytes++ },
		"segment_hash": func(e *Entry) { e.SegmentHash[31] ^= 1 }, "reason": func(e *Entry) { e.Reason = "x" },
		"prev": func(e *Entry) { e.Prev[0] ^= 1 },
		// Moving a byte from one string to the next must change the hash.
		"boundary": func(e *Entry) { e.Camera, e.Stream = e.Camera+e.Stream[:1], e.Stream[1:] },
	}
}
