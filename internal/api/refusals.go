package api

import (
	"context"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
)

// Detail keys naming the credential of the request an entry was made for
// (docs/security.md, "Entries"). They are set by requestEntry, the one
// place entries are built from a request.
const (
	// detailCredential is "session", "basic" or "token".
	detailCredential = "credential"
	// detailCredentialID is, for a session, the first 12 hex digits of
	// the SHA-256 of its cookie (the start of its id in GET
	// /api/sessions, never the cookie); for a token, its id.
	detailCredentialID = "credential_id"
	// detailMintedBy is, for a token minted by someone other than its
	// owner, who minted it (an admin's name, or local:OSUSER).
	detailMintedBy = "minted_by"
)

// Detail keys of refusal entries.
const (
	detailMethod = "method" // login_failed: form, basic, token, password change
	detailReason = "reason" // see noteDenied and auditFailedLogin
	detailStatus = "status" // denied: 401 or 403
	detailRoute  = "route"  // denied: the route pattern ("GET /api/users")
)

// requestEntry builds the audit entry of an action done for r: actor,
// client address and the credential used (who(r)), plus detail (copied).
// Result is ok.
func requestEntry(r *http.Request, action, camera string, detail map[string]string) audit.Entry {
	return entryFor(r, who(r), action, camera, detail)
}

// entryFor is requestEntry for principal p (nil: anonymous).
func entryFor(r *http.Request, p *principal, action, camera string, detail map[string]string) audit.Entry {
	e := audit.Entry{Addr: clientAddr(r), Action: action, Camera: camera, Result: audit.ResultOK}
	d := make(map[string]string, len(detail)+3)
	maps.Copy(d, detail)
	if p != nil {
		e.Actor = p.user.Name
		p.describe(d)
	}
	if len(d) > 0 {
		e.Detail = d
	}
	return e
}

// describe adds the credential's detail keys to d.
func (p *principal) describe(d map[string]string) {
	d[detailCredential] = p.method
	switch {
	case p.session != nil:
		d[detailCredentialID] = hex.EncodeToString(p.session.IDHash)[:12]
	case p.token != nil:
		d[detailCredentialID] = strconv.FormatInt(p.token.ID, 10)
		if p.token.CreatedBy != "" {
			d[detailMintedBy] = p.token.CreatedBy
		}
	}
}

// refusalAudits is embedded in Server for refusals.
type refusalAudits struct {
	refusalsOnce sync.Once
	refusalsAgg  *audit.Aggregator
}

// refusals returns s.Refusals, or an aggregator on s.Audit made on first
// use (its windows are flushed as later refusals arrive; nothing flushes
// it at shutdown).
func (s *Server) refusals() *audit.Aggregator {
	if s.Refusals != nil {
		return s.Refusals
	}
	s.refusalsOnce.Do(func() { s.refusalsAgg = &audit.Aggregator{Log: s.Audit, Logger: s.Logger} })
	if err := s.refusalsAgg.Flush(context.Background(), false); err != nil {
		s.logger().Error("api: audit append failed", "err", err)
	}
	return s.refusalsAgg
}

// auditFailedLogin records a refused password or token (reason
// bad_credentials) or an attempt refused by the throttle (throttled),
// aggregated per source address, name tried, method and reason per
// minute. name is what the client sent (truncated to 64 bytes).
func (s *Server) auditFailedLogin(r *http.Request, name, method string, err error) {
	var te *auth.ThrottledError
	reason := ""
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		reason = "bad_credentials"
	case errors.As(err, &te):
		reason = "throttled"
	default:
		return
	}
	name = clean(name, 64)
	addr := clientAddr(r)
	e := audit.Entry{Actor: name, Addr: addr, Action: audit.LoginFailed, Result: audit.ResultDenied,
		Detail: map[string]string{detailMethod: method, detailReason: reason}}
	key := strings.Join([]string{audit.LoginFailed, addr, name, method, reason}, "\x00")
	if err := s.refusals().Note(r.Context(), key, e); err != nil {
		s.logger().Error("api: audit append failed", "action", e.Action, "err", err)
	}
}

// noteDenied records a refused request (status 401 or 403), aggregated
// per source address, user, reason, route and camera per minute. reason
// is a constant: no_credentials, bad_scheme, role, grant, csrf, or
// forbidden (a handler's own refusal, the default).
func (s *Server) noteDenied(r *http.Request, status int, reason string) {
	if reason == "" {
		reason = "forbidden"
	}
	e := requestEntry(r, audit.Denied, clean(r.PathValue("name"), 64),
		map[string]string{detailStatus: strconv.Itoa(status), detailReason: reason, detailRoute: clean(r.Pattern, 128)})
	e.Result = audit.ResultDenied
	key := strings.Join([]string{audit.Denied, e.Addr, e.Actor, e.Detail[detailCredential], reason, e.Detail[detailRoute], e.Camera}, "\x00")
	if err := s.refusals().Note(r.Context(), key, e); err != nil {
		s.logger().Error("api: audit append failed", "action", e.Action, "err", err)
	}
}

// clean makes s valid UTF-8 of at most n bytes (for names sent by
// clients, which the audit log must accept).
func clean(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "?")
}
