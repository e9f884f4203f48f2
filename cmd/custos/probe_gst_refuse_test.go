package main

import (
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestProbeGStreamerUDPOnly: GStreamer's RTSP server restricted to UDP
// answers SETUP over TCP with 461; without --transport, custos probe then
// receives over UDP, and with --transport tcp it reports the refusal.
func TestProbeGStreamerUDPOnly(t *testing.T) {
	testpeer.FFmpeg(t)
	cam := testpeer.StartGstCamera(t, testpeer.GstOptions{Codec: "h264", Width: 320, Height: 240, UDPOnly: true})
	res := probeJSON(t, "--seconds", "3", cam.URL())
	if res.Transport != "udp" {
		t.Errorf("transport = %s, want udp", res.Transport)
	}
	if v := res.Tracks[0]; v.Received == nil || v.Received.Frames < 50 || v.Received.KeyFrames == 0 {
		t.Errorf("received %+v in 3 s, want about 75 frames", v.Received)
	}
	code, _, errOut := runCLI(t, "probe", "--transport", "tcp", "--seconds", "1", cam.URL())
	if code == 0 || !strings.Contains(errOut, "461") {
		t.Errorf("--transport tcp: exit %d, %q; want the 461 refusal", code, errOut)
	}
}

// TestProbeGStreamerBasicOnly: a camera offering only Basic over plain
// RTSP gets no password unless --allow-basic says so.
func TestProbeGStreamerBasicOnly(t *testing.T) {
	cam := testpeer.StartGstCamera(t, testpeer.GstOptions{Codec: "h264", Width: 320, Height: 240,
		User: "admin", Pass: "cam-secret", BasicAuth: true})
	u := cam.URLWithCredentials("admin", "cam-secret")
	code, _, errOut := runCLI(t, "probe", u)
	if code == 0 || !strings.Contains(errOut, "only Basic auth over unencrypted RTSP") || !strings.Contains(errOut, "--allow-basic") {
		t.Errorf("without --allow-basic: exit %d, %q; want the Basic refusal naming --allow-basic", code, errOut)
	}
	if strings.Contains(errOut, "cam-secret") {
		t.Errorf("error shows the password: %s", errOut)
	}
	res := probeJSON(t, "--allow-basic", "--seconds", "1", u)
	if v := res.Tracks[0]; v.Received == nil || v.Received.Frames == 0 {
		t.Errorf("with --allow-basic: received %+v", v.Received)
	}
}
