package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

const checkpointDomain = "custos-checkpoint-v1"

// StreamHead is one stream chain's last entry in a Checkpoint.
type StreamHead struct {
	Camera, Stream string
	Seq            int64
	Hash           [32]byte
}

// Checkpoint is a signed statement "at SignedAt, the audit log's last
// entry was AuditSeq (hash AuditHash) and each listed stream's chain had
// the entry Seq (hash Hash) as its last". The server signs one every
// minute and at a clean stop and keeps only the newest (a file beside the
// index), so removing the newest entries of a chain or of the audit log
// leaves a checkpoint naming entries that are gone (docs/evidence.md).
type Checkpoint struct {
	// Counter grows by one with each checkpoint a node signs.
	Counter   int64
	SignedAt  time.Time // hashed as UTC Unix ns (years 1678..2262)
	AuditSeq  int64     // 0: the audit log was empty
	AuditHash [32]byte
	Streams   []StreamHead // sorted by camera, then stream
	Signature []byte       // Ed25519 over Message()
}

// Message returns the bytes the signature covers: "custos-checkpoint-v1",
// Counter, SignedAt (Unix ns), AuditSeq (8 bytes big-endian each), the 32
// bytes of AuditHash, the number of streams (uint64) and for each its
// camera and stream (length-prefixed strings), Seq and Hash.
func (c *Checkpoint) Message() []byte {
	b := make([]byte, 0, len(checkpointDomain)+8*4+HashSize+len(c.Streams)*(8*3+HashSize+16))
	b = append(b, checkpointDomain...)
	b = appendUint(b, uint64(c.Counter))
	b = appendUint(b, uint64(c.SignedAt.UnixNano()))
	b = appendUint(b, uint64(c.AuditSeq))
	b = append(b, c.AuditHash[:]...)
	b = appendUint(b, uint64(len(c.Streams)))
	for _, s := range c.Streams {
		b = appendString(b, s.Camera)
		b = appendString(b, s.Stream)
		b = appendUint(b, uint64(s.Seq))
		b = append(b, s.Hash[:]...)
	}
	return b
}

// SignCheckpoint sorts c.Streams and sets c.Signature. It panics, like
// ed25519.Sign, if key is not 64 bytes long.
func SignCheckpoint(key ed25519.PrivateKey, c *Checkpoint) {
	sort.Slice(c.Streams, func(i, j int) bool {
		a, b := c.Streams[i], c.Streams[j]
		return a.Camera < b.Camera || a.Camera == b.Camera && a.Stream < b.Stream
	})
	c.Signature = ed25519.Sign(key, c.Message())
}

// VerifyCheckpoint checks c.Signature with pub (ErrBadSignature when it
// does not verify).
func VerifyCheckpoint(pub ed25519.PublicKey, c *Checkpoint) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("recorder key is not an Ed25519 public key")
	}
	if !validTime(c.SignedAt) {
		return errors.New("checkpoint signing time out of range")
	}
	if len(c.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, c.Message(), c.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Stream returns the head of camera/stream, if c lists it.
func (c *Checkpoint) Stream(camera, stream string) (StreamHead, bool) {
	for _, s := range c.Streams {
		if s.Camera == camera && s.Stream == stream {
			return s, true
		}
	}
	return StreamHead{}, false
}

type checkpointJSON struct {
	Version   int    `json:"version"`
	Counter   int64  `json:"counter"`
	SignedAt  string `json:"signed_at"`
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	Streams   []struct {
		Camera string `json:"camera"`
		Stream string `json:"stream"`
		Seq    int64  `json:"seq"`
		Hash   string `json:"hash"`
	} `json:"streams"`
	Signature string `json:"signature"`
}

// MarshalJSON writes the file form (hashes in hex, the time RFC 3339).
func (c *Checkpoint) MarshalJSON() ([]byte, error) {
	j := checkpointJSON{Version: 1, Counter: c.Counter, SignedAt: c.SignedAt.UTC().Format(time.RFC3339Nano),
		AuditSeq: c.AuditSeq, AuditHash: hex.EncodeToString(c.AuditHash[:]), Signature: hex.EncodeToString(c.Signature)}
	j.Streams = make([]struct {
		Camera string `json:"camera"`
		Stream string `json:"stream"`
		Seq    int64  `json:"seq"`
		Hash   string `json:"hash"`
	}, len(c.Streams))
	for i, s := range c.Streams {
		j.Streams[i].Camera, j.Streams[i].Stream, j.Streams[i].Seq, j.Streams[i].Hash = s.Camera, s.Stream, s.Seq, hex.EncodeToString(s.Hash[:])
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the file form strictly (unknown keys, bad hashes
// and times are errors).
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var j checkpointJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	if j.Version != 1 {
		return fmt.Errorf("checkpoint version %d, want 1", j.Version)
	}
	t, err := time.Parse(time.RFC3339Nano, j.SignedAt)
	if err != nil {
		return fmt.Errorf("signed_at: %w", err)
	}
	out := Checkpoint{Counter: j.Counter, SignedAt: t.UTC(), AuditSeq: j.AuditSeq}
	if err := decodeHash(j.AuditHash, &out.AuditHash); err != nil {
		return fmt.Errorf("audit_hash: %w", err)
	}
	if out.Signature, err = hex.DecodeString(j.Signature); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	for _, s := range j.Streams {
		sh := StreamHead{Camera: s.Camera, Stream: s.Stream, Seq: s.Seq}
		if err := decodeHash(s.Hash, &sh.Hash); err != nil {
			return fmt.Errorf("stream %s/%s: hash: %w", s.Camera, s.Stream, err)
		}
		out.Streams = append(out.Streams, sh)
	}
	*c = out
	return nil
}

func decodeHash(s string, out *[32]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		return errors.New("not 64 hex digits")
	}
	copy(out[:], b)
	return nil
}

// ReadCheckpoint reads the checkpoint file at path (an error wrapping
// os.ErrNotExist when there is none). It does not check the signature.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &c, nil
}

// WriteCheckpoint replaces the file at path with c, atomically (a new
// file, fsynced, renamed over the old one, mode 0600; the directory is
// fsynced). It does I/O and blocks.
func WriteCheckpoint(path string, c *Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		return fmt.Errorf("write checkpoint %s: sync directory: %w", path, err)
	}
	return nil
}
