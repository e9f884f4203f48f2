package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
)

// TestOpenDoesNotLaunderIndexOnlyEntries: entries that only the index
// holds, far more than a crash can leave (2,024 here: an index rewritten,
// or the file cut), used to be copied into audit.log at Open without a
// trace, after which both copies agreed and Verify passed. Now the copy
// is recorded as an audit_repair entry and Verify reports it.
func TestOpenDoesNotLaunderIndexOnlyEntries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	es := buildLog(t, dir, 6)
	st := openStore(t, dir)
	prev, now := es[len(es)-1].Hash, clock()
	for i := range 2024 {
		e := sampleEntry(i)
		e.Seq, e.Time, e.Prev = int64(7+i), time.Unix(0, now().UnixNano()).UTC(), prev
		e.Hash = e.ComputeHash()
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), clock())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	st.Close()
	lines := readLines(t, dir)
	last := lines[len(lines)-2]
	if !strings.Contains(last, `"action":"audit_repair"`) || !strings.Contains(last, `"from":"7"`) || !strings.Contains(last, `"to":"2030"`) ||
		!strings.Contains(last, `"count":"2024"`) || !strings.Contains(last, `"within_bound":"no"`) {
		t.Fatalf("the copy is not on record: last line %q", last)
	}
	rep := verifyDir(t, dir)
	if rep.OK || rep.Seq != 7 || !strings.Contains(rep.Problem, "entries 7 to 2030 (2024) were missing from the file and copied from the index") {
		t.Fatalf("Verify = %+v", rep)
	}
}

// TestVerifySignedHead: the same tail cut from both copies used to leave
// a shorter log that verified; with a signed head naming a later entry,
// Verify reports the cut. A head that the chain reaches passes, and one
// whose hash differs is reported as altered.
func TestVerifySignedHead(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	es := buildLog(t, base, 10)
	signed := &audit.SignedHead{Seq: 8, Hash: es[7].Hash, SignedAt: es[7].Time}
	verifyWith := func(dir string, s *audit.SignedHead) audit.Report {
		st := openStore(t, dir)
		defer st.Close()
		rep, err := audit.VerifySettleWith(ctx, st, filepath.Join(dir, logName), 50*time.Millisecond, audit.VerifyOptions{Signed: s})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verifyWith(base, signed); !rep.OK || rep.SignedSeq != 8 {
		t.Fatalf("intact log: %+v", rep)
	}
	// Cut entries 7 to 10 from both copies.
	cut := copyDir(t, base)
	tamperDB(t, cut, `DELETE FROM audit WHERE seq > 6`)
	writeLines(t, cut, readLines(t, cut)[:6])
	if rep := verifyDir(t, cut); !rep.OK {
		t.Fatalf("without a signed head the cut is invisible, as before: %+v", rep)
	}
	rep := verifyWith(cut, signed)
	if rep.OK || rep.Seq != 8 || !strings.Contains(rep.Problem, "names entry 8, but both copies end at entry 6: entries 7 to 8 removed from both copies") {
		t.Fatalf("cut tail: %+v", rep)
	}
	bad := *signed
	bad.Hash = es[6].Hash
	if rep := verifyWith(base, &bad); rep.OK || !strings.Contains(rep.Problem, "entry 8 differs from the one the signed checkpoint") {
		t.Fatalf("other hash: %+v", rep)
	}
}

// TestAppendRecordsForeignCopy: entries that appear in the index only
// while a Log is open (another writer that crashed, or someone writing
// the index) are copied by the next Append, which records the copy.
func TestAppendRecordsForeignCopy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), clock())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first, err := l.Append(ctx, sampleEntry(0))
	if err != nil {
		t.Fatal(err)
	}
	prev, now := first.Hash, clock()
	for i := range 20 {
		e := sampleEntry(i + 1)
		e.Seq, e.Time, e.Prev = int64(2+i), time.Unix(0, now().UnixNano()).UTC(), prev
		e.Hash = e.ComputeHash()
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	e, err := l.Append(ctx, sampleEntry(30))
	if err != nil || e.Seq != 23 {
		t.Fatalf("Append: %+v, %v", e, err)
	}
	lines := readLines(t, dir)
	if len(lines) != 24 || !strings.Contains(lines[21], `"action":"audit_repair"`) || !strings.Contains(lines[21], `"from":"2"`) ||
		!strings.Contains(lines[21], `"to":"21"`) || !strings.Contains(lines[21], `"within_bound":"no"`) {
		t.Fatalf("file after the copy: %d lines, line 22 %q", len(lines), lines[min(21, len(lines)-1)])
	}
	if rep := verifyDir(t, dir); rep.OK || rep.Seq != 2 || !strings.Contains(rep.Problem, "only the index vouches") {
		t.Fatalf("Verify = %+v", rep)
	}
}
