package auth

import (
	"sync"
	"time"
)

// ThrottlePolicy says how failed logins slow down further attempts for one
// key (a user name or a client address).
type ThrottlePolicy struct {
	// Free is how many failures are allowed before delays start.
	Free int
	// Base is the lockout after the first failure beyond Free; each
	// further failure doubles it, up to Max.
	Base, Max time.Duration
	// Forget is how long after its last failure a key is forgotten.
	Forget time.Duration
}

// DefaultUserThrottle and DefaultAddrThrottle: 5 free failures per user
// name and 20 per address (one office behind NAT shares an address), then
// 1 s, 2 s, 4 s … up to 15 minutes; forgotten after an hour without
// failures.
var (
	DefaultUserThrottle = ThrottlePolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
	DefaultAddrThrottle = ThrottlePolicy{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
)

// maxThrottleKeys bounds the throttle's memory; beyond it the entries
// closest to being forgotten are dropped first.
const maxThrottleKeys = 100_000

// throttle counts failures per key. Safe for concurrent use; no I/O.
type throttle struct {
	policy ThrottlePolicy
	mu     sync.Mutex
	keys   map[string]*throttleEntry
}

type throttleEntry struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
}

func newThrottle(p ThrottlePolicy) *throttle {
	return &throttle{policy: p, keys: map[string]*throttleEntry{}}
}

// wait returns how long key must wait before its next attempt (0: now).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.keys[key]
	if e == nil {
		return 0
	}
	if now.Sub(e.lastFailure) > t.policy.Forget {
		delete(t.keys, key)
		return 0
	}
	if d := e.lockedUntil.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail records a failure of key and returns the lockout it starts.
func (t *throttle) fail(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.keys[key]
	if e == nil || now.Sub(e.lastFailure) > t.policy.Forget {
		if len(t.keys) >= maxThrottleKeys {
			t.evict(now)
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
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

// reset forgets key (after a successful login).
func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// evict drops forgotten entries, or, if none, the oldest tenth.
func (t *throttle) evict(now time.Time) {
	for k, e := range t.keys {
		if now.Sub(e.lastFailure) > t.policy.Forget {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < maxThrottleKeys {
		return
	}
	cut := now.Add(-t.policy.Forget / 10)
	for k, e := range t.keys {
		if e.lastFailure.Before(cut) || len(t.keys) > maxThrottleKeys*9/10 {
			delete(t.keys, k)
		}
	}
}
