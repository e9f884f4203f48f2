package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RecordOptions configure Record.
type RecordOptions struct {
	// Exe is the custos binary (run as "custos sim" and "custos serve").
	Exe string
	// Cameras is the number of simulated cameras recorded (main streams).
	Cameras int
	// Duration of the measured window.
	Duration time.Duration
	// Baseline "ffmpeg" also records the same streams with
	// "ffmpeg -rtsp_transport tcp -i URL -c copy -f segment", one process
	// per camera, and measures it the same way; "motion" with the motion
	// daemon (movie_passthrough, recording continuously).
	Baseline string
	// Baselines lists several baselines (ffmpeg, motion), measured in turn.
	Baselines []string
	// Viewers live MSE viewers (WebSocket clients reading every message,
	// spread over the cameras) watch during the measured window.
	Viewers int
	// Dir receives the recordings (a temporary directory when empty).
	Dir      string
	Progress io.Writer
}

// Cost is what one recorder used over the window.
type Cost struct {
	CPUSeconds        float64 `json:"cpu_seconds"`
	CorePercent       float64 `json:"core_percent"`
	CPUSecPerStreamHr float64 `json:"cpu_seconds_per_stream_hour"`
	RSSMiB            float64 `json:"rss_mib"`
	RSSPerStreamMiB   float64 `json:"rss_per_stream_mib"`
	// For the peers: the frames in their files (ffprobe -count_packets)
	// against 25 fps × how long each process ran, from its start until
	// it exited (so its time to connect and reach a key frame counts as
	// lost: an upper bound on loss).
	FramesRecorded int64   `json:"frames_recorded,omitempty"`
	FramesExpected float64 `json:"frames_expected,omitempty"`
	// CountErrors lists files ffprobe could not read (unfinished).
	CountErrors []string `json:"count_errors,omitempty"`
}

// RecordResult is what Record measured.
type RecordResult struct {
	Cameras        int     `json:"cameras"`
	Seconds        float64 `json:"seconds"`
	Custos         Cost    `json:"custos"`
	FramesRecorded int64   `json:"frames_recorded"`
	FramesExpected float64 `json:"frames_expected"`
	Reconnects     int64   `json:"reconnects"`
	// With Viewers: what they received, and the server's live counters.
	Live     *LiveResult `json:"live,omitempty"`
	Baseline *Cost       `json:"ffmpeg,omitempty"`
	Motion   *Cost       `json:"motion,omitempty"`
	// CPURatio is Custos's CPU per stream over ffmpeg's.
	CPURatio float64 `json:"cpu_ratio_vs_ffmpeg,omitempty"`
}

var apiAddrRE = regexp.MustCompile(`web UI at http://([^/]+)/`)

// benchAdminPassword is the first admin's password of the servers the
// benchmarks start (their requests authenticate like anyone's).
const benchAdminPassword = "bench-admin-password"

// benchGet is an authenticated GET to a benchmark's server.
func benchGet(addr, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("admin", benchAdminPassword)
	return http.DefaultClient.Do(req)
}

// Record measures "custos serve" recording Cameras simulated cameras (the
// simulator runs as a separate process and is not counted), and
// optionally ffmpeg doing the same. It blocks for about twice Duration
// plus start-up with a baseline.
func Record(ctx context.Context, o RecordOptions) (*RecordResult, error) {
	if o.Cameras < 1 {
		return nil, errors.New("cameras must be at least 1")
	}
	progress := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "custos-bench-record-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sim, addr, err := startSim(cctx, o.Exe, "127.0.0.1:0", o.Cameras)
	if err != nil {
		return nil, err
	}
	defer sim.Wait()

	serve, api, _, err := startServe(cctx, o.Exe, o.Dir, addr, o.Cameras, "")
	if err != nil {
		return nil, err
	}
	progress("recording %d cameras with custos serve for %s", o.Cameras, o.Duration)
	res := &RecordResult{Cameras: o.Cameras}
	time.Sleep(3 * time.Second) // every camera connected and past its first key frame
	var watch *viewers
	if o.Viewers > 0 {
		progress("%d live viewers join", o.Viewers)
		if watch, err = startViewers(cctx, api, o.Cameras, o.Viewers); err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Second) // every viewer past its first GOP
		watch.mark()
	}
	f0, _, err := apiFrames(api)
	if err != nil {
		return nil, err
	}
	cost, elapsed, err := measure(ctx, []int{serve.Process.Pid}, o.Duration, o.Cameras)
	if err != nil {
		return nil, err
	}
	f1, reconnects, err := apiFrames(api)
	if err != nil {
		return nil, err
	}
	if watch != nil {
		if res.Live, err = watch.result(api, elapsed); err != nil {
			return nil, err
		}
	}
	serve.Process.Signal(syscall.SIGTERM)
	serve.Wait()
	res.Seconds, res.Custos = elapsed, *cost
	res.FramesRecorded, res.Reconnects = f1-f0, reconnects
	res.FramesExpected = 25 * elapsed * float64(o.Cameras)

	if o.Baseline == "ffmpeg" || slices.Contains(o.Baselines, "ffmpeg") {
		progress("recording the same %d streams with ffmpeg -c copy -f segment for %s", o.Cameras, o.Duration)
		var pids []int
		var cmds []*exec.Cmd
		var started []time.Time // starting 200 processes takes seconds: each counts from its own start
		for k := 1; k <= o.Cameras; k++ {
			out := filepath.Join(o.Dir, "ffmpeg", fmt.Sprintf("cam%d", k))
			os.MkdirAll(out, 0o755)
			c := exec.CommandContext(cctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
				"-i", fmt.Sprintf("rtsp://%s/cam%d", addr, k), "-c", "copy", "-f", "segment", "-segment_time", "60",
				"-reset_timestamps", "1", filepath.Join(out, "%05d.mp4"))
			if err := c.Start(); err != nil {
				return nil, fmt.Errorf("start ffmpeg: %w", err)
			}
			cmds = append(cmds, c)
			pids = append(pids, c.Process.Pid)
			started = append(started, time.Now())
		}
		time.Sleep(3 * time.Second)
		bcost, _, err := measure(ctx, pids, o.Duration, o.Cameras)
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGINT)
		}
		// Each records until it exits: wait for all at once and note when.
		var ran time.Duration
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, c := range cmds {
			wg.Go(func() {
				c.Wait()
				mu.Lock()
				ran += time.Since(started[i])
				mu.Unlock()
			})
		}
		wg.Wait()
		if err != nil {
			return nil, err
		}
		progress("counting the frames ffmpeg wrote")
		bcost.FramesRecorded, bcost.CountErrors = countFrames(ctx, filepath.Join(o.Dir, "ffmpeg"))
		bcost.FramesExpected = 25 * ran.Seconds() // summed over the processes
		res.Baseline = bcost
		if bcost.CPUSecPerStreamHr > 0 {
			res.CPURatio = res.Custos.CPUSecPerStreamHr / bcost.CPUSecPerStreamHr
		}
	}
	if o.Baseline == "motion" || slices.Contains(o.Baselines, "motion") {
		progress("recording the same %d streams with motion (movie_passthrough) for %s", o.Cameras, o.Duration)
		bcost, err := measureMotion(cctx, o, addr, progress)
		if err != nil {
			return nil, err
		}
		res.Motion = bcost
	}
	cancel()
	return res, nil
}

// startSim starts custos sim with cameras cameras on listen and returns
// the process and the address it serves; the process ends with ctx.
func startSim(ctx context.Context, exe, listen string, cameras int) (*exec.Cmd, string, error) {
	c := exec.CommandContext(ctx, exe, "sim", "--listen", listen, "--cameras", strconv.Itoa(cameras))
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := c.Start(); err != nil {
		return nil, "", fmt.Errorf("start simulator: %w", err)
	}
	addr, err := readSimAddr(out)
	if err != nil {
		c.Process.Kill()
		c.Wait()
		return nil, "", err
	}
	go io.Copy(io.Discard, out)
	return c, addr, nil
}

// startServe writes a configuration recording cam1…camN of the
// simulator at simAddr into dir (extra is added at the top level, e.g. a
// retention section) and starts custos serve on it with the benchmark's
// admin password. It returns the process, the API address and the
// configuration's path; the caller stops the process.
func startServe(ctx context.Context, exe, dir, simAddr string, cameras int, extra string) (*exec.Cmd, string, string, error) {
	var cfg strings.Builder
	// Every viewer of a benchmark signs in as the one admin from
	// loopback: lift the per-user and per-address bounds (the descriptor
	// reserve still applies).
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:0\ndata_dir: %s\nlog: {level: warn}\n"+
		"live: {max_viewers_per_user: 100000}\nhttp: {max_conns: 100000, max_conns_per_addr: 100000}\n%scameras:\n",
		filepath.Join(dir, "custos"), extra)
	for k := 1; k <= cameras; k++ {
		fmt.Fprintf(&cfg, "  - {name: cam%d, url: \"rtsp://%s/cam%d\"}\n", k, simAddr, k)
	}
	cfgPath := filepath.Join(dir, "custos.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, "", "", err
	}
	serve := exec.CommandContext(ctx, exe, "serve", "--config", cfgPath)
	serve.Env = append(os.Environ(), "CUSTOS_ADMIN_PASSWORD="+benchAdminPassword)
	out, err := serve.StdoutPipe()
	if err != nil {
		return nil, "", "", err
	}
	if err := serve.Start(); err != nil {
		return nil, "", "", fmt.Errorf("start custos serve: %w", err)
	}
	api, err := readLine(out, apiAddrRE)
	if err != nil {
		serve.Process.Kill()
		serve.Wait()
		return nil, "", "", fmt.Errorf("custos serve: %w", err)
	}
	go io.Copy(io.Discard, out)
	return serve, api, cfgPath, nil
}

// measureMotion records the streams with the motion daemon (Debian's
// "motion": one process, a thread per camera; it decodes every frame for
// detection and, with movie_passthrough, writes the camera's packets),
// recording all the time (emulate_motion), and measures it like custos.
func measureMotion(ctx context.Context, o RecordOptions, simAddr string, progress func(string, ...any)) (*Cost, error) {
	if _, err := exec.LookPath("motion"); err != nil {
		return nil, errors.New("motion is not installed (apt-get install motion)")
	}
	dir := filepath.Join(o.Dir, "motion")
	os.MkdirAll(dir, 0o755)
	var main strings.Builder
	fmt.Fprintf(&main, "daemon off\nlog_level 4\nwebcontrol_port 0\nstream_port 0\npicture_output off\n")
	for k := 1; k <= o.Cameras; k++ {
		cam := filepath.Join(dir, fmt.Sprintf("cam%d.conf", k))
		conf := fmt.Sprintf("camera_id %d\nnetcam_url rtsp://%s/cam%d\nnetcam_params rtsp_transport=tcp\nmovie_output on\n"+
			"movie_passthrough on\nemulate_motion on\nmovie_max_time 60\ntarget_dir %s\nmovie_filename cam%d-%%Y%%m%%d%%H%%M%%S\n",
			k, simAddr, k, filepath.Join(dir, fmt.Sprintf("cam%d", k)), k)
		if err := os.WriteFile(cam, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(&main, "camera %s\n", cam)
	}
	confPath := filepath.Join(dir, "motion.conf")
	if err := os.WriteFile(confPath, []byte(main.String()), 0o644); err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, "motion", "-n", "-c", confPath)
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start motion: %w", err)
	}
	began := time.Now()
	time.Sleep(8 * time.Second) // connect and start the movies
	cost, _, err := measure(ctx, []int{c.Process.Pid}, o.Duration, o.Cameras)
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	ran := time.Since(began) // it records until it exits
	if err != nil {
		return nil, err
	}
	progress("counting the frames motion wrote")
	cost.FramesRecorded, cost.CountErrors = countFrames(ctx, dir)
	cost.FramesExpected = 25 * ran.Seconds() * float64(o.Cameras)
	return cost, nil
}

// countFrames counts the video packets (frames) in every movie file under
// dir with ffprobe, and names the files it could not read.
func countFrames(ctx context.Context, dir string) (int64, []string) {
	var total int64
	var bad []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		switch filepath.Ext(p) {
		case ".mp4", ".mkv", ".mov":
		default:
			return nil
		}
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
			"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", p).Output()
		n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil || perr != nil {
			bad = append(bad, filepath.Base(p))
			return nil
		}
		total += n
		return nil
	})
	return total, bad
}

// measure sums the CPU time of pids over d and their RSS at the end.
func measure(ctx context.Context, pids []int, d time.Duration, streams int) (*Cost, float64, error) {
	cpu := func() (float64, error) {
		var sum float64
		for _, p := range pids {
			c, err := procCPUSeconds(p)
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	c0, err := cpu()
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	c1, err := cpu()
	if err != nil {
		return nil, 0, err
	}
	el := time.Since(t0).Seconds()
	var rss float64
	for _, p := range pids {
		r, err := procRSSMiB(p)
		if err != nil {
			return nil, 0, err
		}
		rss += r
	}
	return &Cost{CPUSeconds: c1 - c0, CorePercent: 100 * (c1 - c0) / el,
		CPUSecPerStreamHr: (c1 - c0) / el * 3600 / float64(streams),
		RSSMiB:            rss, RSSPerStreamMiB: rss / float64(streams)}, el, nil
}

// apiFrames sums the recorded frames and reconnects over all cameras.
func apiFrames(addr string) (frames, reconnects int64, err error) {
	resp, err := benchGet(addr, "/api/cameras")
	if err != nil {
		return 0, 0, fmt.Errorf("query custos serve: %w", err)
	}
	defer resp.Body.Close()
	var cams []struct {
		Streams []struct {
			Frames     int64 `json:"frames"`
			Reconnects int64 `json:"reconnects"`
		} `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cams); err != nil {
		return 0, 0, fmt.Errorf("decode /api/cameras: %w", err)
	}
	for _, c := range cams {
		for _, s := range c.Streams {
			frames += s.Frames
			reconnects += s.Reconnects
		}
	}
	return frames, reconnects, nil
}

func readLine(r io.Reader, re *regexp.Regexp) (string, error) {
	br := bufio.NewReader(r)
	for range 50 {
		line, err := br.ReadString('\n')
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
		if err != nil {
			return "", fmt.Errorf("did not print its address: %w", err)
		}
	}
	return "", errors.New("did not print its address")
}
