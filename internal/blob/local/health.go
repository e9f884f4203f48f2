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
		err = fmt.Errorf("storage %q at %s: %w: %w", d.name, d.dir, blob.ErrUnavailable, err)
		d.down.Store(&err)
		return err
	}
	d.down.Store(nil)
	return nil
}

// probe looks at the directory. Called with d.mu held.
func (d *Dir) probe() error {
	cur := d.rootp.Load() // nil: from OpenLater, the disk never seen
	pst, err := os.Stat(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		if cur == nil {
			return errors.New("the directory does not exist (disk not mounted?)")
		}
		return errors.New("the directory is gone (removed, moved or its disk unmounted)")
	}
	if err != nil {
		return err
	}
	if cur != nil {
		rst, rerr := cur.Stat(".")
		if rerr == nil && os.SameFile(pst, rst) {
			_, err := d.sameIdentity(cur, "the identity file")
			return err
		}
	}
	// The path leads elsewhere: an unmounted disk's empty mount point, a
	// new directory, or this disk mounted (again).
	what := "the directory now at this path: its identity file"
	if cur == nil {
		what = "the identity file"
	}
	nr, err := os.OpenRoot(d.dir)
	if err != nil {
		return fmt.Errorf("the directory cannot be opened: %w", err)
	}
	id, err := d.sameIdentity(nr, what)
	if err != nil {
		nr.Close()
		return err
	}
	d.id = id
	if old := d.rootp.Swap(nr); old != nil {
		// Open files do not need it. An operation that loaded the old
		// handle just before fails once; callers retry (the recorder
		// reconnects, retention runs again).
		old.Close()
	}
	return nil
}

// sameIdentity checks that root carries this disk's identity file: the
// same id, or for a disk never seen (OpenLater) the same name.
func (d *Dir) sameIdentity(root *os.Root, what string) (Identity, error) {
	var id Identity
	b, err := readFile(root, IdentityFile)
	if errors.Is(err, fs.ErrNotExist) {
		return id, fmt.Errorf("%s %s is missing (disk unmounted, or its files removed?)", what, IdentityFile)
	}
	if err != nil {
		return id, fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(b, &id); err != nil || id.ID == "" {
		return id, fmt.Errorf("%s %s is corrupt: %v", what, IdentityFile, err)
	}
	switch {
	case d.id.ID != "" && id.ID != d.id.ID:
		return id, fmt.Errorf("%s names disk %q (id %s), not this disk (id %s): %w", what, id.Name, id.ID, d.id.ID, ErrWrongDisk)
	case id.Name != d.name:
		return id, fmt.Errorf("%s names disk %q (id %s), not %q: %w", what, id.Name, id.ID, d.name, ErrWrongDisk)
	}
	return id, nil
}

// writable returns the reason writing must not happen now, or nil. It
// does not look at the disk (see Check).
func (d *Dir) writable() error { return d.downErr() }
