package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// goodPayload returns the JSON of the standard export's manifest.
func goodPayload(t testing.TB) string {
	t.Helper()
	m, _ := newRecording(t, 2).standard(t)
	box, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	return string(box[24:])
}

// manifestCases is the table for TestParseManifest and the seeds of
// FuzzParseManifest.
func manifestCases(t testing.TB) []struct {
	name, payload string
	err           string // substring of the error; "" for a valid payload
} {
	g := goodPayload(t)
	must := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("%q not in the manifest", old)
		}
		return strings.Replace(g, old, new, 1)
	}
	hash := g[strings.Index(g, `"hash":"`)+8:][:64]
	sig := g[strings.Index(g, `"signature":"`)+13:][:128]
	return []struct{ name, payload, err string }{
		{"good", g, ""},
		{"white space", " \n" + strings.ReplaceAll(g, `,"`, ",\n  \"") + "\n", ""},
		{"fields reordered", must(`{"version":1,"camera":"door",`, `{"camera":"door","version":1,`), ""},
		{"empty", "", "manifest: empty"},
		{"blank", " \n", "manifest: empty"},
		{"not JSON", "hello", "invalid character"},
		{"array", "[1,2]", "cannot unmarshal array"},
		{"trailing data", g + "{}", "data after the JSON object"},
		{"trailing garbage", g + "x", "data after the JSON object"},
		{"cut short", g[:len(g)/2], "EOF"},
		{"unknown field", must(`"version":1,`, `"version":1,"extra":1,`), `unknown field "extra"`},
		{"unknown field in an entry", must(`"reason":`, `"why":"x","reason":`), `unknown field "why"`},
		{"field in capitals", must(`"camera":"door"`, `"Camera":"door"`), `unknown field "Camera"`},
		{"field with a Kelvin sign", must(`"kind":`, `"\u212aind":`), "unknown field"},
		{"field repeated", must(`"version":1,`, `"version":1,"version":1,`), `field "version" repeated`},
		{"field repeated, escaped", must(`"version":1,`, `"version":1,"v\u0065rsion":1,`), `field "version" repeated`},
		{"null", must(`"camera":"door"`, `"camera":null`), "null is not allowed"},
		{"null hash", must(`"prev":"`+hash, `"prev":null,"x":"`), "null is not allowed"},
		{"version 2 unsigned", must(`"version":1`, `"version":2`), "version 2 without the custos-export-v2 prefix"},
		{"version 3", must(`"version":1`, `"version":3`), "version 3, this verifier knows versions 1 and 2"},
		{"version missing", must(`"version":1,`, ``), "version 0"},
		{"version as string", must(`"version":1`, `"version":"1"`), "cannot unmarshal string"},
		{"camera missing", must(`"camera":"door",`, ``), "camera or stream missing"},
		{"short hash", must(hash, hash[:63]), "is not 64 lower-case hex digits"},
		{"long hash", must(hash, hash+"0"), "is not 64 lower-case hex digits"},
		{"upper-case hash", must(hash, strings.ToUpper(hash)), "is not 64 lower-case hex digits"},
		{"hash not hex", must(hash, "g"+hash[1:]), "is not 64 lower-case hex digits"},
		{"hash as number", must(`"`+hash+`"`, `12`), "cannot unmarshal number"},
		{"short signature", must(sig, sig[:126]), "not 128 lower-case hex digits"},
		{"time with offset", must(`"signed_at":"2026-11-29T09:30:00Z"`, `"signed_at":"2026-11-29T10:30:00+01:00"`), "not RFC 3339 UTC"},
		{"time without zone", must(`"signed_at":"2026-11-29T09:30:00Z"`, `"signed_at":"2026-11-29T09:30:00"`), "not RFC 3339 UTC"},
		{"bad time", must(`"signed_at":"2026-11-29T09:30:00Z"`, `"signed_at":"2026-11-29T25:30:00Z"`), "not RFC 3339 UTC"},
		{"time out of range", must(`"signed_at":"2026-11-29T09:30:00Z"`, `"signed_at":"1600-01-01T00:00:00Z"`), "within years 1678..2262"},
		{"time with nanoseconds", must(`"signed_at":"2026-11-29T09:30:00Z"`, `"signed_at":"2026-11-29T09:30:00.000000001Z"`), ""},
		{"no segments", must(g[strings.Index(g, `"segments":[`):strings.Index(g, `,"chain":`)], `"segments":[]`), "0 segments"},
		{"no chain", must(g[strings.Index(g, `"chain":[`):strings.Index(g, `,"head":`)], `"chain":[]`), "0 chain entries"},
		{"count 0", must(`"first":0,"count":5`, `"first":0,"count":0`), "segment 2: first 0 count 0"},
		{"count past the end", must(`"first":0,"count":5`, `"first":1,"count":5`), "segment 2: first 1 count 5 do not lie within its 5 fragments"},
		{"negative first", must(`"first":0,"count":5`, `"first":-1,"count":5`), "first -1"},
		{"huge count", must(`"first":0,"count":5`, `"first":0,"count":9223372036854775807`), "do not lie within"},
		{"count as float", must(`"count":5`, `"count":5.0`), "cannot unmarshal number 5.0"},
		{"seq too big", must(`"seq":10`, `"seq":9223372036854775808`), "cannot unmarshal number"},
		{"no fragments", must(g[strings.Index(g, `"fragments":[`):strings.Index(g, `],"first":2`)+1], `"fragments":[]`), "segment 1 has 0 fragments"},
		{"bad recorder key", must(`"recorder_key":"custos-ed25519:`, `"recorder_key":"custos-ed25519:A`), "recorder_key"},
		{"PEM recorder key", must(`"recorder_key":"`, `"recorder_key":"-----BEGIN PUBLIC KEY-----\n`), "recorder_key"},
		{"deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested too deeply"},
		{"invalid UTF-8 key", must(`"stream":"main"`, "\"stre\xffam\":\"main\""), "unknown field"},
	}
}

func TestParseManifest(t *testing.T) {
	for _, c := range manifestCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(c.payload))
			if c.err == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				if m.Camera != "door" || len(m.Chain) != 7 || len(m.Segments) != 3 || m.Segments[2].Count != 4 {
					t.Errorf("parsed %+v", m)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("ParseManifest = %v, want an error with %q", err, c.err)
			}
		})
	}
}

func TestParseManifestBounds(t *testing.T) {
	g := goodPayload(t)
	if _, err := ParseManifest(make([]byte, MaxManifestSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized: %v", err)
	}
	// A segment with more fragments than any recording makes.
	h := `"` + strings.Repeat("0", 64) + `"`
	many := strings.TrimSuffix(strings.Repeat(h+",", maxSegmentFragments+1), ",")
	i := strings.Index(g, `"fragments":[`) + len(`"fragments":[`)
	j := i + strings.Index(g[i:], "]")
	if _, err := ParseManifest([]byte(g[:i] + many + g[j:])); err == nil || !strings.Contains(err.Error(), "segment 1 has 65537 fragments") {
		t.Errorf("too many fragments: %v", err)
	}
}

func TestMarshalBox(t *testing.T) {
	m, _ := newRecording(t, 2).standard(t)
	box, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(box); int(got) != len(box) {
		t.Errorf("box size %d, box is %d bytes", got, len(box))
	}
	if got, want := hex.EncodeToString(box[4:24]), "75756964"+"c9f3682f98054e1b88c697d73bc11387"; got != want {
		t.Errorf("box header %s, want %s", got, want)
	}
	payload := string(box[24:])
	for _, want := range []string{
		`{"version":1,"camera":"door","stream":"main","from":"2026-11-29T09:05:00Z","to":"2026-11-29T09:08:00Z","created_at":"2026-11-29T09:31:00Z","recorder_key":"custos-ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","segments":[{"chain_seq":4,"fragments":["`,
		`"first":2,"count":4},{"chain_seq":5,`,
		`"chain":[{"seq":4,"kind":"segment","camera":"door","stream":"main","at":"2026-11-29T09:05:00Z","key":"door/main/2026-11-29/090500.mp4","wall_dur_ns":60000000000,"dur90k":5400000,"frames":1500,"bytes":`,
		`{"seq":7,"kind":"deletion","camera":"door","stream":"main","at":"2026-11-29T09:08:30Z","key":"door/main/2026-11-29/090000.mp4",`,
		`"reason":"retention","prev":"`,
		`"head":{"camera":"door","stream":"main","seq":10,"hash":"`,
		`"signed_at":"2026-11-29T09:30:00Z","signature":"`,
	} {
		if !strings.Contains(payload, want) {
			t.Errorf("payload lacks %s", want)
		}
	}
	back, err := ParseManifest(box[24:])
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.MarshalBox()
	if err != nil || !bytes.Equal(again, box) {
		t.Fatalf("round trip differs: %v", err)
	}
	if back.Chain[3] != m.Chain[3] || !back.Head.SignedAt.Equal(m.Head.SignedAt) {
		t.Errorf("round trip: %+v", back.Chain[3])
	}

	for name, edit := range map[string]func(*Manifest){
		"invalid UTF-8":  func(m *Manifest) { m.Chain[2].Reason = "\xff" },
		"unsigned head":  func(m *Manifest) { m.Head.Signature = nil },
		"no version":     func(m *Manifest) { m.Version = 0 },
		"zero time":      func(m *Manifest) { m.CreatedAt = time.Time{} },
		"zero time (at)": func(m *Manifest) { m.Chain[1].At = time.Time{} },
		"raw key":        func(m *Manifest) { m.RecorderKey = hex.EncodeToString(m.Head.Hash[:]) },
		"no segments":    func(m *Manifest) { m.Segments = nil },
	} {
		c := clone(t, m)
		edit(c)
		if _, err := c.MarshalBox(); err == nil {
			t.Errorf("%s: MarshalBox succeeded", name)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	for _, c := range manifestCases(f) {
		f.Add([]byte(c.payload))
	}
	for _, c := range manifestV2Cases(f) {
		f.Add([]byte(c.payload))
	}
	key := rfc8032Key(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		box, err := m.MarshalBox()
		if err != nil {
			t.Fatalf("MarshalBox of a parsed manifest: %v", err)
		}
		m2, err := ParseManifest(box[24:])
		if err != nil {
			t.Fatalf("ParseManifest of MarshalBox: %v", err)
		}
		if box2, _ := m2.MarshalBox(); !bytes.Equal(box, box2) {
			t.Fatal("MarshalBox is not stable")
		}
		// Verify it as it is, then signed with the test key so that the
		// chain, segment and fragment checks run too: no panic, and a
		// report that agrees with the input.
		var hashes [][32]byte
		for _, s := range m.Segments {
			hashes = append(hashes, s.Fragments[s.First:s.First+s.Count]...)
		}
		VerifyEvidenceHashes(m, hashes, nil)
		m.RecorderKey = PublicKeyString(key.Public().(ed25519.PublicKey))
		SignHead(key, &m.Head)
		if m.Version == 2 {
			if err := m.Sign(key); err != nil {
				t.Fatalf("Sign of a parsed manifest: %v", err)
			}
		}
		for _, hs := range [][][32]byte{hashes, hashes[1:], append(hashes, hashes[0])} {
			rep, err := VerifyEvidenceHashes(m, hs, nil)
			if err == nil && (!rep.OK || rep.Fragments != len(hashes) || rep.Segments != len(m.Segments)) {
				t.Fatalf("report %+v for %d fragments", rep, len(hs))
			}
			if err != nil && !strings.Contains(fmt.Sprint(err), " ") {
				t.Fatalf("terse error %q", err)
			}
		}
	})
}

// goodPayloadV2 returns the payload of the standard export as version 2,
// with a gap.
func goodPayloadV2(t testing.TB) string {
	t.Helper()
	r := newRecording(t, 2)
	m, _ := r.exportV2(t, nil, []Gap{{t0.Add(7 * time.Minute), t0.Add(8 * time.Minute), GapNotSealed}}, sel{4, 2, 4}, sel{5, 0, 5}, sel{6, 0, 4})
	box, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	return string(box[24:])
}

// manifestV2Cases is the version 2 table for TestParseManifestV2 and
// seeds of FuzzParseManifest.
func manifestV2Cases(t testing.TB) []struct{ name, payload, err string } {
	g := goodPayloadV2(t)
	must := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("%q not in the manifest", old)
		}
		return strings.Replace(g, old, new, 1)
	}
	js := g[len(exportDomain)+ed25519.SignatureSize:]
	return []struct{ name, payload, err string }{
		{"good", g, ""},
		{"prefix only", exportDomain, "too short for its signature"},
		{"no JSON", g[:len(exportDomain)+ed25519.SignatureSize], "manifest: empty"},
		{"JSON without the prefix", js, "version 2 without the custos-export-v2 prefix"},
		{"version 1 after the prefix", must(`"version":2`, `"version":1`), "version 1 after the custos-export-v2 prefix"},
		{"v1 segment form", must(`,"starts_ns":[`, `,"x":[`), `unknown field "x"`},
		{"starts too short", must(`"starts_ns":[20000000000,`, `"starts_ns":[`), "segment 1: 4 fragment times for 4 fragments"},
		{"starts decrease", must(`"starts_ns":[20000000000,`, `"starts_ns":[40000000000,`), "segment 1: fragment times are negative or decrease"},
		{"starts negative", must(`"starts_ns":[20000000000,`, `"starts_ns":[-1,`), "negative or decrease"},
		{"part 0", must(`"part":1`, `"part":0`), "part 0 of 1"},
		{"part past the parts", must(`"part":1`, `"part":2`), "part 2 of 1"},
		{"no parts", must(js[strings.Index(js, `"parts":[`):strings.Index(js, `,"gaps":`)], `"parts":[]`), "0 parts"},
		{"unknown gap reason", must(`"reason":"not_sealed"`, `"reason":"lunch"`), `gap 1: unknown reason "lunch"`},
		{"empty gap", must(`"from":"2026-11-29T09:07:00Z","to":"2026-11-29T09:08:00Z","reason"`, `"from":"2026-11-29T09:07:00Z","to":"2026-11-29T09:07:00Z","reason"`), "gap 1: bad range"},
		{"gap repeated field", must(`"reason":"not_sealed"`, `"reason":"not_sealed","reason":"no_chain"`), `field "reason" repeated`},
		{"empty range", must(`"to":"2026-11-29T09:08:00Z","created_at"`, `"to":"2026-11-29T09:05:00Z","created_at"`), "the requested range is empty"},
	}
}

func TestParseManifestV2(t *testing.T) {
	for _, c := range manifestV2Cases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(c.payload))
			if c.err == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				if m.Version != 2 || m.Part != 1 || len(m.Parts) != 1 || len(m.Gaps) != 1 || len(m.Segments[2].StartsNS) != 5 {
					t.Errorf("parsed %+v", m)
				}
				box, err := m.MarshalBox()
				if err != nil || string(box[24:]) != c.payload {
					t.Errorf("round trip differs: %v", err)
				}
				if err := m.verifyExportSignature(rfc8032Key(t).Public().(ed25519.PublicKey)); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("ParseManifest = %v, want an error with %q", err, c.err)
			}
		})
	}
}
