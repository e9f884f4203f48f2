// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite: pure Go, so the binary stays static).
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. A
// commit is then durable against a process crash at once, but a power loss
// may drop the last commits that were not yet checkpointed or synced. That
// is safe here because of the write order (docs/storage.md): segment bytes
// are fsynced before the row that vouches for them is written, so a lost
// commit only makes the index lag behind the files, never point past them,
// and start-up recovery rescans every segment left in state writing. FULL
// would add an fsync per UpdateSegment (one per stream per fsync interval)
// for no gain in what can be recovered.
//
// Times are stored as INTEGER nanoseconds since the Unix epoch (UTC), so
// they round-trip exactly to the nanosecond; the representable range is
// the years 1678 to 2261.
//
// Concurrency: one *sql.DB with a few connections. Readers run in parallel
// (WAL); writers are serialized in process by a one-slot semaphore that
// honours the context, and each write transaction starts with BEGIN
// IMMEDIATE (busy_timeout covers other processes holding the write lock),
// so a write never fails on a read-to-write lock upgrade.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/custos-nvr/custos/internal/store"
)

// maxConns bounds the connection pool: one writer at a time plus readers.
// Each connection holds its own page cache, so more buys little on a
// small box.
const maxConns = 4

// busyTimeoutMS is how long a statement waits for another process's lock.
const busyTimeoutMS = 10000

// Store is a store.Store on an SQLite file. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	// wsem serializes write transactions within the process; a buffered
	// channel (not a mutex) so that waiting honours the context.
	wsem chan struct{}
	// Prepared hot statements (database/sql prepares them again on each
	// pooled connection as needed).
	segmentsStmt, updateStmt *sql.Stmt
	// tightened are the files whose mode Open restricted to 0600.
	tightened []string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed, with mode 0600) the index database at
// path, restricts an existing database and its -wal and -shm files to
// mode 0600 (Tightened lists them; SQLite gives the -wal and -shm files
// it creates the database's mode), configures
// each connection (WAL, synchronous=NORMAL, busy_timeout, foreign keys) and
// applies pending schema migrations. It refuses a database whose schema
// version is newer than this code knows. Open does I/O and blocks.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	tightened, err := privateFiles(abs)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", abs, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Deleted and replaced rows are zeroed in their pages (no extra I/O),
	// so a secret replaced by its sealed form leaves no copy behind.
	q.Add("_pragma", "secure_delete(FAST)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", abs, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{db: db, path: abs, wsem: make(chan struct{}, 1), tightened: tightened}
	if err := s.init(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", abs, err)
	}
	return s, nil
}

// init checks the journal mode and migrates the schema.
func (s *Store) init(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, want wal (does the filesystem support shared memory?)", mode)
	}
	if err := s.write(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx) }); err != nil {
		return err
	}
	var err error
	if s.segmentsStmt, err = s.db.PrepareContext(ctx, segmentsQuery); err != nil {
		return fmt.Errorf("prepare segments query: %w", err)
	}
	if s.updateStmt, err = s.db.PrepareContext(ctx, updateSegmentQuery); err != nil {
		return fmt.Errorf("prepare update segment: %w", err)
	}
	return nil
}

// privateFiles creates the database file at path with mode 0600 if it is
// missing, and restricts it and its -wal and -shm files to 0600 when group
// or others may access them (not on Windows). It returns the files it
// restricted.
func privateFiles(path string) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if runtime.GOOS == "windows" {
		return nil, nil
	}
	var out []string
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return nil, fmt.Errorf("restrict %s to mode 0600: %w", p, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Tightened returns the files Open restricted to mode 0600 (they were
// readable by group or others), for the caller to log.
func (s *Store) Tightened() []string { return s.tightened }

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// SchemaVersion returns the schema version of the open database
// (PRAGMA user_version).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Close closes the database; the Store must not be used afterwards.
//
// It deliberately does not run PRAGMA optimize (nor ANALYZE anywhere):
// with sqlite_stat4 present SQLite re-prepares a statement whenever a
// bound range value changes, which cost about a third of a Segments call
// in BenchmarkSegmentsQuery, and every query here has one obvious index
// (TestQueryPlanUsesIndex pins the one that matters).
func (s *Store) Close() error {
	var oerr error
	for _, st := range []*sql.Stmt{s.segmentsStmt, s.updateStmt} {
		if err := st.Close(); err != nil {
			oerr = errors.Join(oerr, fmt.Errorf("close index %s: %w", s.path, err))
		}
	}
	if err := s.db.Close(); err != nil {
		return errors.Join(oerr, fmt.Errorf("close index %s: %w", s.path, err))
	}
	return oerr
}

// write runs fn in a write transaction (BEGIN IMMEDIATE), serialized with
// every other write of this Store, and commits if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return withCtx(ctx, fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return withCtx(ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return withCtx(ctx, fmt.Errorf("commit: %w", err))
	}
	return nil
}

// withCtx makes err also match the context's error when the context ended,
// since the driver may report an interrupted statement in its own words.
func withCtx(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}
