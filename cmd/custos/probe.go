package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// runProbe implements "custos probe [--seconds N] [--transport tcp|udp] URL".
func runProbe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	seconds := fs.Float64("seconds", 0, "receive media for this many seconds and report frames, key frames, bytes and lost packets per track")
	transport := fs.String("transport", "", "RTP transport: tcp or udp (udp falls back to tcp when nothing arrives in 3 s); default tcp, and udp for a camera that refuses tcp (461)")
	user := fs.String("user", "", "user name (overrides the URL's)")
	pass := fs.String("pass", "", "password (overrides the URL's; prefer CUSTOS_CAMERA_PASSWORD)")
	dump := fs.String("dump", "", "with --seconds: write the first video track's access units to this file as Annex B (.h264/.h265)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout for each RTSP request")
	allowBasic := fs.Bool("allow-basic", false, "answer a camera that offers only Basic authentication over plain rtsp:// (sends the password in clear)")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		helpFlags(e.stdout, fs, "probe [--seconds N] [--transport tcp|udp] rtsp://[user:pass@]host[:port]/path")
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want exactly one camera URL, got %d arguments", errUsage, len(pos))
	}
	mode := rtsp.TransportMode(*transport)
	forceTCP := mode == rtsp.TCP
	if mode == "" {
		mode = rtsp.TCP
	}
	if mode != rtsp.TCP && mode != rtsp.UDP {
		return fmt.Errorf("%w: --transport must be tcp or udp, not %q", errUsage, *transport)
	}
	if *seconds < 0 {
		return fmt.Errorf("%w: --seconds must not be negative", errUsage)
	}
	if *pass == "" {
		*pass = lookupEnv("CUSTOS_CAMERA_PASSWORD")
	}
	var dumpW io.Writer
	if *dump != "" {
		if *seconds <= 0 {
			return fmt.Errorf("%w: --dump needs --seconds", errUsage)
		}
		f, err := os.Create(*dump)
		if err != nil {
			return fmt.Errorf("create dump file: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		defer bw.Flush()
		dumpW = bw
	}
	res, err := probe.Run(ctx, probe.Options{
		Dump: dumpW,
		Client: rtsp.ClientConfig{
			URL: pos[0], Username: *user, Password: *pass, Transport: mode, ForceTCP: forceTCP,
			Logger: e.log, RequestTimeout: *timeout, AllowBasic: *allowBasic,
		},
		Duration: time.Duration(*seconds * float64(time.Second)),
	})
	if err != nil {
		return errors.New(probe.Describe(err))
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
