package recorder_test

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/check"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
)

// TestClockSteps steps the local wall clock under a recording camera:
// forward 90 s, back 3 s (into what was just recorded), back two hours
// (before anything recorded). Expected (docs/time.md): each step ends the
// run at the next key frame with the step as its reason and no frame lost
// (media time runs on without a hole); the next run is anchored at the
// new clock, except where that would overlap recordings the stream has,
// where it starts at their end; custos check finds nothing wrong.
func TestClockSteps(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Options{Cameras: 1})
	var offset atomic.Int64 // nanoseconds added to the wall clock
	base := time.Now()
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{
		Camera: "cam", Stream: "main",
		Client: rtsp.ClientConfig{URL: "rtsp://" + r.addr + "/cam1/sub"},
		Disk:   r.disk, Index: r.idx, FsyncEvery: time.Second,
		Now:  func() time.Time { return time.Now().Round(0).Add(time.Duration(offset.Load())) },
		Mono: func() time.Duration { return time.Since(base) },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sup.Run(ctx) })
	steps := []time.Duration{90 * time.Second, -3 * time.Second, -2 * time.Hour}
	time.Sleep(4 * time.Second)
	for _, st := range steps {
		offset.Add(int64(st))
		time.Sleep(4 * time.Second) // at least one key frame (GOP 2 s) after the step
	}
	cancel()
	wg.Wait()

	stream, err := r.idx.Stream(context.Background(), "cam", "main")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := r.idx.Runs(context.Background(), stream.ID, time.Unix(0, 0), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Runs come ordered by start; IDs give the recording order.
	if len(runs) != 4 {
		t.Fatalf("%d runs, want 4: %+v", len(runs), runs)
	}
	slices.SortFunc(runs, func(a, b store.Run) int { return cmp.Compare(a.ID, b.ID) })
	r1, r2, r3, back2h := runs[0], runs[1], runs[2], runs[3]
	for i, want := range []string{"+90.", "-3.", "-7200."} {
		if !strings.Contains(runs[i].EndReason, "clock stepped "+want) {
			t.Errorf("run %d ended %q, want the step %s s", i+1, runs[i].EndReason, want)
		}
	}
	if gap := r2.Start.Sub(r1.End); math.Abs(gap.Seconds()-90) > 0.2 {
		t.Errorf("forward step: gap %s between the runs, want 90 s", gap)
	}
	if !r3.Start.Equal(r2.End) {
		t.Errorf("back 3 s: run starts %s, the previous ends %s: want it held at the end (no overlap)", r3.Start, r2.End)
	}
	want := r3.End.Add(-2 * time.Hour)
	if d := back2h.Start.Sub(want); d < -4*time.Second || d > time.Second {
		t.Errorf("back two hours: run starts %s, want about %s (the new clock)", back2h.Start, want)
	}
	if !back2h.End.Before(r1.Start) {
		t.Errorf("the run after the two-hour step (%s–%s) overlaps the first (from %s)", back2h.Start, back2h.End, r1.Start)
	}

	// No frame lost: in recording order the runs' media times abut.
	segs := r.segments(t)
	var frames int64
	order := map[int64]int{r1.ID: 0, r2.ID: 1, r3.ID: 2, back2h.ID: 3}
	byRun := make([][2]int64, 4) // first start, last end (pts90k)
	for i := range byRun {
		byRun[i] = [2]int64{math.MaxInt64, math.MinInt64}
	}
	for _, sg := range segs {
		frames += sg.Frames
		k := order[sg.RunID]
		byRun[k][0] = min(byRun[k][0], sg.StartPTS90k)
		byRun[k][1] = max(byRun[k][1], sg.StartPTS90k+sg.Dur90k)
	}
	for k := 1; k < 4; k++ {
		if byRun[k][0] != byRun[k-1][1] {
			t.Errorf("run %d starts at media %d, the run before ends at %d: frames lost at the step", k+1, byRun[k][0], byRun[k-1][1])
		}
	}
	if got := sup.Status().Frames; got != frames {
		t.Errorf("recorder received %d frames, segments hold %d", got, frames)
	}
	rep, err := check.Run(context.Background(), r.idx, map[string]blob.Store{"disk1": r.disk})
	if err != nil || !rep.OK() {
		t.Errorf("check: %v %v", err, rep.Problems)
	}
	t.Logf("runs: %s–%s, +90 s: %s–%s, held: %s–%s, -2 h: %s–%s", r1.Start.Format("15:04:05.000"), r1.End.Format("15:04:05.000"),
		r2.Start.Format("15:04:05.000"), r2.End.Format("15:04:05.000"), r3.Start.Format("15:04:05.000"), r3.End.Format("15:04:05.000"),
		back2h.Start.Format("15:04:05.000"), back2h.End.Format("15:04:05.000"))
}
