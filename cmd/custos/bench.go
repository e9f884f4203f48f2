package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/bench"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// runBench implements "custos bench WHAT": measurements that go into
// docs/benchmarks.md. Today: "sim", the simulator's serving cost.
func runBench(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "record" {
		return runBenchRecord(ctx, e, args[1:])
	}
	if len(args) > 0 && args[0] == "playback" {
		return runBenchPlayback(ctx, e, args[1:])
	}
	if len(args) > 0 && args[0] == "soak" {
		return runBenchSoak(ctx, e, args[1:])
	}
	if len(args) > 0 && args[0] == "scale" {
		return runBenchScale(ctx, e, args[1:])
	}
	if len(args) == 0 || args[0] != "sim" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: custos bench sim [--streams N] [--seconds S] [--sub] [--codec h264|h265] [--transport tcp|udp]")
			fmt.Fprintln(e.stdout, "       custos bench record [--cameras N] [--seconds S] [--baseline ffmpeg]")
			fmt.Fprintln(e.stdout, "       custos bench playback [--cameras N] [--days D] [--requests R] [--dir DIR]")
			fmt.Fprintln(e.stdout, "       custos bench scale [--cameras 10,50,200,500] [--seconds S] [--ffmpeg-up-to N] [--motion-up-to N] [--svg PREFIX]")
			fmt.Fprintln(e.stdout, "       custos bench soak [--cameras N] [--minutes M] [--viewers V] [--outage-every D] [--outage-for D] [--svg FILE]")
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: want 'custos bench sim', 'record', 'playback', 'scale' or 'soak'", errUsage)
	}
	fs := flag.NewFlagSet("bench sim", flag.ContinueOnError)
	streams := fs.Int("streams", 50, "concurrent RTSP sessions, one per simulated camera")
	seconds := fs.Float64("seconds", 20, "measured window in seconds")
	sub := fs.Bool("sub", false, "use the 360p sub-streams instead of 1080p main streams")
	codec := fs.String("codec", "h264", "main stream codec: h264 or h265")
	transport := fs.String("transport", "tcp", "tcp or udp")
	if err := parseNoArgs(e, fs, args[1:], "bench sim [--streams N] [--seconds S] [--sub] [--codec h264|h265] [--transport tcp|udp]"); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	res, err := bench.SimCost(ctx, bench.SimCostOptions{
		Exe: exe, Streams: *streams, Duration: time.Duration(*seconds * float64(time.Second)),
		Sub: *sub, Codec: *codec, Transport: rtsp.TransportMode(*transport), Progress: e.stderr,
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// runBenchRecord implements "custos bench record": the recorder's cost per
// stream, optionally beside ffmpeg recording the same streams.
func runBenchRecord(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench record", flag.ContinueOnError)
	cameras := fs.Int("cameras", 50, "simulated cameras to record (1080p main streams)")
	seconds := fs.Float64("seconds", 30, "measured window in seconds")
	baseline := fs.String("baseline", "", "also measure 'ffmpeg' (-c copy -f segment) or 'motion' (movie_passthrough) recording the same streams")
	viewers := fs.Int("viewers", 0, "live MSE viewers (WebSocket clients) watching during the window")
	if err := parseNoArgs(e, fs, args, "bench record [--cameras N] [--seconds S] [--viewers V] [--baseline ffmpeg]"); err != nil {
		return err
	}
	if *baseline != "" && *baseline != "ffmpeg" && *baseline != "motion" {
		return fmt.Errorf("%w: --baseline must be ffmpeg or motion", errUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	res, err := bench.Record(ctx, bench.RecordOptions{Exe: exe, Cameras: *cameras,
		Duration: time.Duration(*seconds * float64(time.Second)), Baseline: *baseline, Viewers: *viewers, Progress: e.stderr})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// runBenchPlayback implements "custos bench playback": time to first byte
// of exports and playlists over a large synthetic index, and export
// throughput against cat.
func runBenchPlayback(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench playback", flag.ContinueOnError)
	cameras := fs.Int("cameras", 100, "cameras in the synthetic index")
	daysS := fs.String("days", "30", "days of one-minute segments per camera; several (1,30,365) measure each and chart them")
	requests := fs.Int("requests", 1000, "random ranges to time")
	rangeMin := fs.Float64("range-minutes", 10, "length of each timed range")
	exportMin := fs.Float64("export-minutes", 60, "length of the range exported for the throughput comparison")
	dir := fs.String("dir", "", "work directory (default: a temporary one, removed afterwards)")
	svg := fs.String("svg", "", "with several --days: write the time-to-first-byte chart to this SVG file")
	if err := parseNoArgs(e, fs, args, "bench playback [--cameras N] [--days D[,D…]] [--requests R] [--range-minutes M] [--export-minutes M] [--dir DIR] [--svg FILE]"); err != nil {
		return err
	}
	var days []int
	for _, f := range strings.Split(*daysS, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || d < 1 {
			return fmt.Errorf("%w: --days %q: want numbers like 1,30,365", errUsage, *daysS)
		}
		days = append(days, d)
	}
	var results []*bench.PlaybackResult
	for _, d := range days {
		res, err := bench.Playback(ctx, bench.PlaybackOptions{Dir: *dir, Cameras: *cameras, Days: d, Requests: *requests,
			Range: time.Duration(*rangeMin * float64(time.Minute)), Files: 4,
			ExportRange: time.Duration(*exportMin * float64(time.Minute)), Seed: 1, Log: e.stderr})
		if err != nil {
			return fmt.Errorf("%d days: %w", d, err)
		}
		results = append(results, res)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if len(results) == 1 {
		return enc.Encode(results[0])
	}
	if *svg != "" {
		var xs []float64
		var cold50, cold99, warm99, pl99 []float64
		for i, r := range results {
			xs = append(xs, float64(days[i]))
			cold50, cold99 = append(cold50, r.TTFBCold.P50), append(cold99, r.TTFBCold.P99)
			warm99, pl99 = append(warm99, r.TTFBWarm.P99), append(pl99, r.TTFBPlaylist.P99)
		}
		chart := bench.LineChart(fmt.Sprintf("Playback time to first byte as the index grows (%d cameras, one-minute segments)", *cameras),
			"days of recordings in the index", "milliseconds", []bench.Series{
				{Name: "export.mp4 p50 (cold)", Color: "#1f77b4", X: xs, Y: cold50},
				{Name: "export.mp4 p99 (cold)", Color: "#d62728", X: xs, Y: cold99},
				{Name: "export.mp4 p99 (warm)", Color: "#ff7f0e", X: xs, Y: warm99},
				{Name: "playback.m3u8 p99", Color: "#2ca02c", X: xs, Y: pl99},
			}, nil, 0, 900, 380)
		if err := os.WriteFile(*svg, chart, 0o644); err != nil {
			return err
		}
	}
	return enc.Encode(results)
}

// runBenchSoak implements "custos bench soak": a long run with faults,
// reporting JSON (and an SVG chart) and failing when it found problems.
func runBenchSoak(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	cameras := fs.Int("cameras", 50, "simulated cameras recorded")
	minutes := fs.Float64("minutes", 10, "how long")
	viewers := fs.Int("viewers", 20, "live viewers coming and going at once")
	every := fs.Duration("outage-every", 3*time.Minute, "kill every camera (the simulator) this often")
	outage := fs.Duration("outage-for", 15*time.Second, "and bring them back after this long")
	svg := fs.String("svg", "", "write the memory and goroutine chart to this SVG file")
	dir := fs.String("dir", "", "keep the recordings here (default: a temporary directory)")
	if err := parseNoArgs(e, fs, args, "bench soak [--cameras N] [--minutes M] [--viewers V] [--outage-every D] [--outage-for D] [--svg FILE]"); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	res, err := bench.Soak(ctx, bench.SoakOptions{Exe: exe, Cameras: *cameras, Duration: time.Duration(*minutes * float64(time.Minute)),
		Viewers: *viewers, OutageEvery: *every, OutageFor: *outage, Dir: *dir, Progress: e.stderr})
	if err != nil {
		return err
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, bench.SoakChart(res), 0o644); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	if len(res.Problems) > 0 {
		return fmt.Errorf("soak found %d problems: %s", len(res.Problems), strings.Join(res.Problems, "; "))
	}
	return nil
}

// runBenchScale implements "custos bench scale": bench record at several
// camera counts, with ffmpeg and motion alongside up to their bounds, as
// JSON and two SVG charts.
func runBenchScale(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	counts := fs.String("cameras", "10,50,200,500", "camera counts, comma-separated")
	seconds := fs.Float64("seconds", 30, "measured window per run")
	ffUpTo := fs.Int("ffmpeg-up-to", 200, "run ffmpeg alongside up to this many cameras (0: never)")
	motionUpTo := fs.Int("motion-up-to", 50, "run motion alongside up to this many cameras (0: never)")
	svg := fs.String("svg", "", "write FILE-cpu.svg and FILE-rss.svg (FILE without extension)")
	fromJSON := fs.String("from-json", "", "redraw the charts from a saved result instead of measuring")
	if err := parseNoArgs(e, fs, args, "bench scale [--cameras 10,50,200,500] [--seconds S] [--ffmpeg-up-to N] [--motion-up-to N] [--svg PREFIX]"); err != nil {
		return err
	}
	var ns []int
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --cameras %q: want numbers like 10,50,200", errUsage, *counts)
		}
		ns = append(ns, n)
	}
	if *fromJSON != "" {
		b, err := os.ReadFile(*fromJSON)
		if err != nil {
			return err
		}
		var rows []bench.ScaleRow
		if err := json.Unmarshal(b, &rows); err != nil {
			return fmt.Errorf("%s: %w", *fromJSON, err)
		}
		cpu, rss := bench.ScaleCharts(rows)
		if err := os.WriteFile(*svg+"-cpu.svg", cpu, 0o644); err != nil {
			return err
		}
		return os.WriteFile(*svg+"-rss.svg", rss, 0o644)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	rows, err := bench.Scale(ctx, bench.ScaleOptions{Exe: exe, Counts: ns, Duration: time.Duration(*seconds * float64(time.Second)),
		FFmpegUpTo: *ffUpTo, MotionUpTo: *motionUpTo, Progress: e.stderr})
	if len(rows) > 0 && *svg != "" {
		cpu, rss := bench.ScaleCharts(rows)
		if werr := os.WriteFile(*svg+"-cpu.svg", cpu, 0o644); werr != nil {
			return werr
		}
		if werr := os.WriteFile(*svg+"-rss.svg", rss, 0o644); werr != nil {
			return werr
		}
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(rows)
	return err
}
