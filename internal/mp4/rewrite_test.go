package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
)

// tbox builds a box of type typ around the concatenated parts.
func tbox(typ string, parts ...[]byte) []byte {
	body := slices.Concat(parts...)
	return slices.Concat(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), []byte(typ), body)
}

// tfull builds a full box.
func tfull(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	return tbox(typ, append([]byte{version, byte(flags >> 16), byte(flags >> 8), byte(flags)}, slices.Concat(parts...)...))
}

func u32b(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// Offsets in a fragment AppendFragment wrote: moof(8) mfhd(16) traf(8)
// tfhd(16) tfdt(20) trun.
const (
	fragTrafAt = 24
	fragTfdtAt = 48
	fragTrunAt = 68
)

// tfdtToV0 rewrites a fragment AppendFragment wrote (moof+mdat) to carry a
// version 0 tfdt, as older muxers write: 4 bytes shorter, with the moof and
// traf sizes and the trun data_offset adjusted.
func tfdtToV0(t testing.TB, frag []byte) []byte {
	t.Helper()
	if string(frag[fragTfdtAt+4:fragTfdtAt+8]) != "tfdt" || frag[fragTfdtAt+8] != 1 || string(frag[fragTrunAt+4:fragTrunAt+8]) != "trun" {
		t.Fatal("fragment layout is not AppendFragment's")
	}
	base := binary.BigEndian.Uint64(frag[fragTfdtAt+12:])
	if base > math.MaxUint32 {
		t.Fatalf("base %d does not fit a version 0 tfdt", base)
	}
	out := slices.Concat(frag[:fragTfdtAt], tfull("tfdt", 0, 0, u32b(uint32(base))), frag[fragTrunAt:])
	for _, at := range []int{0, fragTrafAt, fragTrunAt - 4 + 16} { // moof, traf, data_offset
		binary.BigEndian.PutUint32(out[at:], binary.BigEndian.Uint32(out[at:])-4)
	}
	return out
}

// rewriteFile rewrites every fragment of the file f (init + fragments)
// with RewriteMoof, sequence numbers from seq0 and bases from base0 in steps
// of step90k, and returns the new file.
func rewriteFile(t *testing.T, f []byte, seq0 uint32, base0, step90k uint64) ([]byte, *FileInfo) {
	t.Helper()
	info, err := ScanFile(bytes.NewReader(f), int64(len(f)))
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(f[:info.InitEnd])
	for i, fr := range info.Fragments {
		moofLen := int64(binary.BigEndian.Uint32(f[fr.Offset:]))
		moof, err := RewriteMoof(f[fr.Offset:fr.Offset+moofLen], seq0+uint32(i), base0+uint64(i)*step90k)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		out = append(append(out, moof...), f[fr.Offset+moofLen:fr.Offset+fr.Size]...)
	}
	return out, info
}

// sampleBytes returns the data of every sample of every fragment of f.
func sampleBytes(t *testing.T, f []byte) (*FileInfo, [][]byte, []SampleInfo) {
	t.Helper()
	info, err := ScanFile(bytes.NewReader(f), int64(len(f)))
	if err != nil {
		t.Fatal(err)
	}
	if info.ValidEnd != int64(len(f)) {
		t.Fatalf("ValidEnd %d of %d", info.ValidEnd, len(f))
	}
	var (
		data [][]byte
		all  []SampleInfo
	)
	for _, fr := range info.Fragments {
		ss, err := ReadSamples(bytes.NewReader(f), fr)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			data = append(data, f[s.Offset:s.Offset+int64(s.Size)])
		}
		all = append(all, ss...)
	}
	return info, data, all
}

// TestRewriteMoof renumbers and re-times the fragments of files written by
// AppendFragment: the scan must see the new sequence numbers and bases and
// the very same samples at the very same offsets.
func TestRewriteMoof(t *testing.T) {
	for name, f := range map[string][]byte{
		"fixture":                 fixtureFile(t, media.CodecH264).data,
		"small with negative CTS": smallFile(t),
	} {
		t.Run(name, func(t *testing.T) {
			const base0, step = 1<<40 + 5, 12345
			out, orig := rewriteFile(t, f, 1000, base0, step)
			if len(out) != len(f) {
				t.Fatalf("file grew from %d to %d bytes", len(f), len(out))
			}
			diff := 0
			for i := range f {
				if f[i] != out[i] {
					diff++
				}
			}
			if diff > 12*len(orig.Fragments) {
				t.Errorf("%d bytes changed, more than seq and base", diff)
			}
			_, _, wantSamples := sampleBytes(t, f)
			info, _, gotSamples := sampleBytes(t, out)
			for i, fr := range info.Fragments {
				if fr.Seq != 1000+uint32(i) || fr.BaseDecodeTime90k != base0+uint64(i)*step ||
					fr.Offset != orig.Fragments[i].Offset || fr.Size != orig.Fragments[i].Size {
					t.Errorf("fragment %d: %+v", i, fr)
				}
			}
			if !slices.Equal(gotSamples, wantSamples) {
				t.Error("samples moved")
			}
		})
	}
}

// TestRewriteMoofV0 rewrites fragments whose tfdt is version 0: each moof
// grows by 4 bytes and the samples must still be found, intact, after it.
func TestRewriteMoofV0(t *testing.T) {
	for name, f := range map[string][]byte{
		"fixture":                 fixtureFile(t, media.CodecH264).data,
		"small with negative CTS": smallFile(t),
	} {
		t.Run(name, func(t *testing.T) {
			info, wantData, wantSamples := sampleBytes(t, f)
			v0 := slices.Clone(f[:info.InitEnd])
			for _, fr := range info.Fragments {
				v0 = append(v0, tfdtToV0(t, f[fr.Offset:fr.Offset+fr.Size])...)
			}
			// The hand-made version 0 file holds the same samples.
			if _, data, _ := sampleBytes(t, v0); !slices.EqualFunc(data, wantData, bytes.Equal) {
				t.Fatal("version 0 file does not hold the samples")
			}
			out, _ := rewriteFile(t, v0, 7, 1<<33, 3600)
			if len(out) != len(f) {
				t.Fatalf("rewritten file is %d bytes, want %d", len(out), len(f))
			}
			got, data, gotSamples := sampleBytes(t, out)
			if !slices.EqualFunc(data, wantData, bytes.Equal) || !slices.Equal(gotSamples, wantSamples) {
				t.Error("samples differ after rewriting")
			}
			for i, fr := range got.Fragments {
				if fr.Seq != 7+uint32(i) || fr.BaseDecodeTime90k != 1<<33+uint64(i)*3600 {
					t.Errorf("fragment %d: seq %d base %d", i, fr.Seq, fr.BaseDecodeTime90k)
				}
			}
			// Rewriting is idempotent once the tfdt is version 1.
			if again, _ := rewriteFile(t, out, 7, 1<<33, 3600); !bytes.Equal(again, out) {
				t.Error("second rewrite changed the file")
			}
		})
	}
}

// Boxes for hand-made moofs.
var (
	tMfhd  = tfull("mfhd", 0, 0, u32b(3))
	tTfhd  = tfull("tfhd", 0, tfhdDefaultBaseIsMoof, u32b(TrackID))
	tTfdt0 = tfull("tfdt", 0, 0, u32b(90000))
	tTfdt1 = tfull("tfdt", 1, 0, u32b(0, 90000))
)

// trunWith returns a version 1 trun with sizes, key flags and optionally a
// data_offset.
func trunWith(dataOffset *int32, sizes ...uint32) []byte {
	flags := uint32(trunSize | trunFlags | trunDuration)
	var body []byte
	body = append(body, u32b(uint32(len(sizes)))...)
	if dataOffset != nil {
		flags |= trunDataOffset
		body = append(body, u32b(uint32(*dataOffset))...)
	}
	for _, s := range sizes {
		body = append(body, u32b(3600, s, flagsKey)...)
	}
	return tfull("trun", 1, flags, body)
}

func i32p(v int32) *int32 { return &v }

// multiTrunFragment is a moof with a version 0 tfdt, three truns (the
// second without data_offset, the third after a gap), a pssh-like box in
// the moof and an sbgp-like box in the traf, followed by its mdat. With
// largeHeader the moof's box header uses a 64-bit size.
func multiTrunFragment(largeHeader bool) (moof, mdat []byte) {
	build := func(off int32) []byte {
		children := slices.Concat(tMfhd, tbox("traf", tTfhd, tTfdt0,
			trunWith(i32p(off), 2, 3), trunWith(nil, 4), trunWith(i32p(off+2+3+4+5), 6),
			tbox("sbgp", []byte("xyz"))), tbox("pssh", []byte("opaque")))
		if largeHeader {
			return slices.Concat(u32b(1), []byte("moof"), binary.BigEndian.AppendUint64(nil, uint64(16+len(children))), children)
		}
		return tbox("moof", children)
	}
	moof = build(0)
	moof = build(int32(len(moof) + 8))
	payload := []byte("aabbbccccGGGGGdddddd") // GGGGG: the gap
	return moof, tbox("mdat", payload)
}

// TestRewriteMoofMultiTrun checks that every data_offset moves with the moof
// and everything the rewrite does not know is kept, for a moof with a 32-bit
// size (which grows by 4 bytes) and one with a 64-bit size (written back
// with a 32-bit one: 8 bytes shorter, 4 longer).
func TestRewriteMoofMultiTrun(t *testing.T) {
	for _, large := range []bool{false, true} {
		moof, mdat := multiTrunFragment(large)
		read := func(moof []byte) []string {
			f := append(slices.Clone(moof), mdat...)
			ss, err := ReadSamples(bytes.NewReader(f), Fragment{Offset: 0, Size: int64(len(f))})
			if err != nil {
				t.Fatal(err)
			}
			var data []string
			for _, s := range ss {
				data = append(data, string(f[s.Offset:s.Offset+int64(s.Size)]))
			}
			return data
		}
		want := []string{"aa", "bbb", "cccc", "dddddd"}
		if got := read(moof); !slices.Equal(got, want) {
			t.Fatalf("large %v: hand-made fragment reads %q", large, got)
		}
		out, err := RewriteMoof(moof, 9, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := len(moof) + 4
		if large {
			wantLen -= 8
		}
		if len(out) != wantLen || !bytes.Contains(out, []byte("opaque")) || !bytes.Contains(out, []byte("sbgpxyz")) {
			t.Errorf("large %v: rewritten moof of %d bytes (from %d) lost boxes", large, len(out), len(moof))
		}
		if got := read(out); !slices.Equal(got, want) {
			t.Errorf("large %v: rewritten fragment reads %q, want %q", large, got, want)
		}
	}
}

// rewriteErrorCases are moofs RewriteMoof must refuse, with what the error
// says; FuzzRewriteMoof starts from them too.
func rewriteErrorCases() []struct {
	name, want string
	moof       []byte
} {
	moofOf := func(children ...[]byte) []byte { return tbox("moof", children...) }
	trafOf := func(children ...[]byte) []byte { return tbox("traf", children...) }
	good := trunWith(i32p(100), 1)
	v0OverflowMoof := moofOf(tMfhd, trafOf(tTfhd, tTfdt0, trunWith(i32p(math.MaxInt32-2), 1)))
	return []struct {
		name, want string
		moof       []byte
	}{
		{"empty", "not exactly one moof", nil},
		{"garbage", "out of range", []byte("this is not a box at all")},
		{"short", "truncated box header", []byte{0, 0, 0}},
		{"mdat", "not exactly one moof", tbox("mdat", []byte("x"))},
		{"moof and mdat", "not exactly one moof", append(moofOf(tMfhd, trafOf(tTfhd, tTfdt1, good)), tbox("mdat")...)},
		{"truncated", "out of range", moofOf(tMfhd, trafOf(tTfhd, tTfdt1, good))[:40]},
		{"no mfhd", "without mfhd", moofOf(trafOf(tTfhd, tTfdt1, good))},
		{"no traf", "without mfhd or traf", moofOf(tMfhd)},
		{"two mfhd", "more than one mfhd", moofOf(tMfhd, tMfhd, trafOf(tTfhd, tTfdt1, good))},
		{"two traf", "more than one traf", moofOf(tMfhd, trafOf(tTfhd, tTfdt1, good), trafOf(tTfhd, tTfdt1, good))},
		{"short mfhd", "short mfhd", moofOf(tfull("mfhd", 0, 0), trafOf(tTfhd, tTfdt1, good))},
		{"bad child size", "out of range", moofOf(tMfhd, []byte{0, 0, 0, 99, 't', 'r', 'a', 'f'})},
		{"no tfhd", "without tfhd", moofOf(tMfhd, trafOf(tTfdt1, good))},
		{"no tfdt", "without tfhd or tfdt", moofOf(tMfhd, trafOf(tTfhd, good))},
		{"two tfhd", "more than one tfhd", moofOf(tMfhd, trafOf(tTfhd, tTfhd, tTfdt1, good))},
		{"two tfdt", "more than one tfdt", moofOf(tMfhd, trafOf(tTfhd, tTfdt1, tTfdt1, good))},
		{"short tfhd", "short tfhd", moofOf(tMfhd, trafOf(tfull("tfhd", 0, 0), tTfdt1, good))},
		{"base data offset", "explicit base_data_offset",
			moofOf(tMfhd, trafOf(tfull("tfhd", 0, tfhdBaseDataOffset, u32b(TrackID, 0, 0)), tTfdt1, good))},
		{"other track", "traf for track 2", moofOf(tMfhd, trafOf(tfull("tfhd", 0, tfhdDefaultBaseIsMoof, u32b(2)), tTfdt1, good))},
		{"tfdt version 2", "tfdt version 2", moofOf(tMfhd, trafOf(tTfhd, tfull("tfdt", 2, 0, u32b(0, 1)), good))},
		{"tfdt v1 short", "tfdt version 1 with 8 bytes", moofOf(tMfhd, trafOf(tTfhd, tfull("tfdt", 1, 0, u32b(1)), good))},
		{"tfdt v0 long", "tfdt version 0 with 12 bytes", moofOf(tMfhd, trafOf(tTfhd, tfull("tfdt", 0, 0, u32b(0, 1)), good))},
		{"short tfdt", "short tfdt", moofOf(tMfhd, trafOf(tTfhd, tbox("tfdt", []byte{1}), good))},
		{"short trun", "short trun", moofOf(tMfhd, trafOf(tTfhd, tTfdt1, tfull("trun", 1, 0)))},
		{"trun without its data_offset", "short trun", moofOf(tMfhd, trafOf(tTfhd, tTfdt1, tfull("trun", 1, trunDataOffset, u32b(0))))},
		{"v0 without data_offset", "first trun has no data_offset", moofOf(tMfhd, trafOf(tTfhd, tTfdt0, trunWith(nil, 1)))},
		{"v0 offset overflow", "overflows", v0OverflowMoof},
		{"too large", "exceeds", make([]byte, maxMoofBox+1)},
	}
}

func TestRewriteMoofErrors(t *testing.T) {
	for _, tc := range rewriteErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RewriteMoof(tc.moof, 1, 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "mp4 rewrite moof: ") || out != nil {
				t.Errorf("got %d bytes, err %v; want an error containing %q", len(out), err, tc.want)
			}
		})
	}
}

// samplesAfter reads the samples of moof as if an mdat followed it,
// returning their offsets relative to the end of the moof.
func samplesAfter(moof []byte) ([]SampleInfo, error) {
	var ss []SampleInfo
	err := forBoxes(moof, func(c childBox) error {
		mdat := boxHeader{typ: typMdat, off: int64(len(moof)), hdrLen: 8, size: 1 << 40}
		_, _, err := parseMoof(c.body, 0, mdat, 0, sampleDefaults{}, func(s SampleInfo) {
			s.Offset -= int64(len(moof))
			ss = append(ss, s)
		})
		return err
	})
	return ss, err
}

// seqBase returns the mfhd sequence number and the version 1 tfdt base of
// a moof RewriteMoof wrote.
func seqBase(moof []byte) (seq uint32, base uint64, err error) {
	err = forBoxes(moof[8:], func(c childBox) error {
		switch c.typ {
		case typMfhd:
			seq = binary.BigEndian.Uint32(c.body[4:])
		case typTraf:
			return forBoxes(c.body, func(c childBox) error {
				if c.typ == typTfdt {
					if c.body[0] != 1 || len(c.body) != 12 {
						return errors.New("tfdt not version 1")
					}
					base = binary.BigEndian.Uint64(c.body[4:])
				}
				return nil
			})
		}
		return nil
	})
	return seq, base, err
}

// FuzzRewriteMoof feeds RewriteMoof arbitrary bytes: it must never panic,
// and whatever it accepts must come out with the new sequence number and
// base, the same samples at the same distance from the end of the moof,
// and unchanged by a second rewrite.
func FuzzRewriteMoof(f *testing.F) {
	small := smallFile(f)
	info, err := ScanFile(bytes.NewReader(small), int64(len(small)))
	if err != nil {
		f.Fatal(err)
	}
	fr := info.Fragments[0]
	moof := small[fr.Offset : fr.Offset+int64(binary.BigEndian.Uint32(small[fr.Offset:]))]
	f.Add(moof)
	v0 := tfdtToV0(f, small[fr.Offset:fr.Offset+fr.Size])
	f.Add(v0[:binary.BigEndian.Uint32(v0)])
	for _, large := range []bool{false, true} {
		multi, _ := multiTrunFragment(large)
		f.Add(multi)
	}
	for _, tc := range rewriteErrorCases() {
		if len(tc.moof) < 1<<16 {
			f.Add(tc.moof)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const seq, base = 0xdeadbeef, 1<<40 + 3
		out, err := RewriteMoof(in, seq, base)
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		again, err := RewriteMoof(out, seq, base)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second rewrite: %v (equal %v)", err, bytes.Equal(again, out))
		}
		if binary.BigEndian.Uint32(out) != uint32(len(out)) || string(out[4:8]) != "moof" {
			t.Fatal("output is not one moof box with a 32-bit size")
		}
		if gotSeq, gotBase, err := seqBase(out); err != nil || gotSeq != seq || gotBase != base {
			t.Fatalf("seq %d base %d (%v)", gotSeq, gotBase, err)
		}
		wantSS, inErr := samplesAfter(in)
		gotSS, err := samplesAfter(out)
		if inErr == nil && (err != nil || !slices.Equal(gotSS, wantSS)) {
			t.Fatalf("samples changed: %v\n got %v\nwant %v", err, gotSS, wantSS)
		}
	})
}
