package live

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// mseServer serves ServeMSEWith for h at /ws on a new local server and
// returns its ws:// URL and a channel closed each time a handler returns.
func mseServer(t *testing.T, h *Hub, o MSEOptions) (string, chan struct{}) {
	t.Helper()
	returned := make(chan struct{}, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		ServeMSEWith(w, r, h, o)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", returned
}

// publisher publishes the loop of fx every interval (0: as fast as the
// viewers' queues allow, yielding between frames) until stop is called.
func publisher(h *Hub, fx fixture, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var tick <-chan time.Time
		if interval > 0 {
			tk := time.NewTicker(interval)
			defer tk.Stop()
			tick = tk.C
		}
		for i := 0; ; i++ {
			h.Publish(fx.frame(i, 0))
			if tick == nil {
				select {
				case <-done:
					return
				default:
					time.Sleep(100 * time.Microsecond)
				}
				continue
			}
			select {
			case <-done:
				return
			case <-tick:
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// TestServeMSE reads the WebSocket with a Go client: a text notice, the
// init segment, then fragments that decode in ffmpeg; when the client
// goes, the handler returns and the viewer is gone.
func TestServeMSE(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	url, returned := mseServer(t, h, MSEOptions{})
	stop := publisher(h, fx, 5*time.Millisecond)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)

	typ, notice, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		t.Fatalf("first message: type %v, %v; want text", typ, err)
	}
	var n struct {
		Type, Codec, MIME string
		Width, Height     int
	}
	if err := json.Unmarshal(notice, &n); err != nil {
		t.Fatalf("notice %s: %v", notice, err)
	}
	if n.Type != "init" || n.Codec != "avc1.640028" || n.MIME != `video/mp4; codecs="avc1.640028"` || n.Width != 1920 || n.Height != 1080 {
		t.Errorf("notice %s", notice)
	}
	var file []byte
	frames := 0
	for i := 0; frames < 120; i++ {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("message %d is %v, want binary", i, typ)
		}
		switch {
		case i == 0 && string(data[4:8]) != "ftyp":
			t.Fatalf("second message is not an init segment")
		case i > 0 && string(data[4:8]) != "moof":
			t.Fatalf("message %d is not a fragment", i)
		case i > 0:
			frames += len(parseFragment(t, data).samples)
		}
		file = append(file, data...)
	}
	c.Close(websocket.StatusNormalClosure, "")
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("ServeMSE did not return after the client closed")
	}
	if h.Viewers() != 0 {
		t.Errorf("%d viewers after the client went", h.Viewers())
	}
	stop()
	decodeFile(t, "ws.mp4", file, frames)
	// Live frames (not the cached GOP) were timed to the socket write.
	if sl := h.Stats().SentLatency; sl.Count == 0 || sl.Max <= 0 || sl.P99 > 10*time.Second {
		t.Errorf("sent latency not recorded: %+v", sl)
	}
}

// TestServeMSECrossOrigin checks that a page of another origin cannot open
// the stream.
func TestServeMSECrossOrigin(t *testing.T) {
	checkGoroutines(t)
	h := NewHub(HubOptions{})
	url, _ := mseServer(t, h, MSEOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://elsewhere.example"}},
	})
	if err == nil {
		c.CloseNow()
		t.Fatal("a cross-origin WebSocket was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin: %v, response %v; want 403", err, resp)
	}
	if h.Viewers() != 0 {
		t.Errorf("%d viewers", h.Viewers())
	}
}

// TestServeMSEDropsStuckClient connects a client that never reads while
// frames are published as fast as possible: once the socket buffers are
// full, a write times out and ServeMSE drops the client; Publish goes on.
func TestServeMSEDropsStuckClient(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	url, returned := mseServer(t, h, MSEOptions{WriteTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	for h.Viewers() == 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop := publisher(h, fx, 0)
	defer stop()
	start := time.Now()
	select {
	case <-returned:
		t.Logf("stuck client dropped after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("ServeMSE kept a client that does not read")
	}
	stop()
	if h.Viewers() != 0 {
		t.Errorf("%d viewers after the stuck client was dropped", h.Viewers())
	}
	if st := h.Stats(); st.Dropped == 0 {
		t.Errorf("stats %+v: the stuck viewer dropped nothing", st)
	}
}
