package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestDiskFullOfLockedVideo records onto a 4 MiB tmpfs whose video is
// all under an evidence lock: retention deletes nothing, the alarm shows
// in /api/storage, /metrics, the camera's reason and the log, the server
// keeps running; once the lock is released retention frees space, the
// alarm clears and recording resumes.
func TestDiskFullOfLockedVideo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o755)
	err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m")
	testpeer.Need(t, "tmpfs", err == nil, fmt.Sprintf("mounting a 4 MiB tmpfs needs root: %v", err))
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })

	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
fsync_interval: 1s
storage:
  - {name: small, path: %s, min_free: 1MiB}
cameras:
  - {name: door, url: "rtsp://%s/cam1"}
`, dir, mnt, simAddr)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, nil))}
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	base := srv.authURL()
	now := time.Now()
	lock := store.Lock{Camera: "door", From: now.Add(-time.Hour), To: now.Add(time.Hour), Reason: "test", CreatedBy: "admin", Created: now}
	if err := srv.idx.AddLock(context.Background(), &lock); err != nil {
		t.Fatal(err)
	}
	metric := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, `custos_storage_locked_full{storage="small"}`) {
				return l
			}
		}
		return ""
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60 s\n%s", what, logs.String())
			}
		}
	}
	var disks []api.DiskJSON
	var cams []api.CameraJSON
	wait("the alarm", func() bool {
		getJSON(t, base+"/api/storage", &disks)
		getJSON(t, base+"/api/cameras", &cams)
		r := cams[0].Streams[0].Reason
		return disks[0].LockedFull && strings.Contains(r, "no space") && strings.Contains(r, "evidence locks hold")
	})
	if !strings.Contains(disks[0].Alarm, "evidence locks hold") || !strings.HasSuffix(metric(), " 1") ||
		!strings.Contains(logs.String(), "evidence locks hold everything left to delete") {
		t.Errorf("alarm %q, metric %q, log:\n%s", disks[0].Alarm, metric(), logs.String())
	}
	st, _ := srv.idx.Stream(context.Background(), "door", "main")
	if dels, _ := srv.idx.Deletions(context.Background(), st.ID); len(dels) != 0 {
		t.Errorf("locked video deleted: %+v", dels)
	}
	if err := srv.idx.ReleaseLock(context.Background(), lock.ID, "admin", "done", time.Now()); err != nil {
		t.Fatal(err)
	}
	wait("recording after the release", func() bool {
		getJSON(t, base+"/api/storage", &disks)
		getJSON(t, base+"/api/cameras", &cams)
		return !disks[0].LockedFull && cams[0].Status == "recording" && time.Since(cams[0].LastFrame) < time.Second
	})
	if m := metric(); !strings.HasSuffix(m, " 0") {
		t.Errorf("metric after the release: %q", m)
	}
}
