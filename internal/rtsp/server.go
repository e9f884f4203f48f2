package rtsp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by a Server's Mount function for an unknown path;
// the server answers 404.
var ErrNotFound = errors.New("rtsp: no stream at this path")

// Stream is what a Server plays to one client session. The server asks for a
// new Stream on every DESCRIBE and SETUP, so implementations may share
// prepared packets between sessions but must keep per-session state (sequence
// numbers, SSRC, pacing) in Play.
type Stream interface {
	// SDP returns the session description. Media sections carry
	// "a=control:trackID=N" with N the track index used in Play.
	SDP() []byte
	// Play sends packets through w until ctx is done or w fails. It blocks
	// and returns the error that stopped it (nil or ctx.Err() on a normal
	// end). tracks lists the track indexes the client set up.
	Play(ctx context.Context, tracks []int, w PacketWriter) error
}

// PacketWriter sends RTP packets to one client session. It is used by one
// goroutine (the Stream's Play) and is not safe for concurrent use.
type PacketWriter interface {
	// WriteRTP queues one complete RTP packet (header included) of track.
	// Over TCP the bytes are copied into a buffer sent by Flush; over UDP
	// the datagram is sent at once. The packet may be reused after return.
	WriteRTP(track int, pkt []byte) error
	// Flush sends what WriteRTP queued (TCP) and emits RTCP sender reports
	// when due. Call it after each access unit.
	Flush() error
}

// Server is an RTSP server for live streams, used by the camera simulator
// and (later) re-streaming. It supports OPTIONS, DESCRIBE, SETUP (TCP
// interleaved and UDP unicast), PLAY, TEARDOWN and GET_PARAMETER, with
// optional Digest authentication. Its methods are safe for concurrent use.
type Server struct {
	// Mount returns the stream at path (URL path without the leading
	// slash, for example "cam1/sub"). ErrNotFound (or any error) → 404.
	Mount func(path string) (Stream, error)
	// Auth, when set, requires Digest authentication on every method but
	// OPTIONS.
	Auth *DigestServer
	// Logger receives one line per session start/end; nil discards.
	Logger *slog.Logger
	// SessionTimeout is announced in the Session header (default 60 s);
	// an idle control connection is closed after twice that.
	SessionTimeout time.Duration
	// ServerName is sent in the Server header.
	ServerName string
	// OnRequest, when set, sees every request before it is handled (for
	// metrics and tests). It must not block.
	OnRequest func(*Request)
	// RefuseTCP answers SETUP for TCP interleaved with 461 Unsupported
	// Transport, as some cameras do: only UDP is served.
	RefuseTCP bool

	mu    sync.Mutex
	lns   []net.Listener
	conns map[*serverConn]struct{}
	udp   *udpPair
	// udpPeers maps a UDP client's RTCP address to its connection, so a
	// receiver report keeps the right session alive.
	udpPeers map[netip.AddrPort]*serverConn
	closed   bool
	wg       sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) timeout() time.Duration {
	if s.SessionTimeout <= 0 {
		return 60 * time.Second
	}
	return s.SessionTimeout
}

// Serve accepts connections on ln until Close. It blocks; it returns nil
// after Close and the accept error otherwise. UDP transport is offered on a
// port pair on the listener's IP address, opened by the first Serve.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("rtsp: server closed")
	}
	s.lns = append(s.lns, ln)
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	if s.udp == nil {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
			p, err := listenUDPPair(tcp.IP)
			if err != nil {
				s.logger().Warn("rtsp server: UDP transport unavailable", "err", err)
			} else {
				s.udp = p
				s.wg.Add(1)
				go func() { defer s.wg.Done(); s.readRTCP(p) }()
			}
		}
	}
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return fmt.Errorf("rtsp server accept: %w", err)
		}
		c := &serverConn{srv: s, nc: nc, remote: nc.RemoteAddr().String()}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listeners, ends every session and waits for all the
// server's goroutines to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	if s.udp != nil {
		s.udp.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// readRTCP drains receiver reports arriving on the server's RTCP port; they
// only prove a UDP client is alive, so each one extends its connection's
// idle deadline.
func (s *Server) readRTCP(p *udpPair) {
	buf := make([]byte, 2048)
	for {
		_, from, err := p.rtcp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		c := s.udpPeers[udpKey(from)]
		s.mu.Unlock()
		if c != nil {
			c.nc.SetReadDeadline(time.Now().Add(2 * s.timeout()))
		}
	}
}

// udpKey normalises a UDP address for map lookups (IPv4 in either form).
func udpKey(a *net.UDPAddr) netip.AddrPort {
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// addUDPPeer records which connection a client's RTCP address belongs to.
func (s *Server) addUDPPeer(a *net.UDPAddr, c *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpPeers == nil {
		s.udpPeers = make(map[netip.AddrPort]*serverConn)
	}
	s.udpPeers[udpKey(a)] = c
}

// dropUDPPeers forgets the RTCP addresses of a session's tracks.
func (s *Server) dropUDPPeers(tracks []sessionTrack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tracks {
		if t.udpRTCP != nil {
			delete(s.udpPeers, udpKey(t.udpRTCP))
		}
	}
}

// udpPair is the server's even/odd UDP port pair for RTP and RTCP.
type udpPair struct {
	rtp, rtcp *net.UDPConn
}

func (p *udpPair) close() {
	p.rtp.Close()
	p.rtcp.Close()
}

func (p *udpPair) ports() [2]int {
	return [2]int{p.rtp.LocalAddr().(*net.UDPAddr).Port, p.rtcp.LocalAddr().(*net.UDPAddr).Port}
}

// listenUDPPair opens the server's RTP/RTCP port pair.
func listenUDPPair(ip net.IP) (*udpPair, error) {
	a, b, err := listenPortPair(net.ListenUDP, ip)
	if err != nil {
		return nil, err
	}
	a.SetWriteBuffer(4 << 20)
	return &udpPair{rtp: a, rtcp: b}, nil
}

// listenPortPair opens two UDP sockets on consecutive ports, the first
// even, as RFC 3550 asks for RTP and RTCP. Client and server share it.
func listenPortPair(listen func(string, *net.UDPAddr) (*net.UDPConn, error), ip net.IP) (rtp, rtcp *net.UDPConn, err error) {
	var lastErr error
	for range 50 {
		a, err := listen("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp on %s: %w", ip, err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65534 {
			a.Close()
			continue
		}
		b, err := listen("udp", &net.UDPAddr{IP: ip, Port: port + 1})
		if err != nil {
			lastErr = err
			a.Close()
			continue
		}
		return a, b, nil
	}
	return nil, nil, fmt.Errorf("no free even/odd UDP port pair on %s: %v", ip, lastErr)
}

// serverConn is one client's control connection and its (single) session.
type serverConn struct {
	srv    *Server
	nc     net.Conn
	remote string

	wmu  sync.Mutex // serialises writes to nc
	wbuf []byte

	mu      sync.Mutex
	session *serverSession
}

type serverSession struct {
	id      string
	path    string
	stream  Stream
	tracks  []sessionTrack // indexed by setup order
	tcp     bool
	cancel  context.CancelFunc
	done    chan struct{}
	playing bool
	// startPending is set by PLAY until the reply is written.
	startPending bool
}

type sessionTrack struct {
	index   int // the Stream's track index
	channel int // interleaved RTP channel (TCP)
	udpRTP  *net.UDPAddr
	udpRTCP *net.UDPAddr
	ssrc    uint32
}

func (c *serverConn) serve() {
	log := c.srv.logger().With("remote", c.remote)
	defer func() {
		c.stopPlay()
		c.nc.Close()
	}()
	rd := NewReader(c.nc, 64<<10)
	for {
		c.nc.SetReadDeadline(time.Now().Add(2 * c.srv.timeout()))
		it, err := rd.Read()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Debug("rtsp server: connection ended", "err", err)
			}
			return
		}
		if it.Request == nil {
			continue // interleaved RTCP from the client, or a stray response
		}
		if c.srv.OnRequest != nil {
			c.srv.OnRequest(it.Request)
		}
		resp := c.handle(it.Request)
		if cseq := it.Request.Header.Get("CSeq"); cseq != "" {
			resp.Header.Set("CSeq", cseq)
		}
		if c.srv.ServerName != "" {
			resp.Header.Set("Server", c.srv.ServerName)
		}
		if err := c.writeResponse(resp); err != nil {
			return
		}
		switch it.Request.Method {
		case "TEARDOWN":
			return
		case "PLAY":
			c.startPlay()
		}
	}
}

func (c *serverConn) writeResponse(resp *Response) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(resp.AppendTo(nil))
	return err
}

func newResponse(code int, reason string) *Response {
	return &Response{StatusCode: code, Reason: reason}
}

func (c *serverConn) handle(req *Request) *Response {
	if req.Method != "OPTIONS" && c.srv.Auth != nil {
		ok, stale := c.srv.Auth.Check(req.Method, req.URL, req.Header.Get("Authorization"))
		if !ok {
			r := newResponse(401, "Unauthorized")
			for _, v := range c.srv.Auth.Challenges(stale) {
				r.Header.Add("WWW-Authenticate", v)
			}
			return r
		}
	}
	switch req.Method {
	case "OPTIONS":
		r := newResponse(200, "OK")
		r.Header.Set("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
		return r
	case "DESCRIBE":
		return c.describe(req)
	case "SETUP":
		return c.setup(req)
	case "PLAY":
		return c.play(req)
	case "TEARDOWN":
		c.stopPlay()
		return newResponse(200, "OK")
	case "GET_PARAMETER", "SET_PARAMETER":
		return newResponse(200, "OK")
	default:
		return newResponse(405, "Method Not Allowed")
	}
}

// streamPath splits a request URL into the mount path and, for SETUP
// URLs, the track index from a trailing "trackID=N" element (-1 if none).
func streamPath(raw string) (path string, track int, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", -1, fmt.Errorf("bad request URL: %w", err)
	}
	p := strings.Trim(u.Path, "/")
	track = -1
	if i := strings.LastIndex(p, "/"); i >= 0 || strings.HasPrefix(p, "trackID=") {
		last := p[i+1:]
		if n, ok := strings.CutPrefix(last, "trackID="); ok {
			if track, err = strconv.Atoi(n); err != nil || track < 0 {
				return "", -1, fmt.Errorf("bad track id %q", n)
			}
			p = strings.TrimRight(p[:max(i, 0)], "/")
		}
	}
	return p, track, nil
}

func (c *serverConn) describe(req *Request) *Response {
	path, _, err := streamPath(req.URL)
	if err != nil {
		return newResponse(400, "Bad Request")
	}
	st, err := c.srv.Mount(path)
	if err != nil {
		return newResponse(404, "Not Found")
	}
	r := newResponse(200, "OK")
	base := strings.TrimRight(req.URL, "/") + "/"
	r.Header.Set("Content-Base", base)
	r.Header.Set("Content-Type", "application/sdp")
	r.Body = st.SDP()
	return r
}

func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (c *serverConn) setup(req *Request) *Response {
	path, track, err := streamPath(req.URL)
	if err != nil || track < 0 {
		return newResponse(400, "Bad Request")
	}
	transports, err := ParseTransports(req.Header.Get("Transport"))
	if err != nil || len(transports) == 0 {
		return newResponse(461, "Unsupported Transport")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sess := c.session
	if sess != nil {
		if id := sessionID(req); id != "" && id != sess.id {
			return newResponse(454, "Session Not Found")
		}
		if sess.path != path {
			return newResponse(459, "Aggregate Operation Not Allowed")
		}
		if sess.playing {
			return newResponse(455, "Method Not Valid In This State")
		}
	} else {
		st, err := c.srv.Mount(path)
		if err != nil {
			return newResponse(404, "Not Found")
		}
		sess = &serverSession{id: newSessionID(), path: path, stream: st}
	}
	for _, t := range sess.tracks {
		if t.index == track {
			return newResponse(455, "Method Not Valid In This State")
		}
	}
	var ssrcb [4]byte
	rand.Read(ssrcb[:])
	st := sessionTrack{index: track, ssrc: uint32(ssrcb[0])<<24 | uint32(ssrcb[1])<<16 | uint32(ssrcb[2])<<8 | uint32(ssrcb[3])}
	var reply Transport
	chosen := false
	for _, t := range transports {
		isTCP := strings.HasSuffix(strings.ToUpper(t.Protocol), "/TCP")
		if len(sess.tracks) > 0 && isTCP != sess.tcp {
			continue // one transport per session
		}
		if isTCP && c.srv.RefuseTCP {
			continue
		}
		if isTCP {
			ch := 2 * len(sess.tracks)
			if t.HasInterleaved {
				ch = t.Interleaved[0]
			}
			if ch < 0 || ch > 254 {
				continue
			}
			st.channel = ch
			sess.tcp = true
			reply = Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{ch, ch + 1}, HasSSRC: true, SSRC: st.ssrc}
			chosen = true
			break
		}
		if !t.HasClientPort || c.srv.udp == nil || t.Multicast {
			continue
		}
		host, _, err := net.SplitHostPort(c.remote)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		st.udpRTP = &net.UDPAddr{IP: ip, Port: t.ClientPort[0]}
		st.udpRTCP = &net.UDPAddr{IP: ip, Port: t.ClientPort[1]}
		sess.tcp = false
		reply = Transport{Protocol: "RTP/AVP", Unicast: true, HasClientPort: true, ClientPort: t.ClientPort,
			HasServerPort: true, ServerPort: c.srv.udp.ports(), HasSSRC: true, SSRC: st.ssrc}
		chosen = true
		break
	}
	if !chosen {
		return newResponse(461, "Unsupported Transport")
	}
	sess.tracks = append(sess.tracks, st)
	c.session = sess
	if st.udpRTCP != nil {
		c.srv.addUDPPeer(st.udpRTCP, c)
	}
	r := newResponse(200, "OK")
	r.Header.Set("Transport", reply.String())
	r.Header.Set("Session", fmt.Sprintf("%s;timeout=%d", sess.id, int(c.srv.timeout()/time.Second)))
	return r
}

func sessionID(req *Request) string {
	id, _ := ParseSession(req.Header.Get("Session"))
	return id
}

func (c *serverConn) play(req *Request) *Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess := c.session
	if sess == nil || len(sess.tracks) == 0 {
		return newResponse(455, "Method Not Valid In This State")
	}
	if id := sessionID(req); id != sess.id {
		return newResponse(454, "Session Not Found")
	}
	r := newResponse(200, "OK")
	r.Header.Set("Session", fmt.Sprintf("%s;timeout=%d", sess.id, int(c.srv.timeout()/time.Second)))
	r.Header.Set("Range", "npt=now-")
	if sess.playing {
		return r
	}
	sess.playing = true
	sess.startPending = true
	return r
}

// startPlay runs the session's Stream once the PLAY response is written,
// so the reply precedes the first packet on the wire.
func (c *serverConn) startPlay() {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess := c.session
	if sess == nil || !sess.startPending {
		return
	}
	sess.startPending = false
	ctx, cancel := context.WithCancel(context.Background())
	sess.cancel = cancel
	sess.done = make(chan struct{})
	w := newSessionWriter(c, sess)
	tracks := make([]int, len(sess.tracks))
	for i, t := range sess.tracks {
		tracks[i] = t.index
	}
	log := c.srv.logger().With("remote", c.remote, "path", sess.path, "session", sess.id)
	log.Debug("rtsp server: play", "tcp", sess.tcp, "tracks", tracks)
	go func() {
		defer close(sess.done)
		err := sess.stream.Play(ctx, tracks, w)
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Debug("rtsp server: play ended", "err", err)
			c.nc.Close()
		}
	}()
}

// stopPlay ends the session's Play goroutine and waits for it.
func (c *serverConn) stopPlay() {
	c.mu.Lock()
	sess := c.session
	c.session = nil
	c.mu.Unlock()
	if sess != nil {
		c.srv.dropUDPPeers(sess.tracks)
	}
	if sess != nil && sess.cancel != nil {
		sess.cancel()
		<-sess.done
	}
}
