package main

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/sim"
)

// startSimulator serves simulated cameras on a free loopback port for the
// test's duration and returns the address.
func startSimulator(t *testing.T, opts sim.Options) string {
	t.Helper()
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// authURL is the server's URL with the first admin's login in it (Go's
// HTTP client and Chromium send it as HTTP Basic).
func (s *server) authURL() string {
	if s.adminPassword == "" {
		panic("authURL: this start did not create the admin")
	}
	return strings.Replace(s.baseURL(), "://", "://"+url.UserPassword("admin", s.adminPassword).String()+"@", 1)
}
