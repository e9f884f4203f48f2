package mp4

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/media"
)

// testAU is one access unit split from an Annex B stream.
type testAU struct {
	nalus [][]byte
	key   bool
}

// firstSliceOfPicture reports whether nalu is a VCL NAL unit that starts a
// picture: first_mb_in_slice == 0 (H.264, ue(v) "1" in the top bit of the
// byte after the header) or first_slice_segment_in_pic_flag (H.265, top bit
// of the byte after the 2-byte header).
func firstSliceOfPicture(c media.Codec, n []byte) bool {
	if c == media.CodecH264 {
		t := h264.Type(n)
		return t >= 1 && t <= 5 && len(n) > 1 && n[1]&0x80 != 0
	}
	return h265.IsVCL(n) && len(n) > 2 && n[2]&0x80 != 0
}

func isKeyNALU(c media.Codec, n []byte) bool {
	if c == media.CodecH264 {
		return h264.IsKey(n)
	}
	return h265.IsKey(n)
}

// splitAUs groups the NAL units of an Annex B stream into access units:
// a new one starts at the first slice of a picture, and non-VCL units
// (parameter sets, SEI, AUD) before it belong to it.
func splitAUs(c media.Codec, annexB []byte) []testAU {
	var (
		aus     []testAU
		cur     testAU
		pending [][]byte
		hasVCL  bool
	)
	for _, n := range h264.SplitAnnexB(annexB) {
		vcl := (c == media.CodecH264 && h264.IsVCL(n)) || (c == media.CodecH265 && h265.IsVCL(n))
		if !vcl {
			pending = append(pending, n)
			continue
		}
		if firstSliceOfPicture(c, n) && hasVCL {
			aus = append(aus, cur)
			cur, hasVCL = testAU{}, false
		}
		cur.nalus = append(cur.nalus, pending...)
		pending = nil
		cur.nalus = append(cur.nalus, n)
		cur.key = cur.key || isKeyNALU(c, n)
		hasVCL = true
	}
	if hasVCL {
		cur.nalus = append(cur.nalus, pending...)
		aus = append(aus, cur)
	}
	return aus
}

// paramsOf returns the first parameter sets found in aus.
func paramsOf(c media.Codec, aus []testAU) media.ParamSets {
	var p media.ParamSets
	for _, au := range aus {
		for _, n := range au.nalus {
			switch {
			case c == media.CodecH264 && h264.Type(n) == h264.NALSPS && p.SPS == nil:
				p.SPS = n
			case c == media.CodecH264 && h264.Type(n) == h264.NALPPS && p.PPS == nil:
				p.PPS = n
			case c == media.CodecH265 && h265.Type(n) == h265.NALVPS && p.VPS == nil:
				p.VPS = n
			case c == media.CodecH265 && h265.Type(n) == h265.NALSPS && p.SPS == nil:
				p.SPS = n
			case c == media.CodecH265 && h265.Type(n) == h265.NALPPS && p.PPS == nil:
				p.PPS = n
			}
		}
	}
	return p
}

func loadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sim", "fixtures", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// builtFile is a file made by buildFile, with what the test expects of it.
type builtFile struct {
	data  []byte
	init  int      // length of the init segment
	frags []wanted // expected fragments
}

type wanted struct {
	offset, size int64
	base, dur    uint64
	samples      []Sample
}

// buildFile writes init + one fragment per GOP (a fragment starts at every
// key frame), every sample lasting dur90k, cts giving each AU's composition
// offset (nil for none).
func buildFile(t testing.TB, c media.Codec, aus []testAU, dur90k uint32, cts []int32) builtFile {
	t.Helper()
	init, err := Init(Track{Codec: c, Params: paramsOf(c, aus)})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	f := builtFile{data: init, init: len(init)}
	var (
		samples []Sample
		data    []byte
		base    uint64
		seq     uint32
	)
	flush := func() {
		if len(samples) == 0 {
			return
		}
		seq++
		start := len(f.data)
		f.data = AppendFragment(f.data, seq, base, samples, data)
		w := wanted{offset: int64(start), size: int64(len(f.data) - start), base: base,
			samples: append([]Sample(nil), samples...)}
		for _, s := range samples {
			w.dur += uint64(s.Dur90k)
		}
		f.frags = append(f.frags, w)
		base += w.dur
		samples, data = samples[:0], data[:0]
	}
	for i, au := range aus {
		if au.key {
			flush()
		}
		n := len(data)
		data = AppendSampleData(data, au.nalus)
		s := Sample{Dur90k: dur90k, Size: uint32(len(data) - n), Key: au.key}
		if cts != nil {
			s.CTSOffset90k = cts[i]
		}
		samples = append(samples, s)
	}
	flush()
	return f
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
