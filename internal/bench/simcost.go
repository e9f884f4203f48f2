// Package bench holds the measurements behind "custos bench": each runs a
// real workload (child processes, loopback sockets) and reports numbers for
// docs/benchmarks.md. They are slow, do I/O, and are not used in tests
// except with tiny sizes.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// SimCostOptions configure SimCost.
type SimCostOptions struct {
	// Exe is the custos binary started as the simulator child process.
	Exe string
	// Streams is the number of concurrent RTSP sessions (one per camera).
	Streams int
	// Duration of the measured window, after every session plays.
	Duration time.Duration
	// Sub selects the 360p sub-streams instead of the 1080p main streams.
	Sub bool
	// Codec of the main streams ("h264" or "h265").
	Codec string
	// Transport for the sessions.
	Transport rtsp.TransportMode
	// Progress, when set, receives one line per phase.
	Progress io.Writer
}

// SimCostResult is what SimCost measured.
type SimCostResult struct {
	Streams            int     `json:"streams"`
	Path               string  `json:"path"`
	Transport          string  `json:"transport"`
	Seconds            float64 `json:"seconds"`
	SimCPUSeconds      float64 `json:"sim_cpu_seconds"`
	SimCorePercent     float64 `json:"sim_core_percent"`
	CPUSecPerStreamHr  float64 `json:"sim_cpu_seconds_per_stream_hour"`
	SimRSSMiB          float64 `json:"sim_rss_mib"`
	FramesReceived     uint64  `json:"frames_received"`
	FramesExpected     float64 `json:"frames_expected"`
	LostPackets        uint64  `json:"lost_packets"`
	ReceiverCPUSeconds float64 `json:"receiver_cpu_seconds"`
}

var simAddrRE = regexp.MustCompile(`rtsp://([0-9.:\[\]a-f]+)/cam1`)

// SimCost starts "custos sim" as a child process, opens Streams RTSP
// sessions to it from this process, and measures the child's CPU time and
// resident memory over Duration while every session receives and
// depacketizes video. It blocks for about Duration plus set-up time.
func SimCost(ctx context.Context, o SimCostOptions) (*SimCostResult, error) {
	if o.Streams < 1 {
		return nil, errors.New("streams must be at least 1")
	}
	if o.Codec == "" {
		o.Codec = "h264"
	}
	if o.Transport == "" {
		o.Transport = rtsp.TCP
	}
	progress := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, o.Exe, "sim", "--listen", "127.0.0.1:0",
		"--cameras", strconv.Itoa(o.Streams), "--codec", o.Codec)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start simulator %s: %w", o.Exe, err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	addr, err := readSimAddr(stdout)
	if err != nil {
		return nil, err
	}
	go io.Copy(io.Discard, stdout)

	path := "cam%d"
	if o.Sub {
		path = "cam%d/sub"
	}
	progress("opening %d sessions to rtsp://%s/%s", o.Streams, addr, path)
	type session struct {
		c   *rtsp.Client
		rcv *ingest.Receiver
	}
	sessions := make([]session, o.Streams)
	defer func() {
		for _, s := range sessions {
			if s.c != nil {
				s.c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, o.Streams)
	sem := make(chan struct{}, 32)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := rtsp.Dial(ctx, rtsp.ClientConfig{URL: fmt.Sprintf("rtsp://%s/"+path, addr, i+1), Transport: o.Transport})
			if err != nil {
				errs <- err
				return
			}
			rcv, err := ingest.NewReceiver(c.Description(), []int{0}, o.Transport == rtsp.UDP, nil)
			if err == nil {
				err = c.Play(ctx, []int{0}, rcv)
			}
			if err != nil {
				c.Close()
				errs <- err
				return
			}
			sessions[i] = session{c, rcv}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	// Let start-up effects (first key frames, buffer growth) settle.
	time.Sleep(2 * time.Second)
	startFrames := uint64(0)
	for _, s := range sessions {
		startFrames += s.rcv.Stats(0).Frames
	}
	cpu0, err := procCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	self0, _ := procCPUSeconds(os.Getpid())
	t0 := time.Now()
	progress("measuring for %s", o.Duration)
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, err := procCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	self1, _ := procCPUSeconds(os.Getpid())
	elapsed := time.Since(t0).Seconds()
	rss, err := procRSSMiB(cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	res := &SimCostResult{Streams: o.Streams, Path: path, Transport: string(o.Transport), Seconds: elapsed,
		SimCPUSeconds: cpu1 - cpu0, SimRSSMiB: rss, ReceiverCPUSeconds: self1 - self0}
	for _, s := range sessions {
		st := s.rcv.Stats(0)
		res.FramesReceived += st.Frames
		res.LostPackets += st.LostPackets
	}
	res.FramesReceived -= startFrames
	res.FramesExpected = 25 * elapsed * float64(o.Streams)
	res.SimCorePercent = 100 * res.SimCPUSeconds / elapsed
	res.CPUSecPerStreamHr = res.SimCPUSeconds / elapsed * 3600 / float64(o.Streams)
	return res, nil
}

func readSimAddr(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	for range 20 {
		line, err := br.ReadString('\n')
		if m := simAddrRE.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
		if err != nil {
			return "", fmt.Errorf("simulator did not print its address: %w", err)
		}
	}
	return "", errors.New("simulator did not print its address")
}

// procCPUSeconds reads user+system CPU time of a process from /proc.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) / clkTck, nil
}

// procRSSMiB reads a process's resident set size from /proc.
func procRSSMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
