// Package api serves Custos's HTTP API: JSON under /api/, health at
// /healthz. Handlers turn errors into statuses in one place (writeError).
// The API has no authentication yet; serve it on loopback only until
// accounts land (docs/api.md).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/live"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/thumb"
)

// Camera is what the API knows about a configured camera.
type Camera struct {
	Name    string
	Streams []*recorder.Supervisor // main first, then sub when configured
	// Live are the live-view hubs of the same streams (nil entries, or
	// none, when live view is off).
	Live []*live.Hub
	// Config is what GET /api/cameras shows of its configuration.
	Config CameraConfig
}

// Server holds the API's dependencies. Safe for concurrent use once built.
type Server struct {
	Cameras []Camera
	Index   store.Store
	Logger  *slog.Logger
	// MaxRange bounds the time span of one recordings query.
	MaxRange time.Duration
	// Playback serves recorded video; nil answers its routes with 503.
	Playback *playback.Source
	// Thumbs makes timeline thumbnails; nil answers with 503.
	Thumbs *thumb.Maker
	// UI, when set, serves the web UI at / (every path outside /api/ and
	// /healthz).
	UI http.Handler
	// Disks are the storage directories, for GET /api/storage.
	Disks []Disk

	storageMu    sync.Mutex
	storageCache storageCache
}

// Handler returns the HTTP handler for every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /api/cameras", s.cameras)
	mux.HandleFunc("GET /api/cameras/{name}/recordings", s.recordings)
	s.playbackRoutes(mux)
	mux.HandleFunc("GET /api/cameras/{name}/live.ws", s.liveWS)
	mux.HandleFunc("GET /api/live", s.liveStats)
	mux.HandleFunc("GET /api/storage", s.storage)
	mux.HandleFunc("POST /api/probe", s.probeCamera)
	mux.HandleFunc("POST /api/cameras/{name}/whep", s.whep)
	mux.HandleFunc("DELETE /api/cameras/{name}/whep", s.whep)
	if s.UI != nil {
		mux.Handle("/", s.UI)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: "no such API route: " + r.URL.Path})
	})
	return mux
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Error is an error with the HTTP status it maps to.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// writeError is the one place errors become statuses: *Error keeps its
// status, a cancelled request is 499-like (nothing written), anything else
// is a 500 whose details go to the log, not the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	var pe *playback.Error
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &ae):
		status, msg = ae.Status, ae.Message
	case errors.As(err, &pe):
		status, msg = pe.Status, pe.Message
	case errors.Is(err, context.Canceled):
		return
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	default:
		if s.Logger != nil {
			s.Logger.Error("api: request failed", "path", r.URL.Path, "err", err)
		}
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// CameraJSON is one camera in GET /api/cameras.
type CameraJSON struct {
	Name string `json:"name"`
	// Status, Reason, BitrateBps and LastFrame describe the main stream.
	Status     string            `json:"status"`
	Reason     string            `json:"reason,omitempty"`
	BitrateBps int64             `json:"bitrate_bps"`
	LastFrame  time.Time         `json:"last_frame,omitzero"`
	Streams    []recorder.Status `json:"streams"`
	Config     CameraConfig      `json:"config"`
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	out := make([]CameraJSON, 0, len(s.Cameras))
	for _, c := range s.Cameras {
		cj := CameraJSON{Name: c.Name, Config: c.Config}
		for i, sup := range c.Streams {
			st := sup.Status()
			if i == 0 {
				cj.Status, cj.Reason, cj.BitrateBps, cj.LastFrame = st.State, st.Reason, st.BitrateBps, st.LastFrame
			}
			cj.Streams = append(cj.Streams, st)
		}
		out = append(out, cj)
	}
	writeJSON(w, http.StatusOK, out)
}

// RunJSON is one run in a recordings answer.
type RunJSON struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Bytes    int64     `json:"bytes"`
	Segments int       `json:"segments"`
	// Recording is true for the run being written now.
	Recording bool `json:"recording,omitempty"`
}

// GapJSON is a span between two runs with no video.
type GapJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// RecordingsJSON answers GET /api/cameras/{name}/recordings.
type RecordingsJSON struct {
	Camera string    `json:"camera"`
	Stream string    `json:"stream"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Runs   []RunJSON `json:"runs"`
	Gaps   []GapJSON `json:"gaps"`
}

func (s *Server) camera(name string) (Camera, bool) {
	for _, c := range s.Cameras {
		if c.Name == name {
			return c, true
		}
	}
	return Camera{}, false
}

func parseRange(r *http.Request, maxRange time.Duration) (from, to time.Time, err error) {
	q := r.URL.Query()
	if from, err = time.Parse(time.RFC3339Nano, q.Get("from")); err != nil {
		return from, to, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("from=%q is not an RFC 3339 time", q.Get("from"))}
	}
	if to, err = time.Parse(time.RFC3339Nano, q.Get("to")); err != nil {
		return from, to, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("to=%q is not an RFC 3339 time", q.Get("to"))}
	}
	if !to.After(from) {
		return from, to, &Error{Status: http.StatusBadRequest, Message: "to must be after from"}
	}
	if maxRange > 0 && to.Sub(from) > maxRange {
		return from, to, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("range longer than %s", maxRange)}
	}
	return from, to, nil
}

func (s *Server) recordings(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cam, ok := s.camera(name)
	if !ok {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return
	}
	maxRange := s.MaxRange
	if maxRange == 0 {
		maxRange = 366 * 24 * time.Hour
	}
	from, to, err := parseRange(r, maxRange)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	streamName := r.URL.Query().Get("stream")
	if streamName == "" {
		streamName = "main"
	}
	if streamName != "main" && !(streamName == "sub" && len(cam.Streams) > 1) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("camera %q has no stream %q", name, streamName)})
		return
	}
	st, err := s.Index.Stream(r.Context(), name, streamName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	segs, err := s.Index.Segments(r.Context(), st.ID, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := RecordingsJSON{Camera: name, Stream: streamName, From: from, To: to, Runs: runsOf(segs), Gaps: []GapJSON{}}
	for i := 1; i < len(out.Runs); i++ {
		if gs, ge := out.Runs[i-1].End, out.Runs[i].Start; ge.After(gs) {
			out.Gaps = append(out.Gaps, GapJSON{Start: gs, End: ge})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// runsOf groups segments (ordered by start) into runs.
func runsOf(segs []store.Segment) []RunJSON {
	byRun := map[int64]*RunJSON{}
	var order []int64
	for i := range segs {
		sg := &segs[i]
		rj := byRun[sg.RunID]
		if rj == nil {
			rj = &RunJSON{Start: sg.Start, End: sg.End()}
			byRun[sg.RunID] = rj
			order = append(order, sg.RunID)
		}
		if sg.Start.Before(rj.Start) {
			rj.Start = sg.Start
		}
		if e := sg.End(); e.After(rj.End) {
			rj.End = e
		}
		rj.Bytes += sg.Bytes
		rj.Segments++
		if sg.State == store.SegmentWriting {
			rj.Recording = true
		}
	}
	out := make([]RunJSON, 0, len(order))
	for _, id := range order {
		out = append(out, *byRun[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}
