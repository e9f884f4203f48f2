package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// exportDomain starts a version 2 manifest payload and the message its
// signature covers ("custos-export-v2" followed by the JSON).
const exportDomain = "custos-export-v2"

// Limits of version 2 manifests.
const (
	maxParts = 1 << 16 // parts and gaps of one export
)

// Sign makes m a version 2 manifest signed by key: it sets Version to 2
// and RecorderKey to key's public key and signs the JSON encoding of the
// rest (MarshalBox writes the same bytes). It fails for a manifest that
// MarshalBox would refuse. Like ed25519.Sign it panics if key is not 64
// bytes long.
func (m *Manifest) Sign(key ed25519.PrivateKey) error {
	m.Version = 2
	m.RecorderKey = PublicKeyString(key.Public().(ed25519.PublicKey))
	m.Signature = make([]byte, ed25519.SignatureSize) // for validate
	m.signed = nil
	msg, err := m.signedMessage()
	if err != nil {
		return err
	}
	m.Signature = ed25519.Sign(key, msg)
	return nil
}

// signedMessage returns what a version 2 signature covers:
// "custos-export-v2" and the JSON (as parsed, or m's encoding).
func (m *Manifest) signedMessage() ([]byte, error) {
	js := m.signed
	if js == nil {
		if err := m.validate(); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(toWireV2(m)); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		js = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	return append([]byte(exportDomain), js...), nil
}

// verifyExportSignature checks a version 2 manifest's signature with pub.
func (m *Manifest) verifyExportSignature(pub ed25519.PublicKey) error {
	msg, err := m.signedMessage()
	if err != nil {
		return &Problem{Msg: err.Error()}
	}
	if len(m.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, m.Signature) {
		return &Problem{Msg: "the manifest's signature does not verify with the recorder key (manifest altered: its range, parts, gaps or fragment selection)"}
	}
	return nil
}

// parseV2 parses what follows "custos-export-v2": the signature and the
// JSON.
func parseV2(b []byte) (*Manifest, error) {
	if len(b) < ed25519.SignatureSize {
		return nil, fmt.Errorf("manifest: version 2 payload of %d bytes is too short for its signature", len(b))
	}
	sig, js := b[:ed25519.SignatureSize], b[ed25519.SignatureSize:]
	if len(js) > MaxManifestSize {
		return nil, fmt.Errorf("manifest: %d bytes of JSON, more than %d", len(js), MaxManifestSize)
	}
	if err := checkJSON(js); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var w wireManifestV2
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if w.Version != 2 {
		return nil, fmt.Errorf("manifest: version %d after the custos-export-v2 prefix", w.Version)
	}
	m := fromWireV2(&w)
	m.Signature = append([]byte(nil), sig...)
	m.signed = append([]byte(nil), js...)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// validateV2 checks the fields only version 2 has.
func (m *Manifest) validateV2() error {
	if len(m.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("signature is %d bytes, want %d", len(m.Signature), ed25519.SignatureSize)
	}
	if len(m.Parts) == 0 || len(m.Parts) > maxParts || len(m.Gaps) > maxParts {
		return fmt.Errorf("%d parts and %d gaps, want 1 to %d parts and at most %d gaps", len(m.Parts), len(m.Gaps), maxParts, maxParts)
	}
	if m.Part < 1 || m.Part > len(m.Parts) {
		return fmt.Errorf("part %d of %d", m.Part, len(m.Parts))
	}
	if !m.To.After(m.From) {
		return errors.New("the requested range is empty (to is not after from)")
	}
	for i, p := range m.Parts {
		if !validTime(p.From) || !validTime(p.To) || p.To.Before(p.From) {
			return fmt.Errorf("part %d: bad range", i+1)
		}
	}
	for i, g := range m.Gaps {
		if !validTime(g.From) || !validTime(g.To) || !g.To.After(g.From) {
			return fmt.Errorf("gap %d: bad range", i+1)
		}
		if i > 0 && g.From.Before(m.Gaps[i-1].To) {
			return fmt.Errorf("gap %d begins before gap %d ends", i+1, i)
		}
		switch g.Reason {
		case GapNoRecording, GapNotSealed, GapNoChain:
		default:
			return fmt.Errorf("gap %d: unknown reason %q", i+1, g.Reason)
		}
	}
	for i, s := range m.Segments {
		if len(s.StartsNS) != s.Count+1 {
			return fmt.Errorf("segment %d: %d fragment times for %d fragments (want count+1)", i+1, len(s.StartsNS), s.Count)
		}
		for j, t := range s.StartsNS {
			if t < 0 || j > 0 && t < s.StartsNS[j-1] {
				return fmt.Errorf("segment %d: fragment times are negative or decrease", i+1)
			}
		}
	}
	return nil
}

// The JSON form of version 2 (docs/evidence.md, "The manifest").
type wireManifestV2 struct {
	Version     int             `json:"version"`
	Camera      string          `json:"camera"`
	Stream      string          `json:"stream"`
	From        wireTime        `json:"from"`
	To          wireTime        `json:"to"`
	CreatedAt   wireTime        `json:"created_at"`
	RecorderKey string          `json:"recorder_key"`
	Part        int             `json:"part"`
	Parts       []wireSpan      `json:"parts"`
	Gaps        []wireGap       `json:"gaps"`
	Segments    []wireSegmentV2 `json:"segments"`
	Chain       []wireEntry     `json:"chain"`
	Head        wireHead        `json:"head"`
}

type wireSpan struct {
	From wireTime `json:"from"`
	To   wireTime `json:"to"`
}

type wireGap struct {
	From   wireTime `json:"from"`
	To     wireTime `json:"to"`
	Reason string   `json:"reason"`
}

type wireSegmentV2 struct {
	ChainSeq  int64     `json:"chain_seq"`
	Fragments []hexHash `json:"fragments"`
	First     int       `json:"first"`
	Count     int       `json:"count"`
	StartsNS  []int64   `json:"starts_ns"`
}

func toWireV2(m *Manifest) *wireManifestV2 {
	w1 := toWire(m)
	w := &wireManifestV2{
		Version: m.Version, Camera: w1.Camera, Stream: w1.Stream, From: w1.From, To: w1.To, CreatedAt: w1.CreatedAt,
		RecorderKey: w1.RecorderKey, Part: m.Part, Parts: make([]wireSpan, len(m.Parts)), Gaps: make([]wireGap, len(m.Gaps)),
		Segments: make([]wireSegmentV2, len(m.Segments)), Chain: w1.Chain, Head: w1.Head,
	}
	for i, p := range m.Parts {
		w.Parts[i] = wireSpan{From: wireTime(p.From), To: wireTime(p.To)}
	}
	for i, g := range m.Gaps {
		w.Gaps[i] = wireGap{From: wireTime(g.From), To: wireTime(g.To), Reason: g.Reason}
	}
	for i, s := range w1.Segments {
		starts := m.Segments[i].StartsNS
		if starts == nil {
			starts = []int64{}
		}
		w.Segments[i] = wireSegmentV2{ChainSeq: s.ChainSeq, Fragments: s.Fragments, First: s.First, Count: s.Count, StartsNS: starts}
	}
	return w
}

func fromWireV2(w *wireManifestV2) *Manifest {
	w1 := &wireManifest{Version: w.Version, Camera: w.Camera, Stream: w.Stream, From: w.From, To: w.To, CreatedAt: w.CreatedAt,
		RecorderKey: w.RecorderKey, Segments: make([]wireSegment, len(w.Segments)), Chain: w.Chain, Head: w.Head}
	for i, s := range w.Segments {
		w1.Segments[i] = wireSegment{ChainSeq: s.ChainSeq, Fragments: s.Fragments, First: s.First, Count: s.Count}
	}
	m := fromWire(w1)
	m.Part = w.Part
	for _, p := range w.Parts {
		m.Parts = append(m.Parts, Span{From: time.Time(p.From), To: time.Time(p.To)})
	}
	for _, g := range w.Gaps {
		m.Gaps = append(m.Gaps, Gap{From: time.Time(g.From), To: time.Time(g.To), Reason: g.Reason})
	}
	for i, s := range w.Segments {
		m.Segments[i].StartsNS = append([]int64(nil), s.StartsNS...)
	}
	return m
}
