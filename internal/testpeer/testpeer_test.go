package testpeer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRawFormat(t *testing.T) {
	for in, want := range map[string]string{
		"a/main.h264": "h264", "x.264": "h264", "M.H265": "hevc", "s.hevc": "hevc",
		"seg.mp4": "", "noext": "",
	} {
		if got := rawFormat(in); got != want {
			t.Errorf("rawFormat(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://u:secret@127.0.0.1:554/cam": "rtsp://u:xxxxx@127.0.0.1:554/cam",
		"rtsp://127.0.0.1:554/cam":          "rtsp://127.0.0.1:554/cam",
		"file.mp4":                          "file.mp4",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSimFixtures checks the simulator's embedded clips with ffmpeg: they
// must decode cleanly and hold exactly 250 frames.
func TestSimFixtures(t *testing.T) {
	files, err := filepath.Glob("../sim/fixtures/*.h26[45]")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			frames, errText := DecodeAnnexB(t, f)
			if errText != "" {
				t.Errorf("decode errors:\n%s", errText)
			}
			if frames != 250 {
				t.Errorf("frames = %d, want 250", frames)
			}
		})
	}
}

// describeChallenge sends an unauthenticated DESCRIBE and returns the
// status line and WWW-Authenticate header of the answer.
func describeChallenge(t *testing.T, cam *GstCamera) (status, challenge string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimSuffix(cam.URL(), "/cam"), "rtsp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("DESCRIBE " + cam.URL() + " RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for i := 0; ; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return status, challenge
		}
		if i == 0 {
			status = line
		}
		if v, ok := strings.CutPrefix(line, "WWW-Authenticate: "); ok {
			challenge = v
		}
	}
}

func TestGstCamera(t *testing.T) {
	FFprobe(t)
	GStreamer(t)
	const user, pass = "viewer", "s3cret:/@"
	cases := []struct {
		name string
		opts GstOptions
	}{
		{"h264", GstOptions{Codec: "h264"}},
		{"h264-bframes", GstOptions{Codec: "h264", BFrames: 2}},
		{"h265", GstOptions{Codec: "h265"}},
		{"h265-bframes", GstOptions{Codec: "h265", BFrames: 2}},
		{"h264-digest", GstOptions{Codec: "h264", User: user, Pass: pass}},
		{"h265-digest", GstOptions{Codec: "h265", User: user, Pass: pass}},
		{"h264-basic", GstOptions{Codec: "h264", User: user, Pass: pass, BasicAuth: true}},
	}
	for _, tc := range cases {
		// Sequential on purpose: other packages' real-time camera tests
		// run beside this one on 2 cores.
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Width, opts.Height = 320, 240
			cam := StartGstCamera(t, opts)
			tcp := []string{"-rtsp_transport", "tcp"}
			url := cam.URL()
			if opts.User != "" {
				url = cam.URLWithCredentials(user, pass)
				status, challenge := describeChallenge(t, cam)
				wantScheme := "Digest "
				if opts.BasicAuth {
					wantScheme = "Basic "
				}
				if !strings.Contains(status, " 401 ") || !strings.HasPrefix(challenge, wantScheme) {
					t.Errorf("anonymous DESCRIBE: %q, WWW-Authenticate %q; want 401 with a %schallenge", status, challenge, wantScheme)
				}
				for _, bad := range []string{cam.URL(), cam.URLWithCredentials(user, "wrong"), cam.URLWithCredentials("nobody", pass)} {
					if _, err := ProbeVideo(t, bad, 30*time.Second, tcp...); err == nil || !strings.Contains(err.Error(), "401") {
						t.Errorf("probe %s: err = %v, want 401 refusal", redact(bad), err)
					}
				}
			}
			info, err := ProbeVideo(t, url, 30*time.Second, tcp...)
			if err != nil {
				t.Fatalf("%v\ncamera stderr:\n%s", err, cam.Stderr())
			}
			wantCodec := map[string]string{"h264": "h264", "h265": "hevc"}[opts.Codec]
			if info.Codec != wantCodec || info.Width != 320 || info.Height != 240 {
				t.Errorf("probe: %+v, want %s 320x240", info, wantCodec)
			}
			if opts.Codec == "h264" && info.Profile != "High" {
				t.Errorf("probe: profile %q, want High", info.Profile)
			}
			if (info.HasBFrames > 0) != (opts.BFrames > 0) {
				t.Errorf("probe: has_b_frames=%d with BFrames=%d", info.HasBFrames, opts.BFrames)
			}
			types := pictTypes(t, url)
			if strings.Contains(types, "B") != (opts.BFrames > 0) {
				t.Errorf("picture types %q with BFrames=%d", types, opts.BFrames)
			}
			if !strings.HasPrefix(types, "I") {
				t.Errorf("picture types %q: stream does not start with a key frame", types)
			}
		})
	}
}

// pictTypes returns the picture types (I, P, B) of the first 30 frames
// received over TCP.
func pictTypes(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, FFprobe(t), "-v", "error", "-rtsp_transport", "tcp",
		"-read_intervals", "%+#30", "-select_streams", "v:0",
		"-show_entries", "frame=pict_type", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe frames of %s: %v: %s", redact(url), err, stderrOf(err))
	}
	return strings.Join(strings.Fields(string(out)), "")
}

// TestGstCameraUDP pulls from the camera over UDP with ffmpeg and decodes
// what arrives.
func TestGstCameraUDP(t *testing.T) {
	ffmpeg := FFmpeg(t)
	cam := StartGstCamera(t, GstOptions{Width: 320, Height: 240})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-v", "error",
		"-rtsp_transport", "udp", "-i", cam.URL(), "-frames:v", "25", "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("ffmpeg over UDP: %v\n%s\ncamera stderr:\n%s", err, out, cam.Stderr())
	}
}

// recordTB records Skipf/Fatalf instead of stopping the test.
type recordTB struct {
	testing.TB
	skip, fatal string
}

func (r *recordTB) Helper()                   {}
func (r *recordTB) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...) }
func (r *recordTB) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestNeed(t *testing.T) {
	t.Setenv(RequireEnv, "")
	r := &recordTB{TB: t}
	Need(r, "thing", true, "unused")
	if r.skip != "" || r.fatal != "" {
		t.Fatalf("Need with ok=true: skip %q fatal %q", r.skip, r.fatal)
	}
	Need(r, "thing", false, "not installed")
	if r.skip != "peer thing missing: not installed" || r.fatal != "" {
		t.Errorf("Need without %s: skip %q fatal %q", RequireEnv, r.skip, r.fatal)
	}
	t.Setenv(RequireEnv, "1")
	r = &recordTB{TB: t}
	Need(r, "thing", false, "not installed")
	if r.skip != "" || !strings.HasPrefix(r.fatal, "peer thing missing: not installed") {
		t.Errorf("Need with %s=1: skip %q fatal %q", RequireEnv, r.skip, r.fatal)
	}
}
