package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Exe      string
	Cameras  int
	Duration time.Duration
	// Viewers is how many live viewers come and go at once (each stays
	// 5 to 30 s, then another joins).
	Viewers int
	// OutageEvery and OutageFor: the simulator (every camera) is killed
	// and restarted on the same address this often, for this long.
	OutageEvery, OutageFor time.Duration
	// MaxBytes is each camera's retention limit, small so that retention
	// deletes all along (default 16 MiB: a deletion about a minute).
	MaxBytes int64
	// SampleEvery is the sampling period (default 10 s).
	SampleEvery time.Duration
	Dir         string
	Progress    io.Writer
}

// SoakSample is one sample of the server's state.
type SoakSample struct {
	Seconds    float64 `json:"t"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
	Goroutines int     `json:"goroutines"`
	Frames     int64   `json:"frames"`
	Reconnects int64   `json:"reconnects"`
	Viewers    int     `json:"viewers"`
	Outage     bool    `json:"outage"`
}

// SoakResult is what a soak found.
type SoakResult struct {
	Cameras         int          `json:"cameras"`
	Seconds         float64      `json:"seconds"`
	Outages         int          `json:"outages"`
	OutageSeconds   float64      `json:"outage_seconds"`
	FramesRecorded  int64        `json:"frames_recorded"`
	FramesExpected  float64      `json:"frames_expected_while_cameras_up"`
	ReconnectMaxSec float64      `json:"reconnect_max_seconds"`
	ViewersServed   int64        `json:"viewers_served"`
	ViewerFrames    int64        `json:"viewer_frames"`
	ViewerErrors    int64        `json:"viewer_errors_outside_outages"`
	RetentionPasses int          `json:"retention_deleted_segments"`
	Check           string       `json:"check"`
	AuditVerify     string       `json:"audit_verify"`
	Samples         []SoakSample `json:"samples"`
	// Problems is empty when the soak passed.
	Problems []string `json:"problems"`
}

// Soak runs custos serve against simulated cameras for o.Duration with
// viewers joining and leaving, every camera dropping and returning, and
// retention deleting, sampling memory and goroutines, then checks the
// recordings and the audit log. It reports problems rather than failing
// on them (an error is a soak that could not run).
func Soak(ctx context.Context, o SoakOptions) (*SoakResult, error) {
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	progress := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "custos-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A fixed address, so that the restarted simulator is the same camera.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	simAddr := ln.Addr().String()
	ln.Close()
	var simMu sync.Mutex
	var sim *exec.Cmd
	startSim := func() error {
		c, _, err := startSim(cctx, o.Exe, simAddr, o.Cameras)
		if err != nil {
			return err
		}
		simMu.Lock()
		sim = c
		simMu.Unlock()
		return nil
	}
	if err := startSim(); err != nil {
		return nil, err
	}
	defer func() {
		simMu.Lock()
		if sim != nil {
			sim.Process.Kill()
			sim.Wait()
		}
		simMu.Unlock()
	}()

	serve, api, cfgPath, err := startServe(cctx, o.Exe, o.Dir, simAddr, o.Cameras, fmt.Sprintf("retention: {max_bytes: %d}\n", o.MaxBytes))
	if err != nil {
		return nil, err
	}
	res := &SoakResult{Cameras: o.Cameras, Problems: []string{}}
	if err := waitRecording(cctx, api, o.Cameras, 30*time.Second); err != nil {
		serve.Process.Kill()
		serve.Wait()
		return nil, err
	}
	progress("soak: %d cameras recording; %s with %d viewers coming and going, outages of %s every %s",
		o.Cameras, o.Duration, o.Viewers, o.OutageFor, o.OutageEvery)
	start := time.Now()
	f0, _, err := apiFrames(api)
	if err != nil {
		return nil, err
	}

	// Viewers come and go.
	var inOutage atomic.Bool
	var served, vframes, verrs atomic.Int64
	var live atomic.Int64
	var vwg sync.WaitGroup
	vctx, vcancel := context.WithCancel(cctx)
	defer vcancel()
	auth := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+benchAdminPassword))}}
	for i := range o.Viewers {
		vwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for vctx.Err() == nil {
				stay := 5*time.Second + time.Duration(rng.IntN(25000))*time.Millisecond
				sctx, scancel := context.WithTimeout(vctx, stay)
				u := fmt.Sprintf("ws://%s/api/cameras/cam%d/live.ws?stream=main", api, rng.IntN(o.Cameras)+1)
				c, _, err := websocket.Dial(sctx, u, &websocket.DialOptions{HTTPHeader: auth})
				if err != nil {
					if sctx.Err() == nil && !inOutage.Load() {
						verrs.Add(1)
					}
					scancel()
					time.Sleep(time.Second)
					continue
				}
				c.SetReadLimit(64 << 20)
				served.Add(1)
				live.Add(1)
				for {
					_, _, err := c.Read(sctx)
					if err != nil {
						if sctx.Err() == nil && !inOutage.Load() {
							verrs.Add(1)
						}
						break
					}
					vframes.Add(1)
				}
				live.Add(-1)
				c.CloseNow()
				scancel()
			}
		})
	}

	// Outages and samples.
	var outageDur time.Duration
	nextOutage := start.Add(o.OutageEvery)
	tick := time.NewTicker(o.SampleEvery)
	defer tick.Stop()
	sample := func(outage bool) {
		s := SoakSample{Seconds: time.Since(start).Seconds(), Viewers: int(live.Load()), Outage: outage}
		s.RSSMiB, _ = procRSSMiB(serve.Process.Pid)
		s.Frames, s.Reconnects, _ = apiFrames(api)
		if g, h, err := runtimeGauges(api); err == nil {
			s.Goroutines, s.HeapMiB = g, h/(1<<20)
		}
		res.Samples = append(res.Samples, s)
	}
	sample(false)
	for time.Since(start) < o.Duration {
		select {
		case <-cctx.Done():
			return nil, cctx.Err()
		case <-tick.C:
		}
		if o.OutageEvery > 0 && time.Now().After(nextOutage) && time.Since(start)+o.OutageFor+30*time.Second < o.Duration {
			inOutage.Store(true)
			simMu.Lock()
			sim.Process.Kill()
			sim.Wait()
			sim = nil
			simMu.Unlock()
			down := time.Now()
			sample(true)
			time.Sleep(o.OutageFor)
			if err := startSim(); err != nil {
				return nil, err
			}
			back := time.Now()
			if err := waitRecording(cctx, api, o.Cameras, 60*time.Second); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("after the outage at %.0f s: %v", down.Sub(start).Seconds(), err))
			}
			res.ReconnectMaxSec = max(res.ReconnectMaxSec, time.Since(back).Seconds())
			outageDur += time.Since(down)
			res.Outages++
			inOutage.Store(false)
			nextOutage = time.Now().Add(o.OutageEvery)
			progress("soak: outage %d: cameras back recording %.1f s after the simulator returned", res.Outages, time.Since(back).Seconds())
		}
		sample(false)
		last := res.Samples[len(res.Samples)-1]
		progress("soak: %4.0f s  rss %.0f MiB  heap %.0f MiB  goroutines %d  viewers %d  frames %d",
			last.Seconds, last.RSSMiB, last.HeapMiB, last.Goroutines, last.Viewers, last.Frames)
	}
	vcancel()
	vwg.Wait()
	f1, _, err := apiFrames(api)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.OutageSeconds = outageDur.Seconds()
	res.FramesRecorded = f1 - f0
	res.FramesExpected = 25 * float64(o.Cameras) * (res.Seconds - res.OutageSeconds)
	res.ViewersServed, res.ViewerFrames, res.ViewerErrors = served.Load(), vframes.Load(), verrs.Load()
	if lost := res.FramesExpected - float64(res.FramesRecorded); lost > 25*float64(o.Cameras)*2 {
		res.Problems = append(res.Problems, fmt.Sprintf("%.0f frames fewer than expected while the cameras were up (%d recorded, %.0f expected)",
			lost, res.FramesRecorded, res.FramesExpected))
	}
	if res.ViewerErrors > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d viewer connections failed or broke while the cameras were up", res.ViewerErrors))
	}
	leaks(res)

	// Stop the server and check what it left.
	serve.Process.Signal(os.Interrupt)
	serve.Wait()
	for _, c := range []struct {
		dst  *string
		args []string
	}{{&res.Check, []string{"check", "--config", cfgPath}}, {&res.AuditVerify, []string{"audit", "verify", "--config", cfgPath}}} {
		out, err := exec.CommandContext(ctx, o.Exe, c.args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		*c.dst = lines[len(lines)-1]
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("custos %s: %v: %s", c.args[0], err, strings.TrimSpace(string(out))))
		}
	}
	res.RetentionPasses = countRetention(cfgPath, o.Exe, ctx)
	return res, nil
}

// leaks compares goroutines and memory early in the soak (after the
// first minute) with the end.
func leaks(res *SoakResult) {
	var early, last *SoakSample
	for i := range res.Samples {
		s := &res.Samples[i]
		if s.Outage {
			continue
		}
		if early == nil && s.Seconds >= 60 {
			early = s
		}
		last = s
	}
	if early == nil || last == nil || last == early {
		return
	}
	// Viewers hold a few goroutines each; allow for their number changing.
	if g := last.Goroutines - early.Goroutines - 6*(last.Viewers-early.Viewers); g > 50 {
		res.Problems = append(res.Problems, fmt.Sprintf("goroutines grew from %d to %d", early.Goroutines, last.Goroutines))
	}
	if last.RSSMiB > early.RSSMiB*1.5+20 {
		res.Problems = append(res.Problems, fmt.Sprintf("RSS grew from %.0f to %.0f MiB", early.RSSMiB, last.RSSMiB))
	}
}

// runtimeGauges reads the server's goroutines and heap from /metrics.
func runtimeGauges(addr string) (goroutines int, heap float64, err error) {
	resp, err := benchGet(addr, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "custos_go_goroutines "); ok {
			goroutines, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "custos_go_heap_alloc_bytes "); ok {
			heap, _ = strconv.ParseFloat(v, 64)
		}
	}
	return goroutines, heap, sc.Err()
}

// waitRecording waits until every camera records.
func waitRecording(ctx context.Context, addr string, cameras int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := benchGet(addr, "/api/cameras")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Count(string(b), `"status": "recording"`) == cameras {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not every camera recording")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// countRetention counts the segments retention deleted (audit entries).
func countRetention(cfgPath, exe string, ctx context.Context) int {
	out, err := exec.CommandContext(ctx, exe, "audit", "list", "--config", cfgPath, "--action", "retention_delete", "--limit", "1000").Output()
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "segments="); i >= 0 {
			v, _ := strconv.Atoi(strings.Fields(line[i+len("segments="):])[0])
			n += v
		}
	}
	return n
}
