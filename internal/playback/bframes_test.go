package playback

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestExportBFrames exports from segment files that ffmpeg (libx264 with
// B-frames) wrote as fragmented MP4: composition offsets, a key frame
// whose presentation trails its decode time, and another writer's box
// layout.
func TestExportBFrames(t *testing.T) {
	ffmpeg := testpeer.FFmpeg(t)
	src, rc := testSource(t)
	ctx := context.Background()
	st, err := rc.Index.Stream(ctx, "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	run, err := rc.Index.StartRun(ctx, st.ID, at(0))
	if err != nil {
		t.Fatal(err)
	}
	for i, offset := range []int{0, 10} {
		key := filepath.Join("door", "bf", []string{"a.mp4", "b.mp4"}[i])
		path := filepath.Join(rc.Dir, "disk", key)
		os.MkdirAll(filepath.Dir(path), 0o755)
		cmd := exec.Command(ffmpeg, "-hide_banner", "-v", "error", "-f", "lavfi", "-i",
			"testsrc2=size=640x360:rate=25", "-ss", itoa(offset), "-t", "10", "-c:v", "libx264", "-bf", "2",
			"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
			"-video_track_timescale", "90000", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, out)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		seg := store.Segment{StreamID: st.ID, RunID: run.ID, Disk: "d1", Key: filepath.ToSlash(key),
			Start: at(float64(offset * 25)), State: store.SegmentWriting, Codec: "avc1.640016", Width: 640, Height: 360}
		if err := rc.Index.AddSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		seg.Bytes, seg.Frames, seg.Dur90k, seg.WallDur, seg.State = fi.Size(), 250, 250*3600, 10*time.Second, store.SegmentClosed
		if err := rc.Index.UpdateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][2]float64{{125.75, 300.5}, {0, 500}, {60, 90}, {230, 270}} {
		f, err := src.Export(ctx, "door", "main", at(r[0]), at(r[1]))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "export.mp4")
		writeFile(t, f, path)
		want := f.To.Sub(f.From).Seconds()
		if got := pt.ProbeDuration(t, path); math.Abs(got-want) > frameDur.Seconds() {
			t.Errorf("%v: ffprobe duration %.3f s, want %.3f", r, got, want)
		}
		if errText, n := pt.DecodeErrors(t, path); errText != "" || n == 0 {
			t.Errorf("%v: %d frames, ffmpeg said %q", r, n, errText)
		}
	}
}

func itoa(i int) string { return time.Duration(i * int(time.Second)).String() }
