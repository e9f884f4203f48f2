package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ManifestUUID is the 16-byte user type of the MP4 `uuid` box that carries
// a Manifest: c9f3682f-9805-4e1b-88c6-97d73bc11387.
const ManifestUUID = "\xc9\xf3\x68\x2f\x98\x05\x4e\x1b\x88\xc6\x97\xd7\x3b\xc1\x13\x87"

// Limits on a manifest, so that a hostile file cannot make a verifier
// allocate without bound.
const (
	MaxManifestSize     = 64 << 20 // bytes of JSON
	MaxFragments        = 1 << 22  // fragments in a file (sum of Count), and spans FindFragments returns
	maxSegmentFragments = 1 << 16  // fragments of one segment
	maxSegments         = 1 << 18  // segments in a manifest
	maxChain            = 1 << 20  // chain entries in a manifest
	maxJSONDepth        = 8        // nesting of JSON arrays and objects (the manifest needs 4)
)

// Manifest travels inside an evidence export, in a uuid box
// (ManifestUUID). Its JSON form is documented in docs/evidence.md.
//
// Version 2 (what Custos writes) is signed as a whole: Signature is the
// recorder key's Ed25519 signature over "custos-export-v2" and the JSON,
// so the range asked for, the parts and gaps, and which fragments of each
// segment are in the file are all covered. Version 1 signed only the
// chain's head: its From, To and segment selection are not protected
// (docs/evidence.md, "Version 1 exports").
type Manifest struct {
	Version        int // 1 or 2
	Camera, Stream string
	// From and To are the range asked for (version 1: informational).
	From, To time.Time
	// CreatedAt is the signing time of the newest head the export uses
	// (so that one range exported twice gives the same bytes).
	CreatedAt   time.Time
	RecorderKey string // PublicKeyString
	// Version 2 only: the files the export of [From, To) was split into
	// (one per recording run and stream parameters), in time order, each
	// the exact time its fragments cover; Part is this file's place in
	// Parts (1-based); Gaps are the stretches of [From, To) that no part
	// covers, with their reasons, in time order.
	Part     int
	Parts    []Span
	Gaps     []Gap
	Segments []ManifestSegment // in file order
	Chain    []Entry           // consecutive entries from the first exported segment's entry up to Head.Seq
	Head     Head
	// Signature (version 2) is Ed25519 by RecorderKey over
	// "custos-export-v2" followed by the manifest's JSON.
	Signature []byte
	// signed is the JSON the signature covers, as ParseManifest found it
	// (nil for a manifest built in memory: its JSON encoding is used).
	signed []byte
}

// Span is a wall-clock time range [From, To).
type Span struct{ From, To time.Time }

// Gap is a stretch of an export's requested range that the export does
// not cover, and why (one of the Gap constants).
type Gap struct {
	From, To time.Time
	Reason   string
}

// Reasons for a Gap.
const (
	GapNoRecording = "no_recording" // nothing recorded (camera offline, recorder stopped, deleted, or in the future)
	GapNotSealed   = "not_sealed"   // the segment still being written: its hashes are not in the chain yet
	GapNoChain     = "no_chain"     // recorded, but without a chain entry (before hash chains, or cut short by a crash)
)

// GapText says a gap reason in words, for people.
func GapText(reason string) string {
	switch reason {
	case GapNoRecording:
		return "no recording"
	case GapNotSealed:
		return "not yet sealed (the segment was still being written)"
	case GapNoChain:
		return "recorded without a hash chain entry (cannot be exported as evidence)"
	}
	return reason
}

// ManifestSegment is one segment, all or part of which is in the file.
type ManifestSegment struct {
	ChainSeq  int64      // the segment's KindSegment entry in Chain
	Fragments [][32]byte // hashes of ALL fragments of the segment, in order (so SegmentHash can be recomputed)
	// The fragments of the segment that appear in the file, contiguous and
	// in order: Fragments[First:First+Count]. Count >= 1.
	First, Count int
	// StartsNS (version 2) holds Count+1 wall times, as nanoseconds after
	// the segment's chain entry's At: the start of each fragment in the
	// file, then the end of the last one. Non-decreasing.
	StartsNS []int64
}

// MarshalBox returns the whole uuid box: size (32-bit), "uuid",
// ManifestUUID, then the JSON payload. It fails for a manifest that
// ParseManifest would refuse (bad version, counts or key, unsigned head,
// times out of range, invalid UTF-8) or one over MaxManifestSize.
func (m *Manifest) MarshalBox() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for _, s := range m.strings() {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("manifest: invalid UTF-8 in %q", s)
		}
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, 8))
	buf.WriteString(ManifestUUID)
	var w any = toWire(m)
	if m.Version == 2 {
		buf.WriteString(exportDomain)
		buf.Write(m.Signature)
		w = toWireV2(m)
	}
	head := buf.Len()
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b)-head > MaxManifestSize {
		return nil, fmt.Errorf("manifest: %d bytes of JSON, more than %d", len(b)-head, MaxManifestSize)
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	copy(b[4:8], "uuid")
	return b, nil
}

// strings returns every string of m that the JSON form carries.
func (m *Manifest) strings() []string {
	s := []string{m.Camera, m.Stream, m.RecorderKey, m.Head.Camera, m.Head.Stream}
	for i := range m.Chain {
		e := &m.Chain[i]
		s = append(s, e.Kind, e.Camera, e.Stream, e.Key, e.Reason)
	}
	for _, g := range m.Gaps {
		s = append(s, g.Reason)
	}
	return s
}

// ParseManifest parses the manifest payload (what follows the uuid box's
// 16-byte user type): for version 2, "custos-export-v2", the 64-byte
// signature and the JSON; for version 1, the JSON alone. It is strict:
// one JSON object with the documented lower-case keys only, no repeated
// keys, no null, hashes as 64 lower-case hex digits, the signature as 128,
// times in RFC 3339 UTC ("Z"), the version its layout says, at least one
// segment and chain entry, each segment's First and Count within its
// Fragments, counts within the limits above and at most MaxManifestSize
// bytes (docs/evidence.md, "The manifest"). It checks the form only
// (not the signature); VerifyEvidence checks the contents, and relies on
// the returned manifest not being modified. It does no I/O and does not
// retain payload.
func ParseManifest(payload []byte) (*Manifest, error) {
	if len(payload) > MaxManifestSize+len(exportDomain)+ed25519.SignatureSize {
		return nil, fmt.Errorf("manifest: %d bytes, more than %d", len(payload), MaxManifestSize)
	}
	if bytes.HasPrefix(payload, []byte(exportDomain)) {
		return parseV2(payload[len(exportDomain):])
	}
	if len(payload) > MaxManifestSize {
		return nil, fmt.Errorf("manifest: %d bytes, more than %d", len(payload), MaxManifestSize)
	}
	if err := checkJSON(payload); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var v struct{ Version int }
	if json.Unmarshal(payload, &v) == nil && v.Version == 2 {
		return nil, errors.New("manifest: version 2 without the custos-export-v2 prefix and signature")
	}
	var w wireManifest
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m := fromWire(&w)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// validate checks the form of m, which ParseManifest and MarshalBox
// require and VerifyEvidence relies on to index safely.
func (m *Manifest) validate() error {
	if m.Version != 1 && m.Version != 2 {
		return fmt.Errorf("version %d, this verifier knows versions 1 and 2", m.Version)
	}
	if m.Camera == "" || m.Stream == "" {
		return errors.New("camera or stream missing")
	}
	if _, err := ParsePublicKey(m.RecorderKey); err != nil || !strings.HasPrefix(m.RecorderKey, PublicKeyPrefix) {
		return fmt.Errorf("recorder_key %q is not custos-ed25519:… with 32 bytes", m.RecorderKey)
	}
	for _, t := range []time.Time{m.From, m.To, m.CreatedAt, m.Head.SignedAt} {
		if !validTime(t) {
			return errors.New("a time is out of range")
		}
	}
	if len(m.Head.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("head signature is %d bytes, want %d", len(m.Head.Signature), ed25519.SignatureSize)
	}
	if len(m.Segments) == 0 || len(m.Segments) > maxSegments {
		return fmt.Errorf("%d segments, want 1 to %d", len(m.Segments), maxSegments)
	}
	if len(m.Chain) == 0 || len(m.Chain) > maxChain {
		return fmt.Errorf("%d chain entries, want 1 to %d", len(m.Chain), maxChain)
	}
	for i := range m.Chain {
		if !validTime(m.Chain[i].At) {
			return fmt.Errorf("chain entry %d: time out of range", m.Chain[i].Seq)
		}
	}
	total := 0
	for i, s := range m.Segments {
		n := len(s.Fragments)
		if n == 0 || n > maxSegmentFragments {
			return fmt.Errorf("segment %d has %d fragments, want 1 to %d", i+1, n, maxSegmentFragments)
		}
		if s.First < 0 || s.First >= n || s.Count < 1 || s.Count > n-s.First {
			return fmt.Errorf("segment %d: first %d count %d do not lie within its %d fragments", i+1, s.First, s.Count, n)
		}
		if total += s.Count; total > MaxFragments {
			return fmt.Errorf("more than %d fragments", MaxFragments)
		}
	}
	if m.Version == 2 {
		return m.validateV2()
	}
	return nil
}

// checkJSON walks the tokens of one JSON value and refuses what
// encoding/json would let through: repeated keys (last one wins there),
// keys in other than lower case (matched case-insensitively there), null
// (ignored there), deep nesting and data after the value.
func checkJSON(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := walkJSON(d, 0); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

func walkJSON(d *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("JSON nested too deeply")
	}
	t, err := d.Token()
	if err != nil {
		return err
	}
	switch t := t.(type) {
	case nil:
		return errors.New("null is not allowed")
	case json.Delim:
		if t == '{' {
			seen := make(map[string]bool)
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if !lowerKey(key) {
					return fmt.Errorf("unknown field %q", key)
				}
				if seen[key] {
					return fmt.Errorf("field %q repeated", key)
				}
				seen[key] = true
				if err := walkJSON(d, depth+1); err != nil {
					return err
				}
			}
		} else {
			for d.More() {
				if err := walkJSON(d, depth+1); err != nil {
					return err
				}
			}
		}
		_, err = d.Token() // the closing delimiter
		return err
	}
	return nil
}

// lowerKey reports whether k is made of [a-z0-9_], as every manifest key.
func lowerKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// The JSON form (docs/evidence.md, "The manifest").
type wireManifest struct {
	Version     int           `json:"version"`
	Camera      string        `json:"camera"`
	Stream      string        `json:"stream"`
	From        wireTime      `json:"from"`
	To          wireTime      `json:"to"`
	CreatedAt   wireTime      `json:"created_at"`
	RecorderKey string        `json:"recorder_key"`
	Segments    []wireSegment `json:"segments"`
	Chain       []wireEntry   `json:"chain"`
	Head        wireHead      `json:"head"`
}

type wireSegment struct {
	ChainSeq  int64     `json:"chain_seq"`
	Fragments []hexHash `json:"fragments"`
	First     int       `json:"first"`
	Count     int       `json:"count"`
}

type wireEntry struct {
	Seq         int64    `json:"seq"`
	Kind        string   `json:"kind"`
	Camera      string   `json:"camera"`
	Stream      string   `json:"stream"`
	At          wireTime `json:"at"`
	Key         string   `json:"key"`
	WallDurNS   int64    `json:"wall_dur_ns"`
	Dur90k      int64    `json:"dur90k"`
	Frames      int64    `json:"frames"`
	Bytes       int64    `json:"bytes"`
	SegmentHash hexHash  `json:"segment_hash"`
	InitHash    hexHash  `json:"init_hash"`
	Reason      string   `json:"reason"`
	Prev        hexHash  `json:"prev"`
	Hash        hexHash  `json:"hash"`
}

type wireHead struct {
	Camera    string   `json:"camera"`
	Stream    string   `json:"stream"`
	Seq       int64    `json:"seq"`
	Hash      hexHash  `json:"hash"`
	SignedAt  wireTime `json:"signed_at"`
	Signature hexSig   `json:"signature"`
}

// hexHash is a hash as 64 lower-case hex digits.
type hexHash [32]byte

func (h hexHash) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

func (h *hexHash) UnmarshalText(b []byte) error {
	if len(b) != 2*HashSize || !lowerHex(b) {
		return fmt.Errorf("hash %.80q is not 64 lower-case hex digits", b)
	}
	hex.Decode(h[:], b)
	return nil
}

// hexSig is a signature as 128 lower-case hex digits.
type hexSig []byte

func (s hexSig) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, s), nil }

func (s *hexSig) UnmarshalText(b []byte) error {
	if len(b) != 2*ed25519.SignatureSize || !lowerHex(b) {
		return fmt.Errorf("signature %.80q is not 128 lower-case hex digits", b)
	}
	*s = make([]byte, ed25519.SignatureSize)
	hex.Decode(*s, b)
	return nil
}

func lowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// wireTime is a time in RFC 3339 UTC with "Z" and as many fraction digits
// as needed (up to nanoseconds).
type wireTime time.Time

func (t wireTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format(time.RFC3339Nano)), nil
}

func (t *wireTime) UnmarshalText(b []byte) error {
	if len(b) == 0 || b[len(b)-1] != 'Z' {
		return fmt.Errorf("time %.80q is not RFC 3339 UTC (ending in Z)", b)
	}
	v, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil || !validTime(v) {
		return fmt.Errorf("time %.80q is not RFC 3339 UTC within years 1678..2262", b)
	}
	*t = wireTime(v.UTC())
	return nil
}

func toWire(m *Manifest) *wireManifest {
	w := &wireManifest{
		Version: m.Version, Camera: m.Camera, Stream: m.Stream,
		From: wireTime(m.From), To: wireTime(m.To), CreatedAt: wireTime(m.CreatedAt),
		RecorderKey: m.RecorderKey,
		Segments:    make([]wireSegment, len(m.Segments)),
		Chain:       make([]wireEntry, len(m.Chain)),
		Head: wireHead{
			Camera: m.Head.Camera, Stream: m.Head.Stream, Seq: m.Head.Seq, Hash: m.Head.Hash,
			SignedAt: wireTime(m.Head.SignedAt), Signature: m.Head.Signature,
		},
	}
	for i, s := range m.Segments {
		f := make([]hexHash, len(s.Fragments))
		for j := range s.Fragments {
			f[j] = s.Fragments[j]
		}
		w.Segments[i] = wireSegment{ChainSeq: s.ChainSeq, Fragments: f, First: s.First, Count: s.Count}
	}
	for i := range m.Chain {
		e := &m.Chain[i]
		w.Chain[i] = wireEntry{
			Seq: e.Seq, Kind: e.Kind, Camera: e.Camera, Stream: e.Stream, At: wireTime(e.At),
			Key: e.Key, WallDurNS: e.WallDurNS, Dur90k: e.Dur90k, Frames: e.Frames, Bytes: e.Bytes,
			SegmentHash: e.SegmentHash, InitHash: e.InitHash, Reason: e.Reason, Prev: e.Prev, Hash: e.Hash,
		}
	}
	return w
}

func fromWire(w *wireManifest) *Manifest {
	m := &Manifest{
		Version: w.Version, Camera: w.Camera, Stream: w.Stream,
		From: time.Time(w.From), To: time.Time(w.To), CreatedAt: time.Time(w.CreatedAt),
		RecorderKey: w.RecorderKey,
		Segments:    make([]ManifestSegment, len(w.Segments)),
		Chain:       make([]Entry, len(w.Chain)),
		Head: Head{
			Camera: w.Head.Camera, Stream: w.Head.Stream, Seq: w.Head.Seq, Hash: w.Head.Hash,
			SignedAt: time.Time(w.Head.SignedAt), Signature: w.Head.Signature,
		},
	}
	for i, s := range w.Segments {
		f := make([][32]byte, len(s.Fragments))
		for j := range s.Fragments {
			f[j] = s.Fragments[j]
		}
		m.Segments[i] = ManifestSegment{ChainSeq: s.ChainSeq, Fragments: f, First: s.First, Count: s.Count}
	}
	for i := range w.Chain {
		e := &w.Chain[i]
		m.Chain[i] = Entry{
			Seq: e.Seq, Kind: e.Kind, Camera: e.Camera, Stream: e.Stream, At: time.Time(e.At),
			Key: e.Key, WallDurNS: e.WallDurNS, Dur90k: e.Dur90k, Frames: e.Frames, Bytes: e.Bytes,
			SegmentHash: e.SegmentHash, InitHash: e.InitHash, Reason: e.Reason, Prev: e.Prev, Hash: e.Hash,
		}
	}
	return m
}
