package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/auth"
)

var _ auth.Store = (*Store)(nil)

// nsOrZero converts a stored time where 0 means "none".
func nsOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return fromNS(ns)
}

func zeroOrNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// AddUser implements auth.Store.
func (s *Store) AddUser(ctx context.Context, u *auth.User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, created_ns, password_changed_ns)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			u.Name, string(u.Role), u.PasswordHash, u.Created.UnixNano(), u.PasswordChanged.UnixNano())
		if err != nil {
			return fmt.Errorf("insert user %q: %w", u.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q: %w", u.Name, auth.ErrExists)
		}
		if u.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return putGrants(ctx, tx, u.ID, u.Grants)
	})
}

func putGrants(ctx context.Context, tx *sql.Tx, userID int64, g map[string]auth.Perm) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("replace grants: %w", err)
	}
	for cam, p := range g {
		if p == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (user_id, camera, perms) VALUES (?, ?, ?)`,
			userID, cam, p.String()); err != nil {
			return fmt.Errorf("insert grant %q: %w", cam, err)
		}
	}
	return nil
}

// UpdateUser implements auth.Store.
func (s *Store) UpdateUser(ctx context.Context, u auth.User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET role = ?, password_hash = ?, password_changed_ns = ? WHERE id = ?`,
			string(u.Role), u.PasswordHash, u.PasswordChanged.UnixNano(), u.ID)
		if err != nil {
			return fmt.Errorf("update user %q: %w", u.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %d: %w", u.ID, auth.ErrNotFound)
		}
		return putGrants(ctx, tx, u.ID, u.Grants)
	})
}

// DeleteUser implements auth.Store; grants, sessions and tokens go with
// the user (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete user %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %d: %w", id, auth.ErrNotFound)
		}
		return nil
	})
}

const userCols = `id, name, role, password_hash, created_ns, password_changed_ns`

func (s *Store) userWhere(ctx context.Context, where string, arg any) (auth.User, error) {
	var u auth.User
	var role string
	var created, changed int64
	err := s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.Name, &role, &u.PasswordHash, &created, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %v: %w", arg, auth.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %v: %w", arg, err)
	}
	u.Role, u.Created, u.PasswordChanged = auth.Role(role), fromNS(created), fromNS(changed)
	if u.Grants, err = s.grantsOf(ctx, u.ID); err != nil {
		return u, err
	}
	return u, nil
}

func (s *Store) grantsOf(ctx context.Context, userID int64) (map[string]auth.Perm, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT camera, perms FROM grants WHERE user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	defer rows.Close()
	g := map[string]auth.Perm{}
	for rows.Next() {
		var cam, perms string
		if err := rows.Scan(&cam, &perms); err != nil {
			return nil, fmt.Errorf("read grants: %w", err)
		}
		p, err := auth.ParsePerms(perms)
		if err != nil {
			return nil, fmt.Errorf("user %d grant %q: %w", userID, cam, err)
		}
		g[cam] = p
	}
	return g, rows.Err()
}

// UserByName implements auth.Store. Names compare exactly.
func (s *Store) UserByName(ctx context.Context, name string) (auth.User, error) {
	return s.userWhere(ctx, "name = ?", name)
}

// UserByID implements auth.Store.
func (s *Store) UserByID(ctx context.Context, id int64) (auth.User, error) {
	return s.userWhere(ctx, "id = ?", id)
}

// Users implements auth.Store.
func (s *Store) Users(ctx context.Context) ([]auth.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list users: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]auth.User, 0, len(names))
	for _, n := range names {
		u, err := s.UserByName(ctx, n)
		if errors.Is(err, auth.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// AddSession implements auth.Store.
func (s *Store) AddSession(ctx context.Context, se auth.Session) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, csrf, created_ns, last_seen_ns, expires_ns, addr, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, se.IDHash, se.UserID, se.CSRF, se.Created.UnixNano(),
			se.LastSeen.UnixNano(), se.Expires.UnixNano(), se.Addr, se.UserAgent)
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
}

const sessionCols = `s.id_hash, s.user_id, u.name, s.csrf, s.created_ns, s.last_seen_ns, s.expires_ns, s.addr, s.user_agent`

func scanSession(sc interface{ Scan(...any) error }) (auth.Session, error) {
	var se auth.Session
	var c, l, e int64
	err := sc.Scan(&se.IDHash, &se.UserID, &se.User, &se.CSRF, &c, &l, &e, &se.Addr, &se.UserAgent)
	se.Created, se.LastSeen, se.Expires = fromNS(c), fromNS(l), fromNS(e)
	return se, err
}

// SessionByHash implements auth.Store.
func (s *Store) SessionByHash(ctx context.Context, h []byte) (auth.Session, error) {
	se, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+
		` FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return se, fmt.Errorf("session: %w", auth.ErrNotFound)
	}
	if err != nil {
		return se, fmt.Errorf("read session: %w", err)
	}
	return se, nil
}

// TouchSession implements auth.Store.
func (s *Store) TouchSession(ctx context.Context, h []byte, lastSeen, expires time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_ns = ?, expires_ns = ? WHERE id_hash = ?`,
			lastSeen.UnixNano(), expires.UnixNano(), h)
		return err
	})
}

// DeleteSession implements auth.Store.
func (s *Store) DeleteSession(ctx context.Context, h []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, h)
		if err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("session: %w", auth.ErrNotFound)
		}
		return nil
	})
}

// DeleteUserSessions implements auth.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
}

// DeleteExpiredSessions implements auth.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, t time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_ns < ?`, t.UnixNano())
		return err
	})
}

// Sessions implements auth.Store.
func (s *Store) Sessions(ctx context.Context) ([]auth.Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+
		` FROM sessions s JOIN users u ON u.id = s.user_id ORDER BY s.created_ns DESC`)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []auth.Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, se)
	}
	return out, rows.Err()
}

// AddToken implements auth.Store.
func (s *Store) AddToken(ctx context.Context, t *auth.Token) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (user_id, name, hash, created_ns, last_used_ns, expires_ns, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, t.UserID, t.Name, t.Hash, t.Created.UnixNano(), zeroOrNS(t.LastUsed), zeroOrNS(t.Expires), t.CreatedBy)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("token: %w", auth.ErrExists)
			}
			return fmt.Errorf("insert token: %w", err)
		}
		t.ID, err = res.LastInsertId()
		return err
	})
}

const tokenCols = `t.id, t.user_id, u.name, t.name, t.hash, t.created_ns, t.last_used_ns, t.expires_ns, t.created_by`

func scanToken(sc interface{ Scan(...any) error }) (auth.Token, error) {
	var t auth.Token
	var c, l, e int64
	err := sc.Scan(&t.ID, &t.UserID, &t.User, &t.Name, &t.Hash, &c, &l, &e, &t.CreatedBy)
	t.Created, t.LastUsed, t.Expires = fromNS(c), nsOrZero(l), nsOrZero(e)
	return t, err
}

// TokenByHash implements auth.Store.
func (s *Store) TokenByHash(ctx context.Context, h []byte) (auth.Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+
		` FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", auth.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// TouchToken implements auth.Store.
func (s *Store) TouchToken(ctx context.Context, id int64, lastUsed time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_ns = ? WHERE id = ?`, lastUsed.UnixNano(), id)
		return err
	})
}

// DeleteToken implements auth.Store.
func (s *Store) DeleteToken(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete token %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("token %d: %w", id, auth.ErrNotFound)
		}
		return nil
	})
}

// Tokens implements auth.Store.
func (s *Store) Tokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []auth.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
