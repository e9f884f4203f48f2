package h264

import (
	"errors"
	"fmt"
)

// SPS is what Custos reads from an H.264 sequence parameter set (7.3.2.1.1
// and Annex E). Fields from the VUI are zero when it is absent.
type SPS struct {
	ProfileIDC      uint8
	ConstraintFlags uint8 // constraint_set0_flag in the top bit
	LevelIDC        uint8 // level times 10 (31 is level 3.1)
	ProfileName     string
	ID              uint32

	ChromaFormatIDC uint32 // 1 (4:2:0) unless a high profile says otherwise
	BitDepthLuma    uint32
	BitDepthChroma  uint32
	FrameMbsOnly    bool // false for interlaced coding

	// Width and Height are the displayed size in luma samples, after
	// frame cropping.
	Width  int
	Height int

	// SARWidth and SARHeight are the sample aspect ratio (0 when unknown).
	SARWidth  uint32
	SARHeight uint32
	// NumUnitsInTick and TimeScale are the VUI timing info; FPS is
	// TimeScale / (2 * NumUnitsInTick), 0 when absent.
	NumUnitsInTick uint32
	TimeScale      uint32
	FixedFrameRate bool
	FPS            float64
}

// ErrNotSPS means the NAL unit given to ParseSPS is not an SPS.
var ErrNotSPS = errors.New("h264: not an SPS NAL unit")

// ParseSPS parses an SPS NAL unit (header byte included, no start code,
// emulation prevention bytes still present). It does no I/O and does not
// keep nalu. It fails on a NAL unit of another type or on fields that are
// truncated or out of range up to the frame size; a damaged VUI is tolerated
// (its fields stay zero), since only the frame rate comes from it.
func ParseSPS(nalu []byte) (SPS, error) {
	var s SPS
	if len(nalu) < 4 || Type(nalu) != NALSPS {
		return s, ErrNotSPS
	}
	r := NewBitReader(RemoveEmulationPrevention(nalu[1:]))
	s.ProfileIDC = uint8(r.Bits(8))
	s.ConstraintFlags = uint8(r.Bits(8))
	s.LevelIDC = uint8(r.Bits(8))
	s.ID = r.UE()
	if s.ID > 31 {
		return s, fmt.Errorf("h264 sps: seq_parameter_set_id %d out of range", s.ID)
	}
	s.ProfileName = profileName(s.ProfileIDC, s.ConstraintFlags)
	s.ChromaFormatIDC = 1
	separateColourPlane := false
	if hasChromaInfo(s.ProfileIDC) {
		s.ChromaFormatIDC = r.UE()
		if s.ChromaFormatIDC > 3 {
			return s, fmt.Errorf("h264 sps: chroma_format_idc %d out of range", s.ChromaFormatIDC)
		}
		if s.ChromaFormatIDC == 3 {
			separateColourPlane = r.Flag()
		}
		s.BitDepthLuma = r.UE() + 8
		s.BitDepthChroma = r.UE() + 8
		if s.BitDepthLuma > 14 || s.BitDepthChroma > 14 {
			return s, fmt.Errorf("h264 sps: bit depth %d/%d out of range", s.BitDepthLuma, s.BitDepthChroma)
		}
		r.Skip(1)     // qpprime_y_zero_transform_bypass_flag
		if r.Flag() { // seq_scaling_matrix_present_flag
			n := 8
			if s.ChromaFormatIDC == 3 {
				n = 12
			}
			for i := 0; i < n; i++ {
				if r.Flag() {
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(r, size)
				}
			}
		}
	} else {
		s.BitDepthLuma, s.BitDepthChroma = 8, 8
	}
	if r.UE() > 12 { // log2_max_frame_num_minus4
		return s, errors.New("h264 sps: log2_max_frame_num out of range")
	}
	switch pocType := r.UE(); pocType {
	case 0:
		if r.UE() > 12 { // log2_max_pic_order_cnt_lsb_minus4
			return s, errors.New("h264 sps: log2_max_pic_order_cnt_lsb out of range")
		}
	case 1:
		r.Skip(1) // delta_pic_order_always_zero_flag
		r.SE()    // offset_for_non_ref_pic
		r.SE()    // offset_for_top_to_bottom_field
		n := r.UE()
		if n > 255 {
			return s, fmt.Errorf("h264 sps: num_ref_frames_in_pic_order_cnt_cycle %d out of range", n)
		}
		for i := uint32(0); i < n; i++ {
			r.SE()
		}
	case 2:
	default:
		return s, fmt.Errorf("h264 sps: pic_order_cnt_type %d out of range", pocType)
	}
	r.UE()    // max_num_ref_frames
	r.Skip(1) // gaps_in_frame_num_value_allowed_flag
	widthMbs := r.UE() + 1
	heightMapUnits := r.UE() + 1
	s.FrameMbsOnly = r.Flag()
	if !s.FrameMbsOnly {
		r.Skip(1) // mb_adaptive_frame_field_flag
	}
	r.Skip(1) // direct_8x8_inference_flag
	var cropL, cropR, cropT, cropB uint32
	if r.Flag() {
		cropL, cropR, cropT, cropB = r.UE(), r.UE(), r.UE(), r.UE()
	}
	vui := r.Flag()
	if err := r.Err(); err != nil {
		return s, fmt.Errorf("h264 sps: %w", err)
	}
	if widthMbs > 1024 || heightMapUnits > 1024 {
		return s, fmt.Errorf("h264 sps: picture size %dx%d macroblocks out of range", widthMbs, heightMapUnits)
	}
	frameHeightMbs := heightMapUnits
	if !s.FrameMbsOnly {
		frameHeightMbs *= 2
	}
	// Crop units (7-19 to 7-22).
	cropX, cropY := uint32(1), uint32(1)
	if !separateColourPlane && s.ChromaFormatIDC != 0 {
		if s.ChromaFormatIDC != 3 {
			cropX = 2
		}
		if s.ChromaFormatIDC == 1 {
			cropY = 2
		}
	}
	if !s.FrameMbsOnly {
		cropY *= 2
	}
	w, h := uint64(widthMbs)*16, uint64(frameHeightMbs)*16
	cw, ch := uint64(cropX)*(uint64(cropL)+uint64(cropR)), uint64(cropY)*(uint64(cropT)+uint64(cropB))
	if cw >= w || ch >= h {
		return s, fmt.Errorf("h264 sps: cropping %dx%d exceeds picture %dx%d", cw, ch, w, h)
	}
	s.Width, s.Height = int(w-cw), int(h-ch)
	if vui {
		parseVUI(r, &s)
	}
	return s, nil
}

// hasChromaInfo reports the profiles whose SPS carries chroma_format_idc.
func hasChromaInfo(profileIDC uint8) bool {
	switch profileIDC {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// skipScalingList reads past scaling_list() (7.3.2.1.1.1).
func skipScalingList(r *BitReader, size int) {
	last, next := int32(8), int32(8)
	for j := 0; j < size && r.Err() == nil; j++ {
		if next != 0 {
			next = (last + r.SE() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}

// parseVUI reads the VUI up to the timing info (E.1.1). On a read error the
// VUI fields are left zero.
func parseVUI(r *BitReader, s *SPS) {
	// Table E-1: sample aspect ratios by aspect_ratio_idc.
	sarTable := [...][2]uint32{
		{0, 0}, {1, 1}, {12, 11}, {10, 11}, {16, 11}, {40, 33}, {24, 11}, {20, 11},
		{32, 11}, {80, 33}, {18, 11}, {15, 11}, {64, 33}, {160, 99}, {4, 3}, {3, 2}, {2, 1},
	}
	var v SPS
	if r.Flag() { // aspect_ratio_info_present_flag
		idc := r.Bits(8)
		if idc == 255 { // Extended_SAR
			v.SARWidth, v.SARHeight = r.Bits(16), r.Bits(16)
		} else if int(idc) < len(sarTable) {
			v.SARWidth, v.SARHeight = sarTable[idc][0], sarTable[idc][1]
		}
	}
	if r.Flag() { // overscan_info_present_flag
		r.Skip(1)
	}
	if r.Flag() { // video_signal_type_present_flag
		r.Skip(4) // video_format, video_full_range_flag
		if r.Flag() {
			r.Skip(24) // colour_primaries, transfer_characteristics, matrix_coefficients
		}
	}
	if r.Flag() { // chroma_loc_info_present_flag
		r.UE()
		r.UE()
	}
	if r.Flag() { // timing_info_present_flag
		v.NumUnitsInTick = r.Bits(32)
		v.TimeScale = r.Bits(32)
		v.FixedFrameRate = r.Flag()
	}
	if r.Err() != nil {
		return
	}
	s.SARWidth, s.SARHeight = v.SARWidth, v.SARHeight
	s.NumUnitsInTick, s.TimeScale, s.FixedFrameRate = v.NumUnitsInTick, v.TimeScale, v.FixedFrameRate
	if v.NumUnitsInTick > 0 && v.TimeScale > 0 {
		s.FPS = float64(v.TimeScale) / (2 * float64(v.NumUnitsInTick))
	}
}

// profileName names profile_idc as Annex A does, refined by the
// constraint flags where they define a sub-profile.
func profileName(idc, constraints uint8) string {
	set1 := constraints&0x40 != 0
	set3 := constraints&0x10 != 0
	set4 := constraints&0x08 != 0
	set5 := constraints&0x04 != 0
	switch idc {
	case 66:
		if set1 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		switch {
		case set4 && set5:
			return "Constrained High"
		case set4:
			return "Progressive High"
		}
		return "High"
	case 110:
		if set3 {
			return "High 10 Intra"
		}
		return "High 10"
	case 122:
		if set3 {
			return "High 4:2:2 Intra"
		}
		return "High 4:2:2"
	case 244:
		if set3 {
			return "High 4:4:4 Intra"
		}
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	case 83:
		return "Scalable Baseline"
	case 86:
		return "Scalable High"
	case 118:
		return "Multiview High"
	case 128:
		return "Stereo High"
	case 134:
		return "MFC High"
	case 135:
		return "MFC Depth High"
	case 138:
		return "Multiview Depth High"
	case 139:
		return "Enhanced Multiview Depth High"
	}
	return fmt.Sprintf("profile %d", idc)
}
