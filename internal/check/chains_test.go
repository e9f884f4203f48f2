package check_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/check"
	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestRestoreChainsSaysWhy: the trusted part of the journal is restored;
// a line altered, a head not signed by the node key, or a journal that
// begins after its chain stop the restore with a reason naming the line.
func TestRestoreChainsSaysWhy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	idx, err := sqlite.Open(filepath.Join(dir, "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	j, err := evidence.OpenJournal(filepath.Join(dir, "chains.log"))
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	c := &evidence.Chains{Store: idx, Key: key, Journal: j}
	st, _ := idx.Stream(ctx, "door", "main")
	for i := range 4 {
		seg := store.Segment{StreamID: st.ID, Key: "door/main/" + string(rune('a'+i)) + ".mp4",
			Start: time.Date(2026, 11, 29, 9, i, 0, 0, time.UTC), WallDur: time.Minute, Frames: 10, Bytes: 100}
		if err := c.SegmentClosed(ctx, "door", "main", seg, [32]byte{byte(i)}, [32]byte{}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	read := func() map[string][]evidence.JournalEntry {
		m, err := evidence.ReadJournal(filepath.Join(dir, "chains.log"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name    string
		edit    func(m map[string][]evidence.JournalEntry)
		key     ed25519.PublicKey
		entries int
		want    string
	}{
		{"intact", func(map[string][]evidence.JournalEntry) {}, pub, 4, ""},
		{"line altered", func(m map[string][]evidence.JournalEntry) { m["door/main"][2].Entry.Frames = 11 }, pub, 2,
			"door/main: chains.log line 3: chain entry 3: hash does not match its contents (altered): entries from there on cannot be trusted"},
		{"other key", func(map[string][]evidence.JournalEntry) {}, otherPub, 0,
			"door/main: chains.log line 1: the head signed at entry 1 does not verify with the node key"},
		{"starts late", func(m map[string][]evidence.JournalEntry) { m["door/main"] = m["door/main"][2:] }, pub, 0,
			"door/main: chains.log starts at entry 3 (line 3), not 1: the journal began after the chain did"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh, err := sqlite.Open(filepath.Join(t.TempDir(), "index.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			m := read()
			tc.edit(m)
			rep, err := check.RestoreChains(ctx, fresh, m, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(rep.Problems, "\n")
			if rep.Entries != tc.entries || (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("restored %d entries, problems %q; want %d, %q", rep.Entries, got, tc.entries, tc.want)
			}
		})
	}
}
