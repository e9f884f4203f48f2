package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// rtspTrap is an RTSP listener that challenges every request for
// credentials (Digest and Basic) and records every byte it receives.
type rtspTrap struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
}

func startTrap(t *testing.T) *rtspTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &rtspTrap{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				cseq := ""
				for range 1000 {
					line, err := br.ReadString('\n')
					tr.mu.Lock()
					tr.got.WriteString(line)
					tr.mu.Unlock()
					if err != nil {
						return
					}
					if v, ok := strings.CutPrefix(line, "CSeq:"); ok {
						cseq = strings.TrimSpace(v)
					}
					if line == "\r\n" {
						fmt.Fprintf(c, "RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\n"+
							"WWW-Authenticate: Digest realm=\"trap\", nonce=\"0123456789abcdef\"\r\n"+
							"WWW-Authenticate: Basic realm=\"trap\"\r\n\r\n", cseq)
					}
				}
			})
		}
	})
	return tr
}

func (tr *rtspTrap) received() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.got.String()
}

// TestCameraPasswordStaysWithItsHost: an operator cannot move a camera
// to another host and have the server send it the stored password. A
// change of host or port (main or sub-stream) without the password is
// refused with 422 and the trap at the new address receives nothing;
// typing the password again is accepted (and the trap then sees the
// client's credentials, which shows it would have caught them).
// Operators without every permission on the camera get 403. Probing with
// the stored credentials works only against the camera's own host.
func TestCameraPasswordStaysWithItsHost(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 1, User: "cam", Pass: "cam-secret"})
	trap := startTrap(t)
	dir := t.TempDir()
	srv, _, _ := serveYAML(t, dir, "")
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	call := func(user, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.baseURL()+path, strings.NewReader(body))
		req.SetBasicAuth(user, user+"-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("admin", "POST", "/api/cameras", `{"name":"yard","url":"rtsp://cam:cam-secret@`+simAddr+`/cam1"}`); code != 201 {
		t.Fatalf("add yard: %d %s", code, body)
	}
	for _, u := range []string{`{"name":"olga","role":"operator","password":"olga-password","grants":{"yard":"all"}}`,
		`{"name":"eve","role":"operator","password":"eve-password","grants":{"yard":"live,recordings"}}`} {
		if code, body := call("admin", "POST", "/api/users", u); code != 201 {
			t.Fatalf("add user: %d %s", code, body)
		}
	}
	moved := `{"url":"rtsp://` + trap.addr + `/cam1","username":"cam"}`
	for _, tc := range []struct {
		user, method, path, body string
		code                     int
		msg                      string
	}{
		{"eve", "PUT", "/api/cameras/yard", moved, 403, "permission"},
		{"eve", "PUT", "/api/cameras/yard", `{"url":"rtsp://` + simAddr + `/cam1","username":"cam","max_age_hours":1}`, 403, "permission"},
		{"eve", "DELETE", "/api/cameras/yard", "", 403, "permission"},
		{"eve", "POST", "/api/cameras", `{"name":"gate","url":"rtsp://` + trap.addr + `/x"}`, 403, "every camera"},
		{"olga", "POST", "/api/cameras", `{"name":"gate","url":"rtsp://` + trap.addr + `/x"}`, 403, "every camera"},
		{"olga", "PUT", "/api/cameras/yard", moved, 422, "password"},
		{"admin", "PUT", "/api/cameras/yard", moved, 422, "password"},
		{"olga", "PUT", "/api/cameras/yard", `{"url":"rtsp://` + simAddr + `/cam1","sub_url":"rtsp://` + trap.addr + `/sub","username":"cam"}`, 422, "sub_url"},
		// Hosts compare as written: localhost is not 127.0.0.1.
		{"olga", "PUT", "/api/cameras/yard", `{"url":"rtsp://` + strings.Replace(simAddr, "127.0.0.1", "localhost", 1) + `/cam1","username":"cam"}`, 422, "password"},
		{"olga", "PUT", "/api/cameras/yard", `{"url":"rtsp://` + simAddr + `/cam1","username":"cam","max_age_hours":5}`, 200, ""},
		// Probing with the stored credentials: on the camera's host only,
		// by those who may manage it.
		{"olga", "POST", "/api/probe", `{"url":"rtsp://` + simAddr + `/cam1","camera":"yard"}`, 200, `"codec": "h264"`},
		{"olga", "POST", "/api/probe", `{"url":"rtsp://` + trap.addr + `/cam1","camera":"yard"}`, 422, "password"},
		{"eve", "POST", "/api/probe", `{"url":"rtsp://` + simAddr + `/cam1","camera":"yard"}`, 403, "live, recordings and export"},
		{"eve", "POST", "/api/probe", `{"url":"rtsp://` + simAddr + `/cam1","camera":"nosuch"}`, 403, "live, recordings and export"},
	} {
		if code, body := call(tc.user, tc.method, tc.path, tc.body); code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s %s %s %s: %d %s, want %d with %q", tc.user, tc.method, tc.path, tc.body, code, body, tc.code, tc.msg)
		}
	}
	// Had a refused change gone through, the camera would have dialled
	// the trap at once.
	time.Sleep(2 * time.Second)
	if got := trap.received(); got != "" {
		t.Fatalf("the trap received, after refused changes:\n%s", got)
	}
	_, body := call("admin", "GET", "/api/cameras", "")
	var cams []api.CameraJSON
	json.Unmarshal([]byte(body), &cams)
	if len(cams) != 1 || cams[0].Config.URL != "rtsp://"+simAddr+"/cam1" || cams[0].Config.MaxAgeHours != 5 {
		t.Errorf("yard after the refused changes: %s", body)
	}

	// With the password typed again (here in the URL) the move is the
	// operator's choice.
	if code, body := call("olga", "PUT", "/api/cameras/yard", `{"url":"rtsp://cam:typed-again@`+trap.addr+`/cam1","username":"cam"}`); code != 200 {
		t.Fatalf("move with the password: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(trap.received(), "Authorization:") {
		if time.Now().After(deadline) {
			t.Fatalf("the trap never saw credentials; it received:\n%s", trap.received())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Neither password is in the index's files, which only the server's
	// user may read.
	stopped = true
	srv.stop()
	assertNotInFiles(t, dir, "cam-secret", "typed-again")
	assertPrivate(t, dir)
}

// assertNotInFiles fails if any of secrets is in the bytes of the index
// (and its -wal file, if left).
func assertNotInFiles(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	for _, name := range []string{"index.db", "index.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && name != "index.db" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds %q in plaintext", name, sec)
			}
		}
	}
}

// assertPrivate fails if the index or a key file may be read by group or
// others.
func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	for _, name := range []string{"index.db", "keys/node.key", "keys/secrets.key", "audit.log"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, m)
		}
	}
}

// TestStoredCameraSecretsSealed: a camera stored in plaintext by an older
// version (and an index left readable by others) is sealed and restricted
// at the next start, and still records; with another key file it reports
// an error naming the camera and the key file while the others record.
func TestStoredCameraSecretsSealed(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 2, User: "cam", Pass: "cam-secret"})
	dir := t.TempDir()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	// yard records; gate's URL has its credentials in the query string
	// (the simulator does not serve it, but it must be sealed as well).
	for _, c := range []config.Camera{{Name: "yard", URL: "rtsp://" + simAddr + "/cam2", Username: "cam", Password: "cam-secret"},
		{Name: "gate", URL: "rtsp://" + simAddr + "/cam2?user=cam&Password=gate-secret"}} {
		if err := idx.PutCamera(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	idx.Close()
	os.Chmod(filepath.Join(dir, "index.db"), 0o644)
	raw, _ := os.ReadFile(filepath.Join(dir, "index.db"))
	if !bytes.Contains(raw, []byte("cam-secret")) || !bytes.Contains(raw, []byte("gate-secret")) {
		t.Fatal("the test's plaintext row is not in the index file")
	}
	tail := "cameras:\n  - {name: door, url: \"rtsp://cam:cam-secret@" + simAddr + "/cam1\"}\n"
	srv, _, logs := serveYAML(t, dir, tail)
	status := func(name string) (api.CameraJSON, bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.baseURL()+"/api/cameras", nil)
		req.SetBasicAuth("admin", "admin-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cams []api.CameraJSON
		json.NewDecoder(resp.Body).Decode(&cams)
		for _, c := range cams {
			if c.Name == name {
				return c, true
			}
		}
		return api.CameraJSON{}, false
	}
	waitState := func(name, state string) api.CameraJSON {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, _ := status(name)
			if c.Status == state && (state != "recording" || c.Streams[0].Frames > 0) {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("camera %s is not %s: %+v", name, state, c)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitState("yard", "recording")
	if g, _ := status("gate"); g.Config.URL != "rtsp://"+simAddr+"/cam2?user=cam&Password=xxxxx" {
		t.Errorf("the API shows gate's URL as %q, want its query-string password redacted", g.Config.URL)
	}
	for _, want := range []string{"sealed the plaintext", "restricted it to mode 0600"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
	srv.stop()
	assertNotInFiles(t, dir, "cam-secret", "gate-secret")
	assertPrivate(t, dir)

	// Another key file (the index copied without its own): yard says why,
	// door records, the server serves.
	keyPath := filepath.Join(dir, "keys", "secrets.key")
	os.Remove(keyPath)
	srv, _, logs = serveYAML(t, dir, tail)
	defer srv.stop()
	y := waitState("yard", "error")
	if !strings.Contains(y.Reason, "camera yard") || !strings.Contains(y.Reason, keyPath) {
		t.Errorf("yard's reason %q does not name the camera and %s", y.Reason, keyPath)
	}
	waitState("door", "recording")
}
