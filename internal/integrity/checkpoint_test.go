package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleCheckpoint() *Checkpoint {
	return &Checkpoint{Counter: 7, SignedAt: time.Date(2026, 11, 29, 9, 32, 0, 5, time.UTC), AuditSeq: 42,
		AuditHash: [32]byte{0xaa, 0xbb}, Streams: []StreamHead{
			{Camera: "yard", Stream: "main", Seq: 3, Hash: [32]byte{3}},
			{Camera: "door", Stream: "sub", Seq: 2, Hash: [32]byte{2}},
			{Camera: "door", Stream: "main", Seq: 1234, Hash: [32]byte{1}},
		}}
}

// TestCheckpointMessage pins the signed layout (docs/evidence.md,
// "Checkpoint") and checks that signing sorts the streams and that every
// field is covered.
func TestCheckpointMessage(t *testing.T) {
	key := rfc8032Key(t)
	c := sampleCheckpoint()
	SignCheckpoint(key, c)
	if c.Streams[0].Camera != "door" || c.Streams[0].Stream != "main" || c.Streams[2].Camera != "yard" {
		t.Fatalf("streams not sorted: %+v", c.Streams)
	}
	z := func(n int) string { return strings.Repeat("00", n) }
	want := "637573746f732d636865636b706f696e742d7631" + "0000000000000007" + "18ec7a351fd6a005" +
		"000000000000002a" + "aabb" + z(30) + "0000000000000003" +
		"0000000000000004" + "646f6f72" + "0000000000000004" + "6d61696e" + "00000000000004d2" + "01" + z(31) +
		"0000000000000004" + "646f6f72" + "0000000000000003" + "737562" + "0000000000000002" + "02" + z(31) +
		"0000000000000004" + "79617264" + "0000000000000004" + "6d61696e" + "0000000000000003" + "03" + z(31)
	if got := hex.EncodeToString(c.Message()); got != want {
		t.Fatalf("message\n%s\nwant\n%s", got, want)
	}
	if got := hex.EncodeToString(c.Signature); got != checkpointKATSig {
		t.Errorf("signature %s, want %s", got, checkpointKATSig)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := VerifyCheckpoint(pub, c); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Checkpoint){
		"counter":    func(c *Checkpoint) { c.Counter-- },
		"time":       func(c *Checkpoint) { c.SignedAt = c.SignedAt.Add(time.Nanosecond) },
		"audit seq":  func(c *Checkpoint) { c.AuditSeq = 41 },
		"audit hash": func(c *Checkpoint) { c.AuditHash[31] = 1 },
		"stream seq": func(c *Checkpoint) { c.Streams[0].Seq = 1233 },
		"stream":     func(c *Checkpoint) { c.Streams = c.Streams[1:] },
	} {
		d := *c
		d.Streams = append([]StreamHead(nil), c.Streams...)
		edit(&d)
		if err := VerifyCheckpoint(pub, &d); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want ErrBadSignature", name, err)
		}
	}
}

// TestCheckpointFile writes, reads back and refuses malformed files.
func TestCheckpointFile(t *testing.T) {
	key := rfc8032Key(t)
	c := sampleCheckpoint()
	SignCheckpoint(key, c)
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	if _, err := ReadCheckpoint(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := WriteCheckpoint(path, c); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Message(), c.Message()) || !bytes.Equal(got.Signature, c.Signature) {
		t.Fatalf("read back %+v, wrote %+v", got, c)
	}
	if err := VerifyCheckpoint(key.Public().(ed25519.PublicKey), got); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for name, bad := range map[string][]byte{
		"unknown key": bytes.Replace(b, []byte(`"counter"`), []byte(`"counter2"`), 1),
		"short hash":  bytes.Replace(b, []byte(`"audit_hash":"aabb`), []byte(`"audit_hash":"bb`), 1),
		"version":     bytes.Replace(b, []byte(`"version":1`), []byte(`"version":2`), 1),
	} {
		os.WriteFile(path, bad, 0o600)
		if _, err := ReadCheckpoint(path); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

// checkpointKATSig is the signature of sampleCheckpoint's message by the
// RFC 8032 test 1 key, made with openssl (pkeyutl -sign -rawin).
const checkpointKATSig = "175ed686f9b6a41d25aecb3910b63bc42f2cbcc3bd8a6c14623aa4f62240986cfcd13f8f3a34958d36bf8ce3c1a4f10c22365c508867e17e9e3534c22ce03309"
