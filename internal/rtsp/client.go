package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// TransportMode selects how RTP travels from the camera.
type TransportMode string

const (
	// TCP interleaves RTP in the RTSP connection (the default: it passes
	// firewalls and never reorders).
	TCP TransportMode = "tcp"
	// UDP receives RTP on a client port pair per track, and falls back to
	// TCP when nothing arrives within ClientConfig.UDPFallback.
	UDP TransportMode = "udp"
)

// Errors a caller may test with errors.Is. Messages from the client wrap
// them with the method and the (redacted) URL.
var (
	ErrUnauthorized = errors.New("401 unauthorized (wrong or missing credentials)")
	ErrStall        = errors.New("no media received (stall)")
	ErrNoVideo      = errors.New("no video track")
	// ErrBasicRefused: the camera offers only Basic authentication over
	// plain rtsp:// (the password would cross the network in clear) and
	// ClientConfig.AllowBasic is not set. No credential was sent.
	ErrBasicRefused = errors.New("camera offers only Basic auth over unencrypted RTSP")
	// ErrCredentialsWithheld: a redirect led to another scheme, host or
	// port than the configured URL's, so the stored credentials were not
	// sent there, and that server asked for credentials.
	ErrCredentialsWithheld = errors.New("credentials withheld because the redirect changed host")
)

// StatusError is an RTSP reply other than 2xx.
type StatusError struct {
	Method string
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: server answered %d %s", e.Method, e.Code, e.Reason)
}

// Unwrap maps 401 to ErrUnauthorized.
func (e *StatusError) Unwrap() error {
	if e.Code == 401 {
		return ErrUnauthorized
	}
	return nil
}

// ClientConfig configures one RTSP client session.
type ClientConfig struct {
	// URL is rtsp://[user:pass@]host[:port]/path. Credentials in it are
	// used for authentication and never logged.
	URL string
	// Username and Password, when set, override the URL's credentials.
	Username, Password string
	// Transport is TCP (default) or UDP.
	Transport TransportMode
	// Dial opens the control connection (default net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ListenUDP opens a local UDP socket for UDP transport (default
	// net.ListenUDP).
	ListenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
	// Logger receives protocol events, with credentials redacted. nil
	// discards.
	Logger *slog.Logger
	// UserAgent is sent with every request.
	UserAgent string
	// RequestTimeout bounds each request/response exchange (default 10 s).
	RequestTimeout time.Duration
	// StallTimeout ends a playing session with ErrStall when no RTP packet
	// arrives for this long (default 10 s).
	StallTimeout time.Duration
	// UDPFallback is how long a UDP session may go without its first packet
	// before the client switches to TCP (default 3 s).
	UDPFallback time.Duration
	// ForceTCP makes Transport TCP a requirement: a camera answering SETUP
	// with 461 Unsupported Transport fails the session. Without it such a
	// camera is set up again over UDP (TCP stays the first choice).
	ForceTCP bool
	// AllowBasic lets the client answer a Basic-only challenge over plain
	// rtsp://, which sends the password in clear. Without it such a camera
	// fails with ErrBasicRefused. Digest is always allowed.
	AllowBasic bool
}

func (cfg *ClientConfig) defaults() {
	if cfg.Transport == "" {
		cfg.Transport = TCP
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.ListenUDP == nil {
		cfg.ListenUDP = net.ListenUDP
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "Custos"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 10 * time.Second
	}
	if cfg.UDPFallback <= 0 {
		cfg.UDPFallback = 3 * time.Second
	}
}

// Handler receives what a playing session delivers. Calls are serialised
// (never concurrent with each other) and come from the client's reader
// goroutine(s); they must not block for long, or the camera connection
// backs up. pkt and its payload are valid only during the call.
type Handler interface {
	HandleRTP(track int, pkt *rtp.Packet)
	HandleRTCP(track int, pkts []rtcp.Packet)
}

// TransportAware is implemented by a Handler that treats packets by
// transport (reordering UDP): SetTransport is called before the first
// packet of each set-up session, with the transport in use (it changes on
// a fallback).
type TransportAware interface {
	SetTransport(mode TransportMode)
}

// Client is one RTSP session with a camera: Dial describes the stream,
// Play sets up tracks and starts delivery, Wait reports how it ended and
// Close tears it down. Methods are safe for concurrent use, but Play may be
// called once.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	url    *url.URL // request URL without userinfo
	user   string
	pass   string
	hasCrd bool
	// withheld names where the stored credentials were not sent (a
	// redirect to another origin): "" when they were.
	withheld string

	conn   *ctrlConn
	desc   Description
	server string
	public string // OPTIONS Public header

	mu        sync.Mutex
	transport TransportMode
	play      *playState
	lastPlay  *playState // the session Wait reports on after Close
	closed    bool
}

// Dial connects to the camera and runs OPTIONS and DESCRIBE, following up
// to five redirects. It blocks until the description is known, ctx ends,
// or the request times out. Errors name the failing step and wrap
// ErrUnauthorized or *StatusError where the server refused.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	cfg.defaults()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse camera URL %s: %w", RedactURL(cfg.URL), redactErr(err, cfg.URL))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, fmt.Errorf("camera URL %s: scheme must be rtsp", RedactURL(cfg.URL))
	}
	if u.Scheme == "rtsps" {
		return nil, fmt.Errorf("camera URL %s: rtsps (TLS) is not supported yet", RedactURL(cfg.URL))
	}
	c := &Client{cfg: cfg, transport: cfg.Transport}
	user, pass := cfg.Username, cfg.Password
	if u.User != nil && user == "" {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	c.user, c.pass, c.hasCrd = user, pass, user != ""
	u.User = nil
	c.url = u
	origin := originOf(u)
	c.log = cfg.Logger.With("camera", RedactURL(u.String()))
	for hop := 0; ; hop++ {
		err := c.connectAndDescribe(ctx)
		var redir *redirectError
		if errors.As(err, &redir) && hop < 5 {
			c.log.Info("rtsp: redirected", "to", RedactURL(redir.location))
			nu, perr := c.url.Parse(redir.location)
			if perr != nil {
				c.conn.close()
				return nil, fmt.Errorf("redirect to %s: %w", RedactURL(redir.location), perr)
			}
			// The stored credentials go only to the origin they were
			// configured for (scheme, host and port); credentials written
			// in the Location itself belong to its host.
			c.user, c.pass, c.hasCrd, c.withheld = user, pass, user != "", ""
			if originOf(nu) != origin {
				c.user, c.pass, c.hasCrd = "", "", false
				if user != "" {
					c.withheld = originOf(nu)
					c.log.Warn("rtsp: redirect leaves the configured host; credentials are not sent there",
						"from", origin, "to", c.withheld)
				}
			}
			if nu.User != nil {
				c.user = nu.User.Username()
				c.pass, _ = nu.User.Password()
				c.hasCrd, c.withheld = true, ""
				nu.User = nil
			}
			c.url = nu
			continue
		}
		if err != nil {
			if c.conn != nil {
				c.conn.close() // no session: nothing to tear down
			}
			return nil, err
		}
		return c, nil
	}
}

// originOf is a URL's scheme://host:port with the scheme's default port
// filled in and the host lower-cased: where credentials may be sent.
func originOf(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

type redirectError struct{ location string }

func (e *redirectError) Error() string { return "redirect to " + RedactURL(e.location) }

func (c *Client) connectAndDescribe(ctx context.Context) error {
	if c.conn != nil {
		c.conn.close()
		c.conn = nil
	}
	host := c.url.Host
	if c.url.Port() == "" {
		host = net.JoinHostPort(c.url.Hostname(), "554")
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	nc, err := c.cfg.Dial(dctx, "tcp", host)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", host, redactErr(err, c.cfg.URL))
	}
	c.conn = newCtrlConn(nc, c)
	resp, err := c.conn.do(ctx, "OPTIONS", c.url.String(), nil, nil)
	if err != nil {
		return err
	}
	// Some cameras refuse OPTIONS without auth or at all; DESCRIBE decides.
	c.public = resp.Header.Get("Public")
	c.server = resp.Header.Get("Server")
	h := Header{}
	h.Set("Accept", "application/sdp")
	resp, err = c.conn.do(ctx, "DESCRIBE", c.url.String(), h, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			return &redirectError{location: loc}
		}
	}
	if resp.StatusCode != 200 {
		return c.statusErr("DESCRIBE", resp)
	}
	if s := resp.Header.Get("Server"); s != "" {
		c.server = s
	}
	base, err := BaseURL(c.url.String(), resp)
	if err != nil {
		return fmt.Errorf("DESCRIBE %s: %w", c.url, err)
	}
	desc, err := ParseSDP(resp.Body, base)
	if err != nil {
		return fmt.Errorf("DESCRIBE %s: session description: %w", c.url, err)
	}
	c.desc = desc
	return nil
}

func (c *Client) statusErr(method string, resp *Response) error {
	return fmt.Errorf("%s %s: %w", method, c.url, &StatusError{Method: method, Code: resp.StatusCode, Reason: resp.Reason})
}

// Description returns the parsed session description from DESCRIBE.
func (c *Client) Description() Description { return c.desc }

// Server returns the camera's Server header ("" when it sent none).
func (c *Client) Server() string { return c.server }

// URL returns the camera URL without credentials.
func (c *Client) URL() string { return c.url.String() }

// Transport returns the transport in use (it changes from UDP to TCP on
// fallback).
func (c *Client) Transport() TransportMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// Play sets up the given tracks (indexes into Description().Tracks),
// sends PLAY and starts delivering packets to h. With UDP it blocks until
// the first packet arrives or, after UDPFallback, it has reconnected over
// TCP. It returns once media flows (or the setup failed); the session then
// runs until Close or an error reported by Wait.
func (c *Client) Play(ctx context.Context, tracks []int, h Handler) error {
	if len(tracks) == 0 {
		return errors.New("play: no tracks selected")
	}
	for _, t := range tracks {
		if t < 0 || t >= len(c.desc.Tracks) {
			return fmt.Errorf("play: no track %d (camera has %d)", t, len(c.desc.Tracks))
		}
	}
	c.mu.Lock()
	if c.play != nil || c.closed {
		c.mu.Unlock()
		return errors.New("play: session already playing or closed")
	}
	mode := c.transport
	c.mu.Unlock()
	if mode == UDP {
		err := c.startPlay(ctx, tracks, h, UDP)
		if err == nil {
			err = c.awaitFirstUDP(ctx)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return err
		}
		c.log.Warn("rtsp: UDP gave no media, falling back to TCP", "err", err)
		c.stopPlay(true)
		if err := c.connectAndDescribe(ctx); err != nil {
			return fmt.Errorf("reconnect for TCP fallback: %w", err)
		}
		c.mu.Lock()
		c.transport = TCP
		c.mu.Unlock()
	}
	err := c.startPlay(ctx, tracks, h, TCP)
	var se *StatusError
	if err == nil || c.cfg.ForceTCP || !errors.As(err, &se) || se.Method != "SETUP" || se.Code != 461 || ctx.Err() != nil {
		return err
	}
	// The camera does not serve TCP interleaved: set up over UDP. A
	// session a first SETUP may have made is torn down on a fresh
	// connection; UDP that brings nothing is then an error (TCP was
	// refused already).
	c.log.Warn("rtsp: camera refused TCP (461 Unsupported Transport), using UDP", "err", err)
	if c.conn.session != "" {
		c.stopPlay(true)
		if err := c.connectAndDescribe(ctx); err != nil {
			return fmt.Errorf("reconnect for UDP after 461: %w", err)
		}
	}
	c.mu.Lock()
	c.transport = UDP
	c.mu.Unlock()
	if err := c.startPlay(ctx, tracks, h, UDP); err != nil {
		return fmt.Errorf("camera refused TCP (461), and UDP: %w", err)
	}
	if err := c.awaitFirstUDP(ctx); err != nil {
		c.stopPlay(true)
		return fmt.Errorf("camera refused TCP (461), and UDP brought nothing: %w", err)
	}
	return nil
}

func (c *Client) awaitFirstUDP(ctx context.Context) error {
	c.mu.Lock()
	p := c.play
	c.mu.Unlock()
	t := time.NewTimer(c.cfg.UDPFallback)
	defer t.Stop()
	select {
	case <-p.firstPacket:
		return nil
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no UDP packet within %s", c.cfg.UDPFallback)
	}
}

// setupTransport builds the Transport header for track i.
func (c *Client) setup(ctx context.Context, track, n int, mode TransportMode, p *playState) error {
	tr := c.desc.Tracks[track]
	var want Transport
	var pair *udpClientPair
	if mode == TCP {
		want = Transport{Protocol: "RTP/AVP/TCP", Unicast: true, HasInterleaved: true, Interleaved: [2]int{2 * n, 2*n + 1}}
	} else {
		var err error
		pair, err = listenClientPair(c.cfg.ListenUDP, c.conn.localIP())
		if err != nil {
			return fmt.Errorf("SETUP track %d: %w", track, err)
		}
		want = Transport{Protocol: "RTP/AVP", Unicast: true, HasClientPort: true, ClientPort: pair.ports()}
	}
	h := Header{}
	h.Set("Transport", want.String())
	resp, err := c.conn.do(ctx, "SETUP", tr.Control, h, nil)
	if err != nil {
		pair.close()
		return err
	}
	if resp.StatusCode != 200 {
		pair.close()
		return c.statusErr("SETUP", resp)
	}
	got, err := ParseTransport(resp.Header.Get("Transport"))
	if err != nil {
		pair.close()
		return fmt.Errorf("SETUP %s: reply transport: %w", tr.Control, err)
	}
	pt := &playTrack{index: track, ssrc: got.SSRC, hasSSRC: got.HasSSRC}
	if mode == TCP {
		ch := want.Interleaved[0]
		if got.HasInterleaved {
			ch = got.Interleaved[0]
		}
		if ch < 0 || ch > 254 {
			return fmt.Errorf("SETUP %s: interleaved channel %d out of range", tr.Control, ch)
		}
		pt.channel = ch
	} else {
		if strings.HasSuffix(strings.ToUpper(got.Protocol), "/TCP") {
			pair.close()
			return fmt.Errorf("SETUP %s: server chose TCP for a UDP request", tr.Control)
		}
		pt.udp = pair
		pt.serverIP = c.conn.remoteIP()
		if got.Source != "" {
			if ip := net.ParseIP(got.Source); ip != nil {
				pt.serverIP = ip
			}
		}
		if got.HasServerPort {
			pt.serverRTCP = &net.UDPAddr{IP: pt.serverIP, Port: got.ServerPort[1]}
			pt.serverRTP = &net.UDPAddr{IP: pt.serverIP, Port: got.ServerPort[0]}
		}
	}
	p.tracks = append(p.tracks, pt)
	if c.conn.session == "" {
		id, timeout := ParseSession(resp.Header.Get("Session"))
		c.conn.session = id
		p.timeout = timeout
	}
	return nil
}

func (c *Client) startPlay(ctx context.Context, tracks []int, h Handler, mode TransportMode) error {
	p := newPlayState(c, h, mode)
	for n, t := range tracks {
		if err := c.setup(ctx, t, n, mode, p); err != nil {
			p.closeSockets()
			return err
		}
	}
	hdr := Header{}
	hdr.Set("Range", "npt=0.000-")
	resp, err := c.conn.do(ctx, "PLAY", c.desc.playURL(c.url.String()), hdr, nil)
	if err != nil {
		p.closeSockets()
		return err
	}
	if resp.StatusCode != 200 {
		p.closeSockets()
		return c.statusErr("PLAY", resp)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.closeSockets()
		return errors.New("play: client closed")
	}
	c.play = p
	c.lastPlay = p
	c.mu.Unlock()
	if ta, ok := h.(TransportAware); ok {
		ta.SetTransport(mode)
	}
	p.start()
	return nil
}

// Wait blocks until the playing session ends and returns why: ErrStall
// (wrapped), a connection error, or nil after Close.
func (c *Client) Wait() error {
	c.mu.Lock()
	p := c.lastPlay
	c.mu.Unlock()
	if p == nil {
		return errors.New("wait: not playing")
	}
	<-p.done
	return p.err
}

// Done returns a channel closed when the playing session ends (nil before
// Play).
func (c *Client) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastPlay == nil {
		return nil
	}
	return c.lastPlay.done
}

// Close sends TEARDOWN (best effort, bounded by one second), closes the
// connection and sockets, and waits until no goroutine of the client is
// left. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stopPlay(true)
	if c.conn != nil {
		c.conn.close()
	}
	return nil
}

// stopPlay tears the playing session down and waits for its goroutines.
func (c *Client) stopPlay(teardown bool) {
	c.mu.Lock()
	p := c.play
	c.play = nil
	c.mu.Unlock()
	if p != nil {
		p.stop(nil) // first, so the server closing after TEARDOWN is no error
	}
	if teardown && c.conn != nil && c.conn.session != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.conn.send(ctx, "TEARDOWN", c.desc.playURL(c.url.String()))
		cancel()
	}
	if p != nil {
		c.conn.close()
		p.wait()
	}
	if c.conn != nil {
		c.conn.session = ""
	}
}

// playURL is the aggregate control URL for PLAY and TEARDOWN.
func (d Description) playURL(fallback string) string {
	if d.Control != "" {
		return d.Control
	}
	return fallback
}

func redactErr(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(msg, p) {
		return errors.New(strings.ReplaceAll(msg, p, "xxxxx"))
	}
	return err
}

func itoa(i int) string { return strconv.Itoa(i) }
