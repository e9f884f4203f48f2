package playback_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/store"
)

// TestEvidenceExport builds evidence exports from a recording with hash
// chains: the file holds the recorded fragments byte for byte (its
// fragment hashes are the recording's), verifies against the recorder's
// key, and ffmpeg decodes it without an error from the key frame before
// from to the end; a range across a gap is two parts that both report the
// gap, one reaching into the segment being written reports it as not
// sealed; a segment whose bytes changed on disk is refused.
func TestEvidenceExport(t *testing.T) {
	ctx := context.Background()
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	rc.AddRun(t, pt.At(480), 150, 100)
	src := &playback.Source{Index: rc.Index, Disks: rc.Disks, Cache: playback.NewIndexCache(1 << 20)}
	pub := rc.Key.Public().(ed25519.PublicKey)
	export := func(from, to float64, part ...int) (*playback.File, string, []byte) {
		t.Helper()
		p := 1
		if len(part) > 0 {
			p = part[0]
		}
		f, err := src.Evidence(ctx, "door", "main", pt.At(from), pt.At(to), p, rc.Index, rc.Key)
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
	if err != nil || !rep.OK || rep.Segments != 3 || rep.Camera != "door" || rep.Version != 2 {
		t.Fatalf("VerifyEvidence = %+v, %v", rep, err)
	}
	// What the verifier reports is exactly what the file covers.
	if !rep.Covered.From.Equal(f.From) || !rep.Covered.To.Equal(f.To) || len(rep.Gaps) != 0 || len(rep.Parts) != 1 {
		t.Errorf("verifier reports %+v, the export covers %s – %s", rep, f.From, f.To)
	}
	if rep2, _, err := integrity.VerifyFile(bytes.NewReader(b), int64(len(b)), pub); err != nil || !rep2.Covered.To.Equal(f.To) {
		t.Errorf("VerifyFile = %+v, %v", rep2, err)
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

	// Across the gap: two parts, one per run, and the gap between them,
	// in both parts' manifests.
	f2, _, b2 := export(250, 560)
	f4, path4, b4 := export(250, 560, 2)
	wantGaps := []integrity.Gap{{From: pt.At(300), To: pt.At(480), Reason: integrity.GapNoRecording}}
	for i, ff := range []*playback.File{f2, f4} {
		ev := ff.Evidence
		if ev == nil || ev.Part != i+1 || len(ev.Parts) != 2 || !slices.Equal(ev.Gaps, wantGaps) {
			t.Fatalf("part %d: %+v", i+1, ev)
		}
	}
	if !f2.To.Equal(pt.At(300)) || f4.From.Before(pt.At(480)) || f4.To.Before(pt.At(560)) || !f2.Evidence.Parts[1].From.Equal(f4.From) {
		t.Errorf("parts cover %s – %s and %s – %s", f2.From, f2.To, f4.From, f4.To)
	}
	for i, bb := range [][]byte{b2, b4} {
		rep, _, err := integrity.VerifyFile(bytes.NewReader(bb), int64(len(bb)), pub)
		if err != nil || rep.Part != i+1 || !slices.Equal(rep.Gaps, wantGaps) || !rep.Covered.From.Equal(f2.Evidence.Parts[i].From) {
			t.Errorf("part %d verifies as %+v, %v", i+1, rep, err)
		}
	}
	if errText, n := pt.DecodeErrors(t, path4); errText != "" || n < 70 {
		t.Errorf("part 2: ffmpeg decoded %d frames: %q", n, errText)
	}
	if _, err := src.Evidence(ctx, "door", "main", pt.At(250), pt.At(560), 3, rc.Index, rc.Key); err == nil || !strings.Contains(err.Error(), "has 2 part(s)") {
		t.Errorf("part 3 of 2: %v", err)
	}
	// A segment without a chain entry (recorded before chains, or cut
	// short by a crash): a gap "no chain" between two "no recording".
	run, err := rc.Index.StartRun(ctx, 1, pt.At(640))
	if err != nil {
		t.Fatal(err)
	}
	unchained := store.Segment{StreamID: 1, RunID: run.ID, Disk: "d1", Key: "door/main/unchained.mp4", Start: pt.At(640), State: store.SegmentWriting}
	if err := rc.Index.AddSegment(ctx, &unchained); err != nil {
		t.Fatal(err)
	}
	unchained.State, unchained.Dur90k, unchained.WallDur = store.SegmentClosed, 20*pt.Frame90k, 20*pt.FrameDur
	if err := rc.Index.UpdateSegment(ctx, &unchained); err != nil {
		t.Fatal(err)
	}
	noChain := []integrity.Gap{{From: pt.At(630), To: pt.At(640), Reason: integrity.GapNoRecording},
		{From: pt.At(640), To: pt.At(660), Reason: integrity.GapNoChain}}
	if f6, _, _ := export(600, 670); !slices.Equal(f6.Evidence.Gaps, append(slices.Clone(noChain), integrity.Gap{From: pt.At(660), To: pt.At(670), Reason: integrity.GapNoRecording})) {
		t.Errorf("over an unchained segment: gaps %+v", f6.Evidence.Gaps)
	}
	if _, err := src.Evidence(ctx, "door", "main", pt.At(645), pt.At(655), 1, rc.Index, rc.Key); err == nil || !strings.Contains(err.Error(), "no hash chain entry") {
		t.Errorf("only an unchained segment: %v", err)
	}

	// Reaching into the segment being written: a gap "not sealed" to the
	// end of the range.
	run, err = rc.Index.StartRun(ctx, 1, pt.At(700))
	if err != nil {
		t.Fatal(err)
	}
	open := store.Segment{StreamID: 1, RunID: run.ID, Disk: "d1", Key: "door/main/open.mp4", Start: pt.At(700), State: store.SegmentWriting, Dur90k: 90000}
	if err := rc.Index.AddSegment(ctx, &open); err != nil {
		t.Fatal(err)
	}
	f5, _, _ := export(600, 800)
	if got := f5.Evidence.Gaps; !slices.Equal(got, append(noChain, integrity.Gap{From: pt.At(660), To: pt.At(700), Reason: integrity.GapNoRecording},
		integrity.Gap{From: pt.At(700), To: pt.At(800), Reason: integrity.GapNotSealed})) || !f5.To.Equal(pt.At(630)) {
		t.Errorf("into the open segment: covers to %s, gaps %+v", f5.To, got)
	}
	if _, err := src.Evidence(ctx, "door", "main", pt.At(710), pt.At(800), 1, rc.Index, rc.Key); err == nil || !strings.Contains(err.Error(), "still being written") {
		t.Errorf("only the open segment: %v", err)
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
	_, err = src.Evidence(ctx, "door", "main", pt.At(37), pt.At(260), 1, rc.Index, rc.Key)
	if err == nil || !strings.Contains(err.Error(), segs[1].Key) || !strings.Contains(err.Error(), "changed since it was recorded") {
		t.Errorf("export over a changed segment: %v", err)
	}
	os.WriteFile(victim, orig, 0o644)
}
