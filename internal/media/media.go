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
