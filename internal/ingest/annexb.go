package ingest

import "github.com/custos-nvr/custos/internal/media"

// AppendAnnexB appends au to dst as Annex B (4-byte start codes). A key
// frame that carries no parameter sets in band gets au.Params first, so
// every key frame is a valid entry point for a decoder.
func AppendAnnexB(dst []byte, codec media.Codec, au *media.AccessUnit) []byte {
	sc := []byte{0, 0, 0, 1}
	if au.Key && !hasInbandParams(codec, au.NALUs) {
		for _, ps := range [][]byte{au.Params.VPS, au.Params.SPS, au.Params.PPS} {
			if len(ps) > 0 {
				dst = append(append(dst, sc...), ps...)
			}
		}
	}
	for _, n := range au.NALUs {
		dst = append(append(dst, sc...), n...)
	}
	return dst
}

func hasInbandParams(codec media.Codec, nalus [][]byte) bool {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		if codec == media.CodecH265 {
			if (n[0]>>1)&0x3f == 33 {
				return true
			}
		} else if n[0]&0x1f == 7 {
			return true
		}
	}
	return false
}
