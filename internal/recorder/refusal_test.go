package recorder_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
)

// A camera that refuses the credentials (or has no stream at the path) is
// shown in state error with a hint, and retried after minutes: two hours
// of a wrong password cost the camera's account 11 or 12 failed logins
// (1, 2, 5, then every 15 minutes, up to 10 % early), where the old 1-30 s
// backoff made hundreds.
func TestRefusedCameraBacksOffToMinutes(t *testing.T) {
	for _, tc := range []struct {
		name, path, hint string
		minTries         int64
		maxTries         int64
	}{
		{"wrong password", "cam", "check the camera's password in Settings", 11, 12},
		{"no such stream", "nothing", "no stream at this path: check the URL", 11, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logins, describes atomic.Int64
			srv := &rtsp.Server{
				Mount: func(string) (rtsp.Stream, error) { return nil, rtsp.ErrNotFound },
				OnRequest: func(r *rtsp.Request) {
					if r.Method == "DESCRIBE" {
						describes.Add(1)
						if r.Header.Get("Authorization") != "" {
							logins.Add(1)
						}
					}
				},
			}
			pass := "right-pw"
			if tc.path == "cam" {
				srv.Auth = rtsp.NewDigestServer("cam", "admin", "right-pw")
				pass = "wrong-pw"
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			r := newRig(t, sim.Options{Cameras: 1})
			origin := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
			var mu sync.Mutex
			now := origin
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sup *recorder.Supervisor
			var statuses []recorder.Status
			sup, err = recorder.NewSupervisor(recorder.StreamConfig{
				Camera: "door", Stream: "main",
				Client: rtsp.ClientConfig{URL: "rtsp://admin:" + pass + "@" + ln.Addr().String() + "/" + tc.path},
				Disk:   r.disk, Index: r.idx, Now: clock,
				Sleep: func(ctx context.Context, d time.Duration) {
					statuses = append(statuses, sup.Status())
					mu.Lock()
					now = now.Add(d)
					over := now.Sub(origin) >= 2*time.Hour
					mu.Unlock()
					if over {
						cancel()
					}
				},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { sup.Run(ctx); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cancel()
				<-done
				t.Fatalf("two simulated hours took more than 60 s (%d attempts so far)", describes.Load())
			}
			tries := describes.Load()
			if tc.path == "cam" {
				tries = logins.Load()
			}
			t.Logf("%s: %d attempts in 2 simulated hours", tc.name, tries)
			if tries < tc.minTries || tries > tc.maxTries {
				t.Errorf("%d attempts in 2 h, want %d-%d", tries, tc.minTries, tc.maxTries)
			}
			if len(statuses) == 0 {
				t.Fatal("no retry")
			}
			st := statuses[len(statuses)-1]
			if st.State != recorder.StateError || !strings.Contains(st.Hint, tc.hint) {
				t.Errorf("status = %+v, want state error with hint %q", st, tc.hint)
			}
			if strings.Contains(st.Reason, "wrong-pw") || strings.Contains(st.Hint, "wrong-pw") {
				t.Errorf("status leaks the password: %+v", st)
			}
		})
	}
}

// A camera that refuses TCP interleaved (461) is recorded over UDP: the
// configured transport (tcp by default) is the first choice, not a
// requirement.
func TestRecordCameraRefusingTCP(t *testing.T) {
	const speed = 4
	r := newRig(t, sim.Options{Cameras: 1, Speed: speed, RefuseTCP: true})
	sup := r.record(t, "cam1/sub", speed, 12*time.Second)
	st := sup.Status()
	if st.Frames < 200 || st.Reconnects != 0 {
		t.Fatalf("status = %+v, want about 300 frames recorded in one session", st)
	}
	segs := r.segments(t)
	if len(segs) == 0 || segs[0].Frames == 0 {
		t.Fatalf("segments = %+v", segs)
	}
}
