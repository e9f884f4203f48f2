package recorder_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestRecordGStreamerH265Pyramid records x265 with three B-frames in a
// pyramid and open GOPs (CRA key frames): in decode order the
// presentation steps are +4, -2, -1, +2 frames, never a single frame, so
// the frame interval must come from the sorted presentation times (it was
// taken as two to four frames: wrong decode times, which ffmpeg reports as
// non-monotonic). The first sample is a sync sample, ffmpeg decodes the
// segment without error, and every sample is a picture.
func TestRecordGStreamerH265Pyramid(t *testing.T) {
	testpeer.FFmpeg(t)
	cam := testpeer.StartGstCamera(t, testpeer.GstOptions{Codec: "h265", Width: 320, Height: 240,
		BFrames: 3, KeyInt: 25, OpenGOP: true})
	ctx := context.Background()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "disk"), 0o755)
	disk, err := local.Open(filepath.Join(dir, "disk"), "disk1", local.Options{Init: true})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{Camera: "gst", Stream: "main",
		Client: rtsp.ClientConfig{URL: cam.URL()}, Disk: disk, Index: idx, FsyncEvery: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sup.Run(rctx) })
	time.Sleep(4 * time.Second)
	cancel()
	wg.Wait()
	st, err := idx.Stream(ctx, "gst", "main")
	if err != nil {
		t.Fatal(err)
	}
	segs, err := idx.Segments(ctx, st.ID, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments = %v, %v; status %+v", segs, err, sup.Status())
	}
	sg := segs[0]
	path := filepath.Join(dir, "disk", filepath.FromSlash(sg.Key))
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
		t.Errorf("ffmpeg decoded %d frames, the segment has %d samples", n, sg.Frames)
	}
	t.Logf("first segment: %d frames, ffmpeg decoded %d", sg.Frames, n)
	if d := os.Getenv("CUSTOS_KEEP_SEGMENT"); d != "" {
		b, _ := os.ReadFile(path)
		os.WriteFile(d, b, 0o644)
	}
}
