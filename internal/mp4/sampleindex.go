package mp4

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// The sample index is a uuid box the recorder appends when it closes a
// segment file: the location, duration, composition offset and key flag
// of every sample, so that playback learns a file's sample tables in two
// reads instead of one per fragment. It is an optimisation only: readers
// fall back to scanning the fragments when it is absent or does not add up.
//
// Layout: box header (size, "uuid", sampleIndexUUID), version byte 1, one
// entry per fragment, then a 16-byte footer: CRC-32C of the entries, the
// fragment count (u32), "cidx", box size (u32), so a reader finds the box
// from the end of the file and can tell a damaged one.
// Fragments follow one another and the box follows the last: the reader
// refuses an index that says otherwise. Fragment entry: uvarint moof offset, uvarint header length (moof plus
// mdat header: the first sample's data follows), uvarint sample count,
// then per sample uvarint size<<1|key, varint duration minus the previous
// sample's, varint composition offset.

// sampleIndexUUID identifies the box (random, version 4).
var sampleIndexUUID = [16]byte{0x3c, 0x1e, 0x8a, 0x52, 0x9d, 0x47, 0x4f, 0x0b, 0xa6, 0x11, 0x70, 0xe2, 0x5b, 0x93, 0xc4, 0x2d}

const (
	sampleIndexFooter = 16
	maxSampleIndexBox = 64 << 20
	maxIndexedSamples = 1 << 22
)

// SampleIndexWriter accumulates the sample index of a file as its
// fragments are written. The zero value is ready; not safe for concurrent
// use.
type SampleIndexWriter struct {
	buf     []byte
	frags   uint32
	prevDur uint32
}

// AddFragment records a fragment written at offset whose moof and mdat
// header take headerLen bytes, followed by the samples' data.
func (w *SampleIndexWriter) AddFragment(offset int64, headerLen int, samples []Sample) {
	w.buf = binary.AppendUvarint(w.buf, uint64(offset))
	w.buf = binary.AppendUvarint(w.buf, uint64(headerLen))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(samples)))
	for i := range samples {
		s := &samples[i]
		k := uint64(0)
		if s.Key {
			k = 1
		}
		w.buf = binary.AppendUvarint(w.buf, uint64(s.Size)<<1|k)
		w.buf = binary.AppendVarint(w.buf, int64(s.Dur90k)-int64(w.prevDur))
		w.buf = binary.AppendVarint(w.buf, int64(s.CTSOffset90k))
		w.prevDur = s.Dur90k
	}
	w.frags++
}

// Fragments returns the number of fragments recorded.
func (w *SampleIndexWriter) Fragments() int { return int(w.frags) }

// AppendBox appends the index box to dst.
func (w *SampleIndexWriter) AppendBox(dst []byte) []byte {
	size := 8 + 16 + 1 + len(w.buf) + sampleIndexFooter
	dst = be32(dst, uint32(size))
	dst = be32(dst, typUUID)
	dst = append(dst, sampleIndexUUID[:]...)
	dst = append(dst, 1)
	dst = append(dst, w.buf...)
	dst = be32(dst, crc32.Checksum(w.buf, castagnoli))
	dst = be32(dst, w.frags)
	dst = append(dst, "cidx"...)
	return be32(dst, uint32(size))
}

// Reset empties the writer for another file.
func (w *SampleIndexWriter) Reset() { w.buf, w.frags, w.prevDur = w.buf[:0], 0, 0 }

var errNoIndex = errors.New("mp4: no sample index")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readSampleIndex reads the sample index box ending the first size bytes
// of r, fills info.Fragments and calls visit for each sample. It returns
// errNoIndex (and changes nothing) when there is no index or it does not
// agree with the file's layout: fragments in order after the init segment,
// each sample inside the file and before the next fragment.
func readSampleIndex(r io.ReaderAt, size int64, info *FileInfo, visit func(frag int, s SampleInfo)) error {
	if size < info.InitEnd+sampleIndexFooter+25 {
		return errNoIndex
	}
	var foot [sampleIndexFooter]byte
	if _, err := r.ReadAt(foot[:], size-sampleIndexFooter); err != nil {
		return errNoIndex
	}
	sum := binary.BigEndian.Uint32(foot[0:4])
	nFrags := binary.BigEndian.Uint32(foot[4:8])
	boxSize := int64(binary.BigEndian.Uint32(foot[12:16]))
	if string(foot[8:12]) != "cidx" || boxSize < 25+sampleIndexFooter || boxSize > maxSampleIndexBox ||
		boxSize > size-info.InitEnd || nFrags > maxFragments {
		return errNoIndex
	}
	box := make([]byte, boxSize)
	if _, err := r.ReadAt(box, size-boxSize); err != nil {
		return errNoIndex
	}
	boxStart := size - boxSize
	if int64(binary.BigEndian.Uint32(box[0:4])) != boxSize || binary.BigEndian.Uint32(box[4:8]) != typUUID ||
		[16]byte(box[8:24]) != sampleIndexUUID || box[24] != 1 {
		return errNoIndex
	}
	p := box[25 : boxSize-sampleIndexFooter]
	if crc32.Checksum(p, castagnoli) != sum {
		return errNoIndex
	}
	// Two passes over the entries: the first checks them all (nothing is
	// visited from an index that turns out bad), the second visits.
	frags, err := walkSampleIndex(p, nFrags, info.InitEnd, boxStart, nil)
	if err != nil {
		return errNoIndex
	}
	walkSampleIndex(p, nFrags, info.InitEnd, boxStart, visit)
	info.Fragments, info.ValidEnd = frags, size
	return nil
}

// walkSampleIndex decodes the fragment entries p of an index box starting
// at boxStart in a file whose init segment ends at initEnd, and calls
// visit (when not nil) for every sample. It fails when the entries do not
// add up: fragments not back to back from initEnd to boxStart, counts out
// of bounds, values out of range, or bytes left over.
func walkSampleIndex(p []byte, nFrags uint32, initEnd, boxStart int64, visit func(frag int, s SampleInfo)) ([]Fragment, error) {
	frags := make([]Fragment, 0, nFrags)
	var dur uint32
	var base uint64
	var total int
	end := initEnd // end of the previous fragment's data
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	sv := func() (int64, bool) {
		v, n := binary.Varint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	for range nFrags {
		off, ok1 := uv()
		hdr, ok2 := uv()
		n, ok3 := uv()
		if !ok1 || !ok2 || !ok3 || int64(off) != end || hdr < 16 || n == 0 || n > maxSamples ||
			total+int(n) > maxIndexedSamples || int64(off)+int64(hdr) > boxStart {
			return nil, errNoIndex
		}
		total += int(n)
		f := Fragment{Offset: int64(off), BaseDecodeTime90k: base, Samples: int(n)}
		pos := int64(off) + int64(hdr)
		for i := range n {
			sk, ok1 := uv()
			dd, ok2 := sv()
			cts, ok3 := sv()
			d := int64(dur) + dd
			if !ok1 || !ok2 || !ok3 || d < 0 || d > 0xffffffff || cts < -1<<31 || cts >= 1<<31 || sk>>1 > 0xffffffff {
				return nil, errNoIndex
			}
			dur = uint32(d)
			s := SampleInfo{Offset: pos, Size: uint32(sk >> 1), Dur90k: dur, CTSOffset90k: int32(cts), Key: sk&1 == 1}
			pos += int64(s.Size)
			if pos > boxStart {
				return nil, errNoIndex
			}
			if i == 0 {
				f.FirstKey = s.Key
			}
			if s.Key {
				f.KeyFrames++
			}
			f.Dur90k += uint64(dur)
			if visit != nil {
				visit(len(frags), s)
			}
		}
		base += f.Dur90k
		f.Size = pos - f.Offset
		end = pos
		frags = append(frags, f)
	}
	if len(p) != 0 || len(frags) == 0 || end != boxStart {
		return nil, errNoIndex
	}
	return frags, nil
}
