// Package api serves Custos's HTTP API: JSON under /api/, health at
// /healthz. Handlers turn errors into statuses in one place (writeError).
// Every route is behind authentication and per-camera grants
// (access.go, docs/security.md), and viewing is audited.
package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/live"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
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
	// Cameras are the cameras served (they may change while serving).
	Cameras CameraSet
	// CameraAdmin adds, changes and removes cameras; nil answers those
	// routes with 501.
	CameraAdmin CameraAdmin
	Index       store.Store
	Logger      *slog.Logger
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
	// LockedFull reports the disks below their floor whose remaining
	// recordings are held by evidence locks (retention's alarm); nil
	// reports none.
	LockedFull func() map[string]retention.LockedFull
	// Auth authenticates requests and manages accounts (required).
	Auth *auth.Service
	// Audit records every view, export and change (required).
	Audit *audit.Log
	// LoginPage is the HTML of the sign-in form, sent as the body of a
	// page request's 401; PublicUI are the UI paths served without
	// credentials (the form's own assets).
	LoginPage []byte
	PublicUI  []string
	// Chains and RecorderKey (the node key, which signs each export's
	// manifest) make evidence exports (export.mp4?evidence=1); nil
	// answers them with 501.
	Chains      playback.ChainReader
	RecorderKey ed25519.PrivateKey
	// MetricsPublic opens GET /metrics to anyone (config
	// metrics.public); otherwise operators and admins only.
	MetricsPublic bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (config trusted_proxies; clientAddr).
	TrustedProxies []netip.Prefix
	// Refusals aggregates the audit entries of refused logins and
	// requests; nil makes one on Audit (refusals.go). Whoever runs the
	// server calls its Run and, at shutdown, Flush.
	Refusals *audit.Aggregator
	// MaxLivePerUser bounds one user's simultaneous live views, WebSocket
	// and WebRTC together (config live.max_viewers_per_user); more get
	// 429. 0: no bound.
	MaxLivePerUser int
	// WebRTCAllow are networks a WebRTC viewer's ICE candidates may be in
	// besides its own address (config live.webrtc_allow_networks).
	WebRTCAllow []netip.Prefix

	// LockMaxSpan and LockMaxActive limit a non-admin's evidence locks
	// (config locks.max_span, locks.max_active_per_user; 0: 31 days, 20).
	LockMaxSpan   time.Duration
	LockMaxActive int
	// PlayerRangeBytes bounds one Range response of export.mp4 for users
	// without the export permission (0: 8 MiB).
	PlayerRangeBytes int64
	// Now is the clock of viewing sessions (nil: time.Now).
	Now func() time.Time
	// ViewIdle ends a viewing session without requests (0: 3 minutes).
	ViewIdle time.Duration

	recentAudits
	refusalAudits
	liveViewers liveCount
	liveWG      sync.WaitGroup // live views between live_start and live_stop
	views       viewLog

	lockMu       sync.Mutex // orders the limit check and the insert of locks
	storageMu    sync.Mutex
	storageCache storageCache
}

// Handler returns the HTTP handler for every route. Every route but
// /healthz, /api/login and the login page's assets checks who is asking
// and what they may do (access.go); cross-origin state-changing browser
// requests are refused (http.CrossOriginProtection) and cookie sessions
// must echo their CSRF token. Auth and Audit must be set.
func (s *Server) Handler() http.Handler {
	h, _ := s.build()
	return h
}

// Routes lists every registered route with who may use it.
func (s *Server) Routes() []Route {
	_, routes := s.build()
	return routes
}

func (s *Server) build() (http.Handler, []Route) {
	if s.Auth == nil || s.Audit == nil {
		panic("api: Server.Auth and Server.Audit are required")
	}
	mux := http.NewServeMux()
	var routes []Route
	handle := func(pattern string, a access, h http.HandlerFunc) { s.handle(mux, &routes, pattern, a, h) }
	handle("GET /healthz", public, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	handle("POST /api/login", public, s.login)
	handle("POST /api/logout", anyUser, s.logout)
	handle("GET /api/session", anyUser, s.session)
	handle("GET /api/sessions", anyUser, s.sessions)
	handle("DELETE /api/sessions/{id}", anyUser, s.revokeSession)
	handle("GET /api/users", admin, s.users)
	handle("POST /api/users", admin, s.addUser)
	handle("PATCH /api/users/{user}", admin, s.updateUser)
	handle("PUT /api/users/{user}/password", anyUser, s.setPassword)
	handle("DELETE /api/users/{user}", admin, s.deleteUser)
	handle("POST /api/users/{user}/unlock", admin, s.unlockUser)
	handle("GET /api/tokens", anyUser, s.tokens)
	handle("POST /api/tokens", anyUser, s.addToken)
	handle("DELETE /api/tokens/{id}", anyUser, s.deleteToken)
	handle("GET /api/audit", admin, s.auditLog)
	handle("GET /api/audit/actions", admin, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, audit.Actions())
	})

	handle("GET /api/cameras", anyUser, s.cameras)
	handle("POST /api/cameras", manageAll, s.addCamera)
	handle("PUT /api/cameras/{name}", manageCamera, s.updateCamera)
	handle("DELETE /api/cameras/{name}", manageCamera, s.removeCamera)
	handle("GET /api/cameras/{name}/recordings", cameraPerm(auth.PermRecordings), s.recordings)
	handle("GET /api/cameras/{name}/locks", cameraPerm(auth.PermRecordings), s.locks)
	handle("POST /api/cameras/{name}/locks", cameraPerm(auth.PermLock), s.addLock)
	handle("POST /api/locks/{id}/release", admin, s.releaseLock)
	s.playbackRoutes(mux, &routes)
	handle("GET /api/cameras/{name}/live.ws", cameraPerm(auth.PermLive), s.liveWS)
	handle("POST /api/cameras/{name}/whep", cameraPerm(auth.PermLive), s.whep)
	handle("DELETE /api/cameras/{name}/whep", cameraPerm(auth.PermLive), s.whep)
	handle("GET /api/live", operator, s.liveStats)
	handle("GET /api/storage", operator, s.storage)
	handle("POST /api/probe", operator, s.probeCamera)
	if s.MetricsPublic {
		handle("GET /metrics", public, s.metrics)
	} else {
		handle("GET /metrics", operator, s.metrics)
	}
	if s.UI != nil {
		for _, p := range s.PublicUI {
			handle("GET "+p, public, s.UI.ServeHTTP)
		}
		handle("/", anyUser, s.UI.ServeHTTP)
	}
	handle("/api/", public, func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: "no such API route: " + r.URL.Path})
	})
	return s.withClientAddr(http.NewCrossOriginProtection().Handler(mux)), routes
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
	// reason is the refusal's reason in its denied audit entry (401 and
	// 403; default "forbidden"); noted says the refusal is audited
	// already (as login_failed).
	reason string
	noted  bool
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
		if (status == http.StatusUnauthorized || status == http.StatusForbidden) && !ae.noted {
			s.noteDenied(r, status, ae.reason)
		}
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

// StreamJSON is one stream of a camera: its recorder's status and the
// RFC 6381 codecs parameter of what it sends (from the live hub; empty
// while nothing usable has arrived, or with live view off), so the UI can
// pick a stream the browser decodes.
type StreamJSON struct {
	recorder.Status
	Codec string `json:"codec,omitempty"`
}

// CameraJSON is one camera in GET /api/cameras.
type CameraJSON struct {
	Name string `json:"name"`
	// Status, Reason, Hint, BitrateBps and LastFrame describe the main
	// stream.
	Status     string       `json:"status"`
	Reason     string       `json:"reason,omitempty"`
	Hint       string       `json:"hint,omitempty"`
	BitrateBps int64        `json:"bitrate_bps"`
	LastFrame  time.Time    `json:"last_frame,omitzero"`
	Streams    []StreamJSON `json:"streams"`
	Config     CameraConfig `json:"config"`
	// Perms is what the asking user may do with the camera.
	Perms auth.Perm `json:"perms"`
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cameraList(r))
}

// cameraList is GET /api/cameras's answer for the request's user.
func (s *Server) cameraList(r *http.Request) []CameraJSON {
	list := s.Cameras.List()
	out := make([]CameraJSON, 0, len(list))
	u := &who(r).user
	for _, c := range list {
		if !u.CanAny(c.Name) {
			continue
		}
		cj := CameraJSON{Name: c.Name, Config: c.Config, Perms: u.Grants[c.Name] | u.Grants[auth.AllCameras]}
		if !u.Role.AtLeast(auth.Operator) {
			cj.Config = c.Config.forViewer()
		}
		if u.Role == auth.Admin {
			cj.Perms = auth.PermAll
		}
		for i, sup := range c.Streams {
			st := s.lockedFullReason(sup.Status(), c.Config.Storage)
			if i == 0 {
				cj.Status, cj.Reason, cj.Hint, cj.BitrateBps, cj.LastFrame = st.State, st.Reason, st.Hint, st.BitrateBps, st.LastFrame
			}
			sj := StreamJSON{Status: st}
			if i < len(c.Live) && c.Live[i] != nil {
				sj.Codec = c.Live[i].Codec()
			}
			cj.Streams = append(cj.Streams, sj)
		}
		out = append(out, cj)
	}
	return out
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
	// Locks are the active evidence locks overlapping the range.
	Locks []LockJSON `json:"locks"`
}

func (s *Server) camera(name string) (Camera, bool) {
	for _, c := range s.Cameras.List() {
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
	locks, err := s.Index.Locks(r.Context(), name, from, to, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := RecordingsJSON{Camera: name, Stream: streamName, From: from, To: to, Runs: runsOf(segs), Gaps: []GapJSON{}, Locks: []LockJSON{}}
	for _, l := range locks {
		out.Locks = append(out.Locks, lockJSON(l))
	}
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
