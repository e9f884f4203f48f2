package live

import (
	"context"
	_ "embed"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/testpeer"
)

//go:embed testdata/live.html
var livePage []byte

// pageState is what testdata/live.html's custosState returns.
type pageState struct {
	State            string  `json:"state"`
	Error            string  `json:"error"`
	Codec            string  `json:"codec"`
	VideoWidth       int     `json:"videoWidth"`
	VideoHeight      int     `json:"videoHeight"`
	CurrentTime      float64 `json:"currentTime"`
	ReadyState       int     `json:"readyState"`
	Paused           bool    `json:"paused"`
	Advanced         float64 `json:"advanced"`
	Frames           int     `json:"frames"`
	FramesSinceFirst int     `json:"framesSinceFirst"`
	Dropped          int     `json:"dropped"`
	FirstFrameMs     float64 `json:"firstFrameMs"`
	Latency          float64 `json:"latency"`
	Jumps            int     `json:"jumps"`
	Reconnects       int     `json:"reconnects"`
	Messages         int     `json:"messages"`
	Buffered         string  `json:"buffered"`
}

// liveServer serves the test page, the player and ServeMSE of h.
func liveServer(t *testing.T, h *Hub) string {
	t.Helper()
	url, _ := liveServerCut(t, h)
	return url
}

// liveServerCut is liveServer that also returns a function that ends the
// WebSocket connections open at the time (their requests' contexts end,
// as on a server shutdown).
func liveServerCut(t *testing.T, h *Hub) (string, func()) {
	t.Helper()
	var mu sync.Mutex
	var cancels []context.CancelFunc
	cut := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cancels {
			c()
		}
		cancels = nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(livePage)
	})
	mux.HandleFunc("GET /player.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(PlayerJS)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		mu.Lock()
		cancels = append(cancels, cancel)
		mu.Unlock()
		ServeMSE(w, r.WithContext(ctx), h, nil)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		cut()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/", cut
}

// realTime publishes frames(i) every 40 ms (25 fps) until stop is called.
func realTime(h *Hub, frame func(i int) *ingest.Frame) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			h.Publish(frame(i))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// playUntil opens the page in a new tab of the browser and waits until
// the video has shown a frame of the given width and played on for at
// least a second (25 decoded frames), or the page reports an error.
func playUntil(t *testing.T, browser context.Context, url string, width int) (pageState, error) {
	t.Helper()
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	expr := `(() => {
		if (typeof custosState !== "function") return null;
		const s = custosState();
		if (s.error) return s;
		return s.videoWidth === ` + strconv.Itoa(width) + ` && s.advanced >= 1 && s.framesSinceFirst >= 25 ? s : null;
	})()`
	return testpeer.EvalPage[pageState](t, tab, url, expr, 120*time.Second)
}

// TestChromiumPlaysLive plays live streams through ServeMSE and the
// package's player in headless Chromium, frames published in real time:
// the H.264 main clip (1920x1080), a stream with B-frames, and an H.265
// stream, which Debian's Chromium cannot decode and must say so.
func TestChromiumPlaysLive(t *testing.T) {
	browser := testpeer.Browser(t)

	t.Run("h264", func(t *testing.T) {
		fx := loadFixture(t, "main.h264")
		h := NewHub(HubOptions{Camera: "cam", Stream: "main"})
		url := liveServer(t, h)
		stop := realTime(h, func(i int) *ingest.Frame { return fx.frame(i, 0) })
		defer stop()
		// Join in the middle of the second GOP, as a viewer usually does:
		// the media timeline then starts at 2 s, and the player must seek.
		time.Sleep(2500 * time.Millisecond)
		start := time.Now()
		st, err := playUntil(t, browser, url, 1920)
		t.Logf("after %v: %+v", time.Since(start).Round(time.Millisecond), st)
		if err != nil {
			t.Fatal(err)
		}
		if st.Error != "" {
			t.Fatalf("page error: %s", st.Error)
		}
		if st.VideoHeight != 1080 || st.Codec != "avc1.640028" {
			t.Errorf("video %dx%d codec %s", st.VideoWidth, st.VideoHeight, st.Codec)
		}
		t.Logf("page load to first frame: %.0f ms; latency to the buffered edge %.3f s; %d jumps; stats %+v",
			st.FirstFrameMs, st.Latency, st.Jumps, h.Stats())
	})

	t.Run("bframes", func(t *testing.T) {
		frames := encodeBFrames(t)
		h := NewHub(HubOptions{})
		url := liveServer(t, h)
		// Each loop of the 100-frame clip continues 4 s later.
		stop := realTime(h, func(i int) *ingest.Frame {
			f := *frames[i%len(frames)]
			f.PTS90k += int64(i/len(frames)) * 100 * 3600
			return &f
		})
		defer stop()
		st, err := playUntil(t, browser, url, 320)
		t.Logf("%+v", st)
		if err != nil {
			t.Fatal(err)
		}
		if st.Error != "" {
			t.Fatalf("page error: %s", st.Error)
		}
	})

	t.Run("reset", func(t *testing.T) {
		// The camera reconnects mid-play with other parameter sets (the
		// sub-stream's: 640x360, another profile) and timestamps that
		// start over: the player gets a new init segment, changes type
		// and plays on.
		main, sub := loadFixture(t, "main.h264"), loadFixture(t, "sub.h264")
		h := NewHub(HubOptions{})
		url := liveServer(t, h)
		var switched atomic.Int64 // the frame number at which sub starts, 0 before
		stop := realTime(h, func(i int) *ingest.Frame {
			at := switched.Load()
			if at == 0 || int64(i) < at {
				return main.frame(i, 0)
			}
			if int64(i) == at {
				h.Reset() // on the publishing goroutine, as the recorder does
			}
			return sub.frame(i-int(at)+10, 12345) // starts mid-GOP: 40 frames skipped
		})
		defer stop()
		tab, closeTab := chromedp.NewContext(browser)
		defer closeTab()
		expr := `(() => {
			if (typeof custosState !== "function") return null;
			const s = custosState();
			return s.error || (s.videoWidth === 1920 && s.advanced >= 1) ? s : null;
		})()`
		st, err := testpeer.EvalPage[pageState](t, tab, url, expr, 120*time.Second)
		if err != nil || st.Error != "" {
			t.Fatalf("before the reset: %v %+v", err, st)
		}
		before := h.Stats().Published
		switched.Store(int64(before) + 5)
		var first *pageState
		deadline := time.Now().Add(120 * time.Second)
		for {
			st, err = chromedp.Run(tab, chromedp.Evaluate[pageState]("custosState()"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Error != "" {
				t.Fatalf("after the reset: %+v", st)
			}
			if first == nil && st.VideoWidth == 640 {
				f := st
				first = &f
			}
			if first != nil && st.CurrentTime-first.CurrentTime >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the reset: not playing 640x360 within 120 s: %+v (first at 640: %+v)", st, first)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("after the reset: %+v", st)
		if st.Codec != "avc1.4D401E" || st.VideoHeight != 360 {
			t.Errorf("after the reset: codec %s, %dx%d", st.Codec, st.VideoWidth, st.VideoHeight)
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		// The server ends the connection (as on a shutdown): the player
		// reconnects with a fresh MediaSource and plays on.
		fx := loadFixture(t, "main.h264")
		h := NewHub(HubOptions{})
		url, cut := liveServerCut(t, h)
		stop := realTime(h, func(i int) *ingest.Frame { return fx.frame(i, 0) })
		defer stop()
		tab, closeTab := chromedp.NewContext(browser)
		defer closeTab()
		expr := `(() => {
			if (typeof custosState !== "function") return null;
			const s = custosState();
			return s.error || (s.videoWidth === 1920 && s.advanced >= 1) ? s : null;
		})()`
		st, err := testpeer.EvalPage[pageState](t, tab, url+"?reconnect", expr, 120*time.Second)
		if err != nil || st.Error != "" {
			t.Fatalf("before the cut: %v %+v", err, st)
		}
		cut()
		var back *pageState
		deadline := time.Now().Add(120 * time.Second)
		for {
			st, err = chromedp.Run(tab, chromedp.Evaluate[pageState]("custosState()"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Error != "" {
				t.Fatalf("after the cut: %+v", st)
			}
			if back == nil && st.Reconnects > 0 && st.State == "playing" && st.ReadyState >= 2 {
				b := st
				back = &b
			}
			if back != nil && st.CurrentTime-back.CurrentTime >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not playing again within 120 s: %+v (back: %+v)", st, back)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("after the cut: %+v", st)
		if h.Viewers() != 1 {
			t.Errorf("%d viewers, want 1 (the old one gone, the new one there)", h.Viewers())
		}
	})

	t.Run("h265", func(t *testing.T) {
		fx := loadFixture(t, "main.h265")
		h := NewHub(HubOptions{})
		url := liveServer(t, h)
		stop := realTime(h, func(i int) *ingest.Frame { return fx.frame(i, 0) })
		defer stop()
		tab, closeTab := chromedp.NewContext(browser)
		defer closeTab()
		expr := `(() => {
			if (typeof custosState !== "function") return null;
			const s = custosState();
			return s.error || (s.videoWidth === 1920 && s.advanced >= 1) ? s : null;
		})()`
		st, err := testpeer.EvalPage[pageState](t, tab, url, expr, 120*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.Contains(st.Error, "cannot play") && strings.Contains(st.Error, "hvc1"):
			t.Logf("this Chromium does not decode H.265; the player says: %s", st.Error)
		case st.Error == "":
			t.Logf("this Chromium plays H.265: %+v", st)
		default:
			t.Errorf("H.265: unexpected error %q", st.Error)
		}
	})
}
