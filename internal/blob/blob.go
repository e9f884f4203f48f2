// Package blob defines where segment bytes live. A Store is one storage
// location (a directory on one disk today; an S3 bucket later) holding
// objects named by slash-separated keys. Implementations live in
// subpackages (local/) and must pass the shared suite in blobtest/.
package blob

import (
	"context"
	"errors"
	"io"
	"iter"
	"os"
)

// ErrNotExist is returned (wrapped) for a key with no object.
var ErrNotExist = errors.New("blob: object does not exist")

// ErrBadKey is returned for keys that are empty, absolute, contain "..",
// backslashes, NUL or empty elements: a key can never address anything
// outside the store.
var ErrBadKey = errors.New("blob: invalid key")

// ErrUnavailable is returned (wrapped, with the reason) by stores whose
// storage is not there right now: a directory removed or moved away, a
// disk unmounted under a running server. See Checker.
var ErrUnavailable = errors.New("storage unavailable")

// Checker is implemented by stores that can tell whether their storage is
// still there (local.Dir). Check returns nil, or an error wrapping
// ErrUnavailable; it is cheap enough to call on every write path.
type Checker interface {
	Check() error
}

// Check returns s's Check result when s is a Checker, and nil otherwise.
func Check(s Store) error {
	if c, ok := s.(Checker); ok {
		return c.Check()
	}
	return nil
}

// Store holds segment files. All methods are safe for concurrent use and
// do I/O; ctx bounds the work where the implementation can honour it.
type Store interface {
	// Name identifies the store in the index (the "disk" a row names).
	Name() string
	// Create makes a new object for appending and fails if key exists.
	Create(ctx context.Context, key string) (Writer, error)
	// OpenAppend reopens an existing object to recover its tail: the
	// writer is positioned at the end; Truncate cuts torn bytes.
	OpenAppend(ctx context.Context, key string) (Writer, error)
	// Open returns a reader for ranged reads of a complete or growing
	// object. The size is the object's length when opened.
	Open(ctx context.Context, key string) (Reader, error)
	// Stat returns the object's current size.
	Stat(ctx context.Context, key string) (int64, error)
	// Delete removes the object; deleting a missing object is not an
	// error (deletion must be idempotent for crash recovery).
	Delete(ctx context.Context, key string) error
	// List yields every object whose key starts with prefix, in no
	// particular order, then a final error if listing failed.
	List(ctx context.Context, prefix string) iter.Seq2[Object, error]
}

// Object is a listed object.
type Object struct {
	Key  string
	Size int64
}

// Writer appends to one object. Not safe for concurrent use.
type Writer interface {
	io.Writer
	// Size is the object's length including everything written so far.
	Size() int64
	// Sync makes written bytes durable (fsync) before it returns.
	Sync() error
	// Truncate cuts the object to size bytes (size ≤ Size()) and
	// positions further writes there.
	Truncate(size int64) error
	// Close releases the writer; it does not Sync.
	Close() error
}

// BuffersWriter is implemented by Writers that can append several buffers
// with one system call (writev). It behaves as one Write of the buffers
// concatenated: on error, the bytes that landed are counted in Size.
type BuffersWriter interface {
	WriteBuffers(bufs [][]byte) (int64, error)
}

// WriteBuffers appends bufs to w in order: in one call when w is a
// BuffersWriter, else one Write each. It returns the bytes written.
func WriteBuffers(w Writer, bufs [][]byte) (int64, error) {
	if bw, ok := w.(BuffersWriter); ok {
		return bw.WriteBuffers(bufs)
	}
	var total int64
	for _, b := range bufs {
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// FileReader is a Reader backed by an operating-system file, which
// servers can hand to sendfile. Optional: callers check with a type
// assertion.
type FileReader interface {
	Reader
	File() *os.File
}

// Reader reads one object at arbitrary offsets.
type Reader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}
