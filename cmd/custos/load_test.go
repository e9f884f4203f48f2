package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/sim"
)

// fileLimitEnv, in a child started as the custos command
// (CUSTOS_TEST_AS_MAIN=1), sets its soft and hard open-file limits before
// main runs: a test-only knob, so the server under test meets the limit
// a small box or a systemd unit gives it.
const fileLimitEnv = "CUSTOS_TEST_NOFILE"

func lowerFileLimitForTest() {
	v := os.Getenv(fileLimitEnv)
	if v == "" {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", fileLimitEnv, v, err)
		os.Exit(2)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(os.Stderr, "setrlimit: %v\n", err)
		os.Exit(2)
	}
}

// TestHTTPFloodKeepsRecording runs the server as its own process with an
// open-file limit of 256 (hard and soft, as a small box's service might
// have), four cameras recording, and floods it for 20 s from loopback
// with 300 connections that send nothing, 100 keep-alive connections left
// idle after one request and 100 slowloris connections (a header byte a
// second): far more than 256 descriptors. Recording must not notice: no
// reconnect, one run per camera, every frame the cameras sent (25 per
// second) counted within a second's worth, no "too many open files"; the timeouts close the idle
// and slow connections that were admitted; afterwards a fresh client gets
// /healthz.
func TestHTTPFloodKeepsRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s flood skipped with -short")
	}
	const cams, nofile = 4, 256
	const floodFor = 20 * time.Second
	simAddr := startSimulator(t, sim.Options{Cameras: cams})
	dir := t.TempDir()
	var camYAML strings.Builder
	for i := 1; i <= cams; i++ {
		fmt.Fprintf(&camYAML, "  - {name: cam%d, url: \"rtsp://%s/cam%d\"}\n", i, simAddr, i)
	}
	cfgPath := filepath.Join(dir, "custos.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
fsync_interval: 1s
http: {read_header_timeout: 2s, idle_timeout: 2s, body_timeout: 2s, write_timeout: 2s, max_conns: 10000, max_conns_per_addr: 10000}
cameras:
%s`, dir, camYAML.String())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_AS_MAIN=1", fileLimitEnv+"="+strconv.Itoa(nofile),
		"CUSTOS_ADMIN_PASSWORD=admin-password")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	defer stop()
	urlRE := regexp.MustCompile(`web UI at (http://[0-9.:]+)/`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case base = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start; log:\n%s", logs)
	}
	host := strings.TrimPrefix(base, "http://")
	authBase := "http://admin:admin-password@" + host

	type camState struct {
		Name    string
		Streams []struct {
			State              string
			Frames, Reconnects int64
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	frames := func() (map[string]int64, time.Time, []camState) {
		t.Helper()
		for try := 0; ; try++ {
			at := time.Now()
			resp, err := client.Get(authBase + "/api/cameras")
			if err == nil {
				var list []camState
				err = decodeJSON(resp, &list)
				if err == nil {
					out := map[string]int64{}
					for _, c := range list {
						if len(c.Streams) > 0 {
							out[c.Name] = c.Streams[0].Frames
						}
					}
					return out, at, list
				}
			}
			if try > 50 {
				t.Fatalf("GET /api/cameras: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Recording on every camera first.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		f, _, _ := frames()
		ok := len(f) == cams
		for _, n := range f {
			ok = ok && n > 25
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cameras not recording: %v; log:\n%s", f, logs)
		}
	}
	f0, t0, _ := frames()

	// The flood. Every worker loops until the end, reconnecting 250 ms
	// after the server closes its connection.
	var (
		wg                       sync.WaitGroup
		attempts, refusedAtOnce  atomic.Int64
		admitted, closedByServer atomic.Int64
		longestAdmitted          atomic.Int64 // ms an admitted connection lived
	)
	floodEnd := time.Now().Add(floodFor)
	ctx, cancel := context.WithDeadline(context.Background(), floodEnd)
	defer cancel()
	worker := func(kind string) {
		defer wg.Done()
		for ctx.Err() == nil {
			attempts.Add(1)
			c, err := net.DialTimeout("tcp", host, 2*time.Second)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			opened := time.Now()
			context.AfterFunc(ctx, func() { c.Close() })
			switch kind {
			case "keepalive":
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
			case "slowloris":
				go func() {
					for i := 0; ctx.Err() == nil; i++ {
						const head = "GET /healthz HTTP/1.1\r\nX-A: "
						if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
							return
						}
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
				}()
			}
			io.Copy(io.Discard, c) // until the server (or the end) closes it
			lived := time.Since(opened)
			c.Close()
			if ctx.Err() != nil {
				break
			}
			closedByServer.Add(1)
			if lived < 300*time.Millisecond {
				refusedAtOnce.Add(1)
			} else {
				admitted.Add(1)
				for {
					old := longestAdmitted.Load()
					if lived.Milliseconds() <= old || longestAdmitted.CompareAndSwap(old, lived.Milliseconds()) {
						break
					}
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for i := 0; i < 500; i++ {
		kind := "idle"
		switch {
		case i >= 400:
			kind = "slowloris"
		case i >= 300:
			kind = "keepalive"
		}
		wg.Add(1)
		go worker(kind)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // the server sees the closes

	// A fresh client is served.
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz after the flood: %v; log:\n%s", err, logs)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz after the flood: %s", resp.Status)
	}
	f1, t1, list := frames()
	dt := t1.Sub(t0).Seconds()
	var lostAll float64
	for _, c := range list {
		st := c.Streams[0]
		lost := 25*dt - float64(f1[c.Name]-f0[c.Name])
		lostAll += max(lost, 0)
		if st.State != "recording" || st.Reconnects != 0 || lost > 25 {
			t.Errorf("%s: %s, %d reconnects, %d frames in %.1f s (%.0f fewer than the camera sent)",
				c.Name, st.State, st.Reconnects, f1[c.Name]-f0[c.Name], dt, lost)
		}
		var rec struct{ Runs []struct{} }
		getJSON(t, fmt.Sprintf("%s/api/cameras/%s/recordings?from=%s&to=%s", authBase, c.Name,
			t0.Add(-time.Hour).UTC().Format(time.RFC3339), t1.Add(time.Hour).UTC().Format(time.RFC3339)), &rec)
		if len(rec.Runs) != 1 {
			t.Errorf("%s: %d runs, want 1 (no gap)", c.Name, len(rec.Runs))
		}
	}
	stop()
	log := logs.String()
	var emfile []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "too many open files") {
			emfile = append(emfile, l)
		}
	}
	if len(emfile) > 0 {
		t.Errorf("the server ran out of descriptors %d times, first: %s", len(emfile), emfile[0])
	}
	if !strings.Contains(log, "refused connections over the limits") {
		t.Errorf("no refusal in the log:\n%.4000s", log)
	}
	t.Logf("flood %v: %d connection attempts; %d closed at once (over the limits), %d admitted and later closed by the server "+
		"(longest lived %d ms; timeouts 2 s); frames lost over %.1f s: %.0f (4 cameras)",
		floodFor, attempts.Load(), refusedAtOnce.Load(), admitted.Load(), longestAdmitted.Load(), dt, lostAll)
	if admitted.Load() == 0 || refusedAtOnce.Load() == 0 {
		t.Errorf("the flood was not both admitted and refused: %d admitted, %d refused", admitted.Load(), refusedAtOnce.Load())
	}
	if ms := longestAdmitted.Load(); ms > 5000 {
		t.Errorf("an idle or slow connection lived %d ms with 2 s timeouts", ms)
	}
}

// decodeJSON decodes a 200 answer's body into v and closes it.
func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
