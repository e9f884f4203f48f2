package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/media"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// uiServer runs custos serve against two simulated cameras (door with a
// sub-stream, yard without) and returns the base URL once both have
// recorded minSeconds that the index vouches for.
func uiServer(t *testing.T, minSeconds float64) string {
	base, _ := uiServerCodec(t, minSeconds, media.CodecH264)
	return base
}

// uiServerCodec is uiServer with the cameras' main streams in codec; it
// also returns the simulator's address.
func uiServerCodec(t *testing.T, minSeconds float64, codec media.Codec) (string, string) {
	t.Helper()
	s, err := sim.New(sim.Options{Cameras: 2, Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
fsync_interval: 1s
cameras:
  - {name: door, url: "rtsp://%s/cam1", sub_url: "rtsp://%s/cam1/sub"}
  - {name: yard, url: "rtsp://%s/cam2"}
`, t.TempDir(), ln.Addr(), ln.Addr(), ln.Addr())
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	base := srv.authURL()
	deadline := time.Now().Add(60 * time.Second)
	for _, cam := range []string{"door", "yard"} {
		for {
			var rec struct {
				Runs []struct{ Start, End time.Time }
			}
			now := time.Now().UTC()
			getJSON(t, fmt.Sprintf("%s/api/cameras/%s/recordings?from=%s&to=%s", base, cam,
				now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)), &rec)
			if len(rec.Runs) > 0 && rec.Runs[0].End.Sub(rec.Runs[0].Start).Seconds() >= minSeconds {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has not recorded %.0f s: %+v", cam, minSeconds, rec)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return base, ln.Addr().String()
}

// screenshot saves a PNG of the page under $CUSTOS_SCREENSHOTS (the
// docs/screenshots/ of the README are made with it) or the test's
// temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("CUSTOS_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	testpeer.Screenshot(t, ctx, filepath.Join(dir, name))
}

// TestUITimelinePlaysAndExports drives the camera page in Chromium: a
// click on the timeline plays the recording from the clicked time (within
// a second), and an export selected on the page downloads a file ffprobe
// accepts.
func TestUITimelinePlaysAndExports(t *testing.T) {
	base, simAddr := uiServerCodec(t, 8, media.CodecH264)
	ctx := testpeer.Browser(t)
	if _, err := testpeer.EvalPage[bool](t, ctx, base+"/#/camera/door",
		`!!(window.custos && document.querySelector('.tl-run'))`, 30*time.Second); err != nil {
		t.Fatalf("camera page: %v", err)
	}
	// Click where the timeline shows five seconds ago.
	want := time.Now().Add(-5 * time.Second)
	type xy struct{ X, Y float64 }
	pos, err := chromedp.Run(ctx, chromedp.Evaluate[xy](fmt.Sprintf(`(() => {
		const tl = window.custos.timeline, r = tl.bar.getBoundingClientRect();
		return {X: r.left + (%d - tl.start) / tl.span * r.width, Y: r.top + r.height / 2};
	})()`, want.UnixMilli())))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(pos.X, pos.Y)); err != nil {
		t.Fatal(err)
	}
	type playing struct {
		Start  float64
		Width  int
		Time   float64
		Source string
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := chromedp.Run(pctx, chromedp.Poll[playing](`(() => {
		const c = window.custos, v = c.video;
		return c.recordedStart() !== null && v.videoWidth > 0 && v.currentTime > 1 && !v.paused
			? {start: c.recordedStart(), width: v.videoWidth, time: v.currentTime, source: v.currentSrc} : null;
	})()`, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("recorded playback did not start: %v", err)
	}
	if d := math.Abs(got.Start - float64(want.UnixMilli())); d > 1000 || got.Width != 1920 {
		t.Errorf("playing from %s (%.0f ms from the click at %s), width %d", time.UnixMilli(int64(got.Start)), d, want, got.Width)
	}
	t.Logf("clicked %s: playing %s at %.2f s", want.Format(time.RFC3339Nano), got.Source, got.Time)
	screenshot(t, ctx, "camera.png")

	// Export the four seconds around the click: the page shows the size,
	// the link downloads.
	dir := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	done := make(chan string, 1)
	go func() {
		for ev, err := range progress {
			if err != nil {
				return
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				done <- ev.GUID
				return
			}
		}
	}()
	events := true
	if _, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events}); err != nil {
		t.Fatal(err)
	}
	local := func(tm time.Time) string { return tm.Local().Format("2006-01-02T15:04:05") }
	js := fmt.Sprintf(`(() => {
		const f = document.getElementById('ex-from'), to = document.getElementById('ex-to');
		f.value = %q; to.value = %q;
		to.dispatchEvent(new Event('change'));
		return true;
	})()`, local(want.Add(-2*time.Second)), local(want.Add(2*time.Second)))
	sctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[bool](js)); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := chromedp.Do(sctx, chromedp.WaitVisible(chromedp.CSS("#ex-link"))); err != nil {
		t.Fatalf("export link: %v", err)
	}
	size, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("#ex-size")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS("#ex-link"))); err != nil {
		t.Fatalf("export: %v", err)
	}
	select {
	case guid := <-done:
		path := filepath.Join(dir, guid)
		if d := pt.ProbeDuration(t, path); d < 3 || d > 4.1 {
			t.Errorf("downloaded export lasts %.2f s, want about 4", d)
		}
		if errText, n := pt.DecodeErrors(t, path); errText != "" || n < 75 {
			t.Errorf("downloaded export: %d frames, ffmpeg said %q", n, errText)
		}
		t.Logf("export size shown: %s", size)
	case <-time.After(30 * time.Second):
		t.Fatal("the export did not download")
	}

	// Settings: the storage directory with its space and write rate, and
	// both cameras with their status.
	type settings struct {
		Disk    string
		Cameras int
	}
	st, err := testpeer.EvalPage[settings](t, ctx, base+"/?p=settings#/settings", `(() => {
		const row = document.querySelector('tr[data-disk="default"]');
		const cams = document.querySelectorAll('#cams tbody tr').length;
		return row && cams ? {disk: row.textContent, cameras: cams} : null;
	})()`, 30*time.Second)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	if st.Cameras != 2 || !strings.Contains(st.Disk, "GiB") || !strings.Contains(st.Disk, "segments") {
		t.Errorf("settings page: %+v", st)
	}

	// Add a camera: the probe shows what it sends, then Save adds it and
	// it records; Edit changes its retention; Remove (pressed twice)
	// stops it.
	evalJS := func(script string, args ...any) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("(() => {"+script+"; return true })()", args...))); err != nil {
			t.Fatalf("%s: %v", script, err)
		}
	}
	poll := func(what, expr string) string {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		got, err := chromedp.Run(pctx, chromedp.Poll[string](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return got
	}
	evalJS(`const v = (id, x) => document.getElementById(id).value = x;
		v('cf-name', 'porch'); v('cf-url', 'rtsp://%s/cam2'); v('cf-sub', 'rtsp://%s/cam2/sub'); v('cf-days', '30');
		document.getElementById('cf-probe').click()`, simAddr, simAddr)
	result := poll("probe result", `(() => {
		const r = document.getElementById('cf-result');
		return r.querySelector('#cf-save') ? r.textContent : null;
	})()`)
	for _, want := range []string{"1920×1080", "640×360", "Save camera"} {
		if !strings.Contains(result, want) || strings.Contains(result, "anyway") {
			t.Errorf("probe result lacks %q or failed:\n%s", want, result)
		}
	}
	screenshot(t, ctx, "settings.png")
	evalJS(`document.getElementById('cf-save').click()`)
	row := poll("porch listed", `(() => { const r = document.querySelector('tr[data-camera="porch"]'); return r ? r.textContent : null })()`)
	if !strings.Contains(row, "30 days") || !strings.Contains(row, "this page") || !strings.Contains(row, "main, sub") {
		t.Errorf("porch row: %q", row)
	}
	var cams []api.CameraJSON
	deadline := time.Now().Add(20 * time.Second)
	for porch := (api.CameraJSON{}); porch.Status != "recording"; {
		getJSON(t, base+"/api/cameras", &cams)
		for _, c := range cams {
			if c.Name == "porch" {
				porch = c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("porch added in the UI is not recording: %+v", porch)
		}
		time.Sleep(200 * time.Millisecond)
	}
	evalJS(`document.querySelector('[data-edit="porch"]').click(); document.getElementById('cf-days').value = '2';
		document.getElementById('cf-save').click()`)
	poll("porch changed", `(() => { const r = document.querySelector('tr[data-camera="porch"]'); return r && r.textContent.includes('2 days') ? 'ok' : null })()`)
	evalJS(`document.querySelector('[data-remove="porch"]').click()`)
	evalJS(`document.querySelector('[data-remove="porch"]').click()`)
	poll("porch removed", `document.querySelector('tr[data-camera="porch"]') ? null : document.getElementById('cams-msg').textContent`)
	getJSON(t, base+"/api/cameras", &cams)
	if len(cams) != 2 {
		t.Errorf("after removing porch: %d cameras", len(cams))
	}
}

// TestUIGridLive opens the camera grid in Chromium, once with WebRTC
// (the default) and once with MSE (?live=mse): every camera's live video
// plays (door's 360p sub-stream, yard's 1080p main stream) over the
// transport asked for, and the time to the first frame is logged.
func TestUIGridLive(t *testing.T) {
	base := uiServer(t, 1)
	ctx := testpeer.Browser(t)
	type tile struct {
		Name      string
		Width     int
		Time      float64
		Frames    int
		Transport string
	}
	state := `(() => {
		const tiles = [...document.querySelectorAll('.tile')].map((el) => {
			const v = el.querySelector('video');
			return {name: el.dataset.camera, width: v.videoWidth, time: v.currentTime, transport: v.dataset.transport,
				frames: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0};
		});
		return tiles.length === 2 && tiles.every((x) => x.width > 0 && x.frames > 0) ? tiles : null;
	})()`
	for _, mode := range []struct{ name, query string }{{"webrtc", ""}, {"mse", "?live=mse"}} {
		t.Run(mode.name, func(t *testing.T) {
			opened := time.Now()
			first, err := testpeer.EvalPage[[]tile](t, ctx, base+"/"+mode.query+"#/", state, 30*time.Second)
			if err != nil {
				t.Fatalf("grid: %v", err)
			}
			t.Logf("every tile showed video %.0f ms after the page opened: %+v", float64(time.Since(opened).Microseconds())/1000, first)
			time.Sleep(2 * time.Second)
			last, err := chromedp.Run(ctx, chromedp.Evaluate[[]tile](state))
			if err != nil || len(last) != 2 {
				t.Fatalf("grid state: %v %+v", err, last)
			}
			want := map[string]int{"door": 640, "yard": 1920}
			for i, x := range last {
				if x.Width != want[x.Name] || x.Transport != mode.name {
					t.Errorf("%s shows %d px wide video over %s, want %d over %s", x.Name, x.Width, x.Transport, want[x.Name], mode.name)
				}
				if x.Time-first[i].Time < 1 || x.Frames-first[i].Frames < 25 {
					t.Errorf("%s is not playing: %+v -> %+v", x.Name, first[i], x)
				}
			}
			if mode.name == "webrtc" {
				screenshot(t, ctx, "grid.png")
			}
		})
	}
	// Every viewing is on record: a start per camera and transport, and
	// a stop with its duration once the page is gone.
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	began := time.Now()
	for {
		var starts, stops []api.AuditJSON
		getJSON(t, base+"/api/audit?action=live_start", &starts)
		getJSON(t, base+"/api/audit?action=live_stop", &stops)
		seen := map[string]bool{}
		for _, e := range starts {
			seen[e.Camera+"/"+e.Detail["stream"]+"/"+e.Detail["transport"]+"/"+e.Actor] = true
		}
		ok := len(stops) >= 4 && stops[0].Detail["seconds"] != ""
		for _, k := range []string{"door/sub/webrtc/admin", "yard/main/webrtc/admin", "door/sub/mse/admin", "yard/main/mse/admin"} {
			ok = ok && seen[k]
		}
		if ok {
			t.Logf("stops recorded %v after leaving the page", time.Since(began))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live views not audited: starts %+v, stops %+v", starts, stops)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestUIH265AndPhone: a camera whose only stream is H.265 gets a clear
// message in this Chromium (which cannot decode it) while the H.264
// sub-stream of the other plays; on a phone-sized screen the grid fits
// the width; every control has an accessible name.
func TestUIH265AndPhone(t *testing.T) {
	base, _ := uiServerCodec(t, 1, media.CodecH265)
	ctx := testpeer.Browser(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	type grid struct {
		DoorWidth  int
		YardText   string
		Overflow   bool
		Unlabelled []string
	}
	g, err := testpeer.EvalPage[grid](t, ctx, base+"/#/", `(() => {
		const tile = (n) => document.querySelector('.tile[data-camera="' + n + '"]');
		const door = tile('door'), yard = tile('yard');
		if (!door || !yard) return null;
		const text = yard.querySelector('.overlay').textContent;
		const w = door.querySelector('video').videoWidth;
		if (!w || !/cannot decode/.test(text)) return null;
		return {doorWidth: w, yardText: text, overflow: document.documentElement.scrollWidth > innerWidth, unlabelled: []};
	})()`, 30*time.Second)
	if err != nil {
		t.Fatalf("grid: %v", err)
	}
	if g.DoorWidth != 640 || g.Overflow || !strings.Contains(g.YardText, "H.265") {
		t.Errorf("grid on a phone: %+v", g)
	}
	t.Logf("yard says: %s", g.YardText)
	screenshot(t, ctx, "grid-phone-h265.png")
	// The camera page: every control named, nothing wider than the screen.
	unnamed, err := testpeer.EvalPage[[]any](t, ctx, base+"/?page=2#/camera/door", `(() => {
		if (!window.custos) return null;
		const name = (el) => (el.getAttribute('aria-label') || (el.labels && el.labels.length && el.labels[0].textContent) ||
			el.textContent || el.title || '').trim();
		const bad = [...document.querySelectorAll('button, a, input, select, [role=slider]')]
			.filter((el) => !el.hidden && !name(el)).map((el) => el.outerHTML.slice(0, 80));
		if (document.documentElement.scrollWidth > innerWidth) bad.push('page wider than the screen');
		return [bad.length, ...bad];
	})()`, 30*time.Second)
	if err != nil {
		t.Fatalf("camera page: %v", err)
	}
	if len(unnamed) != 1 {
		t.Errorf("camera page problems: %v", unnamed[1:])
	}
	// Contrast (WCAG 2 AA): every visible piece of text on each page
	// against the background it is drawn on, at least 4.5:1 (3:1 for
	// large text); text over video is on its own dark band.
	for _, page := range []string{"#/", "#/camera/door", "#/settings", "#/users", "#/audit", "#/account"} {
		low, err := testpeer.EvalPage[[]string](t, ctx, base+"/?contrast="+page[2:]+page, contrastJS, 30*time.Second)
		if err != nil {
			t.Fatalf("contrast of %s: %v", page, err)
		}
		if len(low) > 1 {
			t.Errorf("%s: text below the WCAG AA contrast: %v", page, low[1:])
		}
	}
}

// contrastJS returns null until the page has loaded, then ["ok", and one
// line per text element whose contrast with its background is too low].
const contrastJS = `(() => {
	if (document.querySelector('main .loading') || !document.querySelector('#user-menu span')) return null;
	const rgb = (c) => { const m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
	const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
	const bgOf = (el) => {
		// Blend the backgrounds from the element up to the page.
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = rgb(getComputedStyle(e).backgroundColor);
			if (c.length === 4 && c[3] === 0) continue;
			layers.push(c);
			if (c.length === 3 || c[3] === 1) break;
		}
		let out = [255, 255, 255];
		for (const c of layers.reverse()) {
			const a = c.length === 4 ? c[3] : 1;
			out = out.map((v, i) => v * (1 - a) + c[i] * a);
		}
		return out;
	};
	const low = ['ok'];
	for (const el of document.querySelectorAll('body *')) {
		if (!el.checkVisibility || !el.checkVisibility()) continue;
		const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
		if (!own || el.closest('video, .sr-only')) continue;
		const st = getComputedStyle(el);
		const fg = rgb(st.color), bg = bgOf(el);
		const a = fg.length === 4 ? fg[3] : 1;
		const fgb = fg.slice(0, 3).map((v, i) => v * a + bg[i] * (1 - a));
		const [l1, l2] = [lum(fgb), lum(bg)].sort((x, y) => y - x);
		const ratio = (l1 + 0.05) / (l2 + 0.05);
		const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) low.push(el.tagName + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2) + ':1');
	}
	return low;
})()`

// TestUIEvidenceLock locks the selected range on the camera page with a
// reason: the timeline shows it and the API has it; an admin releases it
// on the page, giving a reason.
func TestUIEvidenceLock(t *testing.T) {
	base := uiServer(t, 3)
	ctx := testpeer.Browser(t)
	if _, err := testpeer.EvalPage[bool](t, ctx, base+"/#/camera/door",
		`!!(window.custos && document.querySelector('.tl-run') && !document.getElementById('lock').hidden)`, 30*time.Second); err != nil {
		t.Fatalf("camera page: %v", err)
	}
	step := func(what, script string) string {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		got, err := chromedp.Run(pctx, chromedp.Poll[string](script, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return got
	}
	step("open the lock form", `(() => { document.getElementById('lock').click(); return document.getElementById('lock-box').hidden ? null : 'ok' })()`)
	step("lock", `(() => {
		const loc = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
		document.getElementById('ex-from').value = loc(new Date(Date.now() - 125e3));
		document.getElementById('ex-to').value = loc(new Date(Date.now() - 5e3)); // a lock keeps the past only
		document.getElementById('lock-reason').value = 'incident 7';
		document.getElementById('lock').click();
		return 'ok';
	})()`)
	li := step("lock shown", `(() => { const li = document.querySelector('#locks li'); return li && document.querySelector('.tl-lock') ? li.textContent : null })()`)
	if !strings.Contains(li, "incident 7") || !strings.Contains(li, "admin") {
		t.Errorf("lock listed as %q", li)
	}
	now := time.Now().UTC()
	var locks []api.LockJSON
	getJSON(t, fmt.Sprintf("%s/api/cameras/door/locks?from=%s&to=%s", base, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)), &locks)
	if len(locks) != 1 || locks[0].Reason != "incident 7" || !locks[0].Active || locks[0].To.Sub(locks[0].From) < 119*time.Second {
		t.Fatalf("locks over the API: %+v", locks)
	}
	step("release form", `(() => { document.querySelector('[data-release]').click(); return document.querySelector('#locks li input') ? 'ok' : null })()`)
	step("released", `(() => {
		const li = document.querySelector('#locks li');
		if (li && li.querySelector('input').value === '') { li.querySelector('input').value = 'case closed'; li.querySelector('[data-release]').click(); }
		return document.querySelector('#locks li') ? null : document.getElementById('lock-msg').textContent;
	})()`)
	getJSON(t, fmt.Sprintf("%s/api/cameras/door/locks?released=1&from=%s&to=%s", base, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)), &locks)
	if len(locks) != 1 || locks[0].Active || locks[0].ReleaseReason != "case closed" || locks[0].ReleasedBy != "admin" {
		t.Errorf("after release: %+v", locks)
	}
}
