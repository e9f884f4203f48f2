package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestRefusalsFlushedAtStop: refused logins waiting in the aggregator
// (the minute has not ended) are written when the server stops.
func TestRefusalsFlushedAtStop(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	if err := os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "first-admin-pw"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n {
		req, _ := http.NewRequest("GET", srv.baseURL()+"/api/session", nil)
		req.SetBasicAuth("admin", "wrong-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("wrong password: %s", resp.Status)
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	es, err := idx.QueryAudit(context.Background(), audit.Filter{Action: audit.LoginFailed, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range es {
		c, _ := strconv.Atoi(e.Detail[audit.DetailCount])
		total += c
	}
	if len(es) != 2 || total != n {
		t.Errorf("%d login_failed entries counting %d; want 2 (the first at once, the rest at stop) counting %d", len(es), total, n)
	}
}
