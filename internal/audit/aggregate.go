package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"
)

// Detail keys of aggregated entries (docs/security.md, "Entries").
const (
	// DetailCount is how many occurrences the entry stands for.
	DetailCount = "count"
	// DetailFirst and DetailLast are the times of the first and last of
	// them (RFC 3339, UTC), on entries with a count above one.
	DetailFirst = "first"
	DetailLast  = "last"
	// DetailReason is "overflow" on the entry of occurrences that found
	// the aggregation table full (their own keys are not kept).
	DetailReason = "reason"
)

// Appender appends an entry (a *Log).
type Appender interface {
	Append(ctx context.Context, e Entry) (Entry, error)
}

// Aggregator folds repeated entries (refused logins and requests) into
// one entry per key and window, so that a flood of them cannot fill the
// disk: the first occurrence of a key that was quiet for a window is
// appended at once (count 1); later ones within the window are counted
// and appended as one entry (count, first, last) when the window ends.
// A key kept busy costs one entry per window. At most MaxKeys keys are
// kept; occurrences of further keys are counted in one entry per action
// with reason overflow, their actor and address left empty.
//
// Set the exported fields before first use; safe for concurrent use
// after that. Note appends (I/O) for the first occurrence only; Flush
// appends the ended windows and must be called periodically (Run) and
// with all set at shutdown, or the counts of the last window are lost.
type Aggregator struct {
	Log Appender
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Window is the aggregation period (default one minute).
	Window time.Duration
	// MaxKeys bounds the keys kept (default 256).
	MaxKeys int
	// Logger receives Run's append failures (default slog.Default()).
	Logger *slog.Logger

	mu       sync.Mutex
	keys     map[string]*aggState
	overflow map[string]*aggState // by action
}

// aggState is one key's current window.
type aggState struct {
	e     Entry
	start time.Time
	// count occurrences not yet appended, between first and last.
	count       int
	first, last time.Time
}

func (a *Aggregator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Aggregator) window() time.Duration {
	if a.Window > 0 {
		return a.Window
	}
	return time.Minute
}

func (a *Aggregator) maxKeys() int {
	if a.MaxKeys > 0 {
		return a.MaxKeys
	}
	return 256
}

// Note records one occurrence of e under key (which must determine e's
// actor, address, action, camera and detail). It returns the error of
// appending e when this occurrence is appended at once; otherwise it
// does no I/O.
func (a *Aggregator) Note(ctx context.Context, key string, e Entry) error {
	now := a.now()
	var ended *Entry
	immediate := false
	a.mu.Lock()
	if a.keys == nil {
		a.keys, a.overflow = map[string]*aggState{}, map[string]*aggState{}
	}
	st := a.keys[key]
	switch {
	case st == nil && len(a.keys) >= a.maxKeys():
		ov := a.overflow[e.Action]
		if ov == nil {
			ov = &aggState{e: Entry{Action: e.Action, Result: e.Result, Detail: map[string]string{DetailReason: "overflow"}}, start: now}
			a.overflow[e.Action] = ov
		}
		ov.add(now)
	case st == nil:
		a.keys[key] = &aggState{e: e, start: now}
		immediate = true
	case now.Sub(st.start) < a.window():
		st.add(now)
	case st.count > 0: // the window ended busy: its entry now, this one counts in the next
		ended = st.entry()
		st.start, st.count = now, 0
		st.add(now)
	default: // the window ended quiet: a fresh start
		st.start = now
		immediate = true
	}
	a.mu.Unlock()
	var err error
	if ended != nil {
		_, err = a.Log.Append(context.WithoutCancel(ctx), *ended)
	}
	if immediate {
		e.Detail = withCount(e.Detail, 1)
		_, ierr := a.Log.Append(context.WithoutCancel(ctx), e)
		err = errors.Join(err, ierr)
	}
	return err
}

func (st *aggState) add(now time.Time) {
	if st.count == 0 {
		st.first = now
	}
	st.count++
	st.last = now
}

// entry is the aggregate of st's window.
func (st *aggState) entry() *Entry {
	e := st.e
	e.Detail = withCount(e.Detail, st.count)
	if st.count > 1 {
		e.Detail[DetailFirst] = st.first.UTC().Format(time.RFC3339Nano)
		e.Detail[DetailLast] = st.last.UTC().Format(time.RFC3339Nano)
	}
	return &e
}

func withCount(d map[string]string, n int) map[string]string {
	out := make(map[string]string, len(d)+3)
	maps.Copy(out, d)
	out[DetailCount] = strconv.Itoa(n)
	return out
}

// Flush appends the entry of every window that has ended with
// occurrences not yet appended (with all, of every window) and forgets
// keys whose window ended quiet. It returns the append errors, joined;
// the counts of a failed append are lost.
func (a *Aggregator) Flush(ctx context.Context, all bool) error {
	now := a.now()
	var out []*Entry
	a.mu.Lock()
	for _, m := range []map[string]*aggState{a.keys, a.overflow} {
		for k, st := range m {
			if !all && now.Sub(st.start) < a.window() {
				continue
			}
			if st.count == 0 {
				delete(m, k)
				continue
			}
			out = append(out, st.entry())
			st.start, st.count = now, 0
		}
	}
	a.mu.Unlock()
	var errs []error
	for _, e := range out {
		if _, err := a.Log.Append(context.WithoutCancel(ctx), *e); err != nil {
			errs = append(errs, fmt.Errorf("audit: aggregated %s entry: %w", e.Action, err))
		}
	}
	return errors.Join(errs...)
}

// Run calls Flush every quarter window until ctx ends, logging failures.
// It does not flush at the end: call Flush(ctx, true) after the last
// Note (after the HTTP server has shut down).
func (a *Aggregator) Run(ctx context.Context) {
	t := time.NewTicker(a.window() / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Flush(ctx, false); err != nil {
				log := a.Logger
				if log == nil {
					log = slog.Default()
				}
				log.Error("audit: flushing aggregated entries failed", "err", err)
			}
		}
	}
}

// Pending returns how many keys the aggregator holds (for tests and
// metrics).
func (a *Aggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.keys) + len(a.overflow)
}
