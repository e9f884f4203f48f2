package tlscert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' "now".
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock shared with the server's handshake goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe to read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pair is a test certificate and its key, PEM-encoded.
type pair struct {
	leaf            *x509.Certificate
	certPEM, keyPEM []byte
}

// newPair makes a self-signed ECDSA server certificate for localhost and
// 127.0.0.1 valid from notBefore to notAfter.
func newPair(t *testing.T, cn string, notBefore, notAfter time.Time) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pair{
		leaf:    leaf,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

func validPair(t *testing.T, cn string) pair {
	return newPair(t, cn, t0.Add(-24*time.Hour), t0.Add(90*24*time.Hour))
}

// writeFiles writes cert and key into dir and stamps both with mtime, so a
// replacement is seen as a change even on coarse-mtime filesystems.
func writeFiles(t *testing.T, dir string, certPEM, keyPEM []byte, mtime time.Time) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// serve starts an HTTPS test server on cfg.
func serve(t *testing.T, cfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get does one request over a fresh connection (so a fresh handshake),
// trusting only root, verifying serverName ("" means the URL's host) and
// validity at the time at, and returns the certificate the server presented.
func get(t *testing.T, url, serverName string, root *x509.Certificate, at time.Time) (*x509.Certificate, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(root)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:    pool,
			ServerName: serverName,
			Time:       func() time.Time { return at },
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want >= 1.2", resp.TLS.Version)
	}
	return resp.TLS.PeerCertificates[0], nil
}

func mustGet(t *testing.T, url, serverName string, root *x509.Certificate, at time.Time) *x509.Certificate {
	t.Helper()
	c, err := get(t, url, serverName, root, at)
	if err != nil {
		t.Fatalf("GET %s (server name %q): %v", url, serverName, err)
	}
	return c
}

func TestLoadHandshake(t *testing.T) {
	p := validPair(t, "a")
	certFile, keyFile := writeFiles(t, t.TempDir(), p.certPEM, p.keyPEM, t0)
	cfg, err := Load(certFile, keyFile, nil, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	srv := serve(t, cfg)
	// httptest.StartTLS adds its own certificate to Certificates, which
	// crypto/tls serves to clients without SNI; send SNI so GetCertificate
	// answers (TestLoadWithoutSNI covers the production setup).
	if got := mustGet(t, srv.URL, "localhost", p.leaf, t0); !got.Equal(p.leaf) {
		t.Errorf("served certificate CN %q, want %q", got.Subject.CommonName, p.leaf.Subject.CommonName)
	}
}

func TestLoadWithoutSNI(t *testing.T) {
	p := validPair(t, "a")
	certFile, keyFile := writeFiles(t, t.TempDir(), p.certPEM, p.keyPEM, t0)
	cfg, err := Load(certFile, keyFile, nil, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	// As in production (http.Server.ServeTLS with TLSConfig): Certificates
	// stays empty, so an IP-address client (no SNI) gets GetCertificate's.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	t.Cleanup(srv.Close)
	url := "https://" + srv.Listener.Addr().String()
	if got := mustGet(t, url, "", p.leaf, t0); !got.Equal(p.leaf) {
		t.Errorf("served certificate CN %q, want %q", got.Subject.CommonName, p.leaf.Subject.CommonName)
	}
}

func TestLoadChainAndKeyFormats(t *testing.T) {
	p := validPair(t, "a")
	block, _ := pem.Decode(p.keyPEM)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	intermediate := validPair(t, "intermediate")
	// Leaf then an (unrelated) second certificate, as a fullchain.pem
	// would hold; the key as PKCS#8 after an EC PARAMETERS block.
	chainPEM := append(slices.Clone(p.certPEM), intermediate.certPEM...)
	keyPEM := append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	certFile, keyFile := writeFiles(t, t.TempDir(), chainPEM, keyPEM, t0)
	cfg, err := Load(certFile, keyFile, nil, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || !c.Leaf.Equal(p.leaf) {
		t.Errorf("got %d certificates, leaf CN %q; want 2, %q", len(c.Certificate), c.Leaf.Subject.CommonName, "a")
	}
}

func TestLoadErrors(t *testing.T) {
	good := validPair(t, "good")
	other := validPair(t, "other")
	expired := newPair(t, "expired", t0.Add(-90*24*time.Hour), t0.Add(-time.Hour))
	future := newPair(t, "future", t0.Add(time.Hour), t0.Add(90*24*time.Hour))

	tests := []struct {
		name            string
		certPEM, keyPEM []byte // nil: file missing
		wantFile        string // "cert" or "key": the file the error must name
		want            []string
		wantNotExist    bool
	}{
		{name: "missing cert", keyPEM: good.keyPEM, wantFile: "cert", wantNotExist: true},
		{name: "missing key", certPEM: good.certPEM, wantFile: "key", wantNotExist: true},
		{name: "garbage cert", certPEM: []byte("hello, world\n"), keyPEM: good.keyPEM, wantFile: "cert", want: []string{"not PEM"}},
		{name: "garbage key", certPEM: good.certPEM, keyPEM: []byte{0, 1, 2, 3}, wantFile: "key", want: []string{"not PEM"}},
		{name: "key in cert file", certPEM: good.keyPEM, keyPEM: good.keyPEM, wantFile: "cert", want: []string{"no PEM CERTIFICATE block"}},
		{name: "cert in key file", certPEM: good.certPEM, keyPEM: good.certPEM, wantFile: "key", want: []string{"no PEM PRIVATE KEY block"}},
		{name: "mismatched key", certPEM: good.certPEM, keyPEM: other.keyPEM, wantFile: "key", want: []string{"does not match"}},
		{name: "expired", certPEM: expired.certPEM, keyPEM: expired.keyPEM, wantFile: "cert",
			want: []string{"expired", expired.leaf.NotAfter.UTC().Format(time.RFC3339)}},
		{name: "not yet valid", certPEM: future.certPEM, keyPEM: future.keyPEM, wantFile: "cert",
			want: []string{"not valid until", future.leaf.NotBefore.UTC().Format(time.RFC3339)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"cert": filepath.Join(dir, "cert.pem"), "key": filepath.Join(dir, "key.pem")}
			for kind, data := range map[string][]byte{"cert": tt.certPEM, "key": tt.keyPEM} {
				if data != nil {
					if err := os.WriteFile(files[kind], data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg, err := Load(files["cert"], files["key"], nil, func() time.Time { return t0 })
			if err == nil {
				t.Fatalf("Load succeeded with config %v", cfg)
			}
			msg := err.Error()
			if !strings.Contains(msg, files[tt.wantFile]) {
				t.Errorf("error %q does not name %s", msg, files[tt.wantFile])
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.wantNotExist {
				t.Errorf("errors.Is(%q, fs.ErrNotExist) = %v, want %v", msg, got, tt.wantNotExist)
			}
		})
	}
}

func TestLoadReload(t *testing.T) {
	dir := t.TempDir()
	a, b := validPair(t, "a"), validPair(t, "b")
	certFile, keyFile := writeFiles(t, dir, a.certPEM, a.keyPEM, t0)
	clock := &fakeClock{t: t0}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := Load(certFile, keyFile, logger, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, cfg)
	if got := mustGet(t, srv.URL, "localhost", a.leaf, clock.Now()); !got.Equal(a.leaf) {
		t.Fatalf("initially served %q, want a", got.Subject.CommonName)
	}

	// Renewed on disk: not looked at until a minute has passed.
	writeFiles(t, dir, b.certPEM, b.keyPEM, t0.Add(time.Hour))
	clock.Advance(59 * time.Second)
	if got := mustGet(t, srv.URL, "localhost", a.leaf, clock.Now()); !got.Equal(a.leaf) {
		t.Fatalf("after 59s served %q, want a (no check yet)", got.Subject.CommonName)
	}
	clock.Advance(time.Second)
	if got := mustGet(t, srv.URL, "localhost", b.leaf, clock.Now()); !got.Equal(b.leaf) {
		t.Fatalf("after 60s served %q, want b", got.Subject.CommonName)
	}
	if !strings.Contains(logs.String(), "tls certificate reloaded") {
		t.Errorf("no reload logged; logs:\n%s", logs.String())
	}

	// A broken replacement keeps the previous certificate and is logged.
	writeFiles(t, dir, []byte("garbage"), b.keyPEM, t0.Add(2*time.Hour))
	clock.Advance(time.Minute)
	if got := mustGet(t, srv.URL, "localhost", b.leaf, clock.Now()); !got.Equal(b.leaf) {
		t.Fatalf("after a failed reload served %q, want b", got.Subject.CommonName)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "not PEM") {
		t.Errorf("failed reload not logged as a warning; logs:\n%s", l)
	}

	// Fixing the files is picked up at the next check.
	writeFiles(t, dir, a.certPEM, a.keyPEM, t0.Add(3*time.Hour))
	clock.Advance(time.Minute)
	if got := mustGet(t, srv.URL, "localhost", a.leaf, clock.Now()); !got.Equal(a.leaf) {
		t.Fatalf("after fixing the files served %q, want a", got.Subject.CommonName)
	}
}

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	cfg, fp, err := SelfSigned(dir, []string{"NVR.example.", "192.0.2.7", "[2001:db8::7]", ""}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	leaf := readCert(t, filepath.Join(dir, "cert.pem"))

	wantNames := []string{"nvr.example", "localhost"}
	if !slices.Equal(leaf.DNSNames, wantNames) {
		t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, wantNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"192.0.2.7", "2001:db8::7", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IPAddresses = %q, want %q", ips, want)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 825*24*time.Hour {
		t.Errorf("validity %v, want 825 days", d)
	}
	if leaf.NotBefore.After(t0) || leaf.NotAfter.Before(t0.Add(824*24*time.Hour)) {
		t.Errorf("validity %v to %v does not start at %v", leaf.NotBefore, leaf.NotAfter, t0)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.IsCA {
		t.Error("certificate is a CA; browsers reject that as a server certificate")
	}
	sum := sha256.Sum256(leaf.Raw)
	if fp != hexColons(sum[:]) {
		t.Errorf("fingerprint %s, want %s", fp, hexColons(sum[:]))
	}

	for name, want := range map[string]fs.FileMode{dir: 0o700 | fs.ModeDir, filepath.Join(dir, "key.pem"): 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("dir holds %d entries, want cert.pem and key.pem only", len(entries))
	}

	srv := serve(t, cfg)
	// By IP (no SNI), by name, and by a SAN the URL does not use.
	for _, serverName := range []string{"", "localhost", "nvr.example", "192.0.2.7"} {
		if got := mustGet(t, srv.URL, serverName, leaf, t0); !got.Equal(leaf) {
			t.Errorf("server name %q: served a different certificate", serverName)
		}
	}
	if _, err := get(t, srv.URL, "other.example", leaf, t0); err == nil {
		t.Error("handshake for a name not in the certificate succeeded")
	}
	// IPv6 loopback, where the host has it.
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		srv6 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv6.Listener.Close()
		srv6.Listener = l
		srv6.TLS = cfg
		srv6.StartTLS()
		defer srv6.Close()
		mustGet(t, srv6.URL, "", leaf, t0)
	} else {
		t.Logf("no IPv6 loopback: %v", err)
	}
}

func TestSelfSignedReuse(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	_, fp1, err := SelfSigned(dir, []string{"nvr.example", "192.0.2.7"}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(400 * 24 * time.Hour)
	// Same hosts, a subset, and the loopback names (always present): reused.
	for _, hosts := range [][]string{{"nvr.example", "192.0.2.7"}, {"192.0.2.7"}, {"LOCALHOST", "::1"}, nil} {
		cfg, fp2, err := SelfSigned(dir, hosts, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		if fp2 != fp1 {
			t.Errorf("hosts %q: fingerprint changed from %s to %s", hosts, fp1, fp2)
		}
		if got := sha256.Sum256(cfg.Certificates[0].Certificate[0]); hexColons(got[:]) != fp1 {
			t.Errorf("hosts %q: config serves a different certificate", hosts)
		}
	}
	after, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("key.pem rewritten although the certificate was reused")
	}
}

func TestSelfSignedRegenerate(t *testing.T) {
	hosts := []string{"nvr.example"}
	tests := []struct {
		name    string
		advance time.Duration
		hosts   []string
		damage  func(t *testing.T, dir string)
		want    bool // regenerated
	}{
		{name: "31 days left", advance: (825 - 31) * 24 * time.Hour, want: false},
		{name: "29 days left", advance: (825 - 29) * 24 * time.Hour, want: true},
		{name: "expired", advance: 900 * 24 * time.Hour, want: true},
		{name: "new name", hosts: []string{"nvr.example", "nvr.lan"}, want: true},
		{name: "new IP", hosts: []string{"192.0.2.8"}, want: true},
		{name: "corrupt key", want: true, damage: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "cert missing", want: true, damage: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "cert.pem")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := &fakeClock{t: t0}
			_, fp1, err := SelfSigned(dir, hosts, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			clock.Advance(tt.advance)
			h := hosts
			if tt.hosts != nil {
				h = tt.hosts
			}
			cfg, fp2, err := SelfSigned(dir, h, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if got := fp2 != fp1; got != tt.want {
				t.Fatalf("regenerated = %v, want %v", got, tt.want)
			}
			leaf := readCert(t, filepath.Join(dir, "cert.pem"))
			if sum := sha256.Sum256(leaf.Raw); hexColons(sum[:]) != fp2 {
				t.Error("cert.pem does not hold the returned certificate")
			}
			for _, host := range h {
				if err := leaf.VerifyHostname(host); err != nil {
					t.Errorf("certificate does not cover %s: %v", host, err)
				}
			}
			if !tt.want {
				return
			}
			if !leaf.NotBefore.Before(clock.Now()) || leaf.NotAfter.Sub(clock.Now()) < 824*24*time.Hour {
				t.Errorf("new certificate valid %v to %v, want 825 days from %v", leaf.NotBefore, leaf.NotAfter, clock.Now())
			}
			// The regenerated pair serves, and the key is still private.
			srv := serve(t, cfg)
			mustGet(t, srv.URL, "", leaf, clock.Now())
			if fi, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || fi.Mode() != 0o600 {
				t.Errorf("key.pem: %v, %v; want mode 0600", fi.Mode(), err)
			}
		})
	}
}

func TestSelfSignedBadHost(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []string{"nvr example", "http://nvr", "nvr..lan", "nvr/x"} {
		if _, _, err := SelfSigned(dir, []string{h}, nil); err == nil {
			t.Errorf("SelfSigned accepted host %q", h)
		}
	}
}

func TestHosts(t *testing.T) {
	hostname := func() (string, error) { return "NVR-Box", nil }
	addrs := func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: net.ParseIP("::1"), Mask: net.CIDRMask(128, 128)},
			&net.IPNet{IP: net.IPv4(192, 168, 1, 10), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("2001:db8::10"), Mask: net.CIDRMask(64, 128)},
			&net.IPAddr{IP: net.IPv4(10, 0, 0, 5)},
			&net.IPNet{IP: net.IPv4(192, 168, 1, 10), Mask: net.CIDRMask(24, 32)}, // duplicate
		}, nil
	}
	wild := []string{"nvr-box", "192.168.1.10", "2001:db8::10", "10.0.0.5"}
	tests := []struct {
		listen string
		want   []string
	}{
		{":8443", wild},
		{"0.0.0.0:8443", wild},
		{"[::]:8443", wild},
		{"", wild},
		{"nvr.lan:8443", []string{"nvr.lan"}},
		{"nvr.lan", []string{"nvr.lan"}},
		{"192.168.1.10:8443", []string{"192.168.1.10"}},
		{"127.0.0.1:8443", []string{"127.0.0.1"}},
		{"[2001:db8::1]:8443", []string{"2001:db8::1"}},
		{"[fe80::1%eth0]:8443", []string{"fe80::1"}},
		{"[2001:db8::1]", []string{"2001:db8::1"}},
	}
	for _, tt := range tests {
		if got := hosts(tt.listen, hostname, addrs); !slices.Equal(got, tt.want) {
			t.Errorf("hosts(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}

	failing := func() (string, error) { return "", errors.New("no hostname") }
	noAddrs := func() ([]net.Addr, error) { return nil, errors.New("no interfaces") }
	if got := hosts(":8443", failing, addrs); !slices.Equal(got, wild[1:]) {
		t.Errorf("hostname failing: got %q, want %q", got, wild[1:])
	}
	if got := hosts(":8443", hostname, noAddrs); !slices.Equal(got, []string{"nvr-box"}) {
		t.Errorf("interfaces failing: got %q, want [nvr-box]", got)
	}
	localhost := func() (string, error) { return "localhost", nil }
	if got := hosts(":8443", localhost, noAddrs); len(got) != 0 {
		t.Errorf("hostname localhost: got %q, want nothing", got)
	}

	// The real lookups: whatever this machine has must be usable by
	// SelfSigned and never a loopback address.
	real := Hosts(":0")
	for _, h := range real {
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			t.Errorf("Hosts(:0) includes loopback %s", h)
		}
	}
	if _, _, err := SelfSigned(t.TempDir(), real, nil); err != nil {
		t.Errorf("SelfSigned(Hosts(:0) = %q): %v", real, err)
	}
}

func readCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hexColons is an independent implementation of the fingerprint format.
func hexColons(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = strings.ToUpper(hex2(x))
	}
	return strings.Join(parts, ":")
}

func hex2(x byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[x>>4], digits[x&15]})
}
