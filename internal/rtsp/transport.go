package rtsp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Transport is one transport specification of a Transport header
// (RFC 2326 §12.39), e.g. "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=4CACC3D1".
// Pairs have a Has flag because 0 is a valid channel.
type Transport struct {
	// Protocol is the transport/profile/lower-transport in upper case:
	// "RTP/AVP" (UDP), "RTP/AVP/UDP" or "RTP/AVP/TCP".
	Protocol  string
	Unicast   bool
	Multicast bool
	// Destination and Source are addresses as written (may be empty).
	Destination string
	Source      string

	HasInterleaved bool
	Interleaved    [2]int // channels 0-255
	HasClientPort  bool
	ClientPort     [2]int
	HasServerPort  bool
	ServerPort     [2]int
	HasPort        bool // multicast port pair
	Port           [2]int
	HasTTL         bool
	TTL            int

	HasSSRC bool
	SSRC    uint32
	// Mode is the upper-case mode without quotes ("PLAY", "RECORD"), or ""
	// when absent.
	Mode string
}

// IsTCP reports whether the lower transport is TCP (interleaved).
func (t Transport) IsTCP() bool { return strings.HasSuffix(t.Protocol, "/TCP") }

// ParseTransport parses a single transport specification. It accepts any
// case, spaces around parameters and values (Hikvision sends "ssrc= d6d6627"),
// quoted values, and parameters in any order; unknown parameters are ignored.
// It returns an error for an empty protocol or an unparsable channel or port
// pair. An SSRC that is not hexadecimal is ignored (HasSSRC false).
func ParseTransport(s string) (Transport, error) {
	var t Transport
	parts := splitQuoted(s, ';')
	if len(parts) == 0 || strings.TrimSpace(parts[0]) == "" || strings.Contains(parts[0], "=") {
		return t, fmt.Errorf("transport %q: no protocol", truncate([]byte(s)))
	}
	t.Protocol = strings.ToUpper(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		key, val, _ := strings.Cut(p, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = unquote(strings.TrimSpace(val))
		var err error
		switch key {
		case "unicast":
			t.Unicast = true
		case "multicast":
			t.Multicast = true
		case "destination":
			t.Destination = val
		case "source":
			t.Source = val
		case "interleaved":
			t.Interleaved, err = parsePair(val, 255)
			t.HasInterleaved = err == nil
		case "client_port":
			t.ClientPort, err = parsePair(val, 65535)
			t.HasClientPort = err == nil
		case "server_port":
			t.ServerPort, err = parsePair(val, 65535)
			t.HasServerPort = err == nil
		case "port":
			t.Port, err = parsePair(val, 65535)
			t.HasPort = err == nil
		case "ttl":
			n, perr := strconv.Atoi(val)
			if perr == nil && n >= 0 && n <= 255 {
				t.TTL, t.HasTTL = n, true
			}
		case "ssrc":
			t.SSRC, t.HasSSRC = parseSSRC(val)
		case "mode":
			t.Mode = strings.ToUpper(val)
		}
		if err != nil {
			return Transport{}, fmt.Errorf("transport %q: %s: %w", truncate([]byte(s)), key, err)
		}
	}
	return t, nil
}

// ParseTransports parses a Transport header that lists alternatives
// separated by commas, in the client's order of preference. Invalid
// alternatives are dropped; it fails only when none is valid.
func ParseTransports(s string) ([]Transport, error) {
	var out []Transport
	var firstErr error
	for _, spec := range splitQuoted(s, ',') {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		t, err := ParseTransport(spec)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = errors.New("transport: empty header")
		}
		return nil, firstErr
	}
	return out, nil
}

// String formats t as a Transport header value.
func (t Transport) String() string {
	b := make([]byte, 0, 96)
	b = append(b, t.Protocol...)
	if t.Unicast {
		b = append(b, ";unicast"...)
	}
	if t.Multicast {
		b = append(b, ";multicast"...)
	}
	if t.Destination != "" {
		b = append(b, ";destination="...)
		b = append(b, t.Destination...)
	}
	if t.Source != "" {
		b = append(b, ";source="...)
		b = append(b, t.Source...)
	}
	b = appendPair(b, t.HasInterleaved, ";interleaved=", t.Interleaved)
	if t.HasTTL {
		b = append(b, ";ttl="...)
		b = strconv.AppendInt(b, int64(t.TTL), 10)
	}
	b = appendPair(b, t.HasPort, ";port=", t.Port)
	b = appendPair(b, t.HasClientPort, ";client_port=", t.ClientPort)
	b = appendPair(b, t.HasServerPort, ";server_port=", t.ServerPort)
	if t.HasSSRC {
		b = fmt.Appendf(b, ";ssrc=%08X", t.SSRC)
	}
	if t.Mode != "" {
		b = append(b, ";mode="...)
		b = append(b, t.Mode...)
	}
	return string(b)
}

func appendPair(b []byte, has bool, key string, p [2]int) []byte {
	if !has {
		return b
	}
	b = append(b, key...)
	b = strconv.AppendInt(b, int64(p[0]), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(p[1]), 10)
}

// parsePair parses "a-b" or "a" (meaning a, a+1) with 0 <= a, b <= max.
func parsePair(v string, max int) ([2]int, error) {
	a, b, hasB := strings.Cut(v, "-")
	x, err := strconv.Atoi(strings.TrimSpace(a))
	if err != nil || x < 0 || x > max {
		return [2]int{}, fmt.Errorf("bad value %q", truncate([]byte(v)))
	}
	y := x + 1
	if hasB {
		y, err = strconv.Atoi(strings.TrimSpace(b))
		if err != nil || y < 0 || y > max {
			return [2]int{}, fmt.Errorf("bad value %q", truncate([]byte(v)))
		}
	} else if y > max {
		y = x
	}
	return [2]int{x, y}, nil
}

// parseSSRC reads up to eight hexadecimal digits, with inner or surrounding
// spaces removed; a longer all-decimal value is read as decimal.
func parseSSRC(v string) (uint32, bool) {
	v = strings.ReplaceAll(v, " ", "")
	v = strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
	if v == "" {
		return 0, false
	}
	if len(v) <= 8 {
		if n, err := strconv.ParseUint(v, 16, 32); err == nil {
			return uint32(n), true
		}
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return uint32(n), true
	}
	return 0, false
}

// DefaultSessionTimeout is the session timeout assumed when the Session
// header gives none (RFC 2326 §12.37).
const DefaultSessionTimeout = 60 * time.Second

// ParseSession splits a Session header value ("634214675641;timeout=60",
// "9a90de54; timeout=120") into the session id and its timeout. The timeout
// is DefaultSessionTimeout when absent or invalid, and at most 24 hours.
func ParseSession(value string) (id string, timeout time.Duration) {
	parts := strings.Split(value, ";")
	id = strings.TrimSpace(parts[0])
	timeout = DefaultSessionTimeout
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		n, err := strconv.Atoi(unquote(strings.TrimSpace(v)))
		if err == nil && n > 0 {
			timeout = min(time.Duration(n)*time.Second, 24*time.Hour)
		}
	}
	return id, timeout
}

// RTPInfo is one stream entry of a PLAY response's RTP-Info header
// (RFC 2326 §12.33). URL is as written: it may be relative to the base URL
// (e.g. "trackID=1"); see ResolveControl.
type RTPInfo struct {
	URL        string
	Seq        uint16
	HasSeq     bool
	RTPTime    uint32
	HasRTPTime bool
	SSRC       uint32 // Reolink adds ssrc=
	HasSSRC    bool
}

// ParseRTPInfo parses an RTP-Info header value. It never fails: entries or
// values it cannot read are left out, so a camera that sends "rtptime=-1"
// (a known quirk) yields HasRTPTime false instead of an error.
func ParseRTPInfo(value string) []RTPInfo {
	var out []RTPInfo
	for _, entry := range splitQuoted(value, ',') {
		var info RTPInfo
		seen := false
		for _, p := range splitQuoted(entry, ';') {
			k, v, _ := strings.Cut(p, "=")
			v = unquote(strings.TrimSpace(v))
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "url":
				info.URL, seen = v, true
			case "seq":
				if n, err := strconv.ParseUint(v, 10, 16); err == nil {
					info.Seq, info.HasSeq, seen = uint16(n), true, true
				}
			case "rtptime":
				if n, err := strconv.ParseUint(v, 10, 32); err == nil {
					info.RTPTime, info.HasRTPTime, seen = uint32(n), true, true
				}
			case "ssrc":
				if n, ok := parseSSRC(v); ok {
					info.SSRC, info.HasSSRC, seen = n, true, true
				}
			}
		}
		if seen {
			out = append(out, info)
		}
	}
	return out
}

// NPTRange is a Range header in normal play time (RFC 2326 §3.6).
type NPTRange struct {
	Now    bool          // the range starts at "now" (live)
	Start  time.Duration // start when !Now
	HasEnd bool
	End    time.Duration
}

// ParseRange parses "npt=START-[END]" where times are "now", seconds
// ("596.48") or "h:mm:ss[.frac]". Other range units are an error.
func ParseRange(value string) (NPTRange, error) {
	var r NPTRange
	v := strings.TrimSpace(value)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i] // ";time=..." suffix
	}
	unit, spec, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "npt") {
		return r, fmt.Errorf("range %q: not npt", truncate([]byte(value)))
	}
	start, end, ok := strings.Cut(spec, "-")
	if !ok {
		return r, fmt.Errorf("range %q: no '-'", truncate([]byte(value)))
	}
	start, end = strings.TrimSpace(start), strings.TrimSpace(end)
	var err error
	if strings.EqualFold(start, "now") {
		r.Now = true
	} else if r.Start, err = parseNPT(start); err != nil {
		return NPTRange{}, fmt.Errorf("range %q: %w", truncate([]byte(value)), err)
	}
	if end != "" {
		if r.End, err = parseNPT(end); err != nil {
			return NPTRange{}, fmt.Errorf("range %q: %w", truncate([]byte(value)), err)
		}
		r.HasEnd = true
	}
	return r, nil
}

func parseNPT(s string) (time.Duration, error) {
	var secs float64
	fields := strings.Split(s, ":")
	if len(fields) > 3 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	for i, f := range fields {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || x < 0 || x > 1e9 || (i < len(fields)-1 && strings.Contains(f, ".")) {
			return 0, fmt.Errorf("bad time %q", s)
		}
		secs = secs*60 + x
	}
	if secs > 1e9 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
