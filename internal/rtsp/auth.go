package rtsp

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Challenge is one authentication challenge from a WWW-Authenticate header
// (RFC 7235, with the Basic and Digest schemes of RFC 7617 and RFC 7616).
type Challenge struct {
	// Scheme is "Basic" or "Digest" (canonical case) or another scheme as
	// written.
	Scheme    string
	Realm     string
	Nonce     string
	Opaque    string
	Algorithm string   // as written; "" means MD5
	QOP       []string // lower-case tokens, e.g. ["auth", "auth-int"]
	Stale     bool
	// Params holds every parameter with a lower-cased name.
	Params map[string]string
}

// ParseChallenges parses WWW-Authenticate header values. Each value may hold
// several challenges ("Digest realm=..., nonce=..., Basic realm=...").
// Malformed parts are skipped; it never fails.
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		cur := -1
		i := 0
		for i < len(v) {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
				i++
			}
			start := i
			for i < len(v) && !strings.ContainsRune(" \t,=\"", rune(v[i])) {
				i++
			}
			if i == start {
				i++ // a stray '=' or '"'
				continue
			}
			token := v[start:i]
			j := skipBlanksStr(v, i)
			if j >= len(v) || v[j] != '=' {
				out = append(out, Challenge{Scheme: canonicalScheme(token), Params: map[string]string{}})
				cur = len(out) - 1
				continue
			}
			val, next := readParamValue(v, skipBlanksStr(v, j+1))
			i = next
			if cur >= 0 {
				out[cur].setParam(strings.ToLower(token), val)
			}
		}
	}
	return out
}

func skipBlanksStr(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// readParamValue reads a quoted-string (with backslash escapes) or a token
// starting at i; it returns the value and the index after it.
func readParamValue(s string, i int) (string, int) {
	if i < len(s) && s[i] == '"' {
		var b strings.Builder
		i++
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		return b.String(), min(i+1, len(s))
	}
	start := i
	for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	return s[start:i], i
}

func canonicalScheme(s string) string {
	switch {
	case strings.EqualFold(s, "digest"):
		return "Digest"
	case strings.EqualFold(s, "basic"):
		return "Basic"
	}
	return s
}

func (c *Challenge) setParam(name, val string) {
	c.Params[name] = val
	switch name {
	case "realm":
		c.Realm = val
	case "nonce":
		c.Nonce = val
	case "opaque":
		c.Opaque = val
	case "algorithm":
		c.Algorithm = val
	case "stale":
		c.Stale = strings.EqualFold(strings.TrimSpace(val), "true")
	case "qop":
		c.QOP = nil
		for _, q := range strings.Split(val, ",") {
			if q = strings.ToLower(strings.TrimSpace(q)); q != "" {
				c.QOP = append(c.QOP, q)
			}
		}
	}
}

// String describes the challenge for logs and errors (it holds no secret).
func (c Challenge) String() string {
	if c.Scheme != "Digest" {
		return fmt.Sprintf("%s realm=%q", c.Scheme, c.Realm)
	}
	alg := c.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	s := fmt.Sprintf("Digest realm=%q algorithm=%s", c.Realm, alg)
	if len(c.QOP) > 0 {
		s += " qop=" + strings.Join(c.QOP, ",")
	}
	return s
}

// digestAlg is a supported Digest algorithm.
type digestAlg struct {
	name string
	new  func() hash.Hash
	sess bool
	rank int
}

func lookupDigestAlg(name string) (digestAlg, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "", "MD5":
		return digestAlg{name: "MD5", new: md5.New, rank: 2}, true
	case "MD5-SESS":
		return digestAlg{name: "MD5-sess", new: md5.New, sess: true, rank: 2}, true
	case "SHA-256":
		return digestAlg{name: "SHA-256", new: sha256.New, rank: 3}, true
	case "SHA-256-SESS":
		return digestAlg{name: "SHA-256-sess", new: sha256.New, sess: true, rank: 3}, true
	}
	return digestAlg{}, false
}

func (a digestAlg) h(parts ...string) string {
	hh := a.new()
	for i, p := range parts {
		if i > 0 {
			hh.Write([]byte{':'})
		}
		io.WriteString(hh, p)
	}
	return hex.EncodeToString(hh.Sum(nil))
}

// digestResponse computes the Digest "response" value (RFC 7616 §3.4.1;
// RFC 2069 form when qop is empty).
func digestResponse(alg digestAlg, user, realm, pass, nonce, cnonce, nc, qop, method, uri string) string {
	ha1 := alg.h(user, realm, pass)
	if alg.sess {
		ha1 = alg.h(ha1, nonce, cnonce)
	}
	ha2 := alg.h(method, uri)
	if qop == "" {
		return alg.h(ha1, nonce, ha2)
	}
	return alg.h(ha1, nonce, nc, cnonce, qop, ha2)
}

// Authenticator answers a server's challenges with Authorization header
// values. It is safe for concurrent use. Neither its String form nor its
// errors contain the password.
type Authenticator struct {
	user, pass string
	ch         Challenge // chosen challenge
	basic      bool
	alg        digestAlg
	qop        string // "auth" or "" (RFC 2069)
	cnonce     func() string

	mu sync.Mutex
	nc uint32
}

// NewAuthenticator picks the strongest supported challenge: Digest SHA-256,
// then Digest MD5 (including the -sess variants), then Basic. Digest
// challenges with an unknown algorithm, no nonce, or only qop=auth-int are
// skipped. It errors when nothing usable is offered.
func NewAuthenticator(user, pass string, challenges []Challenge) (*Authenticator, error) {
	best := -1
	var a Authenticator
	for _, c := range challenges {
		switch c.Scheme {
		case "Basic":
			if best < 1 {
				best = 1
				a = Authenticator{ch: c, basic: true}
			}
		case "Digest":
			alg, ok := lookupDigestAlg(c.Algorithm)
			if !ok || c.Nonce == "" {
				continue
			}
			qop := ""
			if len(c.QOP) > 0 {
				for _, q := range c.QOP {
					if q == "auth" {
						qop = "auth"
					}
				}
				if qop == "" {
					continue // only auth-int: we would need the body hash
				}
			}
			if alg.rank > best {
				best = alg.rank
				a = Authenticator{ch: c, alg: alg, qop: qop}
			}
		}
	}
	if best < 0 {
		if len(challenges) == 0 {
			return nil, errors.New("rtsp auth: 401 without a usable WWW-Authenticate challenge")
		}
		offered := make([]string, len(challenges))
		for i, c := range challenges {
			offered[i] = c.String()
		}
		return nil, fmt.Errorf("rtsp auth: no supported challenge among [%s]", strings.Join(offered, "; "))
	}
	a.user, a.pass = user, pass
	a.cnonce = randomCnonce
	return &a, nil
}

func randomCnonce() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Authorization returns the Authorization header value for a request with
// the given method and request URI (exactly as in the request line). With
// qop=auth each call uses a fresh cnonce and the next nonce count.
func (a *Authenticator) Authorization(method, uri string) string {
	if a.basic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.user+":"+a.pass))
	}
	var nc, cnonce string
	if a.qop != "" || a.alg.sess {
		cnonce = a.cnonce()
	}
	if a.qop != "" {
		a.mu.Lock()
		a.nc++
		nc = fmt.Sprintf("%08x", a.nc)
		a.mu.Unlock()
	}
	resp := digestResponse(a.alg, a.user, a.ch.Realm, a.pass, a.ch.Nonce, cnonce, nc, a.qop, method, uri)
	var b strings.Builder
	b.WriteString("Digest username=")
	writeQuoted(&b, a.user)
	b.WriteString(", realm=")
	writeQuoted(&b, a.ch.Realm)
	b.WriteString(", nonce=")
	writeQuoted(&b, a.ch.Nonce)
	b.WriteString(", uri=")
	writeQuoted(&b, uri)
	b.WriteString(", response=")
	writeQuoted(&b, resp)
	if a.ch.Algorithm != "" {
		b.WriteString(", algorithm=" + a.alg.name)
	}
	if a.ch.Opaque != "" {
		b.WriteString(", opaque=")
		writeQuoted(&b, a.ch.Opaque)
	}
	if a.qop != "" {
		b.WriteString(", qop=" + a.qop + ", nc=" + nc + ", cnonce=")
		writeQuoted(&b, cnonce)
	} else if cnonce != "" {
		b.WriteString(", cnonce=")
		writeQuoted(&b, cnonce)
	}
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		if s[i] == '\r' || s[i] == '\n' {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// Scheme returns "Basic" or "Digest <algorithm>".
func (a *Authenticator) Scheme() string {
	if a.basic {
		return "Basic"
	}
	return "Digest " + a.alg.name
}

// String describes the authenticator without the password.
func (a *Authenticator) String() string {
	return fmt.Sprintf("rtsp.Authenticator{user=%q %s realm=%q}", a.user, a.Scheme(), a.ch.Realm)
}

// GoString is String, so %#v does not print the password either.
func (a *Authenticator) GoString() string { return a.String() }

// RedactURL returns u with the password of its user information replaced by
// "xxxxx" ("rtsp://admin:xxxxx@cam/"), and the values of query parameters
// that carry credentials too ("?user=admin&password=xxxxx": names holding
// pass, pw, token, key, auth or secret, in any case). Strings that do not
// parse as URLs (messages holding URLs) are redacted heuristically. It
// never returns the password.
func RedactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		if _, has := p.User.Password(); !has {
			return redactQuery(u)
		}
		return redactQuery(p.Redacted())
	}
	i := strings.Index(u, "://")
	if i < 0 {
		return redactQuery(u)
	}
	rest := u[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return redactQuery(u)
	}
	colon := strings.IndexByte(rest[:at], ':')
	if colon < 0 {
		return redactQuery(u)
	}
	return redactQuery(u[:i+3] + rest[:colon+1] + "xxxxx" + rest[at:])
}

// DigestServer checks RTSP client credentials for one user (server side of
// RFC 7616 Digest, optionally RFC 7617 Basic). Nonces are stateless: they
// carry their issue time and an HMAC under a per-server random key, expire
// after NonceTTL, and are not tracked for replay within that window.
// Configure the fields before first use; afterwards methods are safe for
// concurrent use. String never shows the password.
type DigestServer struct {
	Realm string
	User  string
	Pass  string
	// SHA256 makes Challenges offer SHA-256 before MD5.
	SHA256 bool
	// AllowBasic accepts Basic credentials and makes Challenges offer Basic.
	// Basic sends the password in clear; leave it off unless needed.
	AllowBasic bool
	// NonceTTL is how long a nonce is accepted (default 5 minutes).
	NonceTTL time.Duration
	// Rand is the random source for keys and nonces (default crypto/rand).
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu  sync.Mutex
	key []byte
}

// NewDigestServer returns a DigestServer with default settings.
func NewDigestServer(realm, user, pass string) *DigestServer {
	return &DigestServer{Realm: realm, User: user, Pass: pass}
}

// String describes the server without the password.
func (s *DigestServer) String() string {
	return fmt.Sprintf("rtsp.DigestServer{realm=%q user=%q}", s.Realm, s.User)
}

// GoString is String, so %#v does not print the password either.
func (s *DigestServer) GoString() string { return s.String() }

func (s *DigestServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *DigestServer) ttl() time.Duration {
	if s.NonceTTL > 0 {
		return s.NonceTTL
	}
	return 5 * time.Minute
}

func (s *DigestServer) random(b []byte) {
	if s.Rand != nil {
		if _, err := io.ReadFull(s.Rand, b); err == nil {
			return
		}
	}
	rand.Read(b)
}

// macKey returns the HMAC key, creating it on first use.
func (s *DigestServer) macKey() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		s.key = make([]byte, 32)
		s.random(s.key)
	}
	return s.key
}

// nonce returns base64url(time(8) | random(8) | hmac(16)).
func (s *DigestServer) nonce() string {
	key := s.macKey()
	var b [32]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().UnixNano()))
	s.mu.Lock()
	s.random(b[8:16])
	s.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether n was issued by s, and whether it has expired.
func (s *DigestServer) checkNonce(n string) (ours, expired bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 32 {
		return false, false
	}
	m := hmac.New(sha256.New, s.macKey())
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := s.now().Sub(issued)
	return true, age < -time.Minute || age > s.ttl()
}

// Challenge returns one WWW-Authenticate value: Digest, MD5, qop=auth, with
// a fresh nonce.
func (s *DigestServer) Challenge() string { return s.digestChallenge("MD5", false) }

// Challenges returns the WWW-Authenticate values to send, strongest first:
// SHA-256 Digest (if SHA256), MD5 Digest, Basic (if AllowBasic). stale marks
// the Digest ones stale=true (after an expired nonce, so clients retry
// without asking the user).
func (s *DigestServer) Challenges(stale bool) []string {
	var out []string
	if s.SHA256 {
		out = append(out, s.digestChallenge("SHA-256", stale))
	}
	out = append(out, s.digestChallenge("MD5", stale))
	if s.AllowBasic {
		var b strings.Builder
		b.WriteString("Basic realm=")
		writeQuoted(&b, s.Realm)
		out = append(out, b.String())
	}
	return out
}

func (s *DigestServer) digestChallenge(alg string, stale bool) string {
	var b strings.Builder
	b.WriteString("Digest realm=")
	writeQuoted(&b, s.Realm)
	b.WriteString(", nonce=\"" + s.nonce() + "\", algorithm=" + alg + ", qop=\"auth\"")
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}

// Verify reports whether authorization (an Authorization header value)
// carries valid credentials for method. The uri parameter is not compared
// with the request line; use Check for that.
func (s *DigestServer) Verify(method, authorization string) bool {
	ok, _ := s.Check(method, "", authorization)
	return ok
}

// BasicOK reports whether authorization is valid Basic credentials (only
// when AllowBasic is set).
func (s *DigestServer) BasicOK(authorization string) bool {
	if !s.AllowBasic {
		return false
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return false
	}
	want := s.User + ":" + s.Pass
	return subtle.ConstantTimeCompare(raw, []byte(want)) == 1
}

// Check verifies authorization for a request with the given method and
// request URI (uri "" skips the URI comparison). It checks the username,
// realm, that the nonce was issued by s and has not expired, the uri, and
// the response (MD5, SHA-256 and their -sess variants; with or without
// qop=auth). stale is true when everything was right except an expired
// nonce: answer 401 with Challenges(true).
func (s *DigestServer) Check(method, uri, authorization string) (ok, stale bool) {
	if s.BasicOK(authorization) {
		return true, false
	}
	cs := ParseChallenges([]string{authorization})
	if len(cs) != 1 || cs[0].Scheme != "Digest" {
		return false, false
	}
	p := cs[0].Params
	alg, known := lookupDigestAlg(p["algorithm"])
	if !known || alg.sess && p["cnonce"] == "" {
		return false, false
	}
	if subtle.ConstantTimeCompare([]byte(p["username"]), []byte(s.User)) != 1 || p["realm"] != s.Realm {
		return false, false
	}
	if uri != "" && !sameRequestURI(p["uri"], uri) {
		return false, false
	}
	ours, expired := s.checkNonce(p["nonce"])
	if !ours {
		return false, false
	}
	qop := strings.ToLower(p["qop"])
	if qop != "" && (qop != "auth" || p["nc"] == "" || p["cnonce"] == "") {
		return false, false
	}
	want := digestResponse(alg, s.User, s.Realm, s.Pass, p["nonce"], p["cnonce"], p["nc"], qop, method, p["uri"])
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return false, false
	}
	if expired {
		return false, true
	}
	return true, false
}

// sameRequestURI compares the Digest uri parameter with the request URI,
// accepting an absolute URL on one side and its path (and query) on the
// other.
func sameRequestURI(param, reqURI string) bool {
	if param == reqURI {
		return true
	}
	a, err1 := url.Parse(param)
	b, err2 := url.Parse(reqURI)
	if err1 != nil || err2 != nil {
		return false
	}
	if a.Host != "" && b.Host != "" && !strings.EqualFold(a.Host, b.Host) {
		return false
	}
	return strings.TrimSuffix(a.RequestURI(), "/") == strings.TrimSuffix(b.RequestURI(), "/")
}
