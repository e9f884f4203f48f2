package integrity

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
)

// ErrNotEvidence is returned by VerifyFile for a file without a manifest
// box: a plain export, or not an MP4 at all. It cannot be verified.
var ErrNotEvidence = errors.New("this is not an evidence export (no Custos manifest); it cannot be verified")

// ReadError wraps a failure to read the file being verified (not a
// verdict about its contents).
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// VerifyFile verifies a whole evidence export of size bytes read through
// r (docs/evidence.md, "What the verifier checks"): that it has a
// manifest (else ErrNotEvidence), that its top-level boxes are exactly
// what the exporter writes (CheckExportLayout), the manifest's form
// (ParseManifest), the fragments, chain and signatures (VerifyEvidence)
// and the file's ftyp and moov against the init hash of every exported
// segment's chain entry. want, if not nil, is the key the recorder is
// known to have.
//
// It returns the Report and the manifest; or ErrNotEvidence; a *ReadError
// when r fails; or another error (a *Problem, or one naming the box or
// the manifest field) saying why the file does not verify. It blocks on
// r's reads, reads each fragment once and holds at most 32 KiB of media
// at a time.
func VerifyFile(r io.ReaderAt, size int64, want ed25519.PublicKey) (Report, *Manifest, error) {
	has, err := HasManifest(r, size)
	if err != nil {
		return Report{}, nil, &ReadError{err}
	}
	if !has {
		return Report{}, nil, ErrNotEvidence
	}
	if err := CheckExportLayout(r, size); err != nil {
		return Report{}, nil, wrapRead(err, "not a well-formed evidence export: ")
	}
	spans, payload, err := FindFragmentsReader(r, size)
	if err != nil {
		return Report{}, nil, wrapRead(err, "not a well-formed evidence export: ")
	}
	m, err := ParseManifest(payload)
	if err != nil {
		return Report{}, nil, fmt.Errorf("the manifest cannot be read: %w", err)
	}
	hashes, err := HashSpans(r, spans)
	if err != nil {
		return Report{}, nil, &ReadError{err}
	}
	rep, err := VerifyEvidenceHashes(m, hashes, want)
	if err != nil {
		return Report{}, m, err
	}
	initHash, err := InitHash(r, size)
	if err != nil {
		return Report{}, m, wrapRead(err, "the file's header: ")
	}
	for _, s := range m.Segments {
		if ent := m.entry(s.ChainSeq); ent.InitHash != initHash {
			return Report{}, m, problemAt(ent.Seq, "the file's header (ftyp/moov) is not the one recorded with segment %s (chain entry %d): altered", ent.Key, ent.Seq)
		}
	}
	return rep, m, nil
}

// wrapRead returns a *ReadError for a read failure, else err with prefix.
func wrapRead(err error, prefix string) error {
	var re readError
	if errors.As(err, &re) {
		return &ReadError{err}
	}
	return errors.New(prefix + err.Error())
}
