package integrity

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// BenchmarkHashSegment measures re-hashing a one-minute 4 Mbit/s segment
// (30 MB in 60 fragments) as custos check and evidence exports do.
func BenchmarkHashSegment(b *testing.B) {
	box := func(typ string, n int) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(8+n))
		return append(append(out, typ...), make([]byte, n)...)
	}
	var file []byte
	file = append(file, box("ftyp", 16)...)
	file = append(file, box("moov", 600)...)
	for range 60 {
		file = append(file, box("moof", 400)...)
		file = append(file, box("mdat", 500_000)...)
	}
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		if _, _, _, err := HashSegment(bytes.NewReader(file), int64(len(file))); err != nil {
			b.Fatal(err)
		}
	}
}
