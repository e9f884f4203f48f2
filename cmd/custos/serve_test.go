package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode
}

// TestServeRecordsAndReconnects runs the server against two simulated
// cameras (one with a sub-stream), checks the API, then takes the cameras
// away for 30 s and brings them back: recording resumes within 2 s and the
// API shows exactly one gap.
func TestServeRecordsAndReconnects(t *testing.T) {
	t.Parallel()
	s, err := sim.New(sim.Options{Cameras: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simAddr := ln.Addr().String()
	go s.Serve(ln)

	dir := t.TempDir()
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
fsync_interval: 1s
cameras:
  - name: door
    url: rtsp://%s/cam1
    sub_url: rtsp://%s/cam1/sub
  - name: yard
    url: rtsp://%s/cam2
`, dir, simAddr, simAddr, simAddr)
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, nil))}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	base := srv.authURL()
	if code := getJSON(t, base+"/healthz", nil); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	waitState := func(want string) []api.CameraJSON {
		t.Helper()
		var cams []api.CameraJSON
		deadline := time.Now().Add(15 * time.Second)
		for {
			getJSON(t, base+"/api/cameras", &cams)
			ok := len(cams) == 2
			for _, c := range cams {
				for _, st := range c.Streams {
					ok = ok && st.State == want
				}
			}
			if ok {
				return cams
			}
			if time.Now().After(deadline) {
				t.Fatalf("cameras not %s: %+v", want, cams)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cams := waitState("recording")
	if len(cams[0].Streams) != 2 || len(cams[1].Streams) != 1 {
		t.Errorf("streams = %+v", cams)
	}
	time.Sleep(3 * time.Second)
	getJSON(t, base+"/api/cameras", &cams)
	if cams[0].BitrateBps < 1_000_000 || cams[0].LastFrame.IsZero() {
		t.Errorf("door: bitrate %d, last frame %s", cams[0].BitrateBps, cams[0].LastFrame)
	}
	// Prometheus metrics: for operators and admins only (by default).
	if code := getJSON(t, srv.baseURL()+"/metrics", nil); code != 401 {
		t.Errorf("/metrics without credentials: %d", code)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{`(?m)^custos_stream_up\{camera="door",stream="main"\} 1$`, `(?m)^custos_stream_up\{camera="door",stream="sub"\} 1$`,
		`(?m)^custos_stream_frames_total\{camera="yard",stream="main"\} [1-9]\d+$`, `(?m)^# TYPE custos_stream_reconnects_total counter$`} {
		if !regexp.MustCompile(re).Match(metrics) {
			t.Errorf("/metrics lacks %s:\n%s", re, metrics)
		}
	}

	// The cameras go away for a while and come back on the same address.
	s.Close()
	waitState("reconnecting")
	time.Sleep(30 * time.Second)
	s2, err := sim.New(sim.Options{Cameras: 2})
	if err != nil {
		t.Fatal(err)
	}
	var ln2 net.Listener
	for range 50 {
		if ln2, err = net.Listen("tcp", simAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("re-listen on %s: %v", simAddr, err)
	}
	go s2.Serve(ln2)
	defer s2.Close()
	back := time.Now()
	waitState("recording")
	// An absent camera is polled every second: recording resumes within
	// 2 s of its return.
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("recording resumed %s after the camera returned", d)
	}
	time.Sleep(3 * time.Second)

	var rec api.RecordingsJSON
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code := getJSON(t, base+"/api/cameras/door/recordings?from="+from+"&to="+to, &rec); code != 200 {
		t.Fatalf("recordings = %d", code)
	}
	if len(rec.Runs) != 2 || len(rec.Gaps) != 1 {
		t.Fatalf("runs %+v gaps %+v: want 2 runs and one gap", rec.Runs, rec.Gaps)
	}
	if g := rec.Gaps[0].End.Sub(rec.Gaps[0].Start); g < 30*time.Second || g > 34*time.Second {
		t.Errorf("gap of %s, want the 30 s outage plus at most 2 s", g)
	}
	if rec.Runs[0].Bytes == 0 || !rec.Runs[1].Recording {
		t.Errorf("runs = %+v", rec.Runs)
	}
	for _, bad := range []string{
		"/api/cameras/door/recordings?from=yesterday&to=" + to,
		"/api/cameras/door/recordings?from=" + to + "&to=" + from,
		"/api/cameras/door/recordings?from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
		"/api/cameras/door/recordings?stream=third&from=" + from + "&to=" + to,
	} {
		if code := getJSON(t, base+bad, nil); code != 400 && code != 404 {
			t.Errorf("%s = %d, want 400 or 404", bad, code)
		}
	}
	if code := getJSON(t, base+"/api/cameras/nope/recordings?from="+from+"&to="+to, nil); code != 404 {
		t.Errorf("unknown camera = %d", code)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("logs:\n%s", logs.String())
	}
	// Files landed in the default storage directory with its identity.
	if _, err := os.Stat(filepath.Join(dir, "recordings", "custos-disk.json")); err != nil {
		t.Error(err)
	}
}

// TestServeMissingDisk configures two storage directories, one of them
// missing (an unmounted disk): the server starts, the camera on the
// missing disk reports an error naming it, and the other camera records.
func TestServeMissingDisk(t *testing.T) {
	t.Parallel()
	simAddr := startSimulator(t, sim.Options{Cameras: 2})
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.Mkdir(good, 0o755)
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
storage:
  - {name: good, path: %s}
  - {name: gone, path: %s}
cameras:
  - {name: a, url: "rtsp://%s/cam1", storage: good}
  - {name: b, url: "rtsp://%s/cam2", storage: gone}
`, dir, good, filepath.Join(dir, "missing-dir"), simAddr, simAddr)
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var cams []api.CameraJSON
		getJSON(t, srv.authURL()+"/api/cameras", &cams)
		if cams[0].Status == "recording" && cams[1].Status == "error" {
			if !strings.Contains(cams[1].Reason, "storage unavailable") || !strings.Contains(cams[1].Reason, "missing-dir") {
				t.Errorf("camera on the missing disk: %+v", cams[1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera on the good disk not recording, or the other not reporting its disk: %+v", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its live view works without the disk.
	if n := liveFrames(t, srv.addr, srv.adminPassword, "b", 2*time.Second); n < 25 {
		t.Errorf("live view of the camera without its disk: %d frames in 2 s", n)
	}
	// The disk is mounted late (a NAS after boot): recording starts.
	missing := filepath.Join(dir, "missing-dir")
	staging := filepath.Join(dir, "staging")
	os.Mkdir(staging, 0o755)
	d, err := local.Open(staging, "gone", local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := os.Rename(staging, missing); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var cams []api.CameraJSON
		getJSON(t, srv.authURL()+"/api/cameras", &cams)
		if cams[1].Status == "recording" && cams[1].Streams[0].Frames > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the camera did not start recording when its disk appeared: %+v", cams[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeEmptyMountPoint: a disk that holds recordings is not mounted
// when the server starts. Its empty mount point gets nothing written into
// it (no identity either); the camera waits, and records when the disk is
// mounted.
func TestServeEmptyMountPoint(t *testing.T) {
	t.Parallel()
	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	dir := t.TempDir()
	usb := filepath.Join(dir, "usb")
	os.Mkdir(usb, 0o755)
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nstorage:\n  - {name: usb, path: %s}\ncameras:\n  - {name: a, url: \"rtsp://%s/cam1\", storage: usb}\n",
		dir, usb, simAddr)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	waitFrames := func(srv *server) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var cams []api.CameraJSON
			getJSON(t, srv.authURL()+"/api/cameras", &cams)
			if cams[0].Status == "recording" && cams[0].Streams[0].Frames > 25 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not recording: %+v", cams[0])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// First start: a new disk, recorded on.
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFrames(srv)
	srv.stop()
	// The disk is "unmounted": its files move away, the mount point stays.
	if err := os.Rename(usb, usb+".disk"); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(usb, 0o755)
	srv, err = startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	srv.adminPassword = "admin-password" // created by the first start
	time.Sleep(2 * time.Second)
	var cams []api.CameraJSON
	getJSON(t, srv.authURL()+"/api/cameras", &cams)
	if cams[0].Status != "error" || !strings.Contains(cams[0].Reason, "unmounted") {
		t.Errorf("camera on the unmounted disk: %+v", cams[0])
	}
	if ents, _ := os.ReadDir(usb); len(ents) != 0 {
		t.Fatalf("the empty mount point got %d entries", len(ents))
	}
	// Its recordings cannot be played meanwhile: a clear 404, not a 500.
	q := url.Values{"from": {time.Now().Add(-time.Hour).Format(time.RFC3339)}, "to": {time.Now().Format(time.RFC3339)}}
	resp, err := http.Get(srv.authURL() + "/api/cameras/a/export.mp4?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("export while the disk is away: %d %s", resp.StatusCode, body)
	}
	// Mounted again.
	os.Remove(usb)
	if err := os.Rename(usb+".disk", usb); err != nil {
		t.Fatal(err)
	}
	waitFrames(srv)
}
