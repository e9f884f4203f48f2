package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
)

// TestCameraPasswordsStaySecret runs the server with camera passwords
// in a URL and in the password key, cameras that refuse the connection,
// and checks the passwords appear in no API answer, log line, metric or
// audit entry.
func TestCameraPasswordsStaySecret(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a camera that refuses every login
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for { // answer every request with 401, whatever credentials it carries
					tp := textproto.NewReader(br)
					if _, err := tp.ReadLine(); err != nil {
						return
					}
					h, err := tp.ReadMIMEHeader()
					if err != nil {
						return
					}
					fmt.Fprintf(c, "RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n", h.Get("Cseq"))
				}
			}()
		}
	}()
	yaml := "listen: 127.0.0.1:0\ndata_dir: " + dir + "\ncameras:\n" +
		"  - {name: door, url: \"rtsp://viewer:url-secret-1@" + ln.Addr().String() + "/x\"}\n" +
		"  - {name: yard, url: \"rtsp://" + ln.Addr().String() + "/y\", username: admin, password: key-secret-2}\n"
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, out := &syncBuffer{}, &syncBuffer{}
	e := &env{stdout: out, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := srv.authURL()
	var cams []api.CameraJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		getJSON(t, base+"/api/cameras", &cams)
		if len(cams) == 2 && cams[0].Reason != "" && cams[1].Reason != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cameras never reported a reason: %+v", cams)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var answers bytes.Buffer
	for _, p := range []string{"/api/cameras", "/metrics", "/api/live", "/api/storage", "/api/audit"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&answers, resp.Body)
		resp.Body.Close()
	}
	srv.stop()
	auditFile, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	t.Logf("door: %s; yard: %s", cams[0].Reason, cams[1].Reason)
	for what, b := range map[string][]byte{"API answers": answers.Bytes(), "logs": []byte(logs.String()), "console": []byte(out.String()), "audit.log": auditFile} {
		for _, secret := range []string{"url-secret-1", "key-secret-2",
			base64.StdEncoding.EncodeToString([]byte("viewer:url-secret-1")), base64.StdEncoding.EncodeToString([]byte("admin:key-secret-2"))} {
			if bytes.Contains(b, []byte(secret)) {
				i := bytes.Index(b, []byte(secret))
				t.Errorf("%s show %s: …%s…", what, secret, b[max(0, i-80):min(len(b), i+40)])
			}
		}
	}
	if !strings.Contains(logs.String(), "door") {
		t.Errorf("no log lines about the cameras at all? %q", logs.String())
	}
}
