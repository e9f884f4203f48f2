// Package rtsp speaks RTSP/1.0 (RFC 2326) to IP cameras and to clients of
// Custos's own server. This part of the package is the no-I/O layer: message
// types and parsing, the interleaved-frame reader, Transport/Session/RTP-Info
// headers, SDP descriptions and HTTP-style authentication. Parsers are
// tolerant of what real cameras send (see testdata/) and enforce size limits
// so a hostile peer cannot make them allocate without bound.
package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits applied while reading messages.
const (
	// MaxHeaderBytes bounds the start line plus header section of a message.
	MaxHeaderBytes = 64 << 10
	// MaxHeaders bounds the number of header fields in a message.
	MaxHeaders = 256
	// MaxBodyBytes bounds a message body (its Content-Length).
	MaxBodyBytes = 4 << 20
)

// Errors returned by the message parsers; test with errors.Is.
var (
	ErrHeaderTooLarge = errors.New("rtsp: header section exceeds 64 KiB")
	ErrTooManyHeaders = errors.New("rtsp: more than 256 header fields")
	ErrBodyTooLarge   = errors.New("rtsp: body exceeds 4 MiB")
	ErrMalformed      = errors.New("rtsp: malformed message")
)

// Request is an RTSP request. URL is kept as written (it may be "*").
type Request struct {
	Method string
	URL    string
	Header Header
	Body   []byte
}

// Response is an RTSP response. Reason may be empty (some cameras omit it).
type Response struct {
	StatusCode int
	Reason     string
	Header     Header
	Body       []byte
}

// CSeq returns the request's CSeq header as a number; ok is false when it is
// missing or not a non-negative integer.
func (r *Request) CSeq() (n int, ok bool) { return parseCSeq(r.Header) }

// CSeq returns the response's CSeq header as a number; ok is false when it
// is missing or not a non-negative integer. Some cameras pad it ("1 ").
func (r *Response) CSeq() (n int, ok bool) { return parseCSeq(r.Header) }

func parseCSeq(h Header) (int, bool) {
	v := strings.TrimSpace(h.Get("CSeq"))
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// AppendTo appends the wire form of r ("METHOD URL RTSP/1.0", headers, blank
// line, body) to dst and returns the extended slice. Content-Length is
// written from len(Body) when the body is non-empty, replacing any
// Content-Length field in Header. It does no I/O.
func (r *Request) AppendTo(dst []byte) []byte {
	dst = appendClean(dst, r.Method)
	dst = append(dst, ' ')
	dst = appendClean(dst, r.URL)
	dst = append(dst, " RTSP/1.0\r\n"...)
	return appendHeaderBody(dst, r.Header, r.Body)
}

// Marshal returns the wire form of r; see AppendTo.
func (r *Request) Marshal() []byte { return r.AppendTo(nil) }

// AppendTo appends the wire form of r ("RTSP/1.0 code reason", headers,
// blank line, body) to dst. An empty Reason is filled from StatusText.
// Content-Length is handled as in Request.AppendTo. It does no I/O.
func (r *Response) AppendTo(dst []byte) []byte {
	dst = append(dst, "RTSP/1.0 "...)
	dst = strconv.AppendInt(dst, int64(r.StatusCode), 10)
	reason := r.Reason
	if reason == "" {
		reason = StatusText(r.StatusCode)
	}
	if reason != "" {
		dst = append(dst, ' ')
		dst = appendClean(dst, reason)
	}
	dst = append(dst, "\r\n"...)
	return appendHeaderBody(dst, r.Header, r.Body)
}

// Marshal returns the wire form of r; see AppendTo.
func (r *Response) Marshal() []byte { return r.AppendTo(nil) }

func appendHeaderBody(dst []byte, h Header, body []byte) []byte {
	dst = h.appendTo(dst)
	if len(body) > 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// StatusText returns the RFC 2326 reason phrase for code, or "" if unknown.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Moved Temporarily"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 408:
		return "Request Timeout"
	case 415:
		return "Unsupported Media Type"
	case 451:
		return "Parameter Not Understood"
	case 453:
		return "Not Enough Bandwidth"
	case 454:
		return "Session Not Found"
	case 455:
		return "Method Not Valid In This State"
	case 457:
		return "Invalid Range"
	case 459:
		return "Aggregate Operation Not Allowed"
	case 460:
		return "Only Aggregate Operation Allowed"
	case 461:
		return "Unsupported Transport"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "RTSP Version Not Supported"
	case 551:
		return "Option Not Supported"
	}
	return ""
}

// ReadRequest reads one request from br (no interleaved frames, no
// resynchronisation; use Reader on a live connection). It blocks on br and
// returns io.EOF only when br is empty before the first byte.
func ReadRequest(br *bufio.Reader) (*Request, error) {
	p := parser{br: br}
	return p.request()
}

func (p *parser) request() (*Request, error) {
	p.budget = MaxHeaderBytes
	line, err := p.line()
	if err != nil {
		return nil, err
	}
	method, uri, ok := parseRequestLine(line)
	if !ok {
		return nil, fmt.Errorf("%w: bad request line %q", ErrMalformed, truncate(line))
	}
	req := &Request{Method: method, URL: uri}
	if req.Header, req.Body, err = p.headerAndBody(); err != nil {
		return nil, fmt.Errorf("%s request: %w", method, err)
	}
	return req, nil
}

// ReadResponse reads one response from br (no interleaved frames, no
// resynchronisation; use Reader on a live connection). It blocks on br and
// returns io.EOF only when br is empty before the first byte.
func ReadResponse(br *bufio.Reader) (*Response, error) {
	p := parser{br: br}
	return p.response()
}

func (p *parser) response() (*Response, error) {
	p.budget = MaxHeaderBytes
	line, err := p.line()
	if err != nil {
		return nil, err
	}
	code, reason, ok := parseStatusLine(line)
	if !ok {
		return nil, fmt.Errorf("%w: bad status line %q", ErrMalformed, truncate(line))
	}
	resp := &Response{StatusCode: code, Reason: reason}
	if resp.Header, resp.Body, err = p.headerAndBody(); err != nil {
		return nil, fmt.Errorf("response %d: %w", code, err)
	}
	return resp, nil
}

// parser reads lines from br, charging every byte to budget.
type parser struct {
	br     *bufio.Reader
	budget int
	buf    []byte // reassembles lines longer than br's buffer
}

// line returns the next line without its LF or CRLF terminator. The slice is
// valid until the next call. io.EOF is returned only if nothing was read.
func (p *parser) line() ([]byte, error) {
	p.buf = p.buf[:0]
	for {
		frag, err := p.br.ReadSlice('\n')
		p.budget -= len(frag)
		if p.budget < 0 {
			return nil, ErrHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			p.buf = append(p.buf, frag...)
			continue
		}
		if err != nil {
			if err == io.EOF && (len(frag) > 0 || len(p.buf) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line := frag
		if len(p.buf) > 0 {
			p.buf = append(p.buf, frag...)
			line = p.buf
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
}

// headerAndBody reads header fields up to the blank line, then the body
// announced by Content-Length (none when absent).
func (p *parser) headerAndBody() (Header, []byte, error) {
	var h Header
	for {
		line, err := p.line()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break // end of header (a whitespace-only line counts too)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(h) > 0 { // continuation of the previous field
				last := &h[len(h)-1]
				last.Value = strings.TrimSpace(last.Value + " " + string(bytes.TrimSpace(line)))
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue // a bogus line some cameras emit; ignore it
		}
		name := bytes.TrimSpace(line[:colon])
		if len(name) == 0 {
			continue
		}
		if len(h) >= MaxHeaders {
			return nil, nil, ErrTooManyHeaders
		}
		h = append(h, Field{Name: string(name), Value: string(bytes.TrimSpace(line[colon+1:]))})
	}
	var body []byte
	if h.Has("Content-Length") {
		v := strings.TrimSpace(h.Get("Content-Length"))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || v[0] == '+' {
			return nil, nil, fmt.Errorf("%w: bad Content-Length %q", ErrMalformed, truncate([]byte(v)))
		}
		if n > MaxBodyBytes {
			return nil, nil, fmt.Errorf("%w (Content-Length %d)", ErrBodyTooLarge, n)
		}
		if n > 0 {
			body = make([]byte, n)
			if _, err := io.ReadFull(p.br, body); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, nil, fmt.Errorf("read body: %w", err)
			}
		}
	}
	return h, body, nil
}

// parseRequestLine splits "METHOD URL RTSP/x.y" (any run of spaces or tabs
// between the parts).
func parseRequestLine(line []byte) (method, uri string, ok bool) {
	f := strings.Fields(string(line))
	if len(f) != 3 || !isMethodToken(f[0]) || !strings.HasPrefix(f[2], "RTSP/") {
		return "", "", false
	}
	return f[0], f[1], true
}

// parseStatusLine splits "RTSP/x.y CODE [REASON]".
func parseStatusLine(line []byte) (code int, reason string, ok bool) {
	s := string(line)
	if !strings.HasPrefix(s, "RTSP/") {
		return 0, "", false
	}
	rest := strings.TrimLeft(s[5:], "0123456789.")
	if len(rest) == len(s)-5 || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return 0, "", false
	}
	rest = strings.TrimLeft(rest, " \t")
	digits := rest
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		digits, reason = rest[:i], strings.TrimSpace(rest[i:])
	}
	if len(digits) != 3 {
		return 0, "", false
	}
	code, err := strconv.Atoi(digits)
	if err != nil || code < 100 {
		return 0, "", false
	}
	return code, reason, true
}

// isMethodToken reports whether s looks like an RTSP method name: 1 to 32
// characters of upper-case letters, digits, '_' or '-', starting with a letter.
func isMethodToken(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// truncate shortens b for error messages.
func truncate(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
