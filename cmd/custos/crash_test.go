package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestMain lets crash tests run this test binary as the custos command
// (CUSTOS_TEST_AS_MAIN=1), so they can kill -9 a real process without
// building one.
func TestMain(m *testing.M) {
	if os.Getenv("CUSTOS_TEST_AS_MAIN") == "1" {
		lowerFileLimitForTest()
		main()
		return
	}
	os.Exit(m.Run())
}

// TestKill9 kills a recording server with SIGKILL at random moments, 20
// times, restarting it each time. After each restart the unfinished
// segment is recovered: at most about half a second of video before each
// kill is lost, every segment decodes in ffmpeg with the frames its row
// claims, and every row is closed.
func TestKill9(t *testing.T) {
	testpeer.FFmpeg(t)
	if testing.Short() {
		t.Skip("kill -9 loop skipped with -short")
	}
	s, err := sim.New(sim.Options{Cameras: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\ncameras:\n  - name: door\n    url: rtsp://%s/cam1/sub\n", dir, ln.Addr())), 0o644)

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var kills []time.Time
	const rounds = 20
	for i := 0; i < rounds; i++ {
		cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_AS_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Run 1.5–3 s: long enough to record past the first key frame.
		time.Sleep(1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond))))
		kills = append(kills, time.Now())
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	// One clean start recovers the last kill's segment; stop it gently.
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_AS_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ctx := context.Background()
	st, err := idx.Stream(ctx, "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := idx.Runs(ctx, st.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	segs, err := idx.Segments(ctx, st.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < rounds {
		t.Fatalf("%d runs for %d kills", len(runs), rounds)
	}
	// Each kill ends the run that started before it; what it recorded must
	// reach to within 0.6 s of the kill (half-second fragments plus a
	// frame and the moment it takes to deliver SIGKILL).
	var worst time.Duration
	for k, at := range kills {
		var run *store.Run
		for i := range runs {
			if runs[i].Start.Before(at) {
				run = &runs[i]
			}
		}
		if run == nil || run.End.IsZero() {
			t.Errorf("kill %d at %s: no recorded run before it", k, at.Format(time.StampMilli))
			continue
		}
		lost := at.Sub(run.End)
		worst = max(worst, lost)
		if lost > 600*time.Millisecond {
			t.Errorf("kill %d: lost %s of video before it", k, lost)
		}
	}
	disk, err := local.Open(filepath.Join(dir, "recordings"), "default", local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, sg := range segs {
		if sg.State != store.SegmentClosed {
			t.Errorf("segment %d left %s", i, sg.State)
		}
		size, err := disk.Stat(ctx, sg.Key)
		if err != nil || size != sg.Bytes {
			t.Errorf("segment %d: stat %v, %d bytes on disk, row says %d", i, err, size, sg.Bytes)
		}
		n, errText := testpeer.Decode(t, filepath.Join(dir, "recordings", filepath.FromSlash(sg.Key)))
		if errText != "" || int64(n) != sg.Frames {
			t.Errorf("segment %d (%s): decoded %d of %d frames; errors: %s", i, sg.Key, n, sg.Frames, errText)
		}
	}
	t.Logf("%d kills, %d runs, %d segments; worst loss before a kill %s", len(kills), len(runs), len(segs), worst)
	idx.Close()

	// custos check agrees: everything is consistent.
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check after recovery: exit %d\n%s%s", code, out, errOut)
	}
	// check --repair with the old index readable keeps the accounts and
	// the audit log (which the recordings cannot rebuild).
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath, "--repair"); code != 0 || !strings.Contains(out, "OK") ||
		!regexp.MustCompile(`kept from the old index: 1 users, 0 API tokens, [1-9]\d* audit entries`).MatchString(out) {
		t.Fatalf("check --repair: exit %d\n%s%s", code, out, errOut)
	}
	// Delete the index: check --repair rebuilds the same recordings from
	// the files alone, and the audit log from audit.log.
	for _, ext := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "index.db"+ext))
	}
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath, "--repair"); code != 0 || !strings.Contains(out, "OK") ||
		!regexp.MustCompile(`restored [1-9]\d* audit entries`).MatchString(out) ||
		!strings.Contains(out, fmt.Sprintf("; %d segments match their entry", len(segs))) {
		// Twenty kills leave the chain journal whole: every segment
		// hashes to its restored chain entry.
		t.Fatalf("check --repair: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "audit", "verify", "--config", cfgPath); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify after repairs: exit %d\n%s%s", code, out, errOut)
	}
	idx2, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	st2, err := idx2.Stream(ctx, "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	runs2, _ := idx2.Runs(ctx, st2.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	segs2, _ := idx2.Segments(ctx, st2.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	idx2.Close()
	if len(runs2) != len(runs) || len(segs2) != len(segs) {
		t.Fatalf("rebuilt %d runs / %d segments, had %d / %d", len(runs2), len(segs2), len(runs), len(segs))
	}
	for i := range segs {
		a, b := segs[i], segs2[i]
		tol := time.Duration(a.Dur90k)*time.Second/90000*500/1e6 + time.Millisecond
		if a.Key != b.Key || !a.Start.Equal(b.Start) || a.Dur90k != b.Dur90k || a.Frames != b.Frames ||
			a.Bytes != b.Bytes || a.StartPTS90k != b.StartPTS90k || (a.WallDur-b.WallDur).Abs() > tol {
			t.Errorf("segment %d rebuilt as %+v, was %+v", i, b, a)
		}
	}
	for i := range runs {
		if !runs[i].Start.Equal(runs2[i].Start) || (runs[i].End.Sub(runs2[i].End)).Abs() > 50*time.Millisecond {
			t.Errorf("run %d rebuilt as %s–%s, was %s–%s", i, runs2[i].Start, runs2[i].End, runs[i].Start, runs[i].End)
		}
	}

	// And it notices damage: a truncated segment and a stray file.
	victim := filepath.Join(dir, "recordings", filepath.FromSlash(segs[len(segs)/2].Key))
	if err := os.Truncate(victim, segs[len(segs)/2].Bytes-100); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "recordings", "door", "stray.mp4"), []byte("x"), 0o644)
	code, out, _ := runCLI(t, "check", "--config", cfgPath)
	// The index rebuilt from the files has its chains back (from
	// chains.log), so the truncated segment is also named against its
	// chain entry.
	if code == 0 || !strings.Contains(out, segs[len(segs)/2].Key) || !strings.Contains(out, "door/stray.mp4") || !strings.Contains(out, "3 problems") ||
		!strings.Contains(out, "segment "+segs[len(segs)/2].Key+": the file has") {
		t.Errorf("check after damage: exit %d\n%s", code, out)
	}
}
