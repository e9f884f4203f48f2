package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
)

// errVerifyFailed marks a verification that ran and found the file
// altered (exit 1), as opposed to a usage error (exit 2).
var errVerifyFailed = errors.New("FAILED")

// runVerify implements "custos verify FILE [--key KEY]": check an evidence
// export offline (docs/evidence.md): every fragment against the
// manifest's hashes, the hashes against the recorder's chain, the chain
// against a head signed by the recorder's key, and the file's header
// against the recorded one.
func runVerify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyArg := fs.String("key", "", "the recorder's public key (custos key show): without it the file is only checked against the key it names")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		helpFlags(e.stdout, fs, "verify FILE [--key custos-ed25519:…|PEM file]")
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: verify takes one file: custos verify FILE [--key KEY]", errUsage)
	}
	var want ed25519.PublicKey
	if *keyArg != "" {
		s := *keyArg
		if b, err := os.ReadFile(s); err == nil { // a PEM file
			s = string(b)
		}
		if want, err = integrity.ParsePublicKey(s); err != nil {
			return fmt.Errorf("%w: --key: %v", errUsage, err)
		}
	}
	path := pos[0]
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	fail := func(format string, a ...any) error {
		fmt.Fprintf(e.stdout, "%s: FAILED: %s\n", path, fmt.Sprintf(format, a...))
		return fmt.Errorf("%w: %s", errVerifyFailed, fmt.Sprintf(format, a...))
	}
	spans, payload, err := integrity.FindFragmentsReader(f, fi.Size())
	if err != nil {
		return fail("not a well-formed MP4: %v", err)
	}
	if payload == nil {
		return fail("no evidence manifest in the file (export it with custos export --evidence)")
	}
	m, err := integrity.ParseManifest(payload)
	if err != nil {
		return fail("the manifest cannot be read: %v", err)
	}
	hashes, err := integrity.HashSpans(f, spans)
	if err != nil {
		return err
	}
	rep, err := integrity.VerifyEvidenceHashes(m, hashes, want)
	if err != nil {
		return fail("%v", err)
	}
	initHash, err := integrity.InitHash(f, fi.Size())
	if err != nil {
		return fail("the file's header: %v", err)
	}
	for _, s := range m.Segments {
		if ent := m.Chain[s.ChainSeq-m.Chain[0].Seq]; ent.InitHash != initHash {
			return fail("the file's header (ftyp/moov) is not the one recorded with segment %s (chain entry %d): altered", ent.Key, ent.Seq)
		}
	}
	fmt.Fprintf(e.stdout, "%s: OK\n", path)
	fmt.Fprintf(e.stdout, "  camera     %s (stream %s)\n", rep.Camera, rep.Stream)
	fmt.Fprintf(e.stdout, "  video      %d fragments from %d recorded segments spanning %s to %s\n", rep.Fragments, rep.Segments,
		rep.SegmentsFrom.UTC().Format(time.RFC3339), rep.SegmentsTo.UTC().Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "  asked for  %s to %s\n", m.From.UTC().Format(time.RFC3339Nano), m.To.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(e.stdout, "  recorder   %s (fingerprint %s)\n", rep.Key, rep.Fingerprint)
	fmt.Fprintf(e.stdout, "  signed     %s, chain entry %d\n", rep.SignedAt.UTC().Format(time.RFC3339), rep.HeadSeq)
	for _, n := range rep.Notes {
		fmt.Fprintf(e.stdout, "  note       %s\n", n)
	}
	if want == nil {
		fmt.Fprintln(e.stdout, "  The file is consistent with the key it names. To know it comes from your recorder, compare that key with `custos key show` there, or pass --key.")
	} else {
		fmt.Fprintln(e.stdout, "  The recorder key is the one given with --key.")
	}
	return nil
}
