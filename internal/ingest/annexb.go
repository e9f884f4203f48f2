package ingest

import (
	"bytes"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/media"
)

// AppendAnnexB appends au to dst as an Annex B access unit (4-byte start
// codes) in the order decoders' stream parsers expect: an access unit
// delimiter if present, then parameter sets, then everything else. Some
// cameras (and GStreamer's payloader) repeat SPS/PPS before every slice of
// a key frame; the standard allows that, but raw-stream parsers such as
// ffmpeg's then split the picture in two, so repeats are hoisted to the
// front and written once. A key frame with no parameter sets in band gets
// au.Params, so every key frame is an entry point. It does no I/O.
func AppendAnnexB(dst []byte, codec media.Codec, au *media.AccessUnit) []byte {
	sc := []byte{0, 0, 0, 1}
	isAUD, isParam := h264AUD, h264.IsParamSet
	if codec == media.CodecH265 {
		isAUD, isParam = h265AUD, h265.IsParamSet
	}
	for _, n := range au.NALUs {
		if isAUD(n) {
			dst = append(append(dst, sc...), n...)
			break
		}
	}
	var written [][]byte
	for _, n := range au.NALUs {
		if !isParam(n) || containsNALU(written, n) {
			continue
		}
		written = append(written, n)
		dst = append(append(dst, sc...), n...)
	}
	if au.Key && len(written) == 0 {
		for _, ps := range [][]byte{au.Params.VPS, au.Params.SPS, au.Params.PPS} {
			if len(ps) > 0 {
				dst = append(append(dst, sc...), ps...)
			}
		}
	}
	for _, n := range au.NALUs {
		if len(n) == 0 || isAUD(n) || isParam(n) {
			continue
		}
		dst = append(append(dst, sc...), n...)
	}
	return dst
}

func h264AUD(n []byte) bool { return len(n) > 0 && h264.Type(n) == h264.NALAUD }
func h265AUD(n []byte) bool { return len(n) > 1 && h265.Type(n) == h265.NALAUD }

func containsNALU(list [][]byte, n []byte) bool {
	for _, m := range list {
		if bytes.Equal(m, n) {
			return true
		}
	}
	return false
}
