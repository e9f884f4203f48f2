package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FindFragments walks the top-level boxes of a whole MP4 file in memory
// (32-bit size and type; size 1: 64-bit largesize follows; size 0: the box
// runs to the end of the file) and returns the span [start, end) of each
// fragment, a moof box together with the mdat right after it, in file
// order, and the payload of the manifest box (a uuid box whose user type
// is ManifestUUID: the bytes after the user type, a sub-slice of b), nil
// when there is none. Other boxes (ftyp, moov, free, other uuid boxes…) are
// skipped.
//
// It fails for a truncated box header, a box size smaller than its header
// or running past the end of the file, a moof not directly followed by an
// mdat, an mdat that does not follow a moof, two manifests, a manifest
// over MaxManifestSize, and more than MaxFragments fragments. It does no
// I/O and does not retain b.
func FindFragments(b []byte) (frags [][2]int64, manifest []byte, err error) {
	spans, man, err := walkBoxes(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	if man[1] > 0 {
		manifest = b[man[0]:man[1]]
	}
	return spans, manifest, nil
}

// FindFragmentsReader does what FindFragments does for a file of size
// bytes read through r, reading only box headers (8 to 32 bytes each) and
// the manifest payload, so that memory does not grow with the media. It
// blocks on r's reads, and read errors are returned with the offset.
func FindFragmentsReader(r io.ReaderAt, size int64) (frags [][2]int64, manifest []byte, err error) {
	spans, man, err := walkBoxes(r, size)
	if err != nil {
		return nil, nil, err
	}
	if man[1] > 0 {
		manifest = make([]byte, man[1]-man[0])
		if err := readFull(r, manifest, man[0]); err != nil {
			return nil, nil, err
		}
	}
	return spans, manifest, nil
}

// HashSpans returns the FragmentHash of each span of r (as found by
// FindFragmentsReader), reading each span once, in order. It blocks on r's
// reads and holds at most 32 KiB of the file at a time.
func HashSpans(r io.ReaderAt, spans [][2]int64) ([][32]byte, error) {
	out := make([][32]byte, len(spans))
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for i, s := range spans {
		h.Reset()
		n, err := io.CopyBuffer(h, io.NewSectionReader(r, s[0], s[1]-s[0]), buf)
		if err == nil && n != s[1]-s[0] {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("read fragment %d at offset %d: %w", i+1, s[0], err)
		}
		h.Sum(out[i][:0])
	}
	return out, nil
}

// walkBoxes implements both FindFragments functions; man is the manifest
// payload's span, with man[1] == 0 when there is none.
func walkBoxes(r io.ReaderAt, size int64) (spans [][2]int64, man [2]int64, err error) {
	if size < 0 {
		return nil, man, errors.New("negative file size")
	}
	manBox := int64(-1) // offset of the manifest box, once found
	moof := int64(-1)   // offset of a moof waiting for its mdat
	for off := int64(0); off < size; {
		h, err := readBoxHeader(r, off, size)
		if err != nil {
			return nil, man, err
		}
		end := off + h.size
		switch {
		case moof >= 0:
			if h.typ != "mdat" {
				return nil, man, fmt.Errorf("moof box at offset %d is followed by %s, not mdat", moof, boxName(h.typ))
			}
			if len(spans) == MaxFragments {
				return nil, man, fmt.Errorf("more than %d fragments", MaxFragments)
			}
			spans = append(spans, [2]int64{moof, end})
			moof = -1
		case h.typ == "moof":
			moof = off
		case h.typ == "mdat":
			return nil, man, fmt.Errorf("mdat box at offset %d does not follow a moof", off)
		case h.typ == "uuid" && h.user == ManifestUUID:
			if manBox >= 0 {
				return nil, man, fmt.Errorf("two manifest boxes, at offsets %d and %d", manBox, off)
			}
			if n := end - h.body; n > MaxManifestSize {
				return nil, man, fmt.Errorf("manifest box at offset %d holds %d bytes, more than %d", off, n, MaxManifestSize)
			}
			manBox, man = off, [2]int64{h.body, end}
		}
		off = end
	}
	if moof >= 0 {
		return nil, man, fmt.Errorf("moof box at offset %d is not followed by mdat (file cut short?)", moof)
	}
	return spans, man, nil
}

type boxHeader struct {
	typ  string // four-character code
	user string // uuid boxes: the 16-byte user type
	size int64  // whole box, header included, resolved for sizes 0 and 1
	body int64  // offset of the payload (after the user type for uuid)
}

// readBoxHeader reads the header of the box at off in a file of size bytes
// and checks that the box lies within the file.
func readBoxHeader(r io.ReaderAt, off, size int64) (boxHeader, error) {
	var b [32]byte
	left := size - off
	if left < 8 {
		return boxHeader{}, fmt.Errorf("box header at offset %d cut short: %d bytes left in the file", off, left)
	}
	n := min(left, int64(len(b)))
	if err := readFull(r, b[:n], off); err != nil {
		return boxHeader{}, err
	}
	h := boxHeader{typ: string(b[4:8])}
	hdr := int64(8)
	switch sz := binary.BigEndian.Uint32(b[0:4]); sz {
	case 0:
		h.size = left
	case 1:
		if n < 16 {
			return boxHeader{}, fmt.Errorf("box %s at offset %d: 64-bit size cut short", boxName(h.typ), off)
		}
		big := binary.BigEndian.Uint64(b[8:16])
		if big > uint64(left) {
			return boxHeader{}, fmt.Errorf("box %s at offset %d has size %d, past the end of the file (%d bytes)", boxName(h.typ), off, big, size)
		}
		h.size, hdr = int64(big), 16
	default:
		h.size = int64(sz)
	}
	if h.size < hdr {
		return boxHeader{}, fmt.Errorf("box %s at offset %d has size %d, smaller than its header", boxName(h.typ), off, h.size)
	}
	if h.size > left {
		return boxHeader{}, fmt.Errorf("box %s at offset %d has size %d, past the end of the file (%d bytes)", boxName(h.typ), off, h.size, size)
	}
	h.body = off + hdr
	if h.typ == "uuid" {
		if h.size < hdr+16 {
			return boxHeader{}, fmt.Errorf("uuid box at offset %d has size %d, too small for its user type", off, h.size)
		}
		h.user = string(b[hdr : hdr+16])
		h.body += 16
	}
	return h, nil
}

// readFull reads len(b) bytes at off, accepting io.EOF with a full read as
// io.ReaderAt allows.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return readError{fmt.Errorf("read at offset %d: %w", off, err)}
}

// readError is a failure to read the file (as opposed to a malformed
// box).
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// boxName quotes a four-character code for messages, escaping bytes that
// are not printable.
func boxName(typ string) string { return fmt.Sprintf("%q", typ) }
