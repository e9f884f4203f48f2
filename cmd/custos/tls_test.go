package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/config"
)

// TestServeTLSSelfSigned serves HTTPS with a generated certificate: the
// fingerprint printed at start is the one the client sees, and the
// session cookie is Secure.
func TestServeTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\ntls: {self_signed: true}\n"), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	srv, err := startServer(context.Background(), &env{stdout: &out, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	if !strings.HasPrefix(srv.baseURL(), "https://") {
		t.Fatalf("base URL %s", srv.baseURL())
	}
	// The operator compares the printed fingerprint with the browser's.
	var seen string
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			var parts []string
			for _, b := range sum {
				parts = append(parts, fmt.Sprintf("%02X", b))
			}
			seen = strings.Join(parts, ":")
			return nil
		}}}}
	resp, err := client.Post(srv.baseURL()+"/api/login", "application/json", strings.NewReader(`{"user":"admin","password":"admin-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login over HTTPS: %s", resp.Status)
	}
	if !strings.Contains(out.String(), seen) || seen == "" {
		t.Errorf("printed %q; the server presents %s", out.String(), seen)
	}
	secure := false
	for _, c := range resp.Cookies() {
		secure = secure || (c.Name == "custos_session" && c.Secure && c.HttpOnly)
	}
	if !secure {
		t.Errorf("session cookie over HTTPS not Secure+HttpOnly: %v", resp.Cookies())
	}
	// Plain HTTP on the TLS port is refused, not served.
	if resp, err := http.Get("http://" + srv.addr + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP answered on the HTTPS port")
	}
}
