package mp4

import (
	"errors"
	"fmt"
	"strings"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/media"
)

// Track describes the single video track of a file: its codec, the
// parameter sets that go into the decoder configuration record (avcC or
// hvcC), and the displayed size. Width and Height may be left zero, in which
// case Init takes them from the SPS.
type Track struct {
	Codec  media.Codec
	Params media.ParamSets
	Width  int
	Height int
}

// TrackFor describes the track of a stream's parameter sets, with the
// picture size from its SPS. It does no I/O. It fails when the sets are
// incomplete, the SPS does not parse or the codec is not H.264 or H.265.
func TrackFor(codec media.Codec, p media.ParamSets) (Track, error) {
	t := Track{Codec: codec, Params: p}
	if !p.Complete(codec) {
		return t, fmt.Errorf("no %s parameter sets yet", codec)
	}
	switch codec {
	case media.CodecH264:
		sps, err := h264.ParseSPS(p.SPS)
		if err != nil {
			return t, fmt.Errorf("parse SPS: %w", err)
		}
		t.Width, t.Height = sps.Width, sps.Height
	case media.CodecH265:
		sps, err := h265.ParseSPS(p.SPS)
		if err != nil {
			return t, fmt.Errorf("parse SPS: %w", err)
		}
		t.Width, t.Height = sps.Width, sps.Height
	default:
		return t, fmt.Errorf("codec %q is not H.264 or H.265", codec)
	}
	return t, nil
}

// maxParamSetLen bounds a parameter set: the configuration records carry
// 16-bit lengths.
const maxParamSetLen = 0xffff

// Init returns the init segment for t: ftyp (major brand iso6; compatible
// iso6, mp41 and avc1 or hvc1) and moov with one track (track_ID 1, movie
// and media timescale 90000, zero durations since the file is fragmented),
// an avc1 (H.264) or hvc1 (H.265) sample entry, empty sample tables and an
// mvex/trex whose defaults are zero (every fragment carries per-sample
// values). It does no I/O. It fails when the codec is not H.264 or H.265,
// when a needed parameter set is missing, longer than 65535 bytes or has
// the wrong NAL type, or when the SPS cannot be parsed.
func Init(t Track) ([]byte, error) {
	entry, brand, err := sampleEntry(&t)
	if err != nil {
		return nil, fmt.Errorf("mp4 init: %w", err)
	}

	b := make([]byte, 0, 512+len(entry))
	b, ftyp := startBox(b, typFtyp)
	b = append(b, "iso6"...)
	b = be32(b, 0) // minor_version
	b = append(b, "iso6mp41"...)
	b = append(b, brand...)
	b = endBox(b, ftyp)

	b, moov := startBox(b, typMoov)
	b, mvhd := startFullBox(b, typMvhd, 0, 0)
	b = be32(b, 0) // creation_time
	b = be32(b, 0) // modification_time
	b = be32(b, Timescale)
	b = be32(b, 0)          // duration: unknown, fragmented
	b = be32(b, 0x00010000) // rate 1.0
	b = be16(b, 0x0100)     // volume 1.0
	b = appendZeros(b, 10)  // reserved
	b = appendMatrix(b)
	b = appendZeros(b, 24) // pre_defined
	b = be32(b, TrackID+1) // next_track_ID
	b = endBox(b, mvhd)

	b, trak := startBox(b, typTrak)
	b, tkhd := startFullBox(b, typTkhd, 0, 0x000007) // enabled, in movie, in preview
	b = be32(b, 0)                                   // creation_time
	b = be32(b, 0)                                   // modification_time
	b = be32(b, TrackID)
	b = be32(b, 0)        // reserved
	b = be32(b, 0)        // duration
	b = appendZeros(b, 8) // reserved
	b = be16(b, 0)        // layer
	b = be16(b, 0)        // alternate_group
	b = be16(b, 0)        // volume: 0 for video
	b = be16(b, 0)        // reserved
	b = appendMatrix(b)
	b = be32(b, uint32(t.Width)<<16)
	b = be32(b, uint32(t.Height)<<16)
	b = endBox(b, tkhd)

	b, mdia := startBox(b, typMdia)
	b, mdhd := startFullBox(b, typMdhd, 0, 0)
	b = be32(b, 0) // creation_time
	b = be32(b, 0) // modification_time
	b = be32(b, Timescale)
	b = be32(b, 0)      // duration
	b = be16(b, 0x55c4) // language "und" (ISO 639-2/T, 5 bits per letter)
	b = be16(b, 0)      // pre_defined
	b = endBox(b, mdhd)
	b = appendHdlr(b)

	b, minf := startBox(b, typMinf)
	b = appendVmhdDinf(b)

	b, stbl := startBox(b, typStbl)
	b, stsd := startFullBox(b, typStsd, 0, 0)
	b = be32(b, 1) // entry_count
	b = append(b, entry...)
	b = endBox(b, stsd)
	for _, typ := range []string{"stts", "stsc", "stco"} {
		var at int
		b, at = startFullBox(b, boxType(typ), 0, 0)
		b = be32(b, 0) // entry_count
		b = endBox(b, at)
	}
	b, stsz := startFullBox(b, boxType("stsz"), 0, 0)
	b = be32(b, 0) // sample_size
	b = be32(b, 0) // sample_count
	b = endBox(b, stsz)
	b = endBox(b, stbl)
	b = endBox(b, minf)
	b = endBox(b, mdia)
	b = endBox(b, trak)

	b, mvex := startBox(b, typMvex)
	b, trex := startFullBox(b, typTrex, 0, 0)
	b = be32(b, TrackID)
	b = be32(b, 1) // default_sample_description_index
	b = be32(b, 0) // default_sample_duration
	b = be32(b, 0) // default_sample_size
	b = be32(b, 0) // default_sample_flags
	b = endBox(b, trex)
	b = endBox(b, mvex)
	b = endBox(b, moov)
	return b, nil
}

// SampleEntry returns the sample entry box that Init puts in stsd for t,
// complete with its header: avc1 with avcC for H.264, hvc1 with hvcC for
// H.265, the width and height taken from t or, when both are zero, from the
// SPS. It does no I/O. It fails as Init does: on a codec other than H.264
// or H.265, a missing, oversized or mistyped parameter set, an SPS that
// cannot be parsed, or a size outside 1..65535.
func SampleEntry(t Track) ([]byte, error) {
	entry, _, err := sampleEntry(&t)
	if err != nil {
		return nil, fmt.Errorf("mp4 sample entry: %w", err)
	}
	return entry, nil
}

// sampleEntry builds t's sample entry, fills in t's size from the SPS when
// it is zero, and returns the entry with the ftyp brand of its codec.
func sampleEntry(t *Track) (entry []byte, brand string, err error) {
	switch t.Codec {
	case media.CodecH264:
		brand = "avc1"
		entry, err = avcSampleEntry(t)
	case media.CodecH265:
		brand = "hvc1"
		entry, err = hevcSampleEntry(t)
	default:
		return nil, "", fmt.Errorf("codec %q is not H.264 or H.265", t.Codec)
	}
	if err != nil {
		return nil, "", err
	}
	if t.Width <= 0 || t.Height <= 0 || t.Width > 0xffff || t.Height > 0xffff {
		return nil, "", fmt.Errorf("size %dx%d out of range", t.Width, t.Height)
	}
	return entry, brand, nil
}

// appendHdlr appends the video handler box of the track.
func appendHdlr(b []byte) []byte {
	b, hdlr := startFullBox(b, typHdlr, 0, 0)
	b = be32(b, 0) // pre_defined
	b = append(b, "vide"...)
	b = appendZeros(b, 12) // reserved
	b = append(b, "Custos video\x00"...)
	return endBox(b, hdlr)
}

// appendVmhdDinf appends the first two boxes of a video minf: vmhd and a
// dinf whose single data reference is the file itself.
func appendVmhdDinf(b []byte) []byte {
	b, vmhd := startFullBox(b, boxType("vmhd"), 0, 1)
	b = appendZeros(b, 8) // graphicsmode, opcolor
	b = endBox(b, vmhd)
	b, dinf := startBox(b, boxType("dinf"))
	b, dref := startFullBox(b, boxType("dref"), 0, 0)
	b = be32(b, 1)                                   // entry_count
	b, url := startFullBox(b, boxType("url "), 0, 1) // media in the same file
	b = endBox(b, url)
	b = endBox(b, dref)
	return endBox(b, dinf)
}

// appendVisualSampleEntry appends the VisualSampleEntry fields (14496-12
// 12.1.3) that precede the codec's configuration box.
func appendVisualSampleEntry(b []byte, w, h int) []byte {
	b = appendZeros(b, 6)  // reserved
	b = be16(b, 1)         // data_reference_index
	b = appendZeros(b, 16) // pre_defined, reserved, pre_defined[3]
	b = be16(b, uint16(w))
	b = be16(b, uint16(h))
	b = be32(b, 0x00480000) // horizresolution 72 dpi
	b = be32(b, 0x00480000) // vertresolution 72 dpi
	b = be32(b, 0)          // reserved
	b = be16(b, 1)          // frame_count
	b = appendZeros(b, 32)  // compressorname (empty Pascal string)
	b = be16(b, 0x0018)     // depth
	b = be16(b, 0xffff)     // pre_defined = -1
	return b
}

func checkParamSet(name string, nalu []byte, wantType uint8, typ func([]byte) uint8) error {
	switch {
	case len(nalu) == 0:
		return fmt.Errorf("no %s", name)
	case len(nalu) > maxParamSetLen:
		return fmt.Errorf("%s of %d bytes exceeds %d", name, len(nalu), maxParamSetLen)
	case typ(nalu) != wantType:
		return fmt.Errorf("%s has NAL type %d, want %d", name, typ(nalu), wantType)
	}
	return nil
}

// avcSampleEntry builds avc1 + avcC (14496-15 5.3.3.1) and fills in t's
// size from the SPS when it is zero.
func avcSampleEntry(t *Track) ([]byte, error) {
	p := t.Params
	if err := checkParamSet("SPS", p.SPS, h264.NALSPS, h264.Type); err != nil {
		return nil, err
	}
	if err := checkParamSet("PPS", p.PPS, h264.NALPPS, h264.Type); err != nil {
		return nil, err
	}
	sps, err := h264.ParseSPS(p.SPS)
	if err != nil {
		return nil, err
	}
	if t.Width == 0 && t.Height == 0 {
		t.Width, t.Height = sps.Width, sps.Height
	}
	b, entry := startBox(nil, typAvc1)
	b = appendVisualSampleEntry(b, t.Width, t.Height)
	b, avcC := startBox(b, typAvcC)
	b = append(b, 1, sps.ProfileIDC, sps.ConstraintFlags, sps.LevelIDC)
	b = append(b, 0xfc|3) // reserved 6 bits, lengthSizeMinusOne = 3
	b = append(b, 0xe0|1) // reserved 3 bits, numOfSequenceParameterSets = 1
	b = be16(b, uint16(len(p.SPS)))
	b = append(b, p.SPS...)
	b = append(b, 1) // numOfPictureParameterSets
	b = be16(b, uint16(len(p.PPS)))
	b = append(b, p.PPS...)
	if avcHasExtension(sps.ProfileIDC) {
		b = append(b, 0xfc|byte(sps.ChromaFormatIDC&3))
		b = append(b, 0xf8|byte((sps.BitDepthLuma-8)&7))
		b = append(b, 0xf8|byte((sps.BitDepthChroma-8)&7))
		b = append(b, 0) // numOfSequenceParameterSetExt
	}
	b = endBox(b, avcC)
	return endBox(b, entry), nil
}

// avcHasExtension reports whether avcC carries the chroma format and bit
// depth fields: every profile but Baseline, Main and Extended.
func avcHasExtension(profileIDC uint8) bool {
	return profileIDC != 66 && profileIDC != 77 && profileIDC != 88
}

// hevcPTL is the general profile_tier_level of an H.265 SPS, as raw bytes:
// profile space/tier/idc, 32 compatibility flags, 48 constraint bits, level.
type hevcPTL [12]byte

// parseHEVCPTL reads the general profile_tier_level and the sub-layer count
// and temporal ID nesting flag from an SPS NAL unit (7.3.2.2.1).
func parseHEVCPTL(sps []byte) (ptl hevcPTL, maxSubLayers int, nested bool, err error) {
	if len(sps) < 3 {
		return ptl, 0, false, errors.New("SPS too short")
	}
	end := min(len(sps), 2+1+12+16) // enough for the fields even with emulation prevention
	rbsp := h265.RemoveEmulationPrevention(sps[2:end])
	if len(rbsp) < 13 {
		return ptl, 0, false, errors.New("SPS too short for profile_tier_level")
	}
	maxSubLayers = int(rbsp[0]>>1&7) + 1
	nested = rbsp[0]&1 == 1
	copy(ptl[:], rbsp[1:13])
	return ptl, maxSubLayers, nested, nil
}

// hevcSampleEntry builds hvc1 + hvcC (14496-15 8.3.3.1) and fills in t's
// size from the SPS when it is zero.
func hevcSampleEntry(t *Track) ([]byte, error) {
	p := t.Params
	if err := checkParamSet("VPS", p.VPS, h265.NALVPS, h265.Type); err != nil {
		return nil, err
	}
	if err := checkParamSet("SPS", p.SPS, h265.NALSPS, h265.Type); err != nil {
		return nil, err
	}
	if err := checkParamSet("PPS", p.PPS, h265.NALPPS, h265.Type); err != nil {
		return nil, err
	}
	sps, err := h265.ParseSPS(p.SPS)
	if err != nil {
		return nil, err
	}
	ptl, subLayers, nested, err := parseHEVCPTL(p.SPS)
	if err != nil {
		return nil, err
	}
	if t.Width == 0 && t.Height == 0 {
		t.Width, t.Height = sps.Width, sps.Height
	}
	b, entry := startBox(nil, typHvc1)
	b = appendVisualSampleEntry(b, t.Width, t.Height)
	b, hvcC := startBox(b, typHvcC)
	b = append(b, 1) // configurationVersion
	b = append(b, ptl[:]...)
	b = be16(b, 0xf000) // reserved 4 bits, min_spatial_segmentation_idc 0
	b = append(b, 0xfc) // reserved 6 bits, parallelismType 0 (unknown)
	b = append(b, 0xfc|byte(sps.ChromaFormatIDC&3))
	b = append(b, 0xf8|byte((sps.BitDepthLuma-8)&7))
	b = append(b, 0xf8|byte((sps.BitDepthChroma-8)&7))
	b = be16(b, 0) // avgFrameRate: unspecified
	// constantFrameRate 0, numTemporalLayers, temporalIdNested,
	// lengthSizeMinusOne 3.
	flags := byte(subLayers&7)<<3 | 3
	if nested {
		flags |= 1 << 2
	}
	b = append(b, flags)
	b = append(b, 3) // numOfArrays
	for _, ps := range []struct {
		typ  uint8
		nalu []byte
	}{{h265.NALVPS, p.VPS}, {h265.NALSPS, p.SPS}, {h265.NALPPS, p.PPS}} {
		b = append(b, 0x80|ps.typ) // array_completeness 1, reserved 0, NAL_unit_type
		b = be16(b, 1)             // numNalus
		b = be16(b, uint16(len(ps.nalu)))
		b = append(b, ps.nalu...)
	}
	b = endBox(b, hvcC)
	return endBox(b, entry), nil
}

// CodecString returns the RFC 6381 codecs parameter of t for MSE and HLS:
// "avc1.PPCCLL" (profile, constraint flags, level in upper-case hex, e.g.
// "avc1.640028") or "hvc1.<space><profile>.<compat>.<tier><level>[.<constraint
// bytes>]" (14496-15 Annex E, e.g. "hvc1.1.6.L120.B0"). It does no I/O. It
// returns "" when the codec is not H.264 or H.265 or the SPS is too short.
func CodecString(t Track) string {
	switch t.Codec {
	case media.CodecH264:
		sps := t.Params.SPS
		if len(sps) < 4 {
			return ""
		}
		return fmt.Sprintf("avc1.%02X%02X%02X", sps[1], sps[2], sps[3])
	case media.CodecH265:
		ptl, _, _, err := parseHEVCPTL(t.Params.SPS)
		if err != nil {
			return ""
		}
		return hevcCodecString(ptl)
	}
	return ""
}

// hevcCodecString formats the profile_tier_level as 14496-15 E.3 says.
func hevcCodecString(ptl hevcPTL) string {
	var sb strings.Builder
	sb.WriteString("hvc1.")
	if space := ptl[0] >> 6; space > 0 {
		sb.WriteByte('A' + space - 1)
	}
	fmt.Fprintf(&sb, "%d.", ptl[0]&0x1f)
	compat := uint32(ptl[1])<<24 | uint32(ptl[2])<<16 | uint32(ptl[3])<<8 | uint32(ptl[4])
	var rev uint32 // bit order reversed: flag j becomes bit j
	for j := 0; j < 32; j++ {
		if compat&(1<<(31-j)) != 0 {
			rev |= 1 << j
		}
	}
	fmt.Fprintf(&sb, "%X.", rev)
	tier := byte('L')
	if ptl[0]&0x20 != 0 {
		tier = 'H'
	}
	fmt.Fprintf(&sb, "%c%d", tier, ptl[11])
	constraints := ptl[5:11]
	n := len(constraints)
	for n > 0 && constraints[n-1] == 0 {
		n--
	}
	for _, c := range constraints[:n] {
		fmt.Fprintf(&sb, ".%X", c)
	}
	return sb.String()
}
