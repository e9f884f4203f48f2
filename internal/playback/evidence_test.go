package playback_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

// TestEvidenceExport builds evidence exports from a recording with hash
// chains: the file holds the recorded fragments byte for byte (its
// fragment hashes are the recording's), verifies against the recorder's
// key, and ffmpeg decodes it without an error from the key frame before
// from to the end; a range across a gap ends at the gap; a segment whose
// bytes changed on disk is refused.
func TestEvidenceExport(t *testing.T) {
	ctx := context.Background()
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	rc.AddRun(t, pt.At(480), 150, 100)
	src := &playback.Source{Index: rc.Index, Disks: rc.Disks, Cache: playback.NewIndexCache(1 << 20)}
	pub := rc.Key.Public().(ed25519.PublicKey)
	export := func(from, to float64) (*playback.File, string, []byte) {
		t.Helper()
		f, err := src.Evidence(ctx, "door", "main", pt.At(from), pt.At(to), rc.Index, pub)
		if err != nil {
			t.Fatalf("Evidence(%v, %v): %v", from, to, err)
		}
		path := filepath.Join(t.TempDir(), f.Name)
		pt.WriteFile(t, f.Open(ctx), f.Size(), path)
		b, _ := os.ReadFile(path)
		return f, path, b
	}
	f, path, b := export(37, 260)
	spans, payload, err := integrity.FindFragments(b)
	if err != nil || payload == nil {
		t.Fatalf("FindFragments: %v (manifest %v)", err, payload != nil)
	}
	m, err := integrity.ParseManifest(payload)
	if err != nil {
		t.Fatal(err)
	}
	var frags [][]byte
	for _, sp := range spans {
		frags = append(frags, b[sp[0]:sp[1]])
	}
	rep, err := integrity.VerifyEvidence(m, frags, pub)
	if err != nil || !rep.OK || rep.Segments != 3 || rep.Camera != "door" {
		t.Fatalf("VerifyEvidence = %+v, %v", rep, err)
	}
	// The file's header is the recorded one.
	ih, err := integrity.InitHash(bytes.NewReader(b), int64(len(b)))
	if err != nil || ih != m.Chain[m.Segments[0].ChainSeq-m.Chain[0].Seq].InitHash {
		t.Errorf("init hash of the export %x differs from the chain's (%v)", ih, err)
	}
	// The export starts at or before from, at a key frame, and covers to.
	if f.From.After(pt.At(37)) || f.To.Before(pt.At(260)) || f.From.Before(pt.At(0)) || f.To.After(pt.At(300)) {
		t.Errorf("covers %s – %s, asked %s – %s", f.From, f.To, pt.At(37), pt.At(260))
	}
	errText, n := pt.DecodeErrors(t, path)
	if errText != "" {
		t.Errorf("ffmpeg: %s", errText)
	}
	want := int(f.To.Sub(f.From) / pt.FrameDur)
	if n < want-1 || n > want+1 {
		t.Errorf("ffmpeg decoded %d frames, the export covers %d", n, want)
	}
	t.Logf("%s: %d bytes, %d fragments in %d segments, %d frames, %s – %s", f.Name, len(b), len(spans), rep.Segments, n, f.From, f.To)

	// Across the gap: the export ends with the first run.
	f2, _, _ := export(250, 560)
	if !f2.To.Equal(pt.At(300)) {
		t.Errorf("export across a gap ends at %s, want the run's end %s", f2.To, pt.At(300))
	}
	// The same range twice gives the same bytes (a stable ETag).
	if f3, _, b3 := export(37, 260); f3.ETag != f.ETag || string(b3) != string(b) {
		t.Error("two exports of one range differ")
	}

	// A stored segment changed: refused, naming it.
	segs, _ := rc.Index.Segments(ctx, 1, pt.At(0), pt.At(300))
	victim := filepath.Join(rc.Dir, "disk", filepath.FromSlash(segs[1].Key))
	orig, _ := os.ReadFile(victim)
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(victim, bad, 0o644)
	src.Cache = playback.NewIndexCache(1 << 20)
	_, err = src.Evidence(ctx, "door", "main", pt.At(37), pt.At(260), rc.Index, pub)
	if err == nil || !strings.Contains(err.Error(), segs[1].Key) || !strings.Contains(err.Error(), "changed since it was recorded") {
		t.Errorf("export over a changed segment: %v", err)
	}
	os.WriteFile(victim, orig, 0o644)
}
