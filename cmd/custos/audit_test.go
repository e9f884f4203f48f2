package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestAuditCommand appends entries through the audit package, then runs
// custos audit verify and list against the data directory, before and
// after the file is tampered with.
func TestAuditCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	exec := func(args ...string) (string, error) {
		var out bytes.Buffer
		e := &env{stdout: &out, stderr: &bytes.Buffer{}, log: slog.New(slog.DiscardHandler)}
		err := runAudit(ctx, e, args)
		return out.String(), err
	}

	// No index yet: an error, and none is created.
	if _, err := exec("verify", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), "no index") {
		t.Fatalf("verify without an index: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err == nil {
		t.Fatal("verify created an index")
	}

	st, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	n := 0
	l, err := audit.Open(ctx, st, filepath.Join(dir, "audit.log"), func() time.Time { n++; return t0.Add(time.Duration(n) * time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Entry
	for i, e := range []audit.Entry{
		{Action: audit.Start, Result: audit.ResultOK},
		{Actor: "alice", Addr: "192.0.2.1:5000", Action: audit.Login, Result: audit.ResultOK},
		{Actor: "alice", Addr: "192.0.2.1:5000", Action: audit.Export, Camera: "door", Result: audit.ResultOK,
			Detail: map[string]string{"from": "2026-11-29T09:00:00Z", "to": "2026-11-29T09:10:00Z", "reason": "police request"}},
		{Actor: "bob", Addr: "192.0.2.2:6000", Action: audit.Playback, Camera: "yard", Result: audit.ResultDenied},
		{Action: audit.RetentionDelete, Camera: "door", Result: audit.ResultOK, Detail: map[string]string{"count": "12"}},
	} {
		if last, err = l.Append(ctx, e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	l.Close()
	st.Close()

	out, err := exec("verify", "--config", cfgPath)
	if err != nil || out != fmt.Sprintf("audit log OK: 5 entries, head %x\n", last.Hash) {
		t.Fatalf("verify: %v, %q", err, out)
	}

	out, err = exec("list", "--config", cfgPath)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if err != nil || len(lines) != 5 ||
		lines[0] != "5 2026-11-29T09:30:05Z - - retention_delete door ok count=12" ||
		lines[2] != `3 2026-11-29T09:30:03Z alice 192.0.2.1:5000 export door ok from=2026-11-29T09:00:00Z reason="police request" to=2026-11-29T09:10:00Z` {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = exec("list", "--config", cfgPath, "--camera", "door", "--from", "2026-11-29T09:30:03Z", "--to", "2026-11-29T09:30:05Z")
	if err != nil || !strings.HasPrefix(out, "3 ") || strings.Count(out, "\n") != 1 {
		t.Errorf("list with filters: %v, %q", err, out)
	}
	if out, err = exec("list", "--config", cfgPath, "--actor", "alice", "--limit", "1"); err != nil || !strings.HasPrefix(out, "3 ") || strings.Count(out, "\n") != 1 {
		t.Errorf("list --actor --limit: %v, %q", err, out)
	}

	// Tamper: alice's export becomes bob's.
	logPath := filepath.Join(dir, "audit.log")
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.SplitAfter(string(b), "\n")
	lines[2] = strings.Replace(lines[2], `"actor":"alice"`, `"actor":"bob"`, 1)
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec("verify", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "entry 3") ||
		!strings.Contains(out, "audit log FAILED: file line 3: entry 3: hash does not match its contents (altered)") {
		t.Fatalf("verify of a tampered file: %v, %q", err, out)
	}
	// Through main's dispatcher, that is exit status 1.
	var errOut bytes.Buffer
	if code := run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &errOut, log: slog.New(slog.DiscardHandler)},
		[]string{"audit", "verify", "--config", cfgPath}); code != 1 || !strings.Contains(errOut.String(), "entry 3") {
		t.Errorf("custos audit verify exit %d, %s", code, errOut.String())
	}
}

func TestAuditCommandUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"erase"}, `unknown command "erase"`},
		{[]string{"verify", "extra"}, "unexpected argument"},
		{[]string{"list", "--limit", "0"}, "--limit"},
		{[]string{"list", "--from", "yesterday"}, "--from"},
		{[]string{"verify", "--bogus"}, "bogus"},
	} {
		e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, log: slog.New(slog.DiscardHandler)}
		err := runAudit(ctx, e, tc.args)
		if err == nil || !strings.Contains(err.Error(), "usage") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("audit %q: %v; want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
	for _, args := range [][]string{{"--help"}, {"verify", "--help"}, {"list", "-h"}} {
		var out bytes.Buffer
		err := runAudit(ctx, &env{stdout: &out, stderr: &bytes.Buffer{}, log: slog.New(slog.DiscardHandler)}, args)
		if err == nil || !strings.Contains(out.String(), "Usage: custos audit") {
			t.Errorf("audit %q: %v, %q", args, err, out.String())
		}
	}
}
