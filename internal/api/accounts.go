package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
)

// maxJSONBody bounds the JSON bodies of account routes.
const maxJSONBody = 16 << 10

// decodeJSON reads a small JSON body into v, refusing unknown fields,
// trailing data and bodies over maxJSONBody.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", maxJSONBody)}
		}
		return &Error{Status: http.StatusBadRequest, Message: "request body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Message: "request body: data after the JSON object"}
	}
	return nil
}

// authError maps an auth error to a status.
func authError(err error) error {
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		return &Error{Status: http.StatusTooManyRequests, Message: te.Error()}
	case errors.Is(err, auth.ErrBadCredentials): // audited by auditFailedLogin
		return &Error{Status: http.StatusUnauthorized, Message: err.Error(), noted: true}
	case errors.Is(err, auth.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, auth.ErrExists):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, auth.ErrLastAdmin):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	// Validation messages from auth name the problem; anything else is
	// internal.
	if msg := err.Error(); strings.HasPrefix(msg, "user name") || strings.HasPrefix(msg, "password") ||
		strings.HasPrefix(msg, "role") || strings.HasPrefix(msg, "grant") || strings.HasPrefix(msg, "permission") ||
		strings.HasPrefix(msg, "token name") {
		return &Error{Status: http.StatusBadRequest, Message: msg}
	}
	return err
}

// SessionJSON answers GET /api/session and POST /api/login.
type SessionJSON struct {
	User   string               `json:"user"`
	Role   auth.Role            `json:"role"`
	Grants map[string]auth.Perm `json:"grants"`
	// Method is how this request was authenticated: session, basic or
	// token.
	Method string `json:"method"`
	// CSRF is the value for the X-CSRF-Token header (sessions only).
	CSRF    string    `json:"csrf,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

func sessionJSON(p *principal) SessionJSON {
	out := SessionJSON{User: p.user.Name, Role: p.user.Role, Grants: p.user.Grants, Method: p.method}
	if out.Grants == nil {
		out.Grants = map[string]auth.Perm{}
	}
	if p.session != nil {
		out.CSRF, out.Expires = p.session.CSRF, p.session.Expires
	}
	return out
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, raw string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: raw, Path: "/", Expires: expires,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: "1", Path: "/", MaxAge: 400 * 24 * 3600,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// login serves POST /api/login {"user","password"}: starts a browser
// session (cookie) and returns SessionJSON. Throttled logins get 429 with
// Retry-After; every attempt that checks a password is audited.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, sess, raw, err := s.Auth.Login(r.Context(), req.User, req.Password, clientAddr(r), r.UserAgent())
	if err != nil {
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Seconds()+0.999)))
		}
		s.auditFailedLogin(r, req.User, "form", err)
		s.writeError(w, r, authError(err))
		return
	}
	p := &principal{user: u, session: &sess, method: "session"}
	if err := s.appendAudit(r.Context(), entryFor(r, p, audit.Login, "", map[string]string{"method": "form"})); err != nil {
		s.Auth.Logout(r.Context(), raw)
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, r, raw, sess.Expires)
	writeJSON(w, http.StatusOK, sessionJSON(p))
}

// logout serves POST /api/logout: ends the cookie's session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	if p.session != nil {
		c, _ := r.Cookie(sessionCookie)
		if err := s.Auth.Logout(r.Context(), c.Value); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.audit(r, audit.Logout, "", map[string]string{"method": p.method})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, sessionJSON(who(r)))
}

// SessionInfoJSON is one session in GET /api/sessions. ID is the hex
// SHA-256 of the cookie value, not the cookie value.
type SessionInfoJSON struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	Expires   time.Time `json:"expires"`
	Addr      string    `json:"addr"`
	UserAgent string    `json:"user_agent"`
	Current   bool      `json:"current"`
}

// sessions serves GET /api/sessions: an admin's lists every session,
// anyone else's only their own.
func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	all, err := s.Auth.Store().Sessions(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := time.Now()
	out := []SessionInfoJSON{}
	for _, se := range all {
		if (p.user.Role != auth.Admin && se.UserID != p.user.ID) || !now.Before(se.Expires) {
			continue
		}
		out = append(out, SessionInfoJSON{ID: hex.EncodeToString(se.IDHash), User: se.User, Created: se.Created,
			LastSeen: se.LastSeen, Expires: se.Expires, Addr: se.Addr, UserAgent: se.UserAgent,
			Current: p.session != nil && string(p.session.IDHash) == string(se.IDHash)})
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeSession serves DELETE /api/sessions/{id}: one's own, or any for
// an admin.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	h, err := hex.DecodeString(r.PathValue("id"))
	if err != nil || len(h) != 32 {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "session id must be 64 hex digits"})
		return
	}
	se, err := s.Auth.Store().SessionByHash(r.Context(), h)
	if err != nil || (p.user.Role != auth.Admin && se.UserID != p.user.ID) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: "no such session"})
		return
	}
	if err := s.Auth.Store().DeleteSession(r.Context(), h); err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	s.audit(r, audit.SessionRevoke, "", map[string]string{"user": se.User, "session": r.PathValue("id")[:12]})
	w.WriteHeader(http.StatusNoContent)
}

// UserJSON is a user in /api/users (never with the password hash).
type UserJSON struct {
	Name            string               `json:"name"`
	Role            auth.Role            `json:"role"`
	Grants          map[string]auth.Perm `json:"grants"`
	Created         time.Time            `json:"created"`
	PasswordChanged time.Time            `json:"password_changed"`
}

func userJSON(u auth.User) UserJSON {
	g := u.Grants
	if g == nil {
		g = map[string]auth.Perm{}
	}
	return UserJSON{Name: u.Name, Role: u.Role, Grants: g, Created: u.Created, PasswordChanged: u.PasswordChanged}
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	us, err := s.Auth.Store().Users(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]UserJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func grantsDetail(g map[string]auth.Perm) string {
	u := auth.User{Grants: g}
	var parts []string
	for _, gr := range u.GrantList() {
		parts = append(parts, gr.Camera+"="+gr.Perms.String())
	}
	return strings.Join(parts, " ")
}

// addUser serves POST /api/users {"name","role","password","grants"}.
func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string               `json:"name"`
		Role     auth.Role            `json:"role"`
		Password string               `json:"password"`
		Grants   map[string]auth.Perm `json:"grants"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.Auth.AddUser(r.Context(), req.Name, req.Role, req.Password, req.Grants)
	if err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	s.audit(r, audit.UserAdd, "", map[string]string{"user": u.Name, "role": string(u.Role), "grants": grantsDetail(u.Grants)})
	writeJSON(w, http.StatusCreated, userJSON(u))
}

// updateUser serves PATCH /api/users/{user} {"role"?, "grants"?}.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role   *auth.Role           `json:"role"`
		Grants map[string]auth.Perm `json:"grants"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("user")
	before, err := s.Auth.Store().UserByName(r.Context(), name)
	if err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	if req.Grants == nil && req.Role == nil {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "nothing to change: send role and/or grants"})
		return
	}
	u, err := s.Auth.Update(r.Context(), name, req.Role, req.Grants)
	if err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	if req.Role != nil && *req.Role != before.Role {
		s.audit(r, audit.UserChange, "", map[string]string{"user": name, "role": string(u.Role), "was": string(before.Role)})
	}
	if req.Grants != nil {
		s.audit(r, audit.GrantChange, "", map[string]string{"user": name, "grants": grantsDetail(u.Grants), "was": grantsDetail(before.Grants)})
	}
	writeJSON(w, http.StatusOK, userJSON(u))
}

// setPassword serves PUT /api/users/{user}/password
// {"password","current_password"}: admins set anyone's; others only
// their own. Changing one's own needs the current one (a stolen session
// cannot lock its owner out). It ends the user's sessions.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	name := r.PathValue("user")
	var req struct {
		Password        string `json:"password"`
		CurrentPassword string `json:"current_password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.user.Role != auth.Admin && name != p.user.Name {
		s.writeError(w, r, &Error{Status: http.StatusForbidden, Message: "only an admin may set another user's password"})
		return
	}
	if name == p.user.Name { // one's own, admins included: prove the current one
		if _, err := s.Auth.Authenticate(r.Context(), name, req.CurrentPassword, clientAddr(r)); err != nil {
			s.auditFailedLogin(r, name, "password change", err)
			s.writeError(w, r, authError(err))
			return
		}
	}
	if err := s.Auth.SetPassword(r.Context(), name, req.Password); err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	s.audit(r, audit.UserChange, "", map[string]string{"user": name, "change": "password"})
	w.WriteHeader(http.StatusNoContent)
}

// deleteUser serves DELETE /api/users/{user}.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	if err := s.Auth.Delete(r.Context(), name); err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	s.audit(r, audit.UserDelete, "", map[string]string{"user": name})
	w.WriteHeader(http.StatusNoContent)
}

// TokenJSON is an API token's description (never the token).
type TokenJSON struct {
	ID       int64     `json:"id"`
	User     string    `json:"user"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
	// CreatedBy is who minted the token when not its owner (an admin,
	// or local:OSUSER for custos user token).
	CreatedBy string `json:"created_by,omitempty"`
	// Token is the secret, only in the answer that created it.
	Token string `json:"token,omitempty"`
}

func tokenJSON(t auth.Token) TokenJSON {
	return TokenJSON{ID: t.ID, User: t.User, Name: t.Name, Created: t.Created, LastUsed: t.LastUsed, Expires: t.Expires,
		CreatedBy: t.CreatedBy}
}

// tokens serves GET /api/tokens: an admin's lists all, others their own.
func (s *Server) tokens(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	all, err := s.Auth.Store().Tokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []TokenJSON{}
	for _, t := range all {
		if p.user.Role == auth.Admin || t.UserID == p.user.ID {
			out = append(out, tokenJSON(t))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// addToken serves POST /api/tokens {"name","ttl_hours"?,"user"?}: a token
// for oneself (or, for an admin, for user); the answer holds the token
// once.
func (s *Server) addToken(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	var req struct {
		Name     string  `json:"name"`
		TTLHours float64 `json:"ttl_hours"`
		User     string  `json:"user"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	user := p.user.Name
	if req.User != "" && req.User != user {
		if p.user.Role != auth.Admin {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, Message: "only an admin may make tokens for another user"})
			return
		}
		user = req.User
	}
	if req.TTLHours < 0 || req.TTLHours > 24*3660 {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "ttl_hours must be between 0 (never expires) and 87840"})
		return
	}
	raw, t, err := s.Auth.MintToken(r.Context(), p.user.Name, user, req.Name, time.Duration(req.TTLHours*float64(time.Hour)))
	if err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	s.audit(r, audit.TokenAdd, "", map[string]string{"user": user, "token": req.Name, "id": strconv.FormatInt(t.ID, 10)})
	out := tokenJSON(t)
	out.Token = raw
	writeJSON(w, http.StatusCreated, out)
}

// deleteToken serves DELETE /api/tokens/{id}: one's own, or any for an
// admin.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "token id must be a number"})
		return
	}
	all, err := s.Auth.Store().Tokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, t := range all {
		if t.ID == id && (p.user.Role == auth.Admin || t.UserID == p.user.ID) {
			if err := s.Auth.Store().DeleteToken(r.Context(), id); err != nil {
				s.writeError(w, r, authError(err))
				return
			}
			s.audit(r, audit.TokenDelete, "", map[string]string{"user": t.User, "token": t.Name, "id": strconv.FormatInt(id, 10)})
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no token %d", id)})
}

// AuditJSON is one entry in GET /api/audit.
type AuditJSON struct {
	Seq    int64             `json:"seq"`
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`
	Addr   string            `json:"addr"`
	Action string            `json:"action"`
	Camera string            `json:"camera,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
	Result string            `json:"result"`
	Hash   string            `json:"hash"`
}

// auditLog serves GET /api/audit?from&to&actor&action&camera&before&limit
// (admins): entries newest first; page with before=<seq of the last>.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f audit.Filter
	var err error
	for _, tf := range []struct {
		key string
		dst *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tf.key); v != "" {
			if *tf.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s=%q is not an RFC 3339 time", tf.key, v)})
				return
			}
		}
	}
	f.Actor, f.Action, f.Camera = q.Get("actor"), q.Get("action"), q.Get("camera")
	for _, nf := range []struct {
		key string
		dst *int64
		max int64
	}{{"before", &f.BeforeSeq, 1 << 62}, {"limit", nil, 1000}} {
		v := q.Get(nf.key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > nf.max {
			s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s=%q: want a number from 1 to %d", nf.key, v, nf.max)})
			return
		}
		if nf.dst != nil {
			*nf.dst = n
		} else {
			f.Limit = int(n)
		}
	}
	entries, err := s.Audit.Query(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditOnce(r, 10*time.Minute, "", audit.AuditRead, "", nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]AuditJSON, 0, len(entries))
	for _, e := range entries {
		out = append(out, AuditJSON{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Addr: e.Addr, Action: e.Action,
			Camera: e.Camera, Detail: e.Detail, Result: e.Result, Hash: hex.EncodeToString(e.Hash)})
	}
	writeJSON(w, http.StatusOK, out)
}
