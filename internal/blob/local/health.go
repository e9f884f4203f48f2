package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
)

// CheckEvery is how long a Check result is reused: a storage directory is
// looked at no more than once per interval however many streams ask.
const CheckEvery = time.Second

// health is the part of Dir that watches whether the disk is still there.
type health struct {
	mu        sync.Mutex
	checkedAt time.Time
	// down is the reason the disk is unavailable (nil: available).
	down atomic.Pointer[error]
}

// downErr returns the current reason the disk is unavailable, or nil.
func (h *health) downErr() error {
	if p := h.down.Load(); p != nil {
		return *p
	}
	return nil
}

// Check reports whether the disk is still behind the directory: the path
// must still lead to the directory that was opened, and its identity file
// must still be there and name this disk. When the path leads to another
// directory carrying this disk's identity (the disk was unmounted and
// mounted again), that directory is adopted and Check succeeds.
//
// While Check fails, with an error wrapping blob.ErrUnavailable and naming
// what is wrong, Create, OpenAppend, Delete, Usage and the Write and Sync
// of open writers fail at once with that error: nothing is written into an
// empty mount point or into a directory that was removed or moved away,
// and retention deletes nothing. Reads go on (a reader holds its file).
//
// The result is kept for CheckEvery, so Check is cheap to call often (it
// costs two stats and a small read otherwise). Writers call it before each
// Sync. Safe for concurrent use; it does I/O.
func (d *Dir) Check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if !d.checkedAt.IsZero() && now.Sub(d.checkedAt) < CheckEvery && now.Sub(d.checkedAt) >= 0 {
		return d.downErr()
	}
	d.checkedAt = now
	err := d.probe()
	if err != nil {
		err = fmt.Errorf("storage %q at %s: %w: %w", d.id.Name, d.dir, blob.ErrUnavailable, err)
		d.down.Store(&err)
		return err
	}
	d.down.Store(nil)
	return nil
}

// probe looks at the directory. Called with d.mu held.
func (d *Dir) probe() error {
	pst, err := os.Stat(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("the directory is gone (removed, moved or its disk unmounted)")
	}
	if err != nil {
		return err
	}
	rst, rerr := d.root().Stat(".")
	if rerr == nil && os.SameFile(pst, rst) {
		return d.sameIdentity(d.root(), "the identity file")
	}
	// The path leads elsewhere: an unmounted disk's empty mount point, a
	// new directory, or this disk mounted again.
	nr, err := os.OpenRoot(d.dir)
	if err != nil {
		return fmt.Errorf("the path now leads to another directory, which cannot be opened: %w", err)
	}
	if err := d.sameIdentity(nr, "the directory now at this path: its identity file"); err != nil {
		nr.Close()
		return err
	}
	old := d.rootp.Swap(nr)
	old.Close() // open files do not need it
	return nil
}

// sameIdentity checks that root carries this disk's identity file.
func (d *Dir) sameIdentity(root *os.Root, what string) error {
	b, err := readFile(root, IdentityFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s is missing (disk unmounted, or its files removed?)", what, IdentityFile)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("%s %s is corrupt: %v", what, IdentityFile, err)
	}
	if id.ID != d.id.ID {
		return fmt.Errorf("%s names disk %q (id %s), not this disk (id %s): %w", what, id.Name, id.ID, d.id.ID, ErrWrongDisk)
	}
	return nil
}

// writable returns the reason writing must not happen now, or nil. It
// does not look at the disk (see Check).
func (d *Dir) writable() error { return d.downErr() }
