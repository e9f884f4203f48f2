package rtsp

import (
	"testing"
	"time"
)

// transportCases feed TestParseTransport and FuzzParseTransport.
var transportCases = []struct {
	in      string
	want    Transport
	wantErr bool
}{
	{in: "RTP/AVP/TCP;unicast;interleaved=0-1", want: Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1}}},
	{in: `RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=4cacc3d1;mode="play"`,
		want: Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1}, HasSSRC: true, SSRC: 0x4cacc3d1, Mode: "PLAY"}},
	{in: "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc= d6d6627",
		want: Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{0, 1}, HasSSRC: true, SSRC: 0x0d6d6627}},
	{in: "rtp/avp;UNICAST;Client_Port=18714-18715;server_port=40004-40005;ssrc=0;source=127.0.0.1;mode=PLAY",
		want: Transport{Protocol: "RTP/AVP", Unicast: true, HasClientPort: true, ClientPort: [2]int{18714, 18715},
			HasServerPort: true, ServerPort: [2]int{40004, 40005}, HasSSRC: true, Source: "127.0.0.1", Mode: "PLAY"}},
	{in: "RTP/AVP/TCP;ssrc=22345684;interleaved=0-1",
		want: Transport{Protocol: "RTP/AVP/TCP", HasInterleaved: true, Interleaved: [2]int{0, 1}, HasSSRC: true, SSRC: 0x22345684}},
	{in: " RTP/AVP ; multicast ; destination=224.2.0.1 ; port=3456-3457 ; ttl=16 ",
		want: Transport{Protocol: "RTP/AVP", Multicast: true, Destination: "224.2.0.1", HasPort: true, Port: [2]int{3456, 3457}, HasTTL: true, TTL: 16}},
	{in: "RTP/AVP/TCP;interleaved=4", want: Transport{Protocol: "RTP/AVP/TCP", HasInterleaved: true, Interleaved: [2]int{4, 5}}},
	{in: "RTP/AVP;unicast;ssrc=zzzz", want: Transport{Protocol: "RTP/AVP", Unicast: true}},
	{in: "RTP/AVP/TCP;interleaved=a-b", wantErr: true},
	{in: "RTP/AVP/TCP;interleaved=0-256", wantErr: true},
	{in: "RTP/AVP;client_port=70000-70001", wantErr: true},
	{in: "", wantErr: true},
	{in: "interleaved=0-1", wantErr: true},
}

func TestParseTransport(t *testing.T) {
	for _, tc := range transportCases {
		got, err := ParseTransport(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
		again, err := ParseTransport(got.String())
		if err != nil || again != got {
			t.Errorf("%q: String %q reparses to %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestTransportString(t *testing.T) {
	tr := Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{2, 3}, HasSSRC: true, SSRC: 0xabc}
	if got, want := tr.String(), "RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00000ABC"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if !tr.IsTCP() || (Transport{Protocol: "RTP/AVP"}).IsTCP() {
		t.Error("IsTCP")
	}
}

func TestParseTransports(t *testing.T) {
	ts, err := ParseTransports(`RTP/AVP/TCP;unicast;interleaved=0-1;mode="PLAY,RECORD", RTP/AVP;unicast;client_port=5000-5001,bogus;interleaved=x`)
	if err != nil || len(ts) != 2 || !ts[0].IsTCP() || ts[0].Mode != "PLAY,RECORD" || ts[1].ClientPort != [2]int{5000, 5001} {
		t.Fatalf("got %+v, %v", ts, err)
	}
	if _, err := ParseTransports(" , "); err == nil {
		t.Error("empty header accepted")
	}
}

func TestParseSession(t *testing.T) {
	for _, tc := range []struct {
		in      string
		id      string
		timeout time.Duration
	}{
		{"634214675641;timeout=60", "634214675641", time.Minute},
		{"9a90de54; timeout=120", "9a90de54", 2 * time.Minute},
		{"        708345999", "708345999", DefaultSessionTimeout},
		{"F8F8E425", "F8F8E425", DefaultSessionTimeout},
		{"x;TIMEOUT=\"30\"", "x", 30 * time.Second},
		{"x;timeout=0", "x", DefaultSessionTimeout},
		{"x;timeout=garbage", "x", DefaultSessionTimeout},
		{"x;timeout=99999999999", "x", 24 * time.Hour},
		{"", "", DefaultSessionTimeout},
	} {
		id, to := ParseSession(tc.in)
		if id != tc.id || to != tc.timeout {
			t.Errorf("%q: got %q %v, want %q %v", tc.in, id, to, tc.id, tc.timeout)
		}
	}
}

func TestParseRTPInfo(t *testing.T) {
	got := ParseRTPInfo("url=trackID=1;seq=1;rtptime=-1,url=rtsp://h/p/trackID=2;seq=65535;rtptime=4294967295;ssrc=9fc9fff8,url=x;")
	want := []RTPInfo{
		{URL: "trackID=1", Seq: 1, HasSeq: true},
		{URL: "rtsp://h/p/trackID=2", Seq: 65535, HasSeq: true, RTPTime: 4294967295, HasRTPTime: true, SSRC: 0x9fc9fff8, HasSSRC: true},
		{URL: "x"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := ParseRTPInfo(""); got != nil {
		t.Errorf("empty: %+v", got)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NPTRange
		err  bool
	}{
		{in: "npt=0.0-596.48", want: NPTRange{HasEnd: true, End: 596480 * time.Millisecond}},
		{in: "npt=now-", want: NPTRange{Now: true}},
		{in: "npt=0.000000-", want: NPTRange{}},
		{in: "npt=1:02:03.5-", want: NPTRange{Start: time.Hour + 2*time.Minute + 3500*time.Millisecond}},
		{in: "clock=19961108T142300Z-", err: true},
		{in: "npt=abc-", err: true},
	} {
		got, err := ParseRange(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q: got %+v, %v", tc.in, got, err)
		}
	}
}
