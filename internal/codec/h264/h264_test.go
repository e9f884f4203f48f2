package h264

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// bitWriter builds test bitstreams.
type bitWriter struct {
	buf  []byte
	nbit int
}

func (w *bitWriter) bits(n int, v uint32) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.bits(1, 1)
	} else {
		w.bits(1, 0)
	}
}

func (w *bitWriter) ue(v uint32) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(n, 0)
	w.bits(n+1, v)
}

func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*v - 1))
	} else {
		w.ue(uint32(-2 * v))
	}
}

// trailing adds rbsp_trailing_bits.
func (w *bitWriter) trailing() []byte {
	w.bits(1, 1)
	for w.nbit%8 != 0 {
		w.bits(1, 0)
	}
	return w.buf
}

// addEPB inserts emulation prevention bytes into an RBSP.
func addEPB(rbsp []byte) []byte {
	var out []byte
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// craftedSPS is a High 4:2:2 interlaced SPS with explicit scaling lists,
// pic_order_cnt_type 1, cropping and VUI with extended SAR, video signal,
// chroma location and timing (60000/1001 ticks: 29.97 fps).
func craftedSPS() []byte {
	w := &bitWriter{}
	w.bits(8, 0x67)
	w.bits(8, 122) // profile_idc
	w.bits(8, 0)
	w.bits(8, 40) // level
	w.ue(3)       // sps id
	w.ue(2)       // chroma_format_idc 4:2:2
	w.ue(2)       // bit_depth_luma_minus8
	w.ue(2)
	w.flag(false) // qpprime
	w.flag(true)  // seq_scaling_matrix_present_flag
	for i := 0; i < 8; i++ {
		present := i == 0 || i == 6
		w.flag(present)
		if present {
			size := 16
			if i >= 6 {
				size = 64
			}
			for j := 0; j < size; j++ {
				w.se(int32(j%5) - 2)
			}
		}
	}
	w.ue(0) // log2_max_frame_num_minus4
	w.ue(1) // pic_order_cnt_type
	w.flag(false)
	w.se(-3)
	w.se(2)
	w.ue(3)
	w.se(1)
	w.se(-1)
	w.se(5)
	w.ue(4)       // max_num_ref_frames
	w.flag(false) // gaps
	w.ue(119)     // width 1920
	w.ue(33)      // height map units 34 -> 68 MBs -> 1088
	w.flag(false) // frame_mbs_only
	w.flag(true)  // mb_adaptive_frame_field_flag
	w.flag(true)  // direct_8x8
	w.flag(true)  // frame_cropping
	w.ue(1)       // left: 2 samples (4:2:2 crop unit x 2)
	w.ue(1)       // right
	w.ue(0)
	w.ue(4)      // bottom: CropUnitY = SubHeightC(1) * 2 (fields) -> 8 rows
	w.flag(true) // vui
	w.flag(true) // aspect ratio
	w.bits(8, 255)
	w.bits(16, 4)
	w.bits(16, 3)
	w.flag(true) // overscan
	w.flag(false)
	w.flag(true) // video signal
	w.bits(3, 5)
	w.flag(true)
	w.flag(true)
	w.bits(24, 0x010101)
	w.flag(true) // chroma loc
	w.ue(0)
	w.ue(0)
	w.flag(true) // timing
	w.bits(32, 1001)
	w.bits(32, 60000)
	w.flag(true)
	w.flag(false) // nal hrd
	w.flag(false) // vcl hrd
	w.flag(false) // pic_struct_present
	w.flag(false) // bitstream_restriction
	return addEPB(w.trailing())
}

var spsTests = []struct {
	name    string
	hex     string
	profile string
	w, h    int
	fps     float64
	chroma  uint32
}{
	// Encoded here by ffmpeg/x264 (testsrc2).
	{"x264 constrained baseline", "6742c01ed900a02ff97011000003000100000300320f162e48", "Constrained Baseline", 640, 360, 25, 1},
	{"x264 main 720p30", "674d401feca02802dd8088000003000800000301e078c18cb0", "Main", 1280, 720, 30, 1},
	{"x264 high 1080p25 cropped", "67640028acd940780227e5c044000003000400000300c83c60c658", "High", 1920, 1080, 25, 1},
	{"x264 high 1366x768 29.97", "67640020acd94056061e6f011000003e90000ea600f1831960", "High", 1366, 768, 30000.0 / 1001, 1},
	{"x264 high10", "676e0020a6cd9405005bb011000003000100000300640f183196", "High 10", 1280, 720, 50, 1},
	{"x264 high422 interlaced", "677a001ebcd940b424d8088000000300800000190f8a14cb", "High 4:2:2", 720, 576, 25, 2},
	{"x264 high444", "67f4000c919b282c12d80880000003008000000f078a14cb", "High 4:4:4 Predictive", 352, 288, 15, 3},
	// From camera SDPs in internal/rtsp/testdata.
	{"hikvision-like main 1080p", "674d00299a6403c0113f2cd404040500000303e80000ea6004", "Main", 1920, 1080, 30, 1},
	{"main 2688x1520", "674d403295a00a80307e266e020202800001f40000753042", "Main", 2688, 1520, 30, 1},
	{"main 704x576 no vui timing", "674d401f95a02c049a6c04", "Main", 704, 576, 0, 1},
	{"nal_ref_idc 1 main 1280x960", "274d00208d6a050079a10000030001000003002884", "Main", 1280, 960, 20, 1},
	{"baseline 1080p15", "67420029963540f0044fcb37010101400000030040000007a1", "Baseline", 1920, 1080, 15, 1},
	{"high 704x480", "6764001eac2c6a82c0f69b828082a0000003002000000303d08000", "High", 704, 480, 15, 1},
	{"high 1440p no vui", "67640033ace802800b59", "High", 2560, 1440, 0, 1},
	{"crafted scaling lists poc1 interlaced crop", hex.EncodeToString(craftedSPS()), "High 4:2:2", 1916, 1080, 60000.0 / 2002, 2},
}

func TestParseSPS(t *testing.T) {
	for _, tc := range spsTests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseSPS(b)
			if err != nil {
				t.Fatalf("ParseSPS: %v", err)
			}
			if s.ProfileName != tc.profile || s.Width != tc.w || s.Height != tc.h || s.ChromaFormatIDC != tc.chroma {
				t.Errorf("got %s %dx%d chroma %d, want %s %dx%d chroma %d", s.ProfileName, s.Width, s.Height, s.ChromaFormatIDC, tc.profile, tc.w, tc.h, tc.chroma)
			}
			if d := s.FPS - tc.fps; d > 1e-9 || d < -1e-9 {
				t.Errorf("fps %v, want %v", s.FPS, tc.fps)
			}
			if s.ProfileIDC != b[1] || s.LevelIDC != b[3] {
				t.Errorf("profile/level %d/%d", s.ProfileIDC, s.LevelIDC)
			}
			// Any truncation before the VUI must fail, never panic.
			for n := 0; n < len(b); n++ {
				_, _ = ParseSPS(b[:n])
			}
		})
	}
}

func TestParseSPSCrafted(t *testing.T) {
	s, err := ParseSPS(craftedSPS())
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != 3 || s.BitDepthLuma != 10 || s.FrameMbsOnly || s.SARWidth != 4 || s.SARHeight != 3 || !s.FixedFrameRate {
		t.Errorf("%+v", s)
	}
}

func TestParseSPSErrors(t *testing.T) {
	for _, h := range []string{
		"",
		"68ee3c80",   // a PPS
		"674d",       // too short
		"674d001f",   // truncated after level
		"674d001fff", // id ue too long
	} {
		b, _ := hex.DecodeString(h)
		if _, err := ParseSPS(b); err == nil {
			t.Errorf("%q: no error", h)
		}
	}
}

func TestSplitAnnexB(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"0102", nil},
		{"00000001 6701 000001 6802", []string{"6701", "6802"}},
		{"ffff 000001 6701 0000 00000001 65 00 000001", []string{"6701", "65"}},
		{"000001 000001 0001 0203 000001 41", []string{"0001 0203", "41"}},
		{"00000001 6500000300", []string{"65000003"}},
		{"000000", nil},
	}
	for _, tc := range tests {
		in := mustHex(t, tc.in)
		got := SplitAnnexB(in)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %x", tc.in, got)
		}
		for i := range got {
			if !bytes.Equal(got[i], mustHex(t, tc.want[i])) {
				t.Errorf("%s: unit %d = %x", tc.in, i, got[i])
			}
		}
		// Round trip through AppendAnnexB.
		again := SplitAnnexB(AppendAnnexB(nil, got))
		if len(again) != len(got) {
			t.Errorf("%s: round trip %x", tc.in, again)
		}
	}
	dst := make([]byte, 0, 64)
	out := AppendAnnexB(dst, [][]byte{{0x67, 1}, nil, {0x68}})
	if !bytes.Equal(out, mustHex(t, "00000001 6701 00000001 68")) || &out[0] != &dst[:1][0] {
		t.Errorf("AppendAnnexB = %x", out)
	}
}

func TestRemoveEmulationPrevention(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"0102", "0102"},
		{"000003", "0000"},
		{"00000301 000003 00000302", "000001 0000 000002"},
		{"0000030001 03", "00000001 03"},
		{"0000030000 03", "00000000"},
		{"00000300000300", "0000000000"},
	}
	for _, tc := range tests {
		got := RemoveEmulationPrevention(mustHex(t, tc.in))
		if !bytes.Equal(got, mustHex(t, tc.want)) {
			t.Errorf("%s: got %x want %s", tc.in, got, tc.want)
		}
	}
}

func TestBitReader(t *testing.T) {
	w := &bitWriter{}
	w.bits(3, 5)
	w.ue(0)
	w.ue(7)
	w.se(-4)
	w.se(3)
	w.bits(32, 0xdeadbeef)
	w.ue(1<<32 - 2)
	r := NewBitReader(w.buf)
	if v := r.Bits(3); v != 5 {
		t.Errorf("bits %d", v)
	}
	if v := r.UE(); v != 0 {
		t.Errorf("ue %d", v)
	}
	if v := r.UE(); v != 7 {
		t.Errorf("ue %d", v)
	}
	if v := r.SE(); v != -4 {
		t.Errorf("se %d", v)
	}
	if v := r.SE(); v != 3 {
		t.Errorf("se %d", v)
	}
	if v := r.Bits(32); v != 0xdeadbeef {
		t.Errorf("bits32 %x", v)
	}
	if v := r.UE(); v != 1<<32-2 {
		t.Errorf("ue max %d", v)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	r.Bits(16)
	if r.Err() == nil || r.Bits(1) != 0 || r.UE() != 0 {
		t.Error("expected sticky error")
	}
	r = NewBitReader([]byte{0, 0, 0, 0, 0x80})
	if r.UE(); r.Err() == nil {
		t.Error("33-bit ue accepted")
	}
}

func TestIsKey(t *testing.T) {
	if !IsKey([]byte{0x65}) || IsKey([]byte{0x41}) || IsKey(nil) || !IsVCL([]byte{0x41}) || !IsParamSet([]byte{0x68}) {
		t.Error("type helpers")
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(stripSpaces(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stripSpaces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil))
}

func FuzzParseSPS(f *testing.F) {
	for _, tc := range spsTests {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSPS(b)
		if err != nil {
			return
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > 16384 || s.Height > 32768 || s.FPS < 0 {
			t.Fatalf("implausible %+v", s)
		}
		_ = SplitAnnexB(b)
	})
}
