package main

import (
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestProbeGStreamer probes the GStreamer RTSP server, a real camera
// stand-in, for 30 s of live video per case (the cases run in parallel):
// the frame count must match what the source produced within 1 %, with no
// loss, and ffmpeg must decode the received access units without error.
func TestProbeGStreamer(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s real-time camera test skipped with -short")
	}
	testpeer.FFmpeg(t)
	cases := []struct {
		name      string
		opts      testpeer.GstOptions
		transport string
		creds     bool
	}{
		{"h264 tcp", testpeer.GstOptions{Codec: "h264"}, "tcp", false},
		{"h264 udp", testpeer.GstOptions{Codec: "h264"}, "udp", false},
		{"h264 bframes", testpeer.GstOptions{Codec: "h264", BFrames: 2}, "tcp", false},
		{"h265 tcp", testpeer.GstOptions{Codec: "h265"}, "tcp", false},
		{"h264 digest", testpeer.GstOptions{Codec: "h264", User: "admin", Pass: "cam-secret"}, "tcp", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := testpeer.StartGstCamera(t, tc.opts)
			u := cam.URL()
			if tc.creds {
				pu, err := url.Parse(u)
				if err != nil {
					t.Fatal(err)
				}
				pu.User = url.UserPassword(tc.opts.User, tc.opts.Pass)
				u = pu.String()
			}
			dump := filepath.Join(t.TempDir(), "received."+tc.opts.Codec)
			res := probeJSON(t, "--seconds", "30", "--transport", tc.transport, "--dump", dump, u)
			if res.Transport != tc.transport {
				t.Errorf("transport = %s, want %s", res.Transport, tc.transport)
			}
			var v = res.Tracks[0]
			if string(v.Codec) != tc.opts.Codec || v.Width != 640 || v.Height != 360 || v.Received == nil {
				t.Fatalf("track = %+v", v)
			}
			// The source's frame count over what we received follows from
			// its own clock: one frame per 3600 ticks at 25 fps. The wall
			// window (PLAY to TEARDOWN) must agree too.
			sourceFrames := float64(v.Received.MaxPTS90k-v.Received.MinPTS90k)/3600 + 1
			got := float64(v.Received.Frames)
			if math.Abs(got-sourceFrames) > sourceFrames*0.01 {
				t.Errorf("frames = %.0f, source sent %.0f in that span (want within 1%%)", got, sourceFrames)
			}
			// The camera builds its encoder only at PLAY, which takes
			// seconds on a loaded 2-core machine, and a starved live
			// encoder (x265 with both cores busy) falls behind its own
			// clock: the exact check is the one above, against the source's
			// timestamps; against the wall only gross losses fail.
			if wall := 25 * res.Seconds; got > wall+2 || got < wall/2 {
				t.Errorf("frames = %.0f, but %.2f s at 25 fps is %.0f", got, res.Seconds, wall)
			}
			if v.Received.LostPackets != 0 || v.Received.Dropped != 0 {
				t.Errorf("lost %d packets, dropped %d frames", v.Received.LostPackets, v.Received.Dropped)
			}
			frames, errText := testpeer.Decode(t, dump)
			if errText != "" {
				t.Errorf("ffmpeg errors decoding the received stream:\n%s", errText)
			}
			if uint64(frames) != v.Received.Frames {
				t.Errorf("ffmpeg decoded %d frames, probe counted %d", frames, v.Received.Frames)
			}
			t.Logf("%s: %d frames (%d key) in %.2f s, %d bytes", tc.name, v.Received.Frames, v.Received.KeyFrames, res.Seconds, v.Received.Bytes)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		cam := testpeer.StartGstCamera(t, testpeer.GstOptions{User: "admin", Pass: "cam-secret"})
		pu, _ := url.Parse(cam.URL())
		pu.User = url.UserPassword("admin", "not-it")
		code, _, errOut := runCLI(t, "probe", pu.String())
		if code == 0 || !strings.Contains(errOut, "401") || strings.Contains(errOut, "not-it") {
			t.Errorf("exit %d, stderr %q: want a 401 without the password", code, errOut)
		}
	})
}
