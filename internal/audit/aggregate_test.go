package audit_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
)

// recorder is an Appender that keeps what it is given.
type recorder struct {
	mu sync.Mutex
	es []audit.Entry
}

func (r *recorder) Append(_ context.Context, e audit.Entry) (audit.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.es = append(r.es, e)
	return e, nil
}

func (r *recorder) counts() (n, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.es {
		c, _ := strconv.Atoi(e.Detail[audit.DetailCount])
		total += c
	}
	return len(r.es), total
}

// TestAggregatorWindows: the first occurrence is appended at once, the
// rest of the window as one entry with a count, a busy key costs one
// entry per window, a key quiet for a window starts afresh, and Flush
// with all empties everything (shutdown).
func TestAggregatorWindows(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := &recorder{}
	a := &audit.Aggregator{Log: rec, Now: func() time.Time { return now }}
	e := audit.Entry{Actor: "x", Addr: "192.0.2.1", Action: audit.LoginFailed, Result: audit.ResultDenied, Detail: map[string]string{"method": "token"}}
	for range 100 {
		a.Note(ctx, "k", e)
		now = now.Add(100 * time.Millisecond) // 10 s in all
	}
	if n, total := rec.counts(); n != 1 || total != 1 {
		t.Fatalf("after 100 in 10 s: %d entries counting %d; want the first at once", n, total)
	}
	now = now.Add(time.Minute)
	a.Flush(ctx, false)
	if n, total := rec.counts(); n != 2 || total != 100 || rec.es[1].Detail[audit.DetailFirst] == "" || rec.es[1].Detail["method"] != "token" {
		t.Fatalf("after the window: %d entries counting %d: %+v", n, total, rec.es)
	}
	// Busy for 10 more minutes: one entry a minute.
	for range 600 {
		a.Note(ctx, "k", e)
		now = now.Add(time.Second)
		a.Flush(ctx, false)
	}
	if n, total := rec.counts(); n < 10 || n > 13 {
		t.Errorf("10 busy minutes: %d entries counting %d", n, total)
	}
	a.Flush(ctx, true)
	if _, total := rec.counts(); total != 700 {
		t.Errorf("after Flush(all): total %d, want 700", total)
	}
	// Quiet for a window: the key is forgotten, the next is at once.
	now = now.Add(2 * time.Minute)
	a.Flush(ctx, false)
	n0, _ := rec.counts()
	a.Note(ctx, "k", e)
	if n, _ := rec.counts(); n != n0+1 || a.Pending() != 1 {
		t.Errorf("after a quiet window: %d entries (was %d), %d pending", n, n0, a.Pending())
	}
}

// TestAggregatorBounded: ever new keys (a spray from many addresses) are
// held at MaxKeys; the rest is counted in one overflow entry.
func TestAggregatorBounded(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := &recorder{}
	a := &audit.Aggregator{Log: rec, Now: func() time.Time { return now }, MaxKeys: 10}
	for i := range 1000 {
		a.Note(ctx, fmt.Sprint(i), audit.Entry{Addr: fmt.Sprint(i), Action: audit.Denied, Result: audit.ResultDenied})
	}
	if p := a.Pending(); p != 11 {
		t.Errorf("pending keys %d, want 10 and the overflow", p)
	}
	a.Flush(ctx, true)
	n, total := rec.counts()
	if n != 11 || total != 1000 {
		t.Errorf("%d entries counting %d; want 11 counting 1000", n, total)
	}
	if last := rec.es[n-1]; last.Detail[audit.DetailReason] != "overflow" || last.Addr != "" {
		t.Errorf("overflow entry %+v", last)
	}
}
