package auth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var fastHash = auth.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

func newService(t *testing.T) (*auth.Service, *fakeClock, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s, err := auth.New(st, auth.Options{Now: clk.Now, Hash: fastHash})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, st
}

func TestPerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want auth.Perm
		str  string
		err  bool
	}{
		{"", 0, "", false},
		{"live", auth.PermLive, "live", false},
		{"export, live", auth.PermLive | auth.PermExport, "live,export", false},
		{"all", auth.PermAll, "live,recordings,export,lock", false},
		{"lock", auth.PermLock, "lock", false},
		{"recordings,recordings", auth.PermRecordings, "recordings", false},
		{"delete", 0, "", true},
	} {
		p, err := auth.ParsePerms(tc.in)
		if (err != nil) != tc.err || p != tc.want || (!tc.err && p.String() != tc.str) {
			t.Errorf("ParsePerms(%q) = %v (%q), %v; want %v (%q), err %v", tc.in, p, p.String(), err, tc.want, tc.str, tc.err)
		}
	}
	u := auth.User{Role: auth.Viewer, Grants: map[string]auth.Perm{"door": auth.PermLive, auth.AllCameras: auth.PermRecordings}}
	for _, tc := range []struct {
		cam  string
		p    auth.Perm
		want bool
	}{
		{"door", auth.PermLive, true},
		{"door", auth.PermRecordings, true}, // from "*"
		{"door", auth.PermExport, false},
		{"door", auth.PermLive | auth.PermExport, false},
		{"yard", auth.PermLive, false},
		{"yard", auth.PermRecordings, true},
		{"yard", 0, false},
	} {
		if got := u.Can(tc.cam, tc.p); got != tc.want {
			t.Errorf("viewer Can(%q, %v) = %v, want %v", tc.cam, tc.p, got, tc.want)
		}
	}
	admin := auth.User{Role: auth.Admin}
	if !admin.Can("anything", auth.PermAll) {
		t.Error("admin cannot export")
	}
	if !auth.Operator.AtLeast(auth.Viewer) || auth.Viewer.AtLeast(auth.Operator) || !auth.Admin.AtLeast(auth.Operator) {
		t.Error("role order wrong")
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse", auth.DefaultHashParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string with the default parameters", h)
	}
	if ok, err := auth.CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Errorf("right password: %v, %v", ok, err)
	}
	if ok, err := auth.CheckPassword(h, "correct horsE"); ok || err != nil {
		t.Errorf("wrong password: %v, %v", ok, err)
	}
	h2, _ := auth.HashPassword("correct horse", auth.DefaultHashParams)
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := auth.CheckPassword(bad, "x"); err == nil {
			t.Errorf("CheckPassword(%q) accepted a malformed hash", bad)
		}
	}
}

func TestBootstrapAndLogin(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newService(t)
	created, gen, err := s.Bootstrap(ctx, "")
	if err != nil || !created || len(gen) < 20 {
		t.Fatalf("Bootstrap = %v, %q, %v", created, gen, err)
	}
	if created, _, err := s.Bootstrap(ctx, "other"); created || err != nil {
		t.Fatalf("second Bootstrap created=%v err=%v", created, err)
	}
	u, sess, raw, err := s.Login(ctx, "admin", gen, "10.0.0.1", "test")
	if err != nil || u.Role != auth.Admin || raw == "" || sess.CSRF == "" {
		t.Fatalf("Login = %+v, %q, %v", u, raw, err)
	}
	if got, gs, err := s.Session(ctx, raw); err != nil || got.Name != "admin" || gs.CSRF != sess.CSRF {
		t.Fatalf("Session = %v, %v", got.Name, err)
	}
	// Idle expiry slides with use; the absolute limit does not.
	for i, d := range []int{6, 6, 6, 6, 5} { // 29 days
		clk.Add(time.Duration(d) * 24 * time.Hour)
		if _, _, err := s.Session(ctx, raw); err != nil {
			t.Fatalf("session used every few days died after %d uses: %v", i, err)
		}
	}
	clk.Add(2 * 24 * time.Hour) // 31 days after login
	if _, _, err := s.Session(ctx, raw); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("session past its 30-day limit: %v", err)
	}
	_, _, raw, _ = s.Login(ctx, "admin", gen, "10.0.0.1", "test")
	clk.Add(8 * 24 * time.Hour)
	if _, _, err := s.Session(ctx, raw); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("session idle 8 days: %v", err)
	}
	_, _, raw, _ = s.Login(ctx, "admin", gen, "10.0.0.1", "test")
	if err := s.Logout(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, raw); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("session after logout: %v", err)
	}
	if _, _, err := s.Session(ctx, "forged"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("forged session: %v", err)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s, _, st := newService(t)
	if _, err := s.AddUser(ctx, "admin", auth.Admin, "adminpass1", nil); err != nil {
		t.Fatal(err)
	}
	grants := map[string]auth.Perm{"door": auth.PermLive | auth.PermRecordings}
	u, err := s.AddUser(ctx, "guard", auth.Viewer, "guardpass1", grants)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pw string
		role     auth.Role
		want     string
	}{
		{"guard", "whatever12", auth.Viewer, "already exists"},
		{"", "whatever12", auth.Viewer, "user name"},
		{"../etc", "whatever12", auth.Viewer, "user name"},
		{strings.Repeat("a", 65), "whatever12", auth.Viewer, "user name"},
		{"bob", "short", auth.Viewer, "too short"},
		{"bob", strings.Repeat("x", 2000), auth.Viewer, "too long"},
		{"bob", "whatever12", "root", "role"},
	} {
		if _, err := s.AddUser(ctx, tc.name, tc.role, tc.pw, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddUser(%.20q, %q) = %v, want error with %q", tc.name, tc.role, err, tc.want)
		}
	}
	got, err := st.UserByName(ctx, "guard")
	if err != nil || got.ID != u.ID || got.Grants["door"] != grants["door"] || got.Role != auth.Viewer {
		t.Fatalf("stored user = %+v, %v", got, err)
	}
	// Grants replace; roles change.
	op := auth.Operator
	if _, err := s.Update(ctx, "guard", &op, map[string]auth.Perm{"yard": auth.PermExport}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.UserByName(ctx, "guard")
	if got.Role != auth.Operator || len(got.Grants) != 1 || got.Grants["yard"] != auth.PermExport {
		t.Fatalf("after update: %+v", got)
	}
	// The last admin stays.
	vw := auth.Viewer
	if _, err := s.Update(ctx, "admin", &vw, nil); !errors.Is(err, auth.ErrLastAdmin) {
		t.Errorf("demoting the last admin: %v", err)
	}
	if err := s.Delete(ctx, "admin"); !errors.Is(err, auth.ErrLastAdmin) {
		t.Errorf("deleting the last admin: %v", err)
	}
	// Password change ends sessions and Basic cache entries.
	_, _, raw, err := s.Login(ctx, "guard", "guardpass1", "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Basic(ctx, "guard", "guardpass1", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, "guard", "newpass123"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, raw); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("session survived a password change: %v", err)
	}
	if _, err := s.Basic(ctx, "guard", "guardpass1", "a"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("cached Basic credential survived a password change: %v", err)
	}
	if _, err := s.Basic(ctx, "guard", "newpass123", "a"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// Tokens: shown once, stored hashed, deleted with the user.
	raw, tok, err := s.NewToken(ctx, "guard", "backup script", 0)
	if err != nil || !strings.HasPrefix(raw, auth.TokenPrefix) {
		t.Fatalf("NewToken = %q, %v", raw, err)
	}
	if string(tok.Hash) == raw || strings.Contains(string(tok.Hash), raw[len(auth.TokenPrefix):]) {
		t.Error("token stored in clear")
	}
	if u, _, err := s.TokenUser(ctx, raw, "10.0.0.1"); err != nil || u.Name != "guard" {
		t.Fatalf("TokenUser = %v, %v", u.Name, err)
	}
	if _, _, err := s.TokenUser(ctx, raw+"x", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("altered token: %v", err)
	}
	if err := s.Delete(ctx, "guard"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TokenUser(ctx, raw, "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("token of a deleted user: %v", err)
	}
	if toks, _ := st.Tokens(ctx); len(toks) != 0 {
		t.Errorf("tokens left after the user was deleted: %d", len(toks))
	}
}

func TestTokenExpiry(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newService(t)
	s.AddUser(ctx, "bot", auth.Viewer, "botpassword", nil)
	raw, _, err := s.NewToken(ctx, "bot", "nightly", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TokenUser(ctx, raw, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if _, _, err := s.TokenUser(ctx, raw, "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("expired token: %v", err)
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := auth.HashPassword("correct horse battery", auth.DefaultHashParams); err != nil {
			b.Fatal(err)
		}
	}
}
