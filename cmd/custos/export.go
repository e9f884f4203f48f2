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
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// runExport implements "custos export": a time range of one camera as an
// MP4, from the data directory (--config) or a running server (--url).
func runExport(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "read recordings from the data directory of this configuration")
	srvURL := fs.String("url", "", "fetch from a running server instead (e.g. http://user:password@127.0.0.1:8080, or set CUSTOS_TOKEN to an API token)")
	camera := fs.String("camera", "", "camera name")
	stream := fs.String("stream", "main", "stream: main or sub")
	fromS := fs.String("from", "", "start, RFC 3339 (e.g. 2026-11-29T09:30:00Z)")
	toS := fs.String("to", "", "end, RFC 3339")
	out := fs.String("o", "", "output file (- for standard output)")
	force := fs.Bool("force", false, "overwrite the output file if it exists")
	evid := fs.Bool("evidence", false, "an evidence export: the recorded fragments unchanged with a signed manifest, for custos verify (starts at a key frame, ends at a gap)")
	usage := "export (--config FILE | --url URL) --camera NAME --from TIME --to TIME -o FILE [--stream main|sub] [--evidence] [--force]"
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
	if *out != "-" && !*force {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("export: %s exists (use --force to overwrite it)", *out)
		}
	}

	var body io.Reader
	var size int64
	var closer func()
	var covered string
	if *cfgPath != "" {
		f, cl, err := exportLocal(ctx, e, *cfgPath, *camera, *stream, from, to, *evid)
		if err != nil {
			return err
		}
		rd := f.Open(ctx)
		body, size, closer = rd, f.Size(), func() { rd.Close(); cl() }
		covered = fmt.Sprintf("%s to %s", f.From.UTC().Format(time.RFC3339Nano), f.To.UTC().Format(time.RFC3339Nano))
	} else {
		resp, err := exportRemote(ctx, *srvURL, e.getenv("CUSTOS_TOKEN"), *camera, *stream, from, to, *evid)
		if err != nil {
			return err
		}
		body, size, closer = resp.Body, resp.ContentLength, func() { resp.Body.Close() }
		covered = fmt.Sprintf("%s to %s", resp.Header.Get("X-Custos-From"), resp.Header.Get("X-Custos-To"))
	}
	defer closer()

	n, err := writeOutput(ctx, e, *out, body, size)
	if err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(e.stdout, "wrote %s: %.1f MiB, %s\n", *out, float64(n)/(1<<20), covered)
	}
	return nil
}

// exportLocal plans the export from the data directory: the index and the
// storage directories named by the configuration, opened read-only.
func exportLocal(ctx context.Context, e *env, cfgPath, camera, stream string, from, to time.Time, evid bool) (*playback.File, func(), error) {
	cfg, err := config.Load(cfgPath, os.Environ())
	if err != nil {
		return nil, nil, err
	}
	idx, disks, err := openReadOnly(e, cfg, "export")
	if err != nil {
		return nil, nil, err
	}
	// Any camera with recordings: configured, added in the UI or removed.
	streams, err := idx.Streams(ctx)
	if err != nil {
		idx.Close()
		return nil, nil, err
	}
	var names []string
	found := false
	for _, st := range streams {
		if st.Name == "main" {
			names = append(names, st.Camera)
		}
		found = found || st.Camera == camera
	}
	if !found {
		idx.Close()
		return nil, nil, fmt.Errorf("export: no recordings of a camera named %q (cameras with recordings: %s)", camera, strings.Join(names, ", "))
	}
	src := &playback.Source{Index: idx, Disks: disks, Logger: e.log}
	var f *playback.File
	if evid {
		var pub ed25519.PublicKey
		if pub, err = nodePublicKey(cfg); err == nil {
			f, err = src.Evidence(ctx, camera, stream, from, to, idx, pub)
		}
	} else {
		f, err = src.Export(ctx, camera, stream, from, to)
	}
	if err != nil {
		idx.Close()
		var pe *playback.Error
		if errors.As(err, &pe) {
			return nil, nil, fmt.Errorf("export: %s", pe.Message)
		}
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	return f, func() { idx.Close() }, nil
}

// nodeKeyPath is where custos serve keeps the node's signing key.
func nodeKeyPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "keys", "node.key") }

// nodePublicKey reads the recorder's public key; a missing key file is an
// error wrapping os.ErrNotExist.
func nodePublicKey(cfg *config.Config) (ed25519.PublicKey, error) {
	path := nodeKeyPath(cfg)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no node key at %s (custos serve creates it on its first start): %w", path, err)
	}
	key, err := integrity.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key.Public().(ed25519.PublicKey), nil
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

// exportRemote asks a running server for the export and returns the
// response once its status is 200. Credentials come from the URL
// (http://user:password@host, sent as HTTP Basic) or token (a bearer
// token, from CUSTOS_TOKEN); the export is audited by the server as a
// download by that user.
func exportRemote(ctx context.Context, base, token, camera, stream string, from, to time.Time, evid bool) (*http.Response, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s", errUsage, fmt.Sprintf("--url %q is not an http(s) URL like http://127.0.0.1:8080", base))
	}
	u = u.JoinPath("api", "cameras", camera, "export.mp4")
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)},
		"stream": {stream}, "download": {"1"}}
	if evid {
		q.Set("evidence", "1")
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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
	return resp, nil
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
