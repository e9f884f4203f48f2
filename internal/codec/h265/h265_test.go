package h265

import (
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

// craftedSPS is a Main 10 SPS with three sub-layers (sub-layer profile and
// level present), a conformance window, explicit scaling lists, PCM,
// short-term RPS with inter prediction, long-term refs and a VUI with
// default display window and timing 1001/60000 (59.94 fps).
func craftedSPS() []byte {
	w := &bitWriter{}
	w.bits(16, 33<<9|1)
	w.bits(4, 0)
	w.bits(3, 2) // max_sub_layers_minus1
	w.flag(true)
	// profile_tier_level
	w.bits(2, 0)
	w.bits(1, 1) // high tier
	w.bits(5, 2) // Main 10
	w.bits(32, 1<<29)
	w.bits(24, 0xb00000)
	w.bits(24, 0)
	w.bits(8, 123)
	w.flag(true) // sub 0 profile present
	w.flag(true) // sub 0 level present
	w.flag(false)
	w.flag(true) // sub 1 level only
	for i := 2; i < 8; i++ {
		w.bits(2, 0)
	}
	w.bits(32, 0x42000000)
	w.bits(32, 0)
	w.bits(24, 0)
	w.bits(8, 90)
	w.bits(8, 93)
	w.ue(1)    // sps id
	w.ue(1)    // 4:2:0
	w.ue(3840) // width
	w.ue(2176) // height
	w.flag(true)
	w.ue(0)
	w.ue(0)
	w.ue(0)
	w.ue(8) // bottom 16 rows -> 2160
	w.ue(2) // bit depth 10
	w.ue(2)
	w.ue(4) // log2_max_poc_lsb_minus4 -> 8 bits
	w.flag(true)
	for i := 0; i < 3; i++ {
		w.ue(4)
		w.ue(2)
		w.ue(0)
	}
	for i := 0; i < 6; i++ {
		w.ue(1)
	}
	w.flag(true) // scaling_list_enabled
	w.flag(true) // data present
	for size := 0; size < 4; size++ {
		step := 1
		if size == 3 {
			step = 3
		}
		for m := 0; m < 6; m += step {
			explicit := (m+size)%2 == 0
			w.flag(explicit)
			if !explicit {
				w.ue(0)
				continue
			}
			n := 1 << uint(4+size<<1)
			if n > 64 {
				n = 64
			}
			if size > 1 {
				w.se(3)
			}
			for i := 0; i < n; i++ {
				w.se(int32(i%3) - 1)
			}
		}
	}
	w.flag(true) // amp
	w.flag(true) // sao
	w.flag(true) // pcm
	w.bits(4, 7)
	w.bits(4, 7)
	w.ue(0)
	w.ue(1)
	w.flag(false)
	w.ue(3) // num_short_term_ref_pic_sets
	// set 0: explicit, 2 negative (-1, -3), 1 positive (+2)
	w.ue(2)
	w.ue(1)
	w.ue(0)
	w.flag(true)
	w.ue(1)
	w.flag(true)
	w.ue(1)
	w.flag(true)
	// set 1: predicted from set 0 with deltaRPS -1 -> entries -2,-4,+1 and -1.
	w.flag(true) // inter_ref_pic_set_prediction_flag
	w.bits(1, 1) // sign negative
	w.ue(0)      // abs_delta_rps_minus1 -> 1
	for j := 0; j <= 3; j++ {
		used := j != 1
		w.flag(used)
		if !used {
			w.flag(true) // use_delta
		}
	}
	// set 2: predicted from set 1 (4 pictures -> 5 flags), deltaRPS +2.
	w.flag(true)
	w.bits(1, 0)
	w.ue(1)
	for j := 0; j <= 4; j++ {
		w.flag(false)
		w.flag(j%2 == 0)
	}
	w.flag(true) // long_term_ref_pics_present
	w.ue(2)
	w.bits(8, 17)
	w.flag(true)
	w.bits(8, 33)
	w.flag(false)
	w.flag(true) // temporal mvp
	w.flag(true) // strong intra smoothing
	w.flag(true) // vui
	w.flag(true)
	w.bits(8, 14) // 4:3
	w.flag(false)
	w.flag(true)
	w.bits(3, 5)
	w.flag(false)
	w.flag(true)
	w.bits(24, 0x090909)
	w.flag(true)
	w.ue(2)
	w.ue(2)
	w.flag(false)
	w.flag(false)
	w.flag(false)
	w.flag(true) // default display window
	w.ue(4)
	w.ue(4)
	w.ue(0)
	w.ue(0)
	w.flag(true) // timing
	w.bits(32, 1001)
	w.bits(32, 60000)
	w.flag(false)
	w.flag(false)
	w.flag(false)
	w.bits(1, 1)
	for w.nbit%8 != 0 {
		w.bits(1, 0)
	}
	return addEPB(w.buf)
}

var spsTests = []struct {
	name    string
	hex     string
	profile string
	w, h    int
	fps     float64
}{
	// Encoded here by ffmpeg/x265 (testsrc2).
	{"x265 main 1080p25", "420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000c84", "Main", 1920, 1080, 25},
	{"x265 main 1366x768 29.97", "420101016000000300900000030000030078a002ac80301d796566924caf01680800001f480003a98040", "Main", 1366, 768, 30000.0 / 1001},
	{"x265 main10 720p30", "42010102200000030090000003000003005da00280802d1365959a4932bc05a020000003002000000303c1", "Main 10", 1280, 720, 30},
	{"x265 444 8-bit", "4201010408000003009e0800000300003c9001610090b2cacd24995e02d010000003001000000300f080", "Main 4:4:4", 352, 288, 15},
	{"x265 b-pyramid 1080p60", "42010101600000030090000003000003007ba003c08010e596562a4932bc05a020000003002000000781", "Main", 1920, 1080, 60},
	{"x265 scaling lists 480p24", "42010101600000030090000003000003005aa0050201e165959a49395e02d0100000030010000003018080", "Main", 640, 480, 24},
	// From camera SDPs in internal/rtsp/testdata (anjvision really codes 1280x704).
	{"anjvision no vui timing", "42010101400000030000030000030000030099a00280802c1fe5aee46c1ae551350506050080", "Main", 1280, 704, 0},
	{"dahua 1440p 15", "42010101600000030000030000030000030096a001402005a1fe2ab4ee892ee680800dbba000cdfe6004", "Main", 2560, 1440, 15},
	{"camera 704x480 12", "420101016000000300b0000003000003005aa0058201e1636b92452fcdc14181410000030001000003000ca1", "Main", 704, 480, 12},
	{"crafted sub-layers, inter rps, scaling, pcm, lt refs", hex.EncodeToString(craftedSPS()), "Main 10", 3840, 2160, 60000.0 / 1001},
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
			if s.ProfileName != tc.profile || s.Width != tc.w || s.Height != tc.h {
				t.Errorf("got %s %dx%d, want %s %dx%d", s.ProfileName, s.Width, s.Height, tc.profile, tc.w, tc.h)
			}
			if d := s.FPS - tc.fps; d > 1e-9 || d < -1e-9 {
				t.Errorf("fps %v, want %v", s.FPS, tc.fps)
			}
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
	if s.MaxSubLayers != 3 || s.Tier != 1 || s.LevelIDC != 123 || s.ID != 1 || s.BitDepthLuma != 10 || s.SARWidth != 4 || s.SARHeight != 3 {
		t.Errorf("%+v", s)
	}
}

func TestParseSPSErrors(t *testing.T) {
	for _, h := range []string{"", "4201", "4401c073c0418309", "42010101", "4201010160000003009000000300000300"} {
		b, _ := hex.DecodeString(h)
		if _, err := ParseSPS(b); err == nil {
			t.Errorf("%q: no error", h)
		}
	}
}

func TestTypes(t *testing.T) {
	for typ := uint8(0); typ < 64; typ++ {
		n := []byte{typ << 1, 1}
		if IsKey(n) != (typ >= 16 && typ <= 23) || IsVCL(n) != (typ < 32) || IsParamSet(n) != (typ >= 32 && typ <= 34) || Type(n) != typ {
			t.Errorf("type %d", typ)
		}
	}
	if IsKey([]byte{19 << 1}) {
		t.Error("1-byte unit is key")
	}
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
		if s.Width <= 0 || s.Height <= 0 || s.Width > 16888 || s.Height > 16888 || s.FPS < 0 {
			t.Fatalf("implausible %+v", s)
		}
	})
}
