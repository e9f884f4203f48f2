package live

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	rtph264 "github.com/custos-nvr/custos/internal/rtp/h264"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// whepServer serves ServeWHEP of h at /whep, the player at /player.js and
// the WebRTC test page at /.
func whepServer(t *testing.T, h *Hub, o WHEPOptions) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/whep", func(w http.ResponseWriter, r *http.Request) { ServeWHEP(w, r, h, o) })
	mux.HandleFunc("GET /player.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(PlayerJS)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, whepPage)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

const whepPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>custos webrtc test</title></head>
<body><video id="v" muted autoplay playsinline></video>
<script src="/player.js"></script>
<script>
"use strict";
const video = document.getElementById("v");
const t0 = performance.now();
window.player = CustosLive.playWebRTC(video, "/whep", {});
window.custosState = function () {
	const s = player.state();
	return {
		state: s.state, error: s.error, session: s.session,
		videoWidth: video.videoWidth, videoHeight: video.videoHeight,
		currentTime: video.currentTime,
		advanced: s.firstFrameAt > 0 ? video.currentTime - s.firstFrameMediaTime : 0,
		firstFrameMs: s.firstFrameAt > 0 ? s.firstFrameAt - t0 : 0,
	};
};
</script></body></html>`

// testPeer returns a pion peer connection for a client on this host, with
// one recvonly video transceiver (or audio only).
func testPeer(t *testing.T, kind webrtc.RTPCodecType) *webrtc.PeerConnection {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	return pc
}

// makeOffer sets pc's offer, with all candidates, and returns its SDP.
func makeOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

func postOffer(t *testing.T, url, contentType string, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func deleteSession(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitSessions(t *testing.T, h *Hub, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.WHEPSessions() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d WebRTC sessions, want %d", h.WHEPSessions(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWHEPPionClient negotiates with ServeWHEP as a pion client, receives
// 60 frames of the main clip published in real time, and checks that they
// start at a key frame, follow at 3600 ticks once live, and decode.
func TestWHEPPionClient(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	defer h.Close()
	url := whepServer(t, h, WHEPOptions{})
	// Ten frames cached, then real time: the session starts with the GOP.
	fx.publish(h, 0, 10, 0)
	stop := realTime(h, func(i int) *ingest.Frame { return fx.frame(i+10, 0) })
	defer stop()

	pc := testPeer(t, webrtc.RTPCodecTypeVideo)
	const want = 60
	type result struct {
		aus   []media.AccessUnit
		stats media.DepacketizerStats
		mime  string
		err   error
	}
	res := make(chan result, 1)
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		d := rtph264.NewDepacketizer(media.ParamSets{})
		var r result
		r.mime = tr.Codec().MimeType
		for len(r.aus) < want {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				r.err = err
				break
			}
			d.Push(pkt)
			for au, ok := d.Pull(); ok; au, ok = d.Pull() {
				r.aus = append(r.aus, au)
			}
		}
		r.stats = d.Stats()
		once.Do(func() { res <- r })
		// Keep reading until the connection closes.
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	})
	start := time.Now()
	resp, answer := postOffer(t, url+"/whep", "application/sdp", makeOffer(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s: %s", resp.Status, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type %q", ct)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whep?session=") {
		t.Fatalf("Location %q", loc)
	}
	if strings.Contains(answer, "a=candidate") == false || strings.Contains(answer, "H265") {
		t.Errorf("answer without candidates or with H.265:\n%s", answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("no frames within 30 s")
	}
	t.Logf("%d access units in %v (%s); depacketizer %+v", len(r.aus), time.Since(start).Round(time.Millisecond), r.mime, r.stats)
	if r.err != nil {
		t.Fatalf("ReadRTP: %v", r.err)
	}
	if !r.aus[0].Key || r.stats.DroppedUnits != 0 || r.stats.LostPackets != 0 {
		t.Errorf("first access unit key=%v; depacketizer %+v", r.aus[0].Key, r.stats)
	}
	// The WebRTC send path is timed: Publish → packets written to the
	// track, for every frame published live (not the cached GOP).
	sl := h.Stats().SentLatency
	t.Logf("Publish → written to the WebRTC track: %d frames, p50 %v, p99 %v, max %v", sl.Count, sl.P50, sl.P99, sl.Max)
	if sl.Count < want/2 || sl.Max <= 0 {
		t.Errorf("WebRTC send latency not recorded: %+v", sl)
	}
	for i := len(r.aus) - 10; i < len(r.aus); i++ {
		if step := r.aus[i].PTS90k - r.aus[i-1].PTS90k; step != 3600 {
			t.Errorf("access unit %d: RTP time step %d, want 3600", i, step)
		}
	}
	var annexB []byte
	for i := range r.aus {
		annexB = ingest.AppendAnnexB(annexB, media.CodecH264, &r.aus[i])
	}
	path := filepath.Join(t.TempDir(), "webrtc.h264")
	if err := os.WriteFile(path, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	frames, errText := testpeer.DecodeAnnexB(t, path)
	if errText != "" {
		t.Errorf("ffmpeg: %s", errText)
	}
	if frames != len(r.aus) {
		t.Errorf("ffmpeg decoded %d frames of %d", frames, len(r.aus))
	}

	if h.WHEPSessions() != 1 {
		t.Errorf("%d sessions, want 1", h.WHEPSessions())
	}
	if code := deleteSession(t, url+loc); code != http.StatusOK {
		t.Errorf("DELETE: %d", code)
	}
	waitSessions(t, h, 0)
	if code := deleteSession(t, url+loc); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
}

// TestWHEPHubClose ends a session when its hub closes.
func TestWHEPHubClose(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	url := whepServer(t, h, WHEPOptions{})
	fx.publish(h, 0, 10, 0)
	pc := testPeer(t, webrtc.RTPCodecTypeVideo)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	resp, answer := postOffer(t, url+"/whep", "application/sdp", makeOffer(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s: %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("not connected")
	}
	h.Close()
	waitSessions(t, h, 0)
}

// TestWHEPBadRequests checks ServeWHEP's answers to requests it refuses.
func TestWHEPBadRequests(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	defer h.Close()
	fx.publish(h, 0, 10, 0)
	url := whepServer(t, h, WHEPOptions{MaxSessions: 1, ConnectTimeout: 3 * time.Second}) + "/whep"
	offer := makeOffer(t, testPeer(t, webrtc.RTPCodecTypeVideo))

	check := func(name string, resp *http.Response, body string, code int, msg string) {
		t.Helper()
		if resp.StatusCode != code || !strings.Contains(body, msg) {
			t.Errorf("%s: %s %q, want %d with %q", name, resp.Status, body, code, msg)
		}
	}
	resp, body := postOffer(t, url, "text/plain", offer)
	check("content type", resp, body, 415, "application/sdp")
	resp, body = postOffer(t, url, "application/sdp", offer+strings.Repeat("a=x\r\n", 64<<10/5))
	check("oversized", resp, body, 413, "64 KiB")
	resp, body = postOffer(t, url, "application/sdp", "hello\r\nworld")
	check("garbage", resp, body, 400, "not valid SDP")
	resp, body = postOffer(t, url, "application/sdp", makeOffer(t, testPeer(t, webrtc.RTPCodecTypeAudio)))
	check("audio only", resp, body, 400, "no H.264 video")

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	gr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	gr.Body.Close()
	if gr.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", gr.StatusCode)
	}

	// The cap: one session (never connected) takes the only slot.
	resp, body = postOffer(t, url, "application/sdp", offer)
	check("first", resp, body, 201, "v=0")
	resp, body = postOffer(t, url, "application/sdp", makeOffer(t, testPeer(t, webrtc.RTPCodecTypeVideo)))
	check("over the cap", resp, body, 503, "too many")
	// The unconnected session ends on its own after ConnectTimeout.
	waitSessions(t, h, 0)

	t.Run("h265", func(t *testing.T) {
		fx := loadFixture(t, "main.h265")
		h := NewHub(HubOptions{})
		defer h.Close()
		fx.publish(h, 0, 10, 0)
		url := whepServer(t, h, WHEPOptions{}) + "/whep"
		resp, body := postOffer(t, url, "application/sdp", makeOffer(t, testPeer(t, webrtc.RTPCodecTypeVideo)))
		check("h265", resp, body, 415, "H.264 only")
	})
	t.Run("no video", func(t *testing.T) {
		h := NewHub(HubOptions{})
		defer h.Close()
		url := whepServer(t, h, WHEPOptions{StartTimeout: 100 * time.Millisecond}) + "/whep"
		resp, body := postOffer(t, url, "application/sdp", offer)
		check("no video", resp, body, 503, "no video")
	})
}

// TestSubscribeFrames checks the frame viewer: the cached GOP first, then
// live frames, parameter sets on key frames, and the end on Close.
func TestSubscribeFrames(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	fx.publish(h, 0, 60, 0) // the GOP from frame 50 is cached
	v := h.SubscribeFrames()
	fx.publish(h, 60, 63, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 50; i < 63; i++ {
		f, err := v.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Key != (i == 50) || f.Cached != (i < 60) || f.Codec != media.CodecH264 || f.Dur90k != 3600 {
			t.Fatalf("frame %d: key %v cached %v codec %s dur %d", i, f.Key, f.Cached, f.Codec, f.Dur90k)
		}
		if f.Key && !strings.HasPrefix(string(f.AnnexB), "\x00\x00\x00\x01\x67") {
			t.Errorf("key frame does not start with its SPS: % x", f.AnnexB[:8])
		}
	}
	h.Close()
	if _, err := v.Next(ctx); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

// TestChromiumWebRTC plays ServeWHEP with CustosLive.playWebRTC in
// headless Chromium until the 1920x1080 picture has played on for 1 s.
func TestChromiumWebRTC(t *testing.T) {
	browser := testpeer.Browser(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	defer h.Close()
	url := whepServer(t, h, WHEPOptions{})
	stop := realTime(h, func(i int) *ingest.Frame { return fx.frame(i, 0) })
	defer stop()
	time.Sleep(1500 * time.Millisecond) // join mid-GOP

	type state struct {
		State        string  `json:"state"`
		Error        string  `json:"error"`
		Session      string  `json:"session"`
		VideoWidth   int     `json:"videoWidth"`
		VideoHeight  int     `json:"videoHeight"`
		CurrentTime  float64 `json:"currentTime"`
		Advanced     float64 `json:"advanced"`
		FirstFrameMs float64 `json:"firstFrameMs"`
	}
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	start := time.Now()
	st, err := testpeer.EvalPage[state](t, tab, url+"/", `(() => {
		if (typeof custosState !== "function") return null;
		const s = custosState();
		if (s.error) return s;
		return s.videoWidth === 1920 && s.advanced >= 1 ? s : null;
	})()`, 60*time.Second)
	t.Logf("after %v: %+v", time.Since(start).Round(time.Millisecond), st)
	if err != nil {
		t.Fatal(err)
	}
	if st.Error != "" {
		t.Fatalf("page error: %s", st.Error)
	}
	if st.VideoHeight != 1080 || st.State != "playing" {
		t.Errorf("state %s, video %dx%d", st.State, st.VideoWidth, st.VideoHeight)
	}
	t.Logf("playWebRTC to first frame: %.0f ms", st.FirstFrameMs)
	if h.WHEPSessions() != 1 {
		t.Errorf("%d sessions, want 1", h.WHEPSessions())
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[chromedp.Void](`player.close()`)); err != nil {
		t.Fatal(err)
	}
	waitSessions(t, h, 0)

	// An H.265 stream: the player reports the server's 415 and its reason.
	fx265 := loadFixture(t, "main.h265")
	h265 := NewHub(HubOptions{})
	defer h265.Close()
	fx265.publish(h265, 0, 10, 0)
	url265 := whepServer(t, h265, WHEPOptions{})
	st, err = testpeer.EvalPage[state](t, tab, url265+"/", `(() => {
		if (typeof custosState !== "function") return null;
		const s = custosState();
		return s.error ? s : null;
	})()`, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "error" || !strings.Contains(st.Error, "415") || !strings.Contains(st.Error, "H.264 only") {
		t.Errorf("H.265 stream: state %s, error %q", st.State, st.Error)
	}
}

// TestSlowFrameViewer checks that a frame viewer that does not read loses
// frames without holding up Publish, and resumes at a key frame.
func TestSlowFrameViewer(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{QueueBytes: 1 << 20})
	defer h.Close()
	v := h.SubscribeFrames()
	defer v.Close()
	fx.publish(h, 0, 180, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := v.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Key || f.Cached || v.Dropped() == 0 {
		t.Errorf("first frame key %v cached %v; dropped %d", f.Key, f.Cached, v.Dropped())
	}
	v.Close()
	if _, err := v.Next(ctx); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
	h.mu.Lock()
	n := len(h.frameViewers)
	h.mu.Unlock()
	if n != 0 {
		t.Errorf("%d frame viewers after Close", n)
	}
}

// TestWHEPBFrames sends a stream with B-frames over WebRTC: the RTP
// timestamps of live frames step by the camera's presentation times
// (out of decode order), not by decode durations, so the browser shows
// the frames in order and on time.
func TestWHEPBFrames(t *testing.T) {
	checkGoroutines(t)
	frames := encodeBFrames(t)
	h := NewHub(HubOptions{})
	defer h.Close()
	url := whepServer(t, h, WHEPOptions{})
	stop := realTime(h, func(i int) *ingest.Frame { return frames[min(i, len(frames)-1)] })
	defer stop()

	pc := testPeer(t, webrtc.RTPCodecTypeVideo)
	const want = 60
	res := make(chan []media.AccessUnit, 1)
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		d := rtph264.NewDepacketizer(media.ParamSets{})
		var aus []media.AccessUnit
		for len(aus) < want {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				break
			}
			d.Push(pkt)
			for au, ok := d.Pull(); ok; au, ok = d.Pull() {
				aus = append(aus, au)
			}
		}
		once.Do(func() { res <- aus })
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	})
	resp, answer := postOffer(t, url+"/whep", "application/sdp", makeOffer(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s: %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	var aus []media.AccessUnit
	select {
	case aus = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("no frames within 30 s")
	}
	if len(aus) < want {
		t.Fatalf("got %d access units", len(aus))
	}
	// Which published frame is the first one received (the cached GOP's
	// key frame): match its last NAL unit.
	last := func(n [][]byte) []byte { return n[len(n)-1] }
	i0 := -1
	for i, f := range frames {
		if bytes.Equal(last(f.NALUs), last(aus[0].NALUs)) {
			i0 = i
			break
		}
	}
	if i0 < 0 || !aus[0].Key {
		t.Fatalf("first access unit (key %v) matches no published frame", aus[0].Key)
	}
	bsteps := 0
	for k := len(aus) - 15; k < len(aus); k++ {
		got := aus[k].PTS90k - aus[k-1].PTS90k
		want := frames[i0+k].PTS90k - frames[i0+k-1].PTS90k
		if got != want {
			t.Errorf("access unit %d: RTP step %d, camera presentation step %d", k, got, want)
		}
		if want != 3600 {
			bsteps++
		}
	}
	if bsteps == 0 {
		t.Fatal("the stream has no B-frames in the checked span: the test proves nothing")
	}
}
