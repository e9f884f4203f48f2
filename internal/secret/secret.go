// Package secret seals short secrets that the index must keep (camera
// passwords and URLs) with AES-256-GCM under a random per-node key kept
// in a file beside the node's signing key. A copy of the index without
// that file does not reveal them; someone who can read the key file (root
// on the running machine, or a backup that holds both) can.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Prefix starts every sealed value, so that plaintext left by older
// versions can be told apart (and sealed) on open.
const Prefix = "custos-sealed:v1:"

// keyHeader starts the key file; the 32 key bytes follow in hex.
const keyHeader = "custos-secret-key-v1:"

// ErrOpen is wrapped by Open's errors: the value is damaged, was sealed
// for another context or under another key.
var ErrOpen = errors.New("cannot be decrypted")

// Box seals and opens values. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	path string
}

// New returns a Box on a 32-byte key; path names the key file in errors.
func New(key []byte, path string) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key file %s: want a 32-byte key, have %d", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s: %w", path, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s: %w", path, err)
	}
	return &Box{aead: aead, path: path}, nil
}

// Path is the key file's path.
func (b *Box) Path() string { return b.path }

// IsSealed reports whether v is a sealed value (Prefix).
func IsSealed(v string) bool { return strings.HasPrefix(v, Prefix) }

// Seal encrypts plain, bound to context (say "camera door password": a
// sealed value copied into another row or field does not open there).
// The empty string stays empty (there is nothing to hide). No I/O.
func (b *Box) Seal(plain, context string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand)
	return Prefix + base64.RawURLEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plain), []byte(context)))
}

// Open decrypts what Seal returned for the same context. The empty string
// opens to itself. Errors wrap ErrOpen and name the key file; a value
// without Prefix is refused (use IsSealed to find plaintext).
func (b *Box) Open(sealed, context string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return "", fmt.Errorf("%s: not a sealed value: %w", context, ErrOpen)
	}
	data, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(data) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", fmt.Errorf("%s: damaged sealed value: %w", context, ErrOpen)
	}
	ns := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:ns], data[ns:], []byte(context))
	if err != nil {
		return "", fmt.Errorf("%s: %w with the key in %s (was it sealed under another key file?)", context, ErrOpen, b.path)
	}
	return string(plain), nil
}

// maxKeyFile bounds what LoadOrCreate reads.
const maxKeyFile = 4 << 10

// LoadOrCreate returns the Box of the key in path and created=false, or,
// when path does not exist, generates a random key, writes it there with
// mode 0600 (a missing directory is made 0700) and returns created=true.
// It does I/O and blocks. It refuses, naming the file, a key file that
// group or others may access (not checked on Windows), one that is not a
// regular file, and one that does not hold a key.
func LoadOrCreate(path string) (*Box, bool, error) {
	b, err := load(path)
	if err == nil {
		return b, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := create(path); errors.Is(err, fs.ErrExist) {
		b, err := load(path) // another process made it first
		return b, false, err
	} else if err != nil {
		return nil, false, err
	}
	b, err = load(path)
	return b, err == nil, err
}

func load(path string) (*Box, error) {
	fi, err := os.Stat(path) // first: opening a FIFO would block
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secret: key file %s has mode %04o: group or others may read it; restrict it with: chmod 600 %s", path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s: %w", path, err)
	}
	h, ok := strings.CutPrefix(strings.TrimSpace(string(data)), keyHeader)
	key, herr := hex.DecodeString(h)
	if !ok || herr != nil {
		return nil, fmt.Errorf("secret: key file %s: want one line %s followed by 64 hex digits", path, keyHeader)
	}
	return New(key, path)
}

func create(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret: create key directory: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("secret: write key file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link (or on failure); path stays
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(keyHeader + hex.EncodeToString(key) + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("secret: write key file %s: %w", path, err)
	}
	// A hard link publishes the whole file and fails if path exists, so
	// two processes starting at once share one key.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("secret: write key file %s: %w", path, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every system syncs a directory
		d.Close()
	}
	return nil
}
