package integrity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rfc8032Key is the key of RFC 8032 section 7.1, test 1.
func rfc8032Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed := mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	key := ed25519.NewKeyFromSeed(seed)
	if got := hex.EncodeToString(key.Public().(ed25519.PublicKey)); got != "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" {
		t.Fatalf("RFC 8032 public key = %s", got)
	}
	return key
}

func katHead() Head {
	h := Head{Camera: "door", Stream: "main", Seq: 1234, SignedAt: time.Date(2026, 11, 29, 9, 32, 0, 5, time.UTC)}
	for i := range h.Hash {
		h.Hash[i] = 0xcd
	}
	return h
}

func TestHeadKnownAnswer(t *testing.T) {
	h := katHead()
	want := mustHex(t, `
		637573746f732d686561642d7631 // "custos-head-v1"
		0000000000000004 646f6f72 // camera "door"
		0000000000000004 6d61696e // stream "main"
		00000000000004d2 // seq 1234
		cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd // hash
		18ec7a351fd6a005 // signed_at 1795944720000000005 ns`)
	if got := h.Message(); !bytes.Equal(got, want) {
		t.Fatalf("Message changed:\n got %x\nwant %x", got, want)
	}
	key := rfc8032Key(t)
	SignHead(key, &h)
	// Ed25519 signatures are deterministic, so this fixes the signature
	// too (checked with openssl pkeyutl -verify -rawin).
	const wantSig = "7ebaf2dd4320ce27361a56c263cb304e03ebd5ddfa7534c1ad18c519fb8bc979f44f7d015d7ef9a86826bd63ae3d5268e5f5d2a78ee3dd1762625aeba2956d08"
	if got := hex.EncodeToString(h.Signature); got != wantSig {
		t.Errorf("signature = %s, want %s", got, wantSig)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := VerifyHead(pub, &h); err != nil {
		t.Fatal(err)
	}
	if got, want := PublicKeyString(pub), "custos-ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"; got != want {
		t.Errorf("PublicKeyString = %s, want %s", got, want)
	}
	if got, want := KeyFingerprint(pub), "21fe-31df-a154-a261"; got != want {
		t.Errorf("KeyFingerprint = %s, want %s", got, want)
	}
}

func TestVerifyHead(t *testing.T) {
	key := rfc8032Key(t)
	pub := key.Public().(ed25519.PublicKey)
	_, other, _ := ed25519.GenerateKey(nil)
	edits := map[string]func(*Head){
		"camera":    func(h *Head) { h.Camera = "yard" },
		"stream":    func(h *Head) { h.Stream = "sub" },
		"seq":       func(h *Head) { h.Seq++ },
		"hash":      func(h *Head) { h.Hash[5] ^= 0x10 },
		"signed_at": func(h *Head) { h.SignedAt = h.SignedAt.Add(time.Nanosecond) },
		"signature": func(h *Head) { h.Signature[63] ^= 1 },
		"short sig": func(h *Head) { h.Signature = h.Signature[:63] },
		"no sig":    func(h *Head) { h.Signature = nil },
		"other key": func(h *Head) { SignHead(other, h) },
	}
	for name, edit := range edits {
		h := katHead()
		SignHead(key, &h)
		edit(&h)
		if err := VerifyHead(pub, &h); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: VerifyHead = %v, want ErrBadSignature", name, err)
		}
	}
	h := katHead()
	SignHead(key, &h)
	if err := VerifyHead(pub[:31], &h); err == nil {
		t.Error("short public key accepted")
	}
	h.SignedAt = time.Time{}
	SignHead(key, &h)
	if err := VerifyHead(pub, &h); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("zero SignedAt: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "node")
	path := filepath.Join(dir, "node.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey = %v, created %v", err, created)
	}
	if runtime.GOOS != "windows" {
		for name, want := range map[string]os.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %04o, want %04o", name, got, want)
			}
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files, want the key only", len(ents))
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("reload: %v, created %v", err, created)
	}
	if !again.Equal(key) {
		t.Fatal("reloaded key differs")
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("key file:\n%s", data)
	}
}

// TestLoadOrCreateKeyConcurrent starts several "processes" on a missing
// key file at once: one creates it, all end up with its key.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], created[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatal("callers got different keys")
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers say they created the key", creators)
	}
	onDisk, _, err := LoadOrCreateKey(path)
	if err != nil || !onDisk.Equal(keys[0]) {
		t.Fatalf("key on disk differs: %v", err)
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	good, _ := MarshalPrivateKey(rfc8032Key(t))
	cases := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"readable by others", good, 0o644, "has mode 0644: group or others may read it; restrict it with: chmod 600 "},
		{"readable by group", good, 0o640, "chmod 600"},
		{"garbage", []byte("not a key\n"), 0o600, "no PEM block"},
		{"empty", nil, 0o600, "no PEM block"},
		{"truncated", good[:len(good)/2], 0o600, "no PEM block"},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), 0o600, `PEM block is "EC PRIVATE KEY"`},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600, "not Ed25519"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "not a PKCS#8 key"},
		{"two keys", append(append([]byte{}, good...), good...), 0o600, "data after the PEM block"},
		{"huge", bytes.Repeat([]byte("a"), maxKeyFile+1), 0o600, "too big"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.mode&0o077 != 0 && runtime.GOOS == "windows" {
				t.Skip("no Unix modes")
			}
			path := filepath.Join(t.TempDir(), "node.key")
			if err := os.WriteFile(path, c.data, c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadOrCreateKey = %v, want an error naming %s with %q", err, path, c.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, c.data) {
				t.Error("the refused file was changed")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		path := t.TempDir()
		if _, _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadOrCreateKey(dir) = %v", err)
		}
	})
}

// publicKeyCases is the table for TestParsePublicKey and the seeds of
// FuzzParsePublicKey.
func publicKeyCases(t testing.TB) []struct {
	in string
	ok bool
} {
	pub := rfc8032Key(t).Public().(ed25519.PublicKey)
	s := PublicKeyString(pub)
	p, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	return []struct {
		in string
		ok bool
	}{
		{s, true},
		{"  " + s + "\n", true},
		{string(p), true},
		{"\n" + string(p) + "\n", true},
		{"", false},
		{PublicKeyPrefix, false},
		{s[:len(s)-1], false},
		{s + "A", false},
		{s + "=", false},
		{strings.Replace(s, "_", "/", 1), false},
		{strings.ToUpper(PublicKeyPrefix) + s[len(PublicKeyPrefix):], false},
		{hex.EncodeToString(pub), false},
		{string(p) + string(p), false},
		{strings.Replace(string(p), "PUBLIC KEY", "PRIVATE KEY", 2), false},
		{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})), false},
		{"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", false},
	}
}

func TestParsePublicKey(t *testing.T) {
	pub := rfc8032Key(t).Public().(ed25519.PublicKey)
	for i, c := range publicKeyCases(t) {
		got, err := ParsePublicKey(c.in)
		if c.ok && (err != nil || !got.Equal(pub)) {
			t.Errorf("case %d %q: %v", i, c.in, err)
		}
		if !c.ok && err == nil {
			t.Errorf("case %d %q: accepted", i, c.in)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	for _, c := range publicKeyCases(f) {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("accepted a %d-byte key", len(pub))
		}
		again, err := ParsePublicKey(PublicKeyString(pub))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	good, _ := MarshalPrivateKey(rfc8032Key(f))
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := ParsePrivateKey(b)
		if err != nil {
			return
		}
		if len(key) != ed25519.PrivateKeySize {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
		if !ed25519.NewKeyFromSeed(key.Seed()).Equal(key) {
			t.Fatal("private and public halves disagree")
		}
	})
}
