package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// staticStream serves a fixed session description and no media.
type staticStream struct{ sdp []byte }

func (s staticStream) SDP() []byte { return s.sdp }
func (s staticStream) Play(ctx context.Context, _ []int, _ rtsp.PacketWriter) error {
	<-ctx.Done()
	return ctx.Err()
}

// serveSDP serves sdp at rtsp://ADDR/cam and returns the URL.
func serveSDP(t *testing.T, sdp string) string {
	t.Helper()
	srv := &rtsp.Server{Mount: func(string) (rtsp.Stream, error) { return staticStream{[]byte(sdp)}, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "rtsp://" + ln.Addr().String() + "/cam"
}

// sdpOf returns the body of a captured DESCRIBE response.
func sdpOf(t *testing.T, capture string) string {
	t.Helper()
	b, err := os.ReadFile("../../internal/rtsp/testdata/" + capture)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	i := strings.Index(s, "\nv=0")
	if i < 0 {
		t.Fatalf("%s has no SDP", capture)
	}
	return s[i+1:]
}

// TestProbeDescribesCameraTracks serves a real Dahua description (H.264,
// AAC and an ONVIF metadata track): the probe reports video and audio and
// ignores the metadata track by name.
func TestProbeDescribesCameraTracks(t *testing.T) {
	u := serveSDP(t, sdpOf(t, "dahua_describe_h264_aac_onvif.txt"))
	res := probeJSON(t, u)
	if len(res.Tracks) != 3 {
		t.Fatalf("tracks = %+v", res.Tracks)
	}
	v, a, m := res.Tracks[0], res.Tracks[1], res.Tracks[2]
	if v.Codec != media.CodecH264 || v.Width != 704 || v.Height != 480 || v.Profile != "High" || v.FPS != 15 {
		t.Errorf("video = %+v", v)
	}
	if a.Codec != media.CodecAAC || a.ClockRate != 48000 || a.Ignored != "" {
		t.Errorf("audio = %+v", a)
	}
	if m.Codec != media.CodecMetadata || m.Ignored == "" {
		t.Errorf("metadata = %+v", m)
	}
}

func TestProbeRefusesUnusableCameras(t *testing.T) {
	cases := []struct{ name, sdp, want string }{
		{"audio only", "v=0\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=control:trackID=0\r\n", "no video track"},
		{"mjpeg", "v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\na=control:trackID=0\r\n", "unsupported codec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "probe", serveSDP(t, tc.sdp))
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
		})
	}
}
