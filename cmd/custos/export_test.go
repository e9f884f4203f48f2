package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

// TestExportCommand runs custos export against a data directory and
// against a running server, and its refusals.
func TestExportCommand(t *testing.T) {
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	cfgPath := filepath.Join(rc.Dir, "custos.yaml")
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
storage:
  - {name: d1, path: %s}
cameras:
  - {name: door, url: "rtsp://127.0.0.1:9/none", storage: d1}
  - {name: yard, url: "rtsp://127.0.0.1:9/none", storage: d1}
`, rc.Dir, filepath.Join(rc.Dir, "disk"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exec := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		e := &env{stdout: &out, stderr: &errOut, log: slog.New(slog.DiscardHandler)}
		code := run(ctx, e, append([]string{"export"}, args...))
		return code, out.String(), errOut.String()
	}
	from, to := pt.At(37).Format(time.RFC3339Nano), pt.At(237).Format(time.RFC3339Nano)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.mp4")
	code, out, errOut := exec("--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", local)
	if code != 0 || !strings.Contains(out, "wrote "+local) {
		t.Fatalf("export: exit %d, %q %q", code, out, errOut)
	}
	if d := pt.ProbeDuration(t, local); math.Abs(d-8) > 0.04 {
		t.Errorf("duration %.3f, want 8", d)
	}
	if errText, n := pt.DecodeErrors(t, local); errText != "" || n < 200 {
		t.Errorf("decoded %d frames, ffmpeg said %q", n, errText)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("output directory holds %d entries (temporary files left?)", len(entries))
	}

	// An existing file is kept unless --force.
	code, _, errOut = exec("--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", local)
	if code != 1 || !strings.Contains(errOut, "exists (use --force") {
		t.Errorf("overwrite without --force: exit %d, %q", code, errOut)
	}
	if code, _, errOut = exec("--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", local, "--force"); code != 0 {
		t.Errorf("--force: exit %d, %q", code, errOut)
	}

	// From a running server: the same bytes.
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(ctx, &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	remote := filepath.Join(dir, "remote.mp4")
	code, _, errOut = exec("--url", srv.authURL(), "--camera", "door", "--from", from, "--to", to, "-o", remote)
	if code != 0 {
		t.Fatalf("export --url: exit %d, %q", code, errOut)
	}
	a, _ := os.ReadFile(local)
	b, _ := os.ReadFile(remote)
	if !bytes.Equal(a, b) || len(a) == 0 {
		t.Errorf("local export (%d bytes) and server export (%d bytes) differ", len(a), len(b))
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing flags", []string{"--config", cfgPath}, 2, "missing --camera, --from, --to, -o"},
		{"both sources", []string{"--config", cfgPath, "--url", "http://x", "--camera", "door", "--from", from, "--to", to, "-o", "x"}, 2, "exactly one of"},
		{"bad time", []string{"--config", cfgPath, "--camera", "door", "--from", "noon", "--to", to, "-o", "x"}, 2, `--from "noon" is not an RFC 3339 time`},
		{"reversed", []string{"--config", cfgPath, "--camera", "door", "--from", to, "--to", from, "-o", "x"}, 2, "--to must be after --from"},
		{"unknown camera", []string{"--config", cfgPath, "--camera", "gate", "--from", from, "--to", to, "-o", filepath.Join(dir, "x")}, 1, `no recordings of a camera named "gate" (cameras with recordings: door)`},
		{"no video", []string{"--config", cfgPath, "--camera", "yard", "--from", from, "--to", to, "-o", filepath.Join(dir, "x")}, 1, `no recordings of a camera named "yard"`},
		{"no video from server", []string{"--url", srv.authURL(), "--camera", "yard", "--from", from, "--to", to, "-o", filepath.Join(dir, "x")}, 1, "404 Not Found: no recorded video of yard/main"},
		{"bad url", []string{"--url", "ftp://x", "--camera", "door", "--from", from, "--to", to, "-o", "x"}, 2, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := exec(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Errorf("exit %d, %q; want %d with %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Errorf("a failed export left its output file")
	}
}

// TestDemoRecordsAndExports runs custos demo as a newcomer would: it
// records the simulated cameras, and what its printed URLs name can be
// exported a few seconds later; its temporary data directory is gone
// after it stops.
func TestDemoRecordsAndExports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: out, stderr: io.Discard},
			[]string{"demo", "--cameras", "1", "--seconds", "1", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"})
	}()
	var base, dataDir string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := regexp.MustCompile(`Recording every camera into (\S+), keeping at most 2GiB; the API is at (http://\S+) `).FindStringSubmatch(out.String()); m != nil {
			dataDir, base = m[1], m[2]
		} else if time.Now().After(deadline) {
			t.Fatalf("demo did not start serving:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The demo keeps at most --max-size (2GiB) and the default 30 days.
	var cams []struct {
		Name   string
		Config struct {
			MaxAgeHours float64 `json:"max_age_hours"`
			MaxBytes    int64   `json:"max_bytes"`
		}
	}
	getJSON(t, base+"/api/cameras", &cams)
	if len(cams) != 1 || cams[0].Config.MaxBytes != 2<<30 || cams[0].Config.MaxAgeHours != 30*24 {
		t.Errorf("demo cameras %+v, want one with max_bytes 2GiB and max_age 30 days", cams)
	}
	start := time.Now().UTC()
	var rec struct{ Runs []struct{ Bytes int64 } }
	for {
		u := base + "/api/cameras/cam1/recordings?from=" + start.Add(-time.Hour).Format(time.RFC3339) + "&to=" + start.Add(time.Hour).Format(time.RFC3339)
		getJSON(t, u, &rec)
		if len(rec.Runs) > 0 && rec.Runs[0].Bytes > 500_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo records nothing: %+v", rec)
		}
		time.Sleep(500 * time.Millisecond)
	}
	u := base + "/api/cameras/cam1/export.mp4?from=" + start.Add(-time.Minute).Format(time.RFC3339) + "&to=" + time.Now().UTC().Format(time.RFC3339Nano)
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo.mp4")
	pt.WriteFile(t, resp.Body, resp.ContentLength, path)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("export: %s", resp.Status)
	}
	if errText, n := pt.DecodeErrors(t, path); errText != "" || n < 25 {
		t.Errorf("demo export: %d frames, ffmpeg said %q", n, errText)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exit %d:\n%s", code, out.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("demo left its data directory %s: %v", dataDir, err)
	}
}
