package rtsp

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// responseCaptures returns the paths of every capture that is a whole RTSP
// response (not a bare SDP body, request or binary stream).
func responseCaptures(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b := filepath.Base(f)
		if strings.HasSuffix(b, "_sdp.txt") || b == "generic_request.txt" {
			continue
		}
		out = append(out, f)
	}
	if len(out) < 30 {
		t.Fatalf("only %d response captures found", len(out))
	}
	return out
}

func readCapture(t *testing.T, name string) *Response {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return resp
}

// TestResponseCaptures parses every response capture both with
// ReadResponse and with a Reader (once alone and once between interleaved
// frames, LF-only line endings too).
func TestResponseCaptures(t *testing.T) {
	for _, f := range responseCaptures(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, ok := resp.CSeq(); !ok && !strings.Contains(f, "bad_rtptime") {
			t.Errorf("%s: no CSeq", f)
		}
		lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		if resp.Header.Has("Content-Length") {
			lf = data // the body length would change
		}
		stream := cat(WriteInterleaved(nil, 0, []byte{0x80, 0x60}), data, WriteInterleaved(nil, 1, []byte("x")), lf)
		rd := NewReader(bytes.NewReader(stream), 4096)
		var kinds []string
		for {
			it, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: Reader: %v", f, err)
			}
			kinds = append(kinds, describeItem(it)[:4])
			if it.Response != nil && (it.Response.StatusCode != resp.StatusCode || len(it.Response.Header) != len(resp.Header) ||
				!bytes.Equal(it.Response.Body, resp.Body)) {
				t.Errorf("%s: Reader got %+v, want %+v", f, it.Response, resp)
			}
		}
		if got := strings.Join(kinds, ","); got != "$0:\x80,resp,$1:x,resp" || rd.Skipped() != 0 {
			t.Errorf("%s: items %q, skipped %d", f, got, rd.Skipped())
		}
	}
	req, err := ReadRequest(bufio.NewReader(bytes.NewReader(mustRead(t, "generic_request.txt"))))
	if err != nil || req.Method != "DESCRIBE" || req.URL != "rtsp://192.168.5.225/h264Preview_01_main" || req.Header.Get("user-agent") != "Retina mp4 example" {
		t.Errorf("generic_request: %+v, %v", req, err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSetupCaptures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    Transport
		session string
		timeout time.Duration
	}{
		{"bunny_setup.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1}}, "1642021126", time.Minute},
		{"dahua_setup.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1}, HasSSRC: true, SSRC: 0x30A98EE7}, "634214675641", time.Minute},
		{"gw_main_setup_audio.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, Destination: "192.168.1.210", Source: "192.168.1.110",
			HasInterleaved: true, Interleaved: [2]int{2, 3}}, "9a90de54", time.Minute},
		{"gw_main_setup_video.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, Destination: "192.168.1.210", Source: "192.168.1.110",
			HasInterleaved: true, Interleaved: [2]int{0, 1}}, "9a90de54", time.Minute},
		{"gw_sub_setup.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, Destination: "192.168.1.210", Source: "192.168.1.110",
			HasInterleaved: true, Interleaved: [2]int{0, 1}}, "9b0d0e54", time.Minute},
		{"h264dvr_setup_audio.txt", Transport{Protocol: "RTP/AVP", Unicast: true, Source: "127.0.0.1", HasClientPort: true, ClientPort: [2]int{18716, 18717},
			HasServerPort: true, ServerPort: [2]int{40006, 40007}, HasSSRC: true, Mode: "PLAY"}, "231980", time.Minute},
		{"h264dvr_setup_video.txt", Transport{Protocol: "RTP/AVP", Unicast: true, Source: "127.0.0.1", HasClientPort: true, ClientPort: [2]int{18714, 18715},
			HasServerPort: true, ServerPort: [2]int{40004, 40005}, HasSSRC: true, Mode: "PLAY"}, "231970", time.Minute},
		{"hikvision_setup.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1},
			HasSSRC: true, SSRC: 0x4cacc3d1, Mode: "PLAY"}, "708345999", time.Minute},
		{"hikvision_setup_ssrc_space.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1},
			HasSSRC: true, SSRC: 0x0d6d6627}, "708886412", time.Minute},
		{"luckfox_rkipc_setup_tcp.txt", Transport{Protocol: "RTP/AVP/TCP", HasInterleaved: true, Interleaved: [2]int{0, 1},
			HasSSRC: true, SSRC: 0x22345684}, "12345678", DefaultSessionTimeout},
		{"luckfox_rkipc_setup_udp.txt", Transport{Protocol: "RTP/AVP", Unicast: true, HasClientPort: true, ClientPort: [2]int{54060, 54061},
			HasServerPort: true, ServerPort: [2]int{49152, 49153}, HasSSRC: true, SSRC: 0x22345685}, "12345678", DefaultSessionTimeout},
		{"reolink_setup.txt", Transport{Protocol: "RTP/AVP/TCP", Unicast: true, Destination: "192.168.1.210", Source: "192.168.5.206",
			HasInterleaved: true, Interleaved: [2]int{0, 1}}, "F8F8E425", DefaultSessionTimeout},
	} {
		resp := readCapture(t, tc.file)
		got, err := ParseTransport(resp.Header.Get("Transport"))
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", tc.file, got, err, tc.want)
		}
		id, timeout := ParseSession(resp.Header.Get("Session"))
		if id != tc.session || timeout != tc.timeout {
			t.Errorf("%s: session %q %v, want %q %v", tc.file, id, timeout, tc.session, tc.timeout)
		}
	}
}

func TestPlayCaptures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []RTPInfo
	}{
		{"bunny_play.txt", []RTPInfo{{URL: "trackID=1", Seq: 1, HasSeq: true, HasRTPTime: true},
			{URL: "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2", Seq: 1, HasSeq: true, HasRTPTime: true}}},
		// rtptime=-1: sequence numbers survive, the time is absent.
		{"bad_rtptime.txt", []RTPInfo{{URL: "trackID=1", Seq: 1, HasSeq: true},
			{URL: "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2", Seq: 1, HasSeq: true}}},
		{"dahua_play.txt", []RTPInfo{{URL: "trackID=0", Seq: 47121, HasSeq: true, RTPTime: 3475222385, HasRTPTime: true},
			{URL: "trackID=1", Seq: 45186, HasSeq: true, RTPTime: 2234446919, HasRTPTime: true},
			{URL: "trackID=4", Seq: 36583, HasSeq: true, RTPTime: 816418535, HasRTPTime: true}}},
		{"gw_main_play.txt", []RTPInfo{{URL: "rtsp://192.168.1.110:5050/H264/video", Seq: 271, HasSeq: true, RTPTime: 1621990950, HasRTPTime: true}}},
		{"gw_sub_play.txt", []RTPInfo{{URL: "rtsp://192.168.1.110:5049/H264/video", Seq: 273, HasSeq: true, RTPTime: 1621810809, HasRTPTime: true}}},
		{"hikvision_play.txt", []RTPInfo{{URL: "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1",
			Seq: 24104, HasSeq: true, RTPTime: 1270711678, HasRTPTime: true}}},
		// Trailing ';' after the last entry.
		{"laureii_play.txt", []RTPInfo{{URL: "rtsp://192.168.1.19:554/0/main/trackID=0", HasSeq: true, HasRTPTime: true}}},
		{"reolink_play.txt", []RTPInfo{{URL: "trackID=1", Seq: 16852, HasSeq: true, RTPTime: 1070938629, HasRTPTime: true, SSRC: 0xdcc4a0d8, HasSSRC: true},
			{URL: "trackID=2", Seq: 39409, HasSeq: true, RTPTime: 3075976528, HasRTPTime: true, SSRC: 0x9fc9fff8, HasSSRC: true}}},
		{"h264dvr_play.txt", nil},
	} {
		resp := readCapture(t, tc.file)
		got := ParseRTPInfo(resp.Header.Get("RTP-Info"))
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %+v", tc.file, got)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s #%d:\n got %+v\nwant %+v", tc.file, i, got[i], tc.want[i])
			}
		}
		if r := resp.Header.Get("Range"); r != "" {
			if _, err := ParseRange(r); err != nil {
				t.Errorf("%s: %v", tc.file, err)
			}
		}
	}
}

func TestUnauthorizedCapture(t *testing.T) {
	resp := readCapture(t, "longse_unauthorized.txt")
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n, ok := resp.CSeq(); !ok || n != 1 {
		t.Errorf("CSeq %q", resp.Header.Get("CSeq")) // sent as "1 "
	}
	chals := ParseChallenges(resp.Header.Values("WWW-Authenticate"))
	if len(chals) != 1 || chals[0].Scheme != "Digest" || chals[0].Realm != "Surveillance Server" || chals[0].Nonce != "98481030" {
		t.Fatalf("challenges %+v", chals)
	}
	a, err := NewAuthenticator("admin", "pw", chals)
	if err != nil {
		t.Fatal(err)
	}
	// No qop: RFC 2069 response, no nc/cnonce.
	h := a.Authorization("DESCRIBE", "rtsp://192.168.1.5/ch0")
	if !strings.HasPrefix(h, `Digest username="admin", realm="Surveillance Server", nonce="98481030", uri="rtsp://192.168.1.5/ch0", response="`) ||
		strings.Contains(h, "nc=") || strings.Contains(h, "algorithm") {
		t.Errorf("authorization %q", h)
	}
}

func TestOptionsCapture(t *testing.T) {
	resp := readCapture(t, "dahua_options.txt")
	if p := resp.Header.Get("Public"); !strings.Contains(p, "GET_PARAMETER") {
		t.Errorf("Public %q", p)
	}
	if resp := readCapture(t, "reolink_teardown.txt"); resp.StatusCode != 200 || len(resp.Body) != 0 {
		t.Errorf("teardown %+v", resp)
	}
}
