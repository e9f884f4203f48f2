package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// evalJS evaluates expr in the tab of ctx and returns its value.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// pollJS evaluates expr every 100 ms until it is truthy (at most limit)
// and returns its value.
func pollJS[T any](t *testing.T, ctx context.Context, what, expr string, limit time.Duration) T {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	v, err := chromedp.Run(pctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// barGeom is where the timeline's bar is on the screen and which times its
// edges show.
type barGeom struct {
	Left, Width, Y float64
	Start, End     float64 // ms since the epoch
}

// barAt returns the timeline's geometry (after scrolling it into view).
func barAt(t *testing.T, ctx context.Context) barGeom {
	t.Helper()
	return evalJS[barGeom](t, ctx, `(() => {
		const bar = document.querySelector('.tl-bar');
		bar.scrollIntoView({block: 'center'});
		const r = bar.getBoundingClientRect();
		return {left: r.left, width: r.width, y: r.top + r.height / 2, start: Number(bar.dataset.start), end: Number(bar.dataset.end)};
	})()`)
}

// x is the screen x of wall time ms on the bar.
func (g barGeom) x(ms float64) float64 { return g.Left + (ms-g.Start)/(g.End-g.Start)*g.Width }

// msPerPx is the time one pixel of the bar covers.
func (g barGeom) msPerPx() float64 { return (g.End - g.Start) / g.Width }

// buttons sets the mouse buttons held during an event.
func buttons(b int64) chromedp.MouseOption {
	return func(p *input.DispatchMouseEventParams) { p.Buttons = b }
}

// localMS parses a datetime-local input's value as local time (ms); the
// input leaves out the seconds when they are zero.
func localMS(t *testing.T, v string) float64 {
	t.Helper()
	layout := "2006-01-02T15:04:05"
	if len(v) == len("2006-01-02T15:04") {
		layout = "2006-01-02T15:04"
	}
	tm, err := time.ParseInLocation(layout, v, time.Local)
	if err != nil {
		t.Fatalf("input value %q: %v", v, err)
	}
	return float64(tm.UnixMilli())
}

// tlRun is a recorded run as the page's timeline holds it.
type tlRun struct {
	S, E float64
	Rec  bool
}

// TestUICameraPageTimes drives the camera page's timeline in Chromium
// (issue 19 items 1-3): it refreshes by itself so the run being recorded
// grows and the view follows now (with a now marker); hovering over a
// recording at a known pixel previews that time, and a shift-drag selects
// the times under the pointer (the pointer's offset is taken from the
// whole timeline, not the coloured run under it); a click in the gap
// before the first recording plays the next recorded frame and the
// page's clock, playhead and Mark in show that frame's time, the
// X-Custos-From the server answered; the 1-week view ends at now, and
// tick labels stay inside the timeline.
func TestUICameraPageTimes(t *testing.T) {
	base := uiServer(t, 6)
	ctx := testpeer.Browser(t)
	if _, err := testpeer.EvalPage[bool](t, ctx, base+"/#/camera/door",
		`!!(window.custos && custos.timeline.loads > 0 && document.querySelector('.tl-run'))`, 30*time.Second); err != nil {
		t.Fatalf("camera page: %v", err)
	}

	// Item 3: without any interaction the recordings are loaded again
	// and the run being recorded grows; the view moves along with now.
	type tlState struct {
		Loads int
		End   float64 // the recording run's end
		View  float64 // the view's right edge
		Now   float64
		Mark  float64 // where the now marker is, as a time
	}
	state := `(() => {
		const tl = custos.timeline, r = tl.runs.find((x) => x.rec), m = document.querySelector('.tl-now');
		const b = tl.bar.getBoundingClientRect();
		return r && m ? {loads: tl.loads, end: r.e, view: tl.end, now: Date.now(),
			mark: tl.start + (m.getBoundingClientRect().left + 1 - b.left) / b.width * tl.span} : null;
	})()`
	s0 := pollJS[tlState](t, ctx, "timeline state", state, 10*time.Second)
	if d := math.Abs(s0.Mark - s0.Now); d > 2000 {
		t.Errorf("the now marker is at %s, %.0f ms from now", time.UnixMilli(int64(s0.Mark)), d)
	}
	s1 := pollJS[tlState](t, ctx, "a refresh that grows the recording run", fmt.Sprintf(`(() => {
		const s = %s;
		return s && s.loads > %d && s.end > %f + 5000 ? s : null;
	})()`, state, s0.Loads, s0.End), 30*time.Second)
	if s1.View-s0.View < 5000 {
		t.Errorf("the view did not follow now: its end moved %.0f ms while the run grew %.0f ms", s1.View-s0.View, s1.End-s0.End)
	}
	t.Logf("refresh: run end +%.1f s, view end +%.1f s", (s1.End-s0.End)/1000, (s1.View-s0.View)/1000)

	// Zoom in to 3 minutes so the recording is a few hundred pixels wide.
	evalJS[bool](t, ctx, `(() => { custos.timeline.setSpan(180e3); return true })()`)
	runs := pollJS[[]tlRun](t, ctx, "zoomed timeline", `(() => {
		const tl = custos.timeline;
		return tl.span === 180e3 && document.querySelector('.tl-run') ? [...tl.runs].sort((a, b) => a.s - b.s) : null;
	})()`, 10*time.Second)
	first := runs[0]
	g := barAt(t, ctx)
	if first.S < g.Start+65e3 || first.E > g.End {
		t.Fatalf("the first run %v is not within the view %.0f–%.0f with a minute before it", first, g.Start, g.End)
	}

	// Item 2: hover over the middle of the recording.
	mid := (first.S + first.E) / 2
	if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, g.x(mid), g.Y)); err != nil {
		t.Fatal(err)
	}
	type hoverState struct {
		T    float64
		Text string
	}
	h := pollJS[hoverState](t, ctx, "hover preview", `(() => {
		const p = document.querySelector('.tl-preview');
		return p.hidden ? null : {t: Number(p.dataset.t), text: p.querySelector('span').textContent};
	})()`, 5*time.Second)
	if math.Abs(h.T-mid) > 2*g.msPerPx() || strings.Contains(h.Text, "no recording") {
		t.Errorf("hovering at %s (mid-recording): preview of %s, %q", time.UnixMilli(int64(mid)), time.UnixMilli(int64(h.T)), h.Text)
	}
	// A shift-drag from one second into the recording to one second
	// before the end of the view's copy of it.
	a, b := first.S+1000, math.Min(first.E, g.End)-1000
	shift := chromedp.ButtonModifiers(chromedp.ModifierShift)
	for _, ev := range []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(chromedp.MouseMoved, g.x(a), g.Y),
		chromedp.MouseEvent(chromedp.MousePressed, g.x(a), g.Y, chromedp.ButtonLeft, chromedp.ClickCount(1), shift),
		chromedp.MouseEvent(chromedp.MouseMoved, (g.x(a)+g.x(b))/2, g.Y, buttons(1), shift),
		chromedp.MouseEvent(chromedp.MouseMoved, g.x(b), g.Y, buttons(1), shift),
		chromedp.MouseEvent(chromedp.MouseReleased, g.x(b), g.Y, chromedp.ButtonLeft, chromedp.ClickCount(1), shift),
	} {
		if err := chromedp.Do(ctx, ev); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	type selState struct {
		Sel      []float64
		From, To string
	}
	sel := evalJS[selState](t, ctx, `({sel: custos.timeline.sel, from: document.getElementById('ex-from').value, to: document.getElementById('ex-to').value})`)
	tol := 2 * g.msPerPx()
	if len(sel.Sel) != 2 || math.Abs(sel.Sel[0]-a) > tol || math.Abs(sel.Sel[1]-b) > tol {
		t.Errorf("shift-drag %s–%s selected %v (tolerance %.0f ms)", time.UnixMilli(int64(a)), time.UnixMilli(int64(b)), sel.Sel, tol)
	}
	if f, to := localMS(t, sel.From), localMS(t, sel.To); math.Abs(f-a) > 1000+tol || math.Abs(to-b) > 1000+tol {
		t.Errorf("shift-drag %s–%s: From %s, To %s", time.UnixMilli(int64(a)).Local(), time.UnixMilli(int64(b)).Local(), sel.From, sel.To)
	}

	// Item 1: a click a minute before the first recording plays the
	// first recorded frame; everything on the page shows its time.
	clicked := first.S - 60e3
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(g.x(clicked), g.Y)); err != nil {
		t.Fatal(err)
	}
	type played struct {
		Start float64
		Src   string
	}
	p := pollJS[played](t, ctx, "recorded playback", `(() => {
		const c = window.custos, v = c.video;
		if (c.recordedStart() === null || !(v.videoWidth > 0 && v.currentTime > 0.5)) return null;
		v.pause();
		return {start: c.recordedStart(), src: v.currentSrc};
	})()`, 30*time.Second)
	time.Sleep(600 * time.Millisecond) // the page's clock ticks every 250 ms
	evalJS[bool](t, ctx, `(() => { document.getElementById('mark-in').click(); return true })()`)
	type shownState struct {
		Current       float64 // the video's currentTime (s)
		Clock, Head   float64
		MarkIn, Start float64
		MarkInText    string
	}
	sh := evalJS[shownState](t, ctx, `({current: custos.video.currentTime, clock: Number(document.getElementById('time').dataset.t),
		head: custos.timeline.playhead, start: custos.recordedStart(), markInText: document.getElementById('ex-from').value})`)
	u, err := url.Parse(p.Src)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodHead, base+u.RequestURI(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	xFrom, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Custos-From"))
	if err != nil {
		t.Fatalf("X-Custos-From of %s: %v", u.RequestURI(), err)
	}
	server := float64(xFrom.UnixMilli())
	if server-clicked < 50e3 {
		t.Fatalf("the click at %s was not in a gap: the server plays from %s", time.UnixMilli(int64(clicked)), xFrom)
	}
	onScreen := server + sh.Current*1000
	if math.Abs(sh.Start-server) > 100 {
		t.Errorf("the page counts from %s, the server's video starts at %s (clicked %s)", time.UnixMilli(int64(sh.Start)), xFrom, time.UnixMilli(int64(clicked)))
	}
	if math.Abs(sh.Clock-onScreen) > 100 || math.Abs(sh.Head-onScreen) > 100 {
		t.Errorf("frame on screen is at %s; the clock shows %s, the playhead %s", time.UnixMilli(int64(onScreen)),
			time.UnixMilli(int64(sh.Clock)), time.UnixMilli(int64(sh.Head)))
	}
	if m := localMS(t, sh.MarkInText); onScreen-m < 0 || onScreen-m >= 1000 {
		t.Errorf("Mark in set From to %s, the frame on screen is at %s", sh.MarkInText, time.UnixMilli(int64(onScreen)).Local())
	}
	mode := evalJS[string](t, ctx, `document.querySelector('.mode').textContent`)
	if !strings.Contains(mode, "next recording") {
		t.Errorf("mode line after a click in a gap: %q", mode)
	}

	// Item 3: the 1-week view ends at now; no tick label sticks out of the
	// timeline, even with a tick one second from its right edge.
	evalJS[bool](t, ctx, `(() => { const s = document.getElementById('span'); s.value = '604800000'; s.dispatchEvent(new Event('change')); return true })()`)
	week := pollJS[[]float64](t, ctx, "1-week view", `custos.timeline.span === 604800000 ? [custos.timeline.end, Date.now()] : null`, 10*time.Second)
	if d := week[0] - week[1]; d < 0 || d > 61e3 {
		t.Errorf("the 1-week view ends %.0f s after now, want within a minute", d/1000)
	}
	labels := `(() => {
		const box = document.getElementById('timeline').getBoundingClientRect();
		const out = [...document.querySelectorAll('.tl-ticks span')].filter((s) => {
			const r = s.getBoundingClientRect();
			return r.left < box.left - 0.5 || r.right > box.right + 0.5;
		}).map((s) => s.textContent);
		return [document.querySelectorAll('.tl-ticks span').length, ...out];
	})()`
	for _, span := range []string{"900000", "3600000", "21600000", "86400000", "604800000"} {
		got := evalJS[[]any](t, ctx, fmt.Sprintf(`(() => {
			const tl = custos.timeline;
			tl.setSpan(%s);
			// Put a tick (at the step render uses) one second inside the right edge.
			const step = {900000: 300e3, 3600000: 900e3, 21600000: 3600e3, 86400000: 3 * 3600e3, 604800000: 86400e3}[%s];
			const off = new Date().getTimezoneOffset() * 60e3;
			tl.end = Math.floor((Date.now() - off) / step) * step + off + 1000;
			tl.render();
			return %s;
		})()`, span, span, labels))
		if n, _ := got[0].(float64); n < 2 || len(got) > 1 {
			t.Errorf("zoom %s ms: %v labels, these outside the timeline: %v", span, got[0], got[1:])
		}
	}
	screenshot(t, ctx, "camera-week.png")
}

// TestUICameraStreamChoice opens the camera page of a camera whose main
// stream is H.265 (which Debian's Chromium cannot decode) and whose
// sub-stream is H.264 (issue 19 item 4): the page plays the sub-stream,
// live and recorded, and shows a switch; switching to main shows why
// nothing plays, the choice is remembered across a reload, and switching
// back plays again; a page that does not know the codecs tries main and
// moves to sub by itself. A camera with one stream shows no switch.
func TestUICameraStreamChoice(t *testing.T) {
	base, _ := uiServerCodec(t, 4, media.CodecH265)
	ctx := testpeer.Browser(t)
	type view struct {
		Stream    string
		Switch    string
		Width     int
		Transport string
		Overlay   string
	}
	const viewJS = `(() => {
		const c = window.custos;
		if (!c) return null;
		const v = c.video, box = document.getElementById('stream-box');
		return {stream: c.stream(), switch: box.hidden ? '' : document.getElementById('stream').value,
			width: v.videoWidth, transport: v.dataset.transport || '', overlay: document.querySelector('.player .overlay').textContent};
	})()`
	playing := func(what, stream string) view {
		t.Helper()
		return pollJS[view](t, ctx, what, fmt.Sprintf(`(() => { const s = %s; return s && s.stream === %q && s.width > 0 && !custos.video.paused ? s : null })()`, viewJS, stream), 30*time.Second)
	}
	v, err := testpeer.EvalPage[view](t, ctx, base+"/#/camera/door", fmt.Sprintf(`(() => { const s = %s; return s && s.width > 0 ? s : null })()`, viewJS), 30*time.Second)
	if err != nil {
		t.Fatalf("door's camera page: %v", err)
	}
	if v.Stream != "sub" || v.Switch != "sub" || v.Width != 640 {
		t.Errorf("door (H.265 main, H.264 sub) live: %+v, want the 640 px sub-stream with the switch on sub", v)
	}
	// Recorded: a click on the timeline plays the sub-stream's recording.
	g := barAt(t, ctx)
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(g.x(float64(time.Now().Add(-3*time.Second).UnixMilli())), g.Y)); err != nil {
		t.Fatal(err)
	}
	rec := pollJS[[]any](t, ctx, "recorded sub-stream", `(() => {
		const c = custos, v = c.video;
		return c.recordedStart() !== null && v.videoWidth > 0 && v.currentTime > 0.3 ? [v.videoWidth, v.currentSrc] : null;
	})()`, 30*time.Second)
	if w, _ := rec[0].(float64); w != 640 || !strings.Contains(rec[1].(string), "stream=sub") {
		t.Errorf("recorded playback: %v, want 640 px from stream=sub", rec)
	}
	// Switch to main: recorded H.265 cannot play here, and the page says so.
	evalJS[bool](t, ctx, `(() => { document.getElementById('live').click(); const s = document.getElementById('stream'); s.value = 'main'; s.dispatchEvent(new Event('change')); return true })()`)
	msg := pollJS[view](t, ctx, "main stream refused", fmt.Sprintf(`(() => { const s = %s; return s && s.stream === 'main' && /H\.265|cannot decode/.test(s.overlay) ? s : null })()`, viewJS), 40*time.Second)
	t.Logf("on main: %q", msg.Overlay)
	// Remembered: a reload opens on main; switching back plays the sub-stream.
	if _, err := testpeer.EvalPage[bool](t, ctx, base+"/?again=1#/camera/door", `!!(window.custos && custos.stream() === 'main' && document.getElementById('stream').value === 'main')`, 30*time.Second); err != nil {
		t.Fatalf("choice not remembered: %v", err)
	}
	evalJS[bool](t, ctx, `(() => { const s = document.getElementById('stream'); s.value = 'sub'; s.dispatchEvent(new Event('change')); return true })()`)
	if v := playing("back on sub", "sub"); v.Width != 640 {
		t.Errorf("back on sub: %+v", v)
	}
	// A page that does not know the codecs yet (the server reports none
	// before a stream's first frame) and nothing chosen: it tries main,
	// finds it cannot decode it, and moves to the sub-stream by itself.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		const f = window.fetch.bind(window);
		window.fetch = async (input, init) => {
			const r = await f(input, init);
			if (!String(input).endsWith('/api/cameras') || !r.ok) return r;
			const cams = await r.json();
			for (const c of cams) for (const s of c.streams) delete s.codec;
			return new Response(JSON.stringify(cams), {status: 200, headers: {'Content-Type': 'application/json'}});
		};
		localStorage.clear();
	})()`}); err != nil {
		t.Fatal(err)
	}
	if _, err := testpeer.EvalPage[bool](t, ctx, base+"/?nocodec=1#/camera/door", `!!window.custos`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if v := playing("fallen back to sub", "sub"); v.Width != 640 || v.Switch != "sub" {
		t.Errorf("after main failed without a known codec: %+v", v)
	}
	// yard has one stream: no switch.
	y, err := testpeer.EvalPage[view](t, ctx, base+"/?y=1#/camera/yard", fmt.Sprintf(`(() => { const s = %s; return s && s.transport ? s : null })()`, viewJS), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if y.Switch != "" || y.Stream != "main" {
		t.Errorf("yard (one stream): %+v", y)
	}
}

// tap touches the screen at x, y and lets go.
func tap(t *testing.T, ctx context.Context, x, y float64) {
	t.Helper()
	touch(t, ctx, input.DispatchTouchEventTypeTouchStart, x, y)
	touch(t, ctx, input.DispatchTouchEventTypeTouchEnd, x, y)
}

// touch dispatches one touch event (touchEnd carries no point).
func touch(t *testing.T, ctx context.Context, typ input.DispatchTouchEventType, x, y float64) {
	t.Helper()
	p := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{{X: x, Y: y}}}
	if typ == input.DispatchTouchEventTypeTouchEnd {
		p.TouchPoints = []*input.TouchPoint{}
	}
	if _, err := chromedp.Call(ctx, input.DispatchTouchEvent, p); err != nil {
		t.Fatalf("touch %s at %.0f,%.0f: %v", typ, x, y, err)
	}
	time.Sleep(50 * time.Millisecond)
}

// TestUIPhoneTouch opens the camera page and the table pages on a phone
// (390×844 CSS px, device scale 3, touch) (issue 19 items 4 and 5): the
// camera page plays the sub-stream; "Select on timeline" and two taps set
// From and To to the tapped times, and dragging the end's handle moves
// To; on #/settings, #/audit and #/users no table cell reaches past the
// screen's edge and no audit row is taller than a few lines.
func TestUIPhoneTouch(t *testing.T) {
	base := uiServer(t, 3)
	ctx := testpeer.Browser(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
		t.Fatal(err)
	}
	v, err := testpeer.EvalPage[[]any](t, ctx, base+"/#/camera/door",
		`window.custos && custos.video.videoWidth > 0 ? [custos.stream(), custos.video.videoWidth] : null`, 30*time.Second)
	if err != nil {
		t.Fatalf("camera page on a phone: %v", err)
	}
	if w, _ := v[1].(float64); v[0] != "sub" || w != 640 {
		t.Errorf("camera page on a phone plays %v, want the 640 px sub-stream", v)
	}
	evalJS[bool](t, ctx, `(() => { document.getElementById('pick').click(); return true })()`)
	g := barAt(t, ctx)
	t1, t2, t3 := g.Start+0.3*(g.End-g.Start), g.Start+0.6*(g.End-g.Start), g.Start+0.85*(g.End-g.Start)
	tap(t, ctx, g.x(t1), g.Y)
	tap(t, ctx, g.x(t2), g.Y)
	type sel struct {
		From, To string
		Handles  int
		Pressed  string
	}
	const selJS = `({from: document.getElementById('ex-from').value, to: document.getElementById('ex-to').value,
		handles: document.querySelectorAll('.tl-handle').length, pressed: document.getElementById('pick').getAttribute('aria-pressed')})`
	s := evalJS[sel](t, ctx, selJS)
	tol := 1000 + 2*g.msPerPx()
	if f, to := localMS(t, s.From), localMS(t, s.To); math.Abs(f-t1) > tol || math.Abs(to-t2) > tol || s.Handles != 2 || s.Pressed != "false" {
		t.Errorf("taps at %s and %s: %+v", time.UnixMilli(int64(t1)).Local(), time.UnixMilli(int64(t2)).Local(), s)
	}
	// Drag the end's handle with a finger.
	touch(t, ctx, input.DispatchTouchEventTypeTouchStart, g.x(t2), g.Y)
	touch(t, ctx, input.DispatchTouchEventTypeTouchMove, (g.x(t2)+g.x(t3))/2, g.Y)
	touch(t, ctx, input.DispatchTouchEventTypeTouchMove, g.x(t3), g.Y)
	touch(t, ctx, input.DispatchTouchEventTypeTouchEnd, g.x(t3), g.Y)
	s2 := evalJS[sel](t, ctx, selJS)
	if f, to := localMS(t, s2.From), localMS(t, s2.To); math.Abs(f-t1) > tol || math.Abs(to-t3) > tol {
		t.Errorf("dragging the end handle to %s: %+v", time.UnixMilli(int64(t3)).Local(), s2)
	}
	if mode := evalJS[string](t, ctx, `document.querySelector('.mode').textContent`); mode != "Live" {
		t.Errorf("selecting on the timeline changed the mode to %q", mode)
	}
	screenshot(t, ctx, "camera-phone.png")

	// Tables: every cell inside the screen (the grants matrix scrolls in
	// its own box and is left out); audit rows a few lines tall.
	type tables struct {
		Cells, Tallest int
		Outside        []string
	}
	const tablesJS = `(() => {
		// Header cells are left out: on a phone the header row is visually
		// hidden (kept for screen readers) and each cell shows its column's name.
		const cells = [...document.querySelectorAll('main table:not(.grants) tbody td, main table:not(.grants) tbody th')].filter((c) => c.checkVisibility());
		if (!cells.length) return null;
		const out = cells.filter((c) => { const r = c.getBoundingClientRect(); return r.right > innerWidth + 1 || r.left < -1; })
			.slice(0, 5).map((c) => c.tagName + ' ' + c.textContent.trim().slice(0, 30) + ' right=' + Math.round(c.getBoundingClientRect().right));
		const rows = [...document.querySelectorAll('#audit-table tbody tr')].map((r) => r.getBoundingClientRect().height);
		return {cells: cells.length, tallest: Math.round(Math.max(0, ...rows)), outside: out};
	})()`
	// Pages open at the bare origin: the browser keeps the login it
	// answered (the audit page cannot yet rewrite a URL with a login in it).
	bu, _ := url.Parse(base)
	origin := bu.Scheme + "://" + bu.Host
	for _, page := range []struct{ hash, ready string }{
		{"#/settings", `document.querySelector('#cams tbody tr')`},
		{"#/audit", `document.querySelectorAll('#audit-table tbody tr').length > 3`},
		{"#/users", `document.querySelector('#users-list tbody tr')`},
	} {
		got, err := testpeer.EvalPage[tables](t, ctx, origin+"/?t="+page.hash[2:]+page.hash, fmt.Sprintf(`(() => %s ? %s : null)()`, page.ready, tablesJS), 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", page.hash, err)
		}
		if len(got.Outside) > 0 || got.Tallest > 150 {
			t.Errorf("%s on a phone: %d cells, these past the screen: %v; tallest audit row %d px", page.hash, got.Cells, got.Outside, got.Tallest)
		}
		if page.hash == "#/audit" {
			t.Logf("audit on a phone: tallest row %d px", got.Tallest)
			screenshot(t, ctx, "audit-phone.png")
		}
	}
}

// TestUIGridEmpty: with no cameras, the grid tells an admin to add one
// under Settings (a link there), and a viewer without grants what to do
// (ask an administrator), not to edit the configuration file.
func TestUIGridEmpty(t *testing.T) {
	srv, _, _ := serveYAML(t, t.TempDir(), "")
	t.Cleanup(func() { srv.stop() })
	base := srv.authURL()
	body := strings.NewReader(`{"name":"guest","role":"viewer","password":"guest-password-1"}`)
	resp, err := http.Post(base+"/api/users", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("adding a viewer: %s", resp.Status)
	}
	ctx := testpeer.Browser(t)
	const gridJS = `(() => { const p = document.querySelector('#grid p'); return p ? [p.textContent, p.querySelector('a') ? p.querySelector('a').getAttribute('href') : ''] : null })()`
	admin, err := testpeer.EvalPage[[]string](t, ctx, base+"/#/", gridJS, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(admin[0], "Add a camera") || admin[1] != "#/settings" || strings.Contains(admin[0], "configuration") {
		t.Errorf("admin's empty grid: %q", admin)
	}
	u, _ := url.Parse(base)
	u.User = url.UserPassword("guest", "guest-password-1")
	guest := testpeer.Browser(t)
	viewer, err := testpeer.EvalPage[[]string](t, guest, u.String()+"/#/", gridJS, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(viewer[0], "administrator") || !strings.Contains(viewer[0], "guest") || viewer[1] != "" {
		t.Errorf("viewer's empty grid: %q", viewer)
	}
}
