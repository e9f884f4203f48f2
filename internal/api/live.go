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
