package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/store"
)

// AddLock implements store.Store.
func (s *Store) AddLock(ctx context.Context, l *store.Lock) error {
	from, err := toNS("lock from", l.From)
	if err != nil {
		return err
	}
	to, err := toNS("lock to", l.To)
	if err != nil {
		return err
	}
	if to <= from {
		return fmt.Errorf("lock: to must be after from")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO locks (camera, from_ns, to_ns, reason, created_by, created_ns)
			VALUES (?, ?, ?, ?, ?, ?)`, l.Camera, from, to, l.Reason, l.CreatedBy, l.Created.UnixNano())
		if err != nil {
			return fmt.Errorf("insert lock: %w", err)
		}
		l.ID, err = res.LastInsertId()
		return err
	})
}

// ReleaseLock implements store.Store.
func (s *Store) ReleaseLock(ctx context.Context, id int64, by, reason string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var released int64
		err := tx.QueryRowContext(ctx, `SELECT released_ns FROM locks WHERE id = ?`, id).Scan(&released)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("lock %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read lock %d: %w", id, err)
		}
		if released != 0 {
			return fmt.Errorf("lock %d: %w", id, store.ErrReleased)
		}
		_, err = tx.ExecContext(ctx, `UPDATE locks SET released_by = ?, released_ns = ?, release_reason = ? WHERE id = ?`,
			by, at.UnixNano(), reason, id)
		if err != nil {
			return fmt.Errorf("release lock %d: %w", id, err)
		}
		return nil
	})
}

// Locks implements store.Store.
func (s *Store) Locks(ctx context.Context, camera string, from, to time.Time, withReleased bool) ([]store.Lock, error) {
	q := `SELECT id, camera, from_ns, to_ns, reason, created_by, created_ns, released_by, released_ns, release_reason
		FROM locks WHERE to_ns > ? AND from_ns < ?`
	args := []any{boundNS(from), boundNS(to)}
	if camera != "" {
		q += ` AND camera = ?`
		args = append(args, camera)
	}
	if !withReleased {
		q += ` AND released_ns = 0`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY from_ns, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	defer rows.Close()
	var out []store.Lock
	for rows.Next() {
		var l store.Lock
		var f, t, c, r int64
		if err := rows.Scan(&l.ID, &l.Camera, &f, &t, &l.Reason, &l.CreatedBy, &c, &l.ReleasedBy, &r, &l.ReleaseReason); err != nil {
			return nil, fmt.Errorf("list locks: %w", err)
		}
		l.From, l.To, l.Created, l.Released = fromNS(f), fromNS(t), fromNS(c), nsOrZero(r)
		out = append(out, l)
	}
	return out, rows.Err()
}
