package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store"
)

// StoredCameras returns the cameras added through the API, by name. The
// rows hold camera passwords: callers never show them.
func (s *Store) StoredCameras(ctx context.Context) ([]config.Camera, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, url, sub_url, username, password, transport, storage, max_age_ns, max_bytes, allow_basic_auth
		FROM cameras ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	defer rows.Close()
	var out []config.Camera
	for rows.Next() {
		var c config.Camera
		var age, bytes int64
		if err := rows.Scan(&c.Name, &c.URL, &c.SubURL, &c.Username, &c.Password, &c.Transport, &c.Storage, &age, &bytes, &c.AllowBasicAuth); err != nil {
			return nil, fmt.Errorf("list cameras: %w", err)
		}
		c.Retention = config.Retention{MaxAge: config.Duration(age), MaxBytes: config.Bytes(bytes)}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutCamera inserts or replaces a camera added through the API.
func (s *Store) PutCamera(ctx context.Context, c config.Camera) error {
	now := time.Now().UnixNano()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cameras (name, url, sub_url, username, password, transport, storage, max_age_ns, max_bytes, allow_basic_auth, created_ns, updated_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET url = excluded.url, sub_url = excluded.sub_url, username = excluded.username,
				password = excluded.password, transport = excluded.transport, storage = excluded.storage,
				max_age_ns = excluded.max_age_ns, max_bytes = excluded.max_bytes,
				allow_basic_auth = excluded.allow_basic_auth, updated_ns = excluded.updated_ns`,
			c.Name, c.URL, c.SubURL, c.Username, c.Password, c.Transport, c.Storage,
			int64(c.Retention.MaxAge), int64(c.Retention.MaxBytes), c.AllowBasicAuth, now, now)
		if err != nil {
			return fmt.Errorf("save camera %q: %w", c.Name, err)
		}
		return nil
	})
}

// DeleteCamera deletes a camera added through the API (its recordings
// stay); a missing one is store.ErrNotFound.
func (s *Store) DeleteCamera(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM cameras WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete camera %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("camera %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
}

// Scrub checkpoints the write-ahead log into the database and truncates
// it, so that page versions replaced since (camera rows whose plaintext
// secrets were sealed: secure_delete zeroes them in the database's pages)
// are gone from the files too. It does I/O and blocks; readers open at
// the time may keep part of the log (then it is reset at a later
// checkpoint).
func (s *Store) Scrub(ctx context.Context) error {
	var busy, logPages, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
		return fmt.Errorf("checkpoint index %s: %w", s.path, err)
	}
	return nil
}
