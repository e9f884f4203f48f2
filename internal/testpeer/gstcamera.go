package testpeer

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed gstcamera.py
var gstCameraScript []byte

// GstOptions configure a GStreamer camera stand-in. The zero value is a
// 640x360, 25 fps H.264 camera without B-frames, a key frame every 2 s and
// no authentication.
type GstOptions struct {
	// Codec is "h264" (default, x264enc) or "h265" (x265enc).
	Codec string
	// Width and Height of the picture; default 640x360. Keep them small in
	// tests: the camera encodes live on a 2-core machine.
	Width, Height int
	// FPS is the frame rate; default 25.
	FPS int
	// BFrames is the number of consecutive B-frames; 0 (the default, as on
	// most cameras) emits none. With B-frames RTP timestamps arrive out of
	// order.
	BFrames int
	// KeyInt is the maximum distance between key frames in frames;
	// default 2*FPS.
	KeyInt int
	// BitrateKbps is the target bitrate; default 1000.
	BitrateKbps int
	// User and Pass, when User is set, make the server require
	// authentication: Digest by default, Basic when BasicAuth is set.
	User, Pass string
	BasicAuth  bool
	// Shared makes every client see the same live pipeline; otherwise each
	// client gets its own, starting at its own first frame.
	Shared bool
	// OpenGOP (H.265 only) makes key frames after the first CRA pictures
	// whose leading pictures (RASL) refer to the previous GOP, as x265
	// does by default; otherwise every GOP is closed (IDR).
	OpenGOP bool
	// UDPOnly serves RTP/AVP over UDP only: SETUP for TCP interleaved is
	// answered 461 Unsupported Transport, as some cameras do.
	UDPOnly bool
}

// GstCamera is a running GStreamer RTSP server serving one live test stream
// at /cam on 127.0.0.1, over both RTP/AVP (UDP) and RTP/AVP/TCP (UDP only with UDPOnly). It is
// stopped by the test's Cleanup. Its methods are safe for concurrent use.
type GstCamera struct {
	port int
	opts GstOptions

	mu     sync.Mutex
	stderr strings.Builder
}

// StartGstCamera starts a GStreamer RTSP camera as a child process
// (Debian's python3 running the embedded gstcamera.py), waits until it
// listens (at most 30 s) and returns it. The port is chosen by the OS. It
// skips/fails the test through Need when GStreamer or the encoder is
// missing, fails it when the server does not start, and registers a
// Cleanup that kills the process group and waits for it. Media pipelines
// are built only when a client asks (PLAY), so a camera costs no CPU until
// then.
func StartGstCamera(t testing.TB, opts GstOptions) *GstCamera {
	t.Helper()
	GStreamer(t)
	if opts.Codec == "" {
		opts.Codec = "h264"
	}
	if opts.Codec != "h264" && opts.Codec != "h265" {
		t.Fatalf("StartGstCamera: codec %q, want h264 or h265", opts.Codec)
	}
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 640, 360
	}
	if opts.FPS == 0 {
		opts.FPS = 25
	}
	if opts.KeyInt == 0 {
		opts.KeyInt = 2 * opts.FPS
	}
	if opts.BitrateKbps == 0 {
		opts.BitrateKbps = 1000
	}

	script := filepath.Join(t.TempDir(), "gstcamera.py")
	if err := os.WriteFile(script, gstCameraScript, 0o644); err != nil {
		t.Fatalf("StartGstCamera: %v", err)
	}
	args := []string{script,
		"--codec", opts.Codec,
		"--width", strconv.Itoa(opts.Width), "--height", strconv.Itoa(opts.Height),
		"--fps", strconv.Itoa(opts.FPS), "--bframes", strconv.Itoa(opts.BFrames),
		"--keyint", strconv.Itoa(opts.KeyInt), "--bitrate", strconv.Itoa(opts.BitrateKbps),
	}
	if opts.User != "" {
		args = append(args, "--user", opts.User, "--password", opts.Pass)
		if opts.BasicAuth {
			args = append(args, "--auth", "basic")
		}
	}
	if opts.Shared {
		args = append(args, "--shared")
	}
	if opts.OpenGOP {
		args = append(args, "--open-gop")
	}
	if opts.UDPOnly {
		args = append(args, "--protocols", "udp")
	}

	c := &GstCamera{opts: opts}
	cmd := exec.Command(Python, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "GST_DEBUG_NO_COLOR=1")
	// The script exits when stdin reaches EOF, so it dies with this process
	// even if Cleanup never runs.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("StartGstCamera: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StartGstCamera: %v", err)
	}
	cmd.Stderr = (*lockedWriter)(c)
	if err := cmd.Start(); err != nil {
		t.Fatalf("StartGstCamera: start %s: %v", Python, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-waited
		}
		_ = stdin.Close()
		if t.Failed() {
			t.Logf("gstreamer camera stderr:\n%s", c.Stderr())
		}
	})

	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more once the port is known
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("StartGstCamera: camera exited before listening; stderr:\n%s", c.Stderr())
			}
			if el, found := strings.CutPrefix(line, "MISSING "); found {
				Need(t, "gstreamer "+el, false, "GStreamer element "+el+" not installed (gstreamer1.0-plugins-ugly has x264enc, -bad has x265enc)")
			}
			if p, found := strings.CutPrefix(line, "PORT "); found {
				c.port, err = strconv.Atoi(strings.TrimSpace(p))
				if err != nil || c.port <= 0 {
					t.Fatalf("StartGstCamera: bad port line %q", line)
				}
				return c
			}
		case <-deadline:
			t.Fatalf("StartGstCamera: no port within 30 s; stderr:\n%s", c.Stderr())
		}
	}
}

// lockedWriter collects the child's stderr under the camera's mutex.
type lockedWriter GstCamera

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stderr.Len() < 1<<20 {
		w.stderr.Write(p)
	}
	return len(p), nil
}

// Stderr returns what the camera process wrote to stderr so far (its
// launch line, GStreamer warnings), at most 1 MiB.
func (c *GstCamera) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Port returns the TCP port the RTSP server listens on, on 127.0.0.1.
func (c *GstCamera) Port() int { return c.port }

// Options returns the options the camera was started with, defaults filled
// in.
func (c *GstCamera) Options() GstOptions { return c.opts }

// URL returns the stream's URL without credentials:
// rtsp://127.0.0.1:PORT/cam.
func (c *GstCamera) URL() string {
	return "rtsp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) + "/cam"
}

// URLWithCredentials returns the stream's URL carrying user and pass as
// userinfo (escaped), as ffmpeg and ffprobe accept it.
func (c *GstCamera) URLWithCredentials(user, pass string) string {
	u, err := url.Parse(c.URL())
	if err != nil {
		panic(errors.New("testpeer: " + err.Error())) // cannot happen: URL is well-formed
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// String describes the camera for messages, without credentials.
func (c *GstCamera) String() string {
	return fmt.Sprintf("gstreamer %s %dx%d@%d bframes=%d at %s", c.opts.Codec, c.opts.Width, c.opts.Height, c.opts.FPS, c.opts.BFrames, c.URL())
}
