package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strconv"
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
	cam, stream := r.PathValue("name"), streamOf(r)
	if err := s.audit(r, audit.LiveStart, cam, map[string]string{"stream": stream, "transport": "mse"}); err != nil {
		s.writeError(w, r, err)
		return
	}
	start := time.Now()
	live.ServeMSE(w, r, h, s.logger())
	s.audit(r, audit.LiveStop, cam, map[string]string{"stream": stream, "transport": "mse",
		"seconds": strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)})
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
	var start time.Time
	live.ServeWHEP(w, r, h, live.WHEPOptions{Logger: s.logger(),
		OnStart: func(id string) error {
			start = time.Now()
			return s.audit(r, audit.LiveStart, cam, map[string]string{"stream": stream, "transport": "webrtc", "session": id})
		},
		OnEnd: func(id string, _ error) {
			e := stop
			e.Detail = map[string]string{}
			maps.Copy(e.Detail, stop.Detail)
			maps.Copy(e.Detail, map[string]string{"stream": stream, "transport": "webrtc", "session": id,
				"seconds": strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)})
			s.appendAudit(context.Background(), e)
		},
	})
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
