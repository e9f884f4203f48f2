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
	if h := s.hub(w, r); h != nil {
		live.ServeMSE(w, r, h, s.logger())
	}
}

// whep serves POST and DELETE /api/cameras/{name}/whep?stream=main|sub:
// WebRTC live view, WHEP-style (live.ServeWHEP; H.264 only).
func (s *Server) whep(w http.ResponseWriter, r *http.Request) {
	if h := s.hub(w, r); h != nil {
		live.ServeWHEP(w, r, h, live.WHEPOptions{Logger: s.logger()})
	}
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
