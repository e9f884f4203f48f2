package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// evidenceSetup is a data directory with two recording runs of door/main
// (0–300 and 480–630 frames: a gap of 180 frames between them), the
// recording's key as the node key, and a configuration for it.
func evidenceSetup(t *testing.T) (rc *pt.Recording, cfgPath string) {
	t.Helper()
	rc = pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	rc.AddRun(t, pt.At(480), 150, 100)
	pem, err := integrity.MarshalPrivateKey(rc.Key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(rc.Dir, "keys"), 0o700)
	if err := os.WriteFile(filepath.Join(rc.Dir, "keys", "node.key"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(rc.Dir, "custos.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nstorage:\n  - {name: d1, path: %s}\ncameras:\n  - {name: door, url: \"rtsp://127.0.0.1:9/none\", storage: d1}\n",
		rc.Dir, filepath.Join(rc.Dir, "disk"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return rc, cfgPath
}

func exportEntries(t *testing.T, dir string) []audit.Entry {
	t.Helper()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	l, err := audit.Open(context.Background(), idx, filepath.Join(dir, "audit.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Query(context.Background(), audit.Filter{Action: audit.Export, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestEvidenceExportAcrossGap exports a range across a recording gap:
// both runs are written (one file each), the gap is printed and the exit
// status is 3 unless --allow-gaps; each file verifies and reports exactly
// what it covers, the other part and the gap; the server's export is the
// same files; each local export is audited with the OS user before it is
// written, and refused when the audit log cannot be written.
func TestEvidenceExportAcrossGap(t *testing.T) {
	rc, cfgPath := evidenceSetup(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "clip.mp4")
	out2 := filepath.Join(dir, "clip-part2.mp4")
	from, to := pt.At(37).Format(time.RFC3339Nano), pt.At(560).Format(time.RFC3339Nano)
	args := []string{"export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", out, "--evidence"}
	gapLine := fmt.Sprintf("%s to %s: no recording", pt.At(300).Format(time.RFC3339Nano), pt.At(480).Format(time.RFC3339Nano))

	code, stdout, stderr := runCLI(t, args...)
	if code != 3 || !strings.Contains(stdout, "wrote "+out+": ") || !strings.Contains(stdout, "(part 1 of 2)") ||
		!strings.Contains(stdout, "wrote "+out2+": ") || !strings.Contains(stderr, "THE RANGE IS NOT FULLY COVERED") ||
		!strings.Contains(stderr, "not covered  "+gapLine) || !strings.Contains(stderr, "--allow-gaps") {
		t.Fatalf("export across a gap: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, append(args, "--allow-gaps", "--force")...)
	if code != 0 || !strings.Contains(stderr, "not covered  "+gapLine) {
		t.Errorf("--allow-gaps: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", "-", "--evidence"); code != 1 || !strings.Contains(stderr, "the range needs 2 files") {
		t.Errorf("-o - across a gap: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", out, "--allow-gaps"); code != 2 || !strings.Contains(stderr, "--allow-gaps goes with --evidence") {
		t.Errorf("--allow-gaps without --evidence: exit %d %s", code, stderr)
	}
	key := integrity.PublicKeyString(rc.Key.Public().(ed25519.PublicKey))
	var covered []string
	for i, p := range []string{out, out2} {
		code, vout, _ := runCLI(t, "verify", p, "--key", key)
		if code != 0 || !strings.Contains(vout, p+": OK\n") || !strings.Contains(vout, fmt.Sprintf("part       %d of 2", i+1)) ||
			!strings.Contains(vout, "requested  "+from+" to "+to) || !strings.Contains(vout, "             "+gapLine) {
			t.Errorf("verify part %d: exit %d\n%s", i+1, code, vout)
		}
		line := vout[strings.Index(vout, "  covered    "):]
		covered = append(covered, line[:strings.Index(line, " (this file")])
	}
	// The parts cover the runs: the first from the key frame before from
	// to the gap, the second from the gap to past to.
	if c := covered[0]; !strings.HasSuffix(c, " to "+pt.At(300).Format(time.RFC3339Nano)) {
		t.Errorf("part 1: %s", c)
	}
	if c := covered[1]; !strings.HasPrefix(c, "  covered    "+pt.At(480).Format(time.RFC3339Nano)+" to ") {
		t.Errorf("part 2: %s", c)
	}
	for _, p := range []string{out, out2} {
		if errText, n := pt.DecodeErrors(t, p); errText != "" || n < 70 {
			t.Errorf("%s: ffmpeg decoded %d frames: %q", p, n, errText)
		}
	}

	// A plain export is audited too.
	plain := filepath.Join(dir, "plain.mp4")
	if code, _, stderr := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", plain); code != 0 {
		t.Fatalf("plain export: exit %d %s", code, stderr)
	}
	osUser := currentOSUser(&env{})
	var got []string
	for _, en := range exportEntries(t, rc.Dir) {
		d := en.Detail
		if en.Camera != "door" || en.Addr != "local" || d["via"] != "custos export" || d["os_user"] != osUser || d["from"] != from || d["to"] != to || d["stream"] != "main" {
			t.Errorf("audit entry %+v", en)
		}
		got = append(got, d["evidence"]+" "+d["part"])
	}
	// Newest first: the plain export, then twice the two parts.
	if strings.Join(got, ",") != "no ,yes 2/2,yes 1/2,yes 2/2,yes 1/2" {
		t.Errorf("audited exports: %q", got)
	}

	// The audit log cannot be written: the export is refused, nothing
	// is written.
	logPath := filepath.Join(rc.Dir, "audit.log")
	os.Rename(logPath, logPath+".away")
	os.Mkdir(logPath, 0o700)
	refused := filepath.Join(dir, "refused.mp4")
	for _, ev := range [][]string{{"--evidence"}, nil} {
		code, _, stderr := runCLI(t, append([]string{"export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", refused}, ev...)...)
		if code != 1 || !strings.Contains(stderr, "export refused: the audit log") {
			t.Errorf("export %v without an audit log: exit %d %s", ev, code, stderr)
		}
		if _, err := os.Stat(refused); err == nil {
			t.Errorf("an unaudited export was written")
		}
	}
	os.Remove(logPath)
	os.Rename(logPath+".away", logPath)

	// The server: the same two files, and its headers say the same.
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	rout := filepath.Join(dir, "remote.mp4")
	code, stdout, stderr = runCLI(t, "export", "--url", srv.authURL(), "--camera", "door", "--from", from, "--to", to, "-o", rout, "--evidence")
	if code != 3 || !strings.Contains(stderr, "not covered  "+gapLine) {
		t.Fatalf("export --url across a gap: exit %d\n%s%s", code, stdout, stderr)
	}
	for i, pair := range [][2]string{{out, rout}, {out2, filepath.Join(dir, "remote-part2.mp4")}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("part %d: the server's file (%d bytes) differs from the local one (%d bytes)", i+1, len(b), len(a))
		}
	}
}

// TestVerifyExitCodes: custos verify's exit status tells a verified
// export (0), a tampered one (1), an unreadable file (2), a file that is
// not an evidence export (3) and a version 1 export (4) apart.
func TestVerifyExitCodes(t *testing.T) {
	_, cfgPath := evidenceSetup(t)
	dir := t.TempDir()
	from, to := pt.At(37).Format(time.RFC3339Nano), pt.At(260).Format(time.RFC3339Nano)
	ev, plain := filepath.Join(dir, "ev.mp4"), filepath.Join(dir, "plain.mp4")
	for _, a := range [][]string{{"-o", ev, "--evidence"}, {"-o", plain}} {
		if code, _, stderr := runCLI(t, append([]string{"export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to}, a...)...); code != 0 {
			t.Fatalf("export %v: exit %d %s", a, code, stderr)
		}
	}
	good, _ := os.ReadFile(ev)
	spans, payload, err := integrity.FindFragments(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	// The same export as version 1 (as exports made before version 2).
	m, err := integrity.ParseManifest(payload)
	if err != nil {
		t.Fatal(err)
	}
	m.Version, m.Signature = 1, nil
	box1, err := m.MarshalBox()
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(good, []byte(integrity.ManifestUUID)) - 8
	end := at + int(binary.BigEndian.Uint32(good[at:]))
	v1 := append(append(bytes.Clone(good[:at]), box1...), good[end:]...)
	last := spans[len(spans)-1]
	for _, tc := range []struct {
		name, path string
		code       int
		want       string
	}{
		{"verified", ev, 0, ": OK\n"},
		{"last fragment cut", write("cut.mp4", good[:last[0]]), 1, "FAILED: the file has " + fmt.Sprint(len(spans)-1) + " fragments but the manifest lists " + fmt.Sprint(len(spans))},
		{"box appended", write("free.mp4", append(bytes.Clone(good), 0, 0, 0, 8, 'f', 'r', 'e', 'e')), 1, `FAILED: not a well-formed evidence export: top-level box "free"`},
		{"missing file", filepath.Join(dir, "nothing.mp4"), 2, ""},
		{"plain export", plain, 3, "this is not an evidence export (no Custos manifest); it cannot be verified"},
		{"text", write("notes.txt", []byte("not a video at all\n")), 3, "this is not an evidence export"},
		{"version 1", write("v1.mp4", v1), 4, "OK AS A VERSION 1 EXPORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, "verify", tc.path)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("verify: exit %d, want %d with %q\n%s%s", code, tc.code, tc.want, out, stderr)
			}
			if tc.code == 3 && strings.Contains(out, "FAILED") {
				t.Errorf("a file that is not evidence is reported as FAILED:\n%s", out)
			}
		})
	}
	code, out, _ := runCLI(t, "verify", "--help")
	if code != 0 || !strings.Contains(out, "3  not an evidence export") || !strings.Contains(out, "4  a version 1 export") {
		t.Errorf("verify --help: exit %d\n%s", code, out)
	}
}
