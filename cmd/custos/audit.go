package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

const auditUsage = `Usage: custos audit COMMAND --config FILE [flags]

Commands:
  verify   check the audit log's hash chain in the index and in audit.log,
           and the two against each other (exit 1 on any problem)
  list     print entries, newest first, one per line

Run 'custos audit COMMAND --help' for a command's flags.
`

// runAudit implements "custos audit verify|list --config FILE".
func runAudit(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, auditUsage)
		return fmt.Errorf("%w: missing command (verify or list)", errUsage)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, auditUsage)
		return flag.ErrHelp
	case "verify":
		return runAuditVerify(ctx, e, args[1:])
	case "list":
		return runAuditList(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: unknown command %q (verify or list)", errUsage, args[0])
}

// openAuditIndex loads the configuration and opens the existing index;
// it never creates one.
func openAuditIndex(cfgPath string) (*sqlite.Store, string, error) {
	cfg, err := config.Load(cfgPath, os.Environ())
	if err != nil {
		return nil, "", err
	}
	dbPath := filepath.Join(cfg.DataDir, "index.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, "", fmt.Errorf("no index at %s: %w", dbPath, err)
	}
	idx, err := sqlite.Open(dbPath)
	if err != nil {
		return nil, "", fmt.Errorf("open index: %w", err)
	}
	return idx, filepath.Join(cfg.DataDir, "audit.log"), nil
}

// runAuditVerify implements "custos audit verify --config FILE". It may
// run while custos serve is running.
func runAuditVerify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	if err := parseNoArgs(e, fs, args, "audit verify --config FILE"); err != nil {
		return err
	}
	idx, logPath, err := openAuditIndex(*cfgPath)
	if err != nil {
		return err
	}
	defer idx.Close()
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	signed, note, err := signedAuditHead(cfg)
	if err != nil {
		fmt.Fprintf(e.stdout, "audit log FAILED: %v\n", err)
		return err
	}
	rep, err := audit.VerifyWith(ctx, idx, logPath, audit.VerifyOptions{Signed: signed})
	if err != nil {
		return err
	}
	for _, r := range rep.Repairs {
		fmt.Fprintf(e.stdout, "repair: %s\n", r)
	}
	if note != "" {
		fmt.Fprintln(e.stderr, note)
	}
	if !rep.OK {
		fmt.Fprintf(e.stdout, "audit log FAILED: %s\n", rep.Problem)
		if rep.Head != nil {
			fmt.Fprintf(e.stdout, "last good entry: %d, hash %x\n", rep.Seq-1, rep.Head)
		}
		return fmt.Errorf("audit log fails verification at entry %d", rep.Seq)
	}
	if rep.Entries == 0 {
		fmt.Fprintln(e.stdout, "audit log OK: 0 entries")
		return nil
	}
	// The full head: note it elsewhere to detect later truncation.
	fmt.Fprintf(e.stdout, "audit log OK: %d entries, head %x", rep.Entries, rep.Head)
	if signed != nil && signed.Seq > 0 {
		fmt.Fprintf(e.stdout, "; reaches entry %d of the checkpoint signed at %s", signed.Seq, signed.SignedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// signedAuditHead reads the signed checkpoint beside the index and checks
// its signature with the node key. Without a checkpoint (or a node key)
// it returns nil and a note saying what that leaves unchecked; an
// unreadable checkpoint, or one whose signature fails, is an error.
func signedAuditHead(cfg *config.Config) (*audit.SignedHead, string, error) {
	path := filepath.Join(cfg.DataDir, "checkpoint.json")
	cp, err := integrity.ReadCheckpoint(path)
	if errors.Is(err, os.ErrNotExist) {
		// custos serve creates chains.log, then signs a checkpoint at once.
		if _, jerr := os.Stat(filepath.Join(cfg.DataDir, "chains.log")); jerr == nil {
			return nil, "", fmt.Errorf("no signed checkpoint at %s although custos serve has run (chains.log exists): removed? entries cut from the end of both copies cannot be ruled out", path)
		}
		return nil, "no signed checkpoint at " + path + " (custos serve signs one every minute): entries cut from the end of both copies cannot be detected", nil
	}
	if err != nil {
		return nil, "", err
	}
	pub, err := nodePublicKey(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint %s: the node key is needed to check it: %w", path, err)
	}
	if err := integrity.VerifyCheckpoint(pub, cp); err != nil {
		return nil, "", fmt.Errorf("checkpoint %s does not verify with the node key: %w (altered or forged)", path, err)
	}
	return &audit.SignedHead{Seq: cp.AuditSeq, Hash: cp.AuditHash[:], SignedAt: cp.SignedAt}, "", nil
}

// runAuditList implements "custos audit list --config FILE [filters]".
func runAuditList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	fromS := fs.String("from", "", "only entries at or after this time, RFC 3339 (e.g. 2026-11-29T09:30:00Z)")
	toS := fs.String("to", "", "only entries before this time, RFC 3339")
	var f audit.Filter
	fs.StringVar(&f.Actor, "actor", "", "only entries by this user")
	fs.StringVar(&f.Action, "action", "", "only entries of this action (e.g. export, login_failed)")
	fs.StringVar(&f.Camera, "camera", "", "only entries about this camera")
	fs.Int64Var(&f.BeforeSeq, "before", 0, "only entries with a lower seq (to page back)")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many entries (at most 1000)")
	usage := "audit list --config FILE [--from TIME] [--to TIME] [--actor NAME] [--action ACTION] [--camera NAME] [--before SEQ] [--limit N]"
	if err := parseNoArgs(e, fs, args, usage); err != nil {
		return err
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--from", *fromS, &f.From}, {"--to", *toS, &f.To}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return fmt.Errorf("%w: %s %q is not an RFC 3339 time like 2026-11-29T09:30:00Z", errUsage, t.flag, t.v)
		}
		*t.dst = v
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return fmt.Errorf("%w: --limit must be between 1 and 1000", errUsage)
	}
	idx, _, err := openAuditIndex(*cfgPath)
	if err != nil {
		return err
	}
	defer idx.Close()
	es, err := idx.QueryAudit(ctx, f)
	if err != nil {
		return err
	}
	for _, en := range es {
		writeAuditLine(e.stdout, &en)
	}
	return nil
}

// writeAuditLine prints one entry: seq, time, actor, address, action,
// camera, result (- for empty), then detail as key=value, quoted where
// needed.
func writeAuditLine(w io.Writer, en *audit.Entry) {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return quoteIfNeeded(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s %s %s %s %s", en.Seq, en.Time.UTC().Format(time.RFC3339Nano),
		dash(en.Actor), dash(en.Addr), dash(en.Action), dash(en.Camera), dash(en.Result))
	keys := make([]string, 0, len(en.Detail))
	for k := range en.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", quoteIfNeeded(k), quoteIfNeeded(en.Detail[k]))
	}
	fmt.Fprintln(w, b.String())
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '=' || r == 0x7f || r > 0x7e }) {
		return strconv.Quote(s)
	}
	return s
}
