package rtsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// testStream sends numbered packets on every set-up track at a fixed pace.
type testStream struct {
	tracks  int
	every   time.Duration
	stopAt  int  // stop sending (but keep the session) after this many packets; 0 = never
	tcpOnly bool // send nothing over UDP (to exercise the TCP fallback)
}

func (s *testStream) SDP() []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=test\r\nt=0 0\r\n")
	for i := 0; i < s.tracks; i++ {
		fmt.Fprintf(&b, "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=%d\r\n", i)
	}
	return []byte(b.String())
}

func (s *testStream) Play(ctx context.Context, tracks []int, w PacketWriter) error {
	if s.tcpOnly && !w.(*sessionWriter).tcp {
		<-ctx.Done()
		return ctx.Err()
	}
	pkt := make([]byte, 12+100)
	pkt[0] = 0x80
	pkt[1] = 96 | 0x80
	for n := 0; ; n++ {
		if s.stopAt > 0 && n >= s.stopAt {
			<-ctx.Done()
			return ctx.Err()
		}
		for _, t := range tracks {
			binary.BigEndian.PutUint16(pkt[2:], uint16(n))
			binary.BigEndian.PutUint32(pkt[4:], uint32(n*3000))
			if err := w.WriteRTP(t, pkt); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.every):
		}
	}
}

// counter is a Handler that counts packets per track and checks order.
type counter struct {
	mu        sync.Mutex
	packets   map[int]int
	outOfSeq  int
	last      map[int]uint16
	srs       int
	firstSeen chan struct{}
	once      sync.Once
}

func newCounter() *counter {
	return &counter{packets: map[int]int{}, last: map[int]uint16{}, firstSeen: make(chan struct{})}
}

func (c *counter) HandleRTP(track int, pkt *rtp.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.last[track]; ok && pkt.SequenceNumber != n+1 {
		c.outOfSeq++
	}
	c.last[track] = pkt.SequenceNumber
	c.packets[track]++
	c.once.Do(func() { close(c.firstSeen) })
}

func (c *counter) HandleRTCP(track int, pkts []rtcp.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pkts {
		if _, ok := p.(*rtcp.SenderReport); ok {
			c.srs++
		}
	}
}

func (c *counter) get(track int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets[track]
}

func startServer(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// One round trip proves Serve runs, with its UDP goroutine started, so
	// goroutine counts taken after this are stable.
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	if _, err := ReadResponse(bufio.NewReader(nc)); err != nil {
		t.Fatalf("warm-up OPTIONS: %v", err)
	}
	nc.Close()
	waitFor(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0
	})
	return ln.Addr().String()
}

func mountOnly(path string, st Stream) func(string) (Stream, error) {
	return func(p string) (Stream, error) {
		if p != path {
			return nil, ErrNotFound
		}
		return st, nil
	}
}

// checkGoroutines fails if the number of goroutines does not come back to
// base within a few seconds (a goroutine outliving Close).
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, want ≤ %d:\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClientPlay(t *testing.T) {
	for _, mode := range []TransportMode{TCP, UDP} {
		t.Run(string(mode), func(t *testing.T) {
			srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 2, every: 5 * time.Millisecond})}
			addr := startServer(t, srv)
			base := runtime.NumGoroutine()
			ctx := context.Background()
			c, err := Dial(ctx, ClientConfig{URL: "rtsp://" + addr + "/cam", Transport: mode})
			if err != nil {
				t.Fatal(err)
			}
			d := c.Description()
			if len(d.Tracks) != 2 {
				t.Fatalf("tracks = %d, want 2", len(d.Tracks))
			}
			if want := "rtsp://" + addr + "/cam/trackID=1"; d.Tracks[1].Control != want {
				t.Errorf("control = %q, want %q", d.Tracks[1].Control, want)
			}
			h := newCounter()
			if err := c.Play(ctx, []int{0, 1}, h); err != nil {
				t.Fatal(err)
			}
			if c.Transport() != mode {
				t.Errorf("transport = %s, want %s", c.Transport(), mode)
			}
			waitFor(t, func() bool { return h.get(0) >= 50 && h.get(1) >= 50 })
			c.Close()
			if err := c.Wait(); err != nil {
				t.Errorf("Wait after Close = %v, want nil", err)
			}
			if mode == TCP && h.outOfSeq != 0 {
				t.Errorf("%d packets out of sequence over TCP", h.outOfSeq)
			}
			checkGoroutines(t, base)
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientUDPFallsBackToTCP(t *testing.T) {
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 1, every: 5 * time.Millisecond, tcpOnly: true})}
	addr := startServer(t, srv)
	c, err := Dial(context.Background(), ClientConfig{URL: "rtsp://" + addr + "/cam", Transport: UDP, UDPFallback: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := newCounter()
	if err := c.Play(context.Background(), []int{0}, h); err != nil {
		t.Fatal(err)
	}
	if c.Transport() != TCP {
		t.Fatalf("transport = %s after fallback, want tcp", c.Transport())
	}
	waitFor(t, func() bool { return h.get(0) >= 20 })
}

func TestClientStall(t *testing.T) {
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 1, every: time.Millisecond, stopAt: 10})}
	addr := startServer(t, srv)
	base := runtime.NumGoroutine()
	c, err := Dial(context.Background(), ClientConfig{URL: "rtsp://" + addr + "/cam", StallTimeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(context.Background(), []int{0}, newCounter()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Wait()
	if !errors.Is(err, ErrStall) {
		t.Fatalf("Wait = %v, want ErrStall", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stall detected after %s", el)
	}
	c.Close()
	checkGoroutines(t, base)
}

func TestClientDigestAuth(t *testing.T) {
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 1, every: 5 * time.Millisecond}),
		Auth: NewDigestServer("test", "admin", "s3cret-pw")}
	addr := startServer(t, srv)
	ctx := context.Background()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := Dial(ctx, ClientConfig{URL: "rtsp://admin:s3cret-pw@" + addr + "/cam", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := newCounter()
	if err := c.Play(ctx, []int{0}, h); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.get(0) >= 10 })
	c.Close()

	for _, tc := range []struct{ name, url string }{
		{"wrong password", "rtsp://admin:wrong-pw@" + addr + "/cam"},
		{"no credentials", "rtsp://" + addr + "/cam"},
	} {
		_, err := Dial(ctx, ClientConfig{URL: tc.url, Logger: log})
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: err = %v, want ErrUnauthorized", tc.name, err)
			continue
		}
		if strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("%s: error leaks the password: %v", tc.name, err)
		}
	}
	if strings.Contains(logs.String(), "s3cret-pw") || strings.Contains(logs.String(), "wrong-pw") {
		t.Errorf("logs leak a password:\n%s", logs.String())
	}
}

func TestClientRedirect(t *testing.T) {
	srv := &Server{Mount: mountOnly("real", &testStream{tracks: 1, every: 5 * time.Millisecond})}
	addr := startServer(t, srv)
	// A tiny server that redirects every DESCRIBE to the real one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					req, err := ReadRequest(br)
					if err != nil {
						return
					}
					resp := &Response{StatusCode: 200, Reason: "OK"}
					if req.Method == "DESCRIBE" {
						resp = &Response{StatusCode: 302, Reason: "Found"}
						resp.Header.Set("Location", "rtsp://"+addr+"/real")
					}
					resp.Header.Set("CSeq", req.Header.Get("CSeq"))
					nc.Write(resp.AppendTo(nil))
				}
			}()
		}
	}()
	c, err := Dial(context.Background(), ClientConfig{URL: "rtsp://" + ln.Addr().String() + "/old"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.URL() != "rtsp://"+addr+"/real" {
		t.Errorf("URL after redirect = %s", c.URL())
	}
	h := newCounter()
	if err := c.Play(context.Background(), []int{0}, h); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.get(0) >= 10 })
}

func TestClientKeepAliveAndSenderReports(t *testing.T) {
	var keepalives atomic.Int32
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 1, every: 5 * time.Millisecond}),
		SessionTimeout: 2 * time.Second,
		OnRequest: func(r *Request) {
			if r.Method == "GET_PARAMETER" {
				keepalives.Add(1)
			}
		}}
	addr := startServer(t, srv)
	c, err := Dial(context.Background(), ClientConfig{URL: "rtsp://" + addr + "/cam"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := newCounter()
	if err := c.Play(context.Background(), []int{0}, h); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := keepalives.Load(); n < 2 {
		t.Errorf("%d keep-alives in 2.5 s with a 2 s session timeout, want ≥ 2", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srs == 0 {
		t.Error("no RTCP sender report received")
	}
}

func TestClientErrors(t *testing.T) {
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 1, every: 5 * time.Millisecond})}
	addr := startServer(t, srv)
	ctx := context.Background()
	_, err := Dial(ctx, ClientConfig{URL: "rtsp://" + addr + "/nothing"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("unknown path: err = %v, want a 404 StatusError", err)
	}
	// A closed port: unreachable.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	_, err = Dial(ctx, ClientConfig{URL: "rtsp://u:pw-secret@" + closed + "/cam"})
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("closed port: err = %v, want a dial error", err)
	}
	if err != nil && strings.Contains(err.Error(), "pw-secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	// A server that accepts and never answers: timeout.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			nc, err := silent.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	_, err = Dial(ctx, ClientConfig{URL: "rtsp://" + silent.Addr().String() + "/cam", RequestTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("silent server: err = %v, want a timeout", err)
	}
	if _, err := Dial(ctx, ClientConfig{URL: "http://" + addr + "/cam"}); err == nil {
		t.Error("http URL accepted")
	}
}

// A camera that answers SETUP over TCP with 461 Unsupported Transport is
// set up over UDP, unless TCP is forced.
func TestClientTCPRefusedFallsBackToUDP(t *testing.T) {
	var setups []string
	var mu sync.Mutex
	srv := &Server{Mount: mountOnly("cam", &testStream{tracks: 2, every: 5 * time.Millisecond}), RefuseTCP: true,
		OnRequest: func(r *Request) {
			if r.Method == "SETUP" {
				mu.Lock()
				setups = append(setups, r.Header.Get("Transport"))
				mu.Unlock()
			}
		}}
	addr := startServer(t, srv)
	base := runtime.NumGoroutine()
	ctx := context.Background()
	c, err := Dial(ctx, ClientConfig{URL: "rtsp://" + addr + "/cam"})
	if err != nil {
		t.Fatal(err)
	}
	h := newCounter()
	if err := c.Play(ctx, []int{0, 1}, h); err != nil {
		t.Fatalf("Play: %v", err)
	}
	if c.Transport() != UDP {
		t.Errorf("transport = %s, want udp", c.Transport())
	}
	waitFor(t, func() bool { return h.get(0) >= 20 && h.get(1) >= 20 })
	c.Close()
	checkGoroutines(t, base)
	mu.Lock()
	if len(setups) != 3 || !strings.Contains(setups[0], "TCP") || strings.Contains(setups[1], "TCP") {
		t.Errorf("SETUP transports = %q, want TCP (refused), then UDP for both tracks", setups)
	}
	mu.Unlock()

	c, err = Dial(ctx, ClientConfig{URL: "rtsp://" + addr + "/cam", ForceTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Play(ctx, []int{0}, newCounter())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 461 {
		t.Errorf("ForceTCP: Play = %v, want the 461 refusal", err)
	}
}
