// Package mp4 writes and reads the fragmented MP4 (ISO/IEC 14496-12, with
// the AVC and HEVC sample entries of ISO/IEC 14496-15) that Custos records:
// one video track, an init segment (ftyp+moov) followed by moof+mdat
// fragments, samples stored as the camera sent them (no transcoding).
//
// The writer functions do no I/O: they append to caller-provided buffers and
// are safe for concurrent use on distinct buffers. The reader functions
// (ScanFile, ReadSamples) read through an io.ReaderAt, hold no state between
// calls and are safe for concurrent use when the ReaderAt is.
//
// Media time is 90 kHz throughout: the movie and media timescales are both
// 90000, so every duration and time in this package is in 90 kHz ticks.
package mp4

import "encoding/binary"

// Timescale is the movie (mvhd) and media (mdhd) timescale of every file
// this package writes, and the only one ScanFile accepts: the RTP video
// clock.
const Timescale = 90000

// TrackID is the track_ID of the single video track.
const TrackID = 1

// boxType packs a four-character code into a uint32 as it is on the wire.
func boxType(s string) uint32 {
	return binary.BigEndian.Uint32([]byte(s))
}

// Four-character codes used by the writer and reader.
var (
	typFtyp = boxType("ftyp")
	typMoov = boxType("moov")
	typMvhd = boxType("mvhd")
	typTrak = boxType("trak")
	typTkhd = boxType("tkhd")
	typMdia = boxType("mdia")
	typMdhd = boxType("mdhd")
	typHdlr = boxType("hdlr")
	typMinf = boxType("minf")
	typStbl = boxType("stbl")
	typStsd = boxType("stsd")
	typAvc1 = boxType("avc1")
	typAvc3 = boxType("avc3")
	typAvcC = boxType("avcC")
	typHvc1 = boxType("hvc1")
	typHev1 = boxType("hev1")
	typHvcC = boxType("hvcC")
	typMvex = boxType("mvex")
	typTrex = boxType("trex")
	typMoof = boxType("moof")
	typMfhd = boxType("mfhd")
	typTraf = boxType("traf")
	typTfhd = boxType("tfhd")
	typTfdt = boxType("tfdt")
	typTrun = boxType("trun")
	typMdat = boxType("mdat")
	typFree = boxType("free")
	typSkip = boxType("skip")
	typStyp = boxType("styp")
	typSidx = boxType("sidx")
	typPrft = boxType("prft")
	typEmsg = boxType("emsg")
	typUUID = boxType("uuid")
)

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// startBox appends a box header with a placeholder size and returns the
// buffer and the offset of the box start, to be passed to endBox once the
// body is written. Boxes built this way are limited to 4 GiB, which the
// init segment and moof never approach.
func startBox(b []byte, typ uint32) ([]byte, int) {
	at := len(b)
	b = be32(b, 0)
	b = be32(b, typ)
	return b, at
}

// startFullBox is startBox followed by a version and 24-bit flags.
func startFullBox(b []byte, typ uint32, version uint8, flags uint32) ([]byte, int) {
	b, at := startBox(b, typ)
	b = be32(b, uint32(version)<<24|flags&0xffffff)
	return b, at
}

// endBox writes the size of the box that starts at at.
func endBox(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at))
	return b
}

// appendZeros appends n zero bytes.
func appendZeros(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, 0)
	}
	return b
}

// unityMatrix is the identity transformation matrix of mvhd and tkhd
// (16.16 and 2.30 fixed point).
var unityMatrix = [9]uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func appendMatrix(b []byte) []byte {
	for _, v := range unityMatrix {
		b = be32(b, v)
	}
	return b
}
