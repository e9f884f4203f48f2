package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store whose AppendAudit can be made to fail,
// before or after it commits.
type memStore struct {
	mu sync.Mutex
	es []Entry
	// failBefore fails the next append without storing; failAfter stores
	// the entry and then reports an error (a commit whose reply was lost).
	failBefore, failAfter bool
}

func (m *memStore) AppendAudit(ctx context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failBefore {
		m.failBefore = false
		return errors.New("disk full")
	}
	if e.Seq != int64(len(m.es))+1 {
		return fmt.Errorf("seq %d does not follow %d", e.Seq, len(m.es))
	}
	m.es = append(m.es, e)
	if m.failAfter {
		m.failAfter = false
		return errors.New("connection reset")
	}
	return nil
}

func (m *memStore) AuditEntries(ctx context.Context, after int64, limit int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.es {
		if e.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) LastAudit(ctx context.Context) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.es) == 0 {
		return Entry{}, false, nil
	}
	return m.es[len(m.es)-1], true, nil
}

func (m *memStore) QueryAudit(ctx context.Context, f Filter) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.es)
	slices.Reverse(out)
	return out, nil
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

func TestAppendStoreFailure(t *testing.T) {
	ctx := context.Background()
	m := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(ctx, m, path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, Entry{Action: Start, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	// The store refuses: nothing is written anywhere.
	m.failBefore = true
	if _, err := l.Append(ctx, Entry{Action: Login, Result: ResultOK, Actor: "a"}); err == nil {
		t.Fatal("Append succeeded although the store failed")
	}
	if len(m.es) != 1 || countLines(t, path) != 1 {
		t.Fatalf("after a store failure: %d stored, %d lines", len(m.es), countLines(t, path))
	}
	// The store commits but reports an error: the next Append picks up
	// the committed entry and brings the file up to date.
	m.failAfter = true
	if _, err := l.Append(ctx, Entry{Action: Login, Result: ResultOK, Actor: "b"}); err == nil {
		t.Fatal("Append succeeded although the store reported an error")
	}
	e, err := l.Append(ctx, Entry{Action: Logout, Result: ResultOK, Actor: "b"})
	if err != nil || e.Seq != 3 {
		t.Fatalf("Append after a lost commit reply: %+v, %v", e, err)
	}
	if n := countLines(t, path); n != 3 {
		t.Fatalf("file has %d lines, want 3", n)
	}
	if rep, err := Verify(ctx, m, path); err != nil || !rep.OK || rep.Entries != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestAppendFileFailure(t *testing.T) {
	ctx := context.Background()
	m := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(ctx, m, path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, Entry{Action: Start, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	// The file cannot be written: the entry is on record in the store,
	// returned with the error.
	w := l.f
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.f = ro
	for i := range 2 {
		e, err := l.Append(ctx, Entry{Action: Playback, Result: ResultOK, Camera: "door"})
		if err == nil || e.Seq != int64(i+2) {
			t.Fatalf("Append with a failing file: %+v, %v", e, err)
		}
	}
	ro.Close()
	if n := countLines(t, path); n != 1 || len(m.es) != 3 {
		t.Fatalf("%d lines, %d stored", n, len(m.es))
	}
	if rep, _ := VerifySettle(ctx, m, path, 0); rep.OK || rep.Seq != 2 {
		t.Fatalf("Verify with a lagging file = %+v", rep)
	}
	// Once the file can be written again, the next Append catches up.
	l.f = w
	if _, err := l.Append(ctx, Entry{Action: LiveStop, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, m, path); err != nil || !rep.OK || rep.Entries != 4 || rep.FileEntries != 4 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestVerifyWaitsForFile: a server that has committed to the store but
// not yet written the file is not reported as tampering.
func TestVerifyWaitsForFile(t *testing.T) {
	ctx := context.Background()
	m := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(ctx, m, path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if _, err := l.Append(ctx, Entry{Action: Thumbnail, Result: ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	// Entry 4 reaches the store; its line arrives in two writes later.
	e := Entry{Seq: 4, Time: time.Unix(1e9, 0).UTC(), Action: Export, Result: ResultOK, Prev: m.es[2].Hash}
	e.Hash = e.ComputeHash()
	if err := m.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	b, _ := encodeLine(&e)
	l.mu.Lock() // hold appends off while writing behind the Log's back
	defer l.mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(b[:10])
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.Write(b[10:])
	}()
	rep, err := VerifySettle(ctx, m, path, 2*time.Second)
	if err != nil || !rep.OK || rep.Entries != 4 {
		t.Fatalf("Verify during a write = %+v, %v", rep, err)
	}
}
