// Package h265 holds the H.265 (ITU-T H.265 / ISO/IEC 23008-2) bitstream
// helpers Custos needs without decoding pictures: NAL unit types, Annex B
// framing, emulation-prevention removal and SPS parsing. It does no I/O and
// has no state; every function is safe for concurrent use. Annex B framing
// and the bit reader are the same as H.264's and come from package h264.
package h265

import "github.com/custos-nvr/custos/internal/codec/h264"

// NAL unit types (Table 7-1) that Custos looks at.
const (
	NALTrailN    = 0
	NALTrailR    = 1
	NALBLAWLP    = 16 // first IRAP type
	NALBLAWRADL  = 17
	NALBLANLP    = 18
	NALIDRWRADL  = 19
	NALIDRNLP    = 20
	NALCRA       = 21
	NALIRAPMax   = 23 // last (reserved) IRAP type
	NALVPS       = 32
	NALSPS       = 33
	NALPPS       = 34
	NALAUD       = 35
	NALEOS       = 36
	NALEOB       = 37
	NALFD        = 38
	NALSEIPrefix = 39
	NALSEISuffix = 40
)

// Type returns the nal_unit_type of nalu, or 0 (TRAIL_N) for a unit shorter
// than its 2-byte header.
func Type(nalu []byte) uint8 {
	if len(nalu) < 2 {
		return 0
	}
	return (nalu[0] >> 1) & 0x3f
}

// IsKey reports whether nalu is an IRAP picture's slice (types 16 to 23:
// BLA, IDR, CRA and reserved IRAP).
func IsKey(nalu []byte) bool {
	t := Type(nalu)
	return len(nalu) >= 2 && t >= NALBLAWLP && t <= NALIRAPMax
}

// IsVCL reports whether nalu carries coded picture data (types 0 to 31).
func IsVCL(nalu []byte) bool { return len(nalu) >= 2 && Type(nalu) < 32 }

// IsParamSet reports whether nalu is a VPS, SPS or PPS.
func IsParamSet(nalu []byte) bool {
	t := Type(nalu)
	return len(nalu) >= 2 && t >= NALVPS && t <= NALPPS
}

// SplitAnnexB is h264.SplitAnnexB: Annex B framing is codec-independent.
func SplitAnnexB(b []byte) [][]byte { return h264.SplitAnnexB(b) }

// AppendAnnexB is h264.AppendAnnexB.
func AppendAnnexB(dst []byte, nalus [][]byte) []byte { return h264.AppendAnnexB(dst, nalus) }

// RemoveEmulationPrevention is h264.RemoveEmulationPrevention.
func RemoveEmulationPrevention(b []byte) []byte { return h264.RemoveEmulationPrevention(b) }
