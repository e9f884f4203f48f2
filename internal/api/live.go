package api

import (
	"fmt"
	"net/http"

	"github.com/custos-nvr/custos/internal/live"
)

// liveWS serves GET /api/cameras/{name}/live.ws?stream=main|sub: the
// camera's live video as fMP4 over a WebSocket for MSE players
// (live.ServeMSE). The default stream is main.
func (s *Server) liveWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cam, ok := s.camera(name)
	if !ok {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return
	}
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		stream = "main"
	}
	i := map[string]int{"main": 0, "sub": 1}[stream]
	if (stream != "main" && stream != "sub") || i >= len(cam.Live) || cam.Live[i] == nil {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("camera %q has no live stream %q", name, stream)})
		return
	}
	live.ServeMSE(w, r, cam.Live[i], s.logger())
}

// LiveStatsJSON is one stream's live-view counters in GET /api/live.
type LiveStatsJSON struct {
	Camera string     `json:"camera"`
	Stream string     `json:"stream"`
	Stats  live.Stats `json:"stats"`
}

// liveStats serves GET /api/live: every hub's counters (viewers, frames,
// drops, Publish-to-queued latency), for operators and benchmarks.
func (s *Server) liveStats(w http.ResponseWriter, r *http.Request) {
	out := []LiveStatsJSON{}
	for _, c := range s.Cameras {
		for i, h := range c.Live {
			if h != nil {
				out = append(out, LiveStatsJSON{Camera: c.Name, Stream: []string{"main", "sub"}[min(i, 1)], Stats: h.Stats()})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
