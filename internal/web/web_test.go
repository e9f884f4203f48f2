package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler checks what the UI handler serves: the page, its scripts
// (the live player included), the security headers, and refusals.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		body         string
	}{
		{"GET", "/", 200, "text/html", `<script src="app.js">`},
		{"GET", "/app.js", 200, "text/javascript", "function route()"},
		{"GET", "/player.js", 200, "text/javascript", "CustosLive"},
		{"HEAD", "/app.css", 200, "text/css", ""},
		{"GET", "/nope.js", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) ||
			!strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: %s %q, %d bytes", tc.method, tc.path, resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
		if tc.status == 200 {
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: security headers %v", tc.path, resp.Header)
			}
		}
	}
}
