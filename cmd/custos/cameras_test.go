package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestCamerasFromTheAPI adds, changes and removes a camera over HTTP
// while the server records another from its configuration file: the new
// camera records at once, survives a restart, changes without losing its
// recordings, and every change is audited; the file's camera cannot be
// changed over HTTP.
func TestCamerasFromTheAPI(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 2, User: "cam", Pass: "cam-secret"})
	sim := simAddr
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\n"+
		"cameras:\n  - {name: door, url: \"rtsp://cam:cam-secret@%s/cam1\"}\n", dir, sim)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return adminCall(t, srv.baseURL(), method, path, body)
	}
	camera := func(name string) (api.CameraJSON, bool) {
		t.Helper()
		_, body := call("GET", "/api/cameras", "")
		var cams []api.CameraJSON
		if err := json.Unmarshal([]byte(body), &cams); err != nil {
			t.Fatalf("GET /api/cameras: %v %s", err, body)
		}
		for _, c := range cams {
			if c.Name == name {
				return c, true
			}
		}
		return api.CameraJSON{}, false
	}
	waitRecording := func(name string, minFrames int64) api.CameraJSON {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, ok := camera(name)
			if ok && c.Status == "recording" && len(c.Streams) > 0 && c.Streams[0].Frames >= minFrames {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("camera %s not recording: %+v", name, c)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Bad requests name the problem.
	for _, tc := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"name":"Yard!","url":"rtsp://` + sim + `/cam2"}`, 400, "camera.name"},
		{`{"name":"yard","url":"http://` + sim + `/cam2"}`, 400, "camera.url"},
		{`{"name":"yard","url":"rtsp://` + sim + `/cam2","storage":"nas"}`, 400, `no storage named \"nas\"`},
		{`{"name":"yard","url":"rtsp://` + sim + `/cam2","transport":"sctp"}`, 400, "camera.transport"},
		{`{"name":"yard","url":"rtsp://` + sim + `/cam2","max_age_hours":-1}`, 400, "retention"},
		{`{"name":"door","url":"rtsp://` + sim + `/cam2"}`, 409, "exists"},
		{`{"name":"yard","url":"rtsp://` + sim + `/cam2","color":"red"}`, 400, "unknown field"},
	} {
		if code, body := call("POST", "/api/cameras", tc.body); code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("POST %s: %d %s, want %d with %q", tc.body, code, body, tc.code, tc.msg)
		}
	}
	// Add yard with credentials in the URL: it records at once, and the
	// API never shows the password.
	code, body := call("POST", "/api/cameras", `{"name":"yard","url":"rtsp://cam:cam-secret@`+sim+`/cam2","sub_url":"rtsp://`+sim+`/cam2/sub","max_age_hours":48}`)
	if code != 201 || strings.Contains(body, "cam-secret") {
		t.Fatalf("POST /api/cameras: %d %s", code, body)
	}
	yard := waitRecording("yard", 25)
	if yard.Config.Source != "api" || yard.Config.URL != "rtsp://"+sim+"/cam2" || yard.Config.Username != "cam" ||
		!yard.Config.HasPassword || yard.Config.MaxAgeHours != 48 || len(yard.Streams) != 2 {
		t.Errorf("yard: %+v", yard.Config)
	}
	if code, body := call("PUT", "/api/cameras/door", `{"url":"rtsp://`+sim+`/cam2"}`); code != 409 || !strings.Contains(body, "configuration file") {
		t.Errorf("PUT on the file's camera: %d %s", code, body)
	}
	// Retention only: the streams keep running (frames keep counting).
	before := yard.Streams[0].Frames
	code, body = call("PUT", "/api/cameras/yard", `{"url":"rtsp://`+sim+`/cam2","sub_url":"rtsp://`+sim+`/cam2/sub","username":"cam","max_age_hours":72}`)
	if code != 200 {
		t.Fatalf("PUT retention: %d %s", code, body)
	}
	if y, _ := camera("yard"); y.Config.MaxAgeHours != 72 || y.Streams[0].Frames < before || y.Streams[0].Reconnects != 0 {
		t.Errorf("after a retention change: %+v %+v", y.Config, y.Streams[0])
	}
	// A new stream URL restarts it: without the sub-stream now.
	if code, body = call("PUT", "/api/cameras/yard", `{"url":"rtsp://`+sim+`/cam2","username":"cam","max_age_hours":72}`); code != 200 {
		t.Fatalf("PUT url: %d %s", code, body)
	}
	if y := waitRecording("yard", 1); len(y.Streams) != 1 {
		t.Errorf("yard after dropping its sub-stream: %d streams", len(y.Streams))
	}

	// A restart keeps it (stored in the index, password included).
	srv.stop()
	if srv, err = startServer(context.Background(), e, cfg); err != nil {
		t.Fatal(err)
	}
	yard = waitRecording("yard", 25)
	if yard.Config.MaxAgeHours != 72 {
		t.Errorf("after restart: %+v", yard.Config)
	}
	if code, body := call("DELETE", "/api/cameras/yard", ""); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if _, ok := camera("yard"); ok {
		t.Error("yard still listed after DELETE")
	}
	if code, _ := call("DELETE", "/api/cameras/yard", ""); code != 404 {
		t.Errorf("second DELETE: %d", code)
	}
	if code, _ := call("DELETE", "/api/cameras/door", ""); code != 409 {
		t.Errorf("DELETE of the file's camera: %d", code)
	}
	// Its recordings stay in the index (below), but the API serves only
	// running cameras: re-adding "yard" shows them again.
	now := time.Now().UTC()
	if code, _ := call("GET", "/api/cameras/yard/recordings?from="+now.Add(-time.Hour).Format(time.RFC3339)+"&to="+now.Add(time.Hour).Format(time.RFC3339), ""); code != 404 {
		t.Errorf("recordings of a removed camera: %d, want 404", code)
	}
	srv.stop()
	idx, err := sqlite.Open(dir + "/index.db")
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	st, err := idx.Stream(context.Background(), "yard", "main")
	if err != nil {
		t.Fatal(err)
	}
	if segs, _ := idx.Segments(context.Background(), st.ID, now.Add(-time.Hour), now.Add(time.Hour)); len(segs) == 0 {
		t.Error("the removed camera's recordings are gone")
	}
	entries, _ := idx.QueryAudit(context.Background(), audit.Filter{Camera: "yard", Limit: 100})
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		if strings.HasPrefix(entries[i].Action, "camera_") {
			got = append(got, entries[i].Action+"/"+entries[i].Detail["max_age_hours"])
			if strings.Contains(fmt.Sprint(entries[i].Detail), "cam-secret") {
				t.Errorf("audit entry shows the password: %+v", entries[i])
			}
		}
	}
	if strings.Join(got, " ") != "camera_add/48 camera_change/72 camera_change/72 camera_remove/" {
		t.Errorf("audited: %v", got)
	}
}
