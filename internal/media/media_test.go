package media

import (
	"bytes"
	"testing"
)

// TestLayOutUnit: the sample is every kept NAL unit after its 4-byte
// length, in order; delimiters and empty units stay in the NAL list (in
// their places) but not in the sample; nothing aliases the input.
func TestLayOutUnit(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	sps := []byte{0x67, 0x42, 0x00, 0x1e}
	idr := bytes.Repeat([]byte{0x65, 0x88}, 200)
	h265aud := []byte{0x46, 0x01, 0x50}
	var data []byte
	var spans [][2]int
	for _, n := range [][]byte{aud, sps, {}, idr, h265aud} {
		spans = append(spans, [2]int{len(data), len(data) + len(n)})
		data = append(data, n...)
	}
	nalus, sample := LayOutUnit(data, len(spans), func(i int) (int, int) { return spans[i][0], spans[i][1] })
	want := append(append([]byte{0, 0, 0, 4}, sps...), append([]byte{0, 0, 1, 144}, idr...)...)
	if !bytes.Equal(sample, want) {
		t.Fatalf("sample %x\nwant   %x", sample, want)
	}
	for i, n := range [][]byte{aud, sps, {}, idr, h265aud} {
		if !bytes.Equal(nalus[i], n) {
			t.Errorf("NAL unit %d = %x, want %x", i, nalus[i], n)
		}
		if cap(nalus[i]) != len(nalus[i]) {
			t.Errorf("NAL unit %d: capacity %d, length %d (appending would overwrite its neighbour)", i, cap(nalus[i]), len(nalus[i]))
		}
	}
	data[5] ^= 0xff
	if nalus[1][3] != 0x1e {
		t.Error("the NAL units alias the input")
	}
	if cap(sample) != len(sample) {
		t.Errorf("sample capacity %d, length %d", cap(sample), len(sample))
	}
}
