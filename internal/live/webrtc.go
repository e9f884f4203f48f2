package live

// WebRTC live view, WHEP style (draft-ietf-wish-whep): the browser POSTs
// an SDP offer with one recvonly video transceiver, gets the answer (with
// all of the server's ICE candidates: no trickle) and a session URL that a
// DELETE ends. Frames go out as they are published, without transcoding,
// as H.264 over RTP (packetization-mode 1).
//
// It is meant for a LAN: no STUN or TURN server is configured, so only
// host candidates (UDP, every interface including loopback) are offered,
// and browsers reach the NVR only where they can route to one of its
// addresses. ICE sends only to the viewer's own address (and networks
// the owner allows: WHEPOptions.AllowRemote, candidates.go), never to
// whatever host:port an offer names. H.265 streams are refused (415): browsers' WebRTC H.265
// support is not dependable; MSE (ServeMSE) plays them where possible.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/media"
	rtph264 "github.com/custos-nvr/custos/internal/rtp/h264"
)

// Defaults and bounds of ServeWHEP.
const (
	// DefaultWHEPSessions bounds the WebRTC sessions of one hub.
	DefaultWHEPSessions = 64
	// maxOfferBytes bounds an SDP offer.
	maxOfferBytes = 64 << 10
	// catchUpBitsPerSecond paces the GOP cache sent to a new viewer:
	// 1 MB (a 2 s GOP at 4 Mbit/s) in 0.16 s.
	catchUpBitsPerSecond = 50_000_000
	// catchUpDur is the duration given to frames of the GOP cache, which
	// are late already: the browser decodes them at once and shows the
	// live picture.
	catchUpDur = time.Millisecond
)

// WHEPOptions configure ServeWHEP. The zero value is usable.
type WHEPOptions struct {
	// MaxSessions bounds the hub's concurrent sessions, those being
	// negotiated included (default DefaultWHEPSessions); more get 503.
	MaxSessions int
	// StartTimeout bounds the wait for the stream's first key frame when
	// the hub has none cached (default 5 s; then 503).
	StartTimeout time.Duration
	// GatherTimeout bounds ICE candidate gathering (default 5 s).
	GatherTimeout time.Duration
	// ConnectTimeout ends a session whose peer has not connected (ICE and
	// DTLS) in time (default 15 s).
	ConnectTimeout time.Duration
	// Logger receives session events; nil discards them.
	Logger *slog.Logger
	// OnStart, when set, is called with the new session's ID once the
	// offer is accepted and before the answer is sent; an error refuses
	// the session with 503 and that message (the API audits here).
	OnStart func(id string) error
	// OnEnd, when set, is called once a session started by OnStart has
	// ended and released everything, with the reason it ended.
	OnEnd func(id string, reason error)
	// AllowRemote decides which remote ICE candidates (offered or
	// peer-reflexive) the session may send STUN and media to, by address
	// (candidates.go); nil allows the request's own address only
	// (ViewerAddrs of r.RemoteAddr). It must be safe for concurrent use.
	AllowRemote func(netip.Addr) bool
}

func (o *WHEPOptions) defaults() {
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultWHEPSessions
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Second
	}
	if o.GatherTimeout <= 0 {
		o.GatherTimeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// whepSessions is a hub's registry of WebRTC sessions.
type whepSessions struct {
	mu       sync.Mutex
	sessions map[string]*whepSession
	reserved int // slots taken by offers being negotiated
}

// whepSession is one peer connection fed by a frame viewer.
type whepSession struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{} // closed once everything is released
}

// WHEPSessions returns the number of the hub's WebRTC sessions, those
// being negotiated included.
func (h *Hub) WHEPSessions() int {
	h.whep.mu.Lock()
	defer h.whep.mu.Unlock()
	return len(h.whep.sessions) + h.whep.reserved
}

// ServeWHEP serves WebRTC live view of h. POST with an SDP offer
// (Content-Type application/sdp, at most 64 KiB) answers 201 Created with
// the SDP answer and, in Location, the session's URL (the request's path
// with a session query parameter), which DELETE ends (200; 404 when
// unknown). Errors: 415 for another content type or an H.265 stream, 413
// for a larger offer, 400 for an offer that does not negotiate H.264
// video, 503 with too many sessions, no video yet, or a closed hub.
// Sessions end on DELETE, when the peer connection fails or closes, when
// the peer does not connect in time, and when the hub closes. The caller
// authenticates, authorises and audits the request before.
func ServeWHEP(w http.ResponseWriter, r *http.Request, h *Hub, o WHEPOptions) {
	o.defaults()
	switch r.Method {
	case http.MethodPost:
		servePostWHEP(w, r, h, &o)
	case http.MethodDelete:
		id := r.URL.Query().Get("session")
		h.whep.mu.Lock()
		s := h.whep.sessions[id]
		h.whep.mu.Unlock()
		if s == nil {
			http.Error(w, "no such WebRTC session", http.StatusNotFound)
			return
		}
		s.cancel()
		select {
		case <-s.done:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func servePostWHEP(w http.ResponseWriter, r *http.Request, h *Hub, o *WHEPOptions) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/sdp" {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "the offer is larger than 64 KiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}
	if _, err := offer.Unmarshal(); err != nil {
		http.Error(w, "the offer is not valid SDP: "+err.Error(), http.StatusBadRequest)
		return
	}

	// Take a slot for the whole negotiation.
	h.whep.mu.Lock()
	if len(h.whep.sessions)+h.whep.reserved >= o.MaxSessions {
		h.whep.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many WebRTC sessions on this stream", http.StatusServiceUnavailable)
		return
	}
	h.whep.reserved++
	h.whep.mu.Unlock()
	reserved := true
	release := func() {
		if reserved {
			reserved = false
			h.whep.mu.Lock()
			h.whep.reserved--
			h.whep.mu.Unlock()
		}
	}
	defer release()

	fv := h.SubscribeFrames()
	ok := false
	defer func() {
		if !ok {
			fv.Close()
		}
	}()
	// The first frame (a key frame) tells the codec and the SPS; it is
	// held and sent first.
	sctx, cancel := context.WithTimeout(r.Context(), o.StartTimeout)
	first, err := fv.Next(sctx)
	cancel()
	switch {
	case errors.Is(err, ErrClosed):
		http.Error(w, "the stream is closed", http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "no video from the camera yet", http.StatusServiceUnavailable)
		return
	case first.Codec != media.CodecH264:
		http.Error(w, fmt.Sprintf("the stream is %s; WebRTC live view supports H.264 only (browsers' WebRTC %s support is not dependable): use the MSE player", first.Codec, first.Codec), http.StatusUnsupportedMediaType)
		return
	}

	allow := o.AllowRemote
	if allow == nil {
		allow = ViewerAddrs(requestAddr(r), nil)
	}
	api, err := whepAPI(first.Params.SPS, allow)
	if err != nil {
		http.Error(w, "webrtc: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, "webrtc: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() {
		if !ok {
			pc.Close()
		}
	}()
	answer, track, sender, err := negotiate(pc, offer, first.Params.SPS)
	if err != nil {
		http.Error(w, "cannot answer the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		http.Error(w, "cannot answer the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case <-gathered:
	case <-r.Context().Done():
		return
	case <-time.After(o.GatherTimeout):
		http.Error(w, "ICE gathering timed out", http.StatusServiceUnavailable)
		return
	}

	id := newSessionID()
	if o.OnStart != nil {
		if err := o.OnStart(id); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	ctx, cancelSession := context.WithCancel(context.Background())
	s := &whepSession{id: id, cancel: cancelSession, done: make(chan struct{})}
	connected := make(chan struct{})
	var connOnce sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			cancelSession()
		}
	})
	h.whep.mu.Lock()
	if h.whep.sessions == nil {
		h.whep.sessions = make(map[string]*whepSession)
	}
	h.whep.sessions[id] = s
	h.whep.mu.Unlock()
	release()
	ok = true

	log := o.Logger.With("session", id)
	var wg sync.WaitGroup
	wg.Go(func() { drainRTCP(sender) })
	go func() {
		err := runSession(ctx, fv, track, first, connected, o.ConnectTimeout)
		log.Info("live: WebRTC session ended", "reason", err, "dropped", fv.Dropped())
		fv.Close()
		cancelSession()
		pc.Close()
		wg.Wait()
		h.whep.mu.Lock()
		delete(h.whep.sessions, id)
		h.whep.mu.Unlock()
		close(s.done)
		if o.OnEnd != nil {
			o.OnEnd(id, err)
		}
	}()
	log.Info("live: WebRTC session started", "remote", r.RemoteAddr)

	w.Header().Set("Content-Type", "application/sdp")
	loc := r.URL.Query()
	loc.Set("session", id)
	w.Header().Set("Location", r.URL.Path+"?"+loc.Encode())
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, pc.LocalDescription().SDP)
}

// rtpWriter packetizes frames for a session's track itself (rather than
// pion's sample track, whose timestamps follow decode order), so that
// each frame's RTP timestamp is its presentation time: B-frames then play
// in the right order and at the right pace. Not safe for concurrent use.
type rtpWriter struct {
	track *webrtc.TrackLocalStaticRTP
	pk    rtph264.Packetizer
	seq   uint16
	base  uint32 // random start of the RTP clock (RFC 3550)
	// t90k is the session's decode timeline: the durations sent so far
	// (the cached GOP compressed, live frames at their own pace).
	t90k int64
}

// webrtcMTU bounds RTP payloads: WebRTC's usual 1200 bytes leave room for
// SRTP and TURN overheads.
const webrtcMTU = 1200

// write sends one frame as RTP packets stamped with its presentation time
// on the session's timeline, then advances the timeline by dur90k.
func (w *rtpWriter) write(f Frame, dur90k int64) error {
	ts := w.base + uint32(w.t90k+(f.PTS90k-f.DTS90k))
	var werr error
	w.pk.Packetize(h264.SplitAnnexB(f.AnnexB), webrtcMTU, func(payload []byte, marker bool) {
		if werr != nil {
			return
		}
		w.seq++
		werr = w.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker,
			SequenceNumber: w.seq, Timestamp: ts}, Payload: payload})
	})
	w.t90k += dur90k
	return werr
}

// sleepCtx sleeps for d or until ctx ends (then its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runSession waits for the peer to connect and then writes frames to the
// track until ctx ends, the hub closes, or the codec changes.
func runSession(ctx context.Context, fv *FrameViewer, track *webrtc.TrackLocalStaticRTP, f Frame, connected <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	select {
	case <-connected:
		t.Stop()
	case <-ctx.Done():
		t.Stop()
		return errors.New("closed before connecting")
	case <-t.C:
		return errors.New("peer did not connect in time")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	w := &rtpWriter{track: track, base: binary.BigEndian.Uint32(rnd[:]), seq: binary.BigEndian.Uint16(rnd[:2])}
	for {
		dur90k := f.Dur90k
		if f.Cached {
			dur90k = int64(catchUpDur * 90000 / time.Second)
		}
		if err := w.write(f, dur90k); err != nil {
			return err
		}
		if f.Cached {
			// The cached GOP goes out at once for an instant picture, but
			// paced: a burst of a whole GOP overflows receive buffers
			// (packets lost until the next key frame).
			if err := sleepCtx(ctx, time.Duration(len(f.AnnexB))*8*time.Second/catchUpBitsPerSecond); err != nil {
				return err
			}
		} else if !f.Published.IsZero() {
			fv.hub.noteSent(f.Published)
		}
		var err error
		if f, err = fv.Next(ctx); err != nil {
			return err
		}
		if f.Codec != media.CodecH264 {
			return fmt.Errorf("the stream changed to %s", f.Codec)
		}
	}
}

// drainRTCP reads the peer's RTCP (so the interceptors see NACKs and
// reports) until the sender stops.
func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// negotiate applies the offer, adds the video track to its transceiver and
// creates the answer.
func negotiate(pc *webrtc.PeerConnection, offer webrtc.SessionDescription, sps []byte) (webrtc.SessionDescription, *webrtc.TrackLocalStaticRTP, *webrtc.RTPSender, error) {
	var none webrtc.SessionDescription
	if err := pc.SetRemoteDescription(offer); err != nil {
		return none, nil, nil, err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(h264Capability(sps), "video", "custos")
	if err != nil {
		return none, nil, nil, err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return none, nil, nil, err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return none, nil, nil, err
	}
	if !sendsVideo(pc, sender) {
		return none, nil, nil, errors.New("no H.264 video the browser can receive")
	}
	return answer, track, sender, nil
}

// sendsVideo reports whether the sender was matched to an offered
// transceiver with a negotiated H.264 codec.
func sendsVideo(pc *webrtc.PeerConnection, s *webrtc.RTPSender) bool {
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == s && tr.Mid() != "" && len(s.GetParameters().Codecs) > 0 {
			return true
		}
	}
	return false
}

// profileLevelID returns the stream's profile-level-id (profile_idc,
// constraint flags, level_idc from its SPS), or 42e01f.
func profileLevelID(sps []byte) string {
	if len(sps) < 4 {
		return "42e01f"
	}
	return hex.EncodeToString(sps[1:4])
}

func h264Capability(sps []byte) webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID(sps),
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: "goog-remb"},
		},
	}
}

// whepAPI returns a pion API with H.264 only (the stream's profile first,
// then common ones a browser may offer instead: its decoder handles the
// stream in practice) and the LAN-only network settings.
func whepAPI(sps []byte, allowRemote func(netip.Addr) bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	seen := map[string]bool{}
	pt := webrtc.PayloadType(96)
	for _, plid := range []string{profileLevelID(sps), "42e01f", "42001f", "640c1f", "64001f", "4d001f"} {
		key := plid[:4]
		if seen[key] {
			continue
		}
		seen[key] = true
		c := h264Capability(nil)
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: pt}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		pt++
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	// Every remote candidate, offered or peer-reflexive, passes here
	// before the agent sends to it (candidates.go).
	se.SetRemoteIPFilter(func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && allowRemote(a)
	})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
