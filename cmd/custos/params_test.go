package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestCameraChangesParameters records a camera that changes its SPS and
// PPS (and its resolution, 1920×1080 ↔ 640×360) mid-session every 10 s,
// as a camera does when its settings are changed while it streams.
// Expected: the session goes on (one run, no reconnect); a segment is cut
// at each change, so every file has one set of parameters and its row
// the right size; live viewers keep receiving frames across the changes;
// ffmpeg decodes every segment, and an export across the changes, frame
// for frame at the right sizes; custos check passes.
func TestCameraChangesParameters(t *testing.T) {
	t.Parallel()
	ffmpeg := testpeer.FFmpeg(t)
	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	dir := t.TempDir()
	srv, cfgPath, logs := serveYAML(t, dir, fmt.Sprintf("cameras:\n  - {name: door, url: \"rtsp://%s/cam1/switch\"}\n", simAddr))
	live := make(chan int, 1)
	go func() { live <- liveFrames(t, srv.addr, srv.adminPassword, "door", 24*time.Second) }()
	time.Sleep(25 * time.Second)
	var cams []api.CameraJSON
	getJSON(t, srv.authURL()+"/api/cameras", &cams)
	st := cams[0].Streams[0]
	srv.stop()
	if st.Reconnects != 0 {
		t.Errorf("the parameter change cost a reconnect: %+v\n%s", st, logs.String())
	}
	// 24 s at 25 fps; the hub skips to a key frame when a change needs a
	// new init segment, so allow a GOP per change.
	if n := <-live; n < 24*25-2*50 {
		t.Errorf("live view across the changes: %d frames in 24 s", n)
	}

	idx, _, segs := indexSegments(t, dir, "door")
	idx.Close()
	var sizes []string
	var frames int64
	for _, sg := range segs {
		sizes = append(sizes, fmt.Sprintf("%dx%d", sg.Width, sg.Height))
		if sg.RunID != segs[0].RunID {
			t.Errorf("segment %s in another run", sg.Key)
		}
		path := filepath.Join(dir, "recordings", sg.Key)
		n, errText := testpeer.Decode(t, path)
		if errText != "" || int64(n) != sg.Frames {
			t.Errorf("segment %s: ffmpeg decoded %d of %d frames: %s", sg.Key, n, sg.Frames, errText)
		}
		if got := frameSizes(t, ffmpeg, path); len(got) != 1 || got[sizes[len(sizes)-1]] == 0 {
			t.Errorf("segment %s (row %s) decodes to sizes %v", sg.Key, sizes[len(sizes)-1], got)
		}
		frames += sg.Frames
	}
	t.Logf("segments: %v, %d frames", sizes, frames)
	if want := []string{"1920x1080", "640x360", "1920x1080"}; len(sizes) != 3 || strings.Join(sizes, " ") != strings.Join(want, " ") {
		t.Errorf("segment sizes %v, want %v", sizes, want)
	}
	if frames != st.Frames {
		t.Errorf("recorded %d frames, segments hold %d", st.Frames, frames)
	}
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}

	// An export across both changes: one file, two sample descriptions.
	out := filepath.Join(t.TempDir(), "across.mp4")
	from, to := segs[0].Start.Format(time.RFC3339Nano), segs[len(segs)-1].End().Format(time.RFC3339Nano)
	if code, so, se := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", out); code != 0 {
		t.Fatalf("export: %d %s%s", code, so, se)
	}
	n, errText := testpeer.Decode(t, out)
	if errText != "" || int64(n) != frames {
		t.Errorf("export across the changes: ffmpeg decoded %d of %d frames: %s", n, frames, errText)
	}
	got := frameSizes(t, ffmpeg, out)
	if got["1920x1080"] != int(segs[0].Frames+segs[2].Frames) || got["640x360"] != int(segs[1].Frames) {
		t.Errorf("export decodes to sizes %v, want 1920x1080 ×%d and 640x360 ×%d", got, segs[0].Frames+segs[2].Frames, segs[1].Frames)
	}
}

// frameSizes decodes path with ffmpeg and counts the decoded frames by
// size ("1920x1080").
func frameSizes(t *testing.T, ffmpeg, path string) map[string]int {
	t.Helper()
	out, err := exec.Command(ffmpeg, "-hide_banner", "-nostats", "-i", path, "-vf", "showinfo", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Errorf("ffmpeg showinfo %s: %v\n%s", path, err, out)
		return nil
	}
	sizes := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)Parsed_showinfo.* s:(\d+x\d+) `).FindAllStringSubmatch(string(out), -1) {
		sizes[m[1]]++
	}
	return sizes
}
