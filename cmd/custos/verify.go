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

// Exit statuses of custos verify (docs/evidence.md, "Exit status").
const (
	verifyOK          = 0 // verified (version 2: everything printed is signed)
	verifyFailed      = 1 // verification failed: the file was altered or damaged
	verifyUsage       = 2 // bad command line, or the file cannot be read
	verifyNotEvidence = 3 // not an evidence export (no Custos manifest): cannot be verified
	verifyV1          = 4 // a version 1 export verified, but version 1 cannot show a cut at its ends or of whole segments
)

const verifyHelp = `verify FILE [--key custos-ed25519:…|PEM file]

Checks an evidence export offline: every fragment against the signed
manifest, the manifest's signature, the hashes against the recorder's
chain, the chain against a head signed by the recorder's key, and the
file's header against the recorded one. It prints only what is signed:
the camera and stream, the exact time the file's video covers, the range
that was asked for, the other files (parts) of the same export, the gaps
in the range with their reasons, and the recorder's key.

Exit status:
  0  verified
  1  verification failed: the file was altered, cut or damaged
  2  usage error, or the file cannot be read
  3  not an evidence export (no Custos manifest): it cannot be verified
  4  a version 1 export (made before this version) verified as far as
     version 1 allows: a cut at its start or end, or of whole segments,
     cannot be detected`

// runVerify implements "custos verify FILE [--key KEY]": check an evidence
// export offline (docs/evidence.md).
func runVerify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyArg := fs.String("key", "", "the recorder's public key (custos key show): without it the file is only checked against the key it names")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		helpFlags(e.stdout, fs, verifyHelp)
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
		return &exitError{code: verifyUsage, err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &exitError{code: verifyUsage, err: err}
	}
	rep, _, err := integrity.VerifyFile(f, fi.Size(), want)
	var re *integrity.ReadError
	switch {
	case errors.Is(err, integrity.ErrNotEvidence):
		fmt.Fprintf(e.stdout, "%s: %v\n", path, err)
		fmt.Fprintln(e.stdout, "  (a plain export, or another file: only evidence exports, custos export --evidence or export.mp4?evidence=1, carry a manifest)")
		return &exitError{code: verifyNotEvidence}
	case errors.As(err, &re):
		return &exitError{code: verifyUsage, err: fmt.Errorf("%s: %w", path, err)}
	case err != nil:
		fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", path, err)
		return &exitError{code: verifyFailed}
	}
	w := e.stdout
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	if rep.Version == 1 {
		fmt.Fprintf(w, "%s: OK AS A VERSION 1 EXPORT (weaker: see below)\n", path)
	} else {
		fmt.Fprintf(w, "%s: OK\n", path)
	}
	fmt.Fprintf(w, "  camera     %s (stream %s)\n", rep.Camera, rep.Stream)
	if rep.Version == 1 {
		fmt.Fprintf(w, "  video      %d fragments from within %d recorded segments spanning %s to %s\n", rep.Fragments, rep.Segments,
			rep.SegmentsFrom.Format(time.RFC3339), rep.SegmentsTo.Format(time.RFC3339))
		fmt.Fprintf(w, "  recorder   %s (fingerprint %s)\n", rep.Key, rep.Fingerprint)
		fmt.Fprintf(w, "  signed     chain head %d, signed %s\n", rep.HeadSeq, rep.SignedAt.Format(time.RFC3339))
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  note       %s\n", n)
		}
		fmt.Fprintln(w, "  WARNING    version 1 exports do not sign which fragments were exported nor the range asked for:")
		fmt.Fprintln(w, "             every fragment in this file is recorded video in the signed chain, but fragments or whole")
		fmt.Fprintln(w, "             segments may have been cut from its start, its end or between segments without detection,")
		fmt.Fprintln(w, "             and the times above are those of the whole segments, not of the video in the file.")
		keyNote(w, want)
		return &exitError{code: verifyV1}
	}
	fmt.Fprintf(w, "  covered    %s to %s (this file: %d fragments of %d recorded segment%s)\n", ts(rep.Covered.From), ts(rep.Covered.To),
		rep.Fragments, rep.Segments, map[bool]string{true: "", false: "s"}[rep.Segments == 1])
	fmt.Fprintf(w, "  requested  %s to %s\n", ts(rep.Requested.From), ts(rep.Requested.To))
	if len(rep.Parts) > 1 {
		fmt.Fprintf(w, "  part       %d of %d: the export is %d files, one per recording run:\n", rep.Part, len(rep.Parts), len(rep.Parts))
		for i, p := range rep.Parts {
			this := ""
			if i+1 == rep.Part {
				this = " (this file)"
			}
			fmt.Fprintf(w, "             part %d covers %s to %s%s\n", i+1, ts(p.From), ts(p.To), this)
		}
	}
	if len(rep.Gaps) == 0 {
		fmt.Fprintln(w, "  gaps       none: the export covers the whole requested range")
	} else {
		fmt.Fprintf(w, "  gaps       %d stretch(es) of the requested range are in no file of the export:\n", len(rep.Gaps))
		for _, g := range rep.Gaps {
			fmt.Fprintf(w, "             %s\n", gapLine(g))
		}
	}
	fmt.Fprintf(w, "  recorder   %s (fingerprint %s)\n", rep.Key, rep.Fingerprint)
	fmt.Fprintf(w, "  signed     the export's manifest, and chain head %d signed %s\n", rep.HeadSeq, rep.SignedAt.Format(time.RFC3339))
	keyNote(w, want)
	return nil
}

// keyNote says what the key check proved.
func keyNote(w interface{ Write([]byte) (int, error) }, want ed25519.PublicKey) {
	if want == nil {
		fmt.Fprintln(w, "  The file is consistent with the key it names. To know it comes from your recorder, compare that key with `custos key show` there, or pass --key.")
	} else {
		fmt.Fprintln(w, "  The recorder key is the one given with --key.")
	}
}
