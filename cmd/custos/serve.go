package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/cameras"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/netlimit"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
	"github.com/custos-nvr/custos/internal/secret"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/thumb"
	"github.com/custos-nvr/custos/internal/tlscert"
	"github.com/custos-nvr/custos/internal/web"
)

// runServe implements "custos serve --config FILE": record every
// configured camera and serve the API until interrupted.
func runServe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML configuration file (see custos.example.yaml); empty uses the defaults")
	if err := parseNoArgs(e, fs, args, "serve --config FILE"); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	tuneGC()
	srv, err := startServer(ctx, e, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "custos: recording %d cameras; web UI at %s/\n", len(cfg.Cameras), srv.baseURL())
	<-ctx.Done()
	return srv.stop()
}

// tuneGC collects garbage at 50 % heap growth instead of Go's 100 %,
// unless GOGC is set. The recorder's live heap is its media in flight
// (each stream's current GOP for live viewers, the fragment being built):
// measured with 200 cameras (docs/benchmarks.md), RSS fell from 1.8 to
// 1.2 MiB per stream with no measurable CPU cost, the GC being a few
// percent of the profile.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// server is a running recorder plus API, as serve and demo start it.
type server struct {
	addr   string
	idx    store.Store
	http   *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    func(string, ...any)
	// dataDir is set by the demo, which chose it.
	dataDir string
	// cams runs the cameras; closing it ends recording and the live
	// viewers (which http.Server.Shutdown does not know about).
	cams  *cameras.Manager
	auth  *auth.Service
	audit *audit.Log
	// refusals aggregates refused logins and requests; flushed at stop.
	refusals *audit.Aggregator
	// api writes out its viewing sessions' audit entries at stop.
	api *api.Server
	tls bool
	// checkpoint signs every chain's head and the audit log's each
	// minute and at stop; journal is the chains' second copy.
	checkpoint *evidence.Checkpointer
	journal    *evidence.Journal
	// adminPassword is the password of the first admin when this start
	// created it (from CUSTOS_ADMIN_PASSWORD or generated).
	adminPassword string
}

// baseURL is the server's URL (http or https, no credentials).
func (s *server) baseURL() string {
	if s.tls {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// startServer opens the index and the storage directories, recovers what a
// crash left unfinished, starts one supervisor per stream and the HTTP
// API. A storage directory that cannot be used (missing, swapped) stops
// only the cameras on it; they report the reason in the API.
func startServer(ctx context.Context, e *env, cfg *config.Config) (*server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	// The descriptor reserve is computed from the limit in force.
	nofile, hardNofile, err := netlimit.RaiseFileLimit()
	if err != nil {
		e.log.Warn("cannot raise the open-file limit; the descriptor reserve uses the current one", "soft", nofile, "hard", hardNofile, "err", err)
	} else {
		e.log.Info("open-file limit", "nofile", nofile)
	}
	idx, err := sqlite.Open(filepath.Join(cfg.DataDir, "index.db"))
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	for _, p := range idx.Tightened() {
		e.log.Info("index: group or others could read this file; restricted it to mode 0600", "file", p)
	}
	disks := map[string]blob.Store{}
	diskErr := map[string]error{}
	for _, sc := range cfg.Storage {
		d, err := openDisk(ctx, idx, sc, cfg.DataDir, e.log)
		if err != nil {
			e.log.Error("storage: cannot read the index about it; its cameras will not record", "storage", sc.Name, "err", err)
			diskErr[sc.Name] = err
			continue
		}
		disks[sc.Name] = d
	}
	// The node key signs every stream's hash chain (docs/evidence.md).
	key, created, err := integrity.LoadOrCreateKey(nodeKeyPath(cfg))
	if err != nil {
		idx.Close()
		return nil, err
	}
	if created {
		fmt.Fprintf(e.stdout, "custos: created the node signing key %s\n        public key %s (custos key show prints it)\n",
			nodeKeyPath(cfg), integrity.PublicKeyString(key.Public().(ed25519.PublicKey)))
	}
	// The first start with a journal (none, or an empty one a failed
	// seed left, and no checkpoint yet) copies the chains recorded so far
	// into it.
	jfi, jerr := os.Stat(filepath.Join(cfg.DataDir, "chains.log"))
	if jerr == nil && jfi.Size() == 0 {
		jerr = os.ErrNotExist
	}
	_, cerr := os.Stat(filepath.Join(cfg.DataDir, "checkpoint.json"))
	journal, err := evidence.OpenJournal(filepath.Join(cfg.DataDir, "chains.log"))
	if err != nil {
		idx.Close()
		return nil, err
	}
	// Stored camera URLs and passwords are sealed under a key beside it.
	secrets, _, err := secret.LoadOrCreate(secretKeyPath(cfg))
	if err != nil {
		journal.Close()
		idx.Close()
		return nil, err
	}
	if errors.Is(jerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist) {
		n, err := journal.Seed(ctx, idx)
		if err != nil {
			journal.Close()
			idx.Close()
			return nil, err
		}
		if n > 0 {
			e.log.Warn("chain journal: first start with chains.log; copied the chains recorded so far from the index", "entries", n)
		}
	}
	if _, err := journal.CatchUp(ctx, idx, e.log); err != nil {
		journal.Close()
		idx.Close()
		return nil, err
	}
	chains := &evidence.Chains{Store: idx, Key: key, Journal: journal}
	if err := recorder.Recover(ctx, idx, disks, e.log, chains); err != nil {
		journal.Close()
		idx.Close()
		return nil, fmt.Errorf("recover unfinished segments: %w", err)
	}
	authSvc, err := auth.New(idx, auth.Options{})
	if err != nil {
		journal.Close()
		idx.Close()
		return nil, err
	}
	auditLog, err := audit.OpenWith(ctx, idx, filepath.Join(cfg.DataDir, "audit.log"), nil, audit.Options{Logger: e.log})
	if err != nil {
		journal.Close()
		idx.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	adminPass := e.getenv("CUSTOS_ADMIN_PASSWORD")
	created, generated, err := authSvc.Bootstrap(ctx, adminPass)
	if err != nil {
		auditLog.Close()
		journal.Close()
		idx.Close()
		return nil, err
	}
	if created {
		if generated != "" {
			adminPass = generated
			fmt.Fprintf(e.stdout, "custos: created user admin with password %s\n"+
				"        (shown once: note it, or change it with custos user passwd --config FILE admin)\n", generated)
		} else {
			fmt.Fprintln(e.stdout, "custos: created user admin with the password in CUSTOS_ADMIN_PASSWORD")
		}
		if _, err := auditLog.Append(ctx, audit.Entry{Action: audit.UserAdd, Result: "ok",
			Detail: map[string]string{"user": "admin", "role": "admin", "reason": "first start"}}); err != nil {
			auditLog.Close()
			journal.Close()
			idx.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
	} else {
		adminPass = ""
	}
	if _, err := auditLog.Append(ctx, audit.Entry{Action: audit.Start, Result: "ok",
		Detail: map[string]string{"cameras": strconv.Itoa(len(cfg.Cameras)), "listen": cfg.Listen}}); err != nil {
		auditLog.Close()
		journal.Close()
		idx.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := auditConfigChange(ctx, auditLog, cfg); err != nil {
		auditLog.Close()
		journal.Close()
		idx.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &server{idx: idx, cancel: cancel, auth: authSvc, audit: auditLog, adminPassword: adminPass, journal: journal}
	s.checkpoint = &evidence.Checkpointer{Store: idx, Key: key, Path: filepath.Join(cfg.DataDir, "checkpoint.json"), Logger: e.log,
		AuditHead: func(ctx context.Context) (int64, []byte, error) {
			last, ok, err := idx.LastAudit(ctx)
			if err != nil || !ok {
				return 0, nil, err
			}
			return last.Seq, last.Hash, nil
		}}
	fail := func(err error) (*server, error) {
		cancel()
		if s.cams != nil {
			s.cams.Close() // recorders write the index and the journal
		}
		s.wg.Wait()
		auditLog.Close()
		journal.Close()
		idx.Close()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.checkpoint.Run(rctx, evidence.CheckpointEvery, e.log)
	}()
	// A failed write (a full disk) asks retention for a pass at once.
	kick := make(chan struct{}, 1)
	onWriteError := func(error) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	mgr, err := cameras.Start(rctx, cameras.Options{Config: cfg, Index: idx, Store: idx, Disks: disks, DiskErr: diskErr,
		Logger: e.log, OnWriteError: onWriteError, Chain: chains, Secrets: secrets})
	if err != nil {
		return fail(err)
	}
	s.cams = mgr
	ret := &retention.Retention{Index: idx, Disks: map[string]retention.Disk{}, Logger: e.log, Audit: auditLog, Chain: chains}
	for _, sc := range cfg.Storage {
		d, ok := disks[sc.Name].(*local.Dir)
		if !ok {
			continue
		}
		ret.Disks[sc.Name] = retention.Disk{Store: d, MinFree: sc.MinFree.Bytes, MinFreePercent: sc.MinFree.Percent,
			Free: func() (int64, error) {
				_, free, err := d.Usage()
				return int64(free), err
			},
			Total: func() (int64, error) {
				total, _, err := d.Usage()
				return int64(total), err
			}}
	}
	ret.PolicyFunc = mgr.Policies
	ret.Default = retention.Policy{MaxAge: time.Duration(cfg.Retention.MaxAge), MaxBytes: int64(cfg.Retention.MaxBytes)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runRetention(rctx, ret, kick, e)
	}()
	s.refusals = &audit.Aggregator{Log: auditLog, Logger: e.log}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.refusals.Run(rctx)
	}()
	go func() {
		defer s.wg.Done()
		api.WatchUnlocks(rctx, auditLog, authSvc, unlockPoll, e.log)
	}()
	var tlsConf *tls.Config
	switch {
	case cfg.TLS.Cert != "":
		if tlsConf, err = tlscert.Load(cfg.TLS.Cert, cfg.TLS.Key, e.log, nil); err != nil {
			return fail(err)
		}
	case cfg.TLS.SelfSigned:
		var fp string
		if tlsConf, fp, err = tlscert.SelfSigned(filepath.Join(cfg.DataDir, "tls"), tlscert.Hosts(cfg.Listen), nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "custos: self-signed certificate %s\n        SHA-256 fingerprint %s\n",
			filepath.Join(cfg.DataDir, "tls", "cert.pem"), fp)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen %s: %w", cfg.Listen, err))
	}
	s.addr = ln.Addr().String()
	thumbs := thumb.New("", 2, 32<<20)
	if err := thumbs.Available(); err != nil {
		e.log.Warn("timeline thumbnails are off: install ffmpeg (Debian: apt-get install ffmpeg) and restart; everything else works", "err", err)
	}
	a := &api.Server{Cameras: managedCameras{mgr}, CameraAdmin: mgr, Index: idx, Logger: e.log,
		Playback: &playback.Source{Index: idx, Disks: disks, Cache: playback.NewIndexCache(1 << 20), Logger: e.log},
		Thumbs:   thumbs,
		UI:       web.Handler(), LoginPage: web.LoginPage(), PublicUI: web.PublicPaths,
		Auth: authSvc, Audit: auditLog, MetricsPublic: cfg.Metrics.Public,
		TrustedProxies: cfg.TrustedProxyPrefixes(), Refusals: s.refusals,
		Chains: idx, RecorderKey: key,
		MaxLivePerUser: cfg.Live.MaxViewersPerUser, WebRTCAllow: cfg.Live.WebRTCPrefixes(),
		LockMaxSpan: time.Duration(cfg.Locks.MaxSpan), LockMaxActive: cfg.Locks.MaxActivePerUser, LockedFull: ret.LockedFull}
	for _, sc := range cfg.Storage {
		d := api.Disk{Name: sc.Name, Path: sc.Path, MinFree: sc.MinFree.Bytes, MinFreePercent: sc.MinFree.Percent}
		if ld, ok := disks[sc.Name].(*local.Dir); ok {
			d.Usage = ld.Usage
		} else {
			d.Usage = func() (uint64, uint64, error) { return 0, 0, fmt.Errorf("storage %s is unavailable", sc.Name) }
		}
		a.Disks = append(a.Disks, d)
	}
	s.api = a
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		a.RunViewAudit(rctx)
	}()
	// Connections are bounded below TLS, so a refused one costs no
	// handshake.
	rl := &refusals{log: e.log, now: time.Now}
	fdb := &fdBudget{limit: nofile, streams: func() int { return streamCount(mgr) }, live: a.LiveViews,
		openFiles: netlimit.OpenFiles, now: time.Now}
	// A trusted reverse proxy carries many clients: the per-address cap
	// does not apply to it (the total cap and the budget still do).
	proxies := cfg.TrustedProxyPrefixes()
	ln = netlimit.New(ln, netlimit.Options{Max: cfg.HTTP.MaxConns, PerAddr: cfg.HTTP.MaxConnsPerAddr, OnRefuse: rl.note,
		Budget: fdb.conns, Exempt: func(a netip.Addr) bool {
			a = a.Unmap()
			for _, p := range proxies {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}})
	e.log.Info("http: connection limits", "max_conns", cfg.HTTP.MaxConns, "max_conns_per_addr", cfg.HTTP.MaxConnsPerAddr,
		"descriptor_budget", fdb.conns())
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		s.tls = true
	}
	// No ReadTimeout/WriteTimeout: they bound whole requests and would cut
	// long exports; netlimit.Deadlines bounds bodies and stalled responses.
	s.http = &http.Server{Handler: netlimit.Deadlines(a.Handler(), time.Duration(cfg.HTTP.BodyTimeout), time.Duration(cfg.HTTP.WriteTimeout)),
		ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout), IdleTimeout: time.Duration(cfg.HTTP.IdleTimeout)}
	go s.http.Serve(ln)
	return s, nil
}

// managedCameras shows the manager's cameras to the API.
type managedCameras struct{ m *cameras.Manager }

func (mc managedCameras) List() []api.Camera {
	list := mc.m.List()
	out := make([]api.Camera, 0, len(list))
	for _, c := range list {
		sp := c.Spec
		out = append(out, api.Camera{Name: sp.Name, Streams: c.Streams, Live: c.Live, Config: api.CameraConfig{
			Source: c.Source, URL: cameras.StripCredentials(sp.URL), SubURL: cameras.StripCredentials(sp.SubURL), Username: sp.Username,
			HasPassword: sp.Password != "" || cameras.StripCredentials(sp.URL) != sp.URL, Transport: sp.Transport, Storage: sp.Storage, AllowBasicAuth: sp.AllowBasicAuth,
			MaxAgeHours: time.Duration(sp.Retention.MaxAge).Hours(), MaxBytes: int64(sp.Retention.MaxBytes)}})
	}
	return out
}

// openDisk opens a storage directory. The default directory under data_dir
// is created on first use; any other must exist (a missing directory is an
// unmounted disk). An empty directory becomes a new disk only if the index
// has no recordings on that disk: otherwise it is the mount point of a disk
// that is not mounted, and nothing is written into it. A disk that cannot
// be opened (missing, not mounted, another disk there) is returned as a
// local.OpenLater Dir, which reports why and is adopted when the disk
// appears; its cameras keep their live view meanwhile. The error is only
// for a failing index.
func openDisk(ctx context.Context, idx store.Store, sc config.Storage, dataDir string, log *slog.Logger) (*local.Dir, error) {
	if sc.Name == "default" && sc.Path == filepath.Join(dataDir, "recordings") {
		if err := os.MkdirAll(sc.Path, 0o750); err != nil {
			return nil, fmt.Errorf("storage %s: %w", sc.Path, err)
		}
	}
	has, err := idx.HasSegmentsOn(ctx, sc.Name)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", sc.Name, err)
	}
	d, err := local.Open(sc.Path, sc.Name, local.Options{Existing: has})
	if err != nil {
		log.Error("storage unavailable: its cameras will record when it appears", "storage", sc.Name, "err", err)
		return local.OpenLater(sc.Path, sc.Name, err, local.Options{}), nil
	}
	return d, nil
}

// stop ends recording (closing open segments), then the API and the index.
func (s *server) stop() error {
	s.cancel()
	s.cams.Close()
	s.wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		// Requests still running (a long export) are cut: nothing may use
		// the audit log or the index after they close below.
		s.http.Close()
	}
	// After the last request: the refusals of the last minute and the
	// viewing sessions still open; then the last checkpoint covers
	// everything recorded and audited. A fresh deadline: a slow
	// shutdown must not cost the final checkpoint.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	lerr := s.api.WaitLive(fctx)
	ferr := s.refusals.Flush(fctx, true)
	s.api.FlushViews(fctx)
	_, cerr := s.checkpoint.Sign(fctx)
	return errors.Join(lerr, ferr, cerr, s.audit.Close(), s.journal.Close(), s.idx.Close())
}

// unlockPoll is how often the server looks for custos user unlock's
// entries in the audit log.
const unlockPoll = 2 * time.Second

// retentionEvery is how often retention runs while serving.
const retentionEvery = 30 * time.Second

// runRetention applies retention at start, periodically, and whenever a
// recorder reports a failed write (kick), until ctx ends. Errors are logged and the next pass tries again: retention must
// never stop recording.
func runRetention(ctx context.Context, ret *retention.Retention, kick <-chan struct{}, e *env) {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		if res, err := ret.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("retention pass failed; will retry", "err", err)
		} else if res.Segments > 0 {
			e.log.Info("retention pass", "deleted_segments", res.Segments, "deleted_bytes", res.Bytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}
