package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/playback"
)

// Viewing sessions (docs/security.md, "What is audited"). A player sends
// many requests for one viewing: range requests of export.mp4, HLS parts,
// fragments, thumbnails of the timeline. Each viewing session, one per
// credential, camera, stream and kind (playback or thumbnail), gets
//
//   - a start entry, written before the first response is sent: a view is
//     refused (503) when it cannot be written, so nothing is shown
//     unrecorded;
//   - entries naming the exact wall-clock ranges served (the union of what
//     the responses carried, merged), written when the session goes idle,
//     every viewFlushEvery of a long viewing, when it holds maxViewSpans
//     ranges, and at shutdown (FlushViews).
//
// Memory is bounded: at most maxViewSessions sessions of at most
// maxViewSpans ranges each; a new session beyond the limit first writes
// out the one idle longest.
const (
	// defaultViewIdle ends a viewing session without requests.
	defaultViewIdle = 3 * time.Minute
	// viewFlushEvery writes the ranges of a long viewing so far.
	viewFlushEvery = 10 * time.Minute
	// maxViewSpans bounds the ranges (or frames) of one entry.
	maxViewSpans = 64
	// maxViewSessions bounds the sessions kept in memory.
	maxViewSessions = 4096
)

// viewKey identifies a viewing session.
type viewKey struct {
	// who is the actor and the credential fields of the request's entry.
	who            string
	action, camera string
	stream         string
}

// viewSession accumulates what one viewing session was served.
type viewSession struct {
	id     string
	stream string
	// tmpl is the entry built from the session's first request (actor,
	// address, credential), copied for every entry of the session.
	tmpl     audit.Entry
	started  time.Time
	last     time.Time // last request
	flushed  time.Time // last entry written
	part     int       // entries of ranges written
	spans    []playback.Span
	requests int
	bytes    int64
	routes   map[string]bool
	frames   bool // spans are frame times (thumbnails)
	// inflight counts responses being sent: a session is active while
	// one is, however long it takes.
	inflight int
}

// idle reports a session without requests for idle and no response
// being sent; s.views.mu must be held.
func (vs *viewSession) idle(now time.Time, idle time.Duration) bool {
	return vs.inflight == 0 && now.Sub(vs.last) >= idle
}

// viewLog holds the open viewing sessions. Safe for concurrent use.
type viewLog struct {
	mu       sync.Mutex
	sessions map[viewKey]*viewSession
	// writeMu orders the entries of sessions written out.
	writeMu sync.Mutex
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) viewIdle() time.Duration {
	if s.ViewIdle > 0 {
		return s.ViewIdle
	}
	return defaultViewIdle
}

// viewing is a request's handle on its viewing session.
type viewing struct {
	key viewKey
	vs  *viewSession
}

// viewBegin finds or starts the request's viewing session of camera's
// stream. Starting one writes its start entry first; the error (503) means
// nothing may be served. HEAD requests (no video) return a nil handle.
// It may write entries of sessions it evicts (I/O).
func (s *Server) viewBegin(r *http.Request, action, camera, stream, route string) (*viewing, error) {
	if r.Method == http.MethodHead {
		return nil, nil
	}
	tmpl := requestEntry(r, action, camera, nil)
	key := viewKey{who: whoKey(tmpl), action: action, camera: camera, stream: stream}
	now := s.now()
	v := &s.views
	v.mu.Lock()
	if v.sessions == nil {
		v.sessions = map[viewKey]*viewSession{}
	}
	if vs := v.sessions[key]; vs != nil && !vs.idle(now, s.viewIdle()) {
		vs.last = now
		vs.requests++
		vs.inflight++
		vs.routes[route] = true
		v.mu.Unlock()
		return &viewing{key: key, vs: vs}, nil
	}
	var ended []*viewSession
	if old := v.sessions[key]; old != nil { // idle: written out, then replaced
		ended = append(ended, s.snapshot(old))
		delete(v.sessions, key)
	}
	if len(v.sessions) >= maxViewSessions {
		var ek viewKey
		var evict *viewSession
		for k, vs := range v.sessions {
			if evict == nil || vs.last.Before(evict.last) {
				evict, ek = vs, k
			}
		}
		ended = append(ended, s.snapshot(evict))
		delete(v.sessions, ek)
	}
	v.mu.Unlock()
	for _, vs := range ended {
		s.writeViewRanges(r.Context(), vs, true)
	}
	var idb [6]byte
	rand.Read(idb[:])
	vs := &viewSession{id: hex.EncodeToString(idb[:]), stream: stream, tmpl: tmpl, started: now, last: now, flushed: now,
		requests: 1, inflight: 1, routes: map[string]bool{route: true}, frames: action == audit.Thumbnail}
	start := tmpl
	start.Detail = mergeDetail(tmpl.Detail, map[string]string{"stream": stream, "view": "start", "viewing": vs.id, "route": route})
	if err := s.appendAudit(r.Context(), start); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if cur := v.sessions[key]; cur != nil {
		// A concurrent first request won: join its session.
		cur.last = now
		cur.requests++
		cur.inflight++
		cur.routes[route] = true
		vs = cur
	} else {
		v.sessions[key] = vs
	}
	v.mu.Unlock()
	return &viewing{key: key, vs: vs}, nil
}

// viewServed adds what a response carried to its session: spans of wall
// time (frames: zero-length spans) and bytes. Every viewBegin that
// returned a handle is followed by one viewServed (after the response).
// A session holding maxViewSpans ranges writes them out, and so does one
// written out (FlushViews, eviction) while the response was sent (I/O).
func (s *Server) viewServed(ctx context.Context, h *viewing, spans []playback.Span, bytes int64) {
	if h == nil {
		return
	}
	v := &s.views
	v.mu.Lock()
	vs := h.vs
	vs.inflight = max(vs.inflight-1, 0)
	vs.last = maxTime(vs.last, s.now())
	vs.bytes += bytes
	slack := spanSlack
	if vs.frames {
		slack = 0
	}
	for _, sp := range spans {
		vs.spans = addSpan(vs.spans, sp, slack)
	}
	var full *viewSession
	if len(vs.spans) >= maxViewSpans || v.sessions[h.key] != vs && (len(vs.spans) > 0 || vs.bytes > 0) {
		full = s.snapshot(vs)
	}
	v.mu.Unlock()
	if full != nil {
		s.writeViewRanges(ctx, full, false)
	}
}

// snapshot moves what vs accumulated into a numbered copy to write out;
// s.views.mu must be held.
func (s *Server) snapshot(vs *viewSession) *viewSession {
	cp := *vs
	cp.routes = map[string]bool{}
	for k := range vs.routes {
		cp.routes[k] = true
	}
	vs.part++
	cp.part = vs.part
	vs.spans, vs.bytes, vs.requests = nil, 0, 0
	vs.routes = map[string]bool{}
	vs.flushed = s.now()
	return &cp
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// spanSlack is how far apart two served spans may be and still be one:
// the rounding of media to wall time where segments of a run abut.
const spanSlack = time.Millisecond

// addSpan inserts sp into the sorted, disjoint list, merging what it
// overlaps or abuts within slack (frames: slack 0, only equal instants
// merge).
func addSpan(list []playback.Span, sp playback.Span, slack time.Duration) []playback.Span {
	i := sort.Search(len(list), func(i int) bool { return !list[i].To.Add(slack).Before(sp.From) })
	j := i
	for j < len(list) && !list[j].From.After(sp.To.Add(slack)) {
		if list[j].From.Before(sp.From) {
			sp.From = list[j].From
		}
		if list[j].To.After(sp.To) {
			sp.To = list[j].To
		}
		j++
	}
	out := append(list[:i:i], sp)
	return append(out, list[j:]...)
}

// FlushViews writes out every open viewing session, idle or not (at
// shutdown). I/O; safe for concurrent use.
func (s *Server) FlushViews(ctx context.Context) {
	s.sweepViews(ctx, time.Duration(-1))
}

// RunViewAudit writes out idle and long viewing sessions every 30 s until
// ctx ends. FlushViews writes the rest at shutdown.
func (s *Server) RunViewAudit(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepViews(ctx, s.viewIdle())
		}
	}
}

// sweepViews writes out the sessions idle for idle (all when idle < 0)
// and the ranges so far of sessions not written for viewFlushEvery.
func (s *Server) sweepViews(ctx context.Context, idle time.Duration) {
	now := s.now()
	var done, long []*viewSession
	v := &s.views
	v.mu.Lock()
	for k, vs := range v.sessions {
		switch {
		case idle < 0 || vs.idle(now, idle):
			delete(v.sessions, k)
			done = append(done, s.snapshot(vs))
		case now.Sub(vs.flushed) >= viewFlushEvery && len(vs.spans) > 0:
			long = append(long, s.snapshot(vs))
		}
	}
	v.mu.Unlock()
	for _, vs := range done {
		s.writeViewRanges(ctx, vs, true)
	}
	for _, vs := range long {
		s.writeViewRanges(ctx, vs, false)
	}
}

// writeViewRanges writes the entry of a snapshot: "ranges" while the
// session goes on, "end" when it ended (final). A failed write is logged
// (the start entry is on record).
func (s *Server) writeViewRanges(ctx context.Context, vs *viewSession, final bool) {
	routes := make([]string, 0, len(vs.routes))
	for k := range vs.routes {
		routes = append(routes, k)
	}
	sort.Strings(routes)
	d := map[string]string{"stream": vs.stream, "view": "ranges", "viewing": vs.id,
		"part": strconv.Itoa(vs.part), "requests": strconv.Itoa(vs.requests), "bytes": strconv.FormatInt(vs.bytes, 10),
		"routes": strings.Join(routes, ","), "started": vs.started.UTC().Format(time.RFC3339Nano),
		"last": vs.last.UTC().Format(time.RFC3339Nano)}
	if final {
		d["view"] = "end"
	}
	if vs.frames {
		d["frames"] = formatFrames(vs.spans)
	} else {
		d["ranges"] = formatSpans(vs.spans)
	}
	e := vs.tmpl
	e.Detail = mergeDetail(vs.tmpl.Detail, d)
	s.views.writeMu.Lock()
	defer s.views.writeMu.Unlock()
	s.appendAudit(ctx, e) // logs the failure
}

// formatSpans writes spans as ISO 8601 intervals, comma-separated.
func formatSpans(spans []playback.Span) string {
	var b strings.Builder
	for i, sp := range spans {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sp.From.UTC().Format(time.RFC3339Nano))
		b.WriteByte('/')
		b.WriteString(sp.To.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

// formatFrames writes the instants of zero-length spans, comma-separated.
func formatFrames(spans []playback.Span) string {
	parts := make([]string, len(spans))
	for i, sp := range spans {
		parts[i] = sp.From.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join(parts, ",")
}

// whoKey is the part of a request's entry that names who asked with
// which credential: the actor and every detail field set from the
// request (the credential), not the address (a phone changes networks).
func whoKey(e audit.Entry) string {
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(e.Actor)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + e.Detail[k])
	}
	return b.String()
}

// mergeDetail returns base's fields overlaid with add's (a new map).
func mergeDetail(base, add map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(add))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}
