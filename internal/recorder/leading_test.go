package recorder

import (
	"testing"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
)

// A run starts at its first key frame; when that is an H.265 CRA (open
// GOP), the RASL pictures right after it refer to pictures the run does
// not have and are skipped too, counted; RADL and trailing pictures, and
// RASL pictures after a later CRA, are kept.
func TestRunSkipsLeadingFrames(t *testing.T) {
	nal := func(typ byte) *ingest.Frame {
		f := &ingest.Frame{}
		f.NALUs = [][]byte{{typ << 1, 1, 0xaa}}
		f.Key = typ >= 16 && typ <= 23
		return f
	}
	const trail, rasl, radl, cra, idr = 1, 8, 7, 21, 19
	for _, tc := range []struct {
		name  string
		codec media.Codec
		types []byte
		want  []bool // skipped
	}{
		{"mid-GOP then CRA with RASL", media.CodecH265, []byte{trail, trail, cra, rasl, rasl, radl, trail, cra, rasl},
			[]bool{true, true, false, true, true, false, false, false, false}},
		{"IDR", media.CodecH265, []byte{trail, idr, rasl, trail}, []bool{true, false, false, false}},
	} {
		r := &runWriter{codec: tc.codec}
		for i, typ := range tc.types {
			got := r.leading(nal(typ))
			if got != tc.want[i] {
				t.Errorf("%s: frame %d (type %d) skipped = %v, want %v", tc.name, i, typ, got, tc.want[i])
			}
		}
	}
}
