// Package tlscert builds the web server's TLS configuration: from an
// operator-supplied certificate and key that are reloaded when renewed on
// disk (Load), or from a self-signed certificate it generates and keeps in
// a directory (SelfSigned).
package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reloadInterval is the least time between two checks of the files' mtimes.
const reloadInterval = time.Minute

// Load reads the PEM certificate chain in certFile (leaf first) and the PEM
// private key in keyFile (PKCS#8, PKCS#1 RSA or SEC 1 EC) and returns a
// *tls.Config that serves them with MinVersion TLS 1.2. It does I/O and
// blocks until both files are read.
//
// Errors name the file and what is wrong: it is missing or unreadable, holds
// no PEM certificate or key, the key does not match the certificate, or the
// certificate expired ("expired on <date>") or is not valid yet ("not valid
// until <date>") at now().
//
// The config serves the certificate through GetCertificate, which at most
// once per minute (by now) stats both files and, if the modification time or
// size of either changed, reloads and re-validates them, so a renewed
// certificate is picked up without a restart. A failed reload keeps the
// previous certificate and logs a warning to logger; it is retried when the
// files change again. Certificates is left empty, so callers must not add
// to it: crypto/tls prefers Certificates[0] over GetCertificate for clients
// that send no SNI (e.g. ones connecting by IP address). Use the config with
// http.Server.TLSConfig and ServeTLS(l, "", "") or ListenAndServeTLS("", "").
//
// The returned config is safe for concurrent handshakes. A nil logger
// discards; a nil now means time.Now.
func Load(certFile, keyFile string, logger *slog.Logger, now func() time.Time) (*tls.Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	r := &reloader{certFile: certFile, keyFile: keyFile, logger: logger, now: now}
	t := now()
	certStamp, keyStamp := stamp(certFile), stamp(keyFile)
	cert, err := loadPair(certFile, keyFile, t)
	if err != nil {
		return nil, err
	}
	r.cert.Store(cert)
	r.certStamp, r.keyStamp, r.lastCheck = certStamp, keyStamp, t
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
	}, nil
}

// reloader serves the current certificate and swaps in a new one when the
// files change. cert is read lock-free by every handshake; mu guards the
// check state and is only try-locked, so a handshake never waits on
// another's file I/O.
type reloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	cert atomic.Pointer[tls.Certificate]

	mu                  sync.Mutex
	lastCheck           time.Time
	certStamp, keyStamp fileStamp
}

// fileStamp identifies a version of a file; the zero value means "could not
// stat", which never equals a successful stat.
type fileStamp struct {
	mtime time.Time
	size  int64
	ok    bool
}

func stamp(name string) fileStamp {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mtime: fi.ModTime(), size: fi.Size(), ok: true}
}

func (s fileStamp) equal(o fileStamp) bool {
	return s.ok == o.ok && s.size == o.size && s.mtime.Equal(o.mtime)
}

func (r *reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.maybeReload()
	return r.cert.Load(), nil
}

// maybeReload reloads the pair if a minute has passed since the last check
// and either file changed. Concurrent callers skip the check rather than
// wait for it.
func (r *reloader) maybeReload() {
	if !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	t := r.now()
	if d := t.Sub(r.lastCheck); d >= 0 && d < reloadInterval {
		return
	}
	r.lastCheck = t
	certStamp, keyStamp := stamp(r.certFile), stamp(r.keyFile)
	if certStamp.equal(r.certStamp) && keyStamp.equal(r.keyStamp) {
		return
	}
	// Remember the stamps even on failure: a half-written renewal is retried
	// when the files change again, not logged every minute.
	r.certStamp, r.keyStamp = certStamp, keyStamp
	cert, err := loadPair(r.certFile, r.keyFile, t)
	if err != nil {
		r.logger.Warn("tls certificate reload failed; serving the previous certificate",
			"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return
	}
	r.cert.Store(cert)
	r.logger.Info("tls certificate reloaded",
		"cert_file", r.certFile, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC())
}

// loadPair reads, parses and validates a certificate chain and its key at
// time now. It does I/O.
func loadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlscert: read certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlscert: read key file: %w", err)
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tlscert: certificate file %s: %w", certFile, err)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("tlscert: certificate file %s: parse first certificate: %w", certFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlscert: key file %s: %w", keyFile, err)
	}
	if !publicKeyMatches(leaf.PublicKey, key) {
		return nil, fmt.Errorf("tlscert: key file %s does not match the certificate in %s", keyFile, certFile)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tlscert: certificate file %s: certificate expired on %s",
			certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tlscert: certificate file %s: certificate is not valid until %s",
			certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// parseChain returns the DER of every CERTIFICATE block in data, in order.
func parseChain(data []byte) ([][]byte, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("not PEM: no -----BEGIN line")
	}
	var chain [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return chain, nil
}

// parseKey returns the first private key in data, accepting the encodings
// crypto/tls does.
func parseKey(data []byte) (crypto.Signer, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("not PEM: no -----BEGIN line")
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block")
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return nil, errors.New("encrypted private keys are not supported")
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
			return s, nil
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("cannot parse %s block as PKCS#8, PKCS#1 or EC private key", b.Type)
	}
}

func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return p.Equal(key.Public())
	case *rsa.PublicKey:
		return p.Equal(key.Public())
	case ed25519.PublicKey:
		return p.Equal(key.Public())
	}
	return false
}
