package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] takes the schema from version i to version i+1. The
// version lives in PRAGMA user_version, which SQLite stores in the file
// header and changes transactionally with the migration. Append only:
// never edit a migration that has shipped.
var migrations = []string{
	// Version 1.
	//
	// Times are INTEGER nanoseconds since the Unix epoch, UTC.
	// segments.end_ns is Segment.End() (derived, kept for the overlap
	// query). streams.max_seg_ns is the longest wall extent of any
	// segment of the stream ever written; it only grows, and bounds the
	// overlap query below so that it stays a range scan on
	// segments_stream_start: end > from implies start > from - max.
	`
CREATE TABLE streams (
	id         INTEGER PRIMARY KEY,
	camera     TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	max_seg_ns INTEGER NOT NULL DEFAULT 0,
	UNIQUE (camera, name)
) STRICT;

CREATE TABLE runs (
	id         INTEGER PRIMARY KEY,
	stream_id  INTEGER NOT NULL REFERENCES streams (id),
	start_ns   INTEGER NOT NULL,
	end_ns     INTEGER,                   -- NULL while open
	end_reason TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX runs_stream_start ON runs (stream_id, start_ns);

CREATE TABLE segments (
	id           INTEGER PRIMARY KEY,
	stream_id    INTEGER NOT NULL REFERENCES streams (id),
	run_id       INTEGER NOT NULL REFERENCES runs (id),
	disk         TEXT    NOT NULL,
	key          TEXT    NOT NULL,
	start_ns     INTEGER NOT NULL,
	end_ns       INTEGER NOT NULL,
	dur90k       INTEGER NOT NULL,
	wall_dur_ns  INTEGER NOT NULL,
	start_pts90k INTEGER NOT NULL,
	bytes        INTEGER NOT NULL,
	frames       INTEGER NOT NULL,
	key_frames   INTEGER NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('writing', 'closed')),
	codec        TEXT    NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	UNIQUE (disk, key)
) STRICT;
CREATE INDEX segments_stream_start ON segments (stream_id, start_ns);
-- Runs' End: max(end_ns) of a run's closed segments is one index probe.
CREATE INDEX segments_run_closed_end ON segments (run_id, end_ns) WHERE state = 'closed';
CREATE INDEX segments_writing ON segments (id) WHERE state = 'writing';

CREATE TABLE garbage (
	disk      TEXT    NOT NULL,
	key       TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	marked_ns INTEGER NOT NULL,
	PRIMARY KEY (disk, key)
) STRICT, WITHOUT ROWID;

-- No foreign key to segments: the row outlives its segment.
CREATE TABLE deletions (
	id         INTEGER PRIMARY KEY,
	segment_id INTEGER NOT NULL,
	stream_id  INTEGER NOT NULL REFERENCES streams (id),
	disk       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	start_ns   INTEGER NOT NULL,
	end_ns     INTEGER NOT NULL,
	bytes      INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	at_ns      INTEGER NOT NULL
) STRICT;
CREATE INDEX deletions_stream_at ON deletions (stream_id, at_ns);
`,
}

// SchemaVersion is the schema version this code writes and understands;
// it equals len(migrations) (checked by a test).
const SchemaVersion = 1

// ErrSchemaTooNew is returned (wrapped) by Open for a database written by
// a newer Custos.
var ErrSchemaTooNew = errors.New("index schema is newer than this program")

// migrate brings the schema up to SchemaVersion inside tx, or refuses a
// database from the future.
func migrate(ctx context.Context, tx *sql.Tx) error {
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: database has schema version %d, this program knows up to %d; upgrade custos",
			ErrSchemaTooNew, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
		// PRAGMA takes no bound parameters; v is an int.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	return nil
}
