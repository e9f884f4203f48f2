package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/auth"
)

// TestTokenCreatedByCarried: a token's minter is stored, read back and
// carried over by check --repair, also from an index of schema version 5
// (before the column existed), whose tokens keep working with no minter.
func TestTokenCreatedByCarried(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, err := Open(filepath.Join(dir, "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	u := auth.User{Name: "guard", Role: auth.Viewer, PasswordHash: "x", Created: time.Unix(1, 0), PasswordChanged: time.Unix(1, 0)}
	if err := old.AddUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	tok := auth.Token{UserID: u.ID, Name: "t", Hash: []byte("h1"), Created: time.Unix(2, 0), CreatedBy: "admin"}
	if err := old.AddToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	if got, err := old.TokenByHash(ctx, []byte("h1")); err != nil || got.CreatedBy != "admin" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	old.Close()
	fresh, err := Open(filepath.Join(dir, "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.CarryOver(ctx, filepath.Join(dir, "old.db")); err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.TokenByHash(ctx, []byte("h1")); err != nil || got.CreatedBy != "admin" {
		t.Errorf("carried: %+v %v", got, err)
	}

	// An index of version 5.
	v5 := filepath.Join(dir, "v5.db")
	db, err := sql.Open("sqlite", v5)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:5] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	for _, q := range []string{"PRAGMA user_version = 5",
		`INSERT INTO users VALUES (1, 'guard', 'viewer', 'x', 1, 1)`,
		`INSERT INTO tokens VALUES (7, 1, 't', x'6832', 2, 0, 0)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", q, err))
		}
	}
	db.Close()
	rebuilt, err := Open(filepath.Join(dir, "rebuilt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	if _, err := rebuilt.CarryOver(ctx, v5); err != nil {
		t.Fatal(err)
	}
	if got, err := rebuilt.TokenByHash(ctx, []byte("h2")); err != nil || got.ID != 7 || got.CreatedBy != "" {
		t.Errorf("carried from version 5: %+v %v", got, err)
	}
	// And an index of version 5 opened in place is migrated.
	up, err := Open(v5)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if got, err := up.TokenByHash(ctx, []byte("h2")); err != nil || got.CreatedBy != "" {
		t.Errorf("migrated: %+v %v", got, err)
	}
}
