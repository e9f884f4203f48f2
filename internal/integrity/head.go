package integrity

import (
	"crypto/ed25519"
	"errors"
	"time"
)

// Head is a signed statement "the chain of Camera/Stream had the entry Seq,
// whose hash is Hash, as its head at SignedAt".
type Head struct {
	Camera, Stream string
	Seq            int64
	Hash           [32]byte
	SignedAt       time.Time // hashed as UTC Unix ns (years 1678..2262)
	Signature      []byte    // Ed25519 over Message()
}

// Message returns the bytes the signature covers: "custos-head-v1", Camera
// and Stream each length-prefixed (uint64 big-endian), Seq (8 bytes
// big-endian), the 32 bytes of Hash, SignedAt as Unix ns (8 bytes
// big-endian). Signature is not part of it.
func (h *Head) Message() []byte {
	b := make([]byte, 0, len(headDomain)+8*4+HashSize+len(h.Camera)+len(h.Stream))
	b = append(b, headDomain...)
	b = appendString(b, h.Camera)
	b = appendString(b, h.Stream)
	b = appendUint(b, uint64(h.Seq))
	b = append(b, h.Hash[:]...)
	b = appendUint(b, uint64(h.SignedAt.UnixNano()))
	return b
}

// SignHead sets h.Signature to the Ed25519 signature of h.Message() by key.
// Like ed25519.Sign it panics if key is not 64 bytes long.
func SignHead(key ed25519.PrivateKey, h *Head) {
	h.Signature = ed25519.Sign(key, h.Message())
}

// ErrBadSignature is returned by VerifyHead when the signature does not
// verify.
var ErrBadSignature = errors.New("head signature does not verify with the recorder key")

// VerifyHead checks h.Signature with pub. It returns ErrBadSignature, or
// an error for a public key that is not 32 bytes or a SignedAt that cannot
// be encoded.
func VerifyHead(pub ed25519.PublicKey, h *Head) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("recorder key is not an Ed25519 public key")
	}
	if !validTime(h.SignedAt) {
		return errors.New("head signing time out of range")
	}
	if len(h.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, h.Message(), h.Signature) {
		return ErrBadSignature
	}
	return nil
}
