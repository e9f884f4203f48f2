package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/custos-nvr/custos/internal/audit"
)

var _ audit.Store = (*Store)(nil)

// Audit query limits (audit.Filter.Limit).
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

const auditCols = `seq, at_ns, actor, addr, action, camera, detail, result, prev_hash, hash`

// AppendAudit implements audit.Store: it inserts e in a write transaction
// that first checks e.Seq is one more than the last seq (else an error,
// and nothing is written). Detail is stored as a JSON object.
//
// The entry is durable when AppendAudit returns, even against a power
// loss: the database runs synchronous=NORMAL, which syncs the WAL only at
// checkpoints, so after the commit AppendAudit fsyncs the WAL file itself
// (what synchronous=FULL does at every commit). audit.Log writes the
// entry to its fsynced file next, and a power loss must not leave that
// file ahead of the store.
func (s *Store) AppendAudit(ctx context.Context, e audit.Entry) error {
	at, err := toNS(fmt.Sprintf("append audit entry %d", e.Seq), e.Time)
	if err != nil {
		return err
	}
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit`).Scan(&last); err != nil {
			return err
		}
		if e.Seq != last+1 {
			return fmt.Errorf("seq %d does not follow the last seq %d", e.Seq, last)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, at, e.Actor, e.Addr, e.Action, e.Camera, detail, e.Result, nonNil(e.Prev), nonNil(e.Hash))
		return err
	})
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	if err := syncFile(s.path + "-wal"); err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// nonNil keeps a nil slice from being stored as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// syncFile fsyncs the file at path; a missing file is not an error (a WAL
// that does not exist holds nothing to sync). On Linux fsync flushes the
// file whichever descriptor wrote it.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func encodeDetail(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d) // keys sorted
	if err != nil {
		return "", fmt.Errorf("encode detail: %w", err)
	}
	return string(b), nil
}

// AuditEntries implements audit.Store. A row whose detail is not a JSON
// object of strings is an *audit.CorruptError (wrapped).
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]audit.Entry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit entries after %d: %w", after, withCtx(ctx, err))
	}
	out, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("audit entries after %d: %w", after, withCtx(ctx, err))
	}
	return out, nil
}

// LastAudit implements audit.Store.
func (s *Store) LastAudit(ctx context.Context) (audit.Entry, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return audit.Entry{}, false, fmt.Errorf("last audit entry: %w", withCtx(ctx, err))
	}
	out, err := scanAudit(rows)
	if err != nil {
		return audit.Entry{}, false, fmt.Errorf("last audit entry: %w", withCtx(ctx, err))
	}
	if len(out) == 0 {
		return audit.Entry{}, false, nil
	}
	return out[0], true, nil
}

// QueryAudit implements audit.Store: entries with From <= Time < To
// (zero bounds open), the given actor, action and camera (empty: any) and
// Seq < BeforeSeq (0: any), highest Seq first, at most f.Limit (default
// 100, at most 1000). A time bound range-scans the audit_at index.
func (s *Store) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Entry, error) {
	q, args := auditQuery(f)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", withCtx(ctx, err))
	}
	out, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", withCtx(ctx, err))
	}
	return out, nil
}

// auditQuery builds QueryAudit's statement.
func auditQuery(f audit.Filter) (string, []any) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "at_ns >= ?"), append(args, boundNS(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "at_ns < ?"), append(args, boundNS(f.To))
	}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"camera", f.Camera}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, f.BeforeSeq)
	}
	q := `SELECT ` + auditCols + ` FROM audit`
	if !f.From.IsZero() || !f.To.IsZero() {
		// Without statistics the planner may prefer walking the primary
		// key backwards to avoid a sort, which reads the whole table for
		// a narrow range of an old day.
		q += ` INDEXED BY audit_at`
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = auditDefaultLimit
	case limit > auditMaxLimit:
		limit = auditMaxLimit
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	return q, append(args, limit)
}

func scanAudit(rows *sql.Rows) ([]audit.Entry, error) {
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at int64
		var detail string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Addr, &e.Action, &e.Camera, &detail, &e.Result, &e.Prev, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = fromNS(at)
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, &audit.CorruptError{Seq: e.Seq, Err: fmt.Errorf("detail is not a JSON object of strings: %w", err)}
		}
		if len(e.Detail) == 0 {
			e.Detail = nil
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
