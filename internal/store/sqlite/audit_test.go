package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
)

var auditT0 = time.Date(2026, 11, 29, 9, 0, 0, 123456789, time.UTC)

// auditEntry returns entry seq of a test chain: one a minute from auditT0,
// actors, actions and cameras cycling, chained to prev.
func auditEntry(seq int64, prev []byte) audit.Entry {
	e := audit.Entry{
		Seq:    seq,
		Time:   auditT0.Add(time.Duration(seq) * time.Minute),
		Actor:  []string{"alice", "bob", ""}[seq%3],
		Addr:   fmt.Sprintf("192.0.2.%d:443", seq%250),
		Action: []string{audit.Playback, audit.Export, audit.Login, audit.LiveStart}[seq%4],
		Camera: []string{"door", "yard"}[seq%2],
		Result: audit.ResultOK,
		Prev:   prev,
	}
	if seq%2 == 0 {
		e.Detail = map[string]string{"reason": fmt.Sprintf("case %d ünïcode \"quoted\"", seq), "count": "3"}
	}
	if e.Prev == nil {
		e.Prev = make([]byte, audit.HashSize)
	}
	e.Hash = e.ComputeHash()
	return e
}

// appendAuditChain appends entries 1..n through AppendAudit.
func appendAuditChain(t testing.TB, s *Store, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	var prev []byte
	for i := int64(1); i <= int64(n); i++ {
		e := auditEntry(i, prev)
		if err := s.AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, e), e.Hash
	}
	return out
}

func TestAuditAppendAndRead(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	if _, ok, err := s.LastAudit(ctx); ok || err != nil {
		t.Fatalf("LastAudit of an empty log: ok %v, %v", ok, err)
	}
	if es, err := s.AuditEntries(ctx, 0, 0); len(es) != 0 || err != nil {
		t.Fatalf("AuditEntries of an empty log: %v, %v", es, err)
	}
	want := appendAuditChain(t, s, 10)

	got, err := s.AuditEntries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Exact round trip: times to the nanosecond in UTC, nil detail nil.
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AuditEntries =\n%+v\nwant\n%+v", got, want)
	}
	if got[0].Time.Location() != time.UTC || got[1].Time.Nanosecond() != 123456789 {
		t.Errorf("time %v", got[1].Time)
	}
	if got, err := s.AuditEntries(ctx, 3, 4); err != nil || len(got) != 4 || got[0].Seq != 4 || got[3].Seq != 7 {
		t.Errorf("AuditEntries(3, 4) = %v, %v", got, err)
	}
	if got, err := s.AuditEntries(ctx, 8, 100); err != nil || len(got) != 2 || got[1].Seq != 10 {
		t.Errorf("AuditEntries(8, 100) = %v, %v", got, err)
	}
	last, ok, err := s.LastAudit(ctx)
	if err != nil || !ok || !reflect.DeepEqual(last, want[9]) {
		t.Errorf("LastAudit = %+v, %v, %v", last, ok, err)
	}

	// A seq that is not last+1 is refused and nothing is written.
	for _, seq := range []int64{10, 12, 1, 0, -1} {
		e := auditEntry(10, nil)
		e.Seq = seq
		if err := s.AppendAudit(ctx, e); err == nil || !strings.Contains(err.Error(), "does not follow the last seq 10") {
			t.Errorf("AppendAudit(seq %d) = %v", seq, err)
		}
	}
	if e := auditEntry(11, want[9].Hash); s.AppendAudit(ctx, audit.Entry{Seq: 11}) == nil || s.AppendAudit(ctx, e) != nil {
		t.Error("zero time accepted, or a good entry refused after a refusal")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.AppendAudit(cancelled, auditEntry(12, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendAudit with a cancelled context = %v", err)
	}
	if last, _, _ := s.LastAudit(ctx); last.Seq != 11 {
		t.Errorf("last seq %d, want 11", last.Seq)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	appendAuditChain(t, s, 3)
	for _, q := range []string{
		`UPDATE audit SET actor = 'mallory' WHERE seq = 2`,
		`DELETE FROM audit WHERE seq = 3`,
		`DELETE FROM audit`,
	} {
		if _, err := s.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestAuditCorruptDetail(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	appendAuditChain(t, s, 5)
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET detail = '["a"]' WHERE seq = 4`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.AuditEntries(ctx, 0, 0)
	var ce *audit.CorruptError
	if !errors.As(err, &ce) || ce.Seq != 4 {
		t.Fatalf("AuditEntries over a corrupt row: %v", err)
	}
	if es, err := s.AuditEntries(ctx, 0, 3); err != nil || len(es) != 3 {
		t.Errorf("rows before it: %d, %v", len(es), err)
	}
}

func TestAuditQuery(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	appendAuditChain(t, s, 12)
	at := func(seq int) time.Time { return auditT0.Add(time.Duration(seq) * time.Minute) }
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []int64
	}{
		{"all, newest first", audit.Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"from inclusive, to exclusive", audit.Filter{From: at(3), To: at(6)}, []int64{5, 4, 3}},
		{"from only", audit.Filter{From: at(10)}, []int64{12, 11, 10}},
		{"to only", audit.Filter{To: at(3)}, []int64{2, 1}},
		{"to a nanosecond after", audit.Filter{To: at(3).Add(time.Nanosecond)}, []int64{3, 2, 1}},
		{"far bounds", audit.Filter{From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 2}, []int64{12, 11}},
		{"empty range", audit.Filter{From: at(6), To: at(6)}, nil},
		{"actor", audit.Filter{Actor: "bob"}, []int64{10, 7, 4, 1}},
		{"system actor is not a wildcard", audit.Filter{Actor: "nobody"}, nil},
		{"action", audit.Filter{Action: audit.Export}, []int64{9, 5, 1}},
		{"camera and actor", audit.Filter{Camera: "door", Actor: "alice"}, []int64{12, 6}},
		{"before seq", audit.Filter{BeforeSeq: 4}, []int64{3, 2, 1}},
		{"paging", audit.Filter{Camera: "yard", BeforeSeq: 9, Limit: 2}, []int64{7, 5}},
		{"limit", audit.Filter{Limit: 3}, []int64{12, 11, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.QueryAudit(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !reflect.DeepEqual(seqs, tc.want) {
				t.Errorf("QueryAudit(%+v) = %v, want %v", tc.f, seqs, tc.want)
			}
		})
	}
}

func TestAuditQueryLimits(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	// 1100 rows in one transaction; the store checks no hashes.
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i := 1; i <= 1100; i++ {
			if _, err := tx.Exec(`INSERT INTO audit (`+auditCols+`) VALUES (?, ?, 'a', '', 'login', '', '{}', 'ok', x'', x'')`,
				i, auditT0.UnixNano()+int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-5, 100}, {1, 1}, {1000, 1000}, {5000, 1000}} {
		got, err := s.QueryAudit(ctx, audit.Filter{Limit: tc.limit})
		if err != nil || len(got) != tc.want || got[0].Seq != 1100 {
			t.Errorf("Limit %d: %d entries, %v; want %d", tc.limit, len(got), err, tc.want)
		}
	}
	if got, err := s.AuditEntries(ctx, 0, 0); err != nil || len(got) != 1100 {
		t.Errorf("AuditEntries(0, 0): %d, %v", len(got), err)
	}
}

func TestAuditQueryPlan(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	for _, tc := range []struct {
		f    audit.Filter
		want string
	}{
		{audit.Filter{From: auditT0, To: auditT0.Add(time.Hour), Actor: "a"}, "audit_at (at_ns>? AND at_ns<?)"},
		{audit.Filter{From: auditT0}, "audit_at (at_ns>?)"},
		{audit.Filter{BeforeSeq: 10}, "INTEGER PRIMARY KEY (rowid<?)"},
	} {
		q, args := auditQuery(tc.f)
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); !strings.Contains(p, tc.want) {
			t.Errorf("plan for %+v:\n%s\nwant %s", tc.f, p, tc.want)
		}
	}
}
