package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/storetest"
)

func openTemp(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "index.db"))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestMigrationsMatchVersion(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("len(migrations) = %d, SchemaVersion = %d", len(migrations), SchemaVersion)
	}
}

func TestOpenSettings(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	if v, err := s.SchemaVersion(ctx); err != nil || v != SchemaVersion {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, SchemaVersion)
	}
	// Every pooled connection carries the per-connection pragmas.
	conns := make([]*sql.Conn, maxConns)
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		var mode string
		var sync, fk, busy int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 1 || fk != 1 || busy != busyTimeoutMS {
			t.Errorf("conn %d: journal_mode %s synchronous %d foreign_keys %d busy_timeout %d",
				i, mode, sync, fk, busy)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestQueryPlanUsesIndex(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+segmentsQuery, 1, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	p := strings.Join(plan, "\n")
	if !strings.Contains(p, "segments_stream_start (stream_id=? AND start_ns>? AND start_ns<?)") {
		t.Errorf("segments query plan does not range-scan segments_stream_start:\n%s", p)
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	st, err := s.Stream(ctx, "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRun(ctx, st.ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	seg := &store.Segment{StreamID: st.ID, RunID: r.ID, Disk: "d", Key: "k", Start: t0, Codec: "avc1"}
	if err := s.AddSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st2, err := s.Stream(ctx, "door", "main")
	if err != nil || st2 != st {
		t.Fatalf("reopened Stream = %+v, %v; want %+v", st2, err, st)
	}
	w, err := s.WritingSegments(ctx)
	if err != nil || len(w) != 1 || w[0].ID != seg.ID || !w[0].Start.Equal(t0) || w[0].Key != "k" {
		t.Fatalf("reopened WritingSegments = %+v, %v", w, err)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", SchemaVersion+1)) {
		t.Errorf("error does not name the version: %v", err)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open of a non-database file succeeded")
	}
}

// fill inserts streams × days of abutting 60 s closed segments in one
// transaction with a prepared statement (bypassing the per-row API, which
// would take minutes) and returns the stream IDs.
func fill(b *testing.B, s *Store, streams, days int, t0 time.Time) []int64 {
	b.Helper()
	ctx := context.Background()
	ids := make([]int64, streams)
	for i := range ids {
		st, err := s.Stream(ctx, fmt.Sprintf("cam%03d", i), "main")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.StartRun(ctx, st.ID, t0); err != nil {
			b.Fatal(err)
		}
		ids[i] = st.ID
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO segments (stream_id, run_id, disk, key, start_ns, end_ns, dur90k, wall_dur_ns,
	start_pts90k, bytes, frames, key_frames, state, codec, width, height)
VALUES (?, ?, 'd1', ?, ?, ?, 5400000, ?, 0, 30000000, 1500, 30, 'closed', 'avc1.640028', 1920, 1080)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		n := days * 24 * 60
		for i, id := range ids {
			// Staggered boundaries across streams, as the recorder does.
			base := t0.Add(time.Duration(i) * 600 * time.Millisecond).UnixNano()
			for j := range n {
				start := base + int64(j)*int64(time.Minute)
				key := fmt.Sprintf("%d/%d", id, j)
				if _, err := stmt.ExecContext(ctx, id, id, key, start, start+int64(time.Minute),
					int64(time.Minute)); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE streams SET max_seg_ns = ?`, int64(time.Minute))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkSegmentsQuery times a 10-minute Segments query on an index of
// 100 streams × 3 days of 60 s segments (432,000 rows; 30 days, 4.3 M
// rows, takes minutes to set up and the query is a B-tree range scan
// whose cost grows only with the tree depth). Set CUSTOS_BENCH_DAYS to
// change the number of days.
func BenchmarkSegmentsQuery(b *testing.B) {
	days := 3
	if v := os.Getenv("CUSTOS_BENCH_DAYS"); v != "" {
		if _, err := fmt.Sscan(v, &days); err != nil {
			b.Fatalf("CUSTOS_BENCH_DAYS: %v", err)
		}
	}
	s := openTemp(b)
	defer s.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	setup := time.Now()
	ids := fill(b, s, 100, days, t0)
	b.Logf("set-up: %d rows in %v", len(ids)*days*24*60, time.Since(setup))
	ctx := context.Background()
	minutes := days * 24 * 60
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		from := t0.Add(time.Duration(i*7919%(minutes-20))*time.Minute + 30*time.Second)
		segs, err := s.Segments(ctx, id, from, from.Add(10*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if len(segs) != 10 && len(segs) != 11 {
			b.Fatalf("got %d segments, want 10 or 11", len(segs))
		}
	}
}

// BenchmarkAddUpdateSegment times the recorder's per-segment index
// writes: one AddSegment and one closing UpdateSegment.
func BenchmarkAddUpdateSegment(b *testing.B) {
	s := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	st, err := s.Stream(ctx, "cam", "main")
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := s.StartRun(ctx, st.ID, t0)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		seg := &store.Segment{StreamID: st.ID, RunID: r.ID, Disk: "d1", Key: fmt.Sprint(i),
			Start: t0.Add(time.Duration(i) * time.Minute), Codec: "avc1.640028", Width: 1920, Height: 1080}
		if err := s.AddSegment(ctx, seg); err != nil {
			b.Fatal(err)
		}
		seg.Dur90k, seg.WallDur, seg.Bytes, seg.Frames, seg.KeyFrames = 5400000, time.Minute, 30<<20, 1500, 30
		seg.State = store.SegmentClosed
		if err := s.UpdateSegment(ctx, seg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAddSegments checks the bulk insert: rows come back from Segments
// (so the stream's longest-segment bound grew) and a bad row inserts
// nothing.
func TestAddSegments(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := s.Stream(ctx, "cam", "main")
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	run, _ := s.StartRun(ctx, st.ID, t0)
	var segs []store.Segment
	for i := range 1000 {
		segs = append(segs, store.Segment{StreamID: st.ID, RunID: run.ID, Disk: "d", Key: fmt.Sprintf("k%d", i),
			Start: t0.Add(time.Duration(i) * 5 * time.Minute), Dur90k: 300 * 90000, WallDur: 5 * time.Minute,
			State: store.SegmentClosed, Bytes: 10, Codec: "avc1.640028", Width: 1, Height: 1})
	}
	if err := s.AddSegments(ctx, segs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Segments(ctx, st.ID, t0.Add(12*time.Hour+time.Minute), t0.Add(12*time.Hour+2*time.Minute))
	if err != nil || len(got) != 1 || got[0].Key != "k144" || got[0].ID != segs[144].ID {
		t.Errorf("Segments = %+v, %v; want k144", got, err)
	}
	bad := []store.Segment{segs[0], segs[1]}
	bad[0].Key, bad[1].Key = "new", "k5" // k5 exists: the whole batch fails
	if err := s.AddSegments(ctx, bad); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if got, _ := s.Segments(ctx, st.ID, t0, t0.Add(time.Minute)); len(got) != 1 {
		t.Errorf("failed batch left rows: %+v", got)
	}
}

// TestIndexFileModes: a new index and its -wal and -shm files are 0600;
// an existing one readable by others is restricted at open and reported.
func TestIndexFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCamera(context.Background(), config.Camera{Name: "door", URL: "rtsp://a/b"}); err != nil {
		t.Fatal(err)
	}
	if len(s.Tightened()) != 0 {
		t.Errorf("a new index reports tightened files %v", s.Tightened())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after reopening: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if got := s.Tightened(); len(got) == 0 || got[0] != path {
		t.Errorf("Tightened() = %v, want %s first", got, path)
	}
}
