package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// exitPartial is custos export's exit status when the files were written
// but the requested range is not fully covered (an evidence export with
// gaps) and --allow-gaps was not given.
const exitPartial = 3

// runExport implements "custos export": a time range of one camera as an
// MP4, from the data directory (--config) or a running server (--url). An
// evidence export of a range that needs several files (one per recording
// run) writes them all: -o for the first, NAME-partK.EXT for the others.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "read recordings from the data directory of this configuration (audited as the OS user)")
	srvURL := fs.String("url", "", "fetch from a running server instead (e.g. http://user:password@127.0.0.1:8080, or set CUSTOS_TOKEN to an API token)")
	camera := fs.String("camera", "", "camera name")
	stream := fs.String("stream", "main", "stream: main or sub")
	fromS := fs.String("from", "", "start, RFC 3339 (e.g. 2026-11-29T09:30:00Z)")
	toS := fs.String("to", "", "end, RFC 3339")
	out := fs.String("o", "", "output file (- for standard output)")
	force := fs.Bool("force", false, "overwrite the output file(s) if they exist")
	evid := fs.Bool("evidence", false, "an evidence export: the recorded fragments unchanged with a signed manifest, for custos verify (starts at a key frame; one file per recording run)")
	allowGaps := fs.Bool("allow-gaps", false, "with --evidence: exit 0 even if the range is not fully covered (the gaps are printed in any case; without it the exit status is 3)")
	usage := "export (--config FILE | --url URL) --camera NAME --from TIME --to TIME -o FILE [--stream main|sub] [--evidence [--allow-gaps]] [--force]\n\n" +
		"Exit status: 0 written; 1 failed; 2 usage; 3 written, but the evidence export does not cover the whole range (see the gaps printed)."
	if err := parseNoArgs(e, fs, args, usage); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--camera", *camera}, {"--from", *fromS}, {"--to", *toS}, {"-o", *out}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf("missing %s\nusage: custos %s", strings.Join(missing, ", "), usage))
	}
	if (*cfgPath == "") == (*srvURL == "") {
		return fmt.Errorf("%w: %s", errUsage, "give exactly one of --config FILE (local data) or --url URL (running server)\nusage: custos "+usage)
	}
	from, err := time.Parse(time.RFC3339Nano, *fromS)
	if err != nil {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf("--from %q is not an RFC 3339 time like 2026-11-29T09:30:00Z", *fromS))
	}
	to, err := time.Parse(time.RFC3339Nano, *toS)
	if err != nil {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf("--to %q is not an RFC 3339 time like 2026-11-29T09:40:00Z", *toS))
	}
	if !to.After(from) {
		return fmt.Errorf("%w: %s", errUsage, "--to must be after --from")
	}
	if *allowGaps && !*evid {
		return fmt.Errorf("%w: --allow-gaps goes with --evidence", errUsage)
	}
	if err := checkNew(*out, *force); err != nil {
		return err
	}

	req := exportRequest{camera: *camera, stream: *stream, from: from, to: to, evidence: *evid}
	var fetch partFetcher
	if *cfgPath != "" {
		f, cleanup, err := exportLocal(ctx, e, *cfgPath, req)
		if err != nil {
			return err
		}
		defer cleanup()
		fetch = f
	} else {
		fetch = func(ctx context.Context, part int) (*exportPart, error) {
			return exportRemote(ctx, *srvURL, e.getenv("CUSTOS_TOKEN"), req, part)
		}
	}
	p, err := fetch(ctx, 1)
	if err != nil {
		return err
	}
	n := 1
	if p.ev != nil {
		n = len(p.ev.Parts)
	}
	paths := partPaths(*out, n)
	if n > 1 && *out == "-" {
		p.close()
		return fmt.Errorf("export: the range needs %d files (one per recording run) and -o - carries one: give a file name", n)
	}
	for _, path := range paths[1:] {
		if err := checkNew(path, *force); err != nil {
			p.close()
			return err
		}
	}
	for k := 1; k <= n; k++ {
		if k > 1 {
			if p, err = fetch(ctx, k); err != nil {
				return fmt.Errorf("part %d of %d: %w", k, n, err)
			}
			if p.ev == nil || len(p.ev.Parts) != n {
				p.close()
				return fmt.Errorf("export: the recordings changed during the export (part %d no longer belongs to %d parts): run it again", k, n)
			}
		}
		if p.audit != nil {
			if err := p.audit(); err != nil {
				p.close()
				return err
			}
		}
		written, err := writeOutput(ctx, e, paths[k-1], p.body, p.size)
		p.close()
		if err != nil {
			return err
		}
		if *out != "-" {
			of := ""
			if n > 1 {
				of = fmt.Sprintf(" (part %d of %d)", k, n)
			}
			fmt.Fprintf(e.stdout, "wrote %s: %.1f MiB, %s%s\n", paths[k-1], float64(written)/(1<<20), p.covered, of)
		}
	}
	if p.ev == nil || len(p.ev.Gaps) == 0 {
		return nil
	}
	w := e.stderr
	fmt.Fprintf(w, "custos export: THE RANGE IS NOT FULLY COVERED: %s to %s has %d gap(s) that no file covers:\n",
		from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), len(p.ev.Gaps))
	for _, g := range p.ev.Gaps {
		fmt.Fprintf(w, "  not covered  %s\n", gapLine(g))
	}
	if *allowGaps {
		return nil
	}
	return &exitError{code: exitPartial, err: errors.New("the files were written, but the range is not fully covered (--allow-gaps to accept that)")}
}

// gapLine describes a gap for people: "FROM to TO: reason".
func gapLine(g integrity.Gap) string {
	return fmt.Sprintf("%s to %s: %s", g.From.UTC().Format(time.RFC3339Nano), g.To.UTC().Format(time.RFC3339Nano), integrity.GapText(g.Reason))
}

// checkNew refuses to overwrite path unless force.
func checkNew(path string, force bool) error {
	if path == "-" || force {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("export: %s exists (use --force to overwrite it)", path)
	}
	return nil
}

// partPaths names the files of an export of n parts: out for the first,
// out's name with -part2, -part3 … before its extension for the others.
func partPaths(out string, n int) []string {
	paths := []string{out}
	ext := filepath.Ext(out)
	for k := 2; k <= n; k++ {
		paths = append(paths, fmt.Sprintf("%s-part%d%s", strings.TrimSuffix(out, ext), k, ext))
	}
	return paths
}

// exportRequest is what custos export was asked for.
type exportRequest struct {
	camera, stream string
	from, to       time.Time
	evidence       bool
}

// exportPart is one file of an export, ready to be written.
type exportPart struct {
	body    io.Reader
	size    int64                  // -1 when unknown
	covered string                 // "FROM to TO"
	ev      *playback.EvidenceInfo // evidence exports only
	// audit, when set, records the export and must succeed before the
	// file is written (local exports; the server audits its own).
	audit func() error
	close func()
}

// partFetcher returns part k (from 1) of an export.
type partFetcher func(ctx context.Context, part int) (*exportPart, error)

// exportLocal prepares the export from the data directory: the index and
// the storage directories named by the configuration, the node key for
// evidence, and the audit log, which records every part as it is about to
// be written, with the OS user who ran the command (an export that cannot
// be audited is refused). The cleanup closes them.
func exportLocal(ctx context.Context, e *env, cfgPath string, req exportRequest) (partFetcher, func(), error) {
	cfg, err := config.Load(cfgPath, os.Environ())
	if err != nil {
		return nil, nil, err
	}
	idx, disks, err := openReadOnly(e, cfg, "export")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (partFetcher, func(), error) {
		idx.Close()
		return nil, nil, err
	}
	// Any camera with recordings: configured, added in the UI or removed.
	streams, err := idx.Streams(ctx)
	if err != nil {
		return fail(err)
	}
	var names []string
	found := false
	for _, st := range streams {
		if st.Name == "main" {
			names = append(names, st.Camera)
		}
		found = found || st.Camera == req.camera
	}
	if !found {
		return fail(fmt.Errorf("export: no recordings of a camera named %q (cameras with recordings: %s)", req.camera, strings.Join(names, ", ")))
	}
	var key ed25519.PrivateKey
	if req.evidence {
		if key, err = nodeKey(cfg); err != nil {
			return fail(fmt.Errorf("export: %w", err))
		}
	}
	alog, err := audit.Open(ctx, idx, filepath.Join(cfg.DataDir, "audit.log"), nil)
	if err != nil {
		return fail(fmt.Errorf("export refused: the audit log cannot be opened: %w", err))
	}
	cleanup := func() { alog.Close(); idx.Close() }
	src := &playback.Source{Index: idx, Disks: disks, Logger: e.log}
	osUser := currentOSUser(e)
	fetch := func(ctx context.Context, part int) (*exportPart, error) {
		var f *playback.File
		var err error
		if req.evidence {
			f, err = src.Evidence(ctx, req.camera, req.stream, req.from, req.to, part, idx, key)
		} else {
			f, err = src.Export(ctx, req.camera, req.stream, req.from, req.to)
		}
		if err != nil {
			var pe *playback.Error
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("export: %s", pe.Message)
			}
			return nil, fmt.Errorf("export: %w", err)
		}
		rd := f.Open(ctx)
		p := &exportPart{body: rd, size: f.Size(), ev: f.Evidence, close: func() { rd.Close() },
			covered: fmt.Sprintf("%s to %s", f.From.UTC().Format(time.RFC3339Nano), f.To.UTC().Format(time.RFC3339Nano))}
		detail := map[string]string{"stream": req.stream, "from": req.from.UTC().Format(time.RFC3339Nano),
			"to": req.to.UTC().Format(time.RFC3339Nano), "evidence": "no", "bytes": strconv.FormatInt(f.Size(), 10),
			"via": "custos export", "os_user": osUser}
		if f.Evidence != nil {
			detail["evidence"] = "yes"
			detail["part"] = fmt.Sprintf("%d/%d", f.Evidence.Part, len(f.Evidence.Parts))
			detail["covered"] = strings.ReplaceAll(p.covered, " to ", "/")
			detail["gaps"] = strconv.Itoa(len(f.Evidence.Gaps))
		}
		p.audit = func() error {
			_, err := alog.Append(ctx, audit.Entry{Action: audit.Export, Camera: req.camera, Addr: "local", Result: audit.ResultOK, Detail: detail})
			if err != nil {
				return fmt.Errorf("export refused: it cannot be audited: %w", err)
			}
			return nil
		}
		return p, nil
	}
	return fetch, cleanup, nil
}

// currentOSUser names the operating-system account running the command,
// for the audit log of local commands.
func currentOSUser(e *env) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := e.getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// nodeKeyPath is where custos serve keeps the node's signing key.
func nodeKeyPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "keys", "node.key") }

// nodeKey reads the recorder's signing key (evidence exports sign their
// manifest with it); a missing key file is an error wrapping
// os.ErrNotExist.
func nodeKey(cfg *config.Config) (ed25519.PrivateKey, error) {
	path := nodeKeyPath(cfg)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no node key at %s (custos serve creates it on its first start): %w", path, err)
	}
	key, err := integrity.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// openReadOnly opens the index and every storage directory that already
// carries its identity (never initialising one); unavailable directories
// are logged and left out.
func openReadOnly(e *env, cfg *config.Config, cmd string) (*sqlite.Store, map[string]blob.Store, error) {
	dbPath := filepath.Join(cfg.DataDir, "index.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, nil, fmt.Errorf("no index at %s (custos check --repair rebuilds it): %w", dbPath, err)
	}
	idx, err := sqlite.Open(dbPath)
	if err != nil {
		return nil, nil, fmt.Errorf("open index (custos check --repair rebuilds it): %w", err)
	}
	disks := map[string]blob.Store{}
	for _, sc := range cfg.Storage {
		d, err := local.Open(sc.Path, sc.Name, local.Options{Existing: true})
		if err != nil {
			e.log.Warn(cmd+": storage unavailable", "storage", sc.Name, "err", err)
			continue
		}
		disks[sc.Name] = d
	}
	return idx, disks, nil
}

// exportRemote asks a running server for part `part` of the export and
// returns it once the status is 200. Credentials come from the URL
// (http://user:password@host, sent as HTTP Basic) or token (a bearer
// token, from CUSTOS_TOKEN); the export is audited by the server as a
// download by that user.
func exportRemote(ctx context.Context, base, token string, req exportRequest, part int) (*exportPart, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s", errUsage, fmt.Sprintf("--url %q is not an http(s) URL like http://127.0.0.1:8080", base))
	}
	u = u.JoinPath("api", "cameras", req.camera, "export.mp4")
	q := url.Values{"from": {req.from.Format(time.RFC3339Nano)}, "to": {req.to.Format(time.RFC3339Nano)},
		"stream": {req.stream}, "download": {"1"}}
	if req.evidence {
		q.Set("evidence", "1")
		q.Set("part", strconv.Itoa(part))
	}
	u.RawQuery = q.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var msg struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &msg) != nil || msg.Error == "" {
			msg.Error = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("export: server answered %s: %s", resp.Status, msg.Error)
	}
	p := &exportPart{body: resp.Body, size: resp.ContentLength, close: func() { resp.Body.Close() },
		covered: fmt.Sprintf("%s to %s", resp.Header.Get("X-Custos-From"), resp.Header.Get("X-Custos-To"))}
	if req.evidence {
		if p.ev, err = parseEvidenceHeaders(resp.Header); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("export: the server's answer: %w", err)
		}
	}
	return p, nil
}

// parseEvidenceHeaders reads what the server says an evidence export
// covers (X-Custos-Part, -Parts, -Covered, -Gaps; see docs/api.md).
func parseEvidenceHeaders(h http.Header) (*playback.EvidenceInfo, error) {
	ev := &playback.EvidenceInfo{}
	var err error
	if ev.Part, err = strconv.Atoi(h.Get("X-Custos-Part")); err != nil {
		return nil, fmt.Errorf("X-Custos-Part %q: %w", h.Get("X-Custos-Part"), err)
	}
	span := func(s string) (integrity.Span, error) {
		a, b, ok := strings.Cut(s, "/")
		from, err1 := time.Parse(time.RFC3339Nano, a)
		to, err2 := time.Parse(time.RFC3339Nano, b)
		if !ok || err1 != nil || err2 != nil {
			return integrity.Span{}, fmt.Errorf("range %q is not FROM/TO", s)
		}
		return integrity.Span{From: from, To: to}, nil
	}
	for _, s := range strings.Split(h.Get("X-Custos-Covered"), ", ") {
		sp, err := span(s)
		if err != nil {
			return nil, fmt.Errorf("X-Custos-Covered: %w", err)
		}
		ev.Parts = append(ev.Parts, sp)
	}
	if n, err := strconv.Atoi(h.Get("X-Custos-Parts")); err != nil || n != len(ev.Parts) || ev.Part < 1 || ev.Part > n {
		return nil, fmt.Errorf("X-Custos-Parts %q does not agree with X-Custos-Part and X-Custos-Covered", h.Get("X-Custos-Parts"))
	}
	if g := h.Get("X-Custos-Gaps"); g != "none" {
		for _, s := range strings.Split(g, ", ") {
			r, reason, _ := strings.Cut(s, " ")
			sp, err := span(r)
			if err != nil || reason == "" {
				return nil, fmt.Errorf("X-Custos-Gaps: %q is not FROM/TO REASON", s)
			}
			ev.Gaps = append(ev.Gaps, integrity.Gap{From: sp.From, To: sp.To, Reason: reason})
		}
	}
	return ev, nil
}

// writeOutput copies body to path (or standard output for "-"): to a
// temporary file beside it, synced, then renamed, so a failed export never
// leaves a truncated file under the requested name. On a terminal it
// draws a progress line on standard error.
func writeOutput(ctx context.Context, e *env, path string, body io.Reader, size int64) (int64, error) {
	if path == "-" {
		return io.Copy(e.stdout, body)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".partial-*")
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	var done atomic.Int64
	stop := startProgress(e, size, &done)
	n, err := io.Copy(tmp, &countingReader{r: body, n: &done})
	stop()
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("got %d bytes of %d", n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return n, fmt.Errorf("export to %s: %w", path, err)
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startProgress draws "export: 45% 120.5/267.3 MiB" on standard error
// five times a second when it is a terminal; the returned func stops it.
func startProgress(e *env, size int64, done *atomic.Int64) func() {
	f, ok := e.stderr.(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	draw := func() {
		n := done.Load()
		rate := float64(n) / (1 << 20) / max(time.Since(start).Seconds(), 0.001)
		if size > 0 {
			fmt.Fprintf(f, "\rexport: %3d%% %.1f/%.1f MiB %.0f MiB/s ", n*100/size, float64(n)/(1<<20), float64(size)/(1<<20), rate)
		} else {
			fmt.Fprintf(f, "\rexport: %.1f MiB %.0f MiB/s ", float64(n)/(1<<20), rate)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				draw()
				fmt.Fprintln(f)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// nodePublicKey reads the recorder's public key (nodeKey's).
func nodePublicKey(cfg *config.Config) (ed25519.PublicKey, error) {
	key, err := nodeKey(cfg)
	if err != nil {
		return nil, err
	}
	return key.Public().(ed25519.PublicKey), nil
}
