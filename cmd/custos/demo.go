package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
)

// runDemo implements "custos demo": today the camera simulator plus a probe
// of every simulated stream; recording and the web UI join as they land.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cameras := fs.Int("cameras", 4, "number of simulated cameras")
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP address for the simulated cameras (a free port is used if this one is taken)")
	seconds := fs.Float64("seconds", 2, "how long to receive from each stream when probing")
	once := fs.Bool("once", false, "exit after the probe instead of serving until interrupted")
	if err := parseNoArgs(e, fs, args, "demo [--cameras N] [--once]"); err != nil {
		return err
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
	fmt.Fprintf(e.stdout, "\nServing until interrupted (Ctrl-C). Try: go run ./cmd/custos probe --seconds 5 rtsp://%s/cam1\n", addr)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}
