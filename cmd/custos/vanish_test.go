package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestStorageVanishes takes a storage directory away under the running
// server and brings it back, two ways: the directory moved away (as a
// careless rm or mv would), and the disk unmounted with `umount -l` and
// mounted again (needs root). Expected: the camera on it reports
// "storage unavailable" within a few seconds and stops recording, while its
// live view goes on; nothing is written where the disk was; the camera on
// the other disk loses nothing; when the disk returns, the segment the loss
// left open is finished (complete fragments kept and hashed) and recording
// resumes with a new run; custos check passes and ffmpeg decodes it all.
func TestStorageVanishes(t *testing.T) {
	type fault struct {
		name          string
		vanish, back  func(t *testing.T, path string)
		leavesEmptyAt bool // the path stays, as an empty mount point
	}
	moved := fault{name: "moved",
		vanish: func(t *testing.T, p string) { must(t, os.Rename(p, p+".away")) },
		back:   func(t *testing.T, p string) { must(t, os.Rename(p+".away", p)) },
	}
	unmounted := fault{name: "unmounted", leavesEmptyAt: true,
		vanish: func(t *testing.T, p string) { must(t, syscall.Unmount(p, syscall.MNT_DETACH)) },
		back:   func(t *testing.T, p string) { must(t, syscall.Mount(p+".src", p, "", syscall.MS_BIND, "")) },
	}
	for _, f := range []fault{moved, unmounted} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			usb := filepath.Join(dir, "usb")
			must(t, os.Mkdir(usb, 0o755))
			if f.name == "unmounted" {
				must(t, os.Mkdir(usb+".src", 0o755))
				err := syscall.Mount(usb+".src", usb, "", syscall.MS_BIND, "")
				testpeer.Need(t, "mount", err == nil, fmt.Sprintf("a bind mount needs root: %v", err))
				t.Cleanup(func() { syscall.Unmount(usb, syscall.MNT_DETACH) })
			}
			testStorageVanishes(t, dir, usb, f.vanish, f.back, f.leavesEmptyAt)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testStorageVanishes(t *testing.T, dir, usb string, vanish, back func(*testing.T, string), leavesEmptyAt bool) {
	simAddr := startSimulator(t, sim.Options{Cameras: 2})
	must(t, os.Mkdir(filepath.Join(dir, "recordings"), 0o755))
	srv, cfgPath, logs := serveYAML(t, dir, fmt.Sprintf(`storage:
  - {name: usb, path: %s}
  - {name: main, path: %s}
cameras:
  - {name: door, url: "rtsp://%s/cam1", storage: usb}
  - {name: yard, url: "rtsp://%s/cam2", storage: main}
`, usb, filepath.Join(dir, "recordings"), simAddr, simAddr))
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	base := srv.authURL()
	status := func() (door, yard api.CameraJSON) {
		var cams []api.CameraJSON
		if code := getJSON(t, base+"/api/cameras", &cams); code != 200 || len(cams) != 2 {
			t.Fatalf("GET /api/cameras: %d %+v", code, cams)
		}
		for _, c := range cams {
			if c.Name == "door" {
				door = c
			} else {
				yard = c
			}
		}
		return door, yard
	}
	waitFor := func(what string, limit time.Duration, ok func(door, yard api.CameraJSON) bool) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			door, yard := status()
			if ok(door, yard) {
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %s; door %+v yard %+v\n%s", what, limit, door, yard, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("both recording 3 s", 20*time.Second, func(d, y api.CameraJSON) bool {
		return d.Status == "recording" && y.Status == "recording" && d.Streams[0].Frames >= 75
	})
	door0, yard0 := status()
	vanished := time.Now()
	vanish(t, usb)
	took := waitFor("door reports the lost storage", 10*time.Second, func(d, _ api.CameraJSON) bool {
		return d.Status == "error" && strings.Contains(d.Reason, "storage unavailable") && strings.Contains(d.Reason, "usb")
	})
	door1, _ := status()
	t.Logf("noticed %.1f s after the loss: %s", took.Seconds(), door1.Reason)

	// Live view of the camera goes on without its disk.
	n := liveFrames(t, srv.addr, srv.adminPassword, "door", 3*time.Second)
	if n < 50 {
		t.Errorf("live view while the disk is away: %d frames in 3 s", n)
	}
	door2, _ := status()
	if door2.Streams[0].Frames != door1.Streams[0].Frames {
		t.Errorf("frames counted as recorded while the disk is away: %d then %d", door1.Streams[0].Frames, door2.Streams[0].Frames)
	}
	if leavesEmptyAt {
		if ents, err := os.ReadDir(usb); err != nil || len(ents) != 0 {
			t.Errorf("the empty mount point got %d entries (%v)", len(ents), err)
		}
	} else if _, err := os.Stat(usb); !os.IsNotExist(err) {
		t.Errorf("the moved directory was re-created: %v", err)
	}

	back(t, usb)
	took = waitFor("door records again", 10*time.Second, func(d, _ api.CameraJSON) bool {
		return d.Status == "recording" && d.Streams[0].Frames > door2.Streams[0].Frames+25
	})
	t.Logf("recording again %.1f s after the disk returned (%.1f s away)", took.Seconds(), time.Since(vanished).Seconds())
	time.Sleep(2 * time.Second)
	_, yard3 := status()
	away := time.Since(vanished).Seconds()
	if ys := yard3.Streams[0]; ys.Reconnects != 0 || ys.Frames-yard0.Streams[0].Frames < int64(25*(away-1)) {
		t.Errorf("the camera on the other disk lost frames: %d in %.1f s, %d reconnects", ys.Frames-yard0.Streams[0].Frames, away, ys.Reconnects)
	}
	srv.stop()
	stopped = true
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}

	// The index: a run ended by the loss, kept whole up to the last sync
	// before it, and a new run after it; every segment closed and decodable.
	idx, st, segs := indexSegments(t, dir, "door")
	defer idx.Close()
	runs, err := idx.Runs(context.Background(), st.ID, time.Unix(0, 0), time.Now().Add(time.Hour))
	must(t, err)
	if len(runs) < 2 || !strings.Contains(runs[0].EndReason, "storage unavailable") {
		t.Fatalf("runs %+v: want the first ended by the storage loss", runs)
	}
	var firstRun int64
	for _, sg := range segs {
		if sg.State != store.SegmentClosed {
			t.Errorf("segment %s left %s", sg.Key, sg.State)
		}
		if sg.RunID == runs[0].ID {
			firstRun += sg.Frames
		}
		n, errText := testpeer.Decode(t, filepath.Join(usb, sg.Key))
		if errText != "" || int64(n) != sg.Frames {
			t.Errorf("ffmpeg decoded %d of %d frames of %s: %s", n, sg.Frames, sg.Key, errText)
		}
	}
	// What was recorded before the loss is kept, less at most the last
	// fsync interval (1 s).
	if firstRun < door0.Streams[0].Frames-25 {
		t.Errorf("the run cut by the loss kept %d frames; %d were recorded before it", firstRun, door0.Streams[0].Frames)
	}
	t.Logf("door: %d runs, %d segments, %d frames in the run cut by the loss (%d recorded before it)",
		len(runs), len(segs), firstRun, door0.Streams[0].Frames)
}

// liveFrames counts the frames a live viewer of camera gets in d.
func liveFrames(t *testing.T, addr, password, camera string, d time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/cameras/"+camera+"/live.ws?stream=main",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " +
			base64.StdEncoding.EncodeToString([]byte("admin:"+password))}}})
	if err != nil {
		t.Errorf("live view of %s: %v", camera, err)
		return 0
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	n := 0
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return n
		}
		n++
	}
}
