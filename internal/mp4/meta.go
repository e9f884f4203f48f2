package mp4

import (
	"bytes"
	"fmt"
	"io"
)

// metaUUID marks Custos's own metadata box: a top-level 'uuid' box right
// after the init segment. Players skip uuid boxes they do not know.
var metaUUID = [16]byte{0x63, 0x75, 0x73, 0x74, 0x6f, 0x73, 0x2d, 0x6d, 0x65, 0x74, 0x61, 0x00, 0x9a, 0x41, 0x7c, 0x01}

// maxMetadata bounds the metadata payload accepted by ReadMetadata.
const maxMetadata = 64 << 10

// AppendMetadata appends a Custos metadata box carrying payload (JSON by
// convention) to dst. It does no I/O.
func AppendMetadata(dst, payload []byte) []byte {
	b, at := startBox(dst, typUUID)
	b = append(b, metaUUID[:]...)
	b = append(b, payload...)
	return endBox(b, at)
}

// ReadMetadata returns the payload of the Custos metadata box among the
// top-level boxes before the first fragment, or nil when there is none.
// It reads box headers and the one box only.
func ReadMetadata(r io.ReaderAt, size int64) ([]byte, error) {
	var off int64
	for n := 0; off < size && n < 64; n++ {
		h, err := readBoxHeader(r, off, size)
		if err == errStop {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		switch h.typ {
		case typMoof, typMdat:
			return nil, nil
		case typUUID:
			body, err := readBox(r, h, maxMetadata+16)
			if err == errStop {
				return nil, nil
			} else if err != nil {
				return nil, fmt.Errorf("mp4 metadata: %w", err)
			}
			if len(body) >= 16 && bytes.Equal(body[:16], metaUUID[:]) {
				return body[16:], nil
			}
		}
		off = h.end()
	}
	return nil, nil
}
