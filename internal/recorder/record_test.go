package recorder_test

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/check"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// fastClock runs speed times faster than real time from a fixed origin,
// so a simulator at the same speed looks like a real-time camera.
func fastClock(speed float64) func() time.Time {
	origin := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	real0 := time.Now()
	return func() time.Time {
		return origin.Add(time.Duration(float64(time.Since(real0)) * speed))
	}
}

type rig struct {
	dir  string
	disk *local.Dir
	idx  *sqlite.Store
	addr string
}

func newRig(t *testing.T, opts sim.Options) *rig {
	t.Helper()
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "disk"), 0o755); err != nil {
		t.Fatal(err)
	}
	disk, err := local.Open(filepath.Join(dir, "disk"), "disk1", local.Options{Init: true})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return &rig{dir: dir, disk: disk, idx: idx, addr: ln.Addr().String()}
}

// record runs a supervisor on path until the camera's media clock has
// advanced by media (at speed), then stops it.
func (r *rig) record(t *testing.T, path string, speed float64, media time.Duration) *recorder.Supervisor {
	t.Helper()
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{
		Camera: "cam", Stream: "main",
		Client: rtsp.ClientConfig{URL: "rtsp://" + r.addr + "/" + path},
		Disk:   r.disk, Index: r.idx, FsyncEvery: 2 * time.Second, Now: fastClock(speed),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sup.Run(ctx)
	}()
	time.Sleep(time.Duration(float64(media) / speed))
	cancel()
	wg.Wait()
	return sup
}

func (r *rig) segments(t *testing.T) []store.Segment {
	t.Helper()
	st, err := r.idx.Stream(context.Background(), "cam", "main")
	if err != nil {
		t.Fatal(err)
	}
	segs, err := r.idx.Segments(context.Background(), st.ID, time.Unix(0, 0), time.Now().Add(100*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestRecordTenMinutes records ten minutes of a simulated camera's
// sub-stream at 30× speed and checks the storage invariants: every
// segment decodes in ffmpeg without error and has the frames its row
// claims, segments abut to the 90 kHz tick and in wall time, and the
// frames cover the media time exactly (one per 3600 ticks).
func TestRecordTenMinutes(t *testing.T) {
	t.Parallel()
	testpeer.FFmpeg(t)
	const speed = 30
	r := newRig(t, sim.Options{Cameras: 1, Speed: speed})
	sup := r.record(t, "cam1/sub", speed, 10*time.Minute)
	if st := sup.Status(); st.State != recorder.StateStopped || st.Frames == 0 {
		t.Fatalf("status = %+v", st)
	}
	segs := r.segments(t)
	if len(segs) < 9 || len(segs) > 12 {
		t.Fatalf("%d segments for 10 minutes, want about 10", len(segs))
	}
	var frames int64
	for i, sg := range segs {
		if sg.State != store.SegmentClosed {
			t.Errorf("segment %d state %s", i, sg.State)
		}
		if i > 0 {
			prev := segs[i-1]
			if prev.StartPTS90k+prev.Dur90k != sg.StartPTS90k {
				t.Errorf("segment %d starts at %d, previous ends at %d: not abutting", i, sg.StartPTS90k, prev.StartPTS90k+prev.Dur90k)
			}
			if !prev.End().Equal(sg.Start) {
				t.Errorf("segment %d wall start %s != previous end %s", i, sg.Start, prev.End())
			}
			if sg.RunID != prev.RunID {
				t.Errorf("segment %d in run %d, previous in %d", i, sg.RunID, prev.RunID)
			}
		}
		if sg.Dur90k != sg.Frames*3600 {
			t.Errorf("segment %d: %d frames but %d ticks", i, sg.Frames, sg.Dur90k)
		}
		// The first segment of a run ends at the stream's first staggered
		// boundary at least 30 s in; later ones last a minute (cut at the
		// first key frame after the boundary: GOPs are 2 s).
		lo, hi := int64(60*90000), int64(62*90000)
		if i == 0 {
			lo, hi = 30*90000, 92*90000
		}
		if i < len(segs)-1 && (sg.Dur90k < lo || sg.Dur90k > hi) {
			t.Errorf("segment %d lasts %.1f s, want %d–%d s", i, float64(sg.Dur90k)/90000, lo/90000, hi/90000)
		}
		path := filepath.Join(r.dir, "disk", filepath.FromSlash(sg.Key))
		if fi, err := os.Stat(path); err != nil || fi.Size() != sg.Bytes {
			t.Errorf("segment %d: file %v, row says %d bytes", i, err, sg.Bytes)
		}
		n, errText := testpeer.Decode(t, path)
		if errText != "" {
			t.Errorf("segment %d: ffmpeg errors:\n%s", i, errText)
		}
		if int64(n) != sg.Frames {
			t.Errorf("segment %d: ffmpeg decoded %d frames, row says %d", i, n, sg.Frames)
		}
		frames += sg.Frames
	}
	if got := sup.Status().Frames; got != frames {
		t.Errorf("recorder received %d frames, segments hold %d", got, frames)
	}
	if media := float64(frames) / 25; media < 590 || media > 610 {
		t.Errorf("recorded %.0f s of video, want about 600", media)
	}

	// An index rebuilt from the files alone lists the same segments, with
	// wall times that still abut.
	idx2, err := sqlite.Open(filepath.Join(r.dir, "rebuilt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx2.Close()
	rep, err := check.Rebuild(context.Background(), idx2, map[string]blob.Store{"disk1": r.disk}, check.RebuildOptions{})
	if err != nil || rep.Segments != len(segs) || rep.Runs != 1 || len(rep.Skipped) != 0 {
		t.Fatalf("rebuild = %+v, %v", rep, err)
	}
	st2, _ := idx2.Stream(context.Background(), "cam", "main")
	segs2, _ := idx2.Segments(context.Background(), st2.ID, time.Unix(0, 0), time.Now().Add(100*24*time.Hour))
	for i := range segs {
		a, b := segs[i], segs2[i]
		if a.Key != b.Key || !a.Start.Equal(b.Start) || a.Dur90k != b.Dur90k || a.Frames != b.Frames || a.Bytes != b.Bytes {
			t.Errorf("segment %d rebuilt as %+v, was %+v", i, b, a)
		}
		if i < len(segs)-1 && a.WallDur != b.WallDur {
			t.Errorf("segment %d wall duration rebuilt as %s, was %s", i, b.WallDur, a.WallDur)
		}
	}
	if rr, err := check.Run(context.Background(), idx2, map[string]blob.Store{"disk1": r.disk}); err != nil || !rr.OK() {
		t.Errorf("check of the rebuilt index: %+v %v", rr, err)
	}

	// Playback of what was recorded: from mid-GOP in the second segment
	// to mid-GOP in the fifth.
	from := segs[1].Start.Add(13*time.Second + 30*time.Millisecond)
	checkExport(t, r.idx, r.disk, r.dir, "cam", from, segs[4].Start.Add(7*time.Second+500*time.Millisecond), 40*time.Millisecond)
}

// TestRecordMainH265 records a minute and a half of the 1080p H.265 main
// stream, so at least one full segment of that codec closes.
func TestRecordMainH265(t *testing.T) {
	t.Parallel()
	testpeer.FFmpeg(t)
	const speed = 15
	r := newRig(t, sim.Options{Cameras: 1, Speed: speed, Codec: media.CodecH265})
	r.record(t, "cam1", speed, 150*time.Second)
	segs := r.segments(t)
	if len(segs) < 2 {
		t.Fatalf("%d segments, want ≥ 2", len(segs))
	}
	for i, sg := range segs {
		if sg.Width != 1920 || sg.Height != 1080 {
			t.Errorf("segment %d is %dx%d", i, sg.Width, sg.Height)
		}
		path := filepath.Join(r.dir, "disk", filepath.FromSlash(sg.Key))
		n, errText := testpeer.Decode(t, path)
		if errText != "" || int64(n) != sg.Frames {
			t.Errorf("segment %d: decoded %d of %d frames, errors: %s", i, n, sg.Frames, errText)
		}
	}
	checkExport(t, r.idx, r.disk, r.dir, "cam", segs[0].End().Add(-3*time.Second-10*time.Millisecond), segs[1].Start.Add(2*time.Second+20*time.Millisecond), 40*time.Millisecond)
}

// checkExport exports [from, to) of what camera's main stream recorded, off key
// frames and across segment boundaries, and checks the file with ffmpeg:
// the duration is the range within one frame interval, it decodes without
// errors, and its first frame is the frame the segment file holds at from
// (counted in display order from the segment's start, so from must lie
// where the first frame's presentation and decode times agree: any
// segment without B-frames, or the first of a run).
func checkExport(t *testing.T, idx store.Store, disk blob.Store, dir, camera string, from, to time.Time, frame time.Duration) {
	t.Helper()
	ctx := context.Background()
	src := &playback.Source{Index: idx, Disks: map[string]blob.Store{disk.Name(): disk}}
	f, err := src.Export(ctx, camera, "main", from, to)
	if err != nil {
		t.Fatalf("export %s..%s: %v", from, to, err)
	}
	path := filepath.Join(t.TempDir(), "export.mp4")
	rd := f.Open(context.Background())
	playbacktest.WriteFile(t, rd, f.Size(), path)
	rd.Close()
	st, err := idx.Stream(ctx, camera, "main")
	if err != nil {
		t.Fatal(err)
	}
	if all, err := idx.Segments(ctx, st.ID, from, to); err == nil && len(all) > 0 {
		if end := all[len(all)-1].End(); end.Before(to) {
			to = end // the export stops at the last recorded frame
		}
	}
	// Within a run the file keeps the camera's own frame timing, which
	// may run up to 500 ppm off the wall clock (docs/time.md), and it
	// starts at the start of the frame shown at from (up to a frame early).
	tol := frame.Seconds() + 0.0005*to.Sub(from).Seconds()
	if d := playbacktest.ProbeDuration(t, path); math.Abs(d-to.Sub(from).Seconds()) > tol {
		t.Errorf("export %s..%s lasts %.3f s, want %.3f ± %.3f", from, to, d, to.Sub(from).Seconds(), tol)
	}
	if errText, n := playbacktest.DecodeErrors(t, path); errText != "" || n == 0 {
		t.Errorf("export: %d frames decoded, ffmpeg said %q", n, errText)
	}
	// The frame shown at from, decoded straight from its segment file.
	segs, err := idx.Segments(ctx, st.ID, from, from.Add(time.Nanosecond))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments at %s: %v %v", from, segs, err)
	}
	for _, sg := range segs {
		// Frame k in the camera's time: wall time maps to media time
		// through the segment's clock correction (docs/time.md).
		local := from.Sub(sg.Start).Seconds()
		if sg.WallDur > 0 {
			local *= float64(sg.Dur90k) / 90000 / sg.WallDur.Seconds()
		}
		k := int(local / frame.Seconds())
		want := playbacktest.GrayFrame(t, filepath.Join(dir, "disk", filepath.FromSlash(sg.Key)), k)
		if d := playbacktest.MeanAbsDiff(playbacktest.GrayFrame(t, path, -1), want); d > 0.5 {
			t.Errorf("export's first frame differs from frame %d of %s by %.2f", k, sg.Key, d)
		}
	}
}
