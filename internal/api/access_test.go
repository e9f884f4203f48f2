package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/thumb"
	"github.com/custos-nvr/custos/internal/web"
)

// accessServer serves cameras door (recorded) and gate with users admin,
// guard (a viewer with every permission on gate only) and clerk (a
// viewer who may only watch door live).
func accessServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	s := &Server{Cameras: CameraList{{Name: "door"}, {Name: "gate"}}, Index: rc.Index,
		Playback: &playback.Source{Index: rc.Index, Disks: rc.Disks, Cache: playback.NewIndexCache(1 << 20)},
		Thumbs:   thumb.New("", 2, 1<<20), UI: web.Handler()}
	withAccounts(t, s, rc.Index)
	ctx := context.Background()
	if _, err := s.Auth.AddUser(ctx, "guard", auth.Viewer, "guard-password", map[string]auth.Perm{"gate": auth.PermAll}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Auth.AddUser(ctx, "clerk", auth.Viewer, "clerk-password", map[string]auth.Perm{"door": auth.PermLive}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

type req struct {
	method, path, body string
	user, pass         string
	header             []string
}

func do(t *testing.T, c *http.Client, base string, r req) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		hr.Header.Set(r.header[i], r.header[i+1])
	}
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// publicRoutes are the only routes anyone may use without credentials.
// Adding a route to this list is a security decision.
var publicRoutes = []string{"GET /healthz", "POST /api/login", "GET /login", "GET /login.js", "GET /app.css", "/api/"}

// TestRouteWalk walks every registered route: without credentials each
// answers 401 (the public ones excepted), and for a viewer without the
// camera's grant or the route's role each answers 403. A route added
// without an access rule, or with the wrong one, fails here.
func TestRouteWalk(t *testing.T) {
	s, srv := accessServer(t)
	routes := s.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	fill := strings.NewReplacer("{name}", "door", "{id}", "1", "{user}", "guard")
	var public []string
	for _, rt := range routes {
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			method, path = "GET", rt.Pattern
		}
		path = fill.Replace(path)
		if strings.HasPrefix(rt.Pattern, "DELETE /api/sessions/") {
			path = "/api/sessions/" + strings.Repeat("0", 64)
		}
		if path == "/api/" {
			path = "/api/no-such-route"
		}
		t.Run(rt.Pattern, func(t *testing.T) {
			resp, body := do(t, nil, srv.URL, req{method: method, path: path})
			if rt.Public {
				public = append(public, rt.Pattern)
				if resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Errorf("public route answered %s", resp.Status)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("without credentials: %s %s, want 401", resp.Status, body)
			}
			// Wrong password: 401 too, never the resource.
			resp, _ = do(t, nil, srv.URL, req{method: method, path: path, user: "guard", pass: "not-the-password"})
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("wrong password: %s, want 401", resp.Status)
			}
			resp, body = do(t, nil, srv.URL, req{method: method, path: path, user: "guard", pass: "guard-password"})
			if rt.Camera || rt.Role == auth.Admin || rt.Role == auth.Operator {
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("viewer without the grant: %s %s, want 403", resp.Status, body)
				}
			} else if resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Errorf("signed-in viewer: %s %s", resp.Status, body)
			}
		})
	}
	slices.Sort(public)
	want := slices.Clone(publicRoutes)
	slices.Sort(want)
	if !slices.Equal(public, want) {
		t.Errorf("public routes %q, want exactly %q", public, want)
	}
}

// TestGrants checks what guard and clerk may do on the cameras they are
// granted, and that the camera list shows only those.
func TestGrants(t *testing.T) {
	_, srv := accessServer(t)
	export := rangeURL("", "/api/cameras/door/export.mp4", 0, 4)
	for _, tc := range []struct {
		user, pass, path string
		want             int
	}{
		{"clerk", "clerk-password", export, 403},                 // live only
		{"clerk", "clerk-password", export + "&download=1", 403}, // no export
		{"clerk", "clerk-password", "/api/cameras/door/recordings?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", 403},
		{"guard", "guard-password", "/api/cameras/gate/recordings?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", 200},
		{"guard", "guard-password", "/api/cameras/..%2Fdoor/recordings?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", 403},
		{"admin", testAdminPassword, export, 200},
		{"admin", testAdminPassword, export + "&download=1", 200},
	} {
		resp, body := do(t, nil, srv.URL, req{method: "GET", path: tc.path, user: tc.user, pass: tc.pass})
		if resp.StatusCode != tc.want {
			t.Errorf("%s GET %s: %s %.200s, want %d", tc.user, tc.path, resp.Status, body, tc.want)
		}
	}
	for user, want := range map[string][]string{"guard:guard-password": {"gate"}, "clerk:clerk-password": {"door"},
		"admin:" + testAdminPassword: {"door", "gate"}} {
		u, p, _ := strings.Cut(user, ":")
		_, body := do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras", user: u, pass: p})
		var cams []CameraJSON
		json.Unmarshal(body, &cams)
		var names []string
		for _, c := range cams {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s sees cameras %v, want %v", u, names, want)
		}
	}
}

// TestSessionsAndCSRF logs in with the form's route and checks the
// cookie, the CSRF rule, cross-origin refusal, tokens and logout.
func TestSessionsAndCSRF(t *testing.T) {
	s, srv := accessServer(t)
	resp, body := do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"nope-nope"}`})
	if resp.StatusCode != 401 || !strings.Contains(string(body), "wrong user name or password") {
		t.Fatalf("wrong password: %s %s", resp.Status, body)
	}
	resp, body = do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"guard-password"}`})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	var sess SessionJSON
	json.Unmarshal(body, &sess)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || sess.CSRF == "" || sess.User != "guard" {
		t.Fatalf("session cookie %+v, answer %+v", cookie, sess)
	}
	ck := []string{"Cookie", sessionCookie + "=" + cookie.Value}
	withCSRF := append(slices.Clone(ck), CSRFHeader, sess.CSRF)
	if resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/api/session", header: ck}); resp.StatusCode != 200 || !strings.Contains(string(body), sess.CSRF) {
		t.Fatalf("GET /api/session: %s %s", resp.Status, body)
	}
	// A state-changing request without the CSRF token is refused.
	if resp, body := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"x"}`, header: ck}); resp.StatusCode != 403 || !strings.Contains(string(body), CSRFHeader) {
		t.Errorf("POST without CSRF token: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"x"}`, header: append(slices.Clone(ck), CSRFHeader, "forged")}); resp.StatusCode != 403 {
		t.Errorf("POST with a wrong CSRF token: %s", resp.Status)
	}
	// A cross-site browser request is refused even with the token.
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"x"}`,
		header: append(slices.Clone(withCSRF), "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")}); resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %s", resp.Status)
	}
	// Basic credentials sent by a browser from another site are refused too.
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"x"}`, user: "guard", pass: "guard-password",
		header: []string{"Origin", "https://evil.example"}}); resp.StatusCode != 403 {
		t.Errorf("cross-origin Basic POST: %s", resp.Status)
	}
	resp, body = do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"backup","ttl_hours":24}`, header: withCSRF})
	var tok TokenJSON
	if resp.StatusCode != 201 || json.Unmarshal(body, &tok) != nil || !strings.HasPrefix(tok.Token, auth.TokenPrefix) {
		t.Fatalf("POST /api/tokens: %s %s", resp.Status, body)
	}
	// The token works as a bearer token, is listed without its secret.
	bearer := []string{"Authorization", "Bearer " + tok.Token}
	if resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/api/tokens", header: bearer}); resp.StatusCode != 200 ||
		strings.Contains(string(body), tok.Token) || !strings.Contains(string(body), "backup") {
		t.Errorf("GET /api/tokens: %s %s", resp.Status, body)
	}
	// Sessions are listed and revocable.
	_, body = do(t, nil, srv.URL, req{method: "GET", path: "/api/sessions", header: ck})
	var list []SessionInfoJSON
	if json.Unmarshal(body, &list) != nil || len(list) != 1 || !list[0].Current || list[0].User != "guard" {
		t.Fatalf("sessions: %s", body)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "DELETE", path: "/api/sessions/" + list[0].ID, header: bearer}); resp.StatusCode != 204 {
		t.Errorf("revoke session: %s", resp.Status)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/session", header: ck}); resp.StatusCode != 401 {
		t.Errorf("revoked session still works: %s", resp.Status)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "DELETE", path: "/api/tokens/" + strconv.FormatInt(tok.ID, 10), header: bearer}); resp.StatusCode != 204 {
		t.Errorf("delete token: %s", resp.Status)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/session", header: bearer}); resp.StatusCode != 401 {
		t.Errorf("deleted token still works: %s", resp.Status)
	}
	// Logout ends the session.
	_, body = do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"guard-password"}`})
	json.Unmarshal(body, &sess)
	entries, _ := s.Audit.Query(context.Background(), audit.Filter{Actor: "guard", Limit: 100})
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{audit.LoginFailed, audit.Login, audit.TokenAdd, audit.SessionRevoke, audit.TokenDelete} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit has no %s by guard: %v", want, actions)
		}
	}
}

// TestTLSCookie checks the session cookie is Secure over HTTPS.
func TestTLSCookie(t *testing.T) {
	s, _ := accessServer(t)
	srv := httptest.NewTLSServer(s.Handler())
	defer srv.Close()
	resp, body := do(t, srv.Client(), srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"guard-password"}`})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && !c.Secure {
			t.Errorf("session cookie over TLS is not Secure: %+v", c)
		}
	}
}

// TestLoginThrottleHTTP measures the lockout through the API: after five
// wrong passwords the sixth attempt starts a lockout, and attempts during
// it get 429 with Retry-After, even with the right password.
func TestLoginThrottleHTTP(t *testing.T) {
	_, srv := accessServer(t)
	login := func(pw string) (*http.Response, []byte) {
		return do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"` + pw + `"}`})
	}
	for i := 0; i < 6; i++ {
		if resp, body := login("wrong-password"); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %s %s", i+1, resp.Status, body)
		}
	}
	start := time.Now()
	resp, body := login("guard-password")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("during the lockout: %s Retry-After %q %s", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	// Basic credentials are throttled with the same counters.
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/session", user: "guard", pass: "guard-password"}); resp.StatusCode != 429 {
		t.Errorf("Basic during the lockout: %s", resp.Status)
	}
	var waited time.Duration
	for {
		resp, _ = login("guard-password")
		if resp.StatusCode == 200 {
			waited = time.Since(start)
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("still locked out after 10 s: %s", resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after 6 wrong passwords the right one was refused for %v", waited.Round(10*time.Millisecond))
	if waited < 800*time.Millisecond {
		t.Errorf("lockout lasted %v, want about 1 s", waited)
	}
}

// TestBadInputs: oversized bodies, unknown fields, path tricks.
func TestBadInputs(t *testing.T) {
	_, srv := accessServer(t)
	admin := func(method, path, body string) (*http.Response, []byte) {
		return do(t, nil, srv.URL, req{method: method, path: path, body: body, user: "admin", pass: testAdminPassword})
	}
	big := `{"user":"guard","password":"` + strings.Repeat("x", 20000) + `"}`
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: big}); resp.StatusCode != 413 {
		t.Errorf("20 kB login body: %s", resp.Status)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
		reason             string
	}{
		{"POST", "/api/users", `{"name":"../../etc","role":"viewer","password":"long-enough"}`, 400, "user name"},
		{"POST", "/api/users", `{"name":"bob","role":"root","password":"long-enough"}`, 400, "role"},
		{"POST", "/api/users", `{"name":"bob","role":"viewer","password":"short"}`, 400, "too short"},
		{"POST", "/api/users", `{"name":"bob","role":"viewer","password":"long-enough","admin":true}`, 400, "unknown field"},
		{"POST", "/api/users", `{"name":"bob","role":"viewer","password":"long-enough","grants":{"door":"delete"}}`, 400, "permission"},
		{"POST", "/api/users", `{"name":"guard","role":"viewer","password":"long-enough"}`, 409, "exists"},
		{"PATCH", "/api/users/..%2Fadmin", `{"role":"viewer"}`, 404, "not found"},
		{"PATCH", "/api/users/admin", `{"role":"viewer"}`, 409, "last admin"},
		{"DELETE", "/api/users/admin", ``, 409, "last admin"},
		{"PUT", "/api/users/guard/password", `{"password":"x"}`, 400, "too short"},
		{"PUT", "/api/users/admin/password", `{"password":"new-admin-pw-1"}`, 401, "wrong user name or password"},
		{"GET", "/api/audit?limit=100000", ``, 400, "limit"},
		{"GET", "/api/audit?from=yesterday", ``, 400, "from"},
		{"DELETE", "/api/tokens/abc", ``, 400, "number"},
		{"DELETE", "/api/sessions/xyz", ``, 400, "hex"},
	} {
		resp, body := admin(tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.reason) {
			t.Errorf("%s %s: %s %s, want %d with %q", tc.method, tc.path, resp.Status, body, tc.want, tc.reason)
		}
	}
	// A viewer may change only their own password, proving the old one.
	guard := func(method, path, body string) (*http.Response, []byte) {
		return do(t, nil, srv.URL, req{method: method, path: path, body: body, user: "guard", pass: "guard-password"})
	}
	if resp, _ := guard("PUT", "/api/users/clerk/password", `{"password":"new-password-1"}`); resp.StatusCode != 403 {
		t.Errorf("viewer setting another's password: %s", resp.Status)
	}
	if resp, _ := guard("PUT", "/api/users/guard/password", `{"password":"new-password-1","current_password":"wrong-one"}`); resp.StatusCode != 401 {
		t.Errorf("own password without the current one: %s", resp.Status)
	}
	if resp, b := guard("PUT", "/api/users/guard/password", `{"password":"new-password-1","current_password":"guard-password"}`); resp.StatusCode != 204 {
		t.Errorf("own password change: %s %s", resp.Status, b)
	}
}

// TestUnauthenticatedPage: a page load without credentials gets the
// Basic challenge with the sign-in form (kiosks answer it), or a redirect
// to /login in a browser that used the form before; scripts get no
// challenge that would pop up a dialog.
func TestUnauthenticatedPage(t *testing.T) {
	_, srv := accessServer(t)
	resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/"})
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || !bytes.Contains(body, []byte(`id="login"`)) {
		t.Errorf("GET / without credentials: %s %q %.100s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
	}
	// The sign-in page in the 401 has the UI's own security headers: it
	// may not be framed (clickjacking a password) nor run others' scripts.
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("401 sign-in page: %s %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("401 sign-in page: Content-Security-Policy %q", csp)
	}
	resp, _ = do(t, nil, srv.URL, req{method: "GET", path: "/#/camera/door", header: []string{"Cookie", formCookie + "=1"}})
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Errorf("GET / in a form-login browser: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras", header: []string{"Sec-Fetch-Mode", "cors"}})
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("fetch() without credentials: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/", user: "guard", pass: "guard-password"}); resp.StatusCode != 200 {
		t.Errorf("GET / with Basic: %s", resp.Status)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/login"}); resp.StatusCode != 200 {
		t.Errorf("GET /login: %s", resp.Status)
	}
}

// TestViewsAudited: playback, export and thumbnails by a user leave
// entries naming the user, the camera and the range; repeated range
// requests of one viewing are one entry; admins read them at /api/audit.
func TestViewsAudited(t *testing.T) {
	s, srv := accessServer(t)
	ctx := context.Background()
	guard := auth.Perm(auth.PermAll)
	if _, err := s.Auth.Update(ctx, "guard", nil, map[string]auth.Perm{"door": guard}); err != nil {
		t.Fatal(err)
	}
	as := func(path string, header ...string) *http.Response {
		resp, body := do(t, nil, srv.URL, req{method: "GET", path: path, user: "guard", pass: "guard-password", header: header})
		if resp.StatusCode >= 300 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		return resp
	}
	play := rangeURL("", "/api/cameras/door/export.mp4", 1, 5)
	as(play)
	as(play, "Range", "bytes=0-99")
	as(play, "Range", "bytes=100-")
	as(play + "&download=1")
	as(rangeURL("", "/api/cameras/door/fragments.mp4", 2, 3))
	s.FlushViews(ctx)
	entries, err := s.Audit.Query(ctx, audit.Filter{Actor: "guard", Camera: "door", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		count[e.Action+" "+e.Detail["view"]+e.Detail["route"]]++
		if e.Addr == "" || e.Result != "ok" || e.Detail["stream"] != "main" ||
			(e.Action == audit.Export && e.Detail["from"] == "") || (e.Detail["view"] == "end" && e.Detail["ranges"] == "") {
			t.Errorf("entry without address, result, stream or range: %+v", e)
		}
	}
	// One viewing session (export.mp4 in a player and fragments: one
	// start, one end naming the ranges) and one download.
	want := map[string]int{"playback startexport.mp4": 1, "export export.mp4": 1, "playback end": 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d entries %q, want %d (all: %v)", count[k], k, n, count)
		}
	}
	// Admins read them, filtered; viewers may not.
	resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/api/audit?action=export&actor=guard", user: "admin", pass: testAdminPassword})
	var got []AuditJSON
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || len(got) != 1 || got[0].Camera != "door" || len(got[0].Hash) != 64 {
		t.Errorf("GET /api/audit: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/audit", user: "guard", pass: "guard-password"}); resp.StatusCode != 403 {
		t.Errorf("viewer reading the audit log: %s", resp.Status)
	}
	// Nothing is shown when the audit log cannot be written.
	s.Audit.Close()
	resp, body = do(t, nil, srv.URL, req{method: "GET", path: rangeURL("", "/api/cameras/door/export.mp4", 7, 9) + "&download=1", user: "guard", pass: "guard-password"})
	if resp.StatusCode != 503 || !strings.Contains(string(body), "audit") {
		t.Errorf("export with the audit log closed: %s %s", resp.Status, body)
	}
}

func formatInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestMetricsPublic: metrics.public opens /metrics, and nothing else.
func TestMetricsPublic(t *testing.T) {
	s, _ := accessServer(t)
	s.MetricsPublic = true
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	if resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/metrics"}); resp.StatusCode != 200 || !strings.Contains(string(body), "# TYPE custos_stream_up gauge") {
		t.Errorf("public /metrics: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras"}); resp.StatusCode != 401 {
		t.Errorf("/api/cameras with public metrics: %s", resp.Status)
	}
}

// TestLocksAPI: a user with export on a camera locks a range with a
// reason; the timeline's recordings answer shows it; only an admin
// releases it; both are audited.
func TestLocksAPI(t *testing.T) {
	s, srv := accessServer(t)
	ctx := context.Background()
	if _, err := s.Auth.Update(ctx, "guard", nil, map[string]auth.Perm{"door": auth.PermAll}); err != nil {
		t.Fatal(err)
	}
	as := func(user, pass, method, path, body string) (int, string) {
		resp, b := do(t, nil, srv.URL, req{method: method, path: path, body: body, user: user, pass: pass})
		return resp.StatusCode, string(b)
	}
	from, to := pt.At(1).Format(time.RFC3339Nano), pt.At(3).Format(time.RFC3339Nano)
	for _, tc := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"from":"` + from + `","to":"` + to + `"}`, 400, "reason"},
		{`{"from":"` + to + `","to":"` + from + `","reason":"x"}`, 400, "after"},
		{`{"from":"2020-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","reason":"x"}`, 400, "at most"},
		{`{"to":"` + to + `","reason":"x"}`, 400, "required"},
	} {
		if code, body := as("guard", "guard-password", "POST", "/api/cameras/door/locks", tc.body); code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("POST %s: %d %s", tc.body, code, body)
		}
	}
	code, body := as("guard", "guard-password", "POST", "/api/cameras/door/locks", `{"from":"`+from+`","to":"`+to+`","reason":"incident 42"}`)
	var l LockJSON
	if code != 201 || json.Unmarshal([]byte(body), &l) != nil || !l.Active || l.CreatedBy != "guard" {
		t.Fatalf("lock: %d %s", code, body)
	}
	code, body = as("guard", "guard-password", "GET", rangeURL("", "/api/cameras/door/recordings", 0, 20), "")
	var rec RecordingsJSON
	if code != 200 || json.Unmarshal([]byte(body), &rec) != nil || len(rec.Locks) != 1 || rec.Locks[0].Reason != "incident 42" {
		t.Errorf("recordings with a lock: %d %s", code, body)
	}
	release := fmt.Sprintf("/api/locks/%d/release", l.ID)
	if code, _ := as("guard", "guard-password", "POST", release, `{"reason":"done"}`); code != 403 {
		t.Errorf("viewer releasing: %d", code)
	}
	if code, body := as("admin", testAdminPassword, "POST", release, `{"reason":""}`); code != 400 {
		t.Errorf("release without a reason: %d %s", code, body)
	}
	if code, body := as("admin", testAdminPassword, "POST", release, `{"reason":"case closed"}`); code != 204 {
		t.Errorf("release: %d %s", code, body)
	}
	if code, _ := as("admin", testAdminPassword, "POST", release, `{"reason":"again"}`); code != 409 {
		t.Errorf("second release: %d", code)
	}
	if code, _ := as("admin", testAdminPassword, "POST", "/api/locks/999/release", `{"reason":"x"}`); code != 404 {
		t.Errorf("unknown lock: %d", code)
	}
	code, body = as("guard", "guard-password", "GET", rangeURL("", "/api/cameras/door/locks", 0, 20, "released", "1"), "")
	if code != 200 || !strings.Contains(body, `"release_reason": "case closed"`) {
		t.Errorf("locks with released: %d %s", code, body)
	}
	entries, _ := s.Audit.Query(ctx, audit.Filter{Camera: "door", Limit: 50})
	var acts []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "evidence_") {
			acts = append(acts, e.Actor+":"+e.Action)
		}
	}
	if strings.Join(acts, " ") != "admin:evidence_unlock guard:evidence_lock" {
		t.Errorf("audited: %v", acts)
	}
}
