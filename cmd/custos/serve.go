package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/live"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/thumb"
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
	srv, err := startServer(ctx, e, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "custos: recording %d cameras; API at http://%s/api/cameras\n", len(cfg.Cameras), srv.addr)
	<-ctx.Done()
	return srv.stop()
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
	// hubs are the live-view hubs: closing them ends WebSocket viewers,
	// which http.Server.Shutdown does not know about.
	hubs []*live.Hub
}

// startServer opens the index and the storage directories, recovers what a
// crash left unfinished, starts one supervisor per stream and the HTTP
// API. A storage directory that cannot be used (missing, swapped) stops
// only the cameras on it; they report the reason in the API.
func startServer(ctx context.Context, e *env, cfg *config.Config) (*server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	idx, err := sqlite.Open(filepath.Join(cfg.DataDir, "index.db"))
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	disks := map[string]blob.Store{}
	diskErr := map[string]error{}
	for _, sc := range cfg.Storage {
		d, err := openDisk(ctx, idx, sc, cfg.DataDir)
		if err != nil {
			e.log.Error("storage unavailable: its cameras will not record", "storage", sc.Name, "err", err)
			diskErr[sc.Name] = err
			continue
		}
		disks[sc.Name] = d
	}
	if err := recorder.Recover(ctx, idx, disks, e.log); err != nil {
		idx.Close()
		return nil, fmt.Errorf("recover unfinished segments: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &server{idx: idx, cancel: cancel}
	// A failed write (a full disk) asks retention for a pass at once.
	kick := make(chan struct{}, 1)
	onWriteError := func(error) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var cams []api.Camera
	for _, cc := range cfg.Cameras {
		cam := api.Camera{Name: cc.Name, Config: api.CameraConfig{Storage: cc.Storage,
			MaxAgeHours: time.Duration(cc.Retention.MaxAge).Hours(), MaxBytes: int64(cc.Retention.MaxBytes)}}
		urls := []struct{ stream, url string }{{"main", cc.URL}}
		if cc.SubURL != "" {
			urls = append(urls, struct{ stream, url string }{"sub", cc.SubURL})
		}
		for _, u := range urls {
			hub := live.NewHub(live.HubOptions{Camera: cc.Name, Stream: u.stream, Logger: e.log})
			cam.Live = append(cam.Live, hub)
			s.hubs = append(s.hubs, hub)
			sc := recorder.StreamConfig{
				Camera: cc.Name, Stream: u.stream,
				Client: rtsp.ClientConfig{URL: u.url, Username: cc.Username, Password: cc.Password,
					Transport: rtsp.TransportMode(cc.Transport)},
				Disk: disks[cc.Storage], Index: idx, FsyncEvery: time.Duration(cfg.FsyncInterval), Logger: e.log,
				OnWriteError: onWriteError, Live: hub,
			}
			sup, err := recorder.NewSupervisor(sc, diskErr[cc.Storage])
			if err != nil {
				cancel()
				idx.Close()
				return nil, err
			}
			cam.Streams = append(cam.Streams, sup)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				sup.Run(rctx)
			}()
		}
		cams = append(cams, cam)
	}
	ret := &retention.Retention{Index: idx, Disks: map[string]retention.Disk{}, Logger: e.log}
	for _, sc := range cfg.Storage {
		d, ok := disks[sc.Name].(*local.Dir)
		if !ok {
			continue
		}
		ret.Disks[sc.Name] = retention.Disk{Store: d, MinFree: int64(sc.MinFree), Free: func() (int64, error) {
			_, free, err := d.Usage()
			return int64(free), err
		}}
	}
	for _, cc := range cfg.Cameras {
		ret.Policies = append(ret.Policies, retention.Policy{Camera: cc.Name,
			MaxAge: time.Duration(cc.Retention.MaxAge), MaxBytes: int64(cc.Retention.MaxBytes)})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runRetention(rctx, ret, kick, e)
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		s.wg.Wait()
		idx.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.addr = ln.Addr().String()
	a := &api.Server{Cameras: cams, Index: idx, Logger: e.log,
		Playback: &playback.Source{Index: idx, Disks: disks, Cache: playback.NewIndexCache(1 << 20), Logger: e.log},
		Thumbs:   thumb.New("", 2, 32<<20),
		UI:       web.Handler()}
	for _, sc := range cfg.Storage {
		d := api.Disk{Name: sc.Name, Path: sc.Path, MinFree: int64(sc.MinFree)}
		if ld, ok := disks[sc.Name].(*local.Dir); ok {
			d.Usage = ld.Usage
		} else {
			d.Usage = func() (uint64, uint64, error) { return 0, 0, fmt.Errorf("storage %s is unavailable", sc.Name) }
		}
		a.Disks = append(a.Disks, d)
	}
	s.http = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.http.Serve(ln)
	return s, nil
}

// openDisk opens a storage directory. The default directory under data_dir
// is created on first use; any other must exist (a missing directory is an
// unmounted disk). A directory that had no identity and was just
// initialised is refused if the index already has recordings on that disk:
// that is an empty mount point, not a new disk.
func openDisk(ctx context.Context, idx store.Store, sc config.Storage, dataDir string) (blob.Store, error) {
	if sc.Name == "default" && sc.Path == filepath.Join(dataDir, "recordings") {
		if err := os.MkdirAll(sc.Path, 0o750); err != nil {
			return nil, fmt.Errorf("storage %s: %w", sc.Path, err)
		}
	}
	d, err := local.Open(sc.Path, sc.Name, local.Options{})
	if err != nil {
		return nil, err
	}
	if d.Initialized() {
		has, err := idx.HasSegmentsOn(ctx, sc.Name)
		if err != nil {
			return nil, err
		}
		if has {
			return nil, fmt.Errorf("storage %s at %s: the directory was empty but the index has recordings there: disk not mounted? (remove %s/custos-disk.json after mounting)", sc.Name, sc.Path, sc.Path)
		}
	}
	return d, nil
}

// stop ends recording (closing open segments), then the API and the index.
func (s *server) stop() error {
	s.cancel()
	s.wg.Wait()
	for _, h := range s.hubs {
		h.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.http.Shutdown(sctx)
	return s.idx.Close()
}

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
