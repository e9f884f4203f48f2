package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestWrongPasswordShownAsError: a camera that refuses the configured
// password is reported by GET /api/cameras as status error with a hint
// (not "reconnecting"), and is not asked again within seconds (the old
// backoff retried after 1, 2, 4 … s).
func TestWrongPasswordShownAsError(t *testing.T) {
	var logins atomic.Int64
	cam := &rtsp.Server{
		Mount: func(string) (rtsp.Stream, error) { return nil, rtsp.ErrNotFound },
		Auth:  rtsp.NewDigestServer("cam", "admin", "right-pw"),
		OnRequest: func(r *rtsp.Request) {
			if r.Header.Get("Authorization") != "" {
				logins.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go cam.Serve(ln)
	t.Cleanup(func() { cam.Close() })
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\n"+
		"cameras:\n  - {name: door, url: \"rtsp://admin:wrong-pw@%s/cam\"}\n", dir, ln.Addr())), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	var door api.CameraJSON
	deadline := time.Now().Add(20 * time.Second)
	for door.Status != "error" {
		if time.Now().After(deadline) {
			t.Fatalf("camera door: %+v, want status error", door)
		}
		time.Sleep(100 * time.Millisecond)
		req, _ := http.NewRequest("GET", srv.baseURL()+"/api/cameras", nil)
		req.SetBasicAuth("admin", "admin-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var cams []api.CameraJSON
		err = json.NewDecoder(resp.Body).Decode(&cams)
		resp.Body.Close()
		if err != nil || len(cams) != 1 {
			t.Fatalf("GET /api/cameras: %v %+v", err, cams)
		}
		door = cams[0]
	}
	if !strings.Contains(door.Hint, "check the camera's password in Settings") || door.Streams[0].Hint != door.Hint {
		t.Errorf("hint = %q (stream %q), want the password hint", door.Hint, door.Streams[0].Hint)
	}
	if strings.Contains(door.Reason+door.Hint, "wrong-pw") {
		t.Errorf("status leaks the password: %+v", door)
	}
	time.Sleep(5 * time.Second)
	if n := logins.Load(); n != 1 {
		t.Errorf("%d logins within 5 s of a refusal, want 1 (next try after a minute)", n)
	}
}

// TestUIWrongPasswordBadge: the grid shows a camera that refuses its
// password as a red Error badge with the hint beside it.
func TestUIWrongPasswordBadge(t *testing.T) {
	cam := &rtsp.Server{
		Mount: func(string) (rtsp.Stream, error) { return nil, rtsp.ErrNotFound },
		Auth:  rtsp.NewDigestServer("cam", "admin", "right-pw"),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go cam.Serve(ln)
	t.Cleanup(func() { cam.Close() })
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\n"+
		"cameras:\n  - {name: door, url: \"rtsp://admin:wrong-pw@%s/cam\"}\n", t.TempDir(), ln.Addr())), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	// The page reads the status when it opens: wait until it is error.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var cams []api.CameraJSON
		getJSON(t, srv.authURL()+"/api/cameras", &cams)
		if len(cams) == 1 && cams[0].Status == "error" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera not in error: %+v", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := testpeer.Browser(t)
	type badge struct {
		Text, Color, Hint string
	}
	got, err := testpeer.EvalPage[badge](t, ctx, srv.authURL()+"/#/", `(() => {
		const b = document.querySelector('.tile[data-camera="door"] .badge');
		const h = document.querySelector('.tile[data-camera="door"] .hint');
		return b && h ? {text: b.textContent, color: getComputedStyle(b).backgroundColor, hint: h.textContent} : null;
	})()`, 20*time.Second)
	if err != nil {
		t.Fatalf("grid: %v", err)
	}
	if got.Text != "Error" || !strings.Contains(got.Hint, "check the camera's password in Settings") {
		t.Errorf("badge = %+v, want Error with the password hint", got)
	}
	// var(--bad) is a red: more red than green or blue.
	var r, g, b int
	if _, err := fmt.Sscanf(got.Color, "rgb(%d, %d, %d)", &r, &g, &b); err != nil || r < 150 || g > 120 || b > 120 {
		t.Errorf("badge colour %q is not red", got.Color)
	}
}

// TestAPICameraAllowBasic: a camera added in the UI whose only offer is
// Basic over plain RTSP (GStreamer with Basic auth) is refused with the
// hint until the API sets allow_basic_auth, then records; the setting is
// kept in the index across a restart and shown to operators.
func TestAPICameraAllowBasic(t *testing.T) {
	cam := testpeer.StartGstCamera(t, testpeer.GstOptions{Codec: "h264", Width: 320, Height: 240,
		User: "admin", Pass: "cam-secret", BasicAuth: true})
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\n", dir)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.stop() }()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return adminCall(t, srv.baseURL(), method, path, body)
	}
	wait := func(what string, ok func(api.CameraJSON) bool) api.CameraJSON {
		t.Helper()
		var door api.CameraJSON
		for deadline := time.Now().Add(30 * time.Second); ; {
			_, body := call("GET", "/api/cameras", "")
			var cams []api.CameraJSON
			if err := json.Unmarshal([]byte(body), &cams); err == nil && len(cams) == 1 {
				door = cams[0]
				if ok(door) {
					return door
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("camera door: %+v, want %s", door, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	base := `"name":"door","url":"` + cam.URL() + `","username":"admin","password":"cam-secret"`
	if code, body := call("POST", "/api/cameras", "{"+base+"}"); code != 201 {
		t.Fatalf("POST: %d %s", code, body)
	}
	door := wait("an error with the Basic hint", func(c api.CameraJSON) bool { return c.Status == "error" })
	if !strings.Contains(door.Reason+door.Hint, "allow_basic_auth") || door.Config.AllowBasicAuth {
		t.Errorf("refused camera: reason %q, hint %q, allow_basic_auth %v", door.Reason, door.Hint, door.Config.AllowBasicAuth)
	}
	if code, body := call("PUT", "/api/cameras/door", "{"+base+`,"allow_basic_auth":true}`); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	recording := func(c api.CameraJSON) bool {
		return c.Status == "recording" && len(c.Streams) > 0 && c.Streams[0].Frames > 10
	}
	if door = wait("recording", recording); !door.Config.AllowBasicAuth {
		t.Errorf("config after PUT: %+v", door.Config)
	}
	// Kept in the index: after a restart the camera records again.
	srv.stop()
	if srv, err = startServer(context.Background(), e, cfg); err != nil {
		t.Fatal(err)
	}
	if door = wait("recording after a restart", recording); !door.Config.AllowBasicAuth {
		t.Errorf("config after a restart: %+v", door.Config)
	}
}
