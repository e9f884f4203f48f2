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
	// Version 2: accounts (internal/auth) and the audit log
	// (internal/audit).
	//
	// Secrets are never stored: passwords as argon2id PHC strings,
	// session IDs and API tokens as SHA-256 digests (they are 256-bit
	// random values, so a fast hash is enough).
	`
CREATE TABLE users (
	id                  INTEGER PRIMARY KEY,
	name                TEXT    NOT NULL UNIQUE,
	role                TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
	password_hash       TEXT    NOT NULL,
	created_ns          INTEGER NOT NULL,
	password_changed_ns INTEGER NOT NULL
) STRICT;

-- camera '*' grants every camera, present and future. perms is a
-- comma-separated subset of live, recordings, export.
CREATE TABLE grants (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	camera  TEXT    NOT NULL,
	perms   TEXT    NOT NULL,
	PRIMARY KEY (user_id, camera)
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
	id_hash      BLOB    PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf         TEXT    NOT NULL,
	created_ns   INTEGER NOT NULL,
	last_seen_ns INTEGER NOT NULL,
	expires_ns   INTEGER NOT NULL,
	addr         TEXT    NOT NULL,
	user_agent   TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	hash         BLOB    NOT NULL UNIQUE,
	created_ns   INTEGER NOT NULL,
	last_used_ns INTEGER NOT NULL DEFAULT 0,
	expires_ns   INTEGER NOT NULL DEFAULT 0  -- 0: never
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);

-- The audit log: a hash chain (docs/security.md). seq starts at 1 and
-- has no holes; hash = SHA-256 over prev_hash and the entry's fields.
-- The triggers make ordinary writes fail; someone who drops them can
-- still edit rows, which custos audit verify then detects.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	at_ns     INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	addr      TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	camera    TEXT    NOT NULL,
	detail    TEXT    NOT NULL,
	result    TEXT    NOT NULL,
	prev_hash BLOB    NOT NULL,
	hash      BLOB    NOT NULL
) STRICT;
CREATE INDEX audit_at ON audit (at_ns);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`,
	// Version 3: cameras added from the UI or API (internal/cameras);
	// cameras in the configuration file are not stored. Zero retention
	// limits mean "the configuration's default".
	`
CREATE TABLE cameras (
	name       TEXT    PRIMARY KEY,
	url        TEXT    NOT NULL,
	sub_url    TEXT    NOT NULL,
	username   TEXT    NOT NULL,
	password   TEXT    NOT NULL,
	transport  TEXT    NOT NULL,
	storage    TEXT    NOT NULL,
	max_age_ns INTEGER NOT NULL,
	max_bytes  INTEGER NOT NULL,
	created_ns INTEGER NOT NULL,
	updated_ns INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`,
	// Version 4: evidence locks (internal/retention never deletes a
	// segment overlapping an active lock of its camera). Released locks
	// stay, with who released them and why.
	`
CREATE TABLE locks (
	id             INTEGER PRIMARY KEY,
	camera         TEXT    NOT NULL,
	from_ns        INTEGER NOT NULL,
	to_ns          INTEGER NOT NULL,
	reason         TEXT    NOT NULL,
	created_by     TEXT    NOT NULL,
	created_ns     INTEGER NOT NULL,
	released_by    TEXT    NOT NULL DEFAULT '',
	released_ns    INTEGER NOT NULL DEFAULT 0,
	release_reason TEXT    NOT NULL DEFAULT '',
	CHECK (to_ns > from_ns)
) STRICT;
CREATE INDEX locks_camera ON locks (camera, from_ns);
`,
	// Version 5: each stream's hash chain (internal/integrity, docs/
	// evidence.md): run starts, closed segments and deletions, each entry
	// hashed over the one before; segment entries carry the head
	// signature made when the segment closed. Append-only like the audit
	// log. Rows outlive their segments (deletions are entries too).
	`
CREATE TABLE chain (
	stream_id    INTEGER NOT NULL REFERENCES streams (id),
	seq          INTEGER NOT NULL,
	kind         TEXT    NOT NULL,
	camera       TEXT    NOT NULL,
	stream       TEXT    NOT NULL,
	at_ns        INTEGER NOT NULL,
	key          TEXT    NOT NULL,
	wall_dur_ns  INTEGER NOT NULL,
	dur90k       INTEGER NOT NULL,
	frames       INTEGER NOT NULL,
	bytes        INTEGER NOT NULL,
	segment_hash BLOB    NOT NULL,
	init_hash    BLOB    NOT NULL,
	reason       TEXT    NOT NULL,
	prev         BLOB    NOT NULL,
	hash         BLOB    NOT NULL,
	signed_at_ns INTEGER NOT NULL DEFAULT 0,
	signature    BLOB,
	PRIMARY KEY (stream_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX chain_segment_key ON chain (key) WHERE kind = 'segment';
CREATE TRIGGER chain_no_update BEFORE UPDATE ON chain
BEGIN SELECT RAISE(ABORT, 'the hash chain is append-only'); END;
CREATE TRIGGER chain_no_delete BEFORE DELETE ON chain
BEGIN SELECT RAISE(ABORT, 'the hash chain is append-only'); END;
`,
	// Version 6: who minted an API token, when not its owner (an admin
	// making a token for another user, or "local:OSUSER" for custos
	// user token); '' for one's own. Entries made with the token name
	// them (docs/security.md).
	`
ALTER TABLE tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
`,
	// Version 7: a camera added in the UI may allow Basic authentication
	// over plain RTSP (config allow_basic_auth), off by default.
	`
ALTER TABLE cameras ADD COLUMN allow_basic_auth INTEGER NOT NULL DEFAULT 0;
`,
}

// SchemaVersion is the schema version this code writes and understands;
// it equals len(migrations) (checked by a test).
const SchemaVersion = 7

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
