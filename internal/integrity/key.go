package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// PublicKeyPrefix starts the text form of a recorder key (PublicKeyString).
const PublicKeyPrefix = "custos-ed25519:"

// maxKeyFile bounds what LoadOrCreateKey reads; a PEM Ed25519 key is
// about 120 bytes.
const maxKeyFile = 64 << 10

// LoadOrCreateKey returns the node's Ed25519 signing key from path (PEM
// "PRIVATE KEY", PKCS#8) and created=false, or, when path does not exist,
// generates a key, writes it there and returns created=true. It does I/O
// and blocks.
//
// A new key is written atomically (temporary file, fsync, hard link to
// path so that an existing file is never replaced, fsync of the directory)
// with mode 0600; a missing directory is created with mode 0700. If another
// process creates the file first, its key is loaded instead.
//
// It refuses, with an error naming the file: a key file that group or
// others may access (mode & 0o077 != 0; the error says which chmod to
// run; not checked on Windows), a file that is not a regular file, and a
// file that does not hold exactly one PEM "PRIVATE KEY" block with an
// Ed25519 PKCS#8 key.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, bool, error) {
	key, err := loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = createKey(path)
	if errors.Is(err, fs.ErrExist) {
		key, err = loadKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	// Stat first: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("integrity: key file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: key file: %w", err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("integrity: key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("integrity: key file %s has mode %04o: group or others may read it; restrict it with: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("integrity: key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("integrity: key file %s: too big for a key", path)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("integrity: key file %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey parses what LoadOrCreateKey reads: one PEM "PRIVATE KEY"
// block (PKCS#8) holding an Ed25519 key, with nothing but white space
// around it.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block (want PEM \"PRIVATE KEY\", PKCS#8 Ed25519)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8 Ed25519)", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %T, not Ed25519", k)
	}
	return key, nil
}

// MarshalPrivateKey returns key as LoadOrCreateKey writes it: PEM "PRIVATE
// KEY", PKCS#8.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func createKey(path string) (key ed25519.PrivateKey, err error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("integrity: create key directory: %w", err)
		}
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("integrity: generate key: %w", err)
	}
	data, err := MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("integrity: encode key: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("integrity: write key file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link (or on failure); path stays
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("integrity: write key file %s: %w", path, err)
	}
	// A hard link publishes the complete file and fails if path exists,
	// so two processes starting at once end up with one key.
	if err = os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// File systems without hard links: rename (replaces a file
		// created meanwhile, an accepted race there).
		if err = os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("integrity: write key file %s: %w", path, err)
		}
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: not every system syncs a directory
		d.Close()
	}
	return key, nil
}

// PublicKeyString formats a public key for people and for --key:
// "custos-ed25519:" followed by the 32 bytes in unpadded URL-safe base64
// (RFC 4648 section 5), 43 characters.
func PublicKeyString(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParsePublicKey accepts PublicKeyString's form and a PEM "PUBLIC KEY"
// (PKIX) holding an Ed25519 key, with white space around either.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, PublicKeyPrefix); ok {
		b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("bad recorder key %q: want %s and 43 base64url characters", s, PublicKeyPrefix)
		}
		return ed25519.PublicKey(b), nil
	}
	if !strings.HasPrefix(s, "-----BEGIN ") {
		return nil, errors.New(`a recorder key is "custos-ed25519:…" or a PEM "PUBLIC KEY"`)
	}
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New(`want one PEM "PUBLIC KEY" block`)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bad PEM public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the PEM public key is %T, not Ed25519", k)
	}
	return pub, nil
}

// MarshalPublicKeyPEM returns pub as PEM "PUBLIC KEY" (PKIX), the form
// openssl reads (docs/evidence.md, "Verifying without Custos").
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeyFingerprint returns the first 16 hex digits of SHA-256 of the 32
// public key bytes, in groups of four joined by '-': "3f2a-91c0-7d44-e8b1".
func KeyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:8])
	return h[0:4] + "-" + h[4:8] + "-" + h[8:12] + "-" + h[12:16]
}
