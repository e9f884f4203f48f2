package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
)

func entriesOf(t *testing.T, s *Server, f audit.Filter) []audit.Entry {
	t.Helper()
	f.Limit = 1000
	es, err := s.Audit.Query(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// freezeAuth gives s an auth service on the same accounts whose clock
// stands still, so lockouts do not end while a test runs.
func freezeAuth(t *testing.T, s *Server) {
	t.Helper()
	frozen := time.Now()
	svc, err := auth.New(s.Auth.Store(), auth.Options{Now: func() time.Time { return frozen },
		Hash: auth.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s.Auth = svc
}

func sumCounts(es []audit.Entry) int {
	n := 0
	for _, e := range es {
		c, _ := strconv.Atoi(e.Detail[audit.DetailCount])
		n += c
	}
	return n
}

// TestBadTokensThrottledAndAggregated is issue 14 item 6: 1,000 bad
// bearer tokens from one address. They count against the address, so
// after its free failures they get 429 without a lookup, and they are
// audited as a handful of aggregated login_failed entries whose counts
// add up to 1,000. (Before: never throttled, one fsynced entry each.)
func TestBadTokensThrottledAndAggregated(t *testing.T) {
	s, srv := accessServer(t)
	freezeAuth(t, s) // however slow the machine, the lockout outlasts the loop
	const n = 1000
	statuses := map[int]int{}
	var last int
	for i := range n {
		resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras",
			header: []string{"Authorization", "Bearer custos_guess" + strconv.Itoa(i)}})
		statuses[resp.StatusCode]++
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests || statuses[401] > 21 || statuses[401]+statuses[429] != n {
		t.Errorf("statuses %v (last %d); want at most 21 401s, then 429", statuses, last)
	}
	during := entriesOf(t, s, audit.Filter{Action: audit.LoginFailed})
	if err := s.refusals().Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	all := entriesOf(t, s, audit.Filter{Action: audit.LoginFailed})
	t.Logf("%d bad tokens: statuses %v; %d login_failed entries during the flood, %d after the flush", n, statuses, len(during), len(all))
	if len(all) > 5 || sumCounts(all) != n {
		t.Errorf("%d login_failed entries counting %d; want at most 5 counting %d", len(all), sumCounts(all), n)
	}
	for _, e := range all {
		if e.Detail["method"] != "token" || e.Addr != "127.0.0.1" || e.Result != audit.ResultDenied {
			t.Errorf("entry %+v", e)
		}
	}
}

// TestCredentialOnEntries is issue 14 item 9 (credential) and item 14:
// every entry made for a request names the credential: the session's id
// prefix, basic, or the token's id and the admin who minted it.
func TestCredentialOnEntries(t *testing.T) {
	s, srv := accessServer(t)
	// An admin mints a token for guard; guard uses it.
	resp, body := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", user: "admin", pass: testAdminPassword,
		body: `{"name":"for guard","user":"guard"}`})
	if resp.StatusCode != 201 {
		t.Fatalf("mint: %s %s", resp.Status, body)
	}
	var tok TokenJSON
	json.Unmarshal(body, &tok)
	if resp, body := do(t, nil, srv.URL, req{method: "POST", path: "/api/tokens", body: `{"name":"own"}`,
		header: []string{"Authorization", "Bearer " + tok.Token}}); resp.StatusCode != 201 {
		t.Fatalf("token_add with the minted token: %s %s", resp.Status, body)
	}
	es := entriesOf(t, s, audit.Filter{Actor: "guard", Action: audit.TokenAdd})
	if len(es) != 1 || es[0].Detail["credential"] != "token" || es[0].Detail["credential_id"] != strconv.FormatInt(tok.ID, 10) ||
		es[0].Detail["minted_by"] != "admin" {
		t.Errorf("entry made with an admin-minted token: %+v", es)
	}
	es = entriesOf(t, s, audit.Filter{Actor: "admin", Action: audit.TokenAdd})
	if len(es) != 1 || es[0].Detail["credential"] != "basic" || es[0].Detail["credential_id"] != "" {
		t.Errorf("entry made with Basic: %+v", es)
	}
	// A session: the login entry and later ones carry its id prefix.
	resp, body = do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"guard-password"}`})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	resp, _ = do(t, nil, srv.URL, req{method: "POST", path: "/api/logout", header: []string{"Cookie", cookie.Name + "=" + cookie.Value,
		CSRFHeader, sessionJSONOf(t, body).CSRF}})
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %s", resp.Status)
	}
	for _, action := range []string{audit.Login, audit.Logout} {
		es := entriesOf(t, s, audit.Filter{Actor: "guard", Action: action})
		if len(es) != 1 || es[0].Detail["credential"] != "session" || len(es[0].Detail["credential_id"]) != 12 ||
			strings.Contains(es[0].Detail["credential_id"], cookie.Value[:12]) {
			t.Errorf("%s entry: %+v", action, es)
		}
	}
}

func sessionJSONOf(t *testing.T, b []byte) SessionJSON {
	t.Helper()
	var sj SessionJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		t.Fatal(err)
	}
	return sj
}

// TestDeniedAudited is issue 14 item 9 (refused requests): 403s and 401s
// are audited as denied entries, aggregated per source, user, reason and
// route, with a count. (Before: not audited at all.)
func TestDeniedAudited(t *testing.T) {
	s, srv := accessServer(t)
	for range 30 {
		if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/users", user: "guard", pass: "guard-password"}); resp.StatusCode != 403 {
			t.Fatalf("guard GET /api/users: %s", resp.Status)
		}
	}
	for range 5 {
		if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras/door/recordings"}); resp.StatusCode != 401 {
			t.Fatalf("anonymous: %s", resp.Status)
		}
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "GET", path: "/api/cameras/door/recordings?from=x", user: "guard", pass: "guard-password"}); resp.StatusCode != 403 {
		t.Fatalf("guard on door: %s", resp.Status)
	}
	if err := s.refusals().Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	es := entriesOf(t, s, audit.Filter{Action: audit.Denied, Actor: "guard"})
	var role, grant []audit.Entry
	for _, e := range es {
		switch e.Detail["reason"] {
		case "role":
			role = append(role, e)
		case "grant":
			grant = append(grant, e)
		}
	}
	if len(role) > 2 || sumCounts(role) != 30 || role[0].Detail["route"] != "GET /api/users" || role[0].Detail["status"] != "403" ||
		role[0].Detail["credential"] != "basic" || role[0].Result != audit.ResultDenied {
		t.Errorf("role refusals: %+v", role)
	}
	if len(grant) != 1 || grant[0].Camera != "door" {
		t.Errorf("grant refusal: %+v", grant)
	}
	var anon []audit.Entry
	for _, e := range entriesOf(t, s, audit.Filter{Action: audit.Denied}) {
		if e.Actor == "" {
			anon = append(anon, e)
		}
	}
	if sumCounts(anon) != 5 || anon[0].Detail["reason"] != "no_credentials" || anon[0].Detail["status"] != "401" {
		t.Errorf("anonymous refusals: %+v", anon)
	}
}

// TestLockoutSparesCleanAddressHTTP is issue 14 item 5 end to end, behind
// a trusted proxy: 20 bad logins for guard from client A (as the proxy
// says in X-Forwarded-For) lock A out, and the right password from
// client B is accepted. (Before: 429 for everyone, and X-Forwarded-For
// was not read.) A peer that is not trusted cannot choose its address.
func TestLockoutSparesCleanAddressHTTP(t *testing.T) {
	s, srv := accessServer(t)
	freezeAuth(t, s)
	s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	login := func(pw, xff string) int {
		resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"` + pw + `"}`,
			header: []string{"X-Forwarded-For", xff}})
		return resp.StatusCode
	}
	for range 20 {
		login("wrong-password", "198.51.100.1, 127.0.0.1")
	}
	if st := login("guard-password", "198.51.100.1"); st != 429 {
		t.Errorf("right password from the failing client: %d, want 429", st)
	}
	if st := login("guard-password", "203.0.113.5, 198.51.100.2"); st != 200 {
		t.Errorf("right password from another client behind the proxy: %d, want 200", st)
	}
	es := entriesOf(t, s, audit.Filter{Action: audit.Login, Actor: "guard"})
	if len(es) != 1 || es[0].Addr != "198.51.100.2" {
		t.Errorf("login entry: %+v (want the right-most untrusted address)", es)
	}
	s.TrustedProxies = nil
	for range 20 {
		login("wrong-password", "192.0.2.1")
	}
	if st := login("guard-password", "192.0.2.99"); st != 429 {
		t.Errorf("untrusted peer choosing its X-Forwarded-For: %d, want 429 (it is still 127.0.0.1)", st)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", []string{"198.51.100.1"}, "192.0.2.1"},            // untrusted peer: header ignored
		{"10.0.0.2:5000", nil, "10.0.0.2"},                                   // trusted, no header
		{"10.0.0.2:5000", []string{"198.51.100.1"}, "198.51.100.1"},          // one proxy
		{"10.0.0.2:5000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"}, // forged left part
		{"10.0.0.2:5000", []string{"6.6.6.6", "198.51.100.1, 10.0.0.9"}, "198.51.100.1"},
		{"10.0.0.2:5000", []string{"10.0.0.7, 10.0.0.9"}, "10.0.0.7"},    // all trusted: left-most
		{"10.0.0.2:5000", []string{"198.51.100.1, garbage"}, "10.0.0.2"}, // broken hop: stop
		{"10.0.0.2:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"[::1]:80", []string{"198.51.100.1:7"}, "198.51.100.1"},
		{"[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
	}
	for _, c := range cases {
		if got := ClientAddr(c.remote, c.xff, trusted); got != c.want {
			t.Errorf("ClientAddr(%q, %q) = %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
	if got := ClientAddr("10.0.0.2:5000", []string{"198.51.100.1"}, nil); got != "10.0.0.2" {
		t.Errorf("no trusted proxies: %q", got)
	}
}

// TestUnlock: POST /api/users/{user}/unlock (admins) and the user_unlock
// entries custos user unlock appends (WatchUnlocks) clear a lockout.
func TestUnlock(t *testing.T) {
	s, srv := accessServer(t)
	freezeAuth(t, s) // lockouts end only by unlocking
	lockGuard := func() {
		for range 6 {
			do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"wrong-password"}`})
		}
	}
	login := func() int {
		resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/login", body: `{"user":"guard","password":"guard-password"}`})
		return resp.StatusCode
	}
	lockGuard()
	if st := login(); st != 429 {
		t.Fatalf("locked: %d", st)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/users/guard/unlock", user: "guard", pass: "guard-password"}); resp.StatusCode != 403 && resp.StatusCode != 429 {
		t.Errorf("unlock by a viewer: %s", resp.Status)
	}
	if resp, _ := do(t, nil, srv.URL, req{method: "POST", path: "/api/users/guard/unlock", user: "admin", pass: testAdminPassword}); resp.StatusCode != 204 {
		t.Fatalf("unlock: %s", resp.Status)
	}
	if st := login(); st != 200 {
		t.Errorf("after unlock: %d", st)
	}
	if es := entriesOf(t, s, audit.Filter{Action: audit.UserUnlock}); len(es) != 1 || es[0].Actor != "admin" || es[0].Detail["user"] != "guard" {
		t.Errorf("unlock entry: %+v", es)
	}
	// As custos user unlock does it: an entry appended by another process.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { WatchUnlocks(ctx, s.Audit, s.Auth, 20*time.Millisecond, nil); close(done) }()
	defer func() { cancel(); <-done }()
	lockGuard()
	time.Sleep(50 * time.Millisecond) // the watcher has looked once
	if st := login(); st != 429 {
		t.Fatalf("locked again: %d", st)
	}
	if _, err := s.Audit.Append(ctx, audit.Entry{Action: audit.UserUnlock, Addr: "local", Result: audit.ResultOK,
		Detail: map[string]string{"user": "guard", "via": "custos user"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for login() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not apply the unlock within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
