package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// startSimulator serves simulated cameras on a free loopback port for the
// test's duration and returns the address.
func startSimulator(t *testing.T, opts sim.Options) string {
	t.Helper()
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return ln.Addr().String()
}

// authURL is the server's URL with the first admin's login in it (Go's
// HTTP client and Chromium send it as HTTP Basic).
func (s *server) authURL() string {
	if s.adminPassword == "" {
		panic("authURL: this start did not create the admin")
	}
	return strings.Replace(s.baseURL(), "://", "://"+url.UserPassword("admin", s.adminPassword).String()+"@", 1)
}

// serveYAML writes a configuration into dir (listen on a free port,
// data_dir dir, fsync every second, then tail: storage and cameras
// sections) and starts the server on it with the first admin's password
// "admin-password". It returns the server (the test stops it), the
// configuration's path and the server's log.
func serveYAML(t *testing.T, dir, tail string) (*server, string, *syncBuffer) {
	t.Helper()
	cfgPath := filepath.Join(dir, "custos.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\n%s", dir, tail)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := startServer(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, nil)),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfgPath, logs
}

// indexSegments opens the index in dir (the server stopped) and returns
// it with camera's main stream and all its segments; the test closes it.
func indexSegments(t *testing.T, dir, camera string) (*sqlite.Store, store.Stream, []store.Segment) {
	t.Helper()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := idx.Stream(context.Background(), camera, "main")
	if err != nil {
		idx.Close()
		t.Fatal(err)
	}
	segs, err := idx.Segments(context.Background(), st.ID, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		idx.Close()
		t.Fatal(err)
	}
	return idx, st, segs
}

// adminCall sends method path with body to the server at base as the
// tests' admin (HTTP Basic) and returns the status and body.
func adminCall(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.SetBasicAuth("admin", "admin-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
