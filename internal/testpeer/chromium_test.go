package testpeer

import (
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Generous: a busy 2-core machine can take many seconds to start a
// browser tab and the first frame.
const playTimeout = 60 * time.Second

// makeVideos encodes a 10 s, 640x360, 25 fps H.264 test picture (a key
// frame every 2 s) with ffmpeg into dir and remuxes it, without
// re-encoding, into the layouts the tests serve:
//
//	video.mp4             progressive MP4, moov first
//	short.mp4             its first 2 s
//	hls/index.m3u8        fMP4 HLS VOD: init.mp4 and one file per 2 s segment
//	single/index.m3u8     fMP4 HLS VOD in one file: EXT-X-MAP and segments as byte ranges
//	missing/index.m3u8    the first as a playlist whose segments are all missing
func makeVideos(t *testing.T, dir string) {
	t.Helper()
	ffmpeg := FFmpeg(t)
	run := func(args ...string) {
		t.Helper()
		args = append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
		if out, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, sub := range []string{"hls", "single", "missing"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mp4 := filepath.Join(dir, "video.mp4")
	run("-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "10",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "50", "-movflags", "+faststart", mp4)
	run("-i", mp4, "-c", "copy", "-t", "2", "-movflags", "+faststart", filepath.Join(dir, "short.mp4"))
	hls := []string{"-f", "hls", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", "-hls_time", "2"}
	run(append(append([]string{"-i", mp4, "-c", "copy"}, hls...), filepath.Join(dir, "hls", "index.m3u8"))...)
	run(append(append([]string{"-i", mp4, "-c", "copy"}, hls...),
		"-hls_flags", "single_file", filepath.Join(dir, "single", "index.m3u8"))...)

	single, err := os.ReadFile(filepath.Join(dir, "single", "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(single), "#EXT-X-BYTERANGE:") || !strings.Contains(string(single), `BYTERANGE="`) {
		t.Fatalf("single-file playlist has no byte ranges:\n%s", single)
	}
	index, err := os.ReadFile(filepath.Join(dir, "hls", "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "missing", "index.m3u8"), index, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serveDir serves dir on a new local server with a random port and returns
// its URL.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkPlayed checks what PlayVideo returned for one of makeVideos' videos
// asked to advance by 1 s.
func checkPlayed(t *testing.T, first, last VideoState, err error, took time.Duration) {
	t.Helper()
	t.Logf("took %v; first %+v; last %+v", took.Round(time.Millisecond), first, last)
	if err != nil {
		t.Fatal(err)
	}
	if first.VideoWidth != 640 || first.VideoHeight != 360 {
		t.Errorf("video size %dx%d, want 640x360", first.VideoWidth, first.VideoHeight)
	}
	if d := last.CurrentTime - first.CurrentTime; d < 1 {
		t.Errorf("currentTime advanced %.3f s, want >= 1", d)
	}
	// 25 fps: a second of playback decodes about 25 frames.
	if last.Frames < 20 {
		t.Errorf("%d frames decoded, want >= 20", last.Frames)
	}
	if last.Paused || last.Error != "" {
		t.Errorf("last state paused=%v error=%q, want playing without error", last.Paused, last.Error)
	}
}

// TestChromiumPlayVideo plays makeVideos' videos in one browser: a
// progressive MP4, and fMP4 HLS with Chromium's built-in HLS player, as one
// file per segment and as one file with byte ranges (which Chromium reads
// only from the page's origin; PlayVideo's proxy makes it so). Then it shows
// that PlayVideo reports videos that do not play.
func TestChromiumPlayVideo(t *testing.T) {
	ctx := Browser(t)
	dir := t.TempDir()
	makeVideos(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "junk.mp4"), []byte(strings.Repeat("not a video\n", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	video, err := os.ReadFile(filepath.Join(dir, "video.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	// The moov box comes first, so the first 2 KiB hold only part of it.
	if err := os.WriteFile(filepath.Join(dir, "cut.mp4"), video[:2048], 0o644); err != nil {
		t.Fatal(err)
	}
	base := serveDir(t, dir)

	hlsType, err := EvalPage[string](t, ctx, "about:blank",
		`document.createElement("video").canPlayType("application/vnd.apple.mpegurl") || "(empty)"`, 10*time.Second)
	t.Logf("canPlayType(application/vnd.apple.mpegurl) = %q, err %v", hlsType, err)

	for _, tc := range []struct{ name, path, kind string }{
		{"mp4", "/video.mp4", "mp4"},
		{"hls segment files", "/hls/index.m3u8", "hls"},
		{"hls byte ranges", "/single/index.m3u8", "hls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			first, last, err := PlayVideo(t, ctx, base+tc.path, tc.kind, time.Second, playTimeout)
			checkPlayed(t, first, last, err, time.Since(start))
		})
	}

	for _, tc := range []struct {
		name, path, kind string
		advance          time.Duration
		want             string // in the error
	}{
		{"junk mp4", "/junk.mp4", "mp4", time.Second, "MEDIA_ERR_SRC_NOT_SUPPORTED"},
		{"cut moov", "/cut.mp4", "mp4", time.Second, "MEDIA_ERR_"},
		{"missing mp4", "/nothere.mp4", "mp4", time.Second, "MEDIA_ERR_SRC_NOT_SUPPORTED"},
		{"hls missing segments", "/missing/index.m3u8", "hls", time.Second, "MEDIA_ERR_SRC_NOT_SUPPORTED"},
		{"ends too soon", "/short.mp4", "mp4", 5 * time.Second, "ended after advancing"},
	} {
		t.Run("fails/"+tc.name, func(t *testing.T) {
			start := time.Now()
			first, last, err := PlayVideo(t, ctx, base+tc.path, tc.kind, tc.advance, playTimeout)
			t.Logf("took %v; first %+v; last %+v; err %v", time.Since(start).Round(time.Millisecond), first, last, err)
			if err == nil {
				t.Fatalf("PlayVideo succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}

	t.Run("fails/timeout", func(t *testing.T) {
		// A server that answers a video request with headers only, and
		// then nothing until the test ends.
		hang := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "video/mp4")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(hang)
		start := time.Now()
		_, last, err := PlayVideo(t, ctx, srv.URL+"/stalls.mp4", "mp4", time.Second, 3*time.Second)
		t.Logf("took %v; last %+v; err %v", time.Since(start).Round(time.Millisecond), last, err)
		if err == nil || !strings.Contains(err.Error(), "no frame shown within 3s") {
			t.Errorf("error %v, want one saying no frame was shown within 3s", err)
		}
	})
}

func TestChromiumEvalPageAndScreenshot(t *testing.T) {
	ctx := Browser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stall": // a video that never sends a byte
			<-r.Context().Done()
			return
		case "/video":
			fmt.Fprint(w, `<!doctype html><video src="/stall"></video><script>window.started = true</script>`)
			return
		}
		fmt.Fprint(w, `<!doctype html><title>t</title><body style="margin:0;background:rgb(255,0,0)">
<script>
console.log("hello from", "the page", 42);
setTimeout(() => { window.ready = "yes"; }, 300);
setTimeout(() => { throw new Error("boom on purpose"); }, 0);
</script>`)
	}))
	// Closed while or after the browser closes, which ends the request to /stall.
	t.Cleanup(srv.Close)

	got, err := EvalPage[string](t, ctx, srv.URL, `window.ready`, 30*time.Second)
	if err != nil || got != "yes" {
		t.Fatalf("EvalPage = %q, %v; want yes", got, err)
	}
	raw, err := EvalPage[[]byte](t, ctx, srv.URL, `window.ready && {ready: window.ready}`, 30*time.Second)
	if err != nil || string(raw) != `{"ready":"yes"}` {
		t.Fatalf("EvalPage[[]byte] = %s, %v; want {\"ready\":\"yes\"}", raw, err)
	}
	if _, err := EvalPage[chromedp.Void](t, ctx, srv.URL, `window.ready`, 30*time.Second); err != nil {
		t.Fatalf("EvalPage[chromedp.Void]: %v", err)
	}

	path := filepath.Join(t.TempDir(), "shot.png")
	Screenshot(t, ctx, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is no PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != BrowserWidth || b.Dy() != BrowserHeight {
		t.Errorf("screenshot %dx%d, want %dx%d", b.Dx(), b.Dy(), BrowserWidth, BrowserHeight)
	}
	if r, g, b, _ := img.At(BrowserWidth/2, BrowserHeight/2).RGBA(); r>>8 < 250 || g>>8 > 5 || b>>8 > 5 {
		t.Errorf("screenshot centre is rgb(%d,%d,%d), want the page's red", r>>8, g>>8, b>>8)
	}

	// The console message and the exception were collected for the
	// failure log.
	blog := ctx.Value(browserLogKey{}).(*browserLog)
	blog.mu.Lock()
	msgs := strings.Join(blog.msgs, "\n")
	blog.mu.Unlock()
	for _, want := range []string{"console.log: hello from the page 42", "uncaught exception", "boom on purpose"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("browser log lacks %q:\n%s", want, msgs)
		}
	}

	t.Run("not true in time", func(t *testing.T) {
		_, err := EvalPage[bool](t, ctx, srv.URL, `window.never === true`, 2*time.Second)
		if err == nil {
			t.Fatal("EvalPage succeeded, want a timeout")
		}
		t.Logf("err: %v", err)
	})
	t.Run("load event held back", func(t *testing.T) {
		// The <video> delays the page's load event until it has data,
		// which never comes; EvalPage must not wait for it.
		ok, err := EvalPage[bool](t, ctx, srv.URL+"/video", `window.started`, 20*time.Second)
		if err != nil || !ok {
			t.Fatalf("EvalPage = %v, %v; want true", ok, err)
		}
	})
	t.Run("throws", func(t *testing.T) {
		_, err := EvalPage[bool](t, ctx, srv.URL, `nosuchvariable.x`, 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "nosuchvariable") {
			t.Fatalf("EvalPage error %v, want a ReferenceError about nosuchvariable", err)
		}
	})
}

// TestBrowserCleanup checks that the Cleanup of Browser leaves no process
// of the browser and no user-data directory behind, and that a server
// closed in a later Cleanup does not wait for the browser to let go of a
// request.
func TestBrowserCleanup(t *testing.T) {
	if readProcs() == nil {
		t.Skip("no /proc to inspect processes")
	}
	var tree map[int]procInfo
	var dir string
	t.Run("browser", func(t *testing.T) {
		ctx := Browser(t)
		hanging := make(chan struct{}, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/hang" {
				fmt.Fprint(w, `<!doctype html><p>hi</p><script>fetch("/hang")</script>`)
				return
			}
			hanging <- struct{}{}
			<-r.Context().Done() // until the browser is gone
		}))
		// Runs before Browser's Cleanup; Close waits for the request to /hang.
		t.Cleanup(srv.Close)
		if _, err := EvalPage[bool](t, ctx, srv.URL, `document.readyState === "complete"`, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case <-hanging:
		case <-time.After(30 * time.Second):
			t.Fatal("the page's request to /hang did not arrive")
		}
		pid := chromedp.FromContext(ctx).Browser.Process().Pid
		tree = descendants(pid)
		for _, arg := range strings.Split(tree[pid].cmdline, "\x00") {
			if d, ok := strings.CutPrefix(arg, "--user-data-dir="); ok {
				dir = d
			}
		}
		// The browser, a zygote or two, a renderer, a network service...
		t.Logf("browser pid %d has %d processes, user-data dir %s", pid, len(tree), dir)
		if len(tree) < 3 || dir == "" {
			t.Fatalf("process tree %v, user-data dir %q: want a browser with children and a user-data dir", tree, dir)
		}
	})
	now := readProcs()
	for pid, p := range tree {
		if q, ok := now[pid]; ok && q.start == p.start && !q.zombie {
			args := strings.Split(p.cmdline, "\x00")
			t.Errorf("process %d (%s) still runs after the Cleanup", pid, strings.Join(args[:min(len(args), 2)], " "))
		}
	}
	// The profile and Chromium's TMPDIR are in one directory.
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("directory of the user-data dir %s: %v, want it removed", dir, err)
	}
}
