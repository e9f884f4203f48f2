package local

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/blobtest"
)

func openTemp(t *testing.T) *Dir {
	t.Helper()
	d, err := Open(t.TempDir(), "disk1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return openTemp(t) })
}

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := Open(dir, "disk1", Options{Now: func() time.Time { return created }})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Initialized() || d.Name() != "disk1" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(d.ID()) {
		t.Fatalf("new disk: initialized=%v name=%q id=%q", d.Initialized(), d.Name(), d.ID())
	}
	id := d.ID()
	d.Close()

	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["name"] != "disk1" || raw["id"] != id || raw["created"] != "2025-03-01T12:00:00Z" {
		t.Errorf("identity file = %s", b)
	}

	d, err = Open(dir, "disk1", Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if d.Initialized() || d.ID() != id || !d.Identity().Created.Equal(created) {
		t.Errorf("reopen: initialized=%v id=%q created=%v", d.Initialized(), d.ID(), d.Identity().Created)
	}
	d.Close()

	for _, init := range []bool{false, true} { // Init never overrides another identity
		_, err = Open(dir, "disk2", Options{Init: init})
		if !errors.Is(err, ErrWrongDisk) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "disk1") {
			t.Errorf("Open as another disk (Init=%v): %v; want ErrWrongDisk naming the dir and disk1", init, err)
		}
	}
}

func TestNoIdentity(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, "disk1", Options{})
	if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("non-empty dir without identity: %v; want ErrNoIdentity naming the dir", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused Open wrote an identity: %v", err)
	}
	d, err := Open(dir, "disk1", Options{Init: true})
	if err != nil {
		t.Fatalf("Init on non-empty dir: %v", err)
	}
	if !d.Initialized() {
		t.Error("Init: Initialized() = false")
	}
	d.Close()
	if _, err := Open(dir, "disk1", Options{}); err != nil {
		t.Fatalf("reopen after Init: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "unmounted")
	_, err = Open(missing, "disk1", Options{Init: true})
	if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing dir: %v; want ErrNoIdentity naming the dir", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("Open created the missing directory")
	}

	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, IdentityFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(corrupt, "disk1", Options{Init: true}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt identity: %v", err)
	}

	// A leftover temporary identity does not make a directory non-empty.
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, identityTmp), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tmp, "disk1", Options{}); err != nil {
		t.Errorf("dir with only a leftover temporary identity: %v", err)
	}
}

func TestReservedKeys(t *testing.T) {
	d := openTemp(t)
	ctx := t.Context()
	for _, key := range []string{IdentityFile, identityTmp} {
		if err := d.Delete(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Delete(%q) = %v; want ErrBadKey", key, err)
		}
		if _, err := d.Open(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Open(%q) = %v; want ErrBadKey", key, err)
		}
	}
	for o, err := range d.List(ctx, "") {
		t.Errorf("List on a fresh disk yielded %v, %v", o, err)
	}
}

func TestSymlinkEscape(t *testing.T) {
	d := openTemp(t)
	ctx := t.Context()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(d.Path(), "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d.Path(), "cam1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(d.Path(), "cam1", "link")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"evil/secret", "cam1/link"} {
		if r, err := d.Open(ctx, key); err == nil {
			b, _ := io.ReadAll(io.NewSectionReader(r, 0, 100))
			r.Close()
			t.Errorf("Open(%q) read %q through a symlink", key, b)
		}
		if w, err := d.OpenAppend(ctx, key); err == nil {
			w.Write([]byte("pwned"))
			w.Close()
			t.Errorf("OpenAppend(%q) opened through a symlink", key)
		}
		if _, err := d.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded through a symlink", key)
		}
	}
	if w, err := d.Create(ctx, "evil/new"); err == nil {
		w.Close()
		t.Error("Create through a symlinked directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Error("Create wrote outside the storage directory")
	}
	_ = d.Delete(ctx, "evil/secret")
	_ = d.Delete(ctx, "cam1/link") // may remove the link itself, never its target
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("file outside the store changed: %q, %v", b, err)
	}
	for o, err := range d.List(ctx, "") {
		if err != nil || strings.HasPrefix(o.Key, "evil/") || o.Key == "cam1/link" {
			t.Errorf("List yielded %v, %v", o, err)
		}
	}
}

func TestErrorsNameDirAndKey(t *testing.T) {
	d := openTemp(t)
	_, err := d.Open(t.Context(), "cam1/seg42.mp4")
	if !errors.Is(err, blob.ErrNotExist) || !errors.Is(err, os.ErrNotExist) ||
		!strings.Contains(err.Error(), "cam1/seg42.mp4") || !strings.Contains(err.Error(), d.Path()) {
		t.Errorf("Open(missing) = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Create(ctx, "cam1/x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context = %v", err)
	}
}

func TestDeleteRemovesEmptyParents(t *testing.T) {
	d := openTemp(t)
	ctx := t.Context()
	for _, key := range []string{"cam1/2025/03/01/a", "cam1/2025/03/02/b"} {
		w, err := d.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if err := d.Delete(ctx, "cam1/2025/03/01/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "cam1/2025/03/01")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty parent left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "cam1/2025/03")); err != nil {
		t.Errorf("non-empty parent removed: %v", err)
	}
	if err := d.Delete(ctx, "cam1/2025/03/02/b"); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(d.Path())
	if err != nil || len(names) != 1 || names[0].Name() != IdentityFile {
		t.Errorf("after deleting everything the directory holds %v (%v)", names, err)
	}
}

func TestUsage(t *testing.T) {
	d := openTemp(t)
	total, free, err := d.Usage()
	if err != nil || total == 0 || free > total {
		t.Errorf("Usage() = %d, %d, %v", total, free, err)
	}
}
