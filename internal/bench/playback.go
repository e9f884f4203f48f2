package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// PlaybackOptions configure Playback.
type PlaybackOptions struct {
	// Dir holds the synthetic index and files (a temporary directory
	// when empty; it is removed afterwards only then).
	Dir string
	// Cameras and Days size the index: one 60 s segment row per camera
	// per minute.
	Cameras, Days int
	// Requests is the number of random ranges timed; Range their length.
	Requests int
	Range    time.Duration
	// Files is how many real segment files the rows share.
	Files int
	// ExportRange is the length of the range whose export is compared
	// with cat.
	ExportRange time.Duration
	Seed        uint64
	Log         io.Writer // progress lines; nil for none
}

// Latency summarises a set of timings in milliseconds.
type Latency struct {
	N                   int
	P50, P90, P99, Max  float64
	Mean                float64
	FirstBytesPerSecond float64 `json:",omitempty"`
}

func latencyOf(d []time.Duration) Latency {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	pct := func(p float64) float64 { return ms(d[min(len(d)-1, int(p*float64(len(d))))]) }
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Latency{N: len(d), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(d[len(d)-1]),
		Mean: ms(sum / time.Duration(len(d)))}
}

// PlaybackResult is what Playback measured.
type PlaybackResult struct {
	Rows          int
	IndexMiB      float64
	BuildSeconds  float64
	SegmentMiB    float64 // size of one real segment file
	TTFBCold      Latency // export.mp4, sample tables not cached
	TTFBWarm      Latency // the same ranges again
	TTFBPlaylist  Latency // playback.m3u8, cold
	ExportBytes   int64
	ExportHTTPMiB float64 // MiB/s: GET export.mp4 over loopback into a discarding client
	FilesHTTPMiB  float64 // MiB/s: the same files sent whole (sendfile) over loopback: HTTP's ceiling here
	ExportCLIMiB  float64 // MiB/s: custos export's reader (1 MiB reads) > /dev/null
	CatMiB        float64 // MiB/s: cat of the same files, in the same order, > /dev/null
}

// Playback builds an index of Cameras × Days of one-minute segments whose
// rows point (through an aliasing disk) at a few real segment files made
// from the simulator's 1080p fixture, serves it with the real API, and
// measures time to first byte of random exports and playlists, and export
// throughput against cat of the same bytes.
func Playback(ctx context.Context, o PlaybackOptions) (*PlaybackResult, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	if o.Cameras <= 0 || o.Days <= 0 || o.Requests <= 0 || o.Files <= 0 {
		return nil, errors.New("bench playback: cameras, days, requests and files must be positive")
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "custos-bench-playback-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res := &PlaybackResult{}
	diskDir := filepath.Join(dir, "disk")
	if err := os.MkdirAll(diskDir, 0o755); err != nil {
		return nil, err
	}
	real, err := local.Open(diskDir, "d1", local.Options{Init: true})
	if err != nil {
		return nil, err
	}
	files, segBytes, track, err := writeBenchSegments(ctx, real, o.Files)
	if err != nil {
		return nil, err
	}
	res.SegmentMiB = float64(segBytes[0]) / (1 << 20)
	logf("wrote %d segment files of 60 s (%.1f MiB each)", len(files), res.SegmentMiB)

	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	cams := make([]api.Camera, o.Cameras)
	codec := mp4.CodecString(track)
	n := 0
	for c := range o.Cameras {
		name := fmt.Sprintf("cam-%03d", c)
		cams[c] = api.Camera{Name: name}
		st, err := idx.Stream(ctx, name, "main")
		if err != nil {
			return nil, err
		}
		var rows []store.Segment
		for d := range o.Days {
			start := day0.Add(time.Duration(d) * 24 * time.Hour)
			run, err := idx.StartRun(ctx, st.ID, start)
			if err != nil {
				return nil, err
			}
			for m := range 24 * 60 {
				f := n % len(files)
				rows = append(rows, store.Segment{StreamID: st.ID, RunID: run.ID, Disk: "d1",
					Key:   fmt.Sprintf("%s/%d/%d", name, n, f),
					Start: start.Add(time.Duration(m) * time.Minute), Dur90k: 60 * 90000, WallDur: time.Minute,
					Bytes: segBytes[f], Frames: 1500, KeyFrames: 30, State: store.SegmentClosed, Codec: codec,
					Width: track.Width, Height: track.Height})
				n++
			}
		}
		if err := idx.AddSegments(ctx, rows); err != nil {
			return nil, err
		}
		if c%10 == 9 {
			logf("index: %d cameras, %d rows, %.0f s", c+1, n, time.Since(began).Seconds())
		}
	}
	res.Rows, res.BuildSeconds = n, time.Since(began).Seconds()
	for _, name := range []string{"index.db", "index.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			res.IndexMiB += float64(fi.Size()) / (1 << 20)
		}
	}

	disk := &aliasDisk{Dir: real, files: files}
	// Requests are authenticated (HTTP Basic, checked once then cached)
	// and audited, as a real server's are.
	authSvc, err := auth.New(idx, auth.Options{})
	if err != nil {
		return nil, err
	}
	const benchPassword = "bench-password"
	if _, _, err := authSvc.Bootstrap(ctx, benchPassword); err != nil {
		return nil, err
	}
	auditLog, err := audit.Open(ctx, idx, filepath.Join(dir, "audit.log"), nil)
	if err != nil {
		return nil, err
	}
	defer auditLog.Close()
	srv := &api.Server{Cameras: api.CameraList(cams), Index: idx, Auth: authSvc, Audit: auditLog,
		Playback: &playback.Source{Index: idx, Disks: map[string]blob.Store{"d1": disk},
			Cache: playback.NewIndexCache(1 << 20), Logger: slog.New(slog.DiscardHandler)}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	var filePaths []string // set below: the files behind the throughput range
	mux.HandleFunc("/bench/files", func(w http.ResponseWriter, r *http.Request) {
		// The same bytes as plain files, each sent with sendfile.
		var total int64
		for _, p := range filePaths {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		w.Header().Set("Content-Length", strconv.FormatInt(total, 10))
		for _, p := range filePaths {
			f, err := os.Open(p)
			if err != nil {
				return
			}
			fi, _ := f.Stat()
			io.CopyN(w, f, fi.Size())
			f.Close()
		}
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://admin:" + benchPassword + "@" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	rng := rand.New(rand.NewPCG(o.Seed, 1))
	span := time.Duration(o.Days)*24*time.Hour - o.Range
	type req struct {
		cam      string
		from, to time.Time
	}
	reqs := make([]req, o.Requests)
	for i := range reqs {
		from := day0.Add(time.Duration(rng.Int64N(int64(span/time.Millisecond))) * time.Millisecond)
		reqs[i] = req{cams[rng.IntN(len(cams))].Name, from, from.Add(o.Range)}
	}
	timeAll := func(route string) (Latency, error) {
		var d []time.Duration
		for _, r := range reqs {
			u := fmt.Sprintf("%s/api/cameras/%s/%s?from=%s&to=%s", base, r.cam, route,
				url.QueryEscape(r.from.Format(time.RFC3339Nano)), url.QueryEscape(r.to.Format(time.RFC3339Nano)))
			t, err := firstByte(ctx, client, u)
			if err != nil {
				return Latency{}, err
			}
			d = append(d, t)
		}
		return latencyOf(d), nil
	}
	logf("timing %d random %s exports (cold sample tables)", o.Requests, o.Range)
	if res.TTFBCold, err = timeAll("export.mp4"); err != nil {
		return nil, err
	}
	logf("again (warm)")
	if res.TTFBWarm, err = timeAll("export.mp4"); err != nil {
		return nil, err
	}
	srv.Playback.Cache = playback.NewIndexCache(1 << 20)
	logf("playlists (cold)")
	if res.TTFBPlaylist, err = timeAll("playback.m3u8"); err != nil {
		return nil, err
	}

	// Throughput: one long range of camera 0 against cat of its files.
	from := day0.Add(6 * time.Hour)
	to := from.Add(o.ExportRange)
	f, err := srv.Playback.Export(ctx, cams[0].Name, "main", from, to)
	if err != nil {
		return nil, err
	}
	res.ExportBytes = f.Size()
	st, _ := idx.Stream(ctx, cams[0].Name, "main")
	segs, err := idx.Segments(ctx, st.ID, from, to)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, sg := range segs {
		paths = append(paths, filepath.Join(diskDir, files[aliasIndex(sg.Key, len(files))]))
	}
	filePaths = paths
	u := fmt.Sprintf("%s/api/cameras/%s/export.mp4?from=%s&to=%s", base, cams[0].Name,
		url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(to.Format(time.RFC3339)))
	best := func(fn func() (int64, error)) (float64, error) {
		var top float64
		for range 3 {
			t0 := time.Now()
			n, err := fn()
			if err != nil {
				return 0, err
			}
			top = max(top, float64(n)/(1<<20)/time.Since(t0).Seconds())
		}
		return top, nil
	}
	var catBytes int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			catBytes += fi.Size()
		}
	}
	logf("throughput: %d segments, export %.0f MiB, cat %.0f MiB", len(segs), float64(res.ExportBytes)/(1<<20), float64(catBytes)/(1<<20))
	if res.CatMiB, err = best(func() (int64, error) {
		cmd := exec.CommandContext(ctx, "cat", paths...)
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, err
		}
		defer devnull.Close()
		cmd.Stdout = devnull
		return catBytes, cmd.Run()
	}); err != nil {
		return nil, fmt.Errorf("cat: %w", err)
	}
	if res.ExportHTTPMiB, err = best(func() (int64, error) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return io.Copy(io.Discard, resp.Body)
	}); err != nil {
		return nil, err
	}
	if res.FilesHTTPMiB, err = best(func() (int64, error) {
		resp, err := client.Get(base + "/bench/files")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return io.Copy(io.Discard, resp.Body)
	}); err != nil {
		return nil, err
	}
	if res.ExportCLIMiB, err = best(func() (int64, error) {
		rd := f.Open(ctx)
		defer rd.Close()
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, err
		}
		defer devnull.Close()
		return rd.WriteTo(devnull)
	}); err != nil {
		return nil, err
	}
	return res, nil
}

// firstByte times a GET until the first byte of the response, then
// abandons the body.
func firstByte(ctx context.Context, client *http.Client, u string) (time.Duration, error) {
	var got time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { got = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	return got.Sub(start), nil
}

// writeBenchSegments writes n segment files of 60 s of the simulator's
// 1080p fixture (fragments as the recorder cuts them) and returns their
// keys and sizes.
func writeBenchSegments(ctx context.Context, disk blob.Store, n int) ([]string, []int64, mp4.Track, error) {
	frames, ps, err := sim.Fixture("main.h264")
	if err != nil {
		return nil, nil, mp4.Track{}, err
	}
	track := mp4.Track{Codec: media.CodecH264, Params: ps}
	init, err := mp4.Init(track)
	if err != nil {
		return nil, nil, track, err
	}
	if track.Width == 0 {
		track.Width, track.Height = 1920, 1080
	}
	var keys []string
	var sizes []int64
	for i := range n {
		file := append([]byte(nil), init...)
		var index mp4.SampleIndexWriter
		var samples []mp4.Sample
		var data []byte
		var base uint64
		seq := uint32(0)
		flush := func() {
			if len(samples) > 0 {
				seq++
				off := len(file)
				file = mp4.AppendFragment(file, seq, base, samples, data)
				index.AddFragment(int64(off), len(file)-off-len(data), samples)
				base += uint64(len(samples)) * sim.FixtureFrameDur90k
				samples, data = samples[:0], data[:0]
			}
		}
		for k := range 1500 {
			// Each file starts at another GOP so the files differ.
			f := frames[(k+i*50)%len(frames)]
			if f.Key || len(samples) >= 12 {
				flush()
			}
			m := len(data)
			data = mp4.AppendSampleData(data, f.NALUs)
			samples = append(samples, mp4.Sample{Dur90k: sim.FixtureFrameDur90k, Size: uint32(len(data) - m), Key: f.Key})
		}
		flush()
		file = index.AppendBox(file) // as the recorder closes a segment
		key := fmt.Sprintf("real/%d.mp4", i)
		w, err := disk.Create(ctx, key)
		if err != nil {
			return nil, nil, track, err
		}
		if _, err := w.Write(file); err != nil {
			w.Close()
			return nil, nil, track, err
		}
		if err := w.Close(); err != nil {
			return nil, nil, track, err
		}
		keys, sizes = append(keys, key), append(sizes, int64(len(file)))
	}
	return keys, sizes, track, nil
}

// aliasDisk serves every key "camera/n/f" from real file f: millions of
// synthetic rows over a few real segment files. Read-only.
type aliasDisk struct {
	*local.Dir
	files []string
}

func aliasIndex(key string, n int) int {
	i := strings.LastIndexByte(key, '/')
	f, _ := strconv.Atoi(key[i+1:])
	return f % n
}

func (a *aliasDisk) Open(ctx context.Context, key string) (blob.Reader, error) {
	return a.Dir.Open(ctx, a.files[aliasIndex(key, len(a.files))])
}

func (a *aliasDisk) Stat(ctx context.Context, key string) (int64, error) {
	return a.Dir.Stat(ctx, a.files[aliasIndex(key, len(a.files))])
}

func (a *aliasDisk) List(ctx context.Context, prefix string) iter.Seq2[blob.Object, error] {
	return func(yield func(blob.Object, error) bool) { yield(blob.Object{}, errors.New("aliasDisk: no listing")) }
}
