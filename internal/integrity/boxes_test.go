package integrity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// box returns a box with a 32-bit size.
func box(typ string, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// bigBox returns a box with size 1 and a 64-bit largesize.
func bigBox(typ string, body []byte) []byte {
	b := append(binary.BigEndian.AppendUint32(nil, 1), typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+len(body)))
	return append(b, body...)
}

func manifestBox(payload string) []byte { return box("uuid", []byte(ManifestUUID+payload)) }

// boxCases is the table for TestFindFragments and the seeds of
// FuzzFindFragments.
func boxCases() []struct {
	name     string
	file     []byte
	spans    [][2]int64
	manifest string // "-": none
	err      string
} {
	ftyp := box("ftyp", []byte("isom\x00\x00\x02\x00"))                   // 16 bytes
	moov := box("moov", []byte("0123456789abcdef"))                       // 24
	moof, mdat := box("moof", []byte("mf")), box("mdat", []byte("media")) // 10, 13
	frag := slices.Concat(moof, mdat)                                     // 23
	other := box("uuid", []byte("0123456789abcdefother"))                 // another uuid box
	return []struct {
		name     string
		file     []byte
		spans    [][2]int64
		manifest string
		err      string
	}{
		{"empty file", nil, nil, "-", ""},
		{"init only", slices.Concat(ftyp, moov), nil, "-", ""},
		{"two fragments", slices.Concat(ftyp, moov, frag, frag), [][2]int64{{40, 63}, {63, 86}}, "-", ""},
		{"with manifest", slices.Concat(ftyp, moov, manifestBox(`{"x":1}`), frag), [][2]int64{{71, 94}}, `{"x":1}`, ""},
		{"manifest last", slices.Concat(frag, manifestBox(`{}`)), [][2]int64{{0, 23}}, `{}`, ""},
		{"empty manifest", manifestBox(""), nil, "", ""},
		{"other uuid box", slices.Concat(other, frag), [][2]int64{{29, 52}}, "-", ""},
		{"free between fragments", slices.Concat(frag, box("free", nil), frag), [][2]int64{{0, 23}, {31, 54}}, "-", ""},
		{"64-bit sizes", slices.Concat(bigBox("moof", []byte("mf")), bigBox("mdat", []byte("media"))), [][2]int64{{0, 39}}, "-", ""},
		{"64-bit manifest", bigBox("uuid", []byte(ManifestUUID+"{}")), nil, "{}", ""},
		{"mdat to the end", slices.Concat(moof, []byte{0, 0, 0, 0, 'm', 'd', 'a', 't', 1, 2, 3}), [][2]int64{{0, 21}}, "-", ""},
		{"moof then free", slices.Concat(moof, box("free", nil), mdat), nil, "", `moof box at offset 0 is followed by "free", not mdat`},
		{"moof at the end", slices.Concat(frag, moof), nil, "", "moof box at offset 23 is not followed by mdat"},
		{"mdat alone", slices.Concat(ftyp, mdat), nil, "", "mdat box at offset 16 does not follow a moof"},
		{"mdat twice", slices.Concat(frag, mdat), nil, "", "mdat box at offset 23 does not follow a moof"},
		{"moof to the end", slices.Concat([]byte{0, 0, 0, 0, 'm', 'o', 'o', 'f'}, mdat), nil, "", "moof box at offset 0 is not followed by mdat"},
		{"header cut", slices.Concat(frag, []byte{0, 0, 0}), nil, "", "box header at offset 23 cut short: 3 bytes left"},
		{"box cut", slices.Concat(frag, frag[:20]), nil, "", `box "mdat" at offset 33 has size 13, past the end of the file (43 bytes)`},
		{"mdat cut", frag[:22], nil, "", `box "mdat" at offset 10 has size 13, past the end of the file (22 bytes)`},
		{"size below header", slices.Concat([]byte{0, 0, 0, 7}, []byte("free")), nil, "", "has size 7, smaller than its header"},
		{"largesize below header", slices.Concat([]byte{0, 0, 0, 1}, []byte("free"), make([]byte, 7), []byte{15}), nil, "", "has size 15, smaller than its header"},
		{"largesize huge", slices.Concat([]byte{0, 0, 0, 1}, []byte("mdat"), []byte{0x80, 0, 0, 0, 0, 0, 0, 0}), nil, "", "past the end of the file"},
		{"largesize cut", slices.Concat([]byte{0, 0, 0, 1}, []byte("free"), []byte{0, 0}), nil, "", "64-bit size cut short"},
		{"uuid without user type", box("uuid", []byte("short")), nil, "", "uuid box at offset 0 has size 13, too small for its user type"},
		{"two manifests", slices.Concat(manifestBox("{}"), frag, manifestBox("{}")), nil, "", "two manifest boxes, at offsets 0 and 49"},
		{"binary type", slices.Concat(moof, box("\x00\xffab", nil)), nil, "", `followed by "\x00\xffab", not mdat`},
	}
}

func TestFindFragments(t *testing.T) {
	for _, c := range boxCases() {
		t.Run(c.name, func(t *testing.T) {
			spans, man, err := FindFragments(c.file)
			spans2, man2, err2 := FindFragmentsReader(bytes.NewReader(c.file), int64(len(c.file)))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("FindFragments = %v, want an error with %q", err, c.err)
				}
				if err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("FindFragmentsReader = %v, FindFragments = %v", err2, err)
				}
				return
			}
			if err != nil || err2 != nil {
				t.Fatalf("FindFragments = %v, FindFragmentsReader = %v", err, err2)
			}
			if !slices.Equal(spans, c.spans) || !slices.Equal(spans2, c.spans) {
				t.Errorf("spans %v and %v, want %v", spans, spans2, c.spans)
			}
			if c.manifest == "-" {
				if man != nil || man2 != nil {
					t.Errorf("manifest %q and %q, want none", man, man2)
				}
			} else if man == nil || man2 == nil || string(man) != c.manifest || string(man2) != c.manifest {
				t.Errorf("manifest %q and %q, want %q", man, man2, c.manifest)
			}
		})
	}
}

// sparseFile is a huge file that is all zeros but for a few headers; it
// counts the bytes read.
type sparseFile struct {
	at    map[int64][]byte
	size  int64
	reads int64
}

func (f *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads += int64(len(p))
	clear(p)
	for o, b := range f.at {
		for i := range b {
			if q := o + int64(i) - off; q >= 0 && q < int64(len(p)) {
				p[q] = b[i]
			}
		}
	}
	if n := f.size - off; n < int64(len(p)) {
		return int(max(n, 0)), errors.New("EOF")
	}
	return len(p), nil
}

// TestFindFragmentsReaderReadsHeaders walks a 40 GiB file of 1 GiB
// fragments and checks that only headers are read.
func TestFindFragmentsReaderReadsHeaders(t *testing.T) {
	f := &sparseFile{at: make(map[int64][]byte)}
	const gib = 1 << 30
	var want [][2]int64
	for i := range 40 {
		off := int64(i) * (gib + 16)
		f.at[off] = box("moof", make([]byte, 8))
		f.at[off+16] = binary.BigEndian.AppendUint64(append(binary.BigEndian.AppendUint32(nil, 1), "mdat"...), gib)
		want = append(want, [2]int64{off, off + 16 + gib})
	}
	f.size = 40 * (gib + 16)
	f.at[f.size] = manifestBox("{}")
	f.size += 26
	spans, man, err := FindFragmentsReader(f, f.size)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(spans, want) || string(man) != "{}" {
		t.Fatalf("spans %v, manifest %q", spans[:2], man)
	}
	if f.reads > 80*32+64 {
		t.Errorf("read %d bytes for 80 box headers and a manifest", f.reads)
	}
	// A read error is reported with the offset.
	if _, _, err := FindFragmentsReader(f, f.size+100); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("read past the end: %v", err)
	}
}

func FuzzFindFragments(f *testing.F) {
	for _, c := range boxCases() {
		f.Add(c.file)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		spans, man, err := FindFragments(b)
		spans2, man2, err2 := FindFragmentsReader(bytes.NewReader(b), int64(len(b)))
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("FindFragments: %v, FindFragmentsReader: %v", err, err2)
		}
		if err != nil {
			return
		}
		if !slices.Equal(spans, spans2) || !bytes.Equal(man, man2) || (man == nil) != (man2 == nil) {
			t.Fatal("FindFragments and FindFragmentsReader disagree")
		}
		if len(spans) > len(b)/16 || len(man) > MaxManifestSize {
			t.Fatalf("%d spans, %d-byte manifest from %d bytes", len(spans), len(man), len(b))
		}
		end := int64(0)
		for _, s := range spans {
			if s[0] < end || s[1]-s[0] < 16 || s[1] > int64(len(b)) || string(b[s[0]+4:s[0]+8]) != "moof" {
				t.Fatalf("bad span %v after %d in %d bytes", s, end, len(b))
			}
			end = s[1]
		}
		hashes, err := HashSpans(bytes.NewReader(b), spans)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range spans {
			if hashes[i] != FragmentHash(b[s[0]:s[1]]) {
				t.Fatal("HashSpans differs from FragmentHash")
			}
		}
	})
}
