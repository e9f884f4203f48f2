package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestUserCommand drives custos user as an administrator would, against
// a running server: the accounts it makes work over HTTP at once, and
// every change is in the audit log.
func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	if err := os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var srvOut bytes.Buffer
	srvLog := &syncBuffer{}
	srv, err := startServer(context.Background(), &env{stdout: &srvOut, stderr: io.Discard, log: slog.New(slog.NewTextHandler(srvLog, nil)),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "first-admin-pw"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	if !strings.Contains(srvOut.String(), "created user admin with the password in CUSTOS_ADMIN_PASSWORD") || strings.Contains(srvOut.String(), "first-admin-pw") {
		t.Errorf("first start said %q", srvOut.String())
	}
	user := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), &env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(stdin),
			log: slog.New(slog.DiscardHandler), env: map[string]string{"USER": "ops"}}, append([]string{"user"}, args...))
		return code, out.String(), errOut.String()
	}
	status := func(u, p, path string) int {
		req, _ := http.NewRequest("GET", srv.baseURL()+path, nil)
		req.SetBasicAuth(u, p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, _, e := user("guard-password\n", "add", "--config", cfgPath, "guard", "--grant", "door=live,recordings"); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	if got := status("guard", "guard-password", "/api/session"); got != 200 {
		t.Errorf("new user over HTTP: %d", got)
	}
	if got := status("guard", "guard-password", "/api/cameras/door/export.mp4?download=1&from=2026-01-01T00:00:00Z&to=2026-01-01T00:01:00Z"); got != 403 {
		t.Errorf("export without the grant: %d", got)
	}
	if code, out, e := user("", "grant", "--config", cfgPath, "guard", "door", "all"); code != 0 || !strings.Contains(out, "door=live,recordings,export,lock") {
		t.Fatalf("user grant: %d %q %s", code, out, e)
	}
	if code, out, _ := user("", "list", "--config", cfgPath); code != 0 || !strings.Contains(out, "guard") || !strings.Contains(out, "(every camera)") {
		t.Errorf("user list: %q", out)
	}
	code, tok, e := user("", "token", "--config", cfgPath, "guard", "--name", "nightly backup", "--ttl", "30d")
	if code != 0 || !strings.HasPrefix(tok, "custos_") {
		t.Fatalf("user token: %d %q %s", code, tok, e)
	}
	req, _ := http.NewRequest("GET", srv.baseURL()+"/api/session", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("token over HTTP: %v %v", resp, err)
	}
	if code, _, _ := user("new-guard-pw\n", "passwd", "--config", cfgPath, "guard"); code != 0 {
		t.Errorf("user passwd failed")
	}
	if status("guard", "guard-password", "/api/session") != 401 || status("guard", "new-guard-pw", "/api/session") != 200 {
		t.Errorf("password change not effective")
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"short\n", []string{"add", "--config", cfgPath, "bob"}, 1, "too short"},
		{"long-enough\n", []string{"add", "--config", cfgPath, "bob", "--role", "root"}, 2, "role"},
		{"long-enough\n", []string{"add", "--config", cfgPath, "bob", "--grant", "door"}, 2, "--grant"},
		{"", []string{"del", "--config", cfgPath, "admin"}, 1, "last admin"},
		{"", []string{"del", "--config", cfgPath, "nobody"}, 1, "not found"},
		{"", []string{"grant", "--config", cfgPath, "guard", "door"}, 2, "3 argument"},
		{"", []string{"frobnicate", "--config", cfgPath}, 2, "unknown command"},
		{"", []string{"token", "--config", cfgPath, "guard"}, 2, "--name"},
	} {
		code, _, e := user(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(e, tc.msg) {
			t.Errorf("user %v: exit %d %q, want %d with %q", tc.args, code, e, tc.code, tc.msg)
		}
	}
	// custos user unlock reaches the running server's throttle through
	// its audit entry.
	if code, out, e := user("", "unlock", "--config", cfgPath, "guard"); code != 0 || !strings.Contains(out, "forgotten") {
		t.Errorf("user unlock: %d %q %s", code, out, e)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(srvLog.String(), "msg=\"login throttle cleared\" user=guard"); {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not apply custos user unlock within 5 s: %s", srvLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, e := user("", "unlock", "--config", cfgPath, "nobody"); code != 1 || !strings.Contains(e, "not found") {
		t.Errorf("unlock of an unknown user: %d %s", code, e)
	}
	if code, _, e := user("", "del", "--config", cfgPath, "guard"); code != 0 {
		t.Errorf("user del: %s", e)
	}
	if got := status("guard", "new-guard-pw", "/api/session"); got != 401 {
		t.Errorf("deleted user: %d", got)
	}
	// The server kept appending while the command did: one valid chain.
	status("admin", "first-admin-pw", "/api/audit")
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	rep, err := audit.Verify(context.Background(), idx, filepath.Join(dir, "audit.log"))
	if err != nil || !rep.OK {
		t.Fatalf("audit verify: %+v %v", rep, err)
	}
	entries, _ := idx.AuditEntries(context.Background(), 0, 0)
	var actions []string
	for _, en := range entries {
		if en.Detail["via"] == "custos user" {
			actions = append(actions, en.Action)
			if en.Detail["os_user"] != "ops" {
				t.Errorf("entry without the OS user: %+v", en)
			}
		}
	}
	if got := strings.Join(actions, " "); got != "user_add grant_change token_add user_change user_unlock user_delete" {
		t.Errorf("audited CLI actions: %q", got)
	}
}
