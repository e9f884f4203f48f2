package rtsp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
)

// wantTrack is the part of a Track a capture test asserts.
type wantTrack struct {
	media    string
	codec    media.Codec
	pt       uint8
	clock    int
	channels int
	control  string
}

// describeCases lists every DESCRIBE/SDP capture with what it must parse
// into. reqURL is the URL the DESCRIBE was sent to (made up where the
// capture does not show it); "" means the file is a bare SDP body.
var describeCases = []struct {
	file    string
	reqURL  string
	control string
	tracks  []wantTrack
}{
	{"anjvision_describe.txt", "rtsp://192.168.1.10:554/stream0", "rtsp://192.168.1.10:554/stream0", []wantTrack{
		{"video", media.CodecH265, 96, 90000, 0, "rtsp://192.168.1.10:554/stream0/trackID=1"}}},
	{"anpviz_sdp.txt", "", "", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "trackID=1"},
		{"audio", media.CodecAAC, 0, 16000, 2, "trackID=2"}}},
	{"bunny_describe.txt", "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov", "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/", []wantTrack{
		{"audio", media.CodecAAC, 96, 12000, 2, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=1"},
		{"video", media.CodecH264, 97, 90000, 0, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2"}}},
	{"dahua_describe_h264_aac_onvif.txt", "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif",
		"rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/", []wantTrack{
			{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/trackID=0"},
			{"audio", media.CodecAAC, 97, 48000, 1, "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/trackID=1"},
			{"application", media.CodecMetadata, 107, 90000, 0, "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/trackID=4"}}},
	{"dahua_describe_h265_pcma.txt", "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2", "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2/", []wantTrack{
		{"video", media.CodecH265, 98, 90000, 0, "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2/trackID=0"},
		{"audio", media.CodecPCMA, 8, 8000, 1, "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2/trackID=1"}}},
	{"foscam_describe.txt", "rtsp://192.168.5.107:65534/videoMain", "rtsp://192.168.5.107:65534/videoMain/", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.5.107:65534/videoMain/track1"},
		{"audio", media.CodecPCMU, 0, 8000, 1, "rtsp://192.168.5.107:65534/videoMain/track2"}}},
	{"generic_response.txt", "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov", "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/", []wantTrack{
		{"audio", media.CodecAAC, 96, 12000, 2, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=1"},
		{"video", media.CodecH264, 97, 90000, 0, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2"}}},
	{"geovision_sdp.txt", "", "", []wantTrack{
		{"video", media.CodecH264, 105, 90000, 0, "rtsp://192.168.5.237/media/video1/video"},
		{"application", media.CodecMetadata, 107, 90000, 0, "rtsp://192.168.5.237/media/video1/metadata"}}},
	// The gw base has a query but no trailing '/': the control goes into the
	// path, as the camera's own RTP-Info URL (gw_main_play.txt) shows.
	{"gw_main_describe.txt", "rtsp://192.168.1.110:5050/H264?channel=1&subtype=0&unicast=true&proto=Onvif",
		"rtsp://192.168.1.110:5050/H264?channel=1&subtype=0&unicast=true&proto=Onvif", []wantTrack{
			{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.110:5050/H264/video?channel=1&subtype=0&unicast=true&proto=Onvif"},
			// rtpmap:8 says PCMU although static type 8 is PCMA: the rtpmap wins.
			{"audio", media.CodecPCMU, 8, 8000, 1, "rtsp://192.168.1.110:5050/H264/audio?channel=1&subtype=0&unicast=true&proto=Onvif"}}},
	{"gw_sub_describe.txt", "rtsp://192.168.1.110:5049/H264?channel=1&subtype=1&unicast=true&proto=Onvif",
		"rtsp://192.168.1.110:5049/H264?channel=1&subtype=1&unicast=true&proto=Onvif", []wantTrack{
			{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.110:5049/H264/video?channel=1&subtype=1&unicast=true&proto=Onvif"}}},
	// h264dvr announces Content-Base rtsp://127.0.0.1:554/camera.
	{"h264dvr_describe.txt", "rtsp://192.168.168.100:8554/camera", "rtsp://192.168.168.100:8554/camera", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.168.100:8554/camera/trackID=3"},
		{"audio", media.CodecPCMA, 8, 8000, 1, "rtsp://192.168.168.100:8554/camera/trackID=4"}}},
	{"hikvision_describe.txt", "rtsp://192.168.5.106:554/Streaming/Channels/101",
		"rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1", []wantTrack{
			{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1"},
			{"application", media.CodecMetadata, 107, 90000, 0, "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=3?transportmode=unicast&profile=Profile_1"}}},
	{"ipcam_describe.txt", "rtsp://192.168.1.67:554/11", "rtsp://192.168.1.67:554/11", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.67:554/11/trackID=1"}}},
	{"macrovideo_describe.txt", "rtsp://192.168.1.2/live/ch00_0", "rtsp://192.168.1.2/live/ch00_0", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.2/live/ch00_0/track1"}}},
	{"missing_content_type_describe.txt", "rtsp://192.168.1.101/live", "rtsp://192.168.1.101/live", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.101/live/streamid=0"},
		{"audio", media.CodecAAC, 97, 48000, 2, "rtsp://192.168.1.101/live/streamid=1"}}},
	{"reolink_describe.txt", "rtsp://192.168.5.206/h264Preview_01_main", "rtsp://192.168.5.206/h264Preview_01_main/", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.5.206/h264Preview_01_main/trackID=1"},
		{"audio", media.CodecAAC, 97, 16000, 1, "rtsp://192.168.5.206/h264Preview_01_main/trackID=2"}}},
	{"reolink_describe_control_first.txt", "rtsp://192.168.5.206/h264Preview_01_main", "rtsp://192.168.5.206/h264Preview_01_main/", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.5.206/h264Preview_01_main/trackID=1"},
		{"audio", media.CodecAAC, 97, 16000, 1, "rtsp://192.168.5.206/h264Preview_01_main/trackID=2"}}},
	{"tplink_sdp.txt", "", "", []wantTrack{
		{"video", media.CodecH265, 96, 90000, 0, "track1"},
		{"audio", media.CodecPCMA, 8, 8000, 1, "track2"},
		{"application", "tp-link", 95, 90000, 0, "track3"}}},
	{"ubiquiti_sdp.txt", "", "", []wantTrack{
		{"audio", media.CodecAAC, 96, 48000, 1, "trackID=0"},
		{"audio", media.CodecOpus, 96, 48000, 2, "trackID=1"},
		{"video", media.CodecH264, 97, 90000, 0, "trackID=2"}}},
	{"vstarcam_describe.txt", "rtsp://192.168.1.198:10554/tcp/av0_0", "rtsp://192.168.1.198:10554/tcp/av0_0", []wantTrack{
		{"video", media.CodecH264, 96, 90000, 0, "rtsp://192.168.1.198:10554/tcp/av0_0/track0"},
		{"audio", media.CodecPCMA, 8, 8000, 1, "rtsp://192.168.1.198:10554/tcp/av0_0/track1"}}},
}

// loadDescription parses a capture as DESCRIBE response or bare SDP.
func loadDescription(t *testing.T, file, reqURL string) Description {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if reqURL == "" {
		d, err := ParseSDP(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return d
	}
	resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	base, err := BaseURL(reqURL, resp)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	d, err := ParseSDP(resp.Body, base)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

func TestDescribeCaptures(t *testing.T) {
	for _, tc := range describeCases {
		d := loadDescription(t, tc.file, tc.reqURL)
		if d.Control != tc.control {
			t.Errorf("%s: session control %q, want %q", tc.file, d.Control, tc.control)
		}
		if len(d.Tracks) != len(tc.tracks) {
			t.Errorf("%s: %d tracks, want %d", tc.file, len(d.Tracks), len(tc.tracks))
			continue
		}
		for i, w := range tc.tracks {
			g := d.Tracks[i]
			got := wantTrack{g.Media, g.Codec, g.PayloadType, g.ClockRate, g.Channels, g.Control}
			if got != w {
				t.Errorf("%s track %d:\n got %+v\nwant %+v", tc.file, i, got, w)
			}
			if g.Codec.IsVideo() && !g.Params.Complete(g.Codec) {
				t.Errorf("%s track %d: incomplete parameter sets %+v", tc.file, i, g.Params)
			}
		}
	}
}

func TestDescribeParams(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	d := loadDescription(t, "bunny_describe.txt", "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov")
	v := d.Tracks[1]
	if !bytes.Equal(v.Params.SPS, unhex("6742c01ed903c56840000003004000000c03c58b92")) || !bytes.Equal(v.Params.PPS, unhex("68cb8cb2")) {
		t.Errorf("bunny SPS %x PPS %x", v.Params.SPS, v.Params.PPS)
	}
	if v.PacketizationMode != 1 || v.Framerate != 24 || d.SessionName != "BigBuckBunny_115k.mov" {
		t.Errorf("bunny: mode %d framerate %v name %q", v.PacketizationMode, v.Framerate, d.SessionName)
	}
	if a := d.Tracks[0]; !bytes.Equal(a.AACConfig, []byte{0x14, 0x90}) || a.Fmtp["mode"] != "AAC-hbr" {
		t.Errorf("bunny AAC config %x fmtp %v", a.AACConfig, a.Fmtp)
	}

	// gw: sprop-parameter-sets carry a trailing 00 00 00 01 start code.
	d = loadDescription(t, "gw_main_describe.txt", "rtsp://192.168.1.110:5050/H264?channel=1")
	if got := d.Tracks[0].Params; !bytes.Equal(got.PPS, unhex("68ee3c80")) || got.SPS[len(got.SPS)-1] == 0 {
		t.Errorf("gw params SPS %x PPS %x", got.SPS, got.PPS)
	}

	// Dahua H.265: VPS/SPS/PPS with the right NAL unit types.
	d = loadDescription(t, "dahua_describe_h265_pcma.txt", "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2")
	p := d.Tracks[0].Params
	if p.VPS[0]>>1 != 32 || p.SPS[0]>>1 != 33 || p.PPS[0]>>1 != 34 || d.Tracks[0].Framerate != 12 {
		t.Errorf("dahua h265 params %x / %x / %x", p.VPS, p.SPS, p.PPS)
	}

	// h264dvr: a=framerate:0S then 25; anjvision: a=x-framerate: 5.
	if d = loadDescription(t, "h264dvr_describe.txt", "rtsp://10.0.0.2/camera"); d.Tracks[0].Framerate != 25 {
		t.Errorf("h264dvr framerate %v", d.Tracks[0].Framerate)
	}
	if d = loadDescription(t, "anjvision_describe.txt", "rtsp://10.0.0.2/stream0"); d.Tracks[0].Framerate != 5 || len(d.Tracks[0].Params.VPS) == 0 {
		t.Errorf("anjvision %+v", d.Tracks[0])
	}
	// missing_content_type: 5-byte AAC config, fmtp keys with spaces.
	d = loadDescription(t, "missing_content_type_describe.txt", "rtsp://10.0.0.2/live")
	if !bytes.Equal(d.Tracks[1].AACConfig, unhex("119056e500")) || d.Tracks[0].Fmtp["profile-level-id"] != "64000D" {
		t.Errorf("missing_content_type: %x %v", d.Tracks[1].AACConfig, d.Tracks[0].Fmtp)
	}
}

func TestBaseURL(t *testing.T) {
	resp := func(h ...string) *Response {
		r := &Response{StatusCode: 200}
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Add(h[i], h[i+1])
		}
		return r
	}
	for _, tc := range []struct {
		req  string
		resp *Response
		want string
	}{
		{"rtsp://u:p@cam/a", resp("Content-Base", "rtsp://cam/b/"), "rtsp://cam/b/"},
		{"rtsp://u:p@cam/a", resp("Content-Location", "rtsp://cam/c"), "rtsp://cam/c"},
		{"rtsp://u:p@cam/a", resp(), "rtsp://cam/a"},
		{"rtsp://cam/a", resp("Content-Base", "192.168.1.10:554/stream0/"), "rtsp://cam/a"},
		{"rtsp://cam:8554/a", resp("Content-Base", "rtsp://0.0.0.0/a/"), "rtsp://cam:8554/a/"},
		{"rtsp://127.0.0.1:8554/a", resp("Content-Base", "rtsp://127.0.0.1/a/"), "rtsp://127.0.0.1/a/"},
		{"rtsp://cam/a?x=1", nil, "rtsp://cam/a?x=1"},
	} {
		u, err := BaseURL(tc.req, tc.resp)
		if err != nil || u.String() != tc.want {
			t.Errorf("BaseURL(%q): %v, %v; want %s", tc.req, u, err, tc.want)
		}
	}
	if _, err := BaseURL("/relative", nil); err == nil {
		t.Error("relative request URL accepted")
	}
	if _, err := BaseURL("rtsp://admin:pw%zz@cam/", nil); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("bad URL error %v", err)
	}
}

func TestResolveControl(t *testing.T) {
	for _, tc := range []struct{ base, control, want string }{
		{"rtsp://h/p", "trackID=1", "rtsp://h/p/trackID=1"},
		{"rtsp://h/p/", "trackID=1", "rtsp://h/p/trackID=1"},
		{"rtsp://h/p", "*", "rtsp://h/p"},
		{"rtsp://h/p", "", "rtsp://h/p"},
		{"rtsp://h/p", "rtsp://other/x", "rtsp://other/x"},
		{"rtsp://h/p", "RTSP://other/x", "RTSP://other/x"},
		{"rtsp://h/p?a=1&b=2/", "trackID=0", "rtsp://h/p?a=1&b=2/trackID=0"},
		{"rtsp://h/p?a=1&b=2", "video", "rtsp://h/p/video?a=1&b=2"},
		{"rtsp://h/p/?a=1", "t=1?q=2", "rtsp://h/p/t=1?q=2"},
		{"", "trackID=1", "trackID=1"},
	} {
		if got := ResolveControl(tc.base, tc.control); got != tc.want {
			t.Errorf("ResolveControl(%q, %q) = %q, want %q", tc.base, tc.control, got, tc.want)
		}
	}
}

// sdpCases are small hand-written bodies for tolerance and for the fuzzer.
var sdpCases = []struct {
	name   string
	body   string
	tracks int
	err    bool
}{
	{"only media", "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n", 1, false},
	{"no media", "v=0\r\ns=x\r\n", 0, true},
	{"garbage lines", "v=0\n\x00junk\n  \nm=audio 0 RTP/AVP 8 \t\nb=AS:64\n=x\nm=\nm=video\n", 2, false},
	{"fmtp without rtpmap match", "m=video 0 RTP/AVP 96\na=rtpmap:97 H264/90000\na=fmtp:97 packetization-mode=1;sprop-parameter-sets=Z0IAKeKQFAe2AtwEBAaQeJEV,aM48gA==\n", 1, false},
	{"bad base64", "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 sprop-parameter-sets=!!!,***\n", 1, false},
}

func TestParseSDPTolerance(t *testing.T) {
	base, _ := url.Parse("rtsp://cam/s")
	for _, tc := range sdpCases {
		d, err := ParseSDP([]byte(tc.body), base)
		if (err != nil) != tc.err || len(d.Tracks) != tc.tracks {
			t.Errorf("%s: %d tracks, %v", tc.name, len(d.Tracks), err)
		}
	}
	d, _ := ParseSDP([]byte(sdpCases[3].body), base)
	if tr := d.Tracks[0]; tr.Codec != media.CodecH264 || tr.PacketizationMode != 1 || !tr.Params.Complete(media.CodecH264) || tr.Control != "rtsp://cam/s" {
		t.Errorf("rtpmap fallback: %+v", tr)
	}
	many := strings.Repeat("m=video 0 RTP/AVP 96\n", MaxSDPTracks+1)
	if _, err := ParseSDP([]byte(many), nil); err == nil {
		t.Error("too many media sections accepted")
	}
}
