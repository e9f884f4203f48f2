package testpeer

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumEnv names the environment variable that, when set, names the
// Chromium binary to use (a path, or a name looked up on PATH) instead of
// the first of chromium, chromium-browser and google-chrome on PATH.
const ChromiumEnv = "CUSTOS_CHROMIUM"

// Timeouts of the browser's life. They are generous: Chromium starts in
// 1–3 s on an idle 2-core machine, and much slower while other packages'
// tests keep both cores busy.
const (
	browserStartTimeout = 90 * time.Second
	browserCloseTimeout = 20 * time.Second
	// leftoverTimeout is how long Chromium's child processes get to exit
	// by themselves after the browser process is gone, before they are
	// killed and reported as leaked.
	leftoverTimeout = 10 * time.Second
	// BrowserWidth and BrowserHeight are the size of the viewport of
	// Browser's tab, and so of Screenshot's images of it.
	BrowserWidth, BrowserHeight = 1280, 720
)

// Chromium returns the path of the Chromium binary: $CUSTOS_CHROMIUM when
// set, else the first of chromium, chromium-browser and google-chrome found
// on PATH. It skips/fails the test through Need when there is none. It does
// not start the browser.
func Chromium(t testing.TB) string {
	t.Helper()
	if name := os.Getenv(ChromiumEnv); name != "" {
		p, err := exec.LookPath(name)
		Need(t, "chromium", err == nil, fmt.Sprintf("%s=%s: %v", ChromiumEnv, name, err))
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Need(t, "chromium", false, "none of chromium, chromium-browser, google-chrome on PATH and $"+ChromiumEnv+
		" unset (Debian package chromium)")
	return ""
}

// Browser starts a headless Chromium for the test and returns a chromedp
// context whose tab is open on about:blank. Run actions on it with
// chromedp.Do and chromedp.Run; open more tabs with chromedp.NewContext(ctx).
// Do not derive the context given to the first Run of a new tab from a
// context with a timeout: chromedp closes the tab when that context ends.
//
// The browser runs with its own temporary user-data directory and TMPDIR,
// headless, without sandbox (tests run as root), without GPU and /dev/shm,
// with background networking off, muted, and with autoplay allowed without
// a user gesture. The viewport of its tab is BrowserWidth x BrowserHeight
// (emulated: headless Chromium's window keeps 143 px of it for a browser UI
// it does not draw, and so would a new tab; use chromedp.EmulateViewport on
// a new tab to get the same). It blocks until the browser runs (at most
// 90 s) and fails the test when it does not start.
//
// The browser is closed (gracefully, then by force) when the test's
// function returns, before and while its Cleanups run, so do not use it in
// a Cleanup. Browser's own Cleanup waits for every process of the browser
// to exit, kills and reports as a test error any that outlive it, and
// removes the user-data directory and TMPDIR. When the test has failed by
// then, it logs the console messages, uncaught exceptions and browser log
// entries of the first tab and of the tabs PlayVideo opens, and the last
// lines of Chromium's own output.
//
// Like every function of this package, Browser must be called from the
// test's goroutine.
func Browser(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	// root holds the profile and Chromium's TMPDIR, where it puts its
	// shared memory files (--disable-dev-shm-usage) and its singleton
	// socket, which a killed browser leaves behind.
	root, err := os.MkdirTemp("", "custos-chromium-")
	if err != nil {
		t.Fatalf("chromium user-data directory: %v", err)
	}
	dir, tmp := filepath.Join(root, "profile"), filepath.Join(root, "tmp")
	for _, d := range []string{dir, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(root)
			t.Fatalf("chromium user-data directory: %v", err)
		}
	}
	blog := &browserLog{}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.Headless, // also hide-scrollbars and mute-audio
		chromedp.NoSandbox,
		chromedp.WindowSize(BrowserWidth, BrowserHeight),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		// Warnings and errors of Chromium's media stack (e.g. why its HLS
		// demuxer gave up) go to its output, which is kept for failures.
		chromedp.Flag("enable-logging", "stderr"),
		chromedp.Flag("log-level", "1"),
		chromedp.CombinedOutput(&blog.out),
		chromedp.Env("TMPDIR="+tmp),
	)
	parent, stop := context.WithCancel(context.Background())
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(blog.listen("tab")))

	// The browser is closed as soon as the test's function has returned
	// (t.Context is done before any Cleanup runs), concurrently with the
	// Cleanups: a Cleanup that closes an httptest.Server the browser still
	// holds a request to would otherwise wait for the browser forever.
	var procs map[int]procInfo // the browser's process tree, seen last while it ran
	closeBrowser := func() {
		if b := chromedp.FromContext(ctx).Browser; b != nil && b.Process() != nil {
			procs = descendants(b.Process().Pid)
		}
		cctx, cancel := context.WithTimeout(ctx, browserCloseTimeout)
		if err := chromedp.Cancel(cctx); err != nil {
			blog.add("closing the browser: %v", err)
		}
		cancel()
		cancelCtx()
		cancelAlloc() // waits until the browser process has exited
		stop()
	}
	closed := make(chan struct{})
	dontClose := context.AfterFunc(t.Context(), func() {
		defer close(closed)
		closeBrowser()
	})
	t.Cleanup(func() {
		if dontClose() {
			closeBrowser() // t.Context was not done: cannot happen, but be safe
		} else {
			<-closed
		}
		if leaked := reapLeftovers(procs, dir, leftoverTimeout); len(leaked) > 0 {
			t.Errorf("chromium processes outlived the browser and were killed: %s", strings.Join(leaked, "; "))
		}
		if err := removeAllRetry(root, 5*time.Second); err != nil {
			t.Errorf("remove chromium user-data directory: %v", err)
		}
		if t.Failed() {
			blog.logTo(t)
		}
	})

	// The first Run starts the browser and ties its life to the context it
	// gets, so that context has no deadline; a timer cancels a start that
	// hangs.
	timer := time.AfterFunc(browserStartTimeout, stop)
	err = chromedp.Do(ctx, chromedp.EmulateViewport(BrowserWidth, BrowserHeight))
	if !timer.Stop() {
		err = fmt.Errorf("not started within %v: %w", browserStartTimeout, err)
	}
	if err != nil {
		t.Fatalf("start %s: %v\n%s", exe, err, blog.out.String())
	}
	return context.WithValue(ctx, browserLogKey{}, blog)
}

// VideoState is what a <video> element reports about its playback, read in
// the page by PlayVideo.
type VideoState struct {
	// VideoWidth and VideoHeight are the intrinsic size, 0 until the
	// metadata is known.
	VideoWidth  int `json:"videoWidth"`
	VideoHeight int `json:"videoHeight"`
	// CurrentTime is the playback position in seconds.
	CurrentTime float64 `json:"currentTime"`
	// ReadyState is HTMLMediaElement.readyState, from 0 (HAVE_NOTHING) to
	// 4 (HAVE_ENOUGH_DATA); 2 (HAVE_CURRENT_DATA) and up means a frame is
	// shown.
	ReadyState int  `json:"readyState"`
	Paused     bool `json:"paused"`
	Ended      bool `json:"ended"`
	// Frames is getVideoPlaybackQuality().totalVideoFrames: the number of
	// frames decoded so far.
	Frames int `json:"frames"`
	// Error is empty while all is well; else the media error, e.g.
	// "MEDIA_ERR_SRC_NOT_SUPPORTED (4): PipelineStatus::DEMUXER_ERROR_COULD_NOT_PARSE",
	// a refused play() ("play(): NotAllowedError: ...") or a page that
	// cannot start (no native HLS player).
	Error string `json:"error"`
	// Buffered lists the buffered time ranges in seconds, "0.000-10.000 12.000-14.000".
	Buffered string `json:"buffered"`
}

// videoPagePath is where PlayVideo's server serves its page; every other
// path of an "hls" server goes to the media's origin.
const videoPagePath = "/.custos-testpeer/video.html"

// pollInterval is how often PlayVideo reads the video's state.
const pollInterval = 100 * time.Millisecond

//go:embed videopage.html
var videoPageHTML string

var videoPage = template.Must(template.New("videopage.html").Parse(videoPageHTML))

// PlayVideo makes Chromium play src, an absolute http URL, in a muted,
// autoplaying <video> of a new tab of ctx (a context from Browser), and
// waits until the video shows a frame (videoWidth > 0, readyState >=
// HAVE_CURRENT_DATA) and its currentTime has then advanced by at least
// advance, or until a media error, the end of the video, or timeout.
// It blocks until then and closes the tab and its server before it returns.
//
// kind is "mp4" (progressive MP4 or anything else a plain <video src>
// plays) or "hls" (an HLS playlist, played by Chromium's built-in HLS
// player: Chromium 156 has one; an older Chromium without it gives an
// error). The page comes from PlayVideo's own server on a random port. For
// "mp4" the video loads src across origins, as a <video> may. For "hls" that
// server is a reverse proxy of src's origin (scheme and host) and the video
// loads src's path from it, because Chromium's HLS player refuses byte-range
// reads of cross-origin media ("Range requests are not allowed for
// cross-origin content"), which #EXT-X-BYTERANGE playlists need; so relative
// and absolute-path URLs in the playlist work, absolute URLs to another
// origin work only without byte ranges. The proxy uses Go's default
// transport, so an https src needs a certificate the system trusts.
//
// first is the state when a frame was first seen (zero if none was), last
// the last state read (zero if the page never ran its script). err is nil when the video advanced
// as asked; otherwise it says why not and includes last. A kind other than
// "mp4" and "hls" or a src that is not an absolute URL fails the test.
func PlayVideo(t testing.TB, ctx context.Context, src, kind string, advance, timeout time.Duration) (first, last VideoState, err error) {
	t.Helper()
	u, perr := url.Parse(src)
	if perr != nil || !u.IsAbs() || u.Host == "" {
		t.Fatalf("PlayVideo: src %q is not an absolute URL", redact(src))
	}
	blog, _ := ctx.Value(browserLogKey{}).(*browserLog)
	what := fmt.Sprintf("play %s (%s)", redact(src), kind)

	mux := http.NewServeMux()
	pageSrc := src
	switch kind {
	case "mp4":
	case "hls":
		origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
		mux.Handle("/", &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(origin) },
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if blog != nil {
					blog.add("PlayVideo proxy %s: %v", r.URL, err)
				}
				w.WriteHeader(http.StatusBadGateway)
			},
		})
		pageSrc = u.RequestURI()
	default:
		t.Fatalf("PlayVideo: kind %q, want mp4 or hls", kind)
	}
	var pageBuf bytes.Buffer
	if err := videoPage.Execute(&pageBuf, struct{ Src, Kind string }{pageSrc, kind}); err != nil {
		t.Fatalf("PlayVideo: page template: %v", err)
	}
	mux.HandleFunc("GET "+videoPagePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(pageBuf.Bytes())
	})
	srv := httptest.NewServer(mux)
	defer func() {
		// The tab is closed by now (deferred later, run earlier), but a
		// proxied request can still be streaming: cut it.
		srv.CloseClientConnections()
		srv.Close()
	}()

	var tabOpts []chromedp.ContextOption
	if blog != nil {
		tabOpts = append(tabOpts, chromedp.WithListener(blog.listen("PlayVideo "+kind)))
	}
	tab, closeTab := chromedp.NewContext(ctx, tabOpts...)
	defer closeTab()
	// Open the tab with a context without deadline; see Browser.
	if err := chromedp.Do(tab); err != nil {
		return first, last, fmt.Errorf("%s: open a tab: %w", what, err)
	}
	dctx, cancel := context.WithTimeout(tab, timeout)
	defer cancel()

	// Navigate without waiting for the load event: a <video> delays it
	// until it has a frame or an error, and the loop below reports either
	// better. Until the page's script has run, custosState is undefined
	// and the state null.
	nav, err := chromedp.Call(dctx, page.Navigate, page.NavigateParams{URL: srv.URL + videoPagePath})
	if err == nil && nav.ErrorText != "" {
		err = errors.New(nav.ErrorText)
	}
	if err != nil && dctx.Err() == nil {
		return first, last, fmt.Errorf("%s: load the page: %w", what, err)
	} // else timed out: the loop does not run, and the error says so
	const stateJS = `typeof custosState === "function" ? custosState() : null`
	seen := false
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for dctx.Err() == nil {
		stp, err := chromedp.Run(dctx, chromedp.Evaluate[*VideoState](stateJS))
		if err != nil {
			if dctx.Err() != nil {
				break // timed out
			}
			return first, last, fmt.Errorf("%s: read the video's state: %w", what, err)
		}
		if stp == nil { // the page has not run its script yet
			select {
			case <-dctx.Done():
			case <-tick.C:
			}
			continue
		}
		st := *stp
		last = st
		if st.Error != "" {
			return first, last, fmt.Errorf("%s: %s (state %+v)", what, st.Error, st)
		}
		if !seen && st.VideoWidth > 0 && st.ReadyState >= 2 {
			first, seen = st, true
		}
		if seen && st.CurrentTime-first.CurrentTime >= advance.Seconds() {
			return first, last, nil
		}
		if st.Ended {
			return first, last, fmt.Errorf("%s: ended after advancing %.3f s, want %v (state %+v)",
				what, st.CurrentTime-first.CurrentTime, advance, st)
		}
		select {
		case <-dctx.Done():
		case <-tick.C:
		}
	}
	if !seen {
		return first, last, fmt.Errorf("%s: no frame shown within %v (last state %+v)", what, timeout, last)
	}
	return first, last, fmt.Errorf("%s: advanced %.3f s within %v, want %v (first state %+v, last %+v)",
		what, last.CurrentTime-first.CurrentTime, timeout, advance, first, last)
}

// EvalPage navigates the tab of ctx (a context from Browser, or a tab made
// from one with chromedp.NewContext) to pageURL, then evaluates the
// JavaScript expression expr every 100 ms until it yields a truthy value,
// and returns that value decoded into T as chromedp.Evaluate decodes (use
// chromedp.Void to ignore it). It waits for the new document, not for its
// load event (which a <video> without data holds back), so expr decides when
// the page is ready. It blocks at most timeout in all. It returns an error
// when the navigation fails, expr throws, or expr is not truthy in time.
// The tab stays on the page, for more actions or a Screenshot.
func EvalPage[T any](t testing.TB, ctx context.Context, pageURL, expr string, timeout time.Duration) (T, error) {
	t.Helper()
	var zero T
	what := fmt.Sprintf("EvalPage %s: %s", redact(pageURL), expr)
	// Open the tab, if new, with a context without deadline; see Browser.
	if err := chromedp.Do(ctx); err != nil {
		return zero, fmt.Errorf("%s: open the tab: %w", what, err)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Page.navigate returns when the new document is committed, so what
	// is evaluated next runs in it.
	nav, err := chromedp.Call(dctx, page.Navigate, page.NavigateParams{URL: pageURL})
	if err == nil && nav.ErrorText != "" {
		err = errors.New(nav.ErrorText)
	}
	if err != nil {
		return zero, fmt.Errorf("%s: navigate: %w", what, err)
	}
	js := "(() => { const v = (" + expr + "); return v ? {ok: true, v: v} : {ok: false}; })()"
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		r, err := chromedp.Run(dctx, chromedp.Evaluate[truthy](js))
		if err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		if r.OK {
			var v T
			switch p := any(&v).(type) {
			case *chromedp.Void:
			case *[]byte:
				*p = r.V
			default:
				if err := json.Unmarshal(r.V, &v); err != nil {
					return zero, fmt.Errorf("%s: decode %s: %w", what, r.V, err)
				}
			}
			return v, nil
		}
		select {
		case <-dctx.Done():
			return zero, fmt.Errorf("%s: not true within %v: %w", what, timeout, dctx.Err())
		case <-tick.C:
		}
	}
}

// truthy is what EvalPage's wrapper of an expression returns.
type truthy struct {
	OK bool            `json:"ok"`
	V  json.RawMessage `json:"v"`
}

// Screenshot saves a PNG image of the viewport of the tab of ctx at path
// (BrowserWidth x BrowserHeight pixels for the tab of Browser). It blocks
// until the file is written (at most 30 s for the capture) and fails the
// test on any error.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("screenshot %s: open the tab: %v", path, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	capture := func(ctx context.Context, tgt *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tgt, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng})
		return r.Data, err
	}
	png, err := chromedp.Run(dctx, capture)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
}

// browserLogKey keys the *browserLog of a context made by Browser.
type browserLogKey struct{}

// browserLog collects what a test's browser said: console messages,
// uncaught exceptions and browser log entries of its tabs, and, in out,
// the last lines of Chromium's own output. It is safe for concurrent use.
type browserLog struct {
	mu   sync.Mutex
	msgs []string
	out  tailWriter
}

// maxBrowserLog bounds the messages kept; later ones are counted only.
const maxBrowserLog = 500

func (l *browserLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.msgs) == maxBrowserLog {
		l.msgs = append(l.msgs, "... more messages dropped")
	}
	if len(l.msgs) <= maxBrowserLog {
		l.msgs = append(l.msgs, fmt.Sprintf(format, args...))
	}
}

// listen returns a chromedp listener that adds the console and log events
// of one tab, labelled tab. It runs on chromedp's goroutine of that tab.
func (l *browserLog) listen(tab string) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			l.add("%s: console.%s: %s", tab, ev.Type, consoleArgs(ev.Args))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			l.add("%s: uncaught exception at %s:%d:%d: %s", tab, d.URL, d.LineNumber+1, d.ColumnNumber+1, text)
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			l.add("%s: log %s %s: %s %s", tab, e.Source, e.Level, e.Text, e.URL)
		}
	}
}

// logTo logs everything collected to t.
func (l *browserLog) logTo(t testing.TB) {
	l.mu.Lock()
	msgs := slices.Clone(l.msgs)
	l.mu.Unlock()
	if len(msgs) == 0 {
		t.Logf("chromium: no console messages, exceptions or log entries")
	} else {
		t.Logf("chromium console, exceptions and log:\n\t%s", strings.Join(msgs, "\n\t"))
	}
	if out := l.out.String(); out != "" {
		t.Logf("chromium output (last lines):\n%s", out)
	}
}

// consoleArgs formats the arguments of a console call: strings as they are,
// other values as JSON or as the description Chromium gives.
func consoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case a.UnserializableValue != "":
			parts = append(parts, string(a.UnserializableValue))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// isChromiumNoise reports whether a line of Chromium's output is one of the
// complaints it makes on every start in a container without D-Bus.
func isChromiumNoise(line string) bool {
	return strings.Contains(line, "dbus") || strings.Contains(line, "D-Bus")
}

// tailWriter keeps the last tailLines lines written to it, leaving out
// isChromiumNoise lines. It is safe for concurrent use.
type tailWriter struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
}

const tailLines = 100

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if line := string(w.partial[:i]); !isChromiumNoise(line) {
			w.lines = append(w.lines, line)
		}
		w.partial = w.partial[i+1:]
	}
	if len(w.lines) > tailLines {
		w.lines = slices.Clone(w.lines[len(w.lines)-tailLines:])
	}
	return len(p), nil
}

// String returns the kept lines, and the unfinished last one.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.lines, "\n")
	if len(w.partial) > 0 {
		s += "\n" + string(w.partial)
	}
	return s
}

// procInfo identifies a process: its start time tells it from a later
// process that got the same pid.
type procInfo struct {
	ppid    int
	start   string // field 22 of /proc/PID/stat, in clock ticks since boot
	cmdline string // NUL-separated arguments
	zombie  bool
}

// readProcs reads every process from /proc. It returns nil where there is
// no /proc (not Linux), so that the checks built on it do nothing there.
func readProcs() map[int]procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	procs := make(map[int]procInfo)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// The command name, field 2, is in parentheses and may hold
		// spaces; the fields after it are plain.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		procs[pid] = procInfo{ppid: ppid, start: f[19], cmdline: string(cmdline), zombie: f[0] == "Z"}
	}
	return procs
}

// descendants returns the process root and all its descendants.
func descendants(root int) map[int]procInfo {
	all := readProcs()
	tree := make(map[int]procInfo)
	if p, ok := all[root]; ok {
		tree[root] = p
	}
	for grew := true; grew; {
		grew = false
		for pid, p := range all {
			if _, in := tree[pid]; !in {
				if _, parentIn := tree[p.ppid]; parentIn {
					tree[pid] = p
					grew = true
				}
			}
		}
	}
	return tree
}

// reapLeftovers waits up to timeout for the processes of a closed browser
// to exit: those of procs (its process tree, seen while it ran) that still
// run with the same start time, and any process with --user-data-dir=dir
// on its command line. Then it kills those left with SIGKILL and returns a
// description of each one it had to kill.
func reapLeftovers(procs map[int]procInfo, dir string, timeout time.Duration) []string {
	flag := "--user-data-dir=" + dir
	alive := func() map[int]procInfo {
		left := make(map[int]procInfo)
		for pid, p := range readProcs() {
			if p.zombie || pid == os.Getpid() {
				continue
			}
			if old, ok := procs[pid]; ok && old.start == p.start {
				left[pid] = p
			} else if slices.Contains(strings.Split(p.cmdline, "\x00"), flag) {
				left[pid] = p
			}
		}
		return left
	}
	deadline := time.Now().Add(timeout)
	left := alive()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = alive()
	}
	var leaked []string
	for pid, p := range left {
		syscall.Kill(pid, syscall.SIGKILL)
		args := strings.Split(strings.TrimRight(p.cmdline, "\x00"), "\x00")
		if len(args) > 3 {
			args = append(args[:3], "...")
		}
		leaked = append(leaked, fmt.Sprintf("pid %d %s", pid, strings.Join(args, " ")))
	}
	return leaked
}

// removeAllRetry removes dir like os.RemoveAll, trying again for up to
// limit while Chromium's last processes may still write into it.
func removeAllRetry(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
