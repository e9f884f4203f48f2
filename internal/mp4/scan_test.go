package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
)

func fixtureFile(t testing.TB, c media.Codec) builtFile {
	t.Helper()
	name := map[media.Codec]string{media.CodecH264: "main.h264", media.CodecH265: "main.h265"}[c]
	return buildFile(t, c, splitAUs(c, loadFixture(t, name)), 3600, nil)
}

// checkScan compares what ScanFile found with what buildFile wrote.
func checkScan(t *testing.T, f builtFile, info *FileInfo, c media.Codec) {
	t.Helper()
	if info.Track.Codec != c || info.Timescale != Timescale || info.TrackID != TrackID {
		t.Errorf("track %v timescale %d id %d", info.Track.Codec, info.Timescale, info.TrackID)
	}
	if info.InitEnd != int64(f.init) {
		t.Errorf("InitEnd %d, want %d", info.InitEnd, f.init)
	}
	if len(info.Fragments) != len(f.frags) {
		t.Fatalf("%d fragments, want %d", len(info.Fragments), len(f.frags))
	}
	for i, got := range info.Fragments {
		w := f.frags[i]
		keys := 0
		for _, s := range w.samples {
			if s.Key {
				keys++
			}
		}
		if got.Offset != w.offset || got.Size != w.size || got.Seq != uint32(i+1) ||
			got.BaseDecodeTime90k != w.base || got.Dur90k != w.dur || got.Samples != len(w.samples) ||
			got.KeyFrames != keys || got.FirstKey != w.samples[0].Key {
			t.Errorf("fragment %d: got %+v, want %+v (keys %d)", i, got, w, keys)
		}
		ss, err := ReadSamples(bytes.NewReader(f.data), got)
		if err != nil {
			t.Fatalf("ReadSamples %d: %v", i, err)
		}
		pos := w.offset + w.size
		for _, s := range w.samples {
			pos -= int64(s.Size)
		}
		for j, s := range ss {
			ws := w.samples[j]
			if s.Offset != pos || s.Size != ws.Size || s.Dur90k != ws.Dur90k || s.Key != ws.Key || s.CTSOffset90k != ws.CTSOffset90k {
				t.Fatalf("fragment %d sample %d: got %+v, want %+v at %d", i, j, s, ws, pos)
			}
			pos += int64(s.Size)
		}
	}
}

func TestScanRoundTrip(t *testing.T) {
	for _, c := range []media.Codec{media.CodecH264, media.CodecH265} {
		t.Run(string(c), func(t *testing.T) {
			f := fixtureFile(t, c)
			info, err := ScanFile(bytes.NewReader(f.data), int64(len(f.data)))
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, f, info, c)
			if info.ValidEnd != int64(len(f.data)) {
				t.Errorf("ValidEnd %d, want %d", info.ValidEnd, len(f.data))
			}
			if info.Track.Width != 1920 || info.Track.Height != 1080 {
				t.Errorf("size %dx%d", info.Track.Width, info.Track.Height)
			}
			// The init rebuilt from what ScanFile read is the one written.
			init, err := Init(info.Track)
			if err != nil || !bytes.Equal(init, f.data[:f.init]) {
				t.Errorf("Init(scanned track) differs from the written init (err %v)", err)
			}
		})
	}
}

// TestScanTruncation cuts the file at every byte of its last fragment: the
// scan must keep the earlier fragments and end ValidEnd where they end.
func TestScanTruncation(t *testing.T) {
	f := fixtureFile(t, media.CodecH264)
	last := f.frags[len(f.frags)-1]
	prevEnd := last.offset
	// Every cut in the moof and the mdat header (where the box structure
	// is), then every 97th byte of the sample data (all alike: a torn mdat).
	step := func(cut int64) int64 {
		if cut < last.offset+2048 || testing.Short() && cut < last.offset+256 {
			return 1
		}
		return 97
	}
	for cut := last.offset; cut < last.offset+last.size; cut += step(cut) {
		info, err := ScanFile(bytes.NewReader(f.data[:cut]), cut)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if info.ValidEnd != prevEnd || len(info.Fragments) != len(f.frags)-1 {
			t.Fatalf("cut at %d: ValidEnd %d with %d fragments, want %d with %d",
				cut, info.ValidEnd, len(info.Fragments), prevEnd, len(f.frags)-1)
		}
	}
}

// smallFile is a synthetic file with real parameter sets and tiny samples:
// three fragments of three samples.
func smallFile(t testing.TB) []byte {
	t.Helper()
	aus := splitAUs(media.CodecH264, loadFixture(t, "main.h264")[:4096])
	init, err := Init(Track{Codec: media.CodecH264, Params: paramsOf(media.CodecH264, aus)})
	if err != nil {
		t.Fatal(err)
	}
	b := init
	for i := range 3 {
		samples := []Sample{{Dur90k: 3600, Size: 5, Key: true}, {Dur90k: 3600, Size: 3, CTSOffset90k: -7}, {Dur90k: 3000, Size: 1}}
		b = AppendFragment(b, uint32(i+1), uint64(i)*10200, samples, []byte("abcdefghi"))
	}
	return b
}

func TestScanSmall(t *testing.T) {
	b := smallFile(t)
	info, err := ScanFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Fragments) != 3 || info.ValidEnd != int64(len(b)) {
		t.Fatalf("got %d fragments, ValidEnd %d of %d", len(info.Fragments), info.ValidEnd, len(b))
	}
	for i, fr := range info.Fragments {
		if fr.Dur90k != 10200 || fr.BaseDecodeTime90k != uint64(i)*10200 || fr.Samples != 3 || fr.KeyFrames != 1 || !fr.FirstKey {
			t.Errorf("fragment %d: %+v", i, fr)
		}
		ss, err := ReadSamples(bytes.NewReader(b), Fragment{Offset: fr.Offset, Size: fr.Size})
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		for _, s := range ss {
			data = append(data, b[s.Offset:s.Offset+int64(s.Size)]...)
		}
		if string(data) != "abcdefghi" || ss[1].CTSOffset90k != -7 || ss[0].Key == ss[1].Key {
			t.Errorf("fragment %d samples %+v data %q", i, ss, data)
		}
	}
	if _, err := ReadSamples(bytes.NewReader(b), Fragment{Offset: info.Fragments[0].Offset, Size: 10}); err == nil {
		t.Error("ReadSamples with a wrong size succeeded")
	}
}

// TestScanTails appends assorted tails to a good file: each must leave
// ValidEnd at the end of the good part (or after it, for a complete extra
// fragment) without error.
func TestScanTails(t *testing.T) {
	good := smallFile(t)
	frag := AppendFragment(nil, 9, 0, []Sample{{Dur90k: 1, Size: 2, Key: true}}, []byte("xy"))
	large := slices.Clone(frag)
	// Rewrite the fragment's mdat with a 64-bit largesize.
	mdatAt := len(large) - 10
	large = append(large[:mdatAt:mdatAt], 0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 18, 'x', 'y')
	binary.BigEndian.PutUint32(large[mdatAt-16:], binary.BigEndian.Uint32(large[mdatAt-16:])+8) // trun data_offset, before one 12-byte sample entry
	toEnd := slices.Clone(frag)
	binary.BigEndian.PutUint32(toEnd[len(toEnd)-10:], 0) // mdat size 0: to end of file
	for _, tc := range []struct {
		name     string
		tail     []byte
		extraEnd int64 // bytes of tail that are valid
	}{
		{"none", nil, 0},
		{"zeros", make([]byte, 4096), 0},
		{"garbage", []byte("this is not an mp4 box at all"), 0},
		{"free box then fragment", append([]byte{0, 0, 0, 8, 'f', 'r', 'e', 'e'}, frag...), int64(8 + len(frag))},
		{"free box only (complete boxes count)", []byte{0, 0, 0, 8, 'f', 'r', 'e', 'e'}, 8},
		{"moof without mdat", frag[:len(frag)-10], 0},
		{"moof then garbage", append(slices.Clone(frag[:len(frag)-10]), "garbagegarbage"...), 0},
		{"box past EOF", []byte{0, 0, 1, 0, 'm', 'o', 'o', 'f', 1, 2, 3}, 0},
		{"huge largesize", []byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0},
		{"size below header", []byte{0, 0, 0, 3, 'm', 'o', 'o', 'f'}, 0},
		{"largesize mdat", large, int64(len(large))},
		{"mdat to end", toEnd, int64(len(toEnd))},
		{"extra fragment", frag, int64(len(frag))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append(slices.Clone(good), tc.tail...)
			info, err := ScanFile(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(len(good)) + tc.extraEnd; info.ValidEnd != want {
				t.Errorf("ValidEnd %d, want %d", info.ValidEnd, want)
			}
		})
	}
}

func TestScanBadInit(t *testing.T) {
	good := smallFile(t)
	initLen := int(binary.BigEndian.Uint32(good)) + int(binary.BigEndian.Uint32(good[binary.BigEndian.Uint32(good):]))
	timescale := slices.Clone(good)
	i := bytes.Index(timescale, []byte("mdhd"))
	binary.BigEndian.PutUint32(timescale[i+16:], 1000)
	noTrex := bytes.Replace(slices.Clone(good), []byte("trex"), []byte("xxxx"), 1)
	badCodec := bytes.Replace(slices.Clone(good), []byte("avc1"), []byte("mp4v"), 2) // ftyp brand and sample entry
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "ftyp missing"},
		{"ftyp only", good[:binary.BigEndian.Uint32(good)], "moov missing"},
		{"torn moov", good[:initLen-1], "moov missing"},
		{"not mp4", []byte("\x00\x00\x00\x10garbagegarbage"), "not ftyp"},
		{"timescale", timescale, "timescale 1000"},
		{"no trex", noTrex, "no trex"},
		{"codec", badCodec, "not H.264 or H.265"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScanFile(bytes.NewReader(tc.b), int64(len(tc.b)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAppendFragmentChecked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []Sample
		data    []byte
		want    error
	}{
		{"ok", []Sample{{Size: 2}, {Size: 1}}, []byte("abc"), nil},
		{"empty", nil, nil, ErrNoSamples},
		{"short data", []Sample{{Size: 4}}, []byte("abc"), ErrSizeMismatch},
		{"long data", []Sample{{Size: 2}}, []byte("abc"), ErrSizeMismatch},
		{"too many", make([]Sample, maxSamples+1), nil, ErrTooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendFragmentChecked(dst, 1, 0, tc.samples, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err != nil && string(out) != "prefix" {
				t.Errorf("dst changed on error")
			}
			if err == nil && !bytes.HasPrefix(out, dst) {
				t.Errorf("prefix lost")
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendFragment did not panic on a size mismatch")
		}
	}()
	AppendFragment(nil, 1, 0, []Sample{{Size: 9}}, []byte("a"))
}

func TestAppendSampleData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nalus [][]byte
		want  []byte
	}{
		{"h264 AUD dropped", [][]byte{{0x09, 0xf0}, {0x65, 1, 2}}, []byte{0, 0, 0, 3, 0x65, 1, 2}},
		{"h265 AUD dropped", [][]byte{{0x46, 0x01, 0x50}, {0x26, 0x01, 9}}, []byte{0, 0, 0, 3, 0x26, 0x01, 9}},
		{"parameter sets kept", [][]byte{{0x67, 1}, {0x68, 2}}, []byte{0, 0, 0, 2, 0x67, 1, 0, 0, 0, 2, 0x68, 2}},
		{"h264 SPS with ref idc 2 kept", [][]byte{{0x47, 1}}, []byte{0, 0, 0, 2, 0x47, 1}},
		{"empty dropped", [][]byte{{}, {0x41}}, []byte{0, 0, 0, 1, 0x41}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendSampleData([]byte{7}, tc.nalus)
			if !bytes.Equal(got, append([]byte{7}, tc.want...)) {
				t.Errorf("got % x, want 07 % x", got, tc.want)
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	f := fixtureFile(t, media.CodecH264)
	info, err := ScanFile(bytes.NewReader(f.data), int64(len(f.data)))
	if err != nil {
		t.Fatal(err)
	}
	p := info.Track.Params
	for _, tc := range []struct {
		name string
		tr   Track
	}{
		{"codec", Track{Codec: media.CodecAAC, Params: p}},
		{"no sps", Track{Codec: media.CodecH264, Params: media.ParamSets{PPS: p.PPS}}},
		{"swapped", Track{Codec: media.CodecH264, Params: media.ParamSets{SPS: p.PPS, PPS: p.SPS}}},
		{"h265 without vps", Track{Codec: media.CodecH265, Params: p}},
		{"huge", Track{Codec: media.CodecH264, Params: p, Width: 70000, Height: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Init(tc.tr); err == nil {
				t.Error("Init succeeded")
			}
		})
	}
}

// FuzzScanFile feeds ScanFile and ReadSamples arbitrary bytes: they must
// never panic, and whatever they accept must be self-consistent.
func FuzzScanFile(f *testing.F) {
	b := smallFile(f)
	f.Add(b)
	for _, cut := range []int{0, 8, 100, len(b) / 2, len(b) - 30, len(b) - 1} {
		f.Add(b[:cut])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ScanFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if info.ValidEnd < info.InitEnd || info.ValidEnd > int64(len(b)) {
			t.Fatalf("ValidEnd %d outside [%d,%d]", info.ValidEnd, info.InitEnd, len(b))
		}
		for _, fr := range info.Fragments {
			ss, err := ReadSamples(bytes.NewReader(b), fr)
			if err != nil {
				t.Fatalf("ReadSamples of a scanned fragment: %v", err)
			}
			if len(ss) != fr.Samples {
				t.Fatalf("%d samples read, %d scanned", len(ss), fr.Samples)
			}
			for _, s := range ss {
				if s.Offset < fr.Offset || s.Offset+int64(s.Size) > fr.Offset+fr.Size {
					t.Fatalf("sample %+v outside fragment %+v", s, fr)
				}
			}
		}
		if _, err := Init(info.Track); err != nil {
			// Parameter sets in a hostile file need not parse; that is fine.
			return
		}
	})
}

func BenchmarkAppendFragment(b *testing.B) {
	// One second of a 4 Mbit/s 25 fps stream: 25 samples of 20 kB.
	samples := make([]Sample, 25)
	for i := range samples {
		samples[i] = Sample{Dur90k: 3600, Size: 20000, Key: i == 0}
	}
	data := make([]byte, 25*20000)
	var buf []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFragment(buf[:0], 1, 0, samples, data)
	}
}
