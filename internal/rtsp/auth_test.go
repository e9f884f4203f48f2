package rtsp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// challengeCases feed TestParseChallenges and FuzzParseChallenges.
var challengeCases = []struct {
	in   []string
	want []Challenge // Params not compared
}{
	{in: []string{`Digest realm="Surveillance Server", nonce="98481030"`},
		want: []Challenge{{Scheme: "Digest", Realm: "Surveillance Server", Nonce: "98481030"}}},
	{in: []string{`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`},
		want: []Challenge{{Scheme: "Digest", Realm: "testrealm@host.com", QOP: []string{"auth", "auth-int"},
			Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", Opaque: "5ccc069c403ebaf9f0171e9517f40e41"}}},
	{in: []string{`Basic realm="cam"`, `digest realm="cam", nonce=abc, algorithm=MD5-sess, stale=TRUE`},
		want: []Challenge{{Scheme: "Basic", Realm: "cam"}, {Scheme: "Digest", Realm: "cam", Nonce: "abc", Algorithm: "MD5-sess", Stale: true}}},
	{in: []string{`Digest realm="a, \"b\"", nonce="n1", algorithm=SHA-256, Basic realm="c", Digest realm=d,nonce=n2`},
		want: []Challenge{{Scheme: "Digest", Realm: `a, "b"`, Nonce: "n1", Algorithm: "SHA-256"}, {Scheme: "Basic", Realm: "c"},
			{Scheme: "Digest", Realm: "d", Nonce: "n2"}}},
	{in: []string{``, `=,"`, `Negotiate`}, want: []Challenge{{Scheme: "Negotiate"}}},
}

func TestParseChallenges(t *testing.T) {
	for _, tc := range challengeCases {
		got := ParseChallenges(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %d challenges %+v", tc.in, len(got), got)
			continue
		}
		for i, w := range tc.want {
			g := got[i]
			if g.Scheme != w.Scheme || g.Realm != w.Realm || g.Nonce != w.Nonce || g.Opaque != w.Opaque ||
				g.Algorithm != w.Algorithm || g.Stale != w.Stale || strings.Join(g.QOP, ",") != strings.Join(w.QOP, ",") {
				t.Errorf("%q #%d:\n got %+v\nwant %+v", tc.in, i, g, w)
			}
		}
	}
}

func fixedCnonce(a *Authenticator, c string) { a.cnonce = func() string { return c } }

// TestDigestVectors checks the worked examples of RFC 2617 §3.5 and
// RFC 7616 §3.9.1.
func TestDigestVectors(t *testing.T) {
	// RFC 2617: MD5, qop=auth.
	a, err := NewAuthenticator("Mufasa", "Circle Of Life", ParseChallenges([]string{challengeCases[1].in[0]}))
	if err != nil {
		t.Fatal(err)
	}
	fixedCnonce(a, "0a4f113b")
	h := a.Authorization("GET", "/dir/index.html")
	for _, want := range []string{`response="6629fae49393a05397450978507c4ef1"`, `qop=auth`, `nc=00000001`, `cnonce="0a4f113b"`,
		`opaque="5ccc069c403ebaf9f0171e9517f40e41"`, `uri="/dir/index.html"`, `username="Mufasa"`} {
		if !strings.Contains(h, want) {
			t.Errorf("RFC 2617: %q lacks %s", h, want)
		}
	}
	if h2 := a.Authorization("GET", "/dir/index.html"); !strings.Contains(h2, "nc=00000002") {
		t.Errorf("nonce count did not advance: %q", h2)
	}

	// RFC 7616: SHA-256 preferred over MD5, both offered in one header value.
	const rfc7616 = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", ` +
		`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	chals := ParseChallenges([]string{rfc7616})
	const cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	a, err = NewAuthenticator("Mufasa", "Circle of Life", chals)
	if err != nil {
		t.Fatal(err)
	}
	fixedCnonce(a, cnonce)
	if h := a.Authorization("GET", "/dir/index.html"); !strings.Contains(h, `response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"`) ||
		!strings.Contains(h, "algorithm=SHA-256") {
		t.Errorf("RFC 7616 SHA-256: %q", h)
	}
	a, err = NewAuthenticator("Mufasa", "Circle of Life", chals[:1])
	if err != nil {
		t.Fatal(err)
	}
	fixedCnonce(a, cnonce)
	// RFC 7616 prints ...eebdec3; its erratum 4897 corrects it to ...eebdbec.
	if h := a.Authorization("GET", "/dir/index.html"); !strings.Contains(h, `response="8ca523f5e9506fed4657c9700eebdbec"`) {
		t.Errorf("RFC 7616 MD5: %q", h)
	}
}

func TestAuthenticatorChoice(t *testing.T) {
	for _, tc := range []struct {
		in     []string
		scheme string
		err    bool
	}{
		{in: []string{`Basic realm="x"`, `Digest realm="x", nonce="n"`}, scheme: "Digest MD5"},
		{in: []string{`Basic realm="x"`}, scheme: "Basic"},
		{in: []string{`Digest realm="x", nonce="n", algorithm=SHA-512-256`, `Basic realm="x"`}, scheme: "Basic"},
		{in: []string{`Digest realm="x", nonce="n", qop="auth-int"`}, err: true},
		{in: []string{`Digest realm="x", nonce="n", algorithm=SHA-512-256`}, err: true},
		{in: nil, err: true},
	} {
		a, err := NewAuthenticator("u", "secret-pw", ParseChallenges(tc.in))
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			} else if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
			continue
		}
		if err != nil || a.Scheme() != tc.scheme {
			t.Errorf("%q: got %v, %v; want %s", tc.in, a, err, tc.scheme)
			continue
		}
		for _, s := range []string{a.String(), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
			if strings.Contains(s, "secret-pw") {
				t.Errorf("formatting shows the password: %s", s)
			}
		}
	}
	a, _ := NewAuthenticator("Aladdin", "open sesame", ParseChallenges([]string{`Basic realm="WallyWorld"`}))
	if got := a.Authorization("DESCRIBE", "rtsp://x/"); got != "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==" {
		t.Errorf("Basic = %q", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:hunter2@192.168.1.10:554/stream": "rtsp://admin:xxxxx@192.168.1.10:554/stream",
		"rtsp://admin@cam/stream":                      "rtsp://admin@cam/stream",
		"rtsp://cam/stream?user=a":                     "rtsp://cam/stream?user=a",
		"rtsp://admin:p%zz@cam/":                       "rtsp://admin:xxxxx@cam/",
		"not a url":                                    "not a url",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// testServer returns a DigestServer with deterministic randomness and a
// settable clock.
func testServer(now *time.Time) *DigestServer {
	s := NewDigestServer("Custos", "admin", "s3cret")
	s.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 1<<16))
	s.Now = func() time.Time { return *now }
	s.SHA256 = true
	return s
}

func TestDigestRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	srv := testServer(&now)
	const uri = "rtsp://127.0.0.1:8554/cam1"
	for _, chal := range [][]string{srv.Challenges(false), {srv.Challenge()}} {
		a, err := NewAuthenticator("admin", "s3cret", ParseChallenges(chal))
		if err != nil {
			t.Fatal(err)
		}
		auth := a.Authorization("DESCRIBE", uri)
		if ok, _ := srv.Check("DESCRIBE", uri, auth); !ok {
			t.Errorf("%s: valid credentials refused: %s", a.Scheme(), auth)
		}
		if !srv.Verify("DESCRIBE", auth) {
			t.Errorf("%s: Verify refused", a.Scheme())
		}
		if ok, _ := srv.Check("DESCRIBE", "/cam1", auth); !ok {
			t.Errorf("%s: path-only request URI refused", a.Scheme())
		}
		if srv.Verify("SETUP", auth) {
			t.Error("response for another method accepted")
		}
		if ok, _ := srv.Check("DESCRIBE", "rtsp://127.0.0.1:8554/other", auth); ok {
			t.Error("response for another URI accepted")
		}
	}
	// Wrong password, wrong user, forged nonce.
	chals := ParseChallenges(srv.Challenges(false))
	bad, _ := NewAuthenticator("admin", "wrong", chals)
	if srv.Verify("PLAY", bad.Authorization("PLAY", uri)) {
		t.Error("wrong password accepted")
	}
	other, _ := NewAuthenticator("root", "s3cret", chals)
	if srv.Verify("PLAY", other.Authorization("PLAY", uri)) {
		t.Error("wrong user accepted")
	}
	forged := chals[1]
	forged.Nonce = "AAAA" + forged.Nonce[4:]
	f, _ := NewAuthenticator("admin", "s3cret", []Challenge{forged})
	if srv.Verify("PLAY", f.Authorization("PLAY", uri)) {
		t.Error("forged nonce accepted")
	}
	// RFC 2069 (no qop) and MD5-sess variants of our own nonce.
	for _, mod := range []func(*Challenge){
		func(c *Challenge) { c.QOP = nil },
		func(c *Challenge) { c.Algorithm = "MD5-sess" },
		func(c *Challenge) { c.Algorithm = "SHA-256-sess" },
	} {
		c := chals[1]
		mod(&c)
		a, _ := NewAuthenticator("admin", "s3cret", []Challenge{c})
		if !srv.Verify("PLAY", a.Authorization("PLAY", uri)) {
			t.Errorf("variant %s refused", c)
		}
	}
	// Expiry: stale after NonceTTL, with stale challenges offered.
	good, _ := NewAuthenticator("admin", "s3cret", chals)
	auth := good.Authorization("PLAY", uri)
	now = now.Add(6 * time.Minute)
	if ok, stale := srv.Check("PLAY", uri, auth); ok || !stale {
		t.Errorf("expired nonce: ok=%v stale=%v", ok, stale)
	}
	if got := ParseChallenges(srv.Challenges(true)); !got[0].Stale || got[0].Algorithm != "SHA-256" {
		t.Errorf("stale challenges: %+v", got)
	}
	// A nonce from another server (other key) is refused.
	now2 := now
	srv2 := NewDigestServer("Custos", "admin", "s3cret")
	srv2.Now = func() time.Time { return now2 }
	a2, _ := NewAuthenticator("admin", "s3cret", ParseChallenges([]string{srv2.Challenge()}))
	if srv.Verify("PLAY", a2.Authorization("PLAY", uri)) {
		t.Error("nonce of another server accepted")
	}
	for _, s := range []string{srv.String(), fmt.Sprintf("%v %+v %#v", srv, srv, srv)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("formatting shows the password: %s", s)
		}
	}
}

func TestBasicServer(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	srv := testServer(&now)
	a, _ := NewAuthenticator("admin", "s3cret", ParseChallenges([]string{`Basic realm="Custos"`}))
	auth := a.Authorization("DESCRIBE", "rtsp://x/")
	if srv.Verify("DESCRIBE", auth) || srv.BasicOK(auth) {
		t.Error("Basic accepted without AllowBasic")
	}
	srv.AllowBasic = true
	if !srv.Verify("DESCRIBE", auth) {
		t.Error("Basic refused with AllowBasic")
	}
	if cs := ParseChallenges(srv.Challenges(false)); len(cs) != 3 || cs[2].Scheme != "Basic" {
		t.Errorf("challenges: %+v", cs)
	}
	bad, _ := NewAuthenticator("admin", "nope", ParseChallenges([]string{`Basic realm="Custos"`}))
	if srv.Verify("DESCRIBE", bad.Authorization("DESCRIBE", "rtsp://x/")) {
		t.Error("wrong Basic password accepted")
	}
	for _, junk := range []string{"", "Digest", "Digest username=admin", "Basic !!!", "Bearer x"} {
		if srv.Verify("DESCRIBE", junk) {
			t.Errorf("%q accepted", junk)
		}
	}
}
