package main

import (
	"net/url"
	"strings"
)

// authURL is the server's URL with the first admin's login in it (Go's
// HTTP client and Chromium send it as HTTP Basic).
func (s *server) authURL() string {
	if s.adminPassword == "" {
		panic("authURL: this start did not create the admin")
	}
	return strings.Replace(s.baseURL(), "://", "://"+url.UserPassword("admin", s.adminPassword).String()+"@", 1)
}
