package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// messageCases feed both TestReadMessages and FuzzReadMessage.
var messageCases = []struct {
	name   string
	in     string
	status int    // expected response status, 0 for a request
	method string // expected request method
	header map[string]string
	body   string
	err    error // expected error (errors.Is), nil for success
}{
	{name: "crlf response", in: "RTSP/1.0 200 OK\r\nCSeq: 1\r\nSession: 12;timeout=60\r\n\r\n",
		status: 200, header: map[string]string{"cseq": "1", "SESSION": "12;timeout=60"}},
	{name: "lf only", in: "RTSP/1.0 200 OK\nCSeq: 2\n\n", status: 200, header: map[string]string{"CSeq": "2"}},
	{name: "no reason", in: "RTSP/1.0 404\r\nCSeq: 3\r\n\r\n", status: 404, header: map[string]string{"CSeq": "3"}},
	{name: "extra whitespace", in: "RTSP/1.0   454   Session Not Found  \r\nCSeq:    4   \r\nSession:        708345999\r\n\r\n",
		status: 454, header: map[string]string{"CSeq": "4", "Session": "708345999"}},
	{name: "continuation", in: "RTSP/1.0 200 OK\r\nPublic: OPTIONS,\r\n DESCRIBE,\r\n\tPLAY\r\nCSeq: 5\r\n\r\n",
		status: 200, header: map[string]string{"Public": "OPTIONS, DESCRIBE, PLAY", "CSeq": "5"}},
	{name: "body without content type", in: "RTSP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nv=0\n",
		status: 200, body: "v=0\n"},
	{name: "bogus header line", in: "RTSP/1.0 200 OK\r\nthis is not a header\r\nCSeq: 6\r\n\r\n",
		status: 200, header: map[string]string{"CSeq": "6"}},
	{name: "request", in: "DESCRIBE rtsp://cam/x RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n",
		method: "DESCRIBE", header: map[string]string{"accept": "application/sdp"}},
	{name: "request with body", in: "SET_PARAMETER rtsp://cam/ RTSP/1.0\nCSeq: 9\nContent-Length: 5\n\nx: y\n",
		method: "SET_PARAMETER", body: "x: y\n"},
	{name: "negative content length", in: "RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", err: ErrMalformed},
	{name: "garbage content length", in: "RTSP/1.0 200 OK\r\nContent-Length: 12abc\r\n\r\n", err: ErrMalformed},
	{name: "plus content length", in: "RTSP/1.0 200 OK\r\nContent-Length: +3\r\n\r\nabc", err: ErrMalformed},
	{name: "huge content length", in: "RTSP/1.0 200 OK\r\nContent-Length: 99999999999\r\n\r\n", err: ErrBodyTooLarge},
	{name: "truncated body", in: "RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: io.ErrUnexpectedEOF},
	{name: "truncated header", in: "RTSP/1.0 200 OK\r\nCSeq: 1\r\n", err: io.ErrUnexpectedEOF},
	{name: "too many headers", in: "RTSP/1.0 200 OK\r\n" + strings.Repeat("X: y\r\n", MaxHeaders+1) + "\r\n", err: ErrTooManyHeaders},
	{name: "header too large", in: "RTSP/1.0 200 OK\r\nX: " + strings.Repeat("a", MaxHeaderBytes) + "\r\n\r\n", err: ErrHeaderTooLarge},
}

func TestReadMessages(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			rd := NewReader(strings.NewReader(tc.in), 4096)
			it, err := rd.Read()
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var h Header
			var body []byte
			if tc.status != 0 {
				if it.Response == nil || it.Response.StatusCode != tc.status {
					t.Fatalf("got %+v, want status %d", it, tc.status)
				}
				h, body = it.Response.Header, it.Response.Body
			} else {
				if it.Request == nil || it.Request.Method != tc.method {
					t.Fatalf("got %+v, want %s request", it, tc.method)
				}
				h, body = it.Request.Header, it.Request.Body
			}
			if it.Channel != -1 {
				t.Errorf("Channel = %d, want -1", it.Channel)
			}
			for k, v := range tc.header {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if string(body) != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
			if _, err := rd.Read(); err != io.EOF {
				t.Errorf("second Read: %v, want EOF", err)
			}
		})
	}
}

func TestStatusReason(t *testing.T) {
	for _, tc := range []struct {
		in     string
		code   int
		reason string
	}{
		{"RTSP/1.0 200 OK\r\n\r\n", 200, "OK"},
		{"RTSP/1.0 401 Unauthorized Access\r\n\r\n", 401, "Unauthorized Access"},
		{"RTSP/1.0 551\r\n\r\n", 551, ""},
		{"RTSP/2.0\t200\tOK\n\n", 200, "OK"},
	} {
		r, err := ReadResponse(bufio.NewReader(strings.NewReader(tc.in)))
		if err != nil || r.StatusCode != tc.code || r.Reason != tc.reason {
			t.Errorf("%q: got %+v, %v", tc.in, r, err)
		}
	}
	for _, in := range []string{"RTSP/1.0 20 OK\r\n\r\n", "RTSP/1.0 abc\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"} {
		if _, err := ReadResponse(bufio.NewReader(strings.NewReader(in))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", in, err)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	req := &Request{Method: "SETUP", URL: "rtsp://cam/stream/trackID=1"}
	req.Header.Set("CSeq", "3")
	req.Header.Set("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")
	req.Header.Set("Content-Length", "999") // replaced by the real length
	req.Header.Set("X-Evil", "a\r\nInjected: yes")
	req.Body = []byte("hello")
	wire := req.Marshal()
	if !bytes.HasPrefix(wire, []byte("SETUP rtsp://cam/stream/trackID=1 RTSP/1.0\r\n")) {
		t.Fatalf("wire = %q", wire)
	}
	got, err := ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("Content-Length") != "5" || string(got.Body) != "hello" {
		t.Errorf("content-length %q body %q", got.Header.Get("Content-Length"), got.Body)
	}
	if got.Header.Has("Injected") {
		t.Errorf("CR/LF in a value injected a header: %q", wire)
	}
	if n, ok := got.CSeq(); !ok || n != 3 {
		t.Errorf("CSeq = %d %v", n, ok)
	}

	resp := &Response{StatusCode: 461}
	resp.Header.Set("CSeq", "7")
	wire = resp.AppendTo([]byte("prefix"))
	if !bytes.HasPrefix(wire, []byte("prefixRTSP/1.0 461 Unsupported Transport\r\nCSeq: 7\r\n\r\n")) {
		t.Errorf("wire = %q", wire)
	}
	r2, err := ReadResponse(bufio.NewReader(bytes.NewReader(wire[len("prefix"):])))
	if err != nil || r2.StatusCode != 461 || r2.Reason != "Unsupported Transport" || r2.Header.Has("Content-Length") {
		t.Errorf("reparsed %+v, %v", r2, err)
	}
}

func TestHeader(t *testing.T) {
	var h Header
	h.Add("WWW-Authenticate", "Digest a")
	h.Add("www-authenticate", "Basic b")
	h.Set("CSeq", "1")
	if got := h.Values("Www-Authenticate"); len(got) != 2 || got[1] != "Basic b" {
		t.Errorf("Values = %q", got)
	}
	h.Set("WWW-AUTHENTICATE", "only")
	if got := h.Values("www-authenticate"); len(got) != 1 || got[0] != "only" {
		t.Errorf("after Set: %q", got)
	}
	if h[0].Name != "WWW-AUTHENTICATE" {
		t.Errorf("Set did not keep position: %+v", h)
	}
	h.Del("cseq")
	if h.Has("CSeq") || len(h) != 1 {
		t.Errorf("after Del: %+v", h)
	}
	c := h.Clone()
	c.Set("X", "y")
	if h.Has("X") {
		t.Error("Clone shares storage")
	}
	if n, ok := (&Response{Header: Header{{"Cseq", "1 "}}}).CSeq(); !ok || n != 1 {
		t.Errorf("padded CSeq = %d %v", n, ok)
	}
	if _, ok := (&Response{Header: Header{{"CSeq", "x"}}}).CSeq(); ok {
		t.Error("garbage CSeq accepted")
	}
}
