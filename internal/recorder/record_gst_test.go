package recorder_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestRecordGStreamerRealTime records the GStreamer camera in real time
// for over a minute and until a segment has closed (30–90 s for a run's
// first segment),
// with and without B-frames, and has ffmpeg decode every segment.
func TestRecordGStreamerRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time recording of over a minute skipped with -short")
	}
	testpeer.FFmpeg(t)
	for _, tc := range []struct {
		name    string
		bframes int
	}{{"no bframes", 0}, {"bframes", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := testpeer.StartGstCamera(t, testpeer.GstOptions{Codec: "h264", BFrames: tc.bframes})
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
			sup, err := recorder.NewSupervisor(recorder.StreamConfig{
				Camera: "gst", Stream: "main", Client: rtsp.ClientConfig{URL: cam.URL()},
				Disk: disk, Index: idx, FsyncEvery: time.Second,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				sup.Run(ctx)
			}()
			segments := func() []store.Segment {
				st, err := idx.Stream(context.Background(), "gst", "main")
				if err != nil {
					t.Fatal(err)
				}
				segs, err := idx.Segments(context.Background(), st.ID, time.Unix(0, 0), time.Now().Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return segs
			}
			// Over a minute of real time, and until a segment has closed
			// (a run's first segment ends 30–90 s in).
			began := time.Now()
			deadline := began.Add(110 * time.Second)
			for len(segments()) < 2 || time.Since(began) < 65*time.Second {
				if time.Now().After(deadline) {
					t.Fatalf("no segment closed in 110 s; status %+v", sup.Status())
				}
				time.Sleep(time.Second)
			}
			cancel()
			wg.Wait()
			segs := segments()
			if segs[0].Dur90k < 30*90000 {
				t.Errorf("first segment lasts %.1f s, want ≥ 30 s", float64(segs[0].Dur90k)/90000)
			}
			for i, sg := range segs {
				path := filepath.Join(dir, "disk", filepath.FromSlash(sg.Key))
				n, errText := testpeer.Decode(t, path)
				if errText != "" {
					t.Errorf("segment %d: ffmpeg errors:\n%s", i, errText)
				}
				if int64(n) != sg.Frames {
					t.Errorf("segment %d: decoded %d frames, row says %d", i, n, sg.Frames)
				}
				// 25 fps: every frame lasts 3600 ticks of the camera's clock.
				if d := sg.Dur90k - sg.Frames*3600; d < -3600 || d > 3600 {
					t.Errorf("segment %d: %d frames over %d ticks", i, sg.Frames, sg.Dur90k)
				}
				t.Logf("segment %d: %d frames, %.2f s, %d bytes", i, sg.Frames, float64(sg.Dur90k)/90000, sg.Bytes)
			}
			// Playback across the first segment boundary, from mid-GOP in
			// the run's first segment (with B-frames: composition offsets
			// through an edit list).
			checkExport(t, idx, disk, dir, "gst", segs[0].Start.Add(5*time.Second+30*time.Millisecond),
				segs[1].Start.Add(2*time.Second+20*time.Millisecond), 40*time.Millisecond)
		})
	}
}
