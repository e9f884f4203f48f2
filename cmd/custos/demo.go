package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
)

// runDemo implements "custos demo": the camera simulator, a probe of every
// simulated stream, then (unless --once) custos serve recording every
// simulated camera into a data directory, with its API on 127.0.0.1.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cameras := fs.Int("cameras", 4, "number of simulated cameras")
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP address for the simulated cameras (a free port is used if this one is taken)")
	seconds := fs.Float64("seconds", 2, "how long to receive from each stream when probing")
	once := fs.Bool("once", false, "exit after the probe instead of recording and serving until interrupted")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the API (a free port is used if this one is taken)")
	dataDir := fs.String("data", "", "data directory to record into (default: a temporary one, removed at exit)")
	maxSize := fs.String("max-size", "2GiB", "recordings kept in all (shared by the cameras; the oldest are deleted beyond it)")
	if err := parseNoArgs(e, fs, args, "demo [--cameras N] [--once] [--http ADDR] [--data DIR] [--max-size SIZE]"); err != nil {
		return err
	}
	capBytes, err := config.ParseBytes(*maxSize)
	if err != nil || capBytes < 1<<20*int64(max(*cameras, 1)) {
		return fmt.Errorf("%w: --max-size %q: want a size of at least 1MiB per camera, like 2GiB", errUsage, *maxSize)
	}
	s, err := sim.New(sim.Options{Cameras: *cameras, Logger: e.log})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		e.log.Info("demo: address taken, using a free port", "listen", *listen, "err", err)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("listen for simulated cameras: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	defer func() {
		s.Close()
		<-errc
	}()
	addr := ln.Addr().String()
	fmt.Fprintf(e.stdout, "Custos demo: %d simulated cameras at rtsp://%s/camN (sub-streams at /camN/sub)\n\n", *cameras, addr)

	// Probe every stream at once: the table appears after one probe's time.
	var paths []string
	for k := 1; k <= *cameras; k++ {
		paths = append(paths, fmt.Sprintf("cam%d", k), fmt.Sprintf("cam%d/sub", k))
	}
	results := make([]*probe.Result, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = probe.Run(ctx, probe.Options{
				Client:   rtsp.ClientConfig{URL: fmt.Sprintf("rtsp://%s/%s", addr, path), Logger: e.log},
				Duration: time.Duration(*seconds * float64(time.Second)),
			})
		}()
	}
	wg.Wait()
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCODEC\tPROFILE\tSIZE\tFPS\tFRAMES\tKEY\tKBIT/S\tLOST")
	failed := 0
	for i, path := range paths {
		if errs[i] != nil {
			failed++
			fmt.Fprintf(tw, "%s\terror: %s\n", path, probe.Describe(errs[i]))
			continue
		}
		res := results[i]
		for _, t := range res.Tracks {
			if t.Received == nil {
				continue
			}
			kbps := float64(t.Received.Bytes*8) / res.Seconds / 1000
			fmt.Fprintf(tw, "%s\t%s\t%s\t%dx%d\t%.0f\t%d\t%d\t%.0f\t%d\n", path, t.Codec, t.Profile, t.Width, t.Height,
				t.FPS, t.Received.Frames, t.Received.KeyFrames, kbps, t.Received.LostPackets)
		}
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d simulated streams failed to probe", failed)
	}
	if *once {
		return nil
	}
	srv, cleanup, err := startDemoServer(ctx, e, addr, *cameras, *httpAddr, *dataDir, capBytes)
	if err != nil {
		return err
	}
	defer cleanup()
	base := srv.baseURL()
	login := "sign in with a user of that data directory"
	if srv.adminPassword != "" {
		// Scripts below carry the login in the URL (sent as HTTP Basic).
		login = "sign in as admin, password " + srv.adminPassword
		base = strings.Replace(base, "://", "://"+url.UserPassword("admin", srv.adminPassword).String()+"@", 1)
	}
	now := time.Now().UTC().Truncate(time.Second)
	fmt.Fprintf(e.stdout, `
Recording every camera into %s, keeping at most %s; the API is at %s (Ctrl-C stops).
  web UI:      open %s/ in a browser and `+login+`
  cameras:     curl -s %s/api/cameras
  recordings:  curl -s "%s/api/cameras/cam1/recordings?from=%s&to=%s"
  after a minute, export it, play it as HLS, or see a frame:
    curl -o cam1.mp4 "%s/api/cameras/cam1/export.mp4?from=%s&to=%s"
    ffplay "%s/api/cameras/cam1/playback.m3u8?from=%s&to=%s"
    curl -o cam1.jpg "%s/api/cameras/cam1/thumbnail.jpg?width=640&at=%s"
  probe a camera: go run ./cmd/custos probe --seconds 5 rtsp://%s/cam1
`, srv.dataDir, *maxSize, base, srv.baseURL(), base, base, now.Format(time.RFC3339), now.Add(24*time.Hour).Format(time.RFC3339),
		base, now.Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339),
		base, now.Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339),
		base, now.Add(30*time.Second).Format(time.RFC3339), addr)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// startDemoServer records the simulated cameras at simAddr with the
// server of custos serve, keeping at most capBytes of recordings in all
// (an equal max_bytes per camera; about 4.5 GB an hour would otherwise
// pile up). Without dataDir it records into a temporary directory that
// cleanup removes.
func startDemoServer(ctx context.Context, e *env, simAddr string, cameras int, httpAddr, dataDir string, capBytes int64) (*server, func(), error) {
	removeData := false
	if dataDir == "" {
		d, err := os.MkdirTemp("", "custos-demo-")
		if err != nil {
			return nil, nil, err
		}
		dataDir, removeData = d, true
	}
	if ln, err := net.Listen("tcp", httpAddr); err != nil {
		e.log.Info("demo: API address taken, using a free port", "http", httpAddr, "err", err)
		httpAddr = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\ndata_dir: %q\nfsync_interval: 2s\nretention: {max_bytes: %d}\ncameras:\n",
		httpAddr, dataDir, capBytes/int64(max(cameras, 1)))
	for k := 1; k <= cameras; k++ {
		fmt.Fprintf(&b, "  - {name: cam%d, url: \"rtsp://%s/cam%d\", sub_url: \"rtsp://%s/cam%d/sub\"}\n", k, simAddr, k, simAddr, k)
	}
	cfg, err := config.Parse([]byte(b.String()), "demo", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("demo configuration: %w", err)
	}
	tuneGC()
	srv, err := startServer(ctx, e, cfg)
	if err != nil {
		if removeData {
			os.RemoveAll(dataDir)
		}
		return nil, nil, err
	}
	srv.dataDir = dataDir
	return srv, func() {
		srv.stop()
		if removeData {
			os.RemoveAll(dataDir)
		}
	}, nil
}
