package mp4

import (
	"errors"
	"fmt"
	"math"

	"github.com/custos-nvr/custos/internal/media"
)

// Sample is one access unit of a fragment, in decoding order.
type Sample struct {
	// Dur90k is the decode duration: the next sample's decode time minus
	// this one's.
	Dur90k uint32
	// Size is the byte length of the sample's data (length-prefixed NAL
	// units, as AppendSampleData writes them).
	Size uint32
	// Key marks a sync sample (IDR or IRAP picture).
	Key bool
	// CTSOffset90k is presentation time minus decode time; non-zero only
	// with B-frames. Negative values are allowed (trun version 1).
	CTSOffset90k int32
}

// Sample flags (14496-12 8.8.3.1) for key and other samples.
const (
	flagsKey    = 2 << 24             // sample_depends_on = 2 (depends on no other)
	flagsNonKey = 1<<24 | 1<<16       // sample_depends_on = 1, sample_is_non_sync_sample
	flagNonSync = 1 << 16             // sample_is_non_sync_sample
	dependsMask = 3 << 24             // sample_depends_on
	maxSamples  = 1 << 20             // per fragment, written or read
	mdatLarge   = math.MaxUint32 - 16 // mdat payloads above this need a 64-bit size
)

// trun flags (14496-12 8.8.8.1).
const (
	trunDataOffset       = 0x000001
	trunFirstSampleFlags = 0x000004
	trunDuration         = 0x000100
	trunSize             = 0x000200
	trunFlags            = 0x000400
	trunCTSOffset        = 0x000800
)

// tfhd flags (14496-12 8.8.7.1).
const (
	tfhdBaseDataOffset    = 0x000001
	tfhdSampleDescIndex   = 0x000002
	tfhdDefaultDuration   = 0x000008
	tfhdDefaultSize       = 0x000010
	tfhdDefaultFlags      = 0x000020
	tfhdDurationIsEmpty   = 0x010000
	tfhdDefaultBaseIsMoof = 0x020000
)

// Errors of AppendFragmentChecked.
var (
	ErrNoSamples    = errors.New("mp4: fragment without samples")
	ErrTooMany      = errors.New("mp4: too many samples in one fragment")
	ErrSizeMismatch = errors.New("mp4: sample sizes do not add up to the data length")
)

// CheckFragment reports whether AppendFragment accepts samples and data:
// at least one and at most 1<<20 samples, whose sizes add up to len(data).
// It does no I/O.
func CheckFragment(samples []Sample, data []byte) error {
	if len(samples) == 0 {
		return ErrNoSamples
	}
	if len(samples) > maxSamples {
		return fmt.Errorf("%w: %d > %d", ErrTooMany, len(samples), maxSamples)
	}
	var total uint64
	for i := range samples {
		total += uint64(samples[i].Size)
	}
	if total != uint64(len(data)) {
		return fmt.Errorf("%w: sizes sum to %d, data is %d bytes", ErrSizeMismatch, total, len(data))
	}
	return nil
}

// AppendFragmentChecked appends one fragment to dst and returns the
// extended buffer: a moof (mfhd with sequence number seq; one traf with a
// tfhd for track 1 using default-base-is-moof, a version 1 tfdt holding
// baseDecodeTime90k, and a version 1 trun with a data offset and per-sample
// duration, size and flags, plus composition offsets when any is non-zero)
// followed by an mdat holding data. data must be the samples' bytes in
// order, so the sizes must add up to len(data). It does no I/O and
// allocates only when dst lacks capacity. On error (see CheckFragment) it
// returns dst unchanged.
func AppendFragmentChecked(dst []byte, seq uint32, baseDecodeTime90k uint64, samples []Sample, data []byte) ([]byte, error) {
	if err := CheckFragment(samples, data); err != nil {
		return dst, err
	}
	return append(appendFragmentHeader(dst, seq, baseDecodeTime90k, samples, len(data), len(data)), data...), nil
}

// AppendFragment is AppendFragmentChecked for callers that build samples
// and data together and so cannot get them wrong: it panics where
// AppendFragmentChecked returns an error, since a mismatch is a bug in the
// caller that would otherwise write an undecodable file.
func AppendFragment(dst []byte, seq uint32, baseDecodeTime90k uint64, samples []Sample, data []byte) []byte {
	if err := CheckFragment(samples, data); err != nil {
		panic(err)
	}
	return append(appendFragmentHeader(dst, seq, baseDecodeTime90k, samples, len(data), len(data)), data...)
}

// AppendFragmentHeader appends only the moof box and the mdat header of a
// fragment whose sample data (dataLen bytes, the sum of the sample sizes)
// the caller writes right after it, so the data need not be copied into
// one buffer. It panics on the same inconsistencies as AppendFragment.
func AppendFragmentHeader(dst []byte, seq uint32, baseDecodeTime90k uint64, samples []Sample, dataLen int) []byte {
	var sum int
	for i := range samples {
		sum += int(samples[i].Size)
	}
	if len(samples) == 0 || sum != dataLen {
		panic(fmt.Sprintf("mp4: fragment header for %d samples of %d bytes, data is %d bytes", len(samples), sum, dataLen))
	}
	return appendFragmentHeader(dst, seq, baseDecodeTime90k, samples, dataLen, 0)
}

// appendFragmentHeader writes moof and the mdat header, reserving room
// for reserve more bytes (the data, when the caller appends it).
func appendFragmentHeader(dst []byte, seq uint32, baseDecodeTime90k uint64, samples []Sample, dataLen, reserve int) []byte {
	withCTS := false
	for i := range samples {
		if samples[i].CTSOffset90k != 0 {
			withCTS = true
			break
		}
	}
	perSample := 12
	flags := uint32(trunDataOffset | trunDuration | trunSize | trunFlags)
	if withCTS {
		perSample = 16
		flags |= trunCTSOffset
	}
	const (
		mfhdLen = 16
		tfhdLen = 16
		tfdtLen = 20
	)
	trunLen := 20 + perSample*len(samples)
	trafLen := 8 + tfhdLen + tfdtLen + trunLen
	moofLen := 8 + mfhdLen + trafLen
	mdatHdr := 8
	if uint64(dataLen) > mdatLarge {
		mdatHdr = 16
	}
	if need := moofLen + mdatHdr + reserve; cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}

	start := len(dst)
	dst = be32(dst, uint32(moofLen))
	dst = be32(dst, typMoof)
	dst = be32(dst, mfhdLen)
	dst = be32(dst, typMfhd)
	dst = be32(dst, 0)
	dst = be32(dst, seq)

	dst = be32(dst, uint32(trafLen))
	dst = be32(dst, typTraf)
	dst = be32(dst, tfhdLen)
	dst = be32(dst, typTfhd)
	dst = be32(dst, tfhdDefaultBaseIsMoof)
	dst = be32(dst, TrackID)
	dst = be32(dst, tfdtLen)
	dst = be32(dst, typTfdt)
	dst = be32(dst, 1<<24) // version 1
	dst = be64(dst, baseDecodeTime90k)

	dst = be32(dst, uint32(trunLen))
	dst = be32(dst, typTrun)
	dst = be32(dst, 1<<24|flags) // version 1: signed composition offsets
	dst = be32(dst, uint32(len(samples)))
	dst = be32(dst, uint32(moofLen+mdatHdr)) // data_offset from the moof start
	for i := range samples {
		s := &samples[i]
		dst = be32(dst, s.Dur90k)
		dst = be32(dst, s.Size)
		if s.Key {
			dst = be32(dst, flagsKey)
		} else {
			dst = be32(dst, flagsNonKey)
		}
		if withCTS {
			dst = be32(dst, uint32(s.CTSOffset90k))
		}
	}
	if len(dst)-start != moofLen {
		panic("mp4: moof length miscomputed")
	}

	if mdatHdr == 16 {
		dst = be32(dst, 1)
		dst = be32(dst, typMdat)
		dst = be64(dst, uint64(dataLen)+16)
	} else {
		dst = be32(dst, uint32(dataLen+8))
		dst = be32(dst, typMdat)
	}
	return dst
}

// AppendSampleData appends nalus to dst as MP4 sample data (each NAL unit
// preceded by its 4-byte big-endian length, lengthSizeMinusOne = 3) and
// returns the extended buffer. It keeps every NAL unit, in-band parameter
// sets and SEI included, except empty ones and access unit delimiters, which
// have no place in MP4 (14496-15): an H.264 AUD (first byte 0x09, since its
// nal_ref_idc must be 0) or an H.265 base-layer AUD (type 35, first byte
// 0x46), of at most 5 bytes. The two codecs' patterns do not collide on
// conforming streams (0x46 would be an H.264 SEI with a non-zero
// nal_ref_idc, which H.264 forbids), so no codec argument is needed. It does
// no I/O and allocates only when dst lacks capacity. NAL units longer than
// 4 GiB cannot occur in Custos (RTP reassembly caps them far lower) and
// would be written with a truncated length.
func AppendSampleData(dst []byte, nalus [][]byte) []byte {
	need := 0
	for _, n := range nalus {
		need += 4 + len(n)
	}
	if cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	for _, n := range nalus {
		if len(n) == 0 || media.IsAUD(n) {
			continue
		}
		dst = be32(dst, uint32(len(n)))
		dst = append(dst, n...)
	}
	return dst
}
