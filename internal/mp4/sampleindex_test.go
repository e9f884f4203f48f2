package mp4

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
)

// indexedFile writes frames as fragments (split at key frames and every 7
// samples, with a negative composition offset now and then) and returns
// the file without and with a sample index.
func indexedFile(t testing.TB, fixture string, n int) (plain, indexed []byte) {
	t.Helper()
	aus := splitAUs(media.CodecH264, loadFixture(t, fixture))[:n]
	file, err := Init(Track{Codec: media.CodecH264, Params: paramsOf(media.CodecH264, aus)})
	if err != nil {
		t.Fatal(err)
	}
	var w SampleIndexWriter
	var samples []Sample
	var data []byte
	var base uint64
	seq := uint32(0)
	flush := func() {
		if len(samples) == 0 {
			return
		}
		seq++
		off := len(file)
		file = AppendFragment(file, seq, base, samples, data)
		w.AddFragment(int64(off), len(file)-off-len(data), samples)
		for _, s := range samples {
			base += uint64(s.Dur90k)
		}
		samples, data = nil, nil
	}
	for i, au := range aus {
		if au.key || len(samples) == 7 {
			flush()
		}
		n := len(data)
		data = AppendSampleData(data, au.nalus)
		s := Sample{Dur90k: 3600 + uint32(i%3), Size: uint32(len(data) - n), Key: au.key}
		if i%5 == 2 {
			s.CTSOffset90k = -1800
		}
		samples = append(samples, s)
	}
	flush()
	return file, w.AppendBox(append([]byte(nil), file...))
}

type visited struct {
	frag int
	s    SampleInfo
}

func scanSamples(t *testing.T, b []byte) (*FileInfo, []visited) {
	t.Helper()
	var out []visited
	info, err := ScanFileSamples(bytes.NewReader(b), int64(len(b)), func(f int, s SampleInfo) { out = append(out, visited{f, s}) })
	if err != nil {
		t.Fatal(err)
	}
	return info, out
}

// TestSampleIndex checks that the index gives the same samples as a scan
// of the fragments, that ScanFile still validates the whole file, and that
// a damaged index falls back to the scan.
func TestSampleIndex(t *testing.T) {
	plain, indexed := indexedFile(t, "main.h264", 120)
	wantInfo, want := scanSamples(t, plain)
	gotInfo, got := scanSamples(t, indexed)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("samples from the index differ from the scan (%d vs %d)", len(got), len(want))
	}
	if gotInfo.Fragments[0].MoofSize != 0 || gotInfo.ValidEnd != int64(len(indexed)) {
		t.Errorf("the index was not used: %+v", gotInfo.Fragments[0])
	}
	for i := range wantInfo.Fragments {
		w, g := wantInfo.Fragments[i], gotInfo.Fragments[i]
		if w.Offset != g.Offset || w.Size != g.Size || w.BaseDecodeTime90k != g.BaseDecodeTime90k ||
			w.Dur90k != g.Dur90k || w.Samples != g.Samples || w.KeyFrames != g.KeyFrames || w.FirstKey != g.FirstKey {
			t.Errorf("fragment %d: index %+v, scan %+v", i, g, w)
		}
	}
	// ScanFile never trusts the index: it reads every fragment, and the
	// index box is valid trailing data.
	info, err := ScanFile(bytes.NewReader(indexed), int64(len(indexed)))
	if err != nil || len(info.Fragments) != len(wantInfo.Fragments) || info.ValidEnd != int64(len(indexed)) {
		t.Errorf("ScanFile of an indexed file: %d fragments, ValidEnd %d of %d, %v", len(info.Fragments), info.ValidEnd, len(indexed), err)
	}
	// Any single-byte change in the index box leaves the samples right:
	// the checksum and layout checks send the reader back to the scan.
	for i := len(plain); i < len(indexed); i++ {
		for _, delta := range []byte{1, 0x80} {
			bad := bytes.Clone(indexed)
			bad[i] += delta
			if _, got := scanSamples(t, bad); !reflect.DeepEqual(got, want) {
				t.Fatalf("byte %d of %d changed by %#x: samples differ from the scan", i, len(indexed), delta)
			}
		}
	}
	// Truncated index: the scan.
	cut := indexed[:len(indexed)-3]
	if _, got := scanSamples(t, cut); !reflect.DeepEqual(got, want) {
		t.Errorf("truncated index: samples differ from the scan")
	}
}

// FuzzSampleIndex feeds arbitrary bytes after a valid file's fragments:
// ScanFileSamples must not panic and every sample it reports lies within
// the file.
func FuzzSampleIndex(f *testing.F) {
	plain, indexed := indexedFile(f, "sub.h264", 12)
	f.Add(indexed[len(plain):])
	f.Add([]byte("cidx"))
	f.Fuzz(func(t *testing.T, tail []byte) {
		b := append(bytes.Clone(plain), tail...)
		ScanFileSamples(bytes.NewReader(b), int64(len(b)), func(_ int, s SampleInfo) {
			if s.Offset < 0 || s.Offset+int64(s.Size) > int64(len(b)) {
				t.Fatalf("sample %+v outside a %d-byte file", s, len(b))
			}
		})
	})
}
