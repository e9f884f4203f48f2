package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestChainsSurviveIndexLossAndTailCut records four short runs, then:
//
//  1. deletes index.db: check --repair used to rebuild the recordings
//     without their hash chains, so old footage could no longer be
//     exported as evidence; now the chains come back from chains.log, the
//     files hash to them, and an evidence export of the oldest segment
//     verifies with custos verify;
//  2. removes the newest three segments of door/main (files, index rows
//     and chain rows, and their lines in chains.log), which custos check
//     used to pass; now the signed checkpoint names the missing head;
//  3. removes only a segment's file and row: the chain walk names it.
func TestChainsSurviveIndexLossAndTailCut(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\ncameras:\n  - {name: door, url: \"rtsp://%s/cam1\"}\n",
		dir, simAddr)), 0o600)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	for i := 0; i < 4; i++ {
		srv, err := startServer(context.Background(), e, cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond)
		srv.stop()
	}
	segments := func() []store.Segment {
		idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer idx.Close()
		st, err := idx.Stream(context.Background(), "door", "main")
		if err != nil {
			t.Fatal(err)
		}
		segs, err := idx.Segments(context.Background(), st.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return segs
	}
	segs := segments()
	if len(segs) != 4 {
		t.Fatalf("%d segments recorded, want 4 (one per run)", len(segs))
	}
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 || !strings.Contains(out, "checkpoint") || !strings.Contains(out, "OK") {
		t.Fatalf("check of an untouched recording: %d\n%s%s", code, out, errOut)
	}

	// 1. The index is lost.
	for _, ext := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "index.db"+ext))
	}
	code, out, errOut := runCLI(t, "check", "--config", cfgPath, "--repair")
	if code != 0 || !strings.Contains(out, "restored 8 hash chain entries of 1 streams") || !strings.Contains(out, "4 segments match their entry") ||
		!strings.Contains(out, "hash chains: 8 entries; 4 segments checked against them") || !strings.Contains(out, "OK") {
		t.Fatalf("check --repair after losing the index: %d\n%s%s", code, out, errOut)
	}
	rebuilt := segments()
	for i := range segs {
		if rebuilt[i].Key != segs[i].Key || rebuilt[i].WallDur != segs[i].WallDur {
			t.Errorf("segment %d rebuilt as %s %s, was %s %s", i, rebuilt[i].Key, rebuilt[i].WallDur, segs[i].Key, segs[i].WallDur)
		}
	}
	ev := filepath.Join(dir, "old.mp4")
	from, to := segs[0].Start.Format(time.RFC3339Nano), segs[0].End().Format(time.RFC3339Nano)
	if code, out, errOut := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", ev, "--evidence"); code != 0 {
		t.Fatalf("evidence export of old footage after the rebuild: %d %s%s", code, out, errOut)
	}
	_, keyOut, _ := runCLI(t, "key", "show", "--config", cfgPath)
	if code, out, errOut := runCLI(t, "verify", ev, "--key", strings.Fields(keyOut)[0]); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify the export of old footage: %d\n%s%s", code, out, errOut)
	}

	// 2. The newest three segments go: files, rows, chain rows (entries
	// 3 to 8: three run starts and three segments) and journal lines.
	keys := []string{segs[1].Key, segs[2].Key, segs[3].Key}
	for _, k := range keys {
		if err := os.Remove(filepath.Join(dir, "recordings", filepath.FromSlash(k))); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER chain_no_delete",
		"DELETE FROM chain WHERE seq > 2 AND stream_id = (SELECT id FROM streams WHERE camera = 'door' AND name = 'main')",
		fmt.Sprintf("DELETE FROM segments WHERE key IN ('%s', '%s', '%s')", keys[0], keys[1], keys[2])} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	// With chains.log intact, it names what went.
	code, out, _ = runCLI(t, "check", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "chain of door/main: chains.log goes on to entry 8, but the index ends at entry 2: entries removed from the index (chains.log: entries 3 to 8, ") ||
		!strings.Contains(out, "segments "+keys[0]+", "+keys[1]+", "+keys[2]) {
		t.Fatalf("check after removing the newest three segments: exit %d\n%s", code, out)
	}
	journal, err := os.ReadFile(filepath.Join(dir, "chains.log"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(journal), "\n") {
		if l != "" && !strings.Contains(l, `"camera":"door","stream":"main"`) || strings.Contains(l, `{"seq":1,`) || strings.Contains(l, `{"seq":2,`) {
			kept = append(kept, l)
		}
	}
	os.WriteFile(filepath.Join(dir, "chains.log"), []byte(strings.Join(kept, "")), 0o600)
	code, out, _ = runCLI(t, "check", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "chain of door/main: the checkpoint signed at") ||
		!strings.Contains(out, "names entry 8, but the chain ends at entry 2: signed head seq 8 is missing: the newest entries were removed") {
		t.Fatalf("check after removing the newest three segments: exit %d\n%s", code, out)
	}

	// 3. A segment's file and row removed, its chain entries left.
	db, err = sql.Open("sqlite", filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM segments WHERE key = ?", segs[0].Key); err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Remove(filepath.Join(dir, "recordings", filepath.FromSlash(segs[0].Key)))
	code, out, _ = runCLI(t, "check", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "chain of door/main: entry 2 records segment "+segs[0].Key) || !strings.Contains(out, "the index has no row for it and the chain no deletion (removed)") {
		t.Fatalf("check after removing a segment's file and row: exit %d\n%s", code, out)
	}

	// 4. The audit log, cut to the same length in both copies before the
	// entry the last checkpoint names (the server's stop), used to
	// verify; now custos audit verify names the cut.
	if code, out, errOut := runCLI(t, "audit", "verify", "--config", cfgPath); code != 0 || !strings.Contains(out, "of the checkpoint signed at") {
		t.Fatalf("audit verify before the cut: %d\n%s%s", code, out, errOut)
	}
	cp, err := integrity.ReadCheckpoint(filepath.Join(dir, "checkpoint.json"))
	if err != nil || cp.AuditSeq < 3 {
		t.Fatalf("checkpoint: %+v, %v", cp, err)
	}
	keep := cp.AuditSeq - 2
	db, err = sql.Open("sqlite", filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_no_delete", fmt.Sprintf("DELETE FROM audit WHERE seq > %d", keep)} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	auditLines, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	os.WriteFile(filepath.Join(dir, "audit.log"), []byte(strings.Join(strings.SplitAfter(string(auditLines), "\n")[:keep], "")), 0o600)
	code, out, _ = runCLI(t, "audit", "verify", "--config", cfgPath)
	if want := fmt.Sprintf("names entry %d, but both copies end at entry %d", cp.AuditSeq, keep); code == 0 || !strings.Contains(out, want) {
		t.Fatalf("audit verify after cutting both copies: exit %d\n%s\nwant %q", code, out, want)
	}
}
