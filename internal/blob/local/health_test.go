package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
)

// fakeClock is a settable clock for Check's result cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) step()          { c.mu.Lock(); c.t = c.t.Add(CheckEvery); c.mu.Unlock() }

// wantUnavailable fails unless err wraps blob.ErrUnavailable and mentions
// every one of words.
func wantUnavailable(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("%s: err = %v, want blob.ErrUnavailable", what, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not mention %q", what, err, w)
		}
	}
}

// TestDirVanishes moves a storage directory away under an open Dir, puts
// an empty directory and another disk in its place, and brings it back.
// Nothing may be written while it is away, and it must be usable again
// when it returns.
func TestDirVanishes(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	d, err := Open(dir, "disk1", Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(ctx, "cam/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}

	away := filepath.Join(base, "away")
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	// Within CheckEvery the cached answer stands.
	if err := d.Check(); err != nil {
		t.Fatalf("cached Check = %v", err)
	}
	clk.step()
	wantUnavailable(t, "Check after the move", d.Check(), "disk1", dir, "gone")
	_, err = w.Write([]byte("lost"))
	wantUnavailable(t, "Write", err, "cam/a.mp4")
	wantUnavailable(t, "Sync", w.Sync())
	_, err = d.Create(ctx, "cam/b.mp4")
	wantUnavailable(t, "Create", err, "cam/b.mp4")
	_, err = d.OpenAppend(ctx, "cam/a.mp4")
	wantUnavailable(t, "OpenAppend", err)
	wantUnavailable(t, "Delete", d.Delete(ctx, "cam/a.mp4"))
	_, _, err = d.Usage()
	wantUnavailable(t, "Usage", err)
	// Reads go on.
	r, err := d.Open(ctx, "cam/a.mp4")
	if err != nil {
		t.Fatalf("read while away: %v", err)
	}
	r.Close()

	// An empty directory in its place (an unmounted disk's mount point)
	// is not the disk and gets nothing written into it.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clk.step()
	wantUnavailable(t, "Check with an empty directory", d.Check(), IdentityFile, "missing")
	if _, err := d.Create(ctx, "cam/c.mp4"); err == nil {
		t.Fatal("Create wrote into the empty directory")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the empty directory got %d entries", len(ents))
	}

	// Another disk in its place is not this disk either.
	other, err := Open(dir, "disk2", Options{})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	clk.step()
	err = d.Check()
	wantUnavailable(t, "Check with another disk", err, "disk2")
	if !errors.Is(err, ErrWrongDisk) {
		t.Errorf("Check with another disk = %v, want ErrWrongDisk too", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	// The disk returns: usable again, and the open writer goes on.
	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	clk.step()
	if err := d.Check(); err != nil {
		t.Fatalf("Check after the return: %v", err)
	}
	if _, err := w.Write([]byte(" after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w2, err := d.Create(ctx, "cam/d.mp4")
	if err != nil {
		t.Fatalf("Create after the return: %v", err)
	}
	w2.Close()
	b, err := os.ReadFile(filepath.Join(dir, "cam", "a.mp4"))
	if err != nil || string(b) != "before after" {
		t.Fatalf("a.mp4 = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cam", "d.mp4")); err != nil {
		t.Fatal(err)
	}
}

// TestDirIdentityRemoved: the directory stays but its files are removed
// (rm -rf of the contents).
func TestDirIdentityRemoved(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	d, err := Open(dir, "disk1", Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Remove(filepath.Join(dir, IdentityFile)); err != nil {
		t.Fatal(err)
	}
	clk.step()
	wantUnavailable(t, "Check", d.Check(), "removed")
}

// TestOpenLater: a disk that is not there at start (missing directory,
// then an empty mount point, then another disk) is waited for, never
// initialised, and adopted when a directory with its identity appears.
func TestOpenLater(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nas")
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	_, why := Open(dir, "nas", Options{Existing: true})
	if !errors.Is(why, ErrNoIdentity) {
		t.Fatalf("Open of a missing directory = %v", why)
	}
	d := OpenLater(dir, "nas", why, Options{Now: clk.now})
	defer d.Close()
	wantUnavailable(t, "before any Check", d.Check(), "nas", "does not exist")
	if _, err := d.Create(ctx, "cam/a.mp4"); !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Create = %v", err)
	}
	if _, err := d.Open(ctx, "cam/a.mp4"); err == nil {
		t.Fatal("Open of an object on a disk not there succeeded")
	}
	if d.ID() != "" {
		t.Errorf("ID before the disk appeared = %q", d.ID())
	}

	// The empty mount point: Existing refuses it, and the waiting Dir
	// writes nothing into it.
	must(t, os.Mkdir(dir, 0o755))
	if _, err := Open(dir, "nas", Options{Existing: true}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("Open(Existing) of an empty directory = %v", err)
	}
	clk.step()
	wantUnavailable(t, "empty directory", d.Check(), IdentityFile)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the empty mount point got %d entries", len(ents))
	}

	// Another disk mounted there is not adopted.
	other := filepath.Join(t.TempDir(), "other")
	must(t, os.Mkdir(other, 0o755))
	o, err := Open(other, "usb", Options{})
	must(t, err)
	o.Close()
	must(t, os.Remove(dir))
	must(t, os.Rename(other, dir))
	clk.step()
	if err := d.Check(); !errors.Is(err, ErrWrongDisk) {
		t.Fatalf("Check with another disk there = %v", err)
	}

	// The disk appears: adopted, with its id.
	must(t, os.RemoveAll(dir))
	nas := filepath.Join(t.TempDir(), "nas-disk")
	must(t, os.Mkdir(nas, 0o755))
	n, err := Open(nas, "nas", Options{})
	must(t, err)
	id := n.ID()
	n.Close()
	must(t, os.Rename(nas, dir))
	clk.step()
	if err := d.Check(); err != nil {
		t.Fatalf("Check after the disk appeared: %v", err)
	}
	if d.ID() != id {
		t.Errorf("ID = %q, want %q", d.ID(), id)
	}
	w, err := d.Create(ctx, "cam/a.mp4")
	must(t, err)
	w.Close()
	if _, err := os.Stat(filepath.Join(dir, "cam", "a.mp4")); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
