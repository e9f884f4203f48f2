// Package auth holds Custos's accounts: users with a role and per-camera
// grants, argon2id password hashes, browser sessions, API tokens, HTTP
// Basic credentials and login throttling. It decides who a request is and
// what they may do; internal/api applies it to every route and
// internal/audit records what they did. Persistence is behind Store
// (sqlite.Store implements it).
package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Role is a user's role.
type Role string

// Roles. Admins may do everything on every camera, manage users and read
// the audit log. Operators may in addition to their grants probe cameras
// and see storage status, and manage the cameras on which they hold every
// permission (adding one takes every permission on AllCameras). Viewers
// have only their grants.
const (
	Admin    Role = "admin"
	Operator Role = "operator"
	Viewer   Role = "viewer"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Admin, Operator, Viewer:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want admin, operator or viewer", s)
}

// AtLeast reports whether r has at least the rights of min (viewer <
// operator < admin).
func (r Role) AtLeast(min Role) bool { return rank(r) >= rank(min) }

func rank(r Role) int {
	switch r {
	case Admin:
		return 3
	case Operator:
		return 2
	case Viewer:
		return 1
	}
	return 0
}

// Perm is a set of per-camera permissions.
type Perm uint8

// Permissions a grant can carry.
const (
	// PermLive: watch the camera live.
	PermLive Perm = 1 << iota
	// PermRecordings: the timeline, playback and thumbnails.
	PermRecordings
	// PermExport: download clips and evidence exports (whole files).
	PermExport
	// PermLock: set evidence locks, which retention never deletes.
	PermLock

	PermAll = PermLive | PermRecordings | PermExport | PermLock
)

var permNames = []struct {
	p    Perm
	name string
}{{PermLive, "live"}, {PermRecordings, "recordings"}, {PermExport, "export"}, {PermLock, "lock"}}

// ParsePerms parses a comma-separated list of live, recordings, export
// and lock; "all" is all four. An empty string is no permission.
// Grants stored before lock existed keep what they had (no lock).
func ParsePerms(s string) (Perm, error) {
	var p Perm
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "all" {
			p |= PermAll
			continue
		}
		found := false
		for _, pn := range permNames {
			if pn.name == f {
				p |= pn.p
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("permission %q: want live, recordings, export, lock or all", f)
		}
	}
	return p, nil
}

// String lists the permissions, comma-separated, in a fixed order.
func (p Perm) String() string {
	var parts []string
	for _, pn := range permNames {
		if p&pn.p != 0 {
			parts = append(parts, pn.name)
		}
	}
	return strings.Join(parts, ",")
}

// MarshalText makes Perm a JSON string.
func (p Perm) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses what MarshalText writes.
func (p *Perm) UnmarshalText(b []byte) error {
	v, err := ParsePerms(string(b))
	*p = v
	return err
}

// AllCameras is the grant key that covers every camera, present and
// future.
const AllCameras = "*"

// User is an account. PasswordHash is an argon2id PHC string; it never
// leaves the server.
type User struct {
	ID           int64
	Name         string
	Role         Role
	PasswordHash string
	// Grants maps a camera name (or AllCameras) to what the user may do
	// with it. Admins need none.
	Grants          map[string]Perm
	Created         time.Time
	PasswordChanged time.Time
}

// Can reports whether u may do every permission in p on camera.
func (u *User) Can(camera string, p Perm) bool {
	if u.Role == Admin {
		return true
	}
	have := u.Grants[camera] | u.Grants[AllCameras]
	return p != 0 && have&p == p
}

// CanAny reports whether u has any permission on camera (to list it).
func (u *User) CanAny(camera string) bool {
	return u.Role == Admin || u.Grants[camera]|u.Grants[AllCameras] != 0
}

// GrantList returns the grants sorted by camera, for display.
func (u *User) GrantList() []Grant {
	out := make([]Grant, 0, len(u.Grants))
	for c, p := range u.Grants {
		out = append(out, Grant{Camera: c, Perms: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Camera < out[j].Camera })
	return out
}

// Grant is one camera's permissions.
type Grant struct {
	Camera string `json:"camera"`
	Perms  Perm   `json:"perms"`
}

// Session is a browser session. The cookie holds a random ID; only its
// SHA-256 is stored.
type Session struct {
	IDHash []byte
	UserID int64
	// User is the user's name (filled by reads).
	User string
	// CSRF is the token the UI must echo in X-CSRF-Token on every
	// state-changing request.
	CSRF      string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time
	Addr      string
	UserAgent string
}

// Token is an API token for scripts. Only its SHA-256 is stored.
type Token struct {
	ID     int64
	UserID int64
	// User is the owner's name (filled by reads).
	User     string
	Name     string
	Hash     []byte
	Created  time.Time
	LastUsed time.Time
	// Expires is zero for a token that never expires.
	Expires time.Time
	// CreatedBy is who minted the token when not its owner: an admin's
	// user name, or "local:OSUSER" for custos user token; "" for one's
	// own.
	CreatedBy string
}

// Errors returned (wrapped) by Store implementations and the Service.
var (
	ErrNotFound = errors.New("auth: not found")
	ErrExists   = errors.New("auth: already exists")
)

// Store persists accounts. Methods are safe for concurrent use and do
// I/O. Lookups of missing rows return an error wrapping ErrNotFound.
type Store interface {
	// AddUser inserts u with its grants and sets u.ID; a taken name is
	// ErrExists.
	AddUser(ctx context.Context, u *User) error
	// UpdateUser rewrites the role, password hash, password-changed time
	// and grants (replacing all of them) of the user with u.ID.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser deletes the user and, with it, their grants, sessions
	// and tokens.
	DeleteUser(ctx context.Context, id int64) error
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// Users lists every user, ordered by name.
	Users(ctx context.Context) ([]User, error)

	AddSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, idHash []byte) (Session, error)
	// TouchSession moves a session's last-seen and expiry times.
	TouchSession(ctx context.Context, idHash []byte, lastSeen, expires time.Time) error
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions ends every session of a user (password change).
	DeleteUserSessions(ctx context.Context, userID int64) error
	// Sessions lists every session (expired ones included), newest first.
	Sessions(ctx context.Context) ([]Session, error)
	// DeleteExpiredSessions drops sessions that expired before t.
	DeleteExpiredSessions(ctx context.Context, t time.Time) error

	// AddToken inserts t and sets t.ID.
	AddToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	TouchToken(ctx context.Context, id int64, lastUsed time.Time) error
	DeleteToken(ctx context.Context, id int64) error
	// Tokens lists every token, ordered by ID.
	Tokens(ctx context.Context) ([]Token, error)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName checks a user name: 1 to 64 letters, digits, '.', '_', '@'
// or '-', starting with a letter or digit.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("user name %q: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Password length limits. The upper bound keeps hashing cheap to refuse.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// ValidPassword checks a new password's length (counted in characters
// for the minimum, bytes for the maximum).
func ValidPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLen {
		return fmt.Errorf("password too short: at least %d characters", MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return fmt.Errorf("password too long: at most %d bytes", MaxPasswordLen)
	}
	return nil
}
