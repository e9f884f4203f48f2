package secret

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "secrets.key")
	b, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); runtime.GOOS != "windows" && di.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", di.Mode().Perm())
	}
	s := b.Seal("hunter22", "camera door password")
	if !IsSealed(s) || strings.Contains(s, "hunter22") || s == b.Seal("hunter22", "camera door password") {
		t.Errorf("sealed %q: want Prefix, no plaintext, a fresh nonce each time", s)
	}
	if got, err := b.Open(s, "camera door password"); err != nil || got != "hunter22" {
		t.Errorf("open: %q %v", got, err)
	}
	if b.Seal("", "x") != "" {
		t.Error("the empty string sealed to something")
	}
	// Reloaded: the same key.
	b2, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("reload: %v %v", created, err)
	}
	if got, err := b2.Open(s, "camera door password"); err != nil || got != "hunter22" {
		t.Errorf("open after reload: %q %v", got, err)
	}
	// Another context, another key, damage: refused, naming the key file.
	other, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		b     *Box
		v, cx string
	}{
		"context":   {b, s, "camera gate password"},
		"key":       {other, s, "camera door password"},
		"damaged":   {b, s[:len(s)-2], "camera door password"},
		"plaintext": {b, "hunter22", "camera door password"},
	} {
		if _, err := tc.b.Open(tc.v, tc.cx); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		} else if name == "key" && !strings.Contains(err.Error(), other.Path()) {
			t.Errorf("%s: %v does not name the key file", name, err)
		}
	}
}

func TestKeyFileRefusals(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.key")
	if _, _, err := LoadOrCreate(loose); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		os.Chmod(loose, 0o644)
		if _, _, err := LoadOrCreate(loose); err == nil || !strings.Contains(err.Error(), "chmod 600 "+loose) {
			t.Errorf("loose mode: %v", err)
		}
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, _, err := LoadOrCreate(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad key file: %v", err)
	}
	if _, _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
