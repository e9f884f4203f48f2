package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticate measures what authentication adds to a request:
// GET /api/session (which does nothing else) through the handler, with
// each credential kind. Basic is the cached path (the first request
// hashes the password once).
func BenchmarkAuthenticate(b *testing.B) {
	s := &Server{}
	withAccounts(b, s, newIndex(b))
	ctx := context.Background()
	_, _, raw, err := s.Auth.Login(ctx, "admin", testAdminPassword, "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.Auth.NewToken(ctx, "admin", "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"basic", func(r *http.Request) { r.SetBasicAuth("admin", testAdminPassword) }},
		{"session", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: raw}) }},
		{"token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/session", nil)
				tc.set(r)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
