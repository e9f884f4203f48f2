// Package testpeer gives tests access to real programs that no one in this
// project wrote (ffmpeg, ffprobe, a GStreamer RTSP server) and that serve as
// independent peers: a stream Custos records must decode in ffmpeg, a camera
// Custos pulls from may be GStreamer's.
//
// A test that needs a peer asks for it through Need or one of the helpers
// built on it. When the peer is missing the test is skipped with a clear
// message, unless the environment variable CUSTOS_REQUIRE_PEERS=1 is set
// (as .ci/run does), in which case the test fails.
//
// The package is imported only by tests but is an ordinary package so that
// tests of several packages can share it. Every function takes the test's
// testing.TB, may call its Skip/Fatal methods (so must be called from the
// test's own goroutine), and registers any clean-up with t.Cleanup.
package testpeer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing peer from a
// skip into a failure when set to "1".
const RequireEnv = "CUSTOS_REQUIRE_PEERS"

// Python is the interpreter that runs GStreamer peers: Debian's own, which
// sees the python3-gi package (a pyenv or venv python usually does not).
const Python = "/usr/bin/python3"

// Need does nothing when ok is true. Otherwise it skips the test with
// "peer <peer> missing: <why>", or fails it with the same message when
// CUSTOS_REQUIRE_PEERS=1. It does not return when ok is false.
func Need(t testing.TB, peer string, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("peer %s missing: %s (%s=1 requires it)", peer, why, RequireEnv)
	} else {
		t.Skipf("peer %s missing: %s", peer, why)
	}
}

// FFmpeg returns the path of the ffmpeg binary found on PATH, or skips/fails
// the test through Need.
func FFmpeg(t testing.TB) string {
	t.Helper()
	return lookPath(t, "ffmpeg")
}

// FFprobe returns the path of the ffprobe binary found on PATH, or
// skips/fails the test through Need.
func FFprobe(t testing.TB) string {
	t.Helper()
	return lookPath(t, "ffprobe")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, name, err == nil, fmt.Sprintf("%v (Debian package ffmpeg)", err))
	return p
}

// gstCheck runs the GStreamer import check once per test binary; its result
// never changes afterwards.
var gstCheck = sync.OnceValue(func() error {
	const probe = `import gi; gi.require_version("GstRtspServer","1.0"); from gi.repository import GstRtspServer`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Python, "-c", probe).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import GstRtspServer: %v: %s", Python, err, bytes.TrimSpace(out))
	}
	return nil
})

// GStreamer checks that Debian's python3 can import GStreamer's RTSP server
// bindings, or skips/fails the test through Need. Needed Debian packages:
// python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-rtsp and the
// plugins (base, good, bad, ugly).
func GStreamer(t testing.TB) {
	t.Helper()
	err := gstCheck()
	why := ""
	if err != nil {
		why = err.Error() + " (Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-{base,good,bad,ugly})"
	}
	Need(t, "gstreamer", err == nil, why)
}

// rawFormat maps an elementary-stream file extension to ffmpeg's demuxer
// name; other files return "" and are left to ffmpeg's probing.
func rawFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".h264", ".264", ".avc":
		return "h264"
	case ".h265", ".265", ".hevc":
		return "hevc"
	}
	return ""
}

// Decode decodes the video of the file at path with ffmpeg and counts its
// frames with ffprobe. It returns the number of decoded video frames of the
// first video stream and the error output of `ffmpeg -v error -i path -f
// null -` (empty when the file decodes cleanly; a failure to run or to count
// is reported there too). Raw .h264/.264 and .h265/.265/.hevc files are read
// with the matching demuxer (-f h264 / -f hevc); other files are probed.
// It blocks until both programs exit and skips/fails the test when ffmpeg
// is missing.
func Decode(t testing.TB, path string) (frames int, errText string) {
	t.Helper()
	return decode(t, path, rawFormat(path))
}

// DecodeAnnexB is Decode for a raw Annex B elementary stream; the file name
// must end in .h264, .264, .h265, .265 or .hevc (the test fails otherwise).
func DecodeAnnexB(t testing.TB, path string) (frames int, errText string) {
	t.Helper()
	f := rawFormat(path)
	if f == "" {
		t.Fatalf("DecodeAnnexB %s: extension names no codec (want .h264 or .h265)", path)
	}
	return decode(t, path, f)
}

func decode(t testing.TB, path, format string) (int, string) {
	t.Helper()
	ffmpeg, ffprobe := FFmpeg(t), FFprobe(t)
	var in []string
	if format != "" {
		in = append(in, "-f", format)
	}
	in = append(in, "-i", path)

	var errs []string
	args := append(append([]string{"-nostdin", "-hide_banner", "-v", "error"}, in...), "-f", "null", "-")
	out, err := exec.Command(ffmpeg, args...).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		errs = append(errs, s)
	}
	if err != nil {
		errs = append(errs, "ffmpeg: "+err.Error())
	}

	args = append([]string{"-v", "error"}, in[:len(in)-2]...)
	args = append(args, "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	out, err = exec.Command(ffprobe, args...).Output()
	n, convErr := strconv.Atoi(strings.TrimSpace(string(out)))
	switch {
	case err != nil:
		errs = append(errs, fmt.Sprintf("ffprobe -count_frames: %v: %s", err, stderrOf(err)))
	case convErr != nil:
		errs = append(errs, fmt.Sprintf("ffprobe -count_frames: unexpected output %q", out))
	}
	return n, strings.Join(errs, "\n")
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// VideoInfo is what ffprobe reports about the first video stream of an
// input.
type VideoInfo struct {
	Codec      string `json:"codec_name"` // "h264", "hevc", ...
	Profile    string `json:"profile"`    // "High", "Main", ...
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	HasBFrames int    `json:"has_b_frames"` // reorder depth the decoder needs; 0 without B-frames
	FrameRate  string `json:"r_frame_rate"` // e.g. "25/1"
}

// ProbeVideo runs `ffprobe -v error [args...] -show_streams input` (args
// come before the input, e.g. "-rtsp_transport", "tcp") and returns its
// first video stream. It blocks until ffprobe exits, at most timeout
// (killing it then); an error carries ffprobe's error output, e.g. a 401
// from an RTSP server. It skips/fails the test when ffprobe is missing.
func ProbeVideo(t testing.TB, input string, timeout time.Duration, args ...string) (VideoInfo, error) {
	t.Helper()
	ffprobe := FFprobe(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"-v", "error"}, args...)
	full = append(full, "-select_streams", "v:0", "-show_entries",
		"stream=codec_name,profile,width,height,has_b_frames,r_frame_rate", "-of", "json", input)
	cmd := exec.CommandContext(ctx, ffprobe, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return VideoInfo{}, fmt.Errorf("ffprobe %s: %v: %s", redact(input), err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Streams []VideoInfo `json:"streams"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return VideoInfo{}, fmt.Errorf("ffprobe %s: parse output: %v", redact(input), err)
	}
	if len(res.Streams) == 0 {
		return VideoInfo{}, fmt.Errorf("ffprobe %s: no video stream (%s)", redact(input), strings.TrimSpace(stderr.String()))
	}
	return res.Streams[0], nil
}

// redact hides the password of a URL with credentials, for messages.
func redact(s string) string {
	i := strings.Index(s, "://")
	at := strings.LastIndex(s, "@")
	if i < 0 || at < i {
		return s
	}
	cred := s[i+3 : at]
	if c := strings.IndexByte(cred, ':'); c >= 0 {
		return s[:i+3] + cred[:c] + ":xxxxx" + s[at:]
	}
	return s
}
