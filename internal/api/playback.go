package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/playback"
	"github.com/custos-nvr/custos/internal/thumb"
)

// playbackRoutes registers the routes that serve recorded video.
func (s *Server) playbackRoutes(mux *http.ServeMux, routes *[]Route) {
	rec := cameraPerm(auth.PermRecordings)
	s.handle(mux, routes, "GET /api/cameras/{name}/export.mp4", access{perm: exportPerm}, s.export)
	s.handle(mux, routes, "GET /api/cameras/{name}/fragments.mp4", rec, s.fragments)
	s.handle(mux, routes, "GET /api/cameras/{name}/playback.m3u8", rec, s.playlist)
	s.handle(mux, routes, "GET /api/cameras/{name}/segments/{id}/init.mp4", rec, s.segmentInit)
	s.handle(mux, routes, "GET /api/cameras/{name}/segments/{id}/frags.m4s", rec, s.segmentFrags)
	s.handle(mux, routes, "GET /api/cameras/{name}/thumbnail.jpg", rec, s.thumbnail)
}

// cameraStream resolves {name} and ?stream= (main by default) of a
// request, or writes the error and returns ok false.
func (s *Server) cameraStream(w http.ResponseWriter, r *http.Request) (camera, stream string, ok bool) {
	name := r.PathValue("name")
	cam, found := s.camera(name)
	if !found {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return "", "", false
	}
	stream = r.URL.Query().Get("stream")
	if stream == "" {
		stream = "main"
	}
	if stream != "main" && !(stream == "sub" && len(cam.Streams) > 1) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("camera %q has no stream %q", name, stream)})
		return "", "", false
	}
	if s.Playback == nil {
		s.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Message: "playback is not configured"})
		return "", "", false
	}
	return name, stream, true
}

// serveFile sends a virtual file with Range, If-Range, If-None-Match and
// HEAD handled by http.ServeContent. A segment deleted while the body is
// being sent cuts the response short (the client sees a short body). It
// returns the byte extents of the file it sent (for the audit).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, f *playback.File, attachment bool) [][2]int64 {
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	if f.ETag != "" {
		h.Set("ETag", f.ETag)
	}
	h.Set("Cache-Control", "private, no-cache")
	if !f.From.IsZero() {
		h.Set("X-Custos-From", f.From.UTC().Format(time.RFC3339Nano))
		h.Set("X-Custos-To", f.To.UTC().Format(time.RFC3339Nano))
	}
	if ev := f.Evidence; ev != nil {
		setEvidenceHeaders(h, ev)
	}
	if attachment {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	}
	rd := f.Open(r.Context())
	defer rd.Close()
	if r.Method == http.MethodGet && !conditional(r) {
		// The whole file: sent part by part, stored bytes with sendfile.
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", strconv.FormatInt(f.Size(), 10))
		if !f.ModTime.IsZero() {
			h.Set("Last-Modified", f.ModTime.UTC().Format(http.TimeFormat))
		}
		w.WriteHeader(http.StatusOK)
		n, err := rd.Send(w)
		if err != nil {
			// The status is sent: all that is left is to cut the body
			// short, which the client sees as a short read. A client that
			// goes away is routine; a segment that vanished is worth a word.
			level := slog.LevelDebug
			if errors.Is(err, playback.ErrMissingFile) {
				level = slog.LevelWarn
			}
			s.logger().Log(r.Context(), level, "api: response cut short", "path", r.URL.Path, "err", err)
		}
		return [][2]int64{{0, n}}
	}
	tr := &trackedReader{rd: rd}
	http.ServeContent(w, r, f.Name, f.ModTime, tr)
	if r.Method == http.MethodHead {
		return nil
	}
	return tr.ext
}

// trackedReader records the extents read from a file (what
// http.ServeContent sent of it).
type trackedReader struct {
	rd  *playback.Reader
	pos int64
	ext [][2]int64
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.rd.Read(p)
	if n > 0 {
		if l := len(t.ext); l > 0 && t.ext[l-1][1] == t.pos {
			t.ext[l-1][1] += int64(n)
		} else {
			t.ext = append(t.ext, [2]int64{t.pos, t.pos + int64(n)})
		}
		t.pos += int64(n)
	}
	return n, err
}

func (t *trackedReader) Seek(off int64, whence int) (int64, error) {
	pos, err := t.rd.Seek(off, whence)
	t.pos = pos
	return pos, err
}

// served is the wall-clock video in the extents sent of f.
func served(f *playback.File, ext [][2]int64) (spans []playback.Span, bytes int64) {
	for _, e := range ext {
		spans = append(spans, f.Spans(e[0], e[1])...)
		bytes += e[1] - e[0]
	}
	return spans, bytes
}

// setEvidenceHeaders says what an evidence export covers
// (docs/api.md): X-Custos-Part and X-Custos-Parts (this file's place and
// how many files the range needs: fetch the others with part=N),
// X-Custos-Covered (every part's exact range, "FROM/TO" comma-separated)
// and X-Custos-Gaps ("FROM/TO REASON" comma-separated, or "none").
func setEvidenceHeaders(h http.Header, ev *playback.EvidenceInfo) {
	h.Set("X-Custos-Part", strconv.Itoa(ev.Part))
	h.Set("X-Custos-Parts", strconv.Itoa(len(ev.Parts)))
	var cov, gaps []string
	for _, p := range ev.Parts {
		cov = append(cov, p.From.UTC().Format(time.RFC3339Nano)+"/"+p.To.UTC().Format(time.RFC3339Nano))
	}
	for _, g := range ev.Gaps {
		gaps = append(gaps, g.From.UTC().Format(time.RFC3339Nano)+"/"+g.To.UTC().Format(time.RFC3339Nano)+" "+g.Reason)
	}
	if len(gaps) == 0 {
		gaps = []string{"none"}
	}
	h.Set("X-Custos-Covered", strings.Join(cov, ", "))
	h.Set("X-Custos-Gaps", strings.Join(gaps, ", "))
}

// conditional reports a request that http.ServeContent must answer: a
// range or any precondition.
func conditional(r *http.Request) bool {
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if r.Header.Get(k) != "" {
			return true
		}
	}
	return false
}

// rangeRequest resolves camera, stream and [from, to) of a request, or
// writes the error and returns ok false.
func (s *Server) rangeRequest(w http.ResponseWriter, r *http.Request) (cam, stream string, from, to time.Time, ok bool) {
	if cam, stream, ok = s.cameraStream(w, r); !ok {
		return
	}
	from, to, err := parseRange(r, 0)
	if err != nil {
		s.writeError(w, r, err)
		return cam, stream, from, to, false
	}
	return cam, stream, from, to, true
}

// serveRange answers a range route with the virtual file build makes.
// A whole file (an attachment: a download or an evidence export; or
// export.mp4 fetched without Range), which needs the export permission,
// gets an export entry before any byte is sent; anything else is a
// viewing (viewBegin), bounded for users without export (boundPlayer).
func (s *Server) serveRange(w http.ResponseWriter, r *http.Request, attachment bool,
	build func(ctx context.Context, cam, stream string, from, to time.Time) (*playback.File, error)) {
	cam, stream, from, to, ok := s.rangeRequest(w, r)
	if !ok {
		return
	}
	route := path.Base(r.URL.Path)
	if !attachment && route == "fragments.mp4" && s.playerOnly(r) && to.Sub(from) > playerWindow {
		s.writeError(w, r, &Error{Status: http.StatusForbidden, Message: fmt.Sprintf(
			"fragments.mp4 of more than %s at once needs the export permission on camera %q", playerWindow, cam)})
		return
	}
	// Refused before the file is assembled (and before "no video here"
	// could tell a user without export anything).
	whole := attachment || route == "export.mp4" && r.Header.Get("Range") == "" && r.Method != http.MethodHead
	if whole && s.playerOnly(r) {
		s.writeError(w, r, &Error{Status: http.StatusForbidden, Message: "export.mp4 without a Range header is a whole-file download: " +
			"it needs the export permission (a player sends Range requests)"})
		return
	}
	f, err := build(r.Context(), cam, stream, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if whole {
		// A download that resumes sends a few requests: one entry per
		// range and minute, naming the range the file holds.
		detail := map[string]string{"stream": stream, "from": f.From.UTC().Format(time.RFC3339Nano),
			"to": f.To.UTC().Format(time.RFC3339Nano), "route": route, "bytes": strconv.FormatInt(f.Size(), 10),
			"requested_from": from.UTC().Format(time.RFC3339Nano), "requested_to": to.UTC().Format(time.RFC3339Nano)}
		if r.URL.Query().Get("evidence") != "" {
			detail["evidence"] = "1"
		}
		if f.Evidence != nil {
			detail["part"] = fmt.Sprintf("%d/%d", f.Evidence.Part, len(f.Evidence.Parts))
		}
		if !s.auditView(w, r, time.Minute, stream+detail["from"]+detail["to"]+detail["part"], audit.Export, cam, detail) {
			return
		}
		s.serveFile(w, r, f, attachment)
		return
	}
	s.serveView(w, r, f, cam, stream, route)
}

// serveView sends f as part of the request's viewing session of camera's
// stream, bounded by boundPlayer, and adds what it sent to the session.
func (s *Server) serveView(w http.ResponseWriter, r *http.Request, f *playback.File, cam, stream, route string) {
	if s.playerOnly(r) {
		max := s.PlayerRangeBytes
		if max <= 0 {
			max = playerRangeBytes
		}
		if err := boundPlayer(r, f, route, max); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	h, err := s.viewBegin(r, audit.Playback, cam, stream, route)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	spans, n := served(f, s.serveFile(w, r, f, false))
	s.viewServed(r.Context(), h, spans, n)
}

// What a user with the recordings permission but not export gets
// (docs/security.md, "Roles and grants"): what a player needs and no
// whole-file download in one request.
const (
	// playerRangeBytes (Server.PlayerRangeBytes) bounds one Range
	// response of export.mp4: a longer
	// or open-ended range is cut (206 with the Content-Range actually
	// sent; players ask for the rest).
	playerRangeBytes = 8 << 20
	// playerWindow bounds the video of one fragments.mp4 or frags.m4s
	// response.
	playerWindow = 2 * time.Minute
)

// playerOnly reports a request by a user without the export permission
// on the {name} camera.
func (s *Server) playerOnly(r *http.Request) bool {
	p := who(r)
	return p == nil || !p.user.Can(r.PathValue("name"), auth.PermExport)
}

// boundPlayer holds a request of a user without export to what a player
// sends: export.mp4 only as a single Range request (serveRange refuses
// one without: a download), cut to maxBytes; any other file at most
// playerWindow long, and Range requests of it cut the same way. If-Range
// is dropped: a failed If-Range would send the whole file. HEAD requests
// send no video and pass.
func boundPlayer(r *http.Request, f *playback.File, route string, maxBytes int64) error {
	if r.Method == http.MethodHead {
		return nil
	}
	if route != "export.mp4" && f.To.Sub(f.From) > playerWindow {
		return &Error{Status: http.StatusForbidden, Message: fmt.Sprintf(
			"%s of more than %s at once needs the export permission", route, playerWindow)}
	}
	r.Header.Del("If-Range")
	rng := r.Header.Get("Range")
	if rng == "" {
		return nil // export.mp4 without Range is a download (serveRange)
	}
	bounded, err := boundRange(rng, f.Size(), maxBytes)
	if err != nil {
		return err
	}
	r.Header.Set("Range", bounded)
	return nil
}

// boundRange rewrites a single-range Range header value so that it asks
// for at most max bytes of a file of size bytes. A range starting past
// the end is left for http.ServeContent to refuse (416).
func boundRange(h string, size, max int64) (string, error) {
	bad := &Error{Status: http.StatusRequestedRangeNotSatisfiable,
		Message: fmt.Sprintf("Range %q: send one range, bytes=FIRST-[LAST] or bytes=-SUFFIX", h)}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return "", bad
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return "", bad
	}
	var start, end int64
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return "", bad
		}
		start, end = max64(size-n, 0), size-1
	} else {
		var err error
		if start, err = strconv.ParseInt(a, 10, 64); err != nil || start < 0 {
			return "", bad
		}
		end = size - 1
		if b != "" {
			if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
				return "", bad
			}
		}
	}
	if start >= size {
		return h, nil
	}
	end = min(end, size-1, start+max-1)
	return fmt.Sprintf("bytes=%d-%d", start, end), nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// auditView is auditOnce for an export download: it writes the error and
// returns false when the entry cannot be written, so nothing is sent
// unrecorded.
func (s *Server) auditView(w http.ResponseWriter, r *http.Request, window time.Duration, key, action, camera string, detail map[string]string) bool {
	if r.Method == http.MethodHead {
		return true // no video is sent (the UI sizes an export this way)
	}
	if err := s.auditOnce(r, window, key, action, camera, detail); err != nil {
		s.writeError(w, r, err)
		return false
	}
	return true
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("evidence") != "" {
		if s.Chains == nil || s.RecorderKey == nil {
			s.writeError(w, r, &Error{Status: http.StatusNotImplemented, Message: "this server keeps no hash chains"})
			return
		}
		part := 1
		if p := r.URL.Query().Get("part"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("part %q is not a positive integer", p)})
				return
			}
			part = n
		}
		s.serveRange(w, r, true, func(ctx context.Context, cam, stream string, from, to time.Time) (*playback.File, error) {
			return s.Playback.Evidence(ctx, cam, stream, from, to, part, s.Chains, s.RecorderKey)
		})
		return
	}
	s.serveRange(w, r, r.URL.Query().Get("download") != "", s.Playback.Export)
}

// exportPerm: downloading a clip (or an evidence export) needs the export
// permission; playing export.mp4 in a player (no download=) is playback,
// bounded for users without export (boundPlayer).
func exportPerm(r *http.Request) auth.Perm {
	if q := r.URL.Query(); q.Get("download") != "" || q.Get("evidence") != "" {
		return auth.PermExport
	}
	return auth.PermRecordings
}

func (s *Server) fragments(w http.ResponseWriter, r *http.Request) {
	s.serveRange(w, r, false, s.Playback.Fragments)
}

func (s *Server) playlist(w http.ResponseWriter, r *http.Request) {
	cam, stream, from, to, ok := s.rangeRequest(w, r)
	if !ok {
		return
	}
	pl, err := s.Playback.Playlist(r.Context(), cam, stream, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A playlist holds no video: it starts (or continues) the viewing
	// session whose media segments name the ranges.
	view, err := s.viewBegin(r, audit.Playback, cam, stream, "playback.m3u8")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.viewServed(r.Context(), view, nil, 0)
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "private, no-cache")
	h.Set("ETag", pl.ETag)
	h.Set("X-Custos-From", pl.From.UTC().Format(time.RFC3339Nano))
	h.Set("X-Custos-To", pl.To.UTC().Format(time.RFC3339Nano))
	if match := r.Header.Get("If-None-Match"); match != "" && match == pl.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(pl.Body)
}

// segmentID parses {id} and the optional first/n query of a segment route.
func segmentID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("segment id %q is not a positive integer", r.PathValue("id"))}
	}
	return id, nil
}

func (s *Server) segmentInit(w http.ResponseWriter, r *http.Request) {
	cam, stream, ok := s.cameraStream(w, r)
	if !ok {
		return
	}
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := s.Playback.SegmentInit(r.Context(), cam, stream, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveView(w, r, f, cam, stream, path.Base(r.URL.Path))
}

func (s *Server) segmentFrags(w http.ResponseWriter, r *http.Request) {
	cam, stream, ok := s.cameraStream(w, r)
	if !ok {
		return
	}
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	first, err1 := strconv.Atoi(q.Get("first"))
	n, err2 := strconv.Atoi(q.Get("n"))
	if err1 != nil || err2 != nil || first < 0 || n <= 0 {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("first=%q and n=%q must be integers, first ≥ 0 and n ≥ 1", q.Get("first"), q.Get("n"))})
		return
	}
	f, err := s.Playback.SegmentFragments(r.Context(), cam, stream, id, first, n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveView(w, r, f, cam, stream, path.Base(r.URL.Path))
}

func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	cam, stream, ok := s.cameraStream(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	at, err := time.Parse(time.RFC3339Nano, q.Get("at"))
	if err != nil {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("at=%q is not an RFC 3339 time", q.Get("at"))})
		return
	}
	width := 0
	if v := q.Get("width"); v != "" {
		if width, err = strconv.Atoi(v); err != nil || width < 16 || width > thumb.MaxWidth {
			s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("width=%q must be an integer from 16 to %d", v, thumb.MaxWidth)})
			return
		}
	}
	if s.Thumbs == nil {
		s.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Message: "thumbnails are not configured"})
		return
	}
	kf, err := s.Playback.KeyFrame(r.Context(), cam, stream, at)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The frame shown is part of the viewer's thumbnail session (the
	// browser shows its copy on a 304).
	frame := []playback.Span{{From: kf.At, To: kf.At}}
	etag := `"` + kf.ID + "-" + strconv.Itoa(width) + `"`
	if r.Header.Get("If-None-Match") == etag {
		view, err := s.viewBegin(r, audit.Thumbnail, cam, stream, "thumbnail.jpg")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNotModified)
		s.viewServed(r.Context(), view, frame, 0)
		return
	}
	jpeg, err := s.Thumbs.JPEG(r.Context(), kf.Codec, kf.AnnexB, kf.ID, width)
	if errors.Is(err, thumb.ErrNoDecoder) {
		s.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Message: err.Error()})
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	view, err := s.viewBegin(r, audit.Thumbnail, cam, stream, "thumbnail.jpg")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("X-Custos-Frame-Time", kf.At.UTC().Format(time.RFC3339Nano))
	w.Write(jpeg)
	s.viewServed(r.Context(), view, frame, int64(len(jpeg)))
}
