package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/live"
)

// liveWS serves GET /api/cameras/{name}/live.ws?stream=main|sub: the
// camera's live video as fMP4 over a WebSocket for MSE players
// (live.ServeMSE). The default stream is main.
// Live viewing is audited as a start before the first byte and a stop
// with its duration after the viewer goes.
func (s *Server) liveWS(w http.ResponseWriter, r *http.Request) {
	h := s.hub(w, r)
	if h == nil {
		return
	}
	user := who(r).user.Name
	if err := s.liveViewers.acquire(user, s.MaxLivePerUser); err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.liveViewers.release(user)
	cam, stream := r.PathValue("name"), streamOf(r)
	if err := s.audit(r, audit.LiveStart, cam, map[string]string{"stream": stream, "transport": "mse"}); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.liveWG.Add(1)
	defer s.liveWG.Done()
	start := time.Now()
	live.ServeMSE(w, r, h, s.logger())
	s.audit(r, audit.LiveStop, cam, map[string]string{"stream": stream, "transport": "mse",
		"seconds": strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)})
}

// WaitLive blocks until every live view that started has written its
// live_stop entry, or ctx ends. The server calls it at stop, after the
// cameras' hubs closed (which ends their viewers) and before the audit
// log closes, so no stop entry is lost. Safe for concurrent use.
func (s *Server) WaitLive(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.liveWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("live views still open at stop: %w", ctx.Err())
	}
}

func streamOf(r *http.Request) string {
	if st := r.URL.Query().Get("stream"); st != "" {
		return st
	}
	return "main"
}

// whep serves POST and DELETE /api/cameras/{name}/whep?stream=main|sub:
// WebRTC live view, WHEP-style (live.ServeWHEP; H.264 only).
func (s *Server) whep(w http.ResponseWriter, r *http.Request) {
	h := s.hub(w, r)
	if h == nil {
		return
	}
	cam, stream := r.PathValue("name"), streamOf(r)
	// The session outlives the request: keep what the stop entry needs.
	stop := requestEntry(r, audit.LiveStop, cam, nil)
	actor := who(r).user.Name
	addr := clientAddr(r)
	// A new session counts as one of the user's live views from the offer
	// until it ends (OnEnd), or until the request if it never starts.
	post := r.Method == http.MethodPost
	if post {
		if err := s.liveViewers.acquire(actor, s.MaxLivePerUser); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	started := false
	var start time.Time
	allow := func(netip.Addr) bool { return false }
	if ip, err := netip.ParseAddr(addr); err == nil {
		allow = live.ViewerAddrs(ip, s.WebRTCAllow)
	}
	live.ServeWHEP(w, r, h, live.WHEPOptions{Logger: s.logger(), AllowRemote: allow,
		OnStart: func(id string) error {
			start = time.Now()
			err := s.audit(r, audit.LiveStart, cam, map[string]string{"stream": stream, "transport": "webrtc", "session": id})
			started = err == nil
			if started {
				s.liveWG.Add(1) // Done in OnEnd, after the stop entry
			}
			return err
		},
		OnEnd: func(id string, _ error) {
			s.liveViewers.release(actor)
			e := stop
			e.Detail = map[string]string{}
			maps.Copy(e.Detail, stop.Detail)
			maps.Copy(e.Detail, map[string]string{"stream": stream, "transport": "webrtc", "session": id,
				"seconds": strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)})
			s.appendAudit(context.Background(), e)
			if started {
				s.liveWG.Done()
			}
		},
	})
	if post && !started {
		s.liveViewers.release(actor)
	}
}

// liveCount counts each user's open live views. Safe for concurrent use;
// the zero value is ready.
type liveCount struct {
	mu     sync.Mutex
	byUser map[string]int
}

// acquire counts one more live view of user, or returns a 429 *Error
// when user has max already (max <= 0: no bound).
func (c *liveCount) acquire(user string, max int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.byUser[user] >= max {
		return &Error{Status: http.StatusTooManyRequests, Message: fmt.Sprintf(
			"%s has %d live views open, the most one user may (live.max_viewers_per_user): close one first", user, max)}
	}
	if c.byUser == nil {
		c.byUser = map[string]int{}
	}
	c.byUser[user]++
	return nil
}

// release ends one live view of user.
func (c *liveCount) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUser[user]--; c.byUser[user] <= 0 {
		delete(c.byUser, user)
	}
}

// LiveViews returns the number of live views open, every user's, for
// the descriptor reserve. Safe for concurrent use.
func (s *Server) LiveViews() int {
	s.liveViewers.mu.Lock()
	defer s.liveViewers.mu.Unlock()
	n := 0
	for _, v := range s.liveViewers.byUser {
		n += v
	}
	return n
}

// hub resolves {name} and ?stream= (main by default) to a live hub, or
// writes a 404 and returns nil.
func (s *Server) hub(w http.ResponseWriter, r *http.Request) *live.Hub {
	name := r.PathValue("name")
	cam, ok := s.camera(name)
	if !ok {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return nil
	}
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		stream = "main"
	}
	i := map[string]int{"main": 0, "sub": 1}[stream]
	if (stream != "main" && stream != "sub") || i >= len(cam.Live) || cam.Live[i] == nil {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("camera %q has no live stream %q", name, stream)})
		return nil
	}
	return cam.Live[i]
}

// LiveStatsJSON is one stream's live-view counters in GET /api/live.
type LiveStatsJSON struct {
	Camera string     `json:"camera"`
	Stream string     `json:"stream"`
	Stats  live.Stats `json:"stats"`
}

// liveStats serves GET /api/live: the counters (viewers, frames, drops,
// Publish-to-queued latency) of every hub of the cameras the caller holds
// a grant on, for operators and benchmarks.
func (s *Server) liveStats(w http.ResponseWriter, r *http.Request) {
	out := []LiveStatsJSON{}
	for _, c := range s.Cameras.List() {
		if !listable(r, c.Name) {
			continue
		}
		for i, h := range c.Live {
			if h != nil {
				out = append(out, LiveStatsJSON{Camera: c.Name, Stream: []string{"main", "sub"}[min(i, 1)], Stats: h.Stats()})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
