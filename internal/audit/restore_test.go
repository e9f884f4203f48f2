package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/audit"
)

// TestRestore copies a file's chain into a new, empty index (what check
// --repair does after losing the index) and refuses a tampered file.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	st := openStore(t, src)
	path := filepath.Join(src, logName)
	l, err := audit.Open(ctx, st, path, clock())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := l.Append(ctx, audit.Entry{Action: audit.Export, Actor: "guard", Camera: "door", Result: audit.ResultOK,
			Detail: map[string]string{"n": strings.Repeat("x", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	st.Close()
	good, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(good, []byte("\n"))
	for _, tc := range []struct {
		name string
		file []byte
		n    int
		err  string
	}{
		{"intact", good, 30, ""},
		{"torn last line", append(bytes.Clone(good), lines[0][:40]...), 30, ""},
		{"line removed", bytes.Join(append(append([][]byte{}, lines[:10]...), lines[11:]...), nil), 0, "line 11 holds entry 12"},
		{"lines swapped", bytes.Join(append(append(append([][]byte{}, lines[:4]...), lines[5], lines[4]), lines[6:]...), nil), 0, "line 5 holds entry 6"},
		{"byte changed", bytes.Replace(good, []byte(`"actor":"guard"`), []byte(`"actor":"guarD"`), 1), 0, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, logName)
			os.WriteFile(p, tc.file, 0o600)
			st := openStore(t, dir)
			defer st.Close()
			n, err := audit.Restore(ctx, st, p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || n != 0 {
					t.Fatalf("Restore = %d, %v; want an error with %q", n, err, tc.err)
				}
				if _, ok, _ := st.LastAudit(ctx); ok {
					t.Error("a refused file left entries in the store")
				}
				return
			}
			if err != nil || n != tc.n {
				t.Fatalf("Restore = %d, %v", n, err)
			}
			// The store and the file (its torn line cut by Open) verify.
			l, err := audit.Open(ctx, st, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			if rep, err := audit.Verify(ctx, st, p); err != nil || !rep.OK || rep.Entries != 30 {
				t.Errorf("Verify after Restore: %+v %v", rep, err)
			}
			if _, err := audit.Restore(ctx, st, p); err == nil {
				t.Error("Restore into a store with entries succeeded")
			}
		})
	}
}
