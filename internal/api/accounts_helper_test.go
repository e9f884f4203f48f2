package api

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/web"
)

// testAdminPassword is the password of user "admin" in test servers.
const testAdminPassword = "admin-password-1"

// withAccounts gives s an auth service (cheap hashing) and an audit log
// on idx, with user admin, and the UI's login page.
func withAccounts(t testing.TB, s *Server, idx *sqlite.Store) {
	t.Helper()
	svc, err := auth.New(idx, auth.Options{Hash: auth.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(context.Background(), testAdminPassword); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(context.Background(), idx, filepath.Join(t.TempDir(), "audit.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	s.Auth, s.Audit = svc, log
	s.LoginPage, s.PublicUI = web.LoginPage(), web.PublicPaths
}

// newIndex opens an empty index in a temporary directory.
func newIndex(t testing.TB) *sqlite.Store {
	t.Helper()
	idx, err := sqlite.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx
}

// asAdmin sends requests that carry no credentials as user admin (HTTP
// Basic), for tests of what routes do rather than who may call them.
func asAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.SetBasicAuth("admin", testAdminPassword)
		}
		h.ServeHTTP(w, r)
	})
}
