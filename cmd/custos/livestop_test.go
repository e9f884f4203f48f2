package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestStopRecordsOpenLiveViews: a live viewer still watching when the
// server stops gets its live_stop entry: stop waits for the live views
// (whose handlers outlive the HTTP server's shutdown, being hijacked)
// before it closes the audit log.
func TestStopRecordsOpenLiveViews(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	dir := t.TempDir()
	srv, _, logs := serveYAML(t, dir, "cameras:\n  - {name: door, url: \"rtsp://"+simAddr+"/cam1\"}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+srv.addr+"/api/cameras/door/live.ws?stream=main",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " +
			base64.StdEncoding.EncodeToString([]byte("admin:admin-password"))}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	for n := 0; n < 10; n++ { // watching
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("live view: %v", err)
		}
	}
	// The viewer keeps reading while the server stops.
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	if err := srv.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	log, err := audit.Open(ctx, idx, filepath.Join(dir, "audit.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	stops, err := log.Query(ctx, audit.Filter{Action: audit.LiveStop, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(stops) != 1 || stops[0].Camera != "door" {
		t.Errorf("live_stop entries after stop: %+v, want the one viewer's\n%s", stops, logs.String())
	}
}
