package local

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
)

// TestDiskFull fills a 1 MiB tmpfs. It needs root (mount); it skips
// otherwise.
func TestDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs at %s (needs root): %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	d, err := Open(mnt, "small", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	w, err := d.Create(ctx, "cam1/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := make([]byte, 48<<10)
	for i := range chunk {
		chunk[i] = byte(i % 251)
	}
	var werr error
	for range 100 {
		if _, werr = w.Write(chunk); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v; want ENOSPC", werr)
	}
	t.Logf("disk full after %d bytes: %v", w.Size(), werr)
	if size, err := d.Stat(ctx, "cam1/seg"); err != nil || size != w.Size() {
		t.Fatalf("Stat = %d, %v; writer Size = %d", size, err, w.Size())
	}
	if _, free, err := d.Usage(); err != nil || free > uint64(len(chunk)) {
		t.Errorf("Usage on a full disk: free=%d, %v", free, err)
	}

	// Cut back to the last complete chunk boundary below half and carry on.
	keep := (w.Size() / 2) / int64(len(chunk)) * int64(len(chunk))
	if err := w.Truncate(keep); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(chunk); err != nil {
		t.Fatalf("Write after Truncate freed space: %v", err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open(ctx, "cam1/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != keep+int64(len(chunk)) {
		t.Fatalf("size after recovery = %d; want %d", r.Size(), keep+int64(len(chunk)))
	}
	got := make([]byte, len(chunk))
	for off := int64(0); off < r.Size(); off += int64(len(chunk)) {
		if n, err := r.ReadAt(got, off); n != len(got) || (err != nil && err != io.EOF) || !bytes.Equal(got, chunk) {
			t.Fatalf("ReadAt(%d): n=%d err=%v", off, n, err)
		}
	}
}

// TestDiskUnmounted unmounts a disk (a bind mount, lazily, as `umount -l`
// does under a running server) and mounts it again. While it is away the
// empty mount point must get nothing; afterwards the same Dir writes to
// the disk again. It needs root (mount); it skips otherwise.
func TestDiskUnmounted(t *testing.T) {
	base := t.TempDir()
	src, mnt := filepath.Join(base, "disk"), filepath.Join(base, "mnt")
	for _, p := range []string{src, mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func() error { return syscall.Mount(src, mnt, "", syscall.MS_BIND, "") }
	if err := mount(); err != nil {
		t.Skipf("cannot bind-mount %s (needs root): %v", mnt, err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	d, err := Open(mnt, "usb", Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	w, err := d.Create(ctx, "cam/seg.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	mounted = false
	clk.step()
	wantUnavailable(t, "Check while unmounted", d.Check(), IdentityFile)
	if _, err := w.Write([]byte("x")); !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Write while unmounted = %v", err)
	}
	if _, err := d.Create(ctx, "cam/new.mp4"); !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Create while unmounted = %v", err)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Fatalf("the empty mount point got %d entries", len(ents))
	}

	if err := mount(); err != nil {
		t.Fatal(err)
	}
	mounted = true
	clk.step()
	if err := d.Check(); err != nil {
		t.Fatalf("Check after mounting again: %v", err)
	}
	w2, err := d.Create(ctx, "cam/new.mp4")
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if _, err := os.Stat(filepath.Join(src, "cam", "new.mp4")); err != nil {
		t.Fatalf("not on the disk: %v", err)
	}
}
