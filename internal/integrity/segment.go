package integrity

import (
	"crypto/sha256"
	"fmt"
	"io"
)

// InitSpans returns the byte ranges of a file's init segment: its
// top-level ftyp and moov boxes before the first fragment, in file order
// (other boxes, such as a recorder's metadata, are left out).
func InitSpans(r io.ReaderAt, size int64) ([][2]int64, error) {
	var spans [][2]int64
	found := false
	for off := int64(0); off < size; {
		bh, err := readBoxHeader(r, off, size)
		if err != nil {
			return nil, err
		}
		if bh.typ == "moof" {
			break
		}
		if bh.typ == "ftyp" || bh.typ == "moov" {
			spans = append(spans, [2]int64{off, off + bh.size})
			found = found || bh.typ == "moov"
		}
		off += bh.size
	}
	if !found {
		return nil, fmt.Errorf("no moov box before the first fragment")
	}
	return spans, nil
}

// InitHash is SHA-256 of a file's init segment (InitSpans, concatenated).
func InitHash(r io.ReaderAt, size int64) ([32]byte, error) {
	spans, err := InitSpans(r, size)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	for _, sp := range spans {
		if _, err := io.Copy(h, io.NewSectionReader(r, sp[0], sp[1]-sp[0])); err != nil {
			return [32]byte{}, fmt.Errorf("read init box at offset %d: %w", sp[0], err)
		}
	}
	return [32]byte(h.Sum(nil)), nil
}

// HashSegment reads a recorded segment file and returns what its chain
// entry holds: the segment hash over its fragments, the init hash, and
// each fragment's hash. It reads the whole file; errors name what in the
// file is wrong (a box overrunning the end, a moof without mdat).
func HashSegment(r io.ReaderAt, size int64) (segHash, initHash [32]byte, frags [][32]byte, err error) {
	if initHash, err = InitHash(r, size); err != nil {
		return segHash, initHash, nil, err
	}
	spans, _, err := FindFragmentsReader(r, size)
	if err != nil {
		return segHash, initHash, nil, err
	}
	if frags, err = HashSpans(r, spans); err != nil {
		return segHash, initHash, nil, err
	}
	return SegmentHash(frags), initHash, frags, nil
}
