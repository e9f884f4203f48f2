package integrity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustVerify(t *testing.T, m *Manifest, frags [][]byte, want ed25519.PublicKey) Report {
	t.Helper()
	rep, err := VerifyEvidence(m, frags, want)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	return rep
}

// problem runs VerifyEvidence, which must fail, and returns the *Problem.
func problem(t *testing.T, m *Manifest, frags [][]byte, want ed25519.PublicKey) *Problem {
	t.Helper()
	rep, err := VerifyEvidence(m, frags, want)
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("VerifyEvidence = %v, want a *Problem", err)
	}
	if rep.OK {
		t.Error("failed Report says OK")
	}
	return p
}

func TestVerifyEvidenceIntact(t *testing.T) {
	r := newRecording(t, 2)
	m, frags := r.standard(t)
	pub := r.key.Public().(ed25519.PublicKey)
	rep := mustVerify(t, m, frags, pub)
	want := Report{
		OK: true, Camera: "door", Stream: "main",
		SegmentsFrom: t0.Add(5 * time.Minute), SegmentsTo: t0.Add(8 * time.Minute),
		Key: PublicKeyString(pub), Fingerprint: "21fe-31df-a154-a261",
		Fragments: 13, Segments: 3, HeadSeq: 10, SignedAt: t0.Add(30 * time.Minute),
		Version: 1, Requested: Span{t0.Add(5 * time.Minute), t0.Add(8 * time.Minute)},
	}
	if fmt.Sprint(rep) != fmt.Sprint(want) {
		t.Errorf("Report:\n got %+v\nwant %+v", rep, want)
	}
	// Without --key it verifies too, reporting the key.
	if rep := mustVerify(t, m, frags, nil); rep.Key != want.Key {
		t.Errorf("Key = %s", rep.Key)
	}
	// One fragment, and a whole recording.
	m1, f1 := r.export(t, sel{10, 1, 1})
	mustVerify(t, m1, f1, pub)
	mAll, fAll := r.export(t, sel{4, 0, 6}, sel{5, 0, 5}, sel{6, 0, 7}, sel{8, 0, 3}, sel{10, 0, 2})
	rep = mustVerify(t, mAll, fAll, pub)
	if rep.Fragments != 23 || !rep.SegmentsTo.Equal(t0.Add(21*time.Minute)) {
		t.Errorf("Report %+v", rep)
	}
	if got := strings.Join(rep.Notes, "\n"); got != "chain entry 9: the recording restarted at 2026-11-29T09:20:00Z (gap before it)" {
		t.Errorf("Notes:\n%s", got)
	}
}

// TestVerifyEvidenceFile goes through a whole file: FindFragments,
// ParseManifest, VerifyEvidence, and the same with a reader and hashes.
func TestVerifyEvidenceFile(t *testing.T) {
	r := newRecording(t, 2)
	m, frags := r.standard(t)
	file := exportFile(t, m, frags)
	spans, payload, err := FindFragments(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(payload)
	if err != nil {
		t.Fatal(err)
	}
	var inFile [][]byte
	for _, s := range spans {
		inFile = append(inFile, file[s[0]:s[1]])
	}
	mustVerify(t, got, inFile, r.key.Public().(ed25519.PublicKey))

	spans2, payload2, err := FindFragmentsReader(bytes.NewReader(file), int64(len(file)))
	if err != nil || !slices.Equal(spans, spans2) || !bytes.Equal(payload, payload2) {
		t.Fatalf("FindFragmentsReader differs: %v", err)
	}
	hashes, err := HashSpans(bytes.NewReader(file), spans2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEvidenceHashes(got, hashes, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := HashSpans(bytes.NewReader(file[:len(file)-1]), spans2); err == nil {
		t.Error("HashSpans of a cut file succeeded")
	}
}

// TestVerifyEvidenceEveryByte flips every byte of two fragments, and three
// bytes of each other fragment, and expects each flip to be found in the
// right fragment.
func TestVerifyEvidenceEveryByte(t *testing.T) {
	r := newRecording(t, 2)
	m, frags := r.standard(t)
	// File fragment -> segment, fragment of the segment, its count.
	type place struct{ seg, frag, of int }
	var places []place
	for k, s := range m.Segments {
		for j := s.First; j < s.First+s.Count; j++ {
			places = append(places, place{k + 1, j + 1, len(s.Fragments)})
		}
	}
	starts := []string{"2026-11-29T09:05:00Z", "2026-11-29T09:06:00Z", "2026-11-29T09:07:00Z"}
	flips := 0
	for i, f := range frags {
		positions := []int{0, len(f) / 2, len(f) - 1}
		if i == 0 || i == 6 {
			positions = nil
			for j := range f {
				positions = append(positions, j)
			}
		}
		pl := places[i]
		want := fmt.Sprintf("fragment %d of the file (segment %d, fragment %d of %d, segment start %s): hash does not match the recording",
			i+1, pl.seg, pl.frag, pl.of, starts[pl.seg-1])
		for _, j := range positions {
			for _, bit := range []byte{0x01, 0x80} {
				f[j] ^= bit
				p := problem(t, m, frags, nil)
				f[j] ^= bit
				flips++
				if p.Fragment != i+1 || p.Msg != want {
					t.Fatalf("byte %d of fragment %d flipped: problem at fragment %d: %q\nwant %q", j, i+1, p.Fragment, p.Msg, want)
				}
			}
		}
	}
	mustVerify(t, m, frags, nil)
	t.Logf("%d flips found", flips)
}

func TestVerifyEvidenceTamper(t *testing.T) {
	r := newRecording(t, 2)
	pub := r.key.Public().(ed25519.PublicKey)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	otherPub := otherKey.Public().(ed25519.PublicKey)
	foreign := r.frags[2][0] // a fragment of deleted segment A
	cases := []struct {
		name     string
		edit     func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey)
		fragment int
		seq      int64
		msg      string
	}{
		{"fragment dropped", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, slices.Delete(f, 4, 5), pub
		}, 5, 5, "fragment 5 of the file should be segment 2, fragment 1 of 5, segment start 2026-11-29T09:06:00Z, but is the one after it: fragment missing (the file has 12 fragments but the manifest lists 13)"},
		{"first fragment dropped", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, f[1:], pub
		}, 1, 4, "fragment 1 of the file should be segment 1, fragment 3 of 6, segment start 2026-11-29T09:05:00Z, but is the one after it: fragment missing"},
		{"last fragment dropped", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, f[:12], pub
		}, 13, 6, "the file has 12 fragments but the manifest lists 13 (fragment missing from segment 3, fragment 4 of 7, segment start 2026-11-29T09:07:00Z on)"},
		{"no fragments", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, nil, pub
		}, 1, 4, "the file has 0 fragments but the manifest lists 13"},
		{"two swapped", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			f[2], f[3] = f[3], f[2]
			return m, f, pub
		}, 3, 4, "fragment 3 of the file (segment 1, fragment 5 of 6, segment start 2026-11-29T09:05:00Z) is the manifest's fragment 4 (segment 1, fragment 6 of 6, segment start 2026-11-29T09:05:00Z): fragments out of order"},
		{"swapped across segments", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			f[1], f[10] = f[10], f[1]
			return m, f, pub
		}, 2, 4, "fragment 2 of the file (segment 1, fragment 4 of 6, segment start 2026-11-29T09:05:00Z) is the manifest's fragment 11 (segment 3, fragment 2 of 7"},
		{"one duplicated", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, slices.Insert(f, 6, f[5]), pub
		}, 7, 5, "fragment 7 of the file (segment 2, fragment 3 of 5, segment start 2026-11-29T09:06:00Z) is a copy of fragment 6 of the file: fragment repeated or moved"},
		{"one duplicated at the end", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, append(f, f[12]), pub
		}, 14, 0, "the file has 14 fragments but the manifest lists 13 (extra fragment at the end of the file)"},
		{"foreign fragment inserted", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, slices.Insert(f, 2, foreign), pub
		}, 3, 4, "fragment 3 of the file (before segment 1, fragment 5 of 6, segment start 2026-11-29T09:05:00Z) is not in the manifest: fragment inserted (the file has 14 fragments but the manifest lists 13)"},
		{"fragment replaced", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			f[8] = foreign
			return m, f, pub
		}, 9, 5, "fragment 9 of the file (segment 2, fragment 5 of 5, segment start 2026-11-29T09:06:00Z): hash does not match the recording"},
		{"manifest hash of an exported fragment", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[1].Fragments[2][0] ^= 1
			return m, f, pub
		}, 0, 5, "segment 2: its fragment hashes do not give the segment hash in chain entry 5 (manifest altered)"},
		{"manifest hash of a fragment not exported", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[0].Fragments[0][31] ^= 1
			return m, f, pub
		}, 0, 4, "segment 1: its fragment hashes do not give the segment hash in chain entry 4 (manifest altered)"},
		{"fragment replaced and its manifest hash too", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			f[12] = foreign
			m.Segments[2].Fragments[3] = FragmentHash(foreign)
			return m, f, pub
		}, 0, 6, "segment 3: its fragment hashes do not give the segment hash in chain entry 6 (manifest altered)"},
		{"count raised", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[2].Count++
			return m, f, pub
		}, 14, 6, "the file has 13 fragments but the manifest lists 14 (fragment missing from segment 3, fragment 5 of 7"},
		{"first moved", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[0].First--
			return m, f, pub
		}, 1, 4, "fragment 1 of the file (segment 1, fragment 2 of 6, segment start 2026-11-29T09:05:00Z) is the manifest's fragment 2"},
		{"segment points at another entry", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[1].ChainSeq = 6
			return m, f, pub
		}, 0, 6, "segment 2: its fragment hashes do not give the segment hash in chain entry 6 (manifest altered)"},
		{"segment repeated", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments = append(m.Segments, m.Segments[2])
			return m, append(f, f[9:]...), pub
		}, 0, 6, "segment 4: chain entry 6 does not come after segment 3's entry 6 (segments out of order or repeated)"},
		{"segment points at a run start", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[2].ChainSeq = 9
			return m, f, pub
		}, 0, 9, "segment 3: chain entry 9 is a run_start entry, not a segment"},
		{"segments reordered", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[1], m.Segments[2] = m.Segments[2], m.Segments[1]
			return m, slices.Concat(f[:4], f[9:], f[4:9]), pub
		}, 0, 5, "segment 3: chain entry 5 does not come after segment 2's entry 6 (segments out of order or repeated)"},
		{"segment before the chain", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[0].ChainSeq = 2
			return m, f, pub
		}, 0, 2, "segment 1: chain entry 2 is not in the manifest's chain, entries 4 to 10"},
		{"chain's last entries cut", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Chain = m.Chain[:len(m.Chain)-2]
			return m, f, pub
		}, 0, 8, "the chain ends at entry 8 but the signed head is entry 10 (chain truncated)"},
		{"chain's first entry cut", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Chain = m.Chain[1:]
			return m, f, pub
		}, 0, 4, "segment 1: chain entry 4 is not in the manifest's chain, entries 5 to 10 (chain truncated or manifest altered)"},
		{"chain entry removed", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Chain = slices.Delete(m.Chain, 3, 4)
			return m, f, pub
		}, 0, 8, "chain entry 8 follows entry 6 (entry 7 missing)"},
		{"chain entry appended", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			e := m.Chain[len(m.Chain)-1]
			e.Seq, e.Prev = e.Seq+1, e.Hash
			e.Hash = e.ComputeHash()
			m.Chain = append(m.Chain, e)
			return m, f, pub
		}, 0, 11, "the chain goes on to entry 11 past the signed head, entry 10 (entries appended)"},
		{"head signature", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Head.Signature[10] ^= 4
			return m, f, pub
		}, 0, 10, "head signature does not verify with the recorder key"},
		{"head seq", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Head.Seq = 8
			m.Head.Hash = m.Chain[4].Hash
			return m, f, pub
		}, 0, 8, "head signature does not verify with the recorder key"},
		{"head time", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Head.SignedAt = m.Head.SignedAt.Add(time.Hour)
			return m, f, pub
		}, 0, 10, "head signature does not verify with the recorder key"},
		{"recorder key swapped", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.RecorderKey = PublicKeyString(otherPub)
			return m, f, nil
		}, 0, 10, "head signature does not verify with the recorder key"},
		{"another key expected", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return m, f, otherPub
		}, 0, 0, fmt.Sprintf("recorder key is %s (fingerprint 21fe-31df-a154-a261) but --key says %s (fingerprint %s)",
			PublicKeyString(pub), PublicKeyString(otherPub), KeyFingerprint(otherPub))},
		{"everything rewritten and signed with another key", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			f[0] = foreign
			m.Segments[0].Fragments[2] = FragmentHash(foreign)
			m.Chain[0].SegmentHash = SegmentHash(m.Segments[0].Fragments)
			rehash(m.Chain, 0)
			m.Head.Hash = m.Chain[len(m.Chain)-1].Hash
			SignHead(otherKey, &m.Head)
			m.RecorderKey = PublicKeyString(otherPub)
			return m, f, pub
		}, 0, 0, "recorder key is " + PublicKeyString(otherPub)},
		{"manifest camera", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Camera = "yard"
			return m, f, pub
		}, 0, 10, `the signed head is for camera "door" stream "main", the manifest for camera "yard" stream "main"`},
		{"manifest stream", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Stream = "sub"
			return m, f, pub
		}, 0, 10, `the manifest for camera "door" stream "sub"`},
		{"chain of another camera, signed", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			for i := range m.Chain {
				m.Chain[i].Camera = "yard"
			}
			rehash(m.Chain, 0)
			m.Head.Hash = m.Chain[len(m.Chain)-1].Hash
			SignHead(r.key, &m.Head)
			return m, f, pub
		}, 0, 4, `chain entry 4 is for camera "yard" stream "main", the manifest for camera "door" stream "main"`},
		{"version", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Version = 3
			return m, f, pub
		}, 0, 0, "manifest: version 3, this verifier knows versions 1 and 2"},
		{"count past the segment", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			m.Segments[0].Count = 5
			return m, f, pub
		}, 0, 0, "manifest: segment 1: first 2 count 5 do not lie within its 6 fragments"},
		{"no manifest", func(m *Manifest, f [][]byte) (*Manifest, [][]byte, ed25519.PublicKey) {
			return nil, f, pub
		}, 0, 0, "the file has no manifest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m0, f0 := r.standard(t)
			m, f, want := c.edit(clone(t, m0), slices.Clone(f0))
			p := problem(t, m, f, want)
			if !strings.Contains(p.Msg, c.msg) || p.Fragment != c.fragment || p.ChainSeq != c.seq {
				t.Errorf("problem at fragment %d, entry %d: %q\nwant at fragment %d, entry %d: %q", p.Fragment, p.ChainSeq, p.Msg, c.fragment, c.seq, c.msg)
			}
		})
	}
}

// TestVerifyEvidenceChainEdits edits every field of every chain entry of
// the manifest: as is, re-hashed (caught by the next entry's prev or the
// head) and with the rest of the chain re-hashed (caught by the head).
func TestVerifyEvidenceChainEdits(t *testing.T) {
	r := newRecording(t, 2)
	m0, f := r.standard(t)
	for i := range m0.Chain {
		seq := m0.Chain[i].Seq
		for name, edit := range fieldEdits() {
			t.Run(fmt.Sprintf("entry %d %s", seq, name), func(t *testing.T) {
				m := clone(t, m0)
				edit(&m.Chain[i])
				p := problem(t, m, f, nil)
				if want := fmt.Sprintf("chain entry %d: hash does not match its contents (altered)", m.Chain[i].Seq); p.Msg != want {
					t.Errorf("%q, want %q", p.Msg, want)
				}
				// Seq, camera and stream edits may be reported as a gap or
				// as another camera first.
				loose := name == "seq" || name == "camera" || name == "stream" || name == "boundary"

				m.Chain[i].Hash = m.Chain[i].ComputeHash()
				p = problem(t, m, f, nil)
				want := fmt.Sprintf("chain entry %d: prev does not match entry %d", seq+1, seq)
				switch {
				case loose:
					want = "chain entry "
				case name == "prev" && i > 0:
					want = fmt.Sprintf("chain entry %d: prev does not match entry %d", seq, seq-1)
				case i == len(m.Chain)-1:
					want = fmt.Sprintf("chain entry %d does not match the signed head (altered and re-hashed)", seq)
				}
				if !strings.Contains(p.Msg, want) || p.ChainSeq == 0 {
					t.Errorf("re-hashed: %q, want %q", p.Msg, want)
				}

				if name == "prev" && i > 0 {
					return // re-hashing the rest would restore prev
				}
				rehash(m.Chain, i)
				p = problem(t, m, f, nil)
				want = "chain entry 10 does not match the signed head (altered and re-hashed)"
				if loose {
					want = "chain entry "
				}
				if !strings.Contains(p.Msg, want) || p.ChainSeq == 0 {
					t.Errorf("chain re-hashed: %q, want %q", p.Msg, want)
				}
			})
		}
		m := clone(t, m0)
		m.Chain[i].Hash[0] ^= 1
		if p := problem(t, m, f, nil); p.ChainSeq != seq || !strings.Contains(p.Msg, "hash does not match its contents") {
			t.Errorf("entry %d, hash: %q", seq, p.Msg)
		}
	}
}

func TestVerifyEvidenceNotes(t *testing.T) {
	r := newRecording(t, 5) // entry 7 deletes segment C
	pub := r.key.Public().(ed25519.PublicKey)
	m, f := r.export(t, sel{4, 0, 5}, sel{6, 1, 6}, sel{8, 0, 3}, sel{10, 0, 1})
	rep := mustVerify(t, m, f, pub)
	want := []string{
		"segment 1 (chain entry 4): its last 1 of 6 fragments are not in the file",
		"segment 2 (chain entry 6): its first 1 of 7 fragments are not in the file",
		"chain entry 5: segment 2026-11-29T09:06:00Z to 2026-11-29T09:07:00Z is not in the file; deleted at 2026-11-29T09:08:30Z (chain entry 7): retention",
		"chain entry 9: the recording restarted at 2026-11-29T09:20:00Z (gap before it)",
	}
	if !slices.Equal(rep.Notes, want) {
		t.Errorf("Notes:\n%s\nwant\n%s", strings.Join(rep.Notes, "\n"), strings.Join(want, "\n"))
	}
	if !rep.SegmentsTo.Equal(t0.Add(21 * time.Minute)) {
		t.Errorf("SegmentsTo = %v", rep.SegmentsTo)
	}
}
