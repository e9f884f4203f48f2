package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/web"
)

// Cookie names. The session cookie is HttpOnly; custos_form only tells
// the server that this browser logs in with the form (so an
// unauthenticated page load is redirected to /login instead of getting
// the HTTP Basic challenge that kiosks answer).
const (
	sessionCookie = "custos_session"
	formCookie    = "custos_form"
	// CSRFHeader must carry the session's CSRF token on every
	// state-changing request authenticated by the session cookie.
	CSRFHeader = "X-CSRF-Token"
)

// access says who may use a route. The zero value is "any signed-in
// user".
type access struct {
	public bool
	// role is the minimum role ("" for any).
	role auth.Role
	// perm, when set, is the permission needed on the camera named by
	// the {name} path value; it may depend on the request.
	perm func(*http.Request) auth.Perm
	// everyCamera checks perm on the * grant (every camera) instead of
	// the {name} camera.
	everyCamera bool
}

var (
	public   = access{public: true}
	anyUser  = access{}
	operator = access{role: auth.Operator}
	admin    = access{role: auth.Admin}
)

func cameraPerm(p auth.Perm) access {
	return access{perm: func(*http.Request) auth.Perm { return p }}
}

// Camera management (docs/security.md, "Roles and grants"): an operator
// changes, removes or probes with the stored password only a camera on
// which they hold every permission (live, recordings and export, directly
// or through *), and adds a camera only with every permission on * (a
// new camera is then theirs to see like every other). Admins may do all.
// The lock permission is not needed: it came later, and grants stored
// before it (even "all") do not carry it.
var (
	managePerms  = auth.PermLive | auth.PermRecordings | auth.PermExport
	manageCamera = access{role: auth.Operator, perm: func(*http.Request) auth.Perm { return managePerms }}
	manageAll    = access{role: auth.Operator, perm: func(*http.Request) auth.Perm { return managePerms }, everyCamera: true}
)

// Route is a registered route and who may use it (for the route-walking
// test and docs/api.md).
type Route struct {
	Pattern string
	Public  bool
	// Role is the minimum role; "" for any signed-in user.
	Role auth.Role
	// Camera is true when the route needs a grant on the {name} camera
	// (on * for adding a camera).
	Camera bool
}

// principal is the authenticated caller of a request.
type principal struct {
	user auth.User
	// session is set for cookie-authenticated requests, token for
	// bearer tokens.
	session *auth.Session
	token   *auth.Token
	// method is "session", "basic" or "token".
	method string
}

type principalKey struct{}

// who returns the request's principal (nil on public routes).
func who(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// handle registers pattern behind the access check.
func (s *Server) handle(mux *http.ServeMux, routes *[]Route, pattern string, a access, h http.HandlerFunc) {
	*routes = append(*routes, Route{Pattern: pattern, Public: a.public, Role: a.role, Camera: a.perm != nil})
	mux.Handle(pattern, s.guard(a, h))
}

// guard authenticates the request (Basic, bearer token or session
// cookie), checks the role, the camera grant and, for cookie sessions,
// the CSRF token of state-changing methods, then calls h with the
// principal in the context.
func (s *Server) guard(a access, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.public {
			h(w, r)
			return
		}
		p, err := s.authenticate(w, r)
		if p == nil {
			s.unauthenticated(w, r, err)
			return
		}
		// The principal is known from here on, refusals included (their
		// audit entries name it).
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		u := &p.user
		if a.role != "" && !u.Role.AtLeast(a.role) {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, reason: "role",
				Message: fmt.Sprintf("user %q (%s) may not do this: it needs the %s role", u.Name, u.Role, a.role)})
			return
		}
		if a.perm != nil && a.everyCamera {
			if perm := a.perm(r); !u.Can(auth.AllCameras, perm) {
				s.writeError(w, r, &Error{Status: http.StatusForbidden, reason: "grant",
					Message: fmt.Sprintf("user %q may not do this: it needs the %s permission on every camera (a grant on %s)", u.Name, perm, auth.AllCameras)})
				return
			}
		} else if a.perm != nil {
			cam, perm := r.PathValue("name"), a.perm(r)
			if !u.Can(cam, perm) {
				s.writeError(w, r, &Error{Status: http.StatusForbidden, reason: "grant",
					Message: fmt.Sprintf("user %q has no %s permission on camera %q", u.Name, perm, cam)})
				return
			}
		}
		if p.method == "session" && !safeMethod(r.Method) && r.Header.Get(CSRFHeader) != p.session.CSRF {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, reason: "csrf",
				Message: "missing or wrong " + CSRFHeader + " header (reload the page)"})
			return
		}
		h(w, r)
	})
}

// listable reports whether the request's caller may see camera in a
// list: they hold a grant on it (any permission) or are an admin. On a
// public route (no caller: metrics.public) every camera is listed.
func listable(r *http.Request, camera string) bool {
	p := who(r)
	return p == nil || p.user.CanAny(camera)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authenticate finds who sent r: an Authorization header (Basic or
// Bearer) wins over the session cookie. It returns nil and no error for
// an anonymous request, nil and the reason for refused credentials.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		if name, pw, ok := r.BasicAuth(); ok {
			u, err := s.Auth.Basic(ctx, name, pw, clientAddr(r))
			if err != nil {
				s.auditFailedLogin(r, name, "basic", err)
				return nil, err
			}
			return &principal{user: u, method: "basic"}, nil
		}
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			u, t, err := s.Auth.TokenUser(ctx, strings.TrimSpace(tok), clientAddr(r))
			if err != nil {
				s.auditFailedLogin(r, "", "token", err)
				return nil, err
			}
			return &principal{user: u, token: &t, method: "token"}, nil
		}
		return nil, &Error{Status: http.StatusUnauthorized, reason: "bad_scheme", Message: "unsupported Authorization scheme: use Basic or Bearer"}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		u, sess, err := s.Auth.Session(ctx, c.Value)
		if err == nil {
			return &principal{user: u, session: &sess, method: "session"}, nil
		}
		if !errors.Is(err, auth.ErrBadCredentials) {
			return nil, err
		}
		// An expired or revoked session is an anonymous request.
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	}
	return nil, nil
}

// unauthenticated answers a request without (valid) credentials: 429
// while throttled, 401 otherwise. Pages of the UI get the login form:
// browsers that logged in with the form before are redirected to /login;
// others get an HTTP Basic challenge with the form as its body (kiosks
// opened as http://user:pass@host/ answer the challenge; a person can
// cancel the browser's dialog and use the form).
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Seconds()+0.999)))
		s.writeError(w, r, &Error{Status: http.StatusTooManyRequests, Message: te.Error()})
		return
	}
	var ae *Error
	if err != nil && !errors.Is(err, auth.ErrBadCredentials) && !errors.As(err, &ae) {
		s.writeError(w, r, err)
		return
	}
	msg := "authentication required: sign in, or send HTTP Basic credentials or a bearer token"
	if err != nil {
		msg = err.Error()
	}
	// Refused credentials were audited as login_failed; a request
	// without any (or with an unusable scheme) is a refusal of its own.
	reason := "no_credentials"
	if ae != nil && ae.reason != "" {
		reason = ae.reason
	}
	noted := errors.Is(err, auth.ErrBadCredentials)
	page := !strings.HasPrefix(r.URL.Path, "/api/") && r.Method == http.MethodGet
	if page && err == nil {
		if _, cerr := r.Cookie(formCookie); cerr == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
	}
	if !noted {
		s.noteDenied(r, http.StatusUnauthorized, reason)
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "cors", "same-origin", "websocket":
		// A script's request: a challenge would pop up the browser's
		// dialog over the UI, which handles 401 itself.
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="Custos", charset="UTF-8"`)
	}
	if page && s.LoginPage != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		web.SetPageHeaders(w.Header())
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(s.LoginPage)
		return
	}
	s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Message: msg, noted: true})
}

// appendAudit appends e, logging a failure (the caller decides whether
// the action may go on: use audit for actions that must not happen
// unrecorded).
func (s *Server) appendAudit(ctx context.Context, e audit.Entry) error {
	if _, err := s.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
		s.logger().Error("api: audit append failed", "action", e.Action, "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Message: "the audit log cannot be written, so this is refused: " + err.Error()}
	}
	return nil
}

// audit records an action of the request's principal (requestEntry). It
// returns an error (503) when the entry cannot be written: the caller
// must then not perform the action.
func (s *Server) audit(r *http.Request, action, camera string, detail map[string]string) error {
	return s.appendAudit(r.Context(), requestEntry(r, action, camera, detail))
}

// auditOnce is audit, but records one entry per key and window: a
// browser playing a recording sends many range and fragment requests,
// which are one viewing.
func (s *Server) auditOnce(r *http.Request, window time.Duration, key, action, camera string, detail map[string]string) error {
	// Per credential, not per user: each credential's use is on record
	// (an entry names the credential it was made with).
	k := whoKey(requestEntry(r, action, camera, nil)) + "\x00" + action + "\x00" + camera + "\x00" + key
	now := time.Now()
	s.recentMu.Lock()
	if s.recent == nil {
		s.recent = map[string]time.Time{}
	}
	last, seen := s.recent[k]
	if seen && now.Sub(last) < window {
		s.recentMu.Unlock()
		return nil
	}
	if len(s.recent) > 10000 {
		for k, t := range s.recent {
			if now.Sub(t) > time.Hour {
				delete(s.recent, k)
			}
		}
	}
	s.recent[k] = now
	s.recentMu.Unlock()
	if err := s.audit(r, action, camera, detail); err != nil {
		s.recentMu.Lock()
		delete(s.recent, k)
		s.recentMu.Unlock()
		return err
	}
	return nil
}

// recentAudits is embedded in Server for auditOnce.
type recentAudits struct {
	recentMu sync.Mutex
	recent   map[string]time.Time
}
