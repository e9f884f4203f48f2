package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/check"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// runCheck implements "custos check --config FILE": verify the storage
// invariants and list every problem. It changes nothing.
func runCheck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noHash := fs.Bool("no-hash", false, "check the hash chains but do not re-read and hash every segment file (faster)")
	repair := fs.Bool("repair", false, "rebuild the index from the segment files (stop custos serve first); the old index is kept as index.db.replaced-TIME")
	if err := parseNoArgs(e, fs, args, "check --config FILE [--repair] [--no-hash] [--json]"); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	dbPath := filepath.Join(cfg.DataDir, "index.db")
	auditPath := filepath.Join(cfg.DataDir, "audit.log")
	oldIndex := ""
	if *repair {
		if oldIndex, err = setAsideIndex(dbPath, e); err != nil {
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
		// Never initialise a directory here: only open disks that
		// already carry their identity.
		d, err := local.Open(sc.Path, sc.Name, local.Options{Existing: true})
		if err != nil {
			e.log.Warn("check: storage unavailable", "storage", sc.Name, "err", err)
			continue
		}
		disks[sc.Name] = d
	}
	pub, err := nodePublicKey(cfg)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if *repair {
		journalPath := filepath.Join(cfg.DataDir, "chains.log")
		journal, jerr := evidence.ReadJournal(journalPath)
		if jerr != nil && !errors.Is(jerr, os.ErrNotExist) {
			fmt.Fprintf(e.stdout, "the chain journal cannot be used: %v\n", jerr)
		}
		rr, err := check.Rebuild(ctx, idx, disks, check.RebuildOptions{Journal: journal, Key: pub})
		if err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
		for _, p := range rr.Skipped {
			fmt.Fprintf(e.stdout, "skipped %s\n", p)
		}
		fmt.Fprintf(e.stdout, "rebuilt the index: %d segments in %d runs\n", rr.Segments, rr.Runs)
		if err := carryOver(ctx, e, idx, oldIndex, auditPath); err != nil {
			return err
		}
		switch {
		case journal == nil:
			fmt.Fprintf(e.stdout, "no chain journal at %s: the hash chains cannot be rebuilt, so the rebuilt segments cannot be exported as evidence\n", journalPath)
		default:
			cr, err := check.RestoreChains(ctx, idx, journal, pub)
			if err != nil {
				return err
			}
			for _, p := range cr.Problems {
				fmt.Fprintf(e.stdout, "chain not restored: %s\n", p)
			}
			for i, p := range rr.Unmatched {
				if i == maxListed {
					fmt.Fprintf(e.stdout, "no trusted chain entry: %d more segments (for reasons like those above)\n", len(rr.Unmatched)-i)
					break
				}
				fmt.Fprintf(e.stdout, "no trusted chain entry: %s\n", p)
			}
			fmt.Fprintf(e.stdout, "restored %d hash chain entries of %d streams from %s; %d segments match their entry\n", cr.Entries, cr.Streams, journalPath, rr.Matched)
		}
	}
	rep, err := check.Run(ctx, idx, disks)
	if err != nil {
		return err
	}
	// The hash chains: links, the newest head's signature, their ends
	// against the checkpoint and the journal and, unless --no-hash, every
	// closed segment's bytes against its chain entry.
	cp, journal, tailProblems, err := loadTails(ctx, idx, cfg.DataDir, pub)
	if err != nil {
		return err
	}
	chainRep, err := evidence.VerifyStored(ctx, idx, disks, evidence.StoredOptions{Key: pub, HashFiles: !*noHash, Checkpoint: cp, Journal: journal})
	if err != nil {
		return fmt.Errorf("verify hash chains: %w", err)
	}
	chainRep.Problems = append(tailProblems, chainRep.Problems...)
	if pub == nil && chainRep.Entries > 0 {
		chainRep.Problems = append(chainRep.Problems, "the node key "+nodeKeyPath(cfg)+" is missing: the chains' signatures cannot be checked")
	}
	for _, p := range chainRep.Problems {
		rep.Problems = append(rep.Problems, check.Problem{What: p})
	}
	// The run itself goes on record.
	log, err := audit.OpenWith(ctx, idx, auditPath, nil, audit.Options{Logger: e.log})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	action, result := audit.Check, audit.ResultOK
	if *repair {
		action = audit.Repair
	}
	if !rep.OK() {
		result = audit.ResultFailed
	}
	_, aerr := log.Append(ctx, audit.Entry{Action: action, Addr: "local", Result: result, Detail: map[string]string{
		"segments": strconv.Itoa(rep.Segments), "problems": strconv.Itoa(len(rep.Problems)), "via": "custos check"}})
	log.Close()
	if aerr != nil {
		return fmt.Errorf("audit: %w", aerr)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "hash chains: %d entries; %d segments checked against them", chainRep.Entries, chainRep.Segments-chainRep.Unchained)
		if !*noHash {
			fmt.Fprintf(e.stdout, ", %.1f MiB re-hashed", float64(chainRep.HashedBytes)/(1<<20))
		}
		if cp != nil {
			fmt.Fprintf(e.stdout, "; checkpoint %d signed at %s", cp.Counter, cp.SignedAt.Format(time.RFC3339))
		}
		if chainRep.Unchained > 0 {
			fmt.Fprintf(e.stdout, "; %d segments have no chain entry (recorded before chains existed, cut short by a crash, or not restorable from chains.log: see above)", chainRep.Unchained)
		}
		fmt.Fprintln(e.stdout)
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

// maxListed bounds how many segments without a trusted chain entry
// check --repair lists one by one (an index from before chains.log has
// thousands, all for the same reason).
const maxListed = 50

// loadTails reads the signed checkpoint and the chain journal that
// VerifyStored compares the chains' ends with, and returns the problems
// with them: a checkpoint that does not verify, or none although the
// journal shows that a server of this version ran (it signs one at start).
func loadTails(ctx context.Context, idx *sqlite.Store, dataDir string, pub ed25519.PublicKey) (*integrity.Checkpoint, map[string][]evidence.JournalEntry, []string, error) {
	var problems []string
	cpPath, jPath := filepath.Join(dataDir, "checkpoint.json"), filepath.Join(dataDir, "chains.log")
	// Of the journal, only what lies past each chain's end in the index
	// (and each stream's last line) is needed.
	streams, err := idx.Streams(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list streams: %w", err)
	}
	after := map[string]int64{}
	for _, st := range streams {
		e, ok, err := idx.LastChainEntry(ctx, st.ID)
		if err != nil {
			return nil, nil, nil, err
		}
		if ok {
			after[st.Camera+"/"+st.Name] = e.Seq
		}
	}
	journal, jerr := evidence.ReadJournalAfter(jPath, after)
	if jerr != nil && !errors.Is(jerr, os.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("the chain journal cannot be read: %v", jerr))
	}
	cp, err := integrity.ReadCheckpoint(cpPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if jerr == nil {
			problems = append(problems, fmt.Sprintf("no signed checkpoint at %s although %s exists: custos serve signs one at start, every minute and at stop; without it, removal of the newest entries cannot be ruled out (removed?)", cpPath, jPath))
		}
		cp = nil
	case err != nil:
		problems = append(problems, fmt.Sprintf("the signed checkpoint cannot be read: %v", err))
		cp = nil
	case pub != nil:
		if err := integrity.VerifyCheckpoint(pub, cp); err != nil {
			problems = append(problems, fmt.Sprintf("the checkpoint %s does not verify with the node key: %v (altered or forged)", cpPath, err))
			cp = nil
		}
	}
	return cp, journal, problems, nil
}

// setAsideIndex renames an existing index (and its WAL files) out of the
// way so --repair builds a fresh one; nothing is deleted. It returns the
// old index's new path ("" when there was none).
func setAsideIndex(dbPath string, e *env) (string, error) {
	suffix := fmt.Sprintf(".replaced-%d", time.Now().Unix())
	old := ""
	for _, ext := range []string{"", "-wal", "-shm"} {
		p := dbPath + ext
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.Rename(p, p+suffix); err != nil {
			return "", fmt.Errorf("set the old index aside: %w", err)
		}
		if ext == "" {
			old = p + suffix
		}
		e.log.Info("check --repair: old index kept", "path", p+suffix)
	}
	return old, nil
}

// carryOver brings into a rebuilt index what the recordings cannot
// rebuild: accounts, the audit log and the deletion log from the old
// index when it can be read; otherwise the audit log from audit.log
// (accounts are then lost: the next start creates admin again).
func carryOver(ctx context.Context, e *env, idx *sqlite.Store, oldIndex, auditPath string) error {
	if oldIndex != "" {
		c, err := idx.CarryOver(ctx, oldIndex)
		if err == nil {
			fmt.Fprintf(e.stdout, "kept from the old index: %d users, %d API tokens, %d audit entries, %d deletion records, %d cameras added in the UI, %d evidence locks, %d hash chain entries\n",
				c.Users, c.Tokens, c.AuditEntries, c.Deletions, c.Cameras, c.Locks, c.ChainEntries)
			return nil
		}
		fmt.Fprintf(e.stdout, "the old index cannot be read (%v): accounts are lost; restoring the audit log from %s\n", err, auditPath)
	}
	n, err := audit.Restore(ctx, idx, auditPath)
	if err != nil {
		return fmt.Errorf("%w (move %s aside to start a new audit log; keep it as evidence)", err, auditPath)
	}
	fmt.Fprintf(e.stdout, "restored %d audit entries from %s\n", n, auditPath)
	return nil
}
