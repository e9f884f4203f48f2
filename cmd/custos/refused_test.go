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
