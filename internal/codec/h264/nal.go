// Package h264 holds the H.264 (ISO/IEC 14496-10) bitstream helpers Custos
// needs without decoding pictures: NAL unit types, Annex B framing,
// emulation-prevention removal, an exp-Golomb bit reader and SPS parsing.
// It does no I/O and has no state; every function is safe for concurrent
// use. The Annex B and bit-reader helpers are shared with package h265.
package h264

// NAL unit types (Table 7-1) that Custos looks at.
const (
	NALSlice    = 1  // coded slice of a non-IDR picture
	NALSliceA   = 2  // slice data partition A
	NALIDR      = 5  // coded slice of an IDR picture
	NALSEI      = 6  // supplemental enhancement information
	NALSPS      = 7  // sequence parameter set
	NALPPS      = 8  // picture parameter set
	NALAUD      = 9  // access unit delimiter
	NALEndSeq   = 10 // end of sequence
	NALEndStrm  = 11 // end of stream
	NALFiller   = 12 // filler data
	NALSPSExt   = 13 // SPS extension
	NALPrefix   = 14 // prefix NAL unit (SVC)
	NALSubSPS   = 15 // subset SPS (SVC/MVC)
	NALSliceExt = 20 // coded slice extension (SVC/MVC)
)

// Type returns the nal_unit_type of nalu, or 0 for an empty slice.
func Type(nalu []byte) uint8 {
	if len(nalu) == 0 {
		return 0
	}
	return nalu[0] & 0x1f
}

// IsKey reports whether nalu is a slice of an IDR picture (type 5).
func IsKey(nalu []byte) bool { return Type(nalu) == NALIDR }

// IsVCL reports whether nalu carries coded picture data (types 1 to 5).
func IsVCL(nalu []byte) bool {
	t := Type(nalu)
	return t >= NALSlice && t <= NALIDR
}

// IsParamSet reports whether nalu is an SPS or a PPS.
func IsParamSet(nalu []byte) bool {
	t := Type(nalu)
	return t == NALSPS || t == NALPPS
}

// SplitAnnexB splits an Annex B byte stream at its 3- and 4-byte start codes
// and returns the NAL units without start codes. The results alias b (no
// copy). Bytes before the first start code are ignored, trailing zero bytes
// of each unit (trailing_zero_8bits) are trimmed, and empty units are
// skipped. It returns nil when b holds no start code.
func SplitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1 // start of the current NAL unit, -1 before the first start code
	i := 0
	for i+2 < len(b) {
		// A start code needs b[i+2] == 1 and two zeros before it.
		if b[i+2] > 1 {
			i += 3
			continue
		}
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			i++
			continue
		}
		if start >= 0 {
			out = appendTrimmed(out, b[start:i])
		}
		i += 3
		start = i
	}
	if start >= 0 {
		out = appendTrimmed(out, b[start:])
	}
	return out
}

func appendTrimmed(out [][]byte, nalu []byte) [][]byte {
	n := len(nalu)
	for n > 0 && nalu[n-1] == 0 {
		n--
	}
	if n == 0 {
		return out
	}
	return append(out, nalu[:n:n])
}

// AppendAnnexB appends each non-empty NAL unit of nalus to dst, preceded by
// a 4-byte start code, and returns the extended slice (dst's capacity is
// reused when large enough).
func AppendAnnexB(dst []byte, nalus [][]byte) []byte {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, n...)
	}
	return dst
}

// RemoveEmulationPrevention returns the RBSP of a NAL unit: every
// emulation_prevention_three_byte (the 03 in 00 00 03) removed. It returns
// b itself when there is none, else a new slice; b is never modified.
func RemoveEmulationPrevention(b []byte) []byte {
	first := -1
	for i := 2; i < len(b); i++ {
		if b[i] == 3 && b[i-1] == 0 && b[i-2] == 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	out = append(out, b[:first]...)
	zeros := 0
	for i := first + 1; i < len(b); i++ {
		c := b[i]
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
