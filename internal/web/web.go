// Package web serves Custos's browser UI: static files embedded in the
// binary (go:embed), no build step. The UI talks only to the JSON and
// media routes of internal/api; routing inside the UI uses the URL
// fragment (#/camera/NAME), so the server needs no route per page.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/custos-nvr/custos/internal/live"
)

//go:embed static
var static embed.FS

// PublicPaths are the UI paths served without credentials: the sign-in
// form and its assets (see internal/api's access rules).
var PublicPaths = []string{"/login", "/login.js", "/app.css"}

// LoginPage returns the sign-in form's HTML, which the API also sends as
// the body of an unauthenticated page request.
func LoginPage() []byte {
	b, err := static.ReadFile("static/login.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// SetPageHeaders sets the security headers every UI page is sent with,
// the sign-in page in a 401 answer included: only our own scripts,
// styles, media and connections (video comes as blob: URLs (MSE) or
// WebRTC; inline style attributes position the timeline's bars), no
// framing (clickjacking), no MIME sniffing, no Referer.
func SetPageHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; "+
		"style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' blob:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
}

// Handler serves the UI at / (index.html) and its assets. Files are
// served with Cache-Control: no-cache so an upgraded binary's UI is seen
// at once (they are small, and ETag-less embedded files revalidate by
// modification time, which embed does not set: the cost is one small
// response per asset per page load).
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	modTime := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		SetPageHeaders(w.Header())
		if r.URL.Path == "/login" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(LoginPage())
			return
		}
		if r.URL.Path == "/player.js" {
			// The live player lives with the server side of its protocol.
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeContent(w, r, "player.js", modTime, bytes.NewReader(live.PlayerJS))
			return
		}
		files.ServeHTTP(w, r)
	})
}
