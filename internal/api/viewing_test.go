package api

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// span is a served range for the tests' own union.
type span struct{ from, to time.Time }

// union merges spans that overlap or abut within slack (an independent
// version of what viewing.go does).
func union(in []span, slack time.Duration) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].from.Before(in[j].from) })
	var out []span
	for _, s := range in {
		if l := len(out); l > 0 && !s.from.After(out[l-1].to.Add(slack)) {
			if s.to.After(out[l-1].to) {
				out[l-1].to = s.to
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

func headerSpan(t *testing.T, resp *http.Response) span {
	t.Helper()
	a, err1 := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Custos-From"))
	b, err2 := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Custos-To"))
	if err1 != nil || err2 != nil {
		t.Fatalf("response without X-Custos-From/To: %v", resp.Header)
	}
	return span{a, b}
}

func formatUnion(spans []span) string {
	var parts []string
	for _, s := range spans {
		parts = append(parts, s.from.UTC().Format(time.RFC3339Nano)+"/"+s.to.UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(parts, ",")
}

// viewingServer is accessServer with a second run of door (a gap between
// them), a fake clock and user watcher, who may only watch door's
// recordings (no export).
func viewingServer(t *testing.T) (*Server, string, *fakeClock) {
	t.Helper()
	s, srv := accessServer(t)
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	s.Now = clock.Now
	if _, err := s.Auth.AddUser(context.Background(), "watcher", auth.Viewer, "watcher-password",
		map[string]auth.Perm{"door": auth.PermRecordings}); err != nil {
		t.Fatal(err)
	}
	return s, srv.URL, clock
}

// settle waits for the handlers of responses already received to finish
// (they add what they sent to their session after the last byte).
func settle(t *testing.T, s *Server) {
	t.Helper()
	for i := 0; i < 500; i++ {
		busy := false
		s.views.mu.Lock()
		for _, vs := range s.views.sessions {
			busy = busy || vs.inflight > 0
		}
		s.views.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("responses still in flight after 5 s")
}

func viewEntries(t *testing.T, s *Server, actor string) []audit.Entry {
	t.Helper()
	es, err := s.Audit.Query(context.Background(), audit.Filter{Actor: actor, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Seq < es[j].Seq })
	return es
}

// TestViewingSessionRanges: a recordings-only viewer fetches every HLS
// media segment of door by id (with their init segments), fragments and
// export.mp4 range requests; the session's entries name the camera, the
// stream and exactly the union of what the responses covered, with one
// start entry written before the first byte.
func TestViewingSessionRanges(t *testing.T) {
	s, base, _ := viewingServer(t)
	var body []byte
	requests := 0
	as := func(path string, header ...string) *http.Response {
		t.Helper()
		requests++
		var resp *http.Response
		resp, body = do(t, nil, base, req{method: "GET", path: path, user: "watcher", pass: "watcher-password", header: header})
		if resp.StatusCode >= 300 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		settle(t, s)
		return resp
	}
	as(rangeURL("", "/api/cameras/door/playback.m3u8", 0, 300))
	var served []span
	var media int
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			as("/api/cameras/door/" + strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))
		case strings.HasPrefix(line, "segments/"):
			served = append(served, headerSpan(t, as("/api/cameras/door/"+line)))
			media++
		}
	}
	if media < 3 {
		t.Fatalf("playlist lists %d media segments", media)
	}
	// The same segments again (a seek back) add nothing new.
	served = append(served, headerSpan(t, as(rangeURL("", "/api/cameras/door/fragments.mp4", 10, 60))))
	if e := viewEntriesOf(viewEntries(t, s, "watcher"), "start"); len(e) != 1 || e[0].Camera != "door" || e[0].Detail["stream"] != "main" {
		t.Fatalf("start entries %+v, want one naming door/main", e)
	}
	s.FlushViews(context.Background())
	ends := viewEntriesOf(viewEntries(t, s, "watcher"), "end")
	if len(ends) != 1 {
		t.Fatalf("end entries %+v, want 1", ends)
	}
	e := ends[0]
	want := formatUnion(union(served, time.Millisecond))
	starts := viewEntriesOf(viewEntries(t, s, "watcher"), "start")
	if e.Detail["viewing"] == "" || e.Detail["viewing"] != starts[0].Detail["viewing"] {
		t.Errorf("end entry of viewing %q, start of %q", e.Detail["viewing"], starts[0].Detail["viewing"])
	}
	if e.Camera != "door" || e.Detail["stream"] != "main" || e.Detail["ranges"] != want {
		t.Errorf("end entry %+v\nranges %s\nwant   %s", e, e.Detail["ranges"], want)
	}
	t.Logf("%d requests (playlist, init, %d media segments, fragments): %d audit entries of watcher, ranges %s",
		requests, media, len(viewEntries(t, s, "watcher")), want)
	// Segment rows agree: the run's three segments, one range.
	st, _ := s.Index.Stream(context.Background(), "door", "main")
	segs, _ := s.Index.Segments(context.Background(), st.ID, pt.At(-1), pt.At(1000))
	if first, last := segs[0].Start, segs[len(segs)-1].End(); want != formatUnion([]span{{first, last}}) {
		t.Errorf("served %s, segment rows cover %s–%s", want, first, last)
	}
}

// entriesOf returns the viewing entries with detail view=kind.
func viewEntriesOf(es []audit.Entry, kind string) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if e.Detail["view"] == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestViewingExportRanges: export.mp4 range requests name only the part
// of the file they carried; a range holding only the movie header names
// no video.
func TestViewingExportRanges(t *testing.T) {
	s, base, _ := viewingServer(t)
	u := rangeURL("", "/api/cameras/door/export.mp4", 0, 300)
	resp, head := do(t, nil, base, req{method: "GET", path: u, user: "watcher", pass: "watcher-password", header: []string{"Range", "bytes=0-99"}})
	settle(t, s)
	if resp.StatusCode != 206 || len(head) != 100 {
		t.Fatalf("first 100 bytes: %s, %d bytes", resp.Status, len(head))
	}
	s.FlushViews(context.Background())
	ends := viewEntriesOf(viewEntries(t, s, "watcher"), "end")
	if len(ends) != 1 || ends[0].Detail["ranges"] != "" || ends[0].Detail["bytes"] != "100" {
		t.Fatalf("header only: %+v, want an end entry with 100 bytes and no ranges", ends)
	}
	// The whole file in range requests: the recorded video of the range
	// (the file covers 0..300 frames; the export's own headers say so).
	resp, _ = do(t, nil, base, req{method: "GET", path: u, user: "watcher", pass: "watcher-password", header: []string{"Range", "bytes=0-"}})
	settle(t, s)
	if resp.StatusCode != 206 {
		t.Fatalf("bytes=0-: %s", resp.Status)
	}
	whole := headerSpan(t, resp)
	s.FlushViews(context.Background())
	ends = viewEntriesOf(viewEntries(t, s, "watcher"), "end")
	if got := ends[len(ends)-1].Detail["ranges"]; got != formatUnion([]span{whole}) {
		t.Errorf("whole file: ranges %q, want %q", got, formatUnion([]span{whole}))
	}
}

// TestViewingIdleAndLimits: a session ends after the idle window (its
// end entry is written, the next request starts a new session), ranges
// spill into numbered entries past maxViewSpans, and a new session is
// refused (503) when its start entry cannot be written.
func TestViewingIdleAndLimits(t *testing.T) {
	s, base, clock := viewingServer(t)
	get := func(path string) int {
		resp, _ := do(t, nil, base, req{method: "GET", path: path, user: "watcher", pass: "watcher-password"})
		settle(t, s)
		return resp.StatusCode
	}
	frag := func(k float64) string { return rangeURL("", "/api/cameras/door/fragments.mp4", k, k+1) }
	if c := get(frag(0)); c != 200 {
		t.Fatalf("fragments: %d", c)
	}
	clock.Add(4 * time.Minute)
	s.sweepViews(context.Background(), s.viewIdle())
	if n := len(viewEntriesOf(viewEntries(t, s, "watcher"), "end")); n != 1 {
		t.Fatalf("%d end entries after the idle window, want 1", n)
	}
	if c := get(frag(0)); c != 200 {
		t.Fatalf("fragments: %d", c)
	}
	if n := len(viewEntriesOf(viewEntries(t, s, "watcher"), "start")); n != 2 {
		t.Errorf("%d start entries, want 2 (a new session after idling)", n)
	}
	// Disjoint ranges spill into a numbered entry at maxViewSpans.
	h := s.testHandle(t, "watcher")
	for i := 0; i < maxViewSpans+5; i++ {
		at := pt.T0.Add(time.Duration(i) * time.Second)
		s.views.mu.Lock()
		h.vs.inflight++ // as viewBegin does
		s.views.mu.Unlock()
		s.viewServed(context.Background(), h, []playback.Span{{From: at, To: at.Add(100 * time.Millisecond)}}, 1)
	}
	rs := viewEntriesOf(viewEntries(t, s, "watcher"), "ranges")
	if len(rs) != 1 || rs[0].Detail["part"] != "1" || strings.Count(rs[0].Detail["ranges"], ",") != maxViewSpans-1 {
		t.Fatalf("after %d disjoint ranges: %+v, want one entry of %d", maxViewSpans+5, rs, maxViewSpans)
	}
	// Long viewing: written every viewFlushEvery even while active.
	for i := 0; i < 5; i++ {
		clock.Add(viewFlushEvery / 4)
		get(frag(float64(100 + 20*i)))
	}
	s.sweepViews(context.Background(), s.viewIdle())
	if rs := viewEntriesOf(viewEntries(t, s, "watcher"), "ranges"); len(rs) != 2 || rs[1].Detail["part"] != "2" {
		t.Errorf("ranges entries of a long viewing %+v, want a second one", rs)
	}
	s.Audit.Close()
	clock.Add(time.Hour)
	if c := get(frag(0)); c != http.StatusServiceUnavailable {
		t.Errorf("new session with the audit log closed: %d, want 503", c)
	}
}

// testHandle returns the handle of actor's open playback session of door.
func (s *Server) testHandle(t *testing.T, actor string) *viewing {
	t.Helper()
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	for k, vs := range s.views.sessions {
		if vs.tmpl.Actor == actor && k.action == audit.Playback {
			return &viewing{key: k, vs: vs}
		}
	}
	t.Fatalf("no open session of %s", actor)
	return nil
}

// TestViewingThumbnails: thumbnails of the timeline are one session
// naming every frame shown; many spill into numbered entries.
func TestViewingThumbnails(t *testing.T) {
	testpeer.FFmpeg(t)
	s, base, _ := viewingServer(t)
	var frames []string
	seen := map[string]bool{}
	for k := 0; k < 300; k += 10 {
		u := "/api/cameras/door/thumbnail.jpg?width=160&at=" + url.QueryEscape(pt.At(float64(k)).Format(time.RFC3339Nano))
		resp, body := do(t, nil, base, req{method: "GET", path: u, user: "watcher", pass: "watcher-password"})
		settle(t, s)
		if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte{0xff, 0xd8}) {
			t.Fatalf("thumbnail: %s", resp.Status)
		}
		if at := resp.Header.Get("X-Custos-Frame-Time"); !seen[at] {
			seen[at] = true
			frames = append(frames, at)
		}
	}
	s.FlushViews(context.Background())
	es := viewEntries(t, s, "watcher")
	t.Logf("30 thumbnails (%d distinct frames): %d audit entries", len(frames), len(es))
	if st := viewEntriesOf(es, "start"); len(st) != 1 || st[0].Action != audit.Thumbnail {
		t.Fatalf("start entries %+v, want one thumbnail session", st)
	}
	ends := viewEntriesOf(es, "end")
	if len(ends) != 1 || ends[0].Detail["frames"] != strings.Join(frames, ",") {
		t.Errorf("end entries %+v, want frames %v", ends, frames)
	}
}
