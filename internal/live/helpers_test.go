package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// fixture is an embedded simulator clip: 250 frames, 25 fps, key frames
// every 50.
type fixture struct {
	codec  media.Codec
	frames []sim.FixtureFrame
	params media.ParamSets
}

func loadFixture(t testing.TB, name string) fixture {
	t.Helper()
	frames, params, err := sim.Fixture(name)
	if err != nil {
		t.Fatal(err)
	}
	codec := media.CodecH264
	if strings.HasSuffix(name, ".h265") {
		codec = media.CodecH265
	}
	if len(frames) != 250 || !frames[0].Key || !frames[50].Key || frames[49].Key {
		t.Fatalf("fixture %s: %d frames, want 250 with key frames every 50", name, len(frames))
	}
	return fixture{codec: codec, frames: frames, params: params}
}

// frame returns frame i of an endless loop of the clip, with presentation
// time pts0 + i*3600.
func (fx fixture) frame(i int, pts0 int64) *ingest.Frame {
	ff := fx.frames[i%len(fx.frames)]
	return &ingest.Frame{Codec: fx.codec, AccessUnit: media.AccessUnit{
		PTS90k: pts0 + int64(i)*sim.FixtureFrameDur90k,
		Key:    ff.Key,
		NALUs:  ff.NALUs,
		Params: fx.params,
	}}
}

// publish publishes frames from..to-1 of the endless loop.
func (fx fixture) publish(h *Hub, from, to int, pts0 int64) {
	for i := from; i < to; i++ {
		h.Publish(fx.frame(i, pts0))
	}
}

// readN reads n messages from v, failing the test after timeout.
func readN(t testing.TB, v *Viewer, n int, timeout time.Duration) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs := make([]Message, 0, n)
	for len(msgs) < n {
		m, err := v.Next(ctx)
		if err != nil {
			t.Fatalf("message %d of %d: %v", len(msgs)+1, n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// readAll reads what v has queued, up to the first wait longer than idle.
func readAll(t testing.TB, v *Viewer, idle time.Duration) []Message {
	t.Helper()
	var msgs []Message
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		m, err := v.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return msgs
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		msgs = append(msgs, m)
	}
}

// expectNothing checks that v has nothing more to say.
func expectNothing(t testing.TB, v *Viewer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if m, err := v.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected message (init %v, %d frames, dts %d) or error %v", m.IsInit, m.Frames, m.DTS90k, err)
	}
}

// concat joins the messages' data into one file.
func concat(msgs []Message) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m.Data...)
	}
	return b
}

// decodeFile writes data to a file and has ffmpeg decode it; it fails the
// test on any ffmpeg error output or a frame count other than want.
func decodeFile(t *testing.T, name string, data []byte, want int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	frames, errText := testpeer.Decode(t, path)
	if errText != "" {
		t.Errorf("ffmpeg %s: %s", name, errText)
	}
	if frames != want {
		t.Errorf("ffmpeg %s: %d frames, want %d", name, frames, want)
	}
}

// fragInfo is what a test reads back from a fragment's boxes.
type fragInfo struct {
	tfdt    uint64
	samples []mp4.SampleInfo
	dur     uint64
}

// parseFragment reads the tfdt and the samples of one moof+mdat.
func parseFragment(t testing.TB, data []byte) fragInfo {
	t.Helper()
	var fi fragInfo
	i := bytes.Index(data, []byte("tfdt"))
	if len(data) < 8 || string(data[4:8]) != "moof" || i < 0 || i+16 > len(data) || data[i+4] != 1 {
		t.Fatalf("not a moof with a version 1 tfdt: % x", data[:min(len(data), 64)])
	}
	fi.tfdt = binary.BigEndian.Uint64(data[i+8 : i+16])
	ss, err := mp4.ReadSamples(bytes.NewReader(data), mp4.Fragment{Offset: 0, Size: int64(len(data))})
	if err != nil {
		t.Fatalf("read samples: %v", err)
	}
	fi.samples = ss
	for _, s := range ss {
		fi.dur += uint64(s.Dur90k)
	}
	return fi
}

// checkGoroutines fails the test when, after it, more goroutines run than
// before it (waiting up to 10 s for them to end).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after the test, %d before:\n%s", n, before, buf)
		}
	})
}

func testpeerFFmpeg(t testing.TB) string {
	t.Helper()
	return testpeer.FFmpeg(t)
}

// runCmd runs a program and fails the test with its error output when it
// fails.
func runCmd(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
