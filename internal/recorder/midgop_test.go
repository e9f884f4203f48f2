package recorder_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestRecordJoinedMidGOP: a session that begins in the middle of a GOP
// (the simulator's first ten frames of each session withheld, with no gap
// in sequence numbers, as when a camera's shared encoder is joined) starts
// recording at the first key frame: the first sample of the first segment
// is a sync sample, and ffmpeg decodes the segment without error, every
// frame of it.
func TestRecordJoinedMidGOP(t *testing.T) {
	testpeer.FFmpeg(t)
	const speed = 8
	r := newRig(t, sim.Options{Cameras: 1, Speed: speed, Garble: func(path string, n int, pkt []byte) [][]byte {
		if n < 10 {
			return nil // frame 0 is the key frame: the session starts at frame 10
		}
		return [][]byte{pkt}
	}})
	sup := r.record(t, "cam1/sub", speed, 8*time.Second)
	segs := r.segments(t)
	if len(segs) == 0 {
		t.Fatalf("nothing recorded: %+v", sup.Status())
	}
	sg := segs[0]
	// GOPs are 50 frames: frames 10-49 wait for the key frame at 50.
	if got := sup.Status().Frames; got != sg.Frames || got > 8*25-50+10 {
		t.Errorf("recorded %d frames (segment %d), want the ones from the second key frame on", got, sg.Frames)
	}
	path := filepath.Join(r.dir, "disk", filepath.FromSlash(sg.Key))
	out, err := exec.Command(testpeer.FFprobe(t), "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "packet=flags", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); !strings.HasPrefix(first, "K") {
		t.Errorf("first sample flags %q, want a sync sample (K)", first)
	}
	n, errText := testpeer.Decode(t, path)
	if errText != "" {
		t.Errorf("ffmpeg errors:\n%s", errText)
	}
	if int64(n) != sg.Frames {
		t.Errorf("ffmpeg decoded %d frames, the segment has %d", n, sg.Frames)
	}
}
