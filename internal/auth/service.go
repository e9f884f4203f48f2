package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Errors of the Service, returned (wrapped) to callers who map them to
// HTTP statuses.
var (
	// ErrBadCredentials: unknown user, wrong password, unknown or expired
	// session or token. Deliberately does not say which.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrLastAdmin: the change would leave no admin.
	ErrLastAdmin = errors.New("the last admin cannot be removed or demoted")
)

// ThrottledError is returned while a user name or address is locked out
// after failed logins, or has as many attempts in progress as it may; no
// password or token is checked meanwhile.
type ThrottledError struct {
	// Key is "user NAME", "user NAME from ADDR" or "address ADDR",
	// possibly followed by " (attempts in progress)".
	Key        string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins for %s: try again in %s", e.Key, e.RetryAfter.Round(time.Second))
}

// Options configure a Service; zero values take the defaults.
type Options struct {
	Now  func() time.Time
	Hash HashParams
	// PairThrottle counts failures of one user name from one address,
	// AddrThrottle of one address, UserThrottle of one user name from
	// every address (see DefaultPairThrottle).
	PairThrottle ThrottlePolicy
	AddrThrottle ThrottlePolicy
	UserThrottle ThrottlePolicy
	// MaxThrottleKeys bounds each table of throttle counters (default
	// 100,000 entries).
	MaxThrottleKeys int
	// SessionIdle ends a session not used for this long (default 7 days);
	// SessionMax ends it this long after login regardless (30 days).
	SessionIdle, SessionMax time.Duration
	// MaxHashing bounds concurrent password checks (default 2), so that
	// a burst of logins cannot exhaust memory (19 MiB each).
	MaxHashing int
}

// Service authenticates requests and manages accounts. Safe for concurrent
// use; its methods do I/O on the Store and may block on password hashing.
type Service struct {
	st       Store
	now      func() time.Time
	hash     HashParams
	lim      *limiter
	idle     time.Duration
	max      time.Duration
	hashing  chan struct{}
	dummy    string // a hash checked for unknown users, to equalise timing
	cacheKey []byte

	mu         sync.Mutex
	basicCache map[[32]byte]basicEntry
	// basicCalls are the Basic checks in progress, by credential and
	// address: concurrent requests with the same credential (a kiosk's
	// first page load) share one check instead of each taking a slot
	// of the throttle's budget.
	basicCalls map[string]*basicCall
}

// basicCall is a Basic check in progress; done closes when u and err
// are set.
type basicCall struct {
	done chan struct{}
	u    User
	err  error
}

// basicEntry remembers a Basic credential already checked, so that a
// kiosk's hundreds of requests do not each cost an argon2id hash.
type basicEntry struct {
	userID       int64
	passwordHash string
	expires      time.Time
}

const (
	basicCacheTTL  = 5 * time.Minute
	basicCacheSize = 1000
)

// New returns a Service on st.
func New(st Store, o Options) (*Service, error) {
	s := &Service{st: st, now: o.Now, hash: o.Hash, idle: o.SessionIdle, max: o.SessionMax,
		basicCache: map[[32]byte]basicEntry{}, basicCalls: map[string]*basicCall{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.hash == (HashParams{}) {
		s.hash = DefaultHashParams
	}
	if o.PairThrottle == (ThrottlePolicy{}) {
		o.PairThrottle = DefaultPairThrottle
	}
	if o.AddrThrottle == (ThrottlePolicy{}) {
		o.AddrThrottle = DefaultAddrThrottle
	}
	if o.UserThrottle == (ThrottlePolicy{}) {
		o.UserThrottle = DefaultUserThrottle
	}
	s.lim = newLimiter(o.PairThrottle, o.AddrThrottle, o.UserThrottle, o.MaxThrottleKeys)
	if s.idle == 0 {
		s.idle = 7 * 24 * time.Hour
	}
	if s.max == 0 {
		s.max = 30 * 24 * time.Hour
	}
	if o.MaxHashing <= 0 {
		o.MaxHashing = 2
	}
	s.hashing = make(chan struct{}, o.MaxHashing)
	s.cacheKey = make([]byte, 32)
	if _, err := rand.Read(s.cacheKey); err != nil {
		return nil, fmt.Errorf("auth: random key: %w", err)
	}
	var err error
	if s.dummy, err = HashPassword("not a password", s.hash); err != nil {
		return nil, err
	}
	return s, nil
}

// Bootstrap creates user "admin" when there is no user at all: with
// password when it is not empty, else with a random one that it returns
// (to be printed once). created is false when users already exist.
func (s *Service) Bootstrap(ctx context.Context, password string) (created bool, generated string, err error) {
	users, err := s.st.Users(ctx)
	if err != nil {
		return false, "", fmt.Errorf("auth: list users: %w", err)
	}
	if len(users) > 0 {
		return false, "", nil
	}
	if password == "" {
		generated = randomString(18)
		password = generated
	}
	if _, err := s.AddUser(ctx, "admin", Admin, password, nil); err != nil {
		return false, "", fmt.Errorf("auth: create the first admin: %w", err)
	}
	return true, generated, nil
}

// checkPassword hashes under the concurrency bound.
func (s *Service) checkPassword(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return CheckPassword(hash, pw)
}

// Authenticate checks a user name and password from addr, applying the
// throttles (DefaultPairThrottle): the attempt is reserved before any
// hashing, and while the pair, the address or (for an address that has
// failed before) the user name is locked out, or the attempts in
// progress use up the budget, it returns a *ThrottledError without
// checking the password. Wrong credentials are ErrBadCredentials and
// count against the pair, the address and the user name; unknown names
// cost the same hash as known ones.
func (s *Service) Authenticate(ctx context.Context, name, password, addr string) (User, error) {
	res, err := s.lim.reservePassword(name, addr, s.now())
	if err != nil {
		return User{}, err
	}
	o := unchecked
	defer func() { s.lim.done(res, o, s.now()) }()
	if len(password) > MaxPasswordLen || len(name) > 64 {
		o = failed
		return User{}, ErrBadCredentials
	}
	u, err := s.st.UserByName(ctx, name)
	hash := u.PasswordHash
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return User{}, fmt.Errorf("auth: look up user: %w", err)
		}
		hash = s.dummy
	}
	ok, herr := s.checkPassword(ctx, hash, password)
	if herr != nil && ctx.Err() != nil {
		return User{}, ctx.Err()
	}
	if err != nil || herr != nil || !ok {
		o = failed
		return User{}, ErrBadCredentials
	}
	o = succeeded
	return u, nil
}

// Unlock forgets the failed logins of user name: its count over every
// address and its count from each address (address counters stay). It
// does no I/O; the caller audits it.
func (s *Service) Unlock(name string) { s.lim.unlock(name) }

// Login authenticates and starts a browser session. It returns the
// session and the raw ID for the cookie (never stored).
func (s *Service) Login(ctx context.Context, name, password, addr, userAgent string) (User, Session, string, error) {
	u, err := s.Authenticate(ctx, name, password, addr)
	if err != nil {
		return User{}, Session{}, "", err
	}
	raw := randomString(32)
	now := s.now()
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	sess := Session{IDHash: digest(raw), UserID: u.ID, User: u.Name, CSRF: randomString(24),
		Created: now, LastSeen: now, Expires: now.Add(s.idle), Addr: addr, UserAgent: userAgent}
	if err := s.st.AddSession(ctx, sess); err != nil {
		return User{}, Session{}, "", fmt.Errorf("auth: save session: %w", err)
	}
	s.st.DeleteExpiredSessions(ctx, now) // housekeeping; a failure only leaves dead rows
	return u, sess, raw, nil
}

// SessionHash returns the stored form of a raw session ID.
func SessionHash(raw string) []byte { return digest(raw) }

// Session resolves a session cookie's raw ID to its user, extending the
// idle expiry (at most once a minute, to spare writes). Unknown or
// expired sessions are ErrBadCredentials.
func (s *Service) Session(ctx context.Context, raw string) (User, Session, error) {
	if raw == "" || len(raw) > 128 {
		return User{}, Session{}, ErrBadCredentials
	}
	sess, err := s.st.SessionByHash(ctx, digest(raw))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, Session{}, ErrBadCredentials
		}
		return User{}, Session{}, fmt.Errorf("auth: look up session: %w", err)
	}
	now := s.now()
	if !now.Before(sess.Expires) || now.Sub(sess.Created) >= s.max {
		s.st.DeleteSession(ctx, sess.IDHash)
		return User{}, Session{}, ErrBadCredentials
	}
	u, err := s.st.UserByID(ctx, sess.UserID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, Session{}, ErrBadCredentials
		}
		return User{}, Session{}, fmt.Errorf("auth: look up session user: %w", err)
	}
	if now.Sub(sess.LastSeen) > time.Minute {
		sess.LastSeen = now
		sess.Expires = minTime(now.Add(s.idle), sess.Created.Add(s.max))
		if err := s.st.TouchSession(ctx, sess.IDHash, sess.LastSeen, sess.Expires); err != nil {
			return User{}, Session{}, fmt.Errorf("auth: touch session: %w", err)
		}
	}
	return u, sess, nil
}

// Logout ends the session with this raw ID (no error if it is gone).
func (s *Service) Logout(ctx context.Context, raw string) error {
	if err := s.st.DeleteSession(ctx, digest(raw)); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("auth: delete session: %w", err)
	}
	return nil
}

// Basic checks HTTP Basic credentials like Authenticate, remembering a
// success for a few minutes (keyed by a keyed hash of name and password,
// dropped when the password changes) so that repeated requests do not
// each hash a password. Concurrent checks of the same credential from
// the same address wait for the first one's result.
func (s *Service) Basic(ctx context.Context, name, password, addr string) (User, error) {
	mac := hmac.New(sha256.New, s.cacheKey)
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var key [32]byte
	copy(key[:], mac.Sum(nil))
	now := s.now()
	s.mu.Lock()
	e, ok := s.basicCache[key]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		u, err := s.st.UserByID(ctx, e.userID)
		if err == nil && u.PasswordHash == e.passwordHash {
			return u, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return User{}, fmt.Errorf("auth: look up user: %w", err)
		}
		s.mu.Lock()
		delete(s.basicCache, key)
		s.mu.Unlock()
	}
	ck := string(key[:]) + addr
	s.mu.Lock()
	if c := s.basicCalls[ck]; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.u, c.err
		case <-ctx.Done():
			return User{}, ctx.Err()
		}
	}
	c := &basicCall{done: make(chan struct{})}
	s.basicCalls[ck] = c
	s.mu.Unlock()
	u, err := s.Authenticate(ctx, name, password, addr)
	c.u, c.err = u, err
	s.mu.Lock()
	delete(s.basicCalls, ck)
	s.mu.Unlock()
	close(c.done)
	if err != nil {
		return User{}, err
	}
	s.mu.Lock()
	if len(s.basicCache) >= basicCacheSize {
		for k, v := range s.basicCache {
			if !now.Before(v.expires) || len(s.basicCache) >= basicCacheSize {
				delete(s.basicCache, k)
			}
		}
	}
	s.basicCache[key] = basicEntry{userID: u.ID, passwordHash: u.PasswordHash, expires: now.Add(basicCacheTTL)}
	s.mu.Unlock()
	return u, nil
}

// TokenPrefix starts every API token, so that leaked tokens are easy to
// find in code and logs.
const TokenPrefix = "custos_"

// NewToken creates an API token for the user; the raw token is returned
// once and only its hash is stored. ttl 0 never expires.
func (s *Service) NewToken(ctx context.Context, user, name string, ttl time.Duration) (string, Token, error) {
	return s.MintToken(ctx, "", user, name, ttl)
}

// MintToken is NewToken made by minter on behalf of user: minter is
// stored as Token.CreatedBy (unless it is user) and named on every audit
// entry made with the token.
func (s *Service) MintToken(ctx context.Context, minter, user, name string, ttl time.Duration) (string, Token, error) {
	u, err := s.st.UserByName(ctx, user)
	if err != nil {
		return "", Token{}, fmt.Errorf("auth: user %q: %w", user, err)
	}
	if name == "" || len(name) > 100 {
		return "", Token{}, fmt.Errorf("token name must be 1 to 100 characters")
	}
	raw := TokenPrefix + randomString(32)
	now := s.now()
	t := Token{UserID: u.ID, User: u.Name, Name: name, Hash: digest(raw), Created: now}
	if minter != u.Name {
		t.CreatedBy = minter
	}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	if err := s.st.AddToken(ctx, &t); err != nil {
		return "", Token{}, fmt.Errorf("auth: save token: %w", err)
	}
	return raw, t, nil
}

// TokenUser resolves a raw bearer token sent from addr. Unknown or
// expired tokens are ErrBadCredentials and count as failures of addr
// (AddrThrottle); while addr is locked out, or has as many checks in
// progress as it may, it returns a *ThrottledError without looking the
// token up.
func (s *Service) TokenUser(ctx context.Context, raw, addr string) (User, Token, error) {
	res, err := s.lim.reserveAddr(addr, s.now())
	if err != nil {
		return User{}, Token{}, err
	}
	o := unchecked
	defer func() { s.lim.done(res, o, s.now()) }()
	if !strings.HasPrefix(raw, TokenPrefix) || len(raw) > 128 {
		o = failed
		return User{}, Token{}, ErrBadCredentials
	}
	t, err := s.st.TokenByHash(ctx, digest(raw))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			o = failed
			return User{}, Token{}, ErrBadCredentials
		}
		return User{}, Token{}, fmt.Errorf("auth: look up token: %w", err)
	}
	now := s.now()
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		o = failed
		return User{}, Token{}, ErrBadCredentials
	}
	u, err := s.st.UserByID(ctx, t.UserID)
	if err != nil {
		o = failed
		return User{}, Token{}, ErrBadCredentials
	}
	o = succeeded
	if now.Sub(t.LastUsed) > time.Minute {
		t.LastUsed = now
		if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
			return User{}, Token{}, fmt.Errorf("auth: touch token: %w", err)
		}
	}
	return u, t, nil
}

// AddUser validates and creates a user.
func (s *Service) AddUser(ctx context.Context, name string, role Role, password string, grants map[string]Perm) (User, error) {
	if err := ValidName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if err := ValidPassword(password); err != nil {
		return User{}, err
	}
	if err := validGrants(grants); err != nil {
		return User{}, err
	}
	h, err := HashPassword(password, s.hash)
	if err != nil {
		return User{}, err
	}
	now := s.now()
	u := User{Name: name, Role: role, PasswordHash: h, Grants: grants, Created: now, PasswordChanged: now}
	if err := s.st.AddUser(ctx, &u); err != nil {
		return User{}, fmt.Errorf("add user %q: %w", name, err)
	}
	return u, nil
}

func validGrants(g map[string]Perm) error {
	for c, p := range g {
		if c == "" || len(c) > 64 {
			return fmt.Errorf("grant camera %q: want a camera name or %q", c, AllCameras)
		}
		if p&^PermAll != 0 {
			return fmt.Errorf("grant %q: unknown permission bits", c)
		}
	}
	return nil
}

// SetPassword changes a user's password and ends all their sessions.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	if err := ValidPassword(password); err != nil {
		return err
	}
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if u.PasswordHash, err = HashPassword(password, s.hash); err != nil {
		return err
	}
	u.PasswordChanged = s.now()
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if err := s.st.DeleteUserSessions(ctx, u.ID); err != nil {
		return fmt.Errorf("user %q: end sessions: %w", name, err)
	}
	return nil
}

// Update changes a user's role and/or grants (nil leaves them as they
// are) and returns the user as saved. Demoting the last admin is
// ErrLastAdmin.
func (s *Service) Update(ctx context.Context, name string, role *Role, grants map[string]Perm) (User, error) {
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	if role != nil {
		if _, err := ParseRole(string(*role)); err != nil {
			return User{}, err
		}
		if u.Role == Admin && *role != Admin {
			if err := s.keepAnAdmin(ctx, u.ID); err != nil {
				return User{}, err
			}
		}
		u.Role = *role
	}
	if grants != nil {
		if err := validGrants(grants); err != nil {
			return User{}, err
		}
		u.Grants = grants
	}
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
}

// Delete removes a user, their sessions and tokens. The last admin cannot
// be deleted.
func (s *Service) Delete(ctx context.Context, name string) error {
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if u.Role == Admin {
		if err := s.keepAnAdmin(ctx, u.ID); err != nil {
			return err
		}
	}
	if err := s.st.DeleteUser(ctx, u.ID); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	return nil
}

// keepAnAdmin fails unless an admin other than id exists.
func (s *Service) keepAnAdmin(ctx context.Context, id int64) error {
	users, err := s.st.Users(ctx)
	if err != nil {
		return err
	}
	for _, o := range users {
		if o.Role == Admin && o.ID != id {
			return nil
		}
	}
	return ErrLastAdmin
}

// Store returns the underlying store (for listings).
func (s *Service) Store() Store { return s.st }

func digest(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// randomString returns n random bytes, URL-safe base64 encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: crypto/rand failed: %v", err)) // cannot happen on Linux ≥ 3.17
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
