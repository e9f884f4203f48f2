package rtsp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// ctrlConn is the client's RTSP control connection. Until PLAY, requests
// read their own responses; once a playState reads the connection (async),
// responses are handed to the waiting request by CSeq. Writes are
// serialised by wmu, so keep-alives, TEARDOWN and RTCP may come from any
// goroutine.
type ctrlConn struct {
	c  *Client
	nc net.Conn
	rd *Reader

	wmu     sync.Mutex
	cseq    int
	auth    *Authenticator
	session string // guarded by the Client's call pattern: set during setup only

	mu      sync.Mutex
	async   bool
	waiters map[int]chan *Response
}

func newCtrlConn(nc net.Conn, c *Client) *ctrlConn {
	return &ctrlConn{c: c, nc: nc, rd: NewReader(nc, 64<<10+4), waiters: make(map[int]chan *Response)}
}

func (cc *ctrlConn) close() { cc.nc.Close() }

func (cc *ctrlConn) localIP() net.IP {
	if a, ok := cc.nc.LocalAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

func (cc *ctrlConn) remoteIP() net.IP {
	if a, ok := cc.nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

// do sends a request and returns its response, answering one 401 with
// credentials (and a second one when the server says the nonce is stale).
// A final 401 is returned as an error wrapping ErrUnauthorized; other
// statuses are returned for the caller to judge.
func (cc *ctrlConn) do(ctx context.Context, method, url string, h Header, body []byte) (*Response, error) {
	for attempt := 0; attempt < 3; attempt++ {
		resp, err := cc.roundTrip(ctx, method, url, h, body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 401 {
			return resp, nil
		}
		if !cc.c.hasCrd {
			if cc.c.withheld != "" {
				return nil, fmt.Errorf("%s %s: camera requires credentials: %w (to %s): %w", method, cc.c.url, ErrCredentialsWithheld, cc.c.withheld, ErrUnauthorized)
			}
			return nil, fmt.Errorf("%s %s: camera requires credentials: %w", method, cc.c.url, ErrUnauthorized)
		}
		chals := ParseChallenges(resp.Header.Values("WWW-Authenticate"))
		stale := false
		for _, ch := range chals {
			stale = stale || ch.Stale
		}
		if cc.auth != nil && !stale {
			return nil, fmt.Errorf("%s %s: credentials refused: %w", method, cc.c.url, ErrUnauthorized)
		}
		a, err := NewAuthenticator(cc.c.user, cc.c.pass, chals)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, cc.c.url, err)
		}
		if a.basic && cc.c.url.Scheme == "rtsp" && !cc.c.cfg.AllowBasic {
			// NewAuthenticator prefers Digest, so Basic means Basic only.
			return nil, fmt.Errorf("%s %s: %w", method, cc.c.url, ErrBasicRefused)
		}
		cc.wmu.Lock()
		cc.auth = a
		cc.wmu.Unlock()
	}
	return nil, fmt.Errorf("%s %s: authentication loop: %w", method, cc.c.url, ErrUnauthorized)
}

// write sends one request and returns its CSeq. The write may block until
// the request timeout, or less when ctx has an earlier deadline.
func (cc *ctrlConn) write(ctx context.Context, method, url string, h Header, body []byte) (int, error) {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.cseq++
	req := &Request{Method: method, URL: url, Body: body}
	for _, f := range h {
		req.Header.Add(f.Name, f.Value)
	}
	req.Header.Set("CSeq", strconv.Itoa(cc.cseq))
	req.Header.Set("User-Agent", cc.c.cfg.UserAgent)
	if cc.session != "" {
		req.Header.Set("Session", cc.session)
	}
	if cc.auth != nil {
		req.Header.Set("Authorization", cc.auth.Authorization(method, url))
	}
	deadline := time.Now().Add(cc.c.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cc.nc.SetWriteDeadline(deadline)
	if _, err := cc.nc.Write(req.AppendTo(nil)); err != nil {
		return 0, fmt.Errorf("%s %s: write: %w", method, cc.c.url, err)
	}
	return cc.cseq, nil
}

// send writes a request whose response nobody waits for (keep-alive,
// TEARDOWN on close).
func (cc *ctrlConn) send(ctx context.Context, method, url string) error {
	_, err := cc.write(ctx, method, url, nil, nil)
	return err
}

func (cc *ctrlConn) roundTrip(ctx context.Context, method, url string, h Header, body []byte) (*Response, error) {
	deadline := time.Now().Add(cc.c.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cc.mu.Lock()
	async := cc.async
	var ch chan *Response
	cc.mu.Unlock()
	if async {
		ch = make(chan *Response, 1)
	}
	// Register before writing so a fast reply is not missed.
	cc.mu.Lock()
	cseq, err := cc.write(ctx, method, url, h, body)
	if err != nil {
		cc.mu.Unlock()
		return nil, err
	}
	if async {
		cc.waiters[cseq] = ch
	}
	cc.mu.Unlock()
	if async {
		defer func() {
			cc.mu.Lock()
			delete(cc.waiters, cseq)
			cc.mu.Unlock()
		}()
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s: %w", method, cc.c.url, ctx.Err())
		case <-t.C:
			return nil, fmt.Errorf("%s %s: no response within %s", method, cc.c.url, cc.c.cfg.RequestTimeout)
		}
	}
	stop := context.AfterFunc(ctx, func() { cc.nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	cc.nc.SetReadDeadline(deadline)
	defer cc.nc.SetReadDeadline(time.Time{})
	for {
		it, err := cc.rd.Read()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s %s: %w", method, cc.c.url, ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("%s %s: no response within %s (timed out)", method, cc.c.url, cc.c.cfg.RequestTimeout)
			}
			return nil, fmt.Errorf("%s %s: read response: %w", method, cc.c.url, err)
		}
		if it.Request != nil {
			cc.answerServerRequest(it.Request)
			continue
		}
		if it.Response == nil {
			continue // media before PLAY's reply, or RTCP: ignore
		}
		if got := it.Response.Header.Get("CSeq"); got != "" && got != strconv.Itoa(cseq) {
			continue // reply to an earlier request (e.g. keep-alive)
		}
		return it.Response, nil
	}
}

// dispatch hands a response read by the play goroutine to its waiter.
func (cc *ctrlConn) dispatch(r *Response) {
	n, err := strconv.Atoi(r.Header.Get("CSeq"))
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if err != nil {
		// Without CSeq, give it to the only waiter if there is one.
		if len(cc.waiters) != 1 {
			return
		}
		for k := range cc.waiters {
			n = k
		}
	}
	if ch, ok := cc.waiters[n]; ok {
		select {
		case ch <- r:
		default:
		}
	}
}

// answerServerRequest replies to requests some cameras send to clients
// (OPTIONS or GET_PARAMETER pings, ANNOUNCE): 200 for pings, 501 otherwise.
func (cc *ctrlConn) answerServerRequest(req *Request) {
	code, reason := 501, "Not Implemented"
	switch req.Method {
	case "OPTIONS", "GET_PARAMETER", "SET_PARAMETER":
		code, reason = 200, "OK"
	}
	resp := &Response{StatusCode: code, Reason: reason}
	if cseq := req.Header.Get("CSeq"); cseq != "" {
		resp.Header.Set("CSeq", cseq)
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.nc.SetWriteDeadline(time.Now().Add(cc.c.cfg.RequestTimeout))
	cc.nc.Write(resp.AppendTo(nil))
}
