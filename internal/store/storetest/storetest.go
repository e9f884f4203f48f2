// Package storetest is the conformance suite every store.Store
// implementation must pass (SQLite now, PostgreSQL later).
//
// The suite fixes the parts of the contract that store.go leaves to
// implementations:
//   - Times round-trip exactly to the nanosecond and come back in UTC
//     (PostgreSQL's timestamptz holds microseconds only, so a PostgreSQL
//     store must keep nanoseconds, e.g. as bigint).
//   - Segments returns segments with Start < to and End() > from: one that
//     ends exactly at from or starts exactly at to is excluded, and an
//     empty range (to <= from) holds none. Runs likewise.
//   - Runs treats an open run as extending forever and fills Run.End from
//     the run's closed segments (the end of the last one; zero if none),
//     whether or not the run has ended.
//   - Unknown IDs (stream, run, segment, garbage entry) are wrapped
//     store.ErrNotFound, also for Segments, Runs and Deletions of an
//     unknown stream; MarkGarbage of a writing segment is wrapped
//     store.ErrSegmentWriting.
//   - Every method given a cancelled context fails with an error that
//     wraps context.Canceled.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/store"
)

// Run runs the suite. open must return a new, empty store each time it is
// called; the suite closes it (open should not register its own Close).
// Subtests do not run in parallel with each other.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Streams", testStreams},
		{"StreamsConcurrentCreate", testStreamsConcurrentCreate},
		{"Runs", testRuns},
		{"RunsOverlap", testRunsOverlap},
		{"SegmentRoundTrip", testSegmentRoundTrip},
		{"SegmentUpdate", testSegmentUpdate},
		{"SegmentsOverlap", testSegmentsOverlap},
		{"SegmentsOrderAndIsolation", testSegmentsOrder},
		{"WritingSegments", testWritingSegments},
		{"HasSegmentsOn", testHasSegmentsOn},
		{"DiskUsage", testDiskUsage},
		{"Garbage", testGarbage},
		{"NotFound", testNotFound},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			defer func() {
				switch p := recover().(type) {
				case nil:
				case fatal:
					t.Fatal(p.msg)
				default:
					panic(p)
				}
			}()
			tc.fn(t, s)
		})
	}
}

// t0 is an arbitrary base time with a non-round nanosecond part.
var t0 = time.Date(2025, 3, 30, 0, 59, 30, 123456789, time.UTC)

// fatal is the panic value of must, turned into t.Fatal by Run. (Go
// cannot pass a multi-value call plus t to one function, hence the panic.)
type fatal struct{ msg string }

// must returns v, or fails the current subtest with err and the caller's
// line. Call it only from the subtest's own goroutine.
func must[T any](v T, err error) T {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(fatal{fmt.Sprintf("%s:%d: %v", filepath.Base(file), line, err)})
	}
	return v
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture creates a stream and an open run starting at t0.
func fixture(t *testing.T, s store.Store, camera string) (store.Stream, store.Run) {
	t.Helper()
	ctx := context.Background()
	st := must(s.Stream(ctx, camera, "main"))
	r := must(s.StartRun(ctx, st.ID, t0))
	return st, r
}

// closedSeg returns a closed segment of the run covering [start,
// start+d), with d a whole number of 90 kHz ticks.
func closedSeg(st store.Stream, r store.Run, key string, start time.Time, d time.Duration) *store.Segment {
	return &store.Segment{
		StreamID: st.ID, RunID: r.ID, Disk: "d1", Key: key,
		Start: start, Dur90k: int64(d) * 90000 / int64(time.Second), WallDur: d,
		StartPTS90k: 1 << 33, Bytes: 1000, Frames: 60, KeyFrames: 1,
		State: store.SegmentClosed, Codec: "avc1.640028", Width: 1920, Height: 1080,
	}
}

// writingSeg returns a writing segment of the run starting at start,
// with no duration yet.
func writingSeg(st store.Stream, r store.Run, key string, start time.Time) *store.Segment {
	g := closedSeg(st, r, key, start, 0)
	g.State = store.SegmentWriting
	return g
}

// add inserts seg as writing and then updates it to its own state.
func add(t *testing.T, s store.Store, seg *store.Segment) {
	t.Helper()
	ctx := context.Background()
	want := *seg
	seg.State = store.SegmentWriting
	seg.WallDur = 0
	check(t, s.AddSegment(ctx, seg))
	if seg.ID <= 0 {
		t.Fatalf("AddSegment set ID %d", seg.ID)
	}
	if want.State != store.SegmentWriting {
		seg.State, seg.WallDur = want.State, want.WallDur
		check(t, s.UpdateSegment(ctx, seg))
	}
}

func keys(segs []store.Segment) []string {
	out := make([]string, len(segs))
	for i, g := range segs {
		out[i] = g.Key
	}
	return out
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testStreams(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got := must(s.Streams(ctx)); len(got) != 0 {
		t.Fatalf("new store has streams %v", got)
	}
	a := must(s.Stream(ctx, "door", "main"))
	b := must(s.Stream(ctx, "door", "sub"))
	c := must(s.Stream(ctx, "yard", "main"))
	a2 := must(s.Stream(ctx, "door", "main"))
	if a != a2 {
		t.Errorf("Stream not idempotent: %+v then %+v", a, a2)
	}
	if a.Camera != "door" || a.Name != "main" || a.ID == 0 {
		t.Errorf("Stream = %+v", a)
	}
	if a.ID == b.ID || a.ID == c.ID || b.ID == c.ID {
		t.Errorf("IDs not distinct: %d %d %d", a.ID, b.ID, c.ID)
	}
	got := must(s.Streams(ctx))
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	want := []store.Stream{a, b, c}
	sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Streams = %+v, want %+v", got, want)
	}
}

func testStreamsConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st, err := s.Stream(ctx, "race", "main")
			ids[i], errs[i] = st.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent Stream gave IDs %v", ids)
		}
	}
	if got := must(s.Streams(ctx)); len(got) != 1 {
		t.Fatalf("Streams = %+v, want one", got)
	}
}

func testRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	if r.ID == 0 || r.StreamID != st.ID || !r.Start.Equal(t0) {
		t.Fatalf("StartRun = %+v", r)
	}
	runs := must(s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)))
	if len(runs) != 1 || runs[0].ID != r.ID || !runs[0].Start.Equal(t0) ||
		!runs[0].End.IsZero() || runs[0].EndReason != "" || runs[0].StreamID != st.ID {
		t.Fatalf("open run listed as %+v", runs)
	}
	// A writing segment does not count towards End.
	g1 := closedSeg(st, r, "a", t0, time.Minute)
	g2 := closedSeg(st, r, "b", t0.Add(time.Minute), time.Minute+7*time.Millisecond)
	add(t, s, g1)
	g2.State = store.SegmentWriting
	add(t, s, g2)
	g2.Dur90k = 90000 * 30
	check(t, s.UpdateSegment(ctx, g2))
	runs = must(s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)))
	if len(runs) != 1 || !runs[0].End.Equal(g1.End()) {
		t.Fatalf("run with one closed segment = %+v, want End %v", runs, g1.End())
	}
	g2.State, g2.WallDur = store.SegmentClosed, time.Minute+7*time.Millisecond
	check(t, s.UpdateSegment(ctx, g2))
	check(t, s.EndRun(ctx, r.ID, g2.End(), "camera disconnected"))
	runs = must(s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)))
	want := t0.Add(2*time.Minute + 7*time.Millisecond)
	if len(runs) != 1 || !runs[0].End.Equal(want) || runs[0].EndReason != "camera disconnected" {
		t.Fatalf("ended run = %+v, want End %v", runs, want)
	}
	if runs[0].End.Location() != time.UTC {
		t.Errorf("Run.End location %v, want UTC", runs[0].End.Location())
	}
	// A second run, listed after the first.
	r2 := must(s.StartRun(ctx, st.ID, want.Add(5*time.Second)))
	runs = must(s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)))
	if len(runs) != 2 || runs[0].ID != r.ID || runs[1].ID != r2.ID || !runs[1].End.IsZero() {
		t.Fatalf("two runs = %+v", runs)
	}
}

func testRunsOverlap(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	add(t, s, closedSeg(st, r, "a", t0, time.Minute))
	end := t0.Add(time.Minute)
	check(t, s.EndRun(ctx, r.ID, end, "stopped"))
	open := must(s.StartRun(ctx, st.ID, end.Add(time.Minute)))
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     []int64
	}{
		{"both", t0, end.Add(time.Hour), []int64{r.ID, open.ID}},
		{"to at ended run start", t0.Add(-time.Hour), t0, nil},
		{"from at ended run end", end, end.Add(time.Minute), nil},
		{"from just before end", end.Add(-1), end.Add(time.Minute), []int64{r.ID}},
		{"to just after start", t0.Add(-time.Hour), t0.Add(1), []int64{r.ID}},
		{"open run far later", end.Add(1000 * time.Hour), end.Add(1001 * time.Hour), []int64{open.ID}},
		{"to at open run start", end, end.Add(time.Minute), nil},
	} {
		runs := must(s.Runs(ctx, st.ID, c.from, c.to))
		var got []int64
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: Runs = %v, want %v", c.name, got, c.want)
		}
	}
}

func testSegmentRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	in := store.Segment{
		StreamID: st.ID, RunID: r.ID, Disk: "disk-a", Key: "door/main/0001.mp4",
		Start: t0, Dur90k: 0, StartPTS90k: 5_000_000_000, Bytes: 1234,
		Frames: 0, KeyFrames: 0, State: store.SegmentWriting,
		Codec: "hvc1.1.6.L120.B0", Width: 2560, Height: 1440,
	}
	seg := in
	check(t, s.AddSegment(ctx, &seg))
	in.ID = seg.ID
	got := must(s.Segments(ctx, st.ID, t0.Add(-time.Hour), t0.Add(time.Hour)))
	if len(got) != 1 {
		t.Fatalf("Segments = %+v", got)
	}
	if g := got[0]; !g.Start.Equal(in.Start) || g.Start.Location() != time.UTC {
		t.Errorf("Start = %v, want %v in UTC", g.Start, in.Start)
	}
	got[0].Start = in.Start
	if got[0] != in {
		t.Errorf("round trip:\n got %+v\nwant %+v", got[0], in)
	}
	one := must(s.Segment(ctx, seg.ID))
	one.Start = in.Start
	if one != in {
		t.Errorf("Segment(%d):\n got %+v\nwant %+v", seg.ID, one, in)
	}
	dup := in
	if err := s.AddSegment(ctx, &dup); err == nil {
		t.Errorf("AddSegment with a (Disk, Key) already in use succeeded")
	}
}

func testSegmentUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	seg := closedSeg(st, r, "k", t0, 0)
	seg.State, seg.Dur90k, seg.Bytes, seg.Frames, seg.KeyFrames = store.SegmentWriting, 0, 100, 0, 0
	check(t, s.AddSegment(ctx, seg))
	seg.Dur90k, seg.Bytes, seg.Frames, seg.KeyFrames = 90000*10, 5000, 300, 5
	check(t, s.UpdateSegment(ctx, seg))
	got := must(s.Segments(ctx, st.ID, t0, t0.Add(time.Hour)))
	if len(got) != 1 || got[0].Dur90k != seg.Dur90k || got[0].Bytes != 5000 || got[0].Frames != 300 ||
		got[0].KeyFrames != 5 || got[0].State != store.SegmentWriting || got[0].WallDur != 0 {
		t.Fatalf("after update: %+v", got)
	}
	// While writing, End follows Dur90k: a query after 10 s misses it.
	if got := must(s.Segments(ctx, st.ID, t0.Add(10*time.Second), t0.Add(time.Hour))); len(got) != 0 {
		t.Errorf("writing segment ending at 10 s found from 10 s: %+v", got)
	}
	seg.Dur90k = 90000 * 61
	seg.WallDur = 61*time.Second + 3*time.Millisecond
	seg.State = store.SegmentClosed
	check(t, s.UpdateSegment(ctx, seg))
	got = must(s.Segments(ctx, st.ID, t0.Add(61*time.Second), t0.Add(time.Hour)))
	if len(got) != 1 || got[0].State != store.SegmentClosed || got[0].WallDur != seg.WallDur ||
		!got[0].End().Equal(t0.Add(seg.WallDur)) {
		t.Fatalf("closed segment: %+v", got)
	}
	bad := *seg
	bad.ID = seg.ID + 1000
	if err := s.UpdateSegment(ctx, &bad); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateSegment of unknown ID: %v, want ErrNotFound", err)
	}
}

func testSegmentsOverlap(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	// Three abutting segments [0,60) [60,120) [120,180) seconds after t0.
	for i, k := range []string{"a", "b", "c"} {
		add(t, s, closedSeg(st, r, k, t0.Add(time.Duration(i)*time.Minute), time.Minute))
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"all", at(-1000), at(1000), []string{"a", "b", "c"}},
		{"exact", at(0), at(180), []string{"a", "b", "c"}},
		{"ending at from excluded", at(60), at(120), []string{"b"}},
		{"starting at to excluded", at(30), at(60), []string{"a"}},
		{"one ns into next", at(30), at(60).Add(1), []string{"a", "b"}},
		{"one ns before end", at(60).Add(-1), at(61), []string{"a", "b"}},
		{"inside one", at(70), at(80), []string{"b"}},
		{"after all", at(180), at(500), nil},
		{"before all", at(-100), at(0), nil},
		{"empty range", at(90), at(90), nil},
		{"inverted range", at(150), at(30), nil},
		{"zero from", time.Time{}, at(1), []string{"a"}},
	} {
		got := keys(must(s.Segments(ctx, st.ID, c.from, c.to)))
		if !eqStrings(got, c.want) {
			t.Errorf("%s: Segments(%v, %v) = %v, want %v", c.name, c.from.Sub(t0), c.to.Sub(t0), got, c.want)
		}
	}
	// A long segment far in the past still overlaps a range near its end.
	long := closedSeg(st, r, "long", t0.Add(-10*time.Hour), 9*time.Hour+30*time.Minute)
	add(t, s, long)
	if got := keys(must(s.Segments(ctx, st.ID, at(-1900), at(-1800)))); !eqStrings(got, []string{"long"}) {
		t.Errorf("long segment: %v", got)
	}
}

func testSegmentsOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	other, r2 := fixture(t, s, "yard")
	// Inserted out of order.
	for _, i := range []int{3, 0, 2, 1} {
		add(t, s, closedSeg(st, r, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute), time.Minute))
	}
	add(t, s, closedSeg(other, r2, "yard-0", t0, time.Minute))
	got := keys(must(s.Segments(ctx, st.ID, t0, t0.Add(time.Hour))))
	if !eqStrings(got, []string{"0", "1", "2", "3"}) {
		t.Errorf("Segments = %v, want ordered by start", got)
	}
	if got := keys(must(s.Segments(ctx, other.ID, t0, t0.Add(time.Hour)))); !eqStrings(got, []string{"yard-0"}) {
		t.Errorf("other stream's Segments = %v", got)
	}
	// A run must belong to the segment's stream.
	bad := closedSeg(st, r2, "mismatch", t0, time.Minute)
	bad.State = store.SegmentWriting
	if err := s.AddSegment(ctx, bad); err == nil {
		t.Errorf("AddSegment with another stream's run succeeded")
	}
}

func testWritingSegments(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	if got := must(s.WritingSegments(ctx)); len(got) != 0 {
		t.Fatalf("WritingSegments on empty store = %+v", got)
	}
	add(t, s, closedSeg(st, r, "closed", t0, time.Minute))
	w := closedSeg(st, r, "writing", t0.Add(time.Minute), 0)
	w.State = store.SegmentWriting
	add(t, s, w)
	got := must(s.WritingSegments(ctx))
	if len(got) != 1 || got[0].ID != w.ID || got[0].Key != "writing" || got[0].State != store.SegmentWriting {
		t.Fatalf("WritingSegments = %+v", got)
	}
	w.State, w.WallDur, w.Dur90k = store.SegmentClosed, time.Second, 90000
	check(t, s.UpdateSegment(ctx, w))
	if got := must(s.WritingSegments(ctx)); len(got) != 0 {
		t.Fatalf("WritingSegments after close = %+v", got)
	}
}

func testDiskUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	if u := must(s.DiskUsage(ctx, t0)); len(u) != 0 {
		t.Errorf("DiskUsage of an empty index: %+v", u)
	}
	st, r := fixture(t, s, "door")
	for i, disk := range []string{"b", "a", "b"} {
		seg := closedSeg(st, r, fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Minute), time.Minute)
		seg.Disk, seg.Bytes = disk, int64(100*(i+1))
		add(t, s, seg)
	}
	got := must(s.DiskUsage(ctx, t0.Add(90*time.Second)))
	want := []store.DiskUsage{
		{Disk: "a", Segments: 1, Bytes: 200, Oldest: t0.Add(time.Minute), BytesSince: 0},
		{Disk: "b", Segments: 2, Bytes: 400, Oldest: t0, BytesSince: 300},
	}
	if len(got) != 2 {
		t.Fatalf("DiskUsage = %+v", got)
	}
	for i := range want {
		g := got[i]
		if g.Disk != want[i].Disk || g.Segments != want[i].Segments || g.Bytes != want[i].Bytes ||
			!g.Oldest.Equal(want[i].Oldest) || g.BytesSince != want[i].BytesSince {
			t.Errorf("DiskUsage[%d] = %+v, want %+v", i, g, want[i])
		}
	}
}

func testHasSegmentsOn(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	if must(s.HasSegmentsOn(ctx, "d1")) {
		t.Errorf("HasSegmentsOn on empty store")
	}
	add(t, s, closedSeg(st, r, "a", t0, time.Minute))
	if !must(s.HasSegmentsOn(ctx, "d1")) || must(s.HasSegmentsOn(ctx, "d2")) {
		t.Errorf("HasSegmentsOn wrong after adding a segment on d1")
	}
}

func testGarbage(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	a := closedSeg(st, r, "a", t0, time.Minute)
	b := closedSeg(st, r, "b", t0.Add(time.Minute), time.Minute+time.Millisecond)
	w := closedSeg(st, r, "w", t0.Add(2*time.Minute), 0)
	w.State = store.SegmentWriting
	add(t, s, a)
	add(t, s, b)
	add(t, s, w)
	if err := s.MarkGarbage(ctx, w.ID, "retention", t0); !errors.Is(err, store.ErrSegmentWriting) {
		t.Errorf("MarkGarbage of a writing segment: %v, want ErrSegmentWriting", err)
	}
	if d := must(s.Deletions(ctx, st.ID)); len(d) != 0 {
		t.Errorf("refused MarkGarbage left deletions %+v", d)
	}
	at1, at2 := t0.Add(48*time.Hour), t0.Add(49*time.Hour)
	// Marked in reverse order of time: Deletions is ordered by At.
	check(t, s.MarkGarbage(ctx, b.ID, "manual", at2))
	check(t, s.MarkGarbage(ctx, a.ID, "retention: age", at1))
	if got := keys(must(s.Segments(ctx, st.ID, t0, t0.Add(time.Hour)))); !eqStrings(got, []string{"w"}) {
		t.Errorf("Segments after MarkGarbage = %v", got)
	}
	if err := s.MarkGarbage(ctx, a.ID, "again", at2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second MarkGarbage: %v, want ErrNotFound", err)
	}
	gl := must(s.GarbageList(ctx))
	sort.Slice(gl, func(i, j int) bool { return gl[i].Key < gl[j].Key })
	want := []store.Garbage{
		{Disk: "d1", Key: "a", Reason: "retention: age", Marked: at1},
		{Disk: "d1", Key: "b", Reason: "manual", Marked: at2},
	}
	if len(gl) != 2 {
		t.Fatalf("GarbageList = %+v", gl)
	}
	for i := range want {
		if gl[i].Disk != want[i].Disk || gl[i].Key != want[i].Key || gl[i].Reason != want[i].Reason ||
			!gl[i].Marked.Equal(want[i].Marked) {
			t.Errorf("GarbageList[%d] = %+v, want %+v", i, gl[i], want[i])
		}
	}
	dels := must(s.Deletions(ctx, st.ID))
	wantD := []store.Deletion{
		{SegmentID: a.ID, StreamID: st.ID, Disk: "d1", Key: "a", Start: a.Start, End: a.End(),
			Bytes: a.Bytes, Reason: "retention: age", At: at1},
		{SegmentID: b.ID, StreamID: st.ID, Disk: "d1", Key: "b", Start: b.Start, End: b.End(),
			Bytes: b.Bytes, Reason: "manual", At: at2},
	}
	if len(dels) != len(wantD) {
		t.Fatalf("Deletions = %+v", dels)
	}
	for i, d := range dels {
		wd := wantD[i]
		if d.SegmentID != wd.SegmentID || d.StreamID != wd.StreamID || d.Disk != wd.Disk || d.Key != wd.Key ||
			!d.Start.Equal(wd.Start) || !d.End.Equal(wd.End) || d.Bytes != wd.Bytes || d.Reason != wd.Reason ||
			!d.At.Equal(wd.At) {
			t.Errorf("Deletions[%d] = %+v\nwant %+v", i, d, wd)
		}
	}
	check(t, s.UnmarkGarbage(ctx, "d1", "a"))
	if gl := must(s.GarbageList(ctx)); len(gl) != 1 || gl[0].Key != "b" {
		t.Errorf("GarbageList after unmark = %+v", gl)
	}
	if err := s.UnmarkGarbage(ctx, "d1", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second UnmarkGarbage: %v, want ErrNotFound", err)
	}
	// The deletion log outlives the garbage entry.
	if got := must(s.Deletions(ctx, st.ID)); len(got) != 2 {
		t.Errorf("Deletions after unmark = %+v", got)
	}
	// The run keeps no End from deleted segments: only w (writing) is left.
	runs := must(s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)))
	if len(runs) != 1 || !runs[0].End.IsZero() {
		t.Errorf("Runs after deleting all closed segments = %+v", runs)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, r := fixture(t, s, "door")
	const bad = 999999
	nf := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	_, err := s.StartRun(ctx, bad, t0)
	nf("StartRun", err)
	nf("EndRun", s.EndRun(ctx, bad, t0, "x"))
	nf("AddSegment unknown run", s.AddSegment(ctx, writingSeg(st, store.Run{ID: bad}, "x", t0)))
	nf("AddSegment unknown stream", s.AddSegment(ctx, writingSeg(store.Stream{ID: bad}, r, "y", t0)))
	nf("UpdateSegment", s.UpdateSegment(ctx, &store.Segment{ID: bad, State: store.SegmentClosed, Disk: "d", Key: "k"}))
	_, err = s.Segments(ctx, bad, t0, t0.Add(time.Hour))
	nf("Segments", err)
	_, err = s.Runs(ctx, bad, t0, t0.Add(time.Hour))
	nf("Runs", err)
	_, err = s.Deletions(ctx, bad)
	nf("Deletions", err)
	nf("MarkGarbage", s.MarkGarbage(ctx, bad, "x", t0))
	_, err = s.Segment(ctx, bad)
	nf("Segment", err)
	nf("UnmarkGarbage", s.UnmarkGarbage(ctx, "d1", "nope"))
	// A known stream with nothing in range is not an error.
	if _, err := s.Segments(ctx, st.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Errorf("Segments of an empty known stream: %v", err)
	}
	if _, err := s.Deletions(ctx, st.ID); err != nil {
		t.Errorf("Deletions of an empty known stream: %v", err)
	}
}

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := must(s.Stream(ctx, "door", "main"))
	// Odd nanoseconds, a non-UTC zone and a monotonic reading.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	start := time.Now().In(zone).Add(time.Nanosecond * 7)
	r := must(s.StartRun(ctx, st.ID, start))
	seg := closedSeg(st, r, "a", start.Add(1), 59*time.Second+999999999)
	seg.Dur90k = 5399999
	add(t, s, seg)
	check(t, s.EndRun(ctx, r.ID, seg.End(), "stop"))
	runs := must(s.Runs(ctx, st.ID, start, start.Add(time.Hour)))
	if len(runs) != 1 || !runs[0].Start.Equal(start) || runs[0].Start.Location() != time.UTC ||
		!runs[0].End.Equal(seg.End()) || runs[0].End.Location() != time.UTC {
		t.Errorf("run times: %+v, want start %v end %v in UTC", runs, start, seg.End())
	}
	got := must(s.Segments(ctx, st.ID, start, start.Add(time.Hour)))
	if len(got) != 1 || !got[0].Start.Equal(start.Add(1)) || got[0].Start.Location() != time.UTC ||
		got[0].WallDur != seg.WallDur || !got[0].End().Equal(seg.End()) {
		t.Errorf("segment times: %+v, want start %v", got, start.Add(1))
	}
	// Abutting exactly to the nanosecond: the next segment starts at End.
	next := closedSeg(st, r, "b", seg.End(), time.Minute)
	add(t, s, next)
	got = must(s.Segments(ctx, st.ID, seg.End(), seg.End().Add(1)))
	if !eqStrings(keys(got), []string{"b"}) {
		t.Errorf("segment starting at the previous End: %v, want [b]", keys(got))
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, perWorker = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := range workers {
		wg.Go(func() {
			err := func() error {
				st, err := s.Stream(ctx, fmt.Sprintf("cam%d", w), "main")
				if err != nil {
					return err
				}
				r, err := s.StartRun(ctx, st.ID, t0)
				if err != nil {
					return err
				}
				for i := range perWorker {
					seg := closedSeg(st, r, fmt.Sprintf("cam%d/%d", w, i), t0.Add(time.Duration(i)*time.Minute), 0)
					seg.State = store.SegmentWriting
					if err := s.AddSegment(ctx, seg); err != nil {
						return err
					}
					seg.Dur90k, seg.WallDur, seg.State = 90000*60, time.Minute, store.SegmentClosed
					if err := s.UpdateSegment(ctx, seg); err != nil {
						return err
					}
					if _, err := s.Segments(ctx, st.ID, t0, t0.Add(time.Hour)); err != nil {
						return err
					}
					if i%5 == 4 {
						if err := s.MarkGarbage(ctx, seg.ID, "test", t0); err != nil {
							return err
						}
					}
				}
				got, err := s.Segments(ctx, st.ID, t0, t0.Add(time.Hour))
				if err != nil {
					return err
				}
				if want := perWorker - perWorker/5; len(got) != want {
					return fmt.Errorf("stream %d: %d segments, want %d", st.ID, len(got), want)
				}
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
		// Readers that only list while the writers write.
		wg.Go(func() {
			for range perWorker {
				if _, err := s.Streams(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := s.WritingSegments(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := s.GarbageList(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if gl := must(s.GarbageList(ctx)); len(gl) != workers*(perWorker/5) {
		t.Errorf("GarbageList has %d entries, want %d", len(gl), workers*(perWorker/5))
	}
}

func testCancelled(t *testing.T, s store.Store) {
	st, r := fixture(t, s, "door")
	seg := closedSeg(st, r, "a", t0, time.Minute)
	add(t, s, seg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Stream":          func() error { _, err := s.Stream(ctx, "new", "main"); return err },
		"Stream existing": func() error { _, err := s.Stream(ctx, "door", "main"); return err },
		"Streams":         func() error { _, err := s.Streams(ctx); return err },
		"StartRun":        func() error { _, err := s.StartRun(ctx, st.ID, t0); return err },
		"EndRun":          func() error { return s.EndRun(ctx, r.ID, t0, "x") },
		"AddSegment": func() error {
			g := closedSeg(st, r, "b", t0, 0)
			g.State = store.SegmentWriting
			return s.AddSegment(ctx, g)
		},
		"UpdateSegment":   func() error { return s.UpdateSegment(ctx, seg) },
		"Segments":        func() error { _, err := s.Segments(ctx, st.ID, t0, t0.Add(time.Hour)); return err },
		"Runs":            func() error { _, err := s.Runs(ctx, st.ID, t0, t0.Add(time.Hour)); return err },
		"WritingSegments": func() error { _, err := s.WritingSegments(ctx); return err },
		"HasSegmentsOn":   func() error { _, err := s.HasSegmentsOn(ctx, "d1"); return err },
		"MarkGarbage":     func() error { return s.MarkGarbage(ctx, seg.ID, "x", t0) },
		"GarbageList":     func() error { _, err := s.GarbageList(ctx); return err },
		"UnmarkGarbage":   func() error { return s.UnmarkGarbage(ctx, "d1", "a") },
		"Deletions":       func() error { _, err := s.Deletions(ctx, st.ID); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing was written.
	bg := context.Background()
	if got := must(s.Segments(bg, st.ID, t0, t0.Add(time.Hour))); len(got) != 1 {
		t.Errorf("segments after cancelled calls: %+v", got)
	}
	if got := must(s.Streams(bg)); len(got) != 1 {
		t.Errorf("streams after cancelled calls: %+v", got)
	}
}
