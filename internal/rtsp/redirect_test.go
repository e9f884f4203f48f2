package rtsp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

// authSpy is a fake camera that records every Authorization header it
// receives. DESCRIBE of a path in redirect answers 302 to the mapped URL;
// other paths answer 401 with challenge until a request carries an
// Authorization header, then 200 with a one-track description.
type authSpy struct {
	addr      string
	challenge string
	redirect  map[string]string // path → Location

	mu   sync.Mutex
	seen []string // "PATH AUTHORIZATION" for every request with one
	reqs int
}

func startAuthSpy(t *testing.T, challenge string) *authSpy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &authSpy{addr: ln.Addr().String(), challenge: challenge, redirect: map[string]string{}}
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range conns { // a client the test left open must not hold Cleanup up
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			conns = append(conns, nc)
			s.mu.Unlock()
			wg.Go(func() { defer nc.Close(); s.serve(nc) })
		}
	})
	return s
}

func (s *authSpy) serve(nc net.Conn) {
	br := bufio.NewReader(nc)
	for {
		req, err := ReadRequest(br)
		if err != nil {
			return
		}
		path := req.URL
		if i := strings.Index(path, "://"); i >= 0 {
			path = path[i+3:]
			if j := strings.IndexByte(path, '/'); j >= 0 {
				path = path[j:]
			}
		}
		authz := req.Header.Get("Authorization")
		s.mu.Lock()
		s.reqs++
		if authz != "" {
			s.seen = append(s.seen, path+" "+authz)
		}
		loc := s.redirect[path]
		s.mu.Unlock()
		resp := &Response{StatusCode: 200, Reason: "OK"}
		switch {
		case req.Method == "OPTIONS":
			resp.Header.Set("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")
		case loc != "":
			resp = &Response{StatusCode: 302, Reason: "Found"}
			resp.Header.Set("Location", loc)
		case authz == "":
			resp = &Response{StatusCode: 401, Reason: "Unauthorized"}
			resp.Header.Set("WWW-Authenticate", s.challenge)
		case req.Method == "DESCRIBE":
			resp.Header.Set("Content-Type", "application/sdp")
			resp.Body = []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=spy\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n")
		}
		resp.Header.Set("CSeq", req.Header.Get("CSeq"))
		if _, err := nc.Write(resp.AppendTo(nil)); err != nil {
			return
		}
	}
}

func (s *authSpy) authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

const digestChallenge = `Digest realm="spy", nonce="abc123", algorithm=MD5`

// A redirect to another port of the same host is another origin: the
// stored credentials must not be sent there, and the 401 it answers says
// why.
func TestRedirectToOtherPortWithholdsCredentials(t *testing.T) {
	for _, creds := range []struct{ name, url, user, pass string }{
		{"in URL", "rtsp://admin:pw-1234@%s/old", "", ""},
		{"in config", "rtsp://%s/old", "admin", "pw-1234"},
	} {
		t.Run(creds.name, func(t *testing.T) {
			target := startAuthSpy(t, digestChallenge)
			first := startAuthSpy(t, digestChallenge)
			first.redirect["/old"] = "rtsp://" + target.addr + "/new"
			_, err := Dial(context.Background(), ClientConfig{URL: strings.Replace(creds.url, "%s", first.addr, 1),
				Username: creds.user, Password: creds.pass})
			if !errors.Is(err, ErrCredentialsWithheld) || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrCredentialsWithheld and ErrUnauthorized", err)
			}
			if !strings.Contains(err.Error(), "redirect changed host") || strings.Contains(err.Error(), "pw-1234") {
				t.Errorf("error %q should say the redirect changed host, without the password", err)
			}
			if got := target.authorizations(); len(got) != 0 {
				t.Errorf("redirect target received credentials: %q", got)
			}
			if target.reqs == 0 {
				t.Error("redirect was not followed")
			}
		})
	}
}

// A redirect to the same host and port (another path) keeps the
// credentials.
func TestRedirectSameOriginKeepsCredentials(t *testing.T) {
	s := startAuthSpy(t, digestChallenge)
	s.redirect["/old"] = "rtsp://" + s.addr + "/new"
	c, err := Dial(context.Background(), ClientConfig{URL: "rtsp://admin:pw-1234@" + s.addr + "/old"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	got := s.authorizations()
	if len(got) == 0 || !strings.HasPrefix(got[0], "/new Digest username=\"admin\"") {
		t.Errorf("authorizations = %q, want a Digest answer on /new", got)
	}
}

// Basic over plain rtsp:// sends the password in clear: refused unless
// the camera's configuration allows it.
func TestBasicOnlyRefusedUnlessAllowed(t *testing.T) {
	s := startAuthSpy(t, `Basic realm="spy"`)
	url := "rtsp://admin:pw-1234@" + s.addr + "/cam"
	_, err := Dial(context.Background(), ClientConfig{URL: url})
	if !errors.Is(err, ErrBasicRefused) {
		t.Fatalf("err = %v, want ErrBasicRefused", err)
	}
	if !strings.Contains(err.Error(), "only Basic auth over unencrypted RTSP") {
		t.Errorf("error %q does not say why", err)
	}
	if got := s.authorizations(); len(got) != 0 {
		t.Fatalf("refused Basic but sent %q", got)
	}
	c, err := Dial(context.Background(), ClientConfig{URL: url, AllowBasic: true})
	if err != nil {
		t.Fatalf("with AllowBasic: %v", err)
	}
	c.Close()
	if got := s.authorizations(); len(got) == 0 || !strings.HasPrefix(got[0], "/cam Basic ") {
		t.Errorf("with AllowBasic: authorizations = %q, want Basic", got)
	}
	// Offered beside Digest, Basic is never chosen: no option needed.
	both := startAuthSpy(t, `Basic realm="spy", `+digestChallenge)
	c, err = Dial(context.Background(), ClientConfig{URL: "rtsp://admin:pw-1234@" + both.addr + "/cam"})
	if err != nil {
		t.Fatalf("Basic and Digest offered: %v", err)
	}
	c.Close()
}
