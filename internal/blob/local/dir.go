package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
)

// Options configure Open.
type Options struct {
	// Init writes a new identity into a directory that has none even if
	// it is not empty (adopting an existing directory). It never replaces
	// an existing identity.
	Init bool
	// Existing refuses to initialise: the directory must already carry
	// this disk's identity. Set it for a disk that is known to hold
	// recordings, so that the empty mount point of an unmounted disk is
	// refused (ErrNoIdentity) rather than taken for a new disk.
	Existing bool
	// Now supplies the creation time for a new identity and the clock of
	// Check; nil means time.Now.
	Now func() time.Time
}

// Dir is a blob.Store backed by a directory on one disk. Objects are
// regular files at the key's path below the directory. All access goes
// through an os.Root, so neither keys nor symlinks planted inside the
// directory can reach anything outside it. Methods are safe for
// concurrent use and do blocking I/O; ctx is checked before the work
// starts (and between entries in List), not during a system call.
type Dir struct {
	dir   string
	name  string
	rootp atomic.Pointer[os.Root] // swapped when a returning disk is adopted
	id    Identity                // guarded by health.mu
	init  bool
	now   func() time.Time
	health
}

var _ blob.Store = (*Dir)(nil)

// Open opens the storage directory dir for the disk called name.
//
// An empty directory (or any directory without an identity, when
// opts.Init is set) is initialised: custos-disk.json with the name, a
// random 128-bit id and the creation time is written and fsynced together
// with the directory. Otherwise the identity file must exist and name
// this disk. A missing directory, or a non-empty one without identity,
// fails with an error wrapping ErrNoIdentity; another disk's identity
// fails with ErrWrongDisk. Note that an empty mount point of an
// unmounted disk looks like a new disk: callers that know the disk held
// data before should compare ID with what they recorded (see
// Initialized).
func Open(dir, name string, opts Options) (*Dir, error) {
	if name == "" {
		return nil, fmt.Errorf("storage %s: empty disk name", dir)
	}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage %s for disk %q: directory does not exist: %w", dir, name, ErrNoIdentity)
	}
	if err != nil {
		return nil, fmt.Errorf("storage %s for disk %q: %w", dir, name, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("storage %s for disk %q: not a directory", dir, name)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("storage %s for disk %q: %w", dir, name, err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	id, init, err := loadIdentity(root, dir, name, opts.Init, opts.Existing, now)
	if err != nil {
		root.Close()
		return nil, err
	}
	d := &Dir{dir: dir, name: name, id: id, init: init, now: now}
	d.rootp.Store(root)
	return d, nil
}

// OpenLater returns a Dir for the disk called name that is not at dir yet
// (Open failed with why: the directory is missing, or is the empty mount
// point of a disk that held recordings). The Dir is unavailable (see
// Check) until a directory carrying an identity for name appears at dir,
// for instance when the disk is mounted after the server started; Check
// then adopts it and the Dir works as if Open had succeeded. It never
// initialises a directory. It does no I/O.
func OpenLater(dir, name string, why error, opts Options) *Dir {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	d := &Dir{dir: dir, name: name, now: now}
	err := fmt.Errorf("storage %q at %s: %w: waiting for the disk: %w", name, dir, blob.ErrUnavailable, why)
	d.down.Store(&err)
	return d
}

// Name returns the disk name from the identity.
func (d *Dir) Name() string { return d.name }

// ID returns the disk's random id (32 hex digits); empty for a Dir from
// OpenLater whose disk has not appeared yet.
func (d *Dir) ID() string { return d.Identity().ID }

// Identity returns the whole identity record.
func (d *Dir) Identity() Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.id
}

// Initialized reports whether this Open wrote a fresh identity.
func (d *Dir) Initialized() bool { return d.init }

// Path returns the directory the store was opened on.
func (d *Dir) Path() string { return d.dir }

// Close releases the directory handle. Open readers and writers stay
// usable; further Store calls fail.
func (d *Dir) Close() error {
	if r := d.rootp.Load(); r != nil {
		return r.Close()
	}
	return nil
}

// root is the directory handle all access goes through. It is nil only
// for a Dir from OpenLater whose disk has not appeared: writing calls
// Check first, which fails then, and the read methods check for it
// (noRoot).
func (d *Dir) root() *os.Root { return d.rootp.Load() }

// noRoot returns the reason a Dir from OpenLater cannot be read yet, or
// nil when it has a directory handle.
func (d *Dir) noRoot(op, key string) error {
	if d.rootp.Load() != nil {
		return nil
	}
	if down := d.downErr(); down != nil {
		return fmt.Errorf("%s %s: %w", op, key, down)
	}
	return fmt.Errorf("%s %s in %s: %w: no directory yet", op, key, d.dir, blob.ErrUnavailable)
}

// checkKey validates key and keeps the identity files out of reach.
func checkKey(key string) error {
	if err := blob.CheckKey(key); err != nil {
		return err
	}
	if key == IdentityFile || key == identityTmp {
		return fmt.Errorf("%w: %q is reserved", blob.ErrBadKey, key)
	}
	return nil
}

// missing reports whether err means "no object here": not found, or a
// path element is a file.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// wrap adds op, key and directory to err, dropping the redundant
// *fs.PathError layer and adding blob.ErrNotExist / blob.ErrExist.
func (d *Dir) wrap(op, key string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case missing(err):
		return fmt.Errorf("%s %s in %s: %w (%w)", op, key, d.dir, blob.ErrNotExist, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s %s in %s: %w (%w)", op, key, d.dir, blob.ErrExist, err)
	}
	return fmt.Errorf("%s %s in %s: %w", op, key, d.dir, err)
}

// Create creates the object key (and its parent directories) and returns
// a writer positioned at 0. New directory entries are fsynced so they
// survive power loss; the object's bytes are durable only after
// Writer.Sync. It fails with blob.ErrExist if the key exists.
func (d *Dir) Create(ctx context.Context, key string) (blob.Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, d.wrap("create", key, err)
	}
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	parent := path.Dir(key)
	var f *os.File
	// A concurrent Delete may remove an empty parent directory between
	// mkdir and create; retry a few times.
	for attempt := 0; ; attempt++ {
		if err := d.mkdirAll(parent); err != nil {
			return nil, d.wrap("create", key, err)
		}
		var err error
		f, err = d.root().OpenFile(key, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 4 {
			return nil, d.wrap("create", key, err)
		}
	}
	if err := syncDir(d.root(), parent); err != nil {
		f.Close()
		return nil, d.wrap("create", key, fmt.Errorf("sync directory: %w", err))
	}
	return &writer{d: d, key: key, f: f}, nil
}

// mkdirAll creates dir and its missing parents inside the root, fsyncing
// the parent of every directory it creates.
func (d *Dir) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	if st, err := d.root().Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: %w", dir, syscall.ENOTDIR)
		}
		return nil
	}
	if err := d.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	err := d.root().Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(d.root(), path.Dir(dir))
}

// OpenAppend opens an existing object for writing, positioned at its end.
// It fails with blob.ErrNotExist if there is none.
func (d *Dir) OpenAppend(ctx context.Context, key string) (blob.Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, d.wrap("open for append", key, err)
	}
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("open %s for append: %w", key, err)
	}
	f, err := d.root().OpenFile(key, os.O_WRONLY, 0)
	if err != nil {
		return nil, d.wrap("open for append", key, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, d.wrap("open for append", key, err)
	}
	return &writer{d: d, key: key, f: f, size: size}, nil
}

// Open opens the object for reading. Size is the file's length when
// opened; ReadAt reads the file as it is at the time of the call, so
// bytes appended later are readable too.
func (d *Dir) Open(ctx context.Context, key string) (blob.Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, d.wrap("open", key, err)
	}
	if err := d.noRoot("open", key); err != nil {
		return nil, err
	}
	f, err := d.root().Open(key)
	if err != nil {
		return nil, d.wrap("open", key, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file: %w", fs.ErrNotExist)
	}
	if err != nil {
		f.Close()
		return nil, d.wrap("open", key, err)
	}
	return &reader{f: f, size: st.Size()}, nil
}

// Stat returns the object's current size, or an error wrapping
// blob.ErrNotExist.
func (d *Dir) Stat(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, d.wrap("stat", key, err)
	}
	if err := d.noRoot("stat", key); err != nil {
		return 0, err
	}
	st, err := d.root().Stat(key)
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file: %w", fs.ErrNotExist)
	}
	if err != nil {
		return 0, d.wrap("stat", key, err)
	}
	return st.Size(), nil
}

// Delete removes the object, then every parent directory that became
// empty (up to, not including, the storage directory), and fsyncs the
// directory that lost the entry. A missing object is not an error. A
// directory at key is not an object and is left alone.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return d.wrap("delete", key, err)
	}
	if err := d.Check(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	st, err := d.root().Lstat(key)
	if missing(err) || (err == nil && st.IsDir()) {
		return nil
	}
	if err != nil {
		return d.wrap("delete", key, err)
	}
	if err := d.root().Remove(key); err != nil {
		if missing(err) {
			return nil
		}
		return d.wrap("delete", key, err)
	}
	dir := path.Dir(key)
	for dir != "." {
		if err := d.root().Remove(dir); err != nil {
			// Not empty (ENOTEMPTY/EEXIST), or gone already: stop.
			break
		}
		dir = path.Dir(dir)
	}
	if err := syncDir(d.root(), dir); err != nil && !missing(err) {
		return d.wrap("delete", key, fmt.Errorf("sync directory: %w", err))
	}
	return nil
}

// List yields the regular files whose keys start with prefix (see
// blob.CheckPrefix), never the identity file. An invalid prefix yields
// one error wrapping blob.ErrBadKey. Objects created or deleted during
// the walk may or may not be listed.
func (d *Dir) List(ctx context.Context, prefix string) iter.Seq2[blob.Object, error] {
	return func(yield func(blob.Object, error) bool) {
		if err := blob.CheckPrefix(prefix); err != nil {
			yield(blob.Object{}, err)
			return
		}
		if err := d.noRoot("list", prefix); err != nil {
			yield(blob.Object{}, err)
			return
		}
		start := "."
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			start = prefix[:i]
		}
		stopped := false
		err := fs.WalkDir(d.root().FS(), start, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if p == start && missing(err) {
					return fs.SkipAll
				}
				if missing(err) { // removed during the walk
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.IsDir() {
				if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
					return fs.SkipDir
				}
				return nil
			}
			if !e.Type().IsRegular() || !strings.HasPrefix(p, prefix) || p == IdentityFile || p == identityTmp {
				return nil
			}
			info, err := e.Info()
			if missing(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if !yield(blob.Object{Key: p, Size: info.Size()}, nil) {
				stopped = true
				return fs.SkipAll
			}
			return nil
		})
		if err != nil && !stopped {
			yield(blob.Object{}, fmt.Errorf("list %q in %s: %w", prefix, d.dir, err))
		}
	}
}

// writer appends to one file. Not safe for concurrent use.
type writer struct {
	d    *Dir
	key  string
	f    *os.File
	size int64
}

// Write writes p at the current position; it fails at once while the disk
// is unavailable (Dir.Check). On a short write (disk full:
// the error wraps syscall.ENOSPC) Size counts the bytes that did land;
// Truncate can cut them off.
func (w *writer) Write(p []byte) (int, error) {
	if err := w.d.writable(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.key, err)
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		return n, w.d.wrap("write", w.key, err)
	}
	return n, nil
}

func (w *writer) Size() int64 { return w.size }

// Sync fsyncs the file, after checking that the disk is still there (see
// Dir.Check): bytes are never vouched for on a disk that went away.
func (w *writer) Sync() error {
	if err := w.d.Check(); err != nil {
		return fmt.Errorf("sync %s: %w", w.key, err)
	}
	if err := w.f.Sync(); err != nil {
		return w.d.wrap("sync", w.key, err)
	}
	return nil
}

// Truncate cuts the file to size and seeks there.
func (w *writer) Truncate(size int64) error {
	if size < 0 || size > w.size {
		return fmt.Errorf("truncate %s in %s to %d: outside [0, %d]", w.key, w.d.dir, size, w.size)
	}
	if err := w.f.Truncate(size); err != nil {
		return w.d.wrap("truncate", w.key, err)
	}
	if _, err := w.f.Seek(size, io.SeekStart); err != nil {
		return w.d.wrap("truncate", w.key, err)
	}
	w.size = size
	return nil
}

// Close closes the file without syncing it.
func (w *writer) Close() error {
	if err := w.f.Close(); err != nil {
		return w.d.wrap("close", w.key, err)
	}
	return nil
}

// reader reads one file; ReadAt is safe for concurrent use.
type reader struct {
	f    *os.File
	size int64
}

// ReadAt follows io.ReaderAt: fewer than len(p) bytes only with an error,
// io.EOF at the end of the file.
func (r *reader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }

func (r *reader) Size() int64 { return r.size }

func (r *reader) Close() error { return r.f.Close() }

// File returns the open file (blob.FileReader), for zero-copy sends. The
// caller may seek it; closing it is Close's job.
func (r *reader) File() *os.File { return r.f }
