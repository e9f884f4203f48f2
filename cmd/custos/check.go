package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/check"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// runCheck implements "custos check --config FILE": verify the storage
// invariants and list every problem. It changes nothing.
func runCheck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	repair := fs.Bool("repair", false, "rebuild the index from the segment files (stop custos serve first); the old index is kept as index.db.replaced-TIME")
	if err := parseNoArgs(e, fs, args, "check --config FILE [--repair] [--json]"); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	dbPath := filepath.Join(cfg.DataDir, "index.db")
	if *repair {
		if err := setAsideIndex(dbPath, e); err != nil {
			return err
		}
	} else if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no index at %s (rebuild it with --repair): %w", dbPath, err)
	}
	idx, err := sqlite.Open(dbPath)
	if err != nil {
		return fmt.Errorf("open index (rebuild it with --repair): %w", err)
	}
	defer idx.Close()
	disks := map[string]blob.Store{}
	for _, sc := range cfg.Storage {
		// Never initialise a directory from check: only open disks that
		// already carry their identity.
		if _, err := os.Stat(filepath.Join(sc.Path, "custos-disk.json")); err != nil {
			e.log.Warn("check: storage unavailable", "storage", sc.Name, "path", sc.Path, "err", err)
			continue
		}
		d, err := local.Open(sc.Path, sc.Name, local.Options{})
		if err != nil {
			e.log.Warn("check: storage unavailable", "storage", sc.Name, "err", err)
			continue
		}
		disks[sc.Name] = d
	}
	if *repair {
		rr, err := check.Rebuild(ctx, idx, disks)
		if err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
		for _, p := range rr.Skipped {
			fmt.Fprintf(e.stdout, "skipped %s\n", p)
		}
		fmt.Fprintf(e.stdout, "rebuilt the index: %d segments in %d runs\n", rr.Segments, rr.Runs)
	}
	rep, err := check.Run(ctx, idx, disks)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "%d streams, %d segments (%.1f MiB), %d files: ", rep.Streams, rep.Segments, float64(rep.Bytes)/(1<<20), rep.Files)
		if rep.OK() {
			fmt.Fprintln(e.stdout, "OK")
		} else {
			fmt.Fprintf(e.stdout, "%d problems\n", len(rep.Problems))
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%d problems found", len(rep.Problems))
	}
	return nil
}

// setAsideIndex renames an existing index (and its WAL files) out of the
// way so --repair builds a fresh one; nothing is deleted.
func setAsideIndex(dbPath string, e *env) error {
	suffix := fmt.Sprintf(".replaced-%d", time.Now().Unix())
	for _, ext := range []string{"", "-wal", "-shm"} {
		p := dbPath + ext
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.Rename(p, p+suffix); err != nil {
			return fmt.Errorf("set the old index aside: %w", err)
		}
		e.log.Info("check --repair: old index kept", "path", p+suffix)
	}
	return nil
}
