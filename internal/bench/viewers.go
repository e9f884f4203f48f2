package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// LiveResult is what live viewers received during a Record window.
type LiveResult struct {
	Viewers int `json:"viewers"`
	// FramesReceived counts fragments (one per frame) all viewers got in
	// the window; FramesExpected is 25 fps × window × viewers.
	FramesReceived int64   `json:"frames_received"`
	FramesExpected float64 `json:"frames_expected"`
	MiBPerSecond   float64 `json:"mib_per_second"`
	Disconnects    int64   `json:"disconnects"`
	// DroppedByServer is the frames the server's hubs skipped for slow
	// viewers (GET /api/live), and the Publish-to-queued latency over all
	// hubs (worst p99 and max).
	DroppedByServer uint64  `json:"dropped_by_server"`
	LatencyP50ms    float64 `json:"latency_p50_ms"`
	LatencyP99ms    float64 `json:"latency_p99_ms"`
	LatencyMaxms    float64 `json:"latency_max_ms"`
	// Sent*: from the recorder handing a frame over to its fragment being
	// written to a viewer's WebSocket (worst p99 and max over the hubs).
	SentP50ms float64 `json:"sent_p50_ms"`
	SentP99ms float64 `json:"sent_p99_ms"`
	SentMaxms float64 `json:"sent_max_ms"`
}

type viewers struct {
	n           int
	frames      atomic.Int64
	bytes       atomic.Int64
	disconnects atomic.Int64
	f0, b0      int64
	wg          sync.WaitGroup
}

// startViewers connects n WebSocket viewers to the main streams of
// cameras cam1..camN of the server at addr, round robin, each reading and
// counting every message until ctx ends.
func startViewers(ctx context.Context, addr string, cameras, n int) (*viewers, error) {
	v := &viewers{n: n}
	for i := range n {
		u := fmt.Sprintf("ws://%s/api/cameras/cam%d/live.ws?stream=main", addr, i%cameras+1)
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{
			"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+benchAdminPassword))}}})
		if err != nil {
			return nil, fmt.Errorf("viewer %d: %w", i, err)
		}
		c.SetReadLimit(64 << 20)
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			defer c.CloseNow()
			for {
				typ, b, err := c.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						v.disconnects.Add(1)
					}
					return
				}
				if typ == websocket.MessageBinary {
					v.frames.Add(1)
					v.bytes.Add(int64(len(b)))
				}
			}
		}()
	}
	return v, nil
}

// mark starts the measured window.
func (v *viewers) mark() { v.f0, v.b0 = v.frames.Load(), v.bytes.Load() }

func (v *viewers) result(addr string, seconds float64) (*LiveResult, error) {
	r := &LiveResult{Viewers: v.n, FramesReceived: v.frames.Load() - v.f0,
		FramesExpected: 25 * seconds * float64(v.n),
		MiBPerSecond:   float64(v.bytes.Load()-v.b0) / (1 << 20) / seconds,
		Disconnects:    v.disconnects.Load()}
	resp, err := benchGet(addr, "/api/live")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var hubs []struct {
		Stats struct {
			Dropped     uint64
			Latency     struct{ P50, P99, Max time.Duration }
			SentLatency struct{ P50, P99, Max time.Duration }
		} `json:"stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&hubs); err != nil {
		return nil, fmt.Errorf("decode /api/live: %w", err)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, h := range hubs {
		r.DroppedByServer += h.Stats.Dropped
		r.LatencyP50ms = max(r.LatencyP50ms, ms(h.Stats.Latency.P50))
		r.LatencyP99ms = max(r.LatencyP99ms, ms(h.Stats.Latency.P99))
		r.LatencyMaxms = max(r.LatencyMaxms, ms(h.Stats.Latency.Max))
		r.SentP50ms = max(r.SentP50ms, ms(h.Stats.SentLatency.P50))
		r.SentP99ms = max(r.SentP99ms, ms(h.Stats.SentLatency.P99))
		r.SentMaxms = max(r.SentMaxms, ms(h.Stats.SentLatency.Max))
	}
	return r, nil
}
