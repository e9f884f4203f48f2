package auth

import (
	"strings"
	"sync"
	"time"
)

// ThrottlePolicy says how failed logins slow down further attempts for one
// key (a user name from one address, a client address, or a user name
// from anywhere).
type ThrottlePolicy struct {
	// Free is how many failures are allowed before lockouts start. It is
	// also how many attempts of one key may be checked at once while the
	// key has no failures: attempts beyond that get a *ThrottledError
	// before any password is hashed.
	Free int
	// Base is the lockout after the first failure beyond Free; each
	// further failure doubles it, up to Max.
	Base, Max time.Duration
	// Forget is how long after its last failure a key is forgotten.
	Forget time.Duration
}

// The default policies. A user name from one address (the pair) has 5
// free failures, an address 20 (one office behind NAT shares one), then
// 1 s, 2 s, 4 s … up to 15 minutes of lockout for that pair or address.
// A user name counted over every address has 10 free failures; beyond
// them it is "under attack" and every address that has itself failed is
// locked out for the user's lockout, but an address without failures is
// never refused the right password (it gets one attempt at a time). All
// are forgotten an hour after their last failure.
var (
	DefaultPairThrottle = ThrottlePolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
	DefaultAddrThrottle = ThrottlePolicy{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
	DefaultUserThrottle = ThrottlePolicy{Free: 10, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
)

// defaultMaxThrottleKeys bounds each table of the limiter; beyond it the
// entries closest to being forgotten are dropped first.
const defaultMaxThrottleKeys = 100_000

// busyRetry is the Retry-After of an attempt refused because the key's
// budget of attempts in progress is used up.
const busyRetry = time.Second

// limiter holds the failure counters of password and token checks. Every
// method takes the one mutex, so reserving several keys is atomic. No I/O;
// safe for concurrent use.
type limiter struct {
	mu   sync.Mutex
	pair table // "name\x00addr"
	addr table // addr
	user table // name
	// good remembers user names that signed in from an address
	// ("name\x00addr"): an address lockout does not refuse them (one
	// person's office behind NAT keeps working while someone else there
	// sprays names); the pair's own counter still applies.
	good map[string]time.Time
	max  int
}

// table is one map of counters with its policy. Guarded by limiter.mu.
type table struct {
	policy ThrottlePolicy
	keys   map[string]*throttleEntry
}

type throttleEntry struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
	// inflight counts reserved attempts not yet done.
	inflight int
}

func newLimiter(pair, addr, user ThrottlePolicy, max int) *limiter {
	if max <= 0 {
		max = defaultMaxThrottleKeys
	}
	mk := func(p ThrottlePolicy) table { return table{policy: p, keys: map[string]*throttleEntry{}} }
	return &limiter{pair: mk(pair), addr: mk(addr), user: mk(user), good: map[string]time.Time{}, max: max}
}

// reservation is a set of reserved keys; done releases it.
type reservation struct {
	pair, addr, user string // "" when not reserved
}

// outcome of a reserved attempt.
type outcome int

const (
	unchecked outcome = iota // nothing was decided (a store error, a cancelled request)
	failed
	succeeded
)

func pairKey(name, addr string) string { return strings.ToLower(name) + "\x00" + addr }

// reservePassword reserves an attempt of name from addr, or returns a
// *ThrottledError: while addr or the pair is locked out; while name is
// under attack and locked out and addr has failed before; or while the
// attempts in progress already use the pair's or the address's budget
// (what is left of its free failures, at least one).
func (l *limiter) reservePassword(name, addr string, now time.Time) (reservation, error) {
	pk, uk := pairKey(name, addr), strings.ToLower(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	pe, ae, ue := l.pair.get(pk, now), l.addr.get(addr, now), l.user.get(uk, now)
	if d := ae.locked(now); d > 0 && !l.isGood(pk, now) {
		return reservation{}, &ThrottledError{Key: "address " + addr, RetryAfter: d}
	}
	if d := pe.locked(now); d > 0 {
		return reservation{}, &ThrottledError{Key: "user " + name + " from " + addr, RetryAfter: d}
	}
	addrFailed := pe.failed() || ae.failed()
	if d := ue.locked(now); d > 0 && addrFailed {
		return reservation{}, &ThrottledError{Key: "user " + name, RetryAfter: d}
	}
	pb := l.pair.budget(pe)
	if ue != nil && ue.failures >= l.user.policy.Free {
		pb = 1 // under attack: one attempt at a time per address
	}
	if pe.busy() >= pb {
		return reservation{}, &ThrottledError{Key: "user " + name + " from " + addr + " (attempts in progress)", RetryAfter: busyRetry}
	}
	if ae.busy() >= l.addr.budget(ae) && !l.isGood(pk, now) {
		return reservation{}, &ThrottledError{Key: "address " + addr + " (attempts in progress)", RetryAfter: busyRetry}
	}
	l.pair.ensure(pk, now, l.max).inflight++
	l.addr.ensure(addr, now, l.max).inflight++
	return reservation{pair: pk, addr: addr, user: uk}, nil
}

// reserveAddr reserves an attempt from addr alone (a bearer token), with
// the address's lockout and budget.
func (l *limiter) reserveAddr(addr string, now time.Time) (reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ae := l.addr.get(addr, now)
	if d := ae.locked(now); d > 0 {
		return reservation{}, &ThrottledError{Key: "address " + addr, RetryAfter: d}
	}
	if ae.busy() >= l.addr.budget(ae) {
		return reservation{}, &ThrottledError{Key: "address " + addr + " (attempts in progress)", RetryAfter: busyRetry}
	}
	l.addr.ensure(addr, now, l.max).inflight++
	return reservation{addr: addr}, nil
}

// done releases r and records its outcome: a failure counts against
// every key of r (and the user name, for a password), a success clears
// the pair, takes the pair's failures off the user's count and remembers
// the pair as good.
func (l *limiter) done(r reservation, o outcome, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pairFailures int
	if r.pair != "" {
		if e := l.pair.keys[r.pair]; e != nil {
			e.inflight--
			pairFailures = e.failures
		}
	}
	if r.addr != "" {
		if e := l.addr.keys[r.addr]; e != nil {
			e.inflight--
		}
	}
	switch o {
	case failed:
		if r.pair != "" {
			l.pair.fail(r.pair, now, l.max)
		}
		if r.addr != "" {
			l.addr.fail(r.addr, now, l.max)
		}
		if r.user != "" {
			l.user.fail(r.user, now, l.max)
		}
	case succeeded:
		if e := l.pair.keys[r.pair]; e != nil {
			e.failures, e.lockedUntil = 0, time.Time{}
		}
		if e := l.user.keys[r.user]; e != nil {
			e.failures = max(0, e.failures-pairFailures)
			if e.failures <= l.user.policy.Free {
				e.lockedUntil = time.Time{}
			}
			l.user.tidy(r.user)
		}
		if r.pair != "" {
			if len(l.good) >= l.max {
				for k := range l.good { // drop an arbitrary tenth
					delete(l.good, k)
					if len(l.good) < l.max*9/10 {
						break
					}
				}
			}
			l.good[r.pair] = now
		}
	}
	l.pair.tidy(r.pair)
	l.addr.tidy(r.addr)
}

// isGood reports whether the pair signed in within the address policy's
// Forget window times 24 (a day by default).
func (l *limiter) isGood(pk string, now time.Time) bool {
	t, ok := l.good[pk]
	return ok && now.Sub(t) < 24*l.addr.policy.Forget
}

// unlock forgets every counter of user name: its count over all
// addresses and each of its pairs. Address counters stay.
func (l *limiter) unlock(name string) {
	uk := strings.ToLower(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.user.keys[uk]; e != nil {
		e.failures, e.lockedUntil = 0, time.Time{}
		l.user.tidy(uk)
	}
	prefix := uk + "\x00"
	for k, e := range l.pair.keys {
		if strings.HasPrefix(k, prefix) {
			e.failures, e.lockedUntil = 0, time.Time{}
			l.pair.tidy(k)
		}
	}
}

// size returns the number of entries of each table (for tests).
func (l *limiter) size() (pair, addr, user int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pair.keys), len(l.addr.keys), len(l.user.keys)
}

func (e *throttleEntry) locked(now time.Time) time.Duration {
	if e == nil {
		return 0
	}
	return max(0, e.lockedUntil.Sub(now))
}

func (e *throttleEntry) failed() bool { return e != nil && e.failures > 0 }

func (e *throttleEntry) busy() int {
	if e == nil {
		return 0
	}
	return e.inflight
}

// budget is how many attempts of a key may be in progress at once: what
// is left of its free failures, at least one.
func (t *table) budget(e *throttleEntry) int {
	f := 0
	if e != nil {
		f = e.failures
	}
	return max(1, t.policy.Free-f)
}

// get returns key's entry, or nil; an entry whose failures are forgotten
// is reset first.
func (t *table) get(key string, now time.Time) *throttleEntry {
	e := t.keys[key]
	if e != nil && e.failures > 0 && now.Sub(e.lastFailure) > t.policy.Forget {
		e.failures, e.lockedUntil = 0, time.Time{}
		if t.tidy(key) {
			return nil
		}
	}
	return e
}

// ensure returns key's entry, creating it (and evicting if the table is
// full).
func (t *table) ensure(key string, now time.Time, max int) *throttleEntry {
	e := t.get(key, now)
	if e == nil {
		if len(t.keys) >= max {
			t.evict(now, max)
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
	return e
}

// fail records a failure of key and returns the lockout it starts.
func (t *table) fail(key string, now time.Time, max int) time.Duration {
	e := t.ensure(key, now, max)
	e.failures++
	e.lastFailure = now
	over := e.failures - t.policy.Free
	if over <= 0 {
		return 0
	}
	d := t.policy.Base
	for i := 1; i < over && d < t.policy.Max; i++ {
		d *= 2
	}
	d = min(d, t.policy.Max)
	e.lockedUntil = now.Add(d)
	return d
}

// tidy drops key's entry when it holds nothing; it reports whether it did.
func (t *table) tidy(key string) bool {
	e := t.keys[key]
	if e != nil && e.failures == 0 && e.inflight <= 0 {
		delete(t.keys, key)
		return true
	}
	return false
}

// evict drops forgotten entries, or, if none, the oldest failures first:
// those older than a tenth of Forget, then any until the table is at 90 %.
// Entries with attempts in progress stay.
func (t *table) evict(now time.Time, max int) {
	for k, e := range t.keys {
		if e.inflight <= 0 && now.Sub(e.lastFailure) > t.policy.Forget {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < max {
		return
	}
	cut := now.Add(-t.policy.Forget / 10)
	for k, e := range t.keys {
		if e.inflight <= 0 && (e.lastFailure.Before(cut) || len(t.keys) > max*9/10) {
			delete(t.keys, k)
		}
	}
}
