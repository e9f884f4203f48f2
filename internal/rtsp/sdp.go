package rtsp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/custos-nvr/custos/internal/media"
)

// MaxSDPTracks bounds the media sections ParseSDP accepts.
const MaxSDPTracks = 64

// Description is what a DESCRIBE response says about a presentation.
type Description struct {
	SessionName string
	// Control is the absolute aggregate control URL (for PLAY, TEARDOWN):
	// the session-level a=control resolved against the base, or the base
	// itself when absent or "*". Empty only when no base was given.
	Control string
	Tracks  []Track
}

// Track is one media section of an SDP description.
type Track struct {
	// Media is the m= media type in lower case: "video", "audio",
	// "application" (anything after a '/' is dropped).
	Media string
	// Codec is a known media.Codec or the lower-cased encoding name.
	// ONVIF metadata is media.CodecMetadata; callers usually skip it.
	Codec       media.Codec
	PayloadType uint8
	ClockRate   int
	// Channels is the audio channel count (1 when unspecified), 0 for video.
	Channels int
	// Control is the absolute SETUP URL of the track (see ResolveControl).
	Control string
	// Params are the parameter sets from the fmtp line (H.264
	// sprop-parameter-sets, H.265 sprop-vps/sps/pps), possibly incomplete.
	Params media.ParamSets
	// PacketizationMode is the fmtp packetization-mode (0 when absent).
	PacketizationMode int
	// AACConfig is the AudioSpecificConfig from an mpeg4-generic config=.
	AACConfig []byte
	// Fmtp holds the fmtp parameters with lower-cased keys.
	Fmtp map[string]string
	// Framerate is from a=framerate or a=x-framerate (0 when unknown).
	Framerate float64
}

// ParseSDP parses an SDP session description (RFC 4566) as cameras send it.
// It is deliberately lenient: any line order, missing v=/o=/s=/t= lines, LF
// or CRLF, trailing whitespace and unknown or malformed lines are accepted.
// Relative control URLs are resolved against base (left as written when base
// is nil). It errors only when there is no usable media section or more than
// MaxSDPTracks. It does no I/O.
func ParseSDP(body []byte, base *url.URL) (Description, error) {
	var d Description
	var sessionControl string
	var hasSessionControl bool
	var tr *sdpTrack
	var tracks []*sdpTrack
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		line = bytes.TrimLeft(line, " \t")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		typ, val := line[0], string(line[2:])
		switch typ {
		case 's':
			if tr == nil {
				d.SessionName = val
			}
		case 'm':
			if len(tracks) >= MaxSDPTracks {
				return Description{}, fmt.Errorf("sdp: more than %d media sections", MaxSDPTracks)
			}
			tr = parseMediaLine(val)
			tracks = append(tracks, tr)
		case 'a':
			name, value, _ := strings.Cut(val, ":")
			name = strings.ToLower(strings.TrimSpace(name))
			if tr == nil {
				if name == "control" {
					sessionControl, hasSessionControl = strings.TrimSpace(value), true
				}
				continue
			}
			tr.attribute(name, value)
		}
	}
	baseStr := ""
	if base != nil {
		baseStr = base.String()
	}
	d.Control = baseStr
	if hasSessionControl {
		d.Control = ResolveControl(baseStr, sessionControl)
	}
	// Track controls resolve against the base (RFC 2326 C.1.1), not the
	// session control; without a base, an absolute session control serves.
	trackBase := baseStr
	if trackBase == "" && hasSessionControl && isAbsoluteURL(sessionControl) {
		trackBase = sessionControl
	}
	for _, t := range tracks {
		if !t.valid {
			continue
		}
		d.Tracks = append(d.Tracks, t.finish(trackBase))
	}
	if len(d.Tracks) == 0 {
		return Description{}, errors.New("sdp: no media section")
	}
	return d, nil
}

// sdpTrack accumulates one media section.
type sdpTrack struct {
	valid     bool
	media     string
	pt        uint8
	hasPT     bool
	control   string
	rtpmaps   []sdpRtpmap
	fmtps     []sdpFmtp
	framerate float64
	xrate     float64
}

type sdpRtpmap struct {
	pt       uint8
	encoding string
	clock    int
	channels int
}

type sdpFmtp struct {
	pt     uint8
	hasPT  bool
	params string
}

// parseMediaLine reads "video 0 RTP/AVP 96 [97...]". A non-numeric format
// (TP-Link's "smart/1/90000") leaves the payload type to the first rtpmap.
func parseMediaLine(val string) *sdpTrack {
	f := strings.Fields(val)
	t := &sdpTrack{}
	if len(f) == 0 {
		return t
	}
	t.valid = true
	t.media = strings.ToLower(f[0])
	if i := strings.IndexByte(t.media, '/'); i >= 0 {
		t.media = t.media[:i]
	}
	if len(f) >= 4 {
		if n, err := strconv.ParseUint(f[3], 10, 8); err == nil && n < 128 {
			t.pt, t.hasPT = uint8(n), true
		}
	}
	return t
}

func (t *sdpTrack) attribute(name, value string) {
	value = strings.TrimSpace(value)
	switch name {
	case "control":
		t.control = value
	case "rtpmap":
		ptStr, rest, _ := strings.Cut(value, " ")
		pt, err := strconv.ParseUint(strings.TrimSpace(ptStr), 10, 8)
		if err != nil || pt >= 128 {
			return
		}
		parts := strings.Split(strings.TrimSpace(rest), "/")
		m := sdpRtpmap{pt: uint8(pt), encoding: strings.TrimSpace(parts[0])}
		if len(parts) > 1 {
			m.clock, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
			m.clock = max(m.clock, 0)
		}
		if len(parts) > 2 {
			m.channels, _ = strconv.Atoi(strings.TrimSpace(parts[2]))
			m.channels = min(max(m.channels, 0), 255)
		}
		t.rtpmaps = append(t.rtpmaps, m)
	case "fmtp":
		ptStr, rest, _ := strings.Cut(value, " ")
		f := sdpFmtp{params: rest}
		if pt, err := strconv.ParseUint(strings.TrimSpace(ptStr), 10, 8); err == nil {
			f.pt, f.hasPT = uint8(pt), true
		}
		t.fmtps = append(t.fmtps, f)
	case "framerate", "x-framerate":
		// The last valid value wins: h264dvr sends "0S" and then "25".
		if r, err := strconv.ParseFloat(value, 64); err == nil && r > 0 && r < 1000 {
			if name == "framerate" {
				t.framerate = r
			} else {
				t.xrate = r
			}
		}
	}
}

// finish turns the accumulated section into a Track.
func (t *sdpTrack) finish(base string) Track {
	tr := Track{Media: t.media, Control: ResolveControl(base, t.control)}
	if !t.hasPT && len(t.rtpmaps) > 0 {
		t.pt, t.hasPT = t.rtpmaps[0].pt, true
	}
	tr.PayloadType = t.pt
	var m *sdpRtpmap
	for i := range t.rtpmaps {
		if t.rtpmaps[i].pt == t.pt {
			m = &t.rtpmaps[i]
			break
		}
	}
	if m == nil && t.pt >= 96 && len(t.rtpmaps) == 1 {
		m = &t.rtpmaps[0] // dynamic type whose rtpmap names another number
	}
	if m != nil {
		tr.Codec = codecFromEncoding(m.encoding)
		tr.ClockRate = m.clock
		tr.Channels = m.channels
	} else {
		tr.Codec, tr.ClockRate, tr.Channels = staticPayload(t.pt)
	}
	if tr.Media == "audio" && tr.Channels == 0 {
		tr.Channels = 1
	}
	if tr.Media == "video" {
		tr.Channels = 0
	}
	if tr.Media == "application" && strings.Contains(string(tr.Codec), "onvif") {
		tr.Codec = media.CodecMetadata
	}
	tr.Framerate = t.framerate
	if tr.Framerate == 0 {
		tr.Framerate = t.xrate
	}
	var params string
	found := false
	for _, f := range t.fmtps {
		if f.hasPT && f.pt == t.pt {
			params, found = f.params, true
			break
		}
	}
	if !found && len(t.fmtps) == 1 {
		params = t.fmtps[0].params
	}
	tr.Fmtp = parseFmtp(params)
	tr.applyFmtp()
	return tr
}

// codecFromEncoding maps an rtpmap encoding name to a codec.
func codecFromEncoding(enc string) media.Codec {
	e := strings.ToLower(enc)
	switch e {
	case "h264":
		return media.CodecH264
	case "h265", "hevc":
		return media.CodecH265
	case "mpeg4-generic":
		return media.CodecAAC
	case "pcma":
		return media.CodecPCMA
	case "pcmu":
		return media.CodecPCMU
	case "opus":
		return media.CodecOpus
	case "vnd.onvif.metadata":
		return media.CodecMetadata
	}
	return media.Codec(e)
}

// staticPayload returns the RFC 3551 static payload types cameras use
// without an rtpmap.
func staticPayload(pt uint8) (media.Codec, int, int) {
	switch pt {
	case 0:
		return media.CodecPCMU, 8000, 1
	case 3:
		return "gsm", 8000, 1
	case 8:
		return media.CodecPCMA, 8000, 1
	case 9:
		return "g722", 8000, 1
	case 14:
		return "mpa", 90000, 0
	case 26:
		return "jpeg", 90000, 0
	case 33:
		return "mp2t", 90000, 0
	}
	return "", 0, 0
}

// parseFmtp splits "k=v;k2=v2" (spaces around separators allowed, keys
// lower-cased, later duplicates ignored).
func parseFmtp(s string) map[string]string {
	m := map[string]string{}
	for _, p := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(p, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		if _, dup := m[k]; !dup {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// applyFmtp fills the typed fields from Fmtp.
func (tr *Track) applyFmtp() {
	if v, ok := tr.Fmtp["packetization-mode"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 2 {
			tr.PacketizationMode = n
		}
	}
	switch tr.Codec {
	case media.CodecH264:
		for _, b64 := range strings.Split(tr.Fmtp["sprop-parameter-sets"], ",") {
			for _, nalu := range decodeParamSet(b64) {
				switch nalu[0] & 0x1f {
				case 7:
					if tr.Params.SPS == nil {
						tr.Params.SPS = nalu
					}
				case 8:
					if tr.Params.PPS == nil {
						tr.Params.PPS = nalu
					}
				}
			}
		}
	case media.CodecH265:
		tr.Params.VPS = firstNALU(tr.Fmtp["sprop-vps"])
		tr.Params.SPS = firstNALU(tr.Fmtp["sprop-sps"])
		tr.Params.PPS = firstNALU(tr.Fmtp["sprop-pps"])
	case media.CodecAAC:
		if cfg, err := hex.DecodeString(tr.Fmtp["config"]); err == nil && len(cfg) > 0 {
			tr.AACConfig = cfg
		}
	}
}

func firstNALU(list string) []byte {
	for _, b64 := range strings.Split(list, ",") {
		if n := decodeParamSet(b64); len(n) > 0 {
			return n[0]
		}
	}
	return nil
}

// decodeParamSet decodes one base64 parameter set (padding optional). Some
// cameras wrap it in Annex B start codes (the "gw" boxes append 00 00 00 01);
// those are stripped and any embedded NAL units are split apart.
func decodeParamSet(b64 string) [][]byte {
	b64 = strings.TrimRight(strings.TrimSpace(b64), "=")
	if b64 == "" {
		return nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, n := range splitAnnexB(raw) {
		if len(n) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// splitAnnexB splits b at 00 00 01 start codes, dropping the zero bytes
// around them (trailing zeros are never part of a parameter set NAL unit).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return append(out, bytes.TrimRight(b, "\x00"))
		}
		out = append(out, bytes.TrimRight(b[:i], "\x00"))
		b = b[i+3:]
	}
}

// BaseURL returns the URL relative controls of a DESCRIBE response resolve
// against: Content-Base, else Content-Location, else the request URL
// (RFC 2326 §C.1.1). A header that is not an absolute URL (Anjvision sends
// "192.168.1.10:554/stream0/") is skipped, and a loopback or unspecified
// host in it (h264dvr says 127.0.0.1) is replaced by the request URL's host
// and port. User information is removed. It errors only when requestURL is
// not an absolute URL.
func BaseURL(requestURL string, resp *Response) (*url.URL, error) {
	var candidates []string
	if resp != nil {
		candidates = append(candidates, resp.Header.Get("Content-Base"), resp.Header.Get("Content-Location"))
	}
	req, err := url.Parse(requestURL)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: does not parse", RedactURL(requestURL))
	}
	if req.Scheme == "" || req.Host == "" {
		return nil, fmt.Errorf("base URL %q: not absolute", RedactURL(requestURL))
	}
	req.User = nil
	for _, c := range candidates {
		c = strings.TrimSpace(c)
		if c == "" || !isAbsoluteURL(c) {
			continue
		}
		if u, err := url.Parse(c); err == nil && u.Host != "" {
			u.User = nil
			if isLocalHost(u.Hostname()) && !isLocalHost(req.Hostname()) {
				u.Host = req.Host // h264dvr announces rtsp://127.0.0.1:554/...
			}
			return u, nil
		}
	}
	return req, nil
}

// isLocalHost reports whether h is a loopback or unspecified address, which
// a camera cannot mean as its address for a remote client.
func isLocalHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// ResolveControl makes a control attribute absolute the way cameras expect,
// which is not RFC 3986 reference resolution:
//   - "" or "*" gives base;
//   - an absolute URL ("rtsp://...") is used as is;
//   - otherwise control is appended to base with a '/' between them unless
//     base already ends with one. When base has a query and does not end
//     with '/' (gw boxes: ".../H264?channel=1&...", control "video"), the
//     control is appended to the path and the query kept after it
//     (".../H264/video?channel=1&..."); when the query itself ends with '/'
//     (Dahua: "...?channel=1&subtype=1/"), the strings are concatenated.
//
// With an empty base, control is returned unchanged.
func ResolveControl(base, control string) string {
	control = strings.TrimSpace(control)
	if control == "" || control == "*" {
		return base
	}
	if isAbsoluteURL(control) || base == "" {
		return control
	}
	if strings.HasSuffix(base, "/") {
		return base + control
	}
	if q := strings.IndexByte(base, '?'); q >= 0 {
		path, query := base[:q], base[q:]
		if !strings.HasSuffix(path, "/") {
			path += "/"
		}
		if strings.Contains(control, "?") {
			return path + control // the control's own query replaces the base's
		}
		return path + control + query
	}
	return base + "/" + control
}

// isAbsoluteURL reports whether s starts with a URL scheme and "://".
func isAbsoluteURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
