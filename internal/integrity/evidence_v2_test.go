package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifyBytes runs VerifyFile on a file in memory.
func verifyBytes(t *testing.T, file []byte, want ed25519.PublicKey) (Report, error) {
	t.Helper()
	rep, _, err := VerifyFile(bytes.NewReader(file), int64(len(file)), want)
	return rep, err
}

// TestVerifyFileV2Intact: an untouched version 2 export verifies and
// reports exactly the time its fragments cover, the parts and the gaps.
func TestVerifyFileV2Intact(t *testing.T) {
	r := newRecording(t, 2)
	pub := r.key.Public().(ed25519.PublicKey)
	m, frags := r.standardV2(t)
	rep, err := verifyBytes(t, exportFile(t, m, frags), pub)
	if err != nil {
		t.Fatal(err)
	}
	// B's fragments last 10 s (from its third: 09:05:20), D's 60/7 s (4 of them).
	from, to := t0.Add(5*time.Minute+20*time.Second), t0.Add(7*time.Minute+4*time.Minute/7)
	if rep.Version != 2 || !rep.Covered.From.Equal(from) || !rep.Covered.To.Equal(to) || rep.Fragments != 13 ||
		rep.Part != 1 || len(rep.Parts) != 1 || len(rep.Gaps) != 0 || len(rep.Notes) != 0 {
		t.Errorf("Report %+v, want covered %s to %s", rep, from, to)
	}
	if rep.Requested != rep.Covered {
		t.Errorf("Requested %+v", rep.Requested)
	}

	// Two parts around a gap, and the segment being written: all signed
	// and reported as they are.
	parts := []Span{{t0.Add(5 * time.Minute), t0.Add(9 * time.Minute)}, {t0.Add(20 * time.Minute), t0.Add(20*time.Minute + 30*time.Second)}}
	gaps := []Gap{{t0.Add(9 * time.Minute), t0.Add(20 * time.Minute), GapNoRecording},
		{t0.Add(20*time.Minute + 30*time.Second), t0.Add(25 * time.Minute), GapNotSealed}}
	m2, f2 := r.exportV2(t, parts, gaps, sel{4, 0, 6}, sel{5, 0, 5}, sel{6, 0, 7}, sel{8, 0, 3})
	m2.To = t0.Add(25 * time.Minute)
	if err := m2.Sign(r.key); err != nil {
		t.Fatal(err)
	}
	rep, err = verifyBytes(t, exportFile(t, m2, f2), pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Parts) != 2 || !slices.Equal(rep.Gaps, gaps) || !rep.Covered.To.Equal(t0.Add(9*time.Minute)) {
		t.Errorf("Report %+v", rep)
	}
}

// cutFile returns the export file with the fragments for which drop is
// true left out (the manifest untouched).
func cutFile(t *testing.T, m *Manifest, frags [][]byte, drop func(i int) bool) []byte {
	t.Helper()
	var kept [][]byte
	for i, f := range frags {
		if !drop(i) {
			kept = append(kept, f)
		}
	}
	return exportFile(t, m, kept)
}

// fragStarts returns the wall start of each file fragment of m.
func fragStarts(m *Manifest) []time.Time {
	var out []time.Time
	for k, s := range m.Segments {
		for j := s.First; j < s.First+s.Count; j++ {
			out = append(out, m.fragTime(k, j))
		}
	}
	return out
}

// TestVerifyFileV2Cuts cuts a version 2 export at its start, its end and
// in the middle, reorders it and adds boxes: each fails, naming the first
// fragment missing and its time or the box; rewriting the manifest to
// match the cut breaks its signature.
func TestVerifyFileV2Cuts(t *testing.T) {
	r := newRecording(t, 2)
	pub := r.key.Public().(ed25519.PublicKey)
	m, frags := r.standardV2(t)
	starts := fragStarts(m)
	cov := m.covered()
	box := func(typ string, n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+n))
		return append(append(b, typ...), make([]byte, n)...)
	}
	whole := exportFile(t, m, frags)
	manEnd := len(fakeInit) + int(binary.BigEndian.Uint32(whole[len(fakeInit):]))
	cases := []struct {
		name, file, msg string
	}{
		{"first 15 s cut", string(cutFile(t, m, frags, func(i int) bool { return starts[i].Before(cov.From.Add(15 * time.Second)) })),
			"fragment 1 of the file should be segment 1, fragment 3 of 6, at 2026-11-29T09:05:20Z, but is the manifest's fragment 3: 2 fragments missing from there on (the file has 11 fragments but the manifest lists 13)"},
		{"first fragment cut", string(cutFile(t, m, frags, func(i int) bool { return i == 0 })),
			"fragment 1 of the file should be segment 1, fragment 3 of 6, at 2026-11-29T09:05:20Z, but is the one after it: fragment missing"},
		{"last 30 s cut", string(cutFile(t, m, frags, func(i int) bool { return !starts[i].Before(cov.To.Add(-30 * time.Second)) })),
			"the file has 10 fragments but the manifest lists 13 (fragment missing from segment 3, fragment 2 of 7, at 2026-11-29T09:07:08.571428571Z on)"},
		{"a middle minute cut", string(cutFile(t, m, frags, func(i int) bool { return i >= 4 && i < 9 })),
			"fragment 5 of the file should be segment 2, fragment 1 of 5, at 2026-11-29T09:06:00Z, but is the manifest's fragment 10: 5 fragments missing from there on (the file has 8 fragments but the manifest lists 13)"},
		{"two fragments swapped", string(exportFile(t, m, func() [][]byte {
			f := slices.Clone(frags)
			f[5], f[6] = f[6], f[5]
			return f
		}())), "fragment 6 of the file (segment 2, fragment 2 of 5, at 2026-11-29T09:06:12Z) is the manifest's fragment 7 (segment 2, fragment 3 of 5, at 2026-11-29T09:06:24Z): fragments out of order"},
		{"free box at the end", string(whole) + string(box("free", 4)),
			`top-level box "free" at offset ` + itoa(len(whole)) + ` after the fragments began`},
		{"unknown uuid box after the manifest", string(whole[:manEnd]) + string(box("uuid", 20)) + string(whole[manEnd:]),
			"top-level box uuid 0000000000000000000000000000000"},
		{"second moov after the fragments", string(whole) + string(fakeInit[16:]),
			`top-level box "moov" at offset ` + itoa(len(whole)) + ` after the fragments began`},
		{"manifest moved before moov", string(fakeInit[:16]) + string(whole[len(fakeInit):manEnd]) + string(fakeInit[16:]) + string(whole[manEnd:]),
			`top-level box manifest at offset 16 where the exporter writes moov`},
		{"mdat alone", string(whole) + string(box("mdat", 4)), `top-level box "mdat" at offset`},
		{"truncated", string(whole[:len(whole)-3]), "past the end of the file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := verifyBytes(t, []byte(c.file), pub)
			if err == nil || rep.OK || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("VerifyFile = %v\nwant an error with %q", err, c.msg)
			}
		})
	}

	// The manifest rewritten to match a cut (attacker without the key):
	// its signature no longer verifies.
	const sigMsg = "the manifest's signature does not verify with the recorder key"
	for name, edit := range map[string]func(m *Manifest, f [][]byte) [][]byte{
		"last fragments cut, count lowered": func(m *Manifest, f [][]byte) [][]byte {
			m.Segments[2].Count, m.Segments[2].StartsNS = 1, m.Segments[2].StartsNS[:2]
			m.Parts[0].To = m.covered().To
			return f[:10]
		},
		"first fragments cut, first raised": func(m *Manifest, f [][]byte) [][]byte {
			s := &m.Segments[0]
			s.First, s.Count, s.StartsNS = 4, 2, s.StartsNS[2:]
			m.Parts[0].From = m.covered().From
			return f[2:]
		},
		"a middle segment dropped": func(m *Manifest, f [][]byte) [][]byte {
			m.Segments = slices.Delete(m.Segments, 1, 2)
			return slices.Delete(f, 4, 9)
		},
		"requested range widened": func(m *Manifest, f [][]byte) [][]byte {
			m.From = m.From.Add(-time.Hour)
			return f
		},
		"gap hidden": func(m *Manifest, f [][]byte) [][]byte {
			m.Gaps = nil
			return f
		},
	} {
		t.Run(name, func(t *testing.T) {
			m2, f2 := r.exportV2(t, nil, []Gap{{t0.Add(7 * time.Minute), t0.Add(8 * time.Minute), GapNotSealed}}, sel{4, 2, 4}, sel{5, 0, 5}, sel{6, 0, 4})
			c := clone(t, m2)
			f := edit(c, slices.Clone(f2))
			_, err := verifyBytes(t, exportFile(t, c, f), pub)
			if err == nil || !strings.Contains(err.Error(), sigMsg) {
				t.Fatalf("VerifyFile = %v, want %q", err, sigMsg)
			}
		})
	}

	// Re-signed with another key: refused with --key, and without it the
	// report names the other key.
	_, other, _ := ed25519.GenerateKey(nil)
	c := clone(t, m)
	c.Segments[2].Count, c.Segments[2].StartsNS = 1, c.Segments[2].StartsNS[:2]
	c.Parts[0].To = c.covered().To
	c.To = c.Parts[0].To
	SignHead(other, &c.Head)
	if err := c.Sign(other); err != nil {
		t.Fatal(err)
	}
	file := exportFile(t, c, frags[:10])
	if _, err := verifyBytes(t, file, pub); err == nil || !strings.Contains(err.Error(), "but --key says "+PublicKeyString(pub)) {
		t.Errorf("re-signed, --key: %v", err)
	}
	if rep, err := verifyBytes(t, file, nil); err != nil || rep.Key != PublicKeyString(other.Public().(ed25519.PublicKey)) {
		t.Errorf("re-signed, no --key: %+v, %v", rep, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestVerifyFileV2Inconsistent: a manifest signed by the recorder's key
// but inconsistent (a bug, not an attack) is refused too.
func TestVerifyFileV2Inconsistent(t *testing.T) {
	r := newRecording(t, 2)
	for name, c := range map[string]struct {
		parts []Span
		sels  []sel
		msg   string
	}{
		"part is not what the fragments cover": {[]Span{{t0, t0.Add(time.Hour)}}, []sel{{4, 2, 4}},
			"the file's fragments cover 2026-11-29T09:05:20Z to 2026-11-29T09:06:00Z but its part 1 says 2026-11-29T09:00:00Z to 2026-11-29T10:00:00Z"},
		"a hole inside the file": {nil, []sel{{4, 0, 6}, {6, 0, 7}},
			"chain entry 5: segment 2026-11-29T09:06:00Z is inside the file's range but not in the file"},
		"a restart inside the file": {nil, []sel{{8, 0, 3}, {10, 0, 2}},
			"chain entry 9: the recording restarted inside the file's range"},
		"a middle segment partly in the file": {nil, []sel{{4, 0, 6}, {5, 1, 4}, {6, 0, 7}},
			"segment 2 (chain entry 5) is only partly in the file but is not at its start or end"},
		"a stretch in neither a part nor a gap": {[]Span{{t0.Add(5 * time.Minute), t0.Add(6 * time.Minute)}, {t0.Add(7 * time.Minute), t0.Add(8 * time.Minute)}}, []sel{{4, 0, 6}},
			"2026-11-29T09:06:00Z to 2026-11-29T09:07:00Z of the requested range is in neither a part nor a gap"},
	} {
		t.Run(name, func(t *testing.T) {
			m, f := r.exportV2(t, c.parts, nil, c.sels...)
			_, err := verifyBytes(t, exportFile(t, m, f), nil)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("VerifyFile = %v, want %q", err, c.msg)
			}
		})
	}
}

// TestVerifyFileNotEvidence: files without a manifest are not evidence
// exports, whatever else they hold; a read failure is a *ReadError.
func TestVerifyFileNotEvidence(t *testing.T) {
	progressive := append(append([]byte(nil), fakeInit...), 0, 0, 0, 12, 'm', 'd', 'a', 't', 1, 2, 3, 4)
	for name, b := range map[string][]byte{
		"plain MP4":       progressive,
		"mdat first":      append([]byte{0, 0, 0, 8, 'm', 'd', 'a', 't'}, fakeInit...),
		"empty":           nil,
		"not MP4":         []byte("hello, world, this is text"),
		"fragmented, raw": append(append([]byte(nil), fakeInit...), fakeFragmentBytes()...),
	} {
		if _, _, err := VerifyFile(bytes.NewReader(b), int64(len(b)), nil); !errors.Is(err, ErrNotEvidence) {
			t.Errorf("%s: %v, want ErrNotEvidence", name, err)
		}
	}
	r := newRecording(t, 2)
	m, f := r.standardV2(t)
	file := exportFile(t, m, f)
	var re *ReadError
	if _, _, err := VerifyFile(bytes.NewReader(file[:40]), int64(len(file)), nil); !errors.As(err, &re) {
		t.Errorf("short reader: %v, want a *ReadError", err)
	}
	// A version 1 export verifies, saying it is version 1.
	m1, f1 := r.standard(t)
	if rep, err := verifyBytes(t, exportFile(t, m1, f1), nil); err != nil || rep.Version != 1 || !rep.Covered.From.IsZero() {
		t.Errorf("version 1: %+v, %v", rep, err)
	}
}

func fakeFragmentBytes() []byte {
	return []byte{0, 0, 0, 8, 'm', 'o', 'o', 'f', 0, 0, 0, 8, 'm', 'd', 'a', 't'}
}
