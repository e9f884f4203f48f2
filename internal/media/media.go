// Package media holds the codec-independent types that flow from the RTSP
// client through depacketizers to recorders and viewers: access units,
// parameter sets and depacketizer statistics. It does no I/O.
package media

// Codec names a media encoding as Custos reports it (lower case, stable in
// JSON and logs).
type Codec string

// Codecs Custos knows by name. Others are carried as the SDP encoding name.
const (
	CodecH264     Codec = "h264"
	CodecH265     Codec = "h265"
	CodecAAC      Codec = "aac"
	CodecPCMA     Codec = "pcma"
	CodecPCMU     Codec = "pcmu"
	CodecOpus     Codec = "opus"
	CodecMetadata Codec = "onvif-metadata"
)

// IsVideo reports whether c is a video codec Custos can depacketize.
func (c Codec) IsVideo() bool { return c == CodecH264 || c == CodecH265 }

// ParamSets are the decoder parameter sets of an H.264 or H.265 stream, each a
// single NAL unit without start code. VPS is empty for H.264. A ParamSets value
// is immutable once published: when a stream changes its parameters the
// depacketizer publishes new slices instead of mutating the old ones, so
// copies may be shared between goroutines.
type ParamSets struct {
	VPS []byte
	SPS []byte
	PPS []byte
}

// Complete reports whether the sets needed to decode are present for codec c.
func (p ParamSets) Complete(c Codec) bool {
	if len(p.SPS) == 0 || len(p.PPS) == 0 {
		return false
	}
	return c != CodecH265 || len(p.VPS) > 0
}

// AccessUnit is one coded picture (all NAL units that share an RTP timestamp).
type AccessUnit struct {
	// PTS90k is the presentation time on the RTP clock (90 kHz for video),
	// extended to 64 bits so it never wraps. The first access unit of a
	// depacketizer carries the raw RTP timestamp of its packets; later ones
	// follow by signed 32-bit differences, so B-frames step backwards.
	PTS90k int64
	// Key is true for IDR (H.264) and IRAP (H.265) pictures.
	Key bool
	// NALUs are the NAL units in decoding order, without start codes,
	// including any in-band parameter sets. The caller owns them.
	NALUs [][]byte
	// Params are the parameter sets in force for this access unit (from the
	// SDP, replaced by in-band ones as they arrive).
	Params ParamSets
	// ParamsChanged is true when Params differ from those of the previous
	// access unit this depacketizer returned (and on the first one).
	ParamsChanged bool
	// Seq is the RTP sequence number of the last packet of the unit, for
	// error messages that must locate a packet in a capture.
	Seq uint16
	// Sample is the unit as one MP4 sample (each NAL unit after a 4-byte
	// big-endian length, access unit delimiters left out: what
	// mp4.AppendSampleData makes), sharing memory with NALUs, so that a
	// recorder can write it without copying. Nil when the producer did not
	// lay it out; the caller owns it like NALUs.
	Sample []byte
}

// IsAUD reports whether nalu is an H.264 or H.265 access unit delimiter,
// which MP4 samples leave out.
func IsAUD(nalu []byte) bool {
	return len(nalu) > 0 && len(nalu) <= 5 && (nalu[0] == 0x09 || nalu[0] == 0x46)
}

// LayOutUnit copies the n NAL units found at span(i) in data into one new
// buffer of exactly the size needed: first every unit an MP4 sample keeps
// (not empty, not an access unit delimiter) after its 4-byte big-endian
// length, then the delimiters. It returns the NAL units in their original
// order (slices of the buffer, capacity capped) and the sample (the
// buffer's first part). One allocation besides the slice headers.
func LayOutUnit(data []byte, n int, span func(i int) (off, end int)) (nalus [][]byte, sample []byte) {
	size, rest := 0, 0
	for i := range n {
		off, end := span(i)
		if nalu := data[off:end]; len(nalu) > 0 && !IsAUD(nalu) {
			size += 4 + len(nalu)
		} else {
			rest += len(nalu)
		}
	}
	buf := make([]byte, size+rest)
	nalus = make([][]byte, n)
	at, tail := 0, size
	for i := range n {
		off, end := span(i)
		nalu := data[off:end]
		if len(nalu) > 0 && !IsAUD(nalu) {
			l := len(nalu)
			buf[at], buf[at+1], buf[at+2], buf[at+3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
			copy(buf[at+4:], nalu)
			nalus[i] = buf[at+4 : at+4+l : at+4+l]
			at += 4 + l
			continue
		}
		copy(buf[tail:], nalu)
		nalus[i] = buf[tail : tail+len(nalu) : tail+len(nalu)]
		tail += len(nalu)
	}
	return nalus, buf[:size:size]
}

// Size returns the total payload bytes of the NAL units.
func (au *AccessUnit) Size() int {
	n := 0
	for _, nalu := range au.NALUs {
		n += len(nalu)
	}
	return n
}

// DepacketizerStats counts what a depacketizer saw. All counters only grow.
type DepacketizerStats struct {
	Packets       uint64 // RTP packets pushed
	LostPackets   uint64 // packets missing according to sequence numbers
	BadPackets    uint64 // packets rejected as malformed
	AccessUnits   uint64 // access units returned by Pull
	DroppedUnits  uint64 // access units discarded (loss, corruption, waiting for a key frame)
	KeyFrames     uint64 // key access units returned
	ParamsUpdates uint64 // in-band parameter set changes
}
