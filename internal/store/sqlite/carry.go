package sqlite

import (
	"context"
	"fmt"
	"net/url"
)

// Carried counts what CarryOver copied.
type Carried struct {
	Users, Tokens, AuditEntries, Deletions, Cameras, Locks, ChainEntries int64
}

// CarryOver copies what segment files cannot rebuild from the index at
// oldPath (opened read-only) into s, which check --repair has just
// rebuilt from the files: users, grants and API tokens, the cameras
// added through the API, the evidence
// locks, the streams' hash chains, the audit log
// (entries unchanged, so its hash chain stays valid) and the deletion log
// (matched to the rebuilt streams by camera and stream name; streams that
// no longer have segments are recreated). Sessions are not carried:
// everyone signs in again. It runs in one transaction and fails without
// changing s if any table cannot be read.
func (s *Store) CarryOver(ctx context.Context, oldPath string) (Carried, error) {
	var c Carried
	u := url.URL{Scheme: "file", Path: oldPath, RawQuery: "mode=ro"}
	s.wsem <- struct{}{}
	defer func() { <-s.wsem }()
	// ATTACH is not allowed inside a transaction: hold one connection.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return c, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS old`, u.String()); err != nil {
		return c, fmt.Errorf("attach %s: %w", oldPath, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE old`)
	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA old.user_version`).Scan(&version); err != nil {
		return c, fmt.Errorf("read %s: %w", oldPath, err)
	}
	type step struct {
		n   *int64
		sql string
	}
	var steps []step
	if version >= 2 { // accounts and the audit log exist since version 2
		steps = append(steps,
			step{&c.Users, `INSERT INTO main.users SELECT * FROM old.users`},
			step{nil, `INSERT INTO main.grants SELECT * FROM old.grants`},
			step{&c.Tokens, `INSERT INTO main.tokens (id, user_id, name, hash, created_ns, last_used_ns, expires_ns)
				SELECT id, user_id, name, hash, created_ns, last_used_ns, expires_ns FROM old.tokens`},
			step{&c.AuditEntries, `INSERT INTO main.audit SELECT * FROM old.audit ORDER BY seq`})
	}
	if version >= 6 { // who minted each token
		steps = append(steps, step{nil, `UPDATE main.tokens SET created_by =
			(SELECT o.created_by FROM old.tokens o WHERE o.id = main.tokens.id)`})
	}
	if version >= 3 { // cameras added through the API
		steps = append(steps, step{&c.Cameras, `INSERT INTO main.cameras (name, url, sub_url, username, password, transport, storage, max_age_ns, max_bytes, created_ns, updated_ns)
			SELECT name, url, sub_url, username, password, transport, storage, max_age_ns, max_bytes, created_ns, updated_ns FROM old.cameras`})
	}
	if version >= 7 { // Basic over plain RTSP allowed
		steps = append(steps, step{nil, `UPDATE main.cameras SET allow_basic_auth =
			(SELECT o.allow_basic_auth FROM old.cameras o WHERE o.name = main.cameras.name)`})
	}
	if version >= 4 { // evidence locks
		steps = append(steps, step{&c.Locks, `INSERT INTO main.locks SELECT * FROM old.locks`})
	}
	steps = append(steps,
		step{nil, `INSERT OR IGNORE INTO main.streams (camera, name) SELECT camera, name FROM old.streams`},
		step{&c.Deletions, `INSERT INTO main.deletions (segment_id, stream_id, disk, key, start_ns, end_ns, bytes, reason, at_ns)
			SELECT d.segment_id, ns.id, d.disk, d.key, d.start_ns, d.end_ns, d.bytes, d.reason, d.at_ns
			FROM old.deletions d JOIN old.streams os ON os.id = d.stream_id
			JOIN main.streams ns ON ns.camera = os.camera AND ns.name = os.name ORDER BY d.id`})
	if version >= 5 { // the streams' hash chains, entries unchanged
		steps = append(steps, step{&c.ChainEntries, `INSERT INTO main.chain
			SELECT ns.id, c.seq, c.kind, c.camera, c.stream, c.at_ns, c.key, c.wall_dur_ns, c.dur90k, c.frames, c.bytes,
				c.segment_hash, c.init_hash, c.reason, c.prev, c.hash, c.signed_at_ns, c.signature
			FROM old.chain c JOIN old.streams os ON os.id = c.stream_id
			JOIN main.streams ns ON ns.camera = os.camera AND ns.name = os.name ORDER BY c.stream_id, c.seq`})
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("begin: %w", err)
	}
	for _, st := range steps {
		res, err := tx.ExecContext(ctx, st.sql)
		if err != nil {
			tx.Rollback()
			return Carried{}, fmt.Errorf("carry over from %s: %w", oldPath, err)
		}
		if st.n != nil {
			*st.n, _ = res.RowsAffected()
		}
	}
	if err := tx.Commit(); err != nil {
		return Carried{}, fmt.Errorf("carry over from %s: commit: %w", oldPath, err)
	}
	return c, nil
}
