package h265

import (
	"errors"
	"fmt"

	"github.com/custos-nvr/custos/internal/codec/h264"
)

// SPS is what Custos reads from an H.265 sequence parameter set (7.3.2.2
// and Annex E). Fields from the VUI are zero when it is absent.
type SPS struct {
	ProfileSpace uint8
	Tier         uint8 // 0 Main, 1 High
	ProfileIDC   uint8
	// ProfileCompat holds general_profile_compatibility_flag[j] in bit 31-j.
	ProfileCompat uint32
	LevelIDC      uint8 // level times 30 (93 is level 3.1)
	ProfileName   string
	ID            uint32
	MaxSubLayers  int

	ChromaFormatIDC uint32
	BitDepthLuma    uint32
	BitDepthChroma  uint32

	// Width and Height are the displayed size in luma samples, after the
	// conformance window.
	Width  int
	Height int

	SARWidth  uint32
	SARHeight uint32
	// NumUnitsInTick and TimeScale are vui_num_units_in_tick and
	// vui_time_scale; FPS is TimeScale / NumUnitsInTick, 0 when absent.
	NumUnitsInTick uint32
	TimeScale      uint32
	FPS            float64
}

// ErrNotSPS means the NAL unit given to ParseSPS is not an SPS.
var ErrNotSPS = errors.New("h265: not an SPS NAL unit")

// ParseSPS parses an SPS NAL unit (2-byte header included, no start code,
// emulation prevention bytes still present). It does no I/O and does not
// keep nalu. It fails on a NAL unit of another type and on truncated or
// out-of-range fields up to the picture size; past it (short-term reference
// picture sets and the rest, needed to reach the VUI) a failure only leaves
// the VUI fields zero, since only the frame rate comes from there.
func ParseSPS(nalu []byte) (SPS, error) {
	var s SPS
	if len(nalu) < 3 || Type(nalu) != NALSPS {
		return s, ErrNotSPS
	}
	r := h264.NewBitReader(RemoveEmulationPrevention(nalu[2:]))
	r.Skip(4) // sps_video_parameter_set_id
	s.MaxSubLayers = int(r.Bits(3)) + 1
	if s.MaxSubLayers > 7 {
		return s, fmt.Errorf("h265 sps: sps_max_sub_layers_minus1 %d out of range", s.MaxSubLayers-1)
	}
	r.Skip(1) // sps_temporal_id_nesting_flag
	parsePTL(r, &s)
	s.ID = r.UE()
	if s.ID > 15 {
		return s, fmt.Errorf("h265 sps: sps_seq_parameter_set_id %d out of range", s.ID)
	}
	s.ChromaFormatIDC = r.UE()
	if s.ChromaFormatIDC > 3 {
		return s, fmt.Errorf("h265 sps: chroma_format_idc %d out of range", s.ChromaFormatIDC)
	}
	separateColourPlane := false
	if s.ChromaFormatIDC == 3 {
		separateColourPlane = r.Flag()
	}
	w, h := r.UE(), r.UE()
	var confL, confR, confT, confB uint32
	if r.Flag() { // conformance_window_flag
		confL, confR, confT, confB = r.UE(), r.UE(), r.UE(), r.UE()
	}
	s.BitDepthLuma = r.UE() + 8
	s.BitDepthChroma = r.UE() + 8
	if err := r.Err(); err != nil {
		return s, fmt.Errorf("h265 sps: %w", err)
	}
	if w == 0 || h == 0 || w > 16888 || h > 16888 {
		return s, fmt.Errorf("h265 sps: picture size %dx%d out of range", w, h)
	}
	if s.BitDepthLuma > 16 || s.BitDepthChroma > 16 {
		return s, fmt.Errorf("h265 sps: bit depth %d/%d out of range", s.BitDepthLuma, s.BitDepthChroma)
	}
	subW, subH := uint64(1), uint64(1) // Table 6-1
	if !separateColourPlane {
		switch s.ChromaFormatIDC {
		case 1:
			subW, subH = 2, 2
		case 2:
			subW = 2
		}
	}
	cw, ch := subW*(uint64(confL)+uint64(confR)), subH*(uint64(confT)+uint64(confB))
	if cw >= uint64(w) || ch >= uint64(h) {
		return s, fmt.Errorf("h265 sps: conformance window %dx%d exceeds picture %dx%d", cw, ch, w, h)
	}
	s.Width, s.Height = int(uint64(w)-cw), int(uint64(h)-ch)
	s.ProfileName = profileName(s.ProfileIDC, s.ProfileCompat, s.BitDepthLuma, s.ChromaFormatIDC)
	parseRest(r, &s)
	return s, nil
}

// parsePTL reads profile_tier_level(1, MaxSubLayers-1) (7.3.3).
func parsePTL(r *h264.BitReader, s *SPS) {
	s.ProfileSpace = uint8(r.Bits(2))
	s.Tier = uint8(r.Bits(1))
	s.ProfileIDC = uint8(r.Bits(5))
	s.ProfileCompat = r.Bits(32)
	r.Skip(48) // progressive, interlaced, non_packed, frame_only + 44 constraint bits
	s.LevelIDC = uint8(r.Bits(8))
	n := s.MaxSubLayers - 1
	var profilePresent, levelPresent [8]bool
	for i := 0; i < n; i++ {
		profilePresent[i] = r.Flag()
		levelPresent[i] = r.Flag()
	}
	if n > 0 {
		r.Skip(2 * (8 - n)) // reserved_zero_2bits
	}
	for i := 0; i < n; i++ {
		if profilePresent[i] {
			r.Skip(88)
		}
		if levelPresent[i] {
			r.Skip(8)
		}
	}
}

// parseRest reads from log2_max_pic_order_cnt_lsb_minus4 to the VUI timing
// info. Errors leave the VUI fields zero.
func parseRest(r *h264.BitReader, s *SPS) {
	log2MaxPOCLsb := r.UE() + 4
	if log2MaxPOCLsb > 16 {
		return
	}
	first := s.MaxSubLayers - 1
	if r.Flag() { // sps_sub_layer_ordering_info_present_flag
		first = 0
	}
	for i := first; i < s.MaxSubLayers; i++ {
		r.UE() // sps_max_dec_pic_buffering_minus1
		r.UE() // sps_max_num_reorder_pics
		r.UE() // sps_max_latency_increase_plus1
	}
	for i := 0; i < 6; i++ {
		r.UE() // coding/transform block sizes and hierarchy depths
	}
	if r.Flag() && r.Flag() { // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
		skipScalingListData(r)
	}
	r.Skip(2)     // amp_enabled_flag, sample_adaptive_offset_enabled_flag
	if r.Flag() { // pcm_enabled_flag
		r.Skip(8)
		r.UE()
		r.UE()
		r.Skip(1)
	}
	numRPS := r.UE()
	if numRPS > 64 || r.Err() != nil {
		return
	}
	rps := make([]refPicSet, numRPS)
	for i := range rps {
		if !parseRefPicSet(r, rps, i) {
			return
		}
	}
	if r.Flag() { // long_term_ref_pics_present_flag
		n := r.UE()
		if n > 32 {
			return
		}
		for i := uint32(0); i < n; i++ {
			r.Skip(int(log2MaxPOCLsb) + 1) // lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
		}
	}
	r.Skip(2) // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
	if r.Flag() && r.Err() == nil {
		parseVUI(r, s)
	}
}

// skipScalingListData reads past scaling_list_data() (7.3.4).
func skipScalingListData(r *h264.BitReader) {
	for sizeID := 0; sizeID < 4; sizeID++ {
		step := 1
		if sizeID == 3 {
			step = 3
		}
		for matrixID := 0; matrixID < 6; matrixID += step {
			if !r.Flag() { // scaling_list_pred_mode_flag
				r.UE() // scaling_list_pred_matrix_id_delta
				continue
			}
			coefs := 1 << uint(4+sizeID<<1)
			if coefs > 64 {
				coefs = 64
			}
			if sizeID > 1 {
				r.SE() // scaling_list_dc_coef_minus8
			}
			for i := 0; i < coefs && r.Err() == nil; i++ {
				r.SE()
			}
		}
	}
}

// refPicSet is a short-term reference picture set: the POC deltas of its
// negative and positive pictures, kept only to size the sets predicted
// from it.
type refPicSet struct {
	neg, pos []int32
}

// maxRPSPics bounds a set's pictures (the spec allows 16 in a conforming
// stream; anything larger is treated as an error).
const maxRPSPics = 32

// parseRefPicSet reads st_ref_pic_set(idx) (7.3.7) into sets[idx],
// deriving the POC deltas as 7-61 and 7-62 do. It returns false on error.
func parseRefPicSet(r *h264.BitReader, sets []refPicSet, idx int) bool {
	if idx > 0 && r.Flag() { // inter_ref_pic_set_prediction_flag
		// delta_idx_minus1 is only present in slice headers, so the
		// reference is the previous set.
		sign := r.Bit()
		absDelta := r.UE() + 1
		if absDelta > 1<<15 {
			return false
		}
		delta := int32(absDelta)
		if sign == 1 {
			delta = -delta
		}
		ref := sets[idx-1]
		nNeg, nRef := len(ref.neg), len(ref.neg)+len(ref.pos)
		// useDelta[j] for j in 0..nRef; j == nRef stands for delta itself.
		var useDelta [2*maxRPSPics + 1]bool
		for j := 0; j <= nRef; j++ {
			// use_delta_flag is present only when used_by_curr_pic_flag
			// is 0, and inferred to be 1 otherwise.
			useDelta[j] = r.Flag() || r.Flag()
		}
		if r.Err() != nil {
			return false
		}
		var set refPicSet
		for j := len(ref.pos) - 1; j >= 0; j-- {
			if d := ref.pos[j] + delta; d < 0 && useDelta[nNeg+j] {
				set.neg = append(set.neg, d)
			}
		}
		if delta < 0 && useDelta[nRef] {
			set.neg = append(set.neg, delta)
		}
		for j, p := range ref.neg {
			if d := p + delta; d < 0 && useDelta[j] {
				set.neg = append(set.neg, d)
			}
		}
		for j := nNeg - 1; j >= 0; j-- {
			if d := ref.neg[j] + delta; d > 0 && useDelta[j] {
				set.pos = append(set.pos, d)
			}
		}
		if delta > 0 && useDelta[nRef] {
			set.pos = append(set.pos, delta)
		}
		for j, p := range ref.pos {
			if d := p + delta; d > 0 && useDelta[nNeg+j] {
				set.pos = append(set.pos, d)
			}
		}
		if len(set.neg) > maxRPSPics || len(set.pos) > maxRPSPics {
			return false
		}
		sets[idx] = set
		return true
	}
	nNeg, nPos := r.UE(), r.UE()
	if nNeg > 16 || nPos > 16 || r.Err() != nil {
		return false
	}
	var set refPicSet
	poc := int32(0)
	for i := uint32(0); i < nNeg; i++ {
		d := r.UE()
		if d >= 1<<15 {
			return false
		}
		poc -= int32(d + 1)
		r.Skip(1)
		set.neg = append(set.neg, poc)
	}
	poc = 0
	for i := uint32(0); i < nPos; i++ {
		d := r.UE()
		if d >= 1<<15 {
			return false
		}
		poc += int32(d + 1)
		r.Skip(1)
		set.pos = append(set.pos, poc)
	}
	sets[idx] = set
	return r.Err() == nil
}

// parseVUI reads vui_parameters() (E.2.1) up to the timing info. On a read
// error the VUI fields stay zero.
func parseVUI(r *h264.BitReader, s *SPS) {
	// Table E-1: sample aspect ratios by aspect_ratio_idc.
	sarTable := [...][2]uint32{
		{0, 0}, {1, 1}, {12, 11}, {10, 11}, {16, 11}, {40, 33}, {24, 11}, {20, 11},
		{32, 11}, {80, 33}, {18, 11}, {15, 11}, {64, 33}, {160, 99}, {4, 3}, {3, 2}, {2, 1},
	}
	var sarW, sarH, units, scale uint32
	if r.Flag() { // aspect_ratio_info_present_flag
		idc := r.Bits(8)
		if idc == 255 {
			sarW, sarH = r.Bits(16), r.Bits(16)
		} else if int(idc) < len(sarTable) {
			sarW, sarH = sarTable[idc][0], sarTable[idc][1]
		}
	}
	if r.Flag() { // overscan_info_present_flag
		r.Skip(1)
	}
	if r.Flag() { // video_signal_type_present_flag
		r.Skip(4)
		if r.Flag() {
			r.Skip(24)
		}
	}
	if r.Flag() { // chroma_loc_info_present_flag
		r.UE()
		r.UE()
	}
	r.Skip(3)     // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
	if r.Flag() { // default_display_window_flag
		r.UE()
		r.UE()
		r.UE()
		r.UE()
	}
	if r.Flag() { // vui_timing_info_present_flag
		units, scale = r.Bits(32), r.Bits(32)
	}
	if r.Err() != nil {
		return
	}
	s.SARWidth, s.SARHeight = sarW, sarH
	s.NumUnitsInTick, s.TimeScale = units, scale
	if units > 0 && scale > 0 {
		s.FPS = float64(scale) / float64(units)
	}
}

// profileName names the general profile (A.3), from general_profile_idc or,
// when that is 0, the first compatibility flag set.
func profileName(idc uint8, compat uint32, bitDepth, chroma uint32) string {
	if idc == 0 {
		for j := uint8(1); j < 32; j++ {
			if compat&(1<<(31-j)) != 0 {
				idc = j
				break
			}
		}
	}
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		// Format range extensions: name the common members by their format.
		switch {
		case chroma == 3 && bitDepth <= 8:
			return "Main 4:4:4"
		case chroma == 3 && bitDepth <= 10:
			return "Main 4:4:4 10"
		case chroma == 3:
			return "Main 4:4:4 12"
		case chroma == 2 && bitDepth <= 10:
			return "Main 4:2:2 10"
		case chroma == 2:
			return "Main 4:2:2 12"
		case chroma == 0:
			return "Monochrome"
		case bitDepth == 12:
			return "Main 12"
		}
		return "Format Range Extensions"
	case 5:
		return "High Throughput"
	case 6:
		return "Multiview Main"
	case 7:
		return "Scalable Main"
	case 8:
		return "3D Main"
	case 9:
		return "Screen Content Coding"
	case 10:
		return "Scalable Format Range Extensions"
	case 11:
		return "High Throughput Screen Content Coding"
	}
	return fmt.Sprintf("profile %d", idc)
}
