package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// selfSignedValidity is the longest lifetime Apple platforms accept for
	// a TLS server certificate.
	selfSignedValidity = 825 * 24 * time.Hour
	// renewBefore is how close to expiry a stored certificate is replaced.
	renewBefore = 30 * 24 * time.Hour
	// backdate absorbs clock skew between the server and its clients.
	backdate = time.Hour

	certName = "cert.pem"
	keyName  = "key.pem"
)

// SelfSigned returns a *tls.Config (MinVersion TLS 1.2) serving a
// self-signed ECDSA P-256 certificate kept in dir as cert.pem and key.pem,
// and the certificate's SHA-256 fingerprint as upper-case hex bytes joined
// by colons (the form browsers show), for the console message.
//
// hosts are DNS names and IP addresses (IPv6 optionally in brackets) for the
// SubjectAltName; "localhost", 127.0.0.1 and ::1 are always added. A stored
// pair is reused when it loads, matches, is valid at now() for more than 30
// more days and covers every host; otherwise a new pair valid for 825 days
// is generated and replaces it. dir is created with mode 0700 if missing;
// key.pem is written with mode 0600. Each file is written atomically
// (temporary file, fsync, rename), so a crash leaves the old or the new file,
// and a crash between the two renames leaves a mismatched pair that the next
// call replaces.
//
// It fails for a host that is neither an IP address nor a DNS name (labels
// of letters, digits, '-' and '_'), or when dir or a file cannot be written.
//
// SelfSigned does I/O and blocks; a certificate is only renewed by a later
// call (at the next start). Concurrent calls on the same dir may each
// generate a pair, the last rename winning. A nil now means time.Now. The
// returned config puts the certificate in Certificates and is safe for
// concurrent handshakes.
func SelfSigned(dir string, hosts []string, now func() time.Time) (cfg *tls.Config, fingerprint string, err error) {
	if now == nil {
		now = time.Now
	}
	names, ips, err := splitHosts(hosts)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("tlscert: create certificate directory: %w", err)
	}
	certFile, keyFile := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	t := now()
	cert, err := loadPair(certFile, keyFile, t)
	if err != nil || !reusable(cert.Leaf, names, ips, t) {
		g, err := generate(names, ips, t)
		if err != nil {
			return nil, "", err
		}
		if err := writeFileAtomic(keyFile, pemBytes("PRIVATE KEY", g.privDER)); err != nil {
			return nil, "", err
		}
		if err := writeFileAtomic(certFile, pemBytes("CERTIFICATE", g.cert.Certificate[0])); err != nil {
			return nil, "", err
		}
		cert = g.cert
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
	}, sha256Fingerprint(cert.Leaf), nil
}

// sha256Fingerprint returns the SHA-256 of c's DER encoding as upper-case hex
// bytes joined by colons, e.g. "AB:01:...".
func sha256Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// splitHosts normalizes hosts plus the loopback names (last, so the
// certificate's CommonName is the first given name) into de-duplicated DNS
// names and IP addresses.
func splitHosts(hosts []string) (names []string, ips []net.IP, err error) {
	all := append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1")
	for _, h := range all {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !validName(h) {
			return nil, nil, fmt.Errorf("tlscert: host %q is neither a DNS name nor an IP address", h)
		}
		if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return names, ips, nil
}

// validName reports whether h is usable as a DNS SubjectAltName: dot
// separated non-empty labels of letters, digits, '-' and '_'.
func validName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// reusable reports whether a stored certificate is valid for more than
// renewBefore after now and lists every name and IP.
func reusable(leaf *x509.Certificate, names []string, ips []net.IP, now time.Time) bool {
	if leaf.NotAfter.Sub(now) <= renewBefore {
		return false
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// generated is a new pair together with the PKCS#8 encoding of its key.
type generated struct {
	cert    *tls.Certificate
	privDER []byte
}

// generate creates a self-signed ECDSA P-256 server certificate.
func generate(names []string, ips []net.IP, now time.Time) (*generated, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlscert: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tlscert: generate serial number: %w", err)
	}
	notBefore := now.Add(-backdate).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Custos NVR (self-signed)"},
			CommonName:   names[0],
		},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, // IsCA false: browsers reject a CA certificate as a server's
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlscert: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlscert: parse generated certificate: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlscert: encode key: %w", err)
	}
	return &generated{
		cert:    &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		privDER: privDER,
	}, nil
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeFileAtomic replaces name with data (mode 0600) via a temporary file
// in the same directory, fsync and rename, then fsyncs the directory.
func writeFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("tlscert: write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("tlscert: write %s: %w", name, err)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), name); err != nil {
		return err
	}
	// Best effort: make the rename durable. Not all systems can sync a
	// directory, and the file itself is already complete.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Hosts returns the names to put in a self-signed certificate for a listen
// address such as ":8443", "0.0.0.0:8443", "[::]:8443", "nvr.lan:8443" or
// "192.168.1.10:8443" (a bare host without port is accepted too): the host
// part when it is a name or a specific IP address; for a wildcard ("",
// 0.0.0.0, ::) the machine's hostname (lower-cased, if it is a valid DNS
// name other than localhost) and every non-loopback interface address. It does I/O (os.Hostname, net.InterfaceAddrs) only for a wildcard
// and never fails: what cannot be found is left out. The result may be empty
// and does not include the loopback names SelfSigned always adds.
func Hosts(listen string) []string {
	return hosts(listen, os.Hostname, net.InterfaceAddrs)
}

// hosts is Hosts with the system lookups injected.
func hosts(listen string, hostname func() (string, error), interfaceAddrs func() ([]net.Addr, error)) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(listen, "["), "]")
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // IPv6 zone: not part of a SAN
		host = host[:i]
	}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{host}
	}
	var out []string
	if h, err := hostname(); err == nil {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if validName(h) && h != "localhost" {
			out = append(out, h)
		}
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		default:
			continue
		}
		if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
			continue
		}
		if s := ip.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
