package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestDiskFull records onto a 4 MiB tmpfs, far smaller than one segment:
// the disk fills, the process keeps running, retention deletes the oldest
// closed segment with a reason, and recording continues.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o755)
	err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m")
	testpeer.Need(t, "tmpfs", err == nil, fmt.Sprintf("mounting a 4 MiB tmpfs needs root: %v", err))
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })

	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
fsync_interval: 1s
storage:
  - {name: small, path: %s, min_free: 1MiB}
cameras:
  - {name: door, url: "rtsp://%s/cam1"}
`, dir, mnt, simAddr)
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
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

	// 2.4 Mbit/s fills 4 MiB in about 14 s. Wait for a failed write, then
	// for recording to resume after it.
	deadline := time.Now().Add(60 * time.Second)
	sawFull := false
	for {
		var cams []api.CameraJSON
		getJSON(t, base+"/api/cameras", &cams)
		st := cams[0].Streams[0]
		if strings.Contains(st.Reason, "no space") {
			sawFull = true
		}
		if sawFull && st.State == "recording" && st.Reconnects > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disk-full episode followed by recording within 60 s; status %+v\n%s", st, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	var cams []api.CameraJSON
	getJSON(t, base+"/api/cameras", &cams)
	if cams[0].Status != "recording" || time.Since(cams[0].LastFrame) > time.Second {
		t.Errorf("not recording after the disk filled: %+v", cams[0])
	}
	st, err := srv.idx.Stream(context.Background(), "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	dels, err := srv.idx.Deletions(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(dels) == 0 || !strings.Contains(dels[0].Reason, "min_free") {
		t.Errorf("deletions = %+v, want retention deleting for min_free", dels)
	}
	if !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("the disk-full condition is not in the logs:\n%s", logs.String())
	}
}
