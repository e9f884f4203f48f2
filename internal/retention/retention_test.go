package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

type fixture struct {
	idx  *sqlite.Store
	disk *local.Dir
	t0   time.Time
}

// newFixture records n closed one-minute segments of 1000 bytes for camera
// cam (stream main), plus one segment still being written.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	disk, err := local.Open(filepath.Join(dir, "d"), "d1", local.Options{Init: true})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ctx := context.Background()
	st, err := idx.Stream(ctx, "cam", "main")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	run, err := idx.StartRun(ctx, st.ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= n; i++ {
		key := fmt.Sprintf("cam/main/%03d.mp4", i)
		w, err := disk.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, 1000))
		w.Close()
		seg := store.Segment{StreamID: st.ID, RunID: run.ID, Disk: "d1", Key: key,
			Start: t0.Add(time.Duration(i) * time.Minute), StartPTS90k: int64(i) * 60 * 90000, State: store.SegmentWriting}
		if err := idx.AddSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		if i < n {
			seg.Bytes, seg.Dur90k, seg.WallDur, seg.State = 1000, 60*90000, time.Minute, store.SegmentClosed
			if err := idx.UpdateSegment(ctx, &seg); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &fixture{idx: idx, disk: disk, t0: t0}
}

func (f *fixture) keys(t *testing.T) []string {
	var keys []string
	for obj, err := range f.disk.List(context.Background(), "cam/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

func TestMaxBytesDeletesOldestAndRecordsWhy(t *testing.T) {
	f := newFixture(t, 10)
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk}},
		Policies: []Policy{{Camera: "cam", MaxBytes: 4500}}, Now: func() time.Time { return f.t0.Add(time.Hour) }}
	res, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 10 closed segments of 1000 bytes (the writing one counts 0): keep 4.
	if res.Segments != 6 || res.Bytes != 6000 {
		t.Errorf("deleted %+v, want 6 segments", res)
	}
	keys := f.keys(t)
	if len(keys) != 5 || keys[0] != "cam/main/006.mp4" {
		t.Errorf("files left %v, want 006…010 (the newest four and the one being written)", keys)
	}
	dels, err := f.idx.Deletions(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(dels) != 6 || !strings.Contains(dels[0].Reason, "max_bytes") || dels[0].Key != "cam/main/000.mp4" {
		t.Errorf("deletions = %+v", dels)
	}
	// A second pass has nothing to do.
	if res, _ := r.Pass(context.Background()); res.Segments != 0 {
		t.Errorf("second pass deleted %+v", res)
	}
}

func TestTinyMaxBytesNeverDeletesTheSegmentBeingWritten(t *testing.T) {
	f := newFixture(t, 3)
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk}},
		Policies: []Policy{{Camera: "cam", MaxBytes: 1}}}
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := f.keys(t); len(keys) != 1 || keys[0] != "cam/main/003.mp4" {
		t.Errorf("files left %v, want only the segment being written", keys)
	}
}

func TestMaxAge(t *testing.T) {
	f := newFixture(t, 10)
	// At t0+12m with max_age 5m, segments ending before t0+7m go: 0…6.
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk}},
		Policies: []Policy{{Camera: "cam", MaxAge: 5 * time.Minute}}, Now: func() time.Time { return f.t0.Add(12 * time.Minute) }}
	res, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 6 {
		t.Errorf("deleted %d, want 6 (segments ending before t0+7m)", res.Segments)
	}
}

func TestFreeSpaceFloor(t *testing.T) {
	f := newFixture(t, 10)
	free := int64(0)
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk, MinFree: 3000,
		Free: func() (int64, error) { return free + int64(11-len(f.keys(t)))*1000, nil }}}}
	res, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 {
		t.Errorf("deleted %d segments to free 3000 bytes, want 3", res.Segments)
	}
}

// TestFreeSpaceFloorPercent: a floor given as a percentage of the disk
// (min_free: 5%, the default) follows the disk's size: 30 % of 10,000
// bytes frees 3 segments of 1,000, as the byte floor of 3,000 does.
func TestFreeSpaceFloorPercent(t *testing.T) {
	f := newFixture(t, 10)
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk, MinFreePercent: 30,
		Free:  func() (int64, error) { return int64(11-len(f.keys(t))) * 1000, nil },
		Total: func() (int64, error) { return 10_000, nil }}}}
	res, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 {
		t.Errorf("deleted %d segments to keep 30%% of 10000 bytes free, want 3", res.Segments)
	}
}

// TestEvidenceLocks: with a tiny max_bytes, max_age and a disk below its
// floor, no rule deletes a segment overlapping an active lock of its
// camera; a lock of another camera protects nothing; once released, the
// next pass deletes.
func TestEvidenceLocks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 10)
	// Segments 3 and 4 overlap [t0+3m30s, t0+4m10s); 8 is covered whole.
	for _, l := range []store.Lock{
		{Camera: "cam", From: f.t0.Add(3*time.Minute + 30*time.Second), To: f.t0.Add(4*time.Minute + 10*time.Second), Reason: "break-in", CreatedBy: "alice", Created: f.t0},
		{Camera: "cam", From: f.t0.Add(8 * time.Minute), To: f.t0.Add(9 * time.Minute), Reason: "complaint", CreatedBy: "bob", Created: f.t0},
		{Camera: "other", From: f.t0, To: f.t0.Add(time.Hour), Reason: "not this camera", CreatedBy: "bob", Created: f.t0},
	} {
		if err := f.idx.AddLock(ctx, &l); err != nil {
			t.Fatal(err)
		}
	}
	free := int64(0) // always below the floor
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk, MinFree: 1 << 40, Free: func() (int64, error) { return free, nil }}},
		Policies: []Policy{{Camera: "cam", MaxBytes: 1, MaxAge: time.Minute}}, Now: func() time.Time { return f.t0.Add(time.Hour) }}
	res, err := r.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cam/main/003.mp4", "cam/main/004.mp4", "cam/main/008.mp4", "cam/main/010.mp4"}
	if keys := f.keys(t); strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("files left %v, want the locked ones and the one being written %v", keys, want)
	}
	if res.Segments != 7 || res.Locked == 0 {
		t.Errorf("pass: %+v", res)
	}
	// Release one lock: its segments go at the next pass.
	locks, _ := f.idx.Locks(ctx, "cam", f.t0, f.t0.Add(time.Hour), false)
	if len(locks) != 2 {
		t.Fatalf("active locks %+v", locks)
	}
	if err := f.idx.ReleaseLock(ctx, locks[0].ID, "admin", "case closed", f.t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.idx.ReleaseLock(ctx, locks[0].ID, "admin", "again", f.t0.Add(time.Hour)); !errors.Is(err, store.ErrReleased) {
		t.Errorf("second release: %v", err)
	}
	if _, err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := f.keys(t); strings.Join(keys, " ") != "cam/main/008.mp4 cam/main/010.mp4" {
		t.Errorf("after releasing the first lock: %v", keys)
	}
	all, _ := f.idx.Locks(ctx, "", f.t0, f.t0.Add(time.Hour), true)
	if len(all) != 3 || all[1].ID != locks[0].ID || all[1].ReleasedBy != "admin" || all[1].ReleaseReason != "case closed" || all[1].Active() || !all[2].Active() {
		t.Errorf("locks on record: %+v", all)
	}
}

type fakeAudit struct{ entries []audit.Entry }

func (f *fakeAudit) Append(_ context.Context, e audit.Entry) (audit.Entry, error) {
	f.entries = append(f.entries, e)
	return e, nil
}

type fakeChain struct {
	keys []string
	fail bool
}

func (f *fakeChain) SegmentDeleted(_ context.Context, camera, stream string, seg store.Segment, reason string, _ time.Time) error {
	if f.fail {
		return errors.New("index down")
	}
	f.keys = append(f.keys, camera+"/"+stream+" "+seg.Key+" "+reason)
	return nil
}

// TestDeletionsOnRecord: each deleted segment goes into its stream's
// hash chain before it is deleted, and each pass leaves one audit entry
// per stream and reason; when the chain cannot be written nothing is
// deleted.
func TestDeletionsOnRecord(t *testing.T) {
	f := newFixture(t, 10)
	ch := &fakeChain{fail: true}
	au := &fakeAudit{}
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk}}, Chain: ch, Audit: au,
		Policies: []Policy{{Camera: "cam", MaxBytes: 4500}}, Now: func() time.Time { return f.t0.Add(time.Hour) }}
	if _, err := r.Pass(context.Background()); err == nil || len(f.keys(t)) != 11 {
		t.Fatalf("pass with the chain down: %v, %d files left", err, len(f.keys(t)))
	}
	ch.fail = false
	res, err := r.Pass(context.Background())
	if err != nil || res.Segments != 6 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if len(ch.keys) != 6 || !strings.HasPrefix(ch.keys[0], "cam/main cam/main/000.mp4 retention: camera over max_bytes") {
		t.Errorf("chain deletions: %q", ch.keys)
	}
	if len(au.entries) != 1 || au.entries[0].Action != audit.RetentionDelete || au.entries[0].Camera != "cam" ||
		au.entries[0].Detail["segments"] != "6" || au.entries[0].Detail["bytes"] != "6000" {
		t.Errorf("audit entries: %+v", au.entries)
	}
}

// TestLockedFullAlarm: a disk below its floor whose every closed segment
// is locked raises the alarm (LockedFull, one warning per
// lockedFullWarnEvery); releasing the lock lets the next pass free space
// and clears it.
func TestLockedFullAlarm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 10)
	lock := store.Lock{Camera: "cam", From: f.t0, To: f.t0.Add(10 * time.Minute), Reason: "flood", CreatedBy: "eve", Created: f.t0}
	if err := f.idx.AddLock(ctx, &lock); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	now := f.t0.Add(time.Hour)
	r := &Retention{Index: f.idx, Disks: map[string]Disk{"d1": {Store: f.disk, MinFree: 3000,
		Free: func() (int64, error) { return int64(11-len(f.keys(t))) * 1000, nil }}},
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for i := 0; i < 3; i++ {
		if _, err := r.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	a, ok := r.LockedFull()["d1"]
	if !ok || a.Locked != 10 || a.Free != 0 || a.MinFree != 3000 || !a.Since.Equal(f.t0.Add(time.Hour)) {
		t.Fatalf("alarm %+v %v, want d1 with 10 locked segments since the first pass", a, ok)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings in 3 passes within %s, want 1:\n%s", n, lockedFullWarnEvery, logs.String())
	}
	now = now.Add(lockedFullWarnEvery)
	r.Pass(ctx)
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings after %s more, want 2", n, lockedFullWarnEvery)
	}
	if err := f.idx.ReleaseLock(ctx, lock.ID, "admin", "case closed", now); err != nil {
		t.Fatal(err)
	}
	res, err := r.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LockedFull()["d1"]; ok || res.Segments != 3 || !strings.Contains(logs.String(), "no longer full of locked video") {
		t.Errorf("after release: deleted %d, alarm %v, log:\n%s", res.Segments, r.LockedFull(), logs.String())
	}
}
