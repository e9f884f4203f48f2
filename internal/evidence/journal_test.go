package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

type rig struct {
	idx     *sqlite.Store
	st      store.Stream
	key     ed25519.PrivateKey
	path    string
	journal *evidence.Journal
	chains  *evidence.Chains
	n       int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	st, err := idx.Stream(context.Background(), "door", "main")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	r := &rig{idx: idx, st: st, key: key, path: filepath.Join(dir, "chains.log")}
	r.reopen(t)
	return r
}

func (r *rig) reopen(t *testing.T) {
	t.Helper()
	if r.journal != nil {
		r.journal.Close()
	}
	j, err := evidence.OpenJournal(r.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	r.journal = j
	r.chains = &evidence.Chains{Store: r.idx, Key: r.key, Journal: j}
}

// segment appends a segment entry through c (r.chains, or one without a
// journal to stand for a crash before the journal write).
func (r *rig) segment(t *testing.T, c *evidence.Chains) {
	t.Helper()
	r.n++
	seg := store.Segment{StreamID: r.st.ID, Key: "door/main/" + string(rune('a'+r.n)) + ".mp4",
		Start: time.Date(2026, 11, 29, 9, r.n, 0, 0, time.UTC), WallDur: time.Minute, Dur90k: 5400000, Frames: 1500, Bytes: int64(1000 + r.n)}
	if err := c.SegmentClosed(context.Background(), "door", "main", seg, [32]byte{byte(r.n)}, [32]byte{9}); err != nil {
		t.Fatal(err)
	}
}

// TestJournalCopiesTheChain: every entry goes to the journal with its
// signed head, a torn last line is cut at open, and ReadJournal gives the
// entries back exactly.
func TestJournalCopiesTheChain(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.chains.RunStarted(ctx, "door", "main", r.st.ID, time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	r.segment(t, r.chains)
	r.segment(t, r.chains)
	r.journal.Close()
	f, _ := os.OpenFile(r.path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"kind":"seg`)
	f.Close()
	r.reopen(t)
	r.segment(t, r.chains)
	got, err := evidence.ReadJournal(r.path)
	if err != nil {
		t.Fatal(err)
	}
	want, heads, err := r.idx.ChainEntries(ctx, r.st.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	jl := got["door/main"]
	if len(jl) != 4 || len(want) != 4 {
		t.Fatalf("journal has %d entries, index %d", len(jl), len(want))
	}
	for i := range want {
		if jl[i].Entry != want[i] {
			t.Errorf("entry %d: journal %+v, index %+v", i+1, jl[i].Entry, want[i])
		}
		if (jl[i].Head == nil) != (heads[i] == nil) || heads[i] != nil && (!bytes.Equal(jl[i].Head.Signature, heads[i].Signature) || !jl[i].Head.SignedAt.Equal(heads[i].SignedAt)) {
			t.Errorf("entry %d: journal head %+v, index %+v", i+1, jl[i].Head, heads[i])
		}
	}
	if err := integrity.VerifyHead(r.key.Public().(ed25519.PublicKey), jl[3].Head); err != nil {
		t.Errorf("journal head: %v", err)
	}
	// What check keeps: the entries past the index's end, and the last.
	for after, want := range map[int64][]int64{2: {3, 4}, 4: {4}, 10: {4}, 0: {1, 2, 3, 4}} {
		got, err := evidence.ReadJournalAfter(r.path, map[string]int64{"door/main": after})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, je := range got["door/main"] {
			seqs = append(seqs, je.Entry.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("after %d: kept %v, want %v", after, seqs, want)
		}
	}
}

// TestJournalCatchUpIsBounded: what a crash leaves (an entry in the index
// whose journal line was never written) is copied at start; more than a
// crash can leave is not, so check names the difference.
func TestJournalCatchUpIsBounded(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	noJournal := &evidence.Chains{Store: r.idx, Key: r.key}
	r.segment(t, r.chains)
	r.segment(t, noJournal) // the crash
	n, err := r.journal.CatchUp(ctx, r.idx, slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("CatchUp after a crash: %d, %v", n, err)
	}
	for range evidence.MaxJournalLag + 1 {
		r.segment(t, noJournal)
	}
	if n, err := r.journal.CatchUp(ctx, r.idx, slog.New(slog.DiscardHandler)); err != nil || n != 0 {
		t.Fatalf("CatchUp of more than a crash leaves: %d, %v", n, err)
	}
	got, _ := evidence.ReadJournal(r.path)
	if jl := got["door/main"]; len(jl) != 2 || jl[1].Entry.Seq != 2 {
		t.Fatalf("journal: %+v", jl)
	}
}

// TestCheckpointerSigns: each checkpoint names every chain's last entry
// and the audit head, its counter follows the file's, and it verifies.
func TestCheckpointerSigns(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.segment(t, r.chains)
	cpPath := filepath.Join(filepath.Dir(r.path), "checkpoint.json")
	cp := &evidence.Checkpointer{Store: r.idx, Key: r.key, Path: cpPath,
		AuditHead: func(context.Context) (int64, []byte, error) { return 5, bytes.Repeat([]byte{7}, 32), nil }}
	if _, err := cp.Sign(ctx); err != nil {
		t.Fatal(err)
	}
	r.segment(t, r.chains)
	c, err := cp.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, _, _ := r.idx.LastChainEntry(ctx, r.st.ID)
	read, err := integrity.ReadCheckpoint(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := read.Stream("door", "main")
	if c.Counter != 2 || read.Counter != 2 || !ok || h.Seq != 2 || h.Hash != last.Hash || read.AuditSeq != 5 || read.AuditHash[0] != 7 {
		t.Fatalf("checkpoint %+v", read)
	}
	if err := integrity.VerifyCheckpoint(r.key.Public().(ed25519.PublicKey), read); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkJournalAppend measures one journal line (a segment entry with
// its head), written and fsynced: the cost added to each segment close.
func BenchmarkJournalAppend(b *testing.B) {
	j, err := evidence.OpenJournal(filepath.Join(b.TempDir(), "chains.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	e := integrity.Entry{Seq: 1, Kind: integrity.KindSegment, Camera: "door", Stream: "main", At: time.Now().UTC(),
		Key: "door/main/2026-11-29/1796303504596-r11-1.mp4", WallDurNS: 60e9, Dur90k: 5400000, Frames: 1500, Bytes: 30 << 20}
	e.Hash = e.ComputeHash()
	h := &integrity.Head{Camera: "door", Stream: "main", Seq: 1, Hash: e.Hash, SignedAt: time.Now().UTC()}
	integrity.SignHead(key, h)
	for b.Loop() {
		if err := j.Append(e, h); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJournalSeed: the first start with a journal copies the chains
// recorded before it, so that they can be rebuilt from entry 1; a
// journal that is not empty is never seeded.
func TestJournalSeed(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	old := &evidence.Chains{Store: r.idx, Key: r.key}
	for range 3 {
		r.segment(t, old)
	}
	n, err := r.journal.Seed(ctx, r.idx)
	if err != nil || n != 3 {
		t.Fatalf("Seed: %d, %v", n, err)
	}
	r.segment(t, r.chains)
	got, _ := evidence.ReadJournal(r.path)
	want, _, _ := r.idx.ChainEntries(ctx, r.st.ID, 0, 100)
	jl := got["door/main"]
	if len(jl) != 4 || len(want) != 4 || jl[0].Entry != want[0] || jl[3].Entry != want[3] || jl[2].Head == nil {
		t.Fatalf("journal after seeding: %+v", jl)
	}
	if _, err := r.journal.Seed(ctx, r.idx); err == nil {
		t.Fatal("seeded a journal that is not empty")
	}
}

// failingSource serves the first stream's entries, then fails: a seed
// cut short (a read error, a full disk) partway.
type failingSource struct {
	evidence.JournalSource
	calls int
}

func (f *failingSource) ChainEntries(ctx context.Context, streamID, afterSeq int64, limit int) ([]integrity.Entry, []*integrity.Head, error) {
	if f.calls++; f.calls > 1 {
		return nil, nil, fmt.Errorf("disk went away")
	}
	// More than the seed's 1 MiB write buffer, so part of it reaches the
	// file before the failure.
	es, hs, err := f.JournalSource.ChainEntries(ctx, streamID, afterSeq, 1)
	if err != nil || len(es) == 0 {
		return es, hs, err
	}
	for len(es) < 4000 {
		e := es[0]
		e.Seq = int64(len(es) + 1)
		es, hs = append(es, e), append(hs, nil)
	}
	return es, hs, nil
}

// TestJournalSeedCutShort: a seed that fails partway leaves the journal
// empty, so the next start seeds it whole instead of keeping a partial
// copy for good.
func TestJournalSeedCutShort(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	old := &evidence.Chains{Store: r.idx, Key: r.key}
	for range 3 {
		r.segment(t, old)
	}
	if _, err := r.journal.Seed(ctx, &failingSource{JournalSource: r.idx}); err == nil {
		t.Fatal("a failing seed reported success")
	}
	if fi, err := os.Stat(r.path); err != nil || fi.Size() != 0 {
		t.Fatalf("journal after a failed seed: %v, %d bytes; want it empty", err, fi.Size())
	}
	if n, err := r.journal.Seed(ctx, r.idx); err != nil || n != 3 {
		t.Errorf("seed again: %d, %v; want all 3 entries", n, err)
	}
}
