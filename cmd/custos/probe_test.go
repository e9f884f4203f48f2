package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// runCLI runs custos with args and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func probeJSON(t *testing.T, args ...string) probe.Result {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"probe"}, args...)...)
	if code != 0 {
		t.Fatalf("custos probe %v: exit %d: %s", args, code, errOut)
	}
	var res probe.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("probe output is not JSON: %v\n%s", err, out)
	}
	return res
}

// checkFrames asserts that the frames received match what the simulator
// sent in the receiving window: fps × speed × seconds, within 1 % (plus two
// frames for the window's edges).
func checkFrames(t *testing.T, res probe.Result, fps, speed float64) *probe.Track {
	t.Helper()
	var v *probe.Track
	for i := range res.Tracks {
		if res.Tracks[i].Codec.IsVideo() {
			v = &res.Tracks[i]
			break
		}
	}
	if v == nil || v.Received == nil {
		t.Fatalf("no received video track in %+v", res)
	}
	want := fps * speed * res.Seconds
	if got := float64(v.Received.Frames); math.Abs(got-want) > want*0.01+2 {
		t.Errorf("frames = %v, want %.0f ± 1%% (%.1f s at %g fps × %g)", got, want, res.Seconds, fps, speed)
	}
	if v.Received.LostPackets != 0 || v.Received.Dropped != 0 {
		t.Errorf("lost %d packets, dropped %d frames on loopback", v.Received.LostPackets, v.Received.Dropped)
	}
	// One key frame per 2 s GOP.
	if wantKeys := want / 50; math.Abs(float64(v.Received.KeyFrames)-wantKeys) > 2 {
		t.Errorf("key frames = %d, want about %.0f", v.Received.KeyFrames, wantKeys)
	}
	return v
}

func TestProbeSimulator(t *testing.T) {
	cases := []struct {
		name      string
		opts      sim.Options
		path      string
		transport string
		user      string
		codec     media.Codec
		w, h      int
	}{
		{"h264 tcp", sim.Options{Cameras: 2, Speed: 10}, "cam2", "tcp", "", media.CodecH264, 1920, 1080},
		{"h264 udp", sim.Options{Cameras: 1, Speed: 4}, "cam1", "udp", "", media.CodecH264, 1920, 1080},
		{"sub-stream", sim.Options{Cameras: 1, Speed: 10}, "cam1/sub", "tcp", "", media.CodecH264, 640, 360},
		{"h265", sim.Options{Cameras: 1, Speed: 10, Codec: media.CodecH265}, "cam1", "tcp", "", media.CodecH265, 1920, 1080},
		{"digest", sim.Options{Cameras: 1, Speed: 10, User: "viewer", Pass: "pa55word"}, "cam1", "tcp", "viewer:pa55word@", media.CodecH264, 1920, 1080},
		// No --transport and a camera that refuses TCP (461): UDP.
		{"tcp refused", sim.Options{Cameras: 1, Speed: 4, RefuseTCP: true}, "cam1", "", "", media.CodecH264, 1920, 1080},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startSimulator(t, tc.opts)
			dump := filepath.Join(t.TempDir(), "dump."+string(tc.codec))
			args := []string{"--seconds", "3", "--dump", dump, "rtsp://" + tc.user + addr + "/" + tc.path}
			want := "udp" // what a camera refusing TCP gets without --transport
			if tc.transport != "" {
				args, want = append([]string{"--transport", tc.transport}, args...), tc.transport
			}
			res := probeJSON(t, args...)
			if res.Transport != want {
				t.Errorf("transport = %s, want %s", res.Transport, want)
			}
			v := checkFrames(t, res, 25, tc.opts.Speed)
			if v.Codec != tc.codec || v.Width != tc.w || v.Height != tc.h || v.FPS != 25 {
				t.Errorf("track = %s %dx%d %g fps, want %s %dx%d 25 fps", v.Codec, v.Width, v.Height, v.FPS, tc.codec, tc.w, tc.h)
			}
			if strings.Contains(res.URL, "pa55word") {
				t.Errorf("probe output shows the password: %s", res.URL)
			}
			frames, errText := testpeer.Decode(t, dump)
			if errText != "" {
				t.Errorf("ffmpeg reports errors decoding what we received:\n%s", errText)
			}
			if uint64(frames) != v.Received.Frames {
				t.Errorf("ffmpeg decoded %d frames, probe counted %d", frames, v.Received.Frames)
			}
		})
	}
}

func TestProbeFailures(t *testing.T) {
	addr := startSimulator(t, sim.Options{Cameras: 1, User: "u", Pass: "right-pw"})
	udpOnly := startSimulator(t, sim.Options{Cameras: 1, RefuseTCP: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"rtsp://u:wrong-pw@" + addr + "/cam1"}, "401"},
		{"no credentials", []string{"rtsp://" + addr + "/cam1"}, "401"},
		{"unreachable", []string{"rtsp://" + closed + "/cam1"}, "unreachable"},
		{"unknown path", []string{"rtsp://u:right-pw@" + addr + "/cam9"}, "404"},
		{"bad transport", []string{"--transport", "sctp", "rtsp://" + addr + "/cam1"}, "--transport"},
		{"tcp forced, camera refuses it", []string{"--transport", "tcp", "--seconds", "1", "rtsp://" + udpOnly + "/cam1"}, "461"},
		{"no url", nil, "camera URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"probe"}, tc.args...)...)
			if code == 0 {
				t.Fatalf("exit 0, output %s", out)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is not one line:\n%s", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("error %q does not say %q", errOut, tc.want)
			}
			if strings.Contains(errOut, "wrong-pw") || strings.Contains(errOut, "right-pw") {
				t.Errorf("error shows a password: %s", errOut)
			}
		})
	}
}

func TestDemoOnce(t *testing.T) {
	code, out, errOut := runCLI(t, "demo", "--once", "--cameras", "2", "--seconds", "1", "--listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errOut)
	}
	for _, want := range []string{"cam1 ", "cam1/sub", "cam2 ", "cam2/sub", "1920x1080", "640x360"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
