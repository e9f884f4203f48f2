package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

const (
	dbName  = "index.db"
	logName = "audit.log"
	chain   = 50 // entries in the tamper tests' log
)

// clock returns a goroutine-safe fake clock that advances 1.5 ms and a
// few nanoseconds per call, so times exercise nanosecond round trips.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 29, 9, 0, 0, 1, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(1500*time.Microsecond + 7)
		return t.In(time.FixedZone("CET", 3600))
	}
}

func openStore(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, dbName))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sampleEntry returns the i-th entry of a varied log: every action, system
// and user actors, details of several sizes and characters.
func sampleEntry(i int) audit.Entry {
	actions := []string{audit.Login, audit.LiveStart, audit.Playback, audit.Export, audit.Thumbnail,
		audit.CameraChange, audit.RetentionDelete, audit.UserAdd, audit.LoginFailed, audit.AuditRead}
	results := []string{audit.ResultOK, audit.ResultOK, audit.ResultDenied, audit.ResultFailed}
	e := audit.Entry{
		Actor:  fmt.Sprintf("user%d", i%3),
		Addr:   fmt.Sprintf("192.0.2.%d:%d", i%250, 40000+i),
		Action: actions[i%len(actions)],
		Camera: []string{"", "front-door", "yard", "garage"}[i%4],
		Result: results[i%len(results)],
	}
	if e.Action == audit.RetentionDelete {
		e.Actor, e.Addr = "", ""
	}
	if i%2 == 0 {
		e.Detail = map[string]string{
			"from": "2026-11-29T09:00:00Z", "to": "2026-11-29T09:10:00.5Z",
			"reason": fmt.Sprintf("case %d: «ünïcode» <b>&\"q\"\n", i),
		}
	}
	return e
}

// buildLog appends n sample entries to a new log in dir and returns them.
func buildLog(t testing.TB, dir string, n int) []audit.Entry {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, dir)
	defer st.Close()
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), clock())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []audit.Entry
	for i := range n {
		e, err := l.Append(ctx, sampleEntry(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// copyDir copies the database (with any WAL) and the file to a new
// directory: a fresh copy for each tampering.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{dbName, dbName + "-wal", dbName + "-shm", logName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func verifyDir(t testing.TB, dir string) audit.Report {
	t.Helper()
	st := openStore(t, dir)
	defer st.Close()
	rep, err := audit.VerifySettle(context.Background(), st, filepath.Join(dir, logName), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// tamperDB edits the database as an attacker would: with the plain
// driver, after dropping the triggers that make the table append-only.
func tamperDB(t testing.TB, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, dbName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append([]string{"DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"}, stmts...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func readLines(t testing.TB, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")
}

func writeLines(t testing.TB, dir string, lines []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, logName), []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rehashed returns the entry with an edited actor and its hash
// recomputed, as an attacker who knows the format would write it.
func rehashed(e audit.Entry) audit.Entry {
	e.Actor = "nobody"
	e.Hash = e.ComputeHash()
	return e
}

func fileLine(t testing.TB, e audit.Entry) string {
	t.Helper()
	// The file format, written independently of the package's encoder.
	d := "{}"
	if len(e.Detail) > 0 {
		t.Fatal("fileLine: entries with detail not supported")
	}
	return fmt.Sprintf(`{"seq":%d,"at":%q,"actor":%q,"addr":%q,"action":%q,"camera":%q,"detail":%s,"result":%q,"prev":"%x","hash":"%x"}`+"\n",
		e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Addr, e.Action, e.Camera, d, e.Result, e.Prev, e.Hash)
}

func wantProblem(t *testing.T, rep audit.Report, seq int64, substr string) {
	t.Helper()
	if rep.OK || rep.Seq != seq || !strings.Contains(rep.Problem, substr) {
		t.Errorf("Verify = OK %v, seq %d, %q; want a problem at seq %d mentioning %q", rep.OK, rep.Seq, rep.Problem, seq, substr)
	}
	if !strings.Contains(rep.Problem, fmt.Sprint(seq)) {
		t.Errorf("problem %q does not name seq %d", rep.Problem, seq)
	}
}

func TestAppendAndVerify(t *testing.T) {
	dir := t.TempDir()
	es := buildLog(t, dir, chain)
	prev := make([]byte, audit.HashSize)
	var last time.Time
	for i, e := range es {
		if e.Seq != int64(i+1) || !bytes.Equal(e.Prev, prev) || !bytes.Equal(e.Hash, e.ComputeHash()) {
			t.Fatalf("entry %d: seq %d prev %x hash %x", i, e.Seq, e.Prev, e.Hash)
		}
		if e.Time.Location() != time.UTC || !e.Time.After(last) || e.Time.Nanosecond()%1000 == 0 {
			t.Fatalf("entry %d: time %v", i, e.Time)
		}
		prev, last = e.Hash, e.Time
	}
	rep := verifyDir(t, dir)
	if !rep.OK || rep.Entries != chain || rep.FileEntries != chain || rep.Seq != 0 || rep.Problem != "" ||
		!bytes.Equal(rep.Head, es[chain-1].Hash) {
		t.Fatalf("Verify = %+v", rep)
	}
	// The store holds exactly what Append returned, and so does the file.
	st := openStore(t, dir)
	defer st.Close()
	got, err := st.AuditEntries(context.Background(), 0, 0)
	if err != nil || len(got) != chain {
		t.Fatalf("AuditEntries: %d, %v", len(got), err)
	}
	for i := range got {
		if fmt.Sprint(got[i]) != fmt.Sprint(es[i]) || !got[i].Time.Equal(es[i].Time) {
			t.Errorf("store entry %d = %+v, Append returned %+v", i+1, got[i], es[i])
		}
	}
	lines := readLines(t, dir)
	if len(lines) != chain+1 || lines[chain] != "" {
		t.Fatalf("file has %d lines", len(lines)-1)
	}
	if !strings.HasPrefix(lines[0], `{"seq":1,"at":"2026-11-29T09:00:00.001500008Z","actor":"user0","addr":"192.0.2.0:40000","action":"login","camera":"","detail":{"from":`) ||
		!strings.HasSuffix(lines[0], `,"result":"ok","prev":"`+strings.Repeat("0", 64)+`","hash":"`+hex.EncodeToString(es[0].Hash)+"\"}\n") {
		t.Errorf("line 1 = %s", lines[0])
	}
	if fi, err := os.Stat(filepath.Join(dir, logName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v", fi.Mode(), err)
	}
}

func TestVerifyEmpty(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	rep, err := audit.Verify(context.Background(), st, filepath.Join(dir, logName))
	if err != nil || !rep.OK || rep.Entries != 0 || rep.Head != nil {
		t.Fatalf("Verify of nothing = %+v, %v", rep, err)
	}
}

func TestTamperStore(t *testing.T) {
	base := t.TempDir()
	es := buildLog(t, base, chain)
	for _, tc := range []struct {
		name  string
		stmts []string
		seq   int64
		want  string
	}{
		{"actor", []string{`UPDATE audit SET actor = 'someone else' WHERE seq = 17`}, 17, "store: entry 17: hash does not match its contents (altered)"},
		{"action", []string{`UPDATE audit SET action = 'login' WHERE seq = 4`}, 4, "store: entry 4: hash"},
		{"camera", []string{`UPDATE audit SET camera = 'yard' WHERE seq = 22`}, 22, "store: entry 22: hash"},
		{"addr", []string{`UPDATE audit SET addr = '' WHERE seq = 9`}, 9, "store: entry 9: hash"},
		{"detail", []string{`UPDATE audit SET detail = '{"reason":"routine"}' WHERE seq = 30`}, 30, "store: entry 30: hash"},
		{"detail removed", []string{`UPDATE audit SET detail = '{}' WHERE seq = 31`}, 31, "store: entry 31: hash"},
		{"detail not json", []string{`UPDATE audit SET detail = 'gone' WHERE seq = 23`}, 23, "store: entry 23: cannot be decoded"},
		{"time", []string{`UPDATE audit SET at_ns = at_ns - 1 WHERE seq = 11`}, 11, "store: entry 11: hash"},
		{"result", []string{`UPDATE audit SET result = 'ok' WHERE seq = 3`}, 3, "store: entry 3: hash"},
		{"prev", []string{`UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = 12`}, 12, "store: entry 12: hash"},
		{"hash", []string{`UPDATE audit SET hash = zeroblob(32) WHERE seq = 12`}, 12, "store: entry 12: hash"},
		{"first entry", []string{`UPDATE audit SET actor = 'x' WHERE seq = 1`}, 1, "store: entry 1: hash"},
		{"last entry", []string{`UPDATE audit SET actor = 'x' WHERE seq = 50`}, 50, "store: entry 50: hash"},
		{"delete middle", []string{`DELETE FROM audit WHERE seq = 25`}, 25, "store: seq 26 follows seq 24 (entry 25 removed)"},
		{"delete several", []string{`DELETE FROM audit WHERE seq BETWEEN 25 AND 27`}, 25, "(entries 25 to 27 removed)"},
		{"delete first", []string{`DELETE FROM audit WHERE seq = 1`}, 1, "store: seq 2 follows seq 0"},
		{"delete last", []string{`DELETE FROM audit WHERE seq = 50`}, 50, "store ends at entry 49 but the file goes on to entry 50 (entry 50 removed from the store)"},
		{"delete all", []string{`DELETE FROM audit`}, 1, "(entries 1 to 50 removed from the store)"},
		{"swap", swapRows(10, 20), 10, "store: entry 10: hash"},
		{"swap adjacent", swapRows(33, 34), 33, "store: entry 33: hash"},
		{"re-hash middle", rehashRow(es[16]), 17, "file: entry 17 differs from the store in actor (altered)"},
		{"re-hash last", rehashRow(es[49]), 50, "file: entry 50 differs from the store in actor"},
		{"renumber", []string{`DELETE FROM audit WHERE seq = 25`, `UPDATE audit SET seq = seq - 1 WHERE seq > 25`}, 25, "store: entry 25: hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			tamperDB(t, dir, tc.stmts...)
			rep := verifyDir(t, dir)
			wantProblem(t, rep, tc.seq, tc.want)
			if tc.seq > 1 && !bytes.Equal(rep.Head, es[tc.seq-2].Hash) {
				t.Errorf("Head = %x, want the hash of entry %d", rep.Head, tc.seq-1)
			}
		})
	}

	// An attacker who alters and re-hashes an entry in both copies is
	// caught by the next entry's prev.
	t.Run("re-hash in both", func(t *testing.T) {
		dir := copyDir(t, base)
		tamperDB(t, dir, rehashRow(es[17])...)
		lines := readLines(t, dir)
		lines[17] = fileLine(t, rehashed(es[17])) // es[17] has no detail (odd index)
		writeLines(t, dir, lines)
		wantProblem(t, verifyDir(t, dir), 18, "store: entry 19: prev does not match the hash of entry 18 (entry 18 altered and re-hashed)")
	})
}

func swapRows(a, b int) []string {
	const cols = `at_ns, actor, addr, action, camera, detail, result, prev_hash, hash`
	return []string{
		fmt.Sprintf(`CREATE TEMP TABLE swap AS SELECT seq, %s FROM audit WHERE seq IN (%d, %d)`, cols, a, b),
		fmt.Sprintf(`UPDATE audit SET (%s) = (SELECT %s FROM swap WHERE swap.seq = %d + %d - audit.seq) WHERE seq IN (%d, %d)`, cols, cols, a, b, a, b),
	}
}

func rehashRow(e audit.Entry) []string {
	r := rehashed(e)
	return []string{fmt.Sprintf(`UPDATE audit SET actor = '%s', hash = x'%x' WHERE seq = %d`, r.Actor, r.Hash, r.Seq)}
}

func TestTamperFile(t *testing.T) {
	base := t.TempDir()
	es := buildLog(t, base, chain)
	orig := readLines(t, base) // chain lines and a final ""
	forged := audit.Entry{Seq: 15, Time: es[14].Time, Action: audit.Export, Camera: "yard", Result: audit.ResultOK, Prev: es[13].Hash}
	forged.Hash = forged.ComputeHash()
	appended := audit.Entry{Seq: 51, Time: es[49].Time.Add(time.Second), Action: audit.Start, Result: audit.ResultOK, Prev: es[49].Hash}
	appended.Hash = appended.ComputeHash()
	edit := func(fn func(l []string) []string) []string { return fn(append([]string(nil), orig...)) }
	for _, tc := range []struct {
		name  string
		lines []string
		seq   int64
		want  string
	}{
		{"edit actor", edit(func(l []string) []string {
			l[11] = strings.Replace(l[11], `"actor":"user2"`, `"actor":"user1"`, 1)
			return l
		}), 12, "file line 12: entry 12: hash does not match its contents (altered)"},
		{"delete line", edit(func(l []string) []string { return append(l[:8], l[9:]...) }),
			9, "file line 9: seq 10 follows seq 8 (entry 9 removed)"},
		{"delete first line", edit(func(l []string) []string { return l[1:] }), 1, "file line 1: seq 2 follows seq 0 (entry 1 removed)"},
		{"delete last line", edit(func(l []string) []string { return append(l[:49], "") }),
			50, "file ends at entry 49 but the store goes on to entry 50 (entry 50 removed from the file)"},
		{"delete all", []string{""}, 1, "(entries 1 to 50 removed from the file)"},
		{"swap lines", edit(func(l []string) []string { l[4], l[29] = l[29], l[4]; return l }),
			5, "file line 5: seq 30 follows seq 4 (entries out of order)"},
		{"swap adjacent lines", edit(func(l []string) []string { l[19], l[20] = l[20], l[19]; return l }),
			20, "file line 20: seq 21 follows seq 19 (entries out of order)"},
		{"insert copied line", edit(func(l []string) []string {
			return append(l[:14], append([]string{strings.Replace(l[13], "user", "admin", 1)}, l[14:]...)...)
		}), 15, "file line 15: seq 14 follows seq 14"},
		{"insert forged line", edit(func(l []string) []string {
			return append(l[:14], append([]string{fileLine(t, forged)}, l[14:]...)...)
		}), 15, "file: entry 15 differs from the store"},
		{"append forged line", edit(func(l []string) []string { return append(l[:50], fileLine(t, appended)) }),
			51, "store ends at entry 50 but the file goes on to entry 51 (entry 51 removed from the store)"},
		{"torn last line", edit(func(l []string) []string { l[49] = l[49][:40]; return l }),
			50, "file line 50: incomplete last line"},
		{"over-long line", edit(func(l []string) []string {
			l[6] = strings.Replace(l[6], `"actor":"`, `"actor":"`+strings.Repeat("a", 70000), 1)
			return l
		}), 7, "file line 7: longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			writeLines(t, dir, tc.lines)
			wantProblem(t, verifyDir(t, dir), tc.seq, tc.want)
		})
	}

	t.Run("missing", func(t *testing.T) {
		dir := copyDir(t, base)
		os.Remove(filepath.Join(dir, logName))
		wantProblem(t, verifyDir(t, dir), 1, "file: missing, but the store has entries 1 to 50 (file removed)")
	})

	// Every single-byte edit of a line is found and blamed on that line:
	// the parser accepts only the canonical encoding.
	t.Run("every byte", func(t *testing.T) {
		dir := copyDir(t, base)
		st := openStore(t, dir)
		defer st.Close()
		path := filepath.Join(dir, logName)
		const n = 12 // a line with detail, escapes and non-ASCII text
		line := orig[n-1]
		for i := 0; i < len(line)-1; i++ {
			for _, flip := range []byte{0x01, 0x20, 0x80} {
				l := []byte(line)
				l[i] ^= flip
				lines := append([]string(nil), orig...)
				lines[n-1] = string(l)
				if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
					t.Fatal(err)
				}
				rep, err := audit.VerifySettle(context.Background(), st, path, 0)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK || rep.Seq != n {
					t.Fatalf("byte %d (%q) ^ %#x: Verify = OK %v seq %d %q", i, line[i], flip, rep.OK, rep.Seq, rep.Problem)
				}
			}
		}
	})
}

// TestCannotDetect pins what the chain alone cannot show (docs/security.md):
// the same last entries removed from both copies leave a valid, shorter
// chain; only a head recorded elsewhere reveals it.
func TestCannotDetect(t *testing.T) {
	base := t.TempDir()
	es := buildLog(t, base, 10)
	dir := copyDir(t, base)
	tamperDB(t, dir, `DELETE FROM audit WHERE seq > 8`)
	writeLines(t, dir, append(readLines(t, dir)[:8], ""))
	rep := verifyDir(t, dir)
	if !rep.OK || rep.Entries != 8 || !bytes.Equal(rep.Head, es[7].Hash) {
		t.Fatalf("Verify = %+v", rep)
	}
	if bytes.Equal(rep.Head, es[9].Hash) {
		t.Fatal("head unchanged")
	}
}

func TestOpenRepairsCrash(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	buildLog(t, base, 10)
	want, err := os.ReadFile(filepath.Join(base, logName))
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, base)
	for _, tc := range []struct {
		name   string
		file   string
		copied int // entries copied from the store: recorded in an audit_repair entry
	}{
		{"torn last line", strings.Join(lines[:9], "") + lines[9][:len(lines[9])/2], 1},
		{"torn line after the last", string(want) + `{"seq":11,"at":"2026`, 0},
		{"last line without newline", strings.TrimSuffix(string(want), "\n"), 1},
		{"missing last 3", strings.Join(lines[:7], ""), 3},
		{"missing 3 and torn", strings.Join(lines[:7], "") + lines[7][:5], 3},
		{"empty", "", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, logName)
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			st := openStore(t, dir)
			defer st.Close()
			l, err := audit.Open(ctx, st, path, clock())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.HasPrefix(got, want) {
				t.Errorf("repaired file:\n%s\nwant it to start with:\n%s", got, want)
			}
			next := int64(11)
			if tc.copied > 0 {
				// The copy is on record, in both copies.
				rest := string(got[len(want):])
				within := `"within_bound":"yes"`
				if tc.copied > audit.MaxTornTail {
					within = `"within_bound":"no"`
				}
				if !strings.Contains(rest, `"action":"audit_repair"`) || !strings.Contains(rest, fmt.Sprintf(`"count":"%d"`, tc.copied)) ||
					!strings.Contains(rest, within) {
					t.Errorf("no audit_repair entry for %d entries after the copy: %q", tc.copied, rest)
				}
				next = 12
			} else if len(got) != len(want) {
				t.Errorf("file grew without a copy: %q", got[len(want):])
			}
			e, err := l.Append(ctx, sampleEntry(10))
			if err != nil || e.Seq != next {
				t.Fatalf("Append after repair: %+v, %v", e, err)
			}
			l.Close()
			rep := verifyDir(t, dir)
			if tc.copied > audit.MaxTornTail {
				// More than crashes leave: only the index vouches for them.
				if rep.OK || !strings.Contains(rep.Problem, "only the index vouches") || rep.Seq != 1 {
					t.Fatalf("Verify after a copy beyond the bound = %+v", rep)
				}
				return
			}
			if !rep.OK || rep.Entries != int(next) || len(rep.Repairs) != min(tc.copied, 1) {
				t.Fatalf("Verify after repair = %+v", rep)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	es := buildLog(t, base, 10)
	lines := readLines(t, base)
	for _, tc := range []struct {
		name  string
		stmts []string
		file  string
		want  string
	}{
		{"store lacks the file's last entry", []string{`DELETE FROM audit WHERE seq = 10`}, "", "file has entry 10 but the store ends at entry 9"},
		{"last line altered", nil, strings.Join(lines[:9], "") + strings.Replace(lines[9], `"user0"`, `"user2"`, 1), "last entry 10 differs from the store in actor"},
		{"last line re-hashed", rehashRow(es[9]), "", "last entry 10 differs from the store in actor"},
		{"store lacks it, torn line after", []string{`DELETE FROM audit WHERE seq = 10`}, strings.Join(lines, "") + `{"seq":11`, "file has entry 10 but the store ends at entry 9"},
		{"last line garbage", nil, strings.Join(lines[:9], "") + "hello\n", "last line: not an audit entry"},
		{"no line end", nil, strings.Repeat("x", 200000), "hold no line end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, logName)
			if tc.stmts != nil {
				tamperDB(t, dir, tc.stmts...)
			}
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(path)
			st := openStore(t, dir)
			defer st.Close()
			l, err := audit.Open(ctx, st, path, clock())
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "custos audit verify") && tc.name != "no line end" {
				t.Errorf("Open: %v; want %q", err, tc.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("Open changed the file")
			}
		})
	}
}

// TestTwoWriters appends through two Logs on the same file and database
// (custos user beside custos serve: separate handles, as two processes
// would have) at the same time: one chain, in one order, in both copies.
func TestTwoWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st1 := openStore(t, dir)
	defer st1.Close()
	st2 := openStore(t, dir)
	defer st2.Close()
	path := filepath.Join(dir, logName)
	l1, err := audit.Open(ctx, st1, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := audit.Open(ctx, st2, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	var wg sync.WaitGroup
	for i, l := range []*audit.Log{l1, l2, l1, l2} {
		wg.Go(func() {
			for j := 0; j < 20; j++ {
				if _, err := l.Append(ctx, audit.Entry{Action: audit.Login, Actor: fmt.Sprintf("w%d", i), Result: audit.ResultOK}); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := audit.Verify(ctx, st1, path)
	if err != nil || !rep.OK || rep.Entries != 80 || rep.FileEntries != 80 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), clock())
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	seqs := make(chan int64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e, err := l.Append(ctx, sampleEntry(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- e.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] || s < 1 || s > workers*each {
			t.Fatalf("seq %d returned twice or out of range", s)
		}
		seen[s] = true
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyDir(t, dir); !rep.OK || rep.Entries != workers*each || rep.FileEntries != workers*each {
		t.Fatalf("Verify = %+v", rep)
	}
}

func TestAppendRefusalsAndQuery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), clock())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []audit.Entry{
		{Action: "format_disk", Result: audit.ResultOK},
		{Action: audit.Login, Result: "yes"},
		{Action: audit.Login, Result: audit.ResultOK, Actor: "bad\xff"},
		{Action: audit.Login, Result: audit.ResultOK, Detail: map[string]string{"big": strings.Repeat("x", 70000)}},
	} {
		if _, err := l.Append(ctx, e); err == nil {
			t.Errorf("Append(%.60v) succeeded", e)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Append(cancelled, sampleEntry(0)); err == nil {
		t.Error("Append with a cancelled context succeeded")
	}
	detail := map[string]string{"reason": "x"}
	for i := range 30 {
		e := sampleEntry(i)
		if i == 0 {
			e.Detail = detail
		}
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	detail["reason"] = "changed by the caller afterwards"
	// Entries i with i%4 == 2 (yard) and i%3 == 2 (user2): i = 2, 14
	// (26 is a retention deletion by the system), seqs 3 and 15.
	for _, tc := range []struct {
		f    audit.Filter
		want []int64
	}{
		{audit.Filter{Camera: "yard", Actor: "user2"}, []int64{15, 3}},
		{audit.Filter{Camera: "yard", Actor: "user2", Limit: 1}, []int64{15}},
		{audit.Filter{Camera: "yard", Actor: "user2", BeforeSeq: 15}, []int64{3}},
	} {
		got, err := l.Query(ctx, tc.f)
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("Query(%+v) = %v, %v; want %v", tc.f, seqs, err, tc.want)
		}
	}
	all, err := l.Query(ctx, audit.Filter{})
	if err != nil || len(all) != 30 || all[29].Detail["reason"] != "x" {
		t.Fatalf("Query all: %d, %v", len(all), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, sampleEntry(0)); err == nil {
		t.Error("Append after Close succeeded")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if rep := verifyDir(t, dir); !rep.OK || rep.Entries != 30 {
		t.Fatalf("Verify = %+v", rep)
	}
}

// BenchmarkAppend measures durable appends (store commit with WAL fsync,
// then file write and fsync).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st := openStore(b, dir)
	defer st.Close()
	l, err := audit.Open(ctx, st, filepath.Join(dir, logName), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := sampleEntry(2)
	for b.Loop() {
		if _, err := l.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkVerify measures verification speed per entry.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	buildLog(b, dir, 2000)
	st := openStore(b, dir)
	defer st.Close()
	for b.Loop() {
		rep, err := audit.Verify(context.Background(), st, filepath.Join(dir, logName))
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(b.N*2000)/b.Elapsed().Seconds(), "entries/s")
}
