package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/testpeer"
	"github.com/custos-nvr/custos/internal/thumb"
)

// playbackServer serves the API over a synthetic recording of camera
// "door": run 1 of 300 frames (segments of 100), a 7.2 s gap, run 2 of
// 150 frames.
func playbackServer(t *testing.T) (*httptest.Server, *pt.Recording) {
	t.Helper()
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	rc.AddRun(t, pt.At(480), 150, 100)
	s := &Server{Cameras: CameraList{{Name: "door"}, {Name: "gate"}}, Index: rc.Index,
		Playback: &playback.Source{Index: rc.Index, Disks: rc.Disks, Cache: playback.NewIndexCache(1 << 20)},
		Thumbs:   thumb.New("", 2, 1<<20)}
	s.Chains, s.RecorderKey = rc.Index, rc.Key
	withAccounts(t, s, rc.Index)
	srv := httptest.NewServer(asAdmin(s.Handler()))
	t.Cleanup(srv.Close)
	return srv, rc
}

func rangeURL(base, route string, from, to float64, extra ...string) string {
	q := url.Values{"from": {pt.At(from).Format(time.RFC3339Nano)}, "to": {pt.At(to).Format(time.RFC3339Nano)}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return base + route + "?" + q.Encode()
}

func get(t *testing.T, u string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestExportHTTP checks the export route's headers, Range and ETag
// handling against a full GET.
func TestExportHTTP(t *testing.T) {
	srv, _ := playbackServer(t)
	u := rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 260, "download", "1")
	resp, full := get(t, u)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", u, resp.Status, full)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(full)) {
		t.Errorf("Content-Length %q, body %d bytes", cl, len(full))
	}
	etag := resp.Header.Get("ETag")
	if resp.Header.Get("Content-Type") != "video/mp4" || etag == "" || resp.Header.Get("Accept-Ranges") != "bytes" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("headers: %v", resp.Header)
	}
	if !bytes.Equal(full[4:8], []byte("ftyp")) || !bytes.Contains(full[:4096], []byte("moov")) {
		t.Errorf("export does not start with ftyp, moov")
	}
	n := int64(len(full))
	for _, r := range [][2]int64{{0, 0}, {0, 1023}, {500, 1 << 20}, {n - 100, n - 1}, {n / 3, 2 * n / 3}} {
		resp, part := get(t, u, "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("Range %v: %s", r, resp.Status)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], n); resp.Header.Get("Content-Range") != want {
			t.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
		}
		if !bytes.Equal(part, full[r[0]:r[1]+1]) {
			t.Errorf("Range %v: bytes differ from the full GET", r)
		}
	}
	resp, part := get(t, u, "Range", "bytes=-500")
	if resp.StatusCode != 206 || !bytes.Equal(part, full[n-500:]) {
		t.Errorf("suffix range: %s, %d bytes", resp.Status, len(part))
	}
	if resp, _ := get(t, u, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %s, want 304", resp.Status)
	}
	if resp, _ := get(t, u, "Range", fmt.Sprintf("bytes=%d-", n+10)); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %s, want 416", resp.Status)
	}
	// A stale If-Range gets the whole new file, not a mixed one.
	if resp, b := get(t, u, "Range", "bytes=0-9", "If-Range", `"stale"`); resp.StatusCode != 200 || len(b) != len(full) {
		t.Errorf("stale If-Range: %s, %d bytes", resp.Status, len(b))
	}
	// The ETag names the content: another range has another.
	resp2, _ := get(t, rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 261))
	if resp2.Header.Get("ETag") == etag {
		t.Errorf("different ranges share ETag %s", etag)
	}
}

// TestPlaybackErrors checks statuses and reasons for bad requests.
func TestPlaybackErrors(t *testing.T) {
	srv, _ := playbackServer(t)
	cases := []struct {
		name, url string
		status    int
		reason    string
	}{
		{"unknown camera", rangeURL(srv.URL, "/api/cameras/nope/export.mp4", 0, 10), 404, `no camera named "nope"`},
		{"traversal in name", srv.URL + "/api/cameras/..%2F..%2Fetc/export.mp4?from=x", 404, "no camera named"},
		{"unknown stream", rangeURL(srv.URL, "/api/cameras/door/export.mp4", 0, 10, "stream", "sub"), 404, `no stream "sub"`},
		{"bad from", srv.URL + "/api/cameras/door/export.mp4?from=yesterday&to=2026-11-29T10:00:00Z", 400, "from=\"yesterday\""},
		{"reversed", rangeURL(srv.URL, "/api/cameras/door/export.mp4", 50, 10), 400, "to must be after from"},
		{"enormous", srv.URL + "/api/cameras/door/export.mp4?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "longer than the limit"},
		{"no video", rangeURL(srv.URL, "/api/cameras/gate/export.mp4", 0, 10), 404, "no recorded video of gate/main"},
		{"gap only", rangeURL(srv.URL, "/api/cameras/door/playback.m3u8", 310, 470), 404, "no recorded video"},
		{"thumbnail bad time", srv.URL + "/api/cameras/door/thumbnail.jpg?at=noon", 400, "not an RFC 3339 time"},
		{"thumbnail in gap", srv.URL + "/api/cameras/door/thumbnail.jpg?at=" + pt.At(400).Format(time.RFC3339Nano), 404, "no recording of door/main"},
		{"thumbnail width", srv.URL + "/api/cameras/door/thumbnail.jpg?width=99999&at=" + pt.At(10).Format(time.RFC3339Nano), 400, "width="},
		{"segment id", srv.URL + "/api/cameras/door/segments/abc/init.mp4", 400, "not a positive integer"},
		{"segment of another camera", srv.URL + "/api/cameras/gate/segments/1/init.mp4", 404, "no segment 1"},
		{"fragments out of range", srv.URL + "/api/cameras/door/segments/1/frags.m4s?first=0&n=1000", 404, "do not exist"},
		{"fragments bad n", srv.URL + "/api/cameras/door/segments/1/frags.m4s?first=0&n=0", 400, "n ≥ 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.url)
			var msg struct{ Error string }
			json.Unmarshal(body, &msg)
			if resp.StatusCode != tc.status || !strings.Contains(msg.Error, tc.reason) {
				t.Errorf("%s: %s %s, want %d with %q", tc.url, resp.Status, body, tc.status, tc.reason)
			}
		})
	}
}

// TestHLSWithFFmpeg serves a playlist across a gap and lets ffmpeg's HLS
// demuxer (an independent reader of EXT-X-MAP, fragments and
// discontinuities) decode it: no errors and every frame in the range's
// GOPs.
func TestHLSWithFFmpeg(t *testing.T) {
	srv, _ := playbackServer(t)
	u := rangeURL(srv.URL, "/api/cameras/door/playback.m3u8", 230, 560)
	resp, body := get(t, u)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("playlist: %s %s", resp.Status, body)
	}
	pl := string(body)
	t.Logf("playlist:\n%s", pl)
	for _, want := range []string{"#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-MAP:URI=", "#EXT-X-PROGRAM-DATE-TIME:2026-11-29T10:00:08.000Z",
		"#EXT-X-DISCONTINUITY", "#EXT-X-START:TIME-OFFSET=1.200,PRECISE=YES", "#EXT-X-ENDLIST"} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q", want)
		}
	}
	// Each EXTINF is at most the target duration, and every URI answers.
	target := 0
	sc := bufio.NewScanner(strings.NewReader(pl))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#EXT-X-TARGETDURATION:"); ok {
			target, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			d, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if math.Round(d) > float64(target) || d <= 0 {
				t.Errorf("EXTINF %v with target %d", d, target)
			}
		}
	}
	// Whole fragments: frames 200..299 of run 1 (from 230 back to key 200)
	// and run 2 up to the fragment holding frame 79 (to is frame 80 of run
	// 2; fragments of 12 frames from the key frame at 50 end at 85).
	dir := t.TempDir()
	out := filepath.Join(dir, "hls.mp4")
	cmd := exec.Command(testpeer.FFmpeg(t), "-hide_banner", "-nostdin", "-v", "error", "-i", u, "-c", "copy", out)
	if b, err := cmd.CombinedOutput(); err != nil || len(b) != 0 {
		t.Fatalf("ffmpeg read the playlist: %v: %s", err, b)
	}
	errText, frames := pt.DecodeErrors(t, out)
	if errText != "" || frames != 186 {
		t.Errorf("HLS copy: %d frames (want 186), ffmpeg said %q", frames, errText)
	}
}

// TestFragmentsWallClock checks the MSE fragment route: whole GOPs from
// the key frame before from, decode times on the wall clock, and ffmpeg
// decodes it cleanly.
func TestFragmentsWallClock(t *testing.T) {
	srv, _ := playbackServer(t)
	u := rangeURL(srv.URL, "/api/cameras/door/fragments.mp4", 120, 170)
	resp, body := get(t, u)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s", resp.Status, body)
	}
	if got, want := resp.Header.Get("X-Custos-From"), pt.At(100).Format(time.RFC3339Nano); got != want {
		t.Errorf("X-Custos-From %s, want the key frame at %s", got, want)
	}
	path := filepath.Join(t.TempDir(), "frag.mp4")
	pt.WriteFile(t, bytes.NewReader(body), int64(len(body)), path)
	if errText, frames := pt.DecodeErrors(t, path); errText != "" || frames != 74 {
		// Frames 100..173: fragments of 12 from the key frame at 100, cut
		// again at the key frame at 150, up to the one holding frame 169.
		t.Errorf("fragments: %d frames, ffmpeg said %q", frames, errText)
	}
	out, err := exec.Command(testpeer.FFprobe(t), "-v", "error", "-select_streams", "v:0", "-show_entries",
		"packet=dts", "-of", "csv=p=0", "-read_intervals", "%+#1", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	dts, _ := strconv.ParseInt(strings.TrimSpace(strings.Split(string(out), "\n")[0]), 10, 64)
	if got := playback.WallOfTicks(uint64(dts)); !got.Equal(pt.At(100)) {
		t.Errorf("first decode time %d = %s, want %s", dts, got, pt.At(100))
	}
}

// TestThumbnail decodes the key frame at or before a time through ffmpeg.
func TestThumbnail(t *testing.T) {
	testpeer.FFmpeg(t)
	srv, _ := playbackServer(t)
	u := srv.URL + "/api/cameras/door/thumbnail.jpg?width=320&at=" + url.QueryEscape(pt.At(130).Format(time.RFC3339Nano))
	resp, body := get(t, u)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) < 1000 || body[0] != 0xff || body[1] != 0xd8 {
		t.Fatalf("thumbnail: %s, %d bytes %q", resp.Status, len(body), body[:min(len(body), 100)])
	}
	if got := resp.Header.Get("X-Custos-Frame-Time"); got != pt.At(100).Format(time.RFC3339Nano) {
		t.Errorf("frame time %s, want the key frame at %s", got, pt.At(100).Format(time.RFC3339Nano))
	}
	path := filepath.Join(t.TempDir(), "t.jpg")
	pt.WriteFile(t, bytes.NewReader(body), int64(len(body)), path)
	info, err := testpeer.ProbeVideo(t, path, 10*time.Second)
	if err != nil || info.Width != 320 || info.Height != 180 {
		t.Errorf("thumbnail probes as %+v, %v; want 320x180", info, err)
	}
	// The same frame again comes from the cache or 304s on its ETag.
	resp2, body2 := get(t, u)
	if !bytes.Equal(body, body2) {
		t.Errorf("second thumbnail differs")
	}
	if resp, _ := get(t, u, "If-None-Match", resp2.Header.Get("ETag")); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
}

// TestStorage checks GET /api/storage: the index's sums per disk, the
// file system's space, and the days-kept estimate from the write rate.
func TestStorage(t *testing.T) {
	rc := pt.NewRecording(t, "door")
	now := time.Now().UTC()
	rc.AddRun(t, now.Add(-12*time.Hour), 300, 100) // 12 s of video, half a day ago
	s := &Server{Cameras: CameraList{{Name: "door"}}, Index: rc.Index,
		Disks: []Disk{{Name: "d1", Path: "/srv/d1", MinFree: 1 << 30,
			Usage: func() (uint64, uint64, error) { return 100 << 30, 11 << 30, nil }},
			{Name: "gone", Path: "/srv/gone", Usage: func() (uint64, uint64, error) { return 0, 0, errors.New("storage gone is unavailable") }}}}
	withAccounts(t, s, rc.Index)
	srv := httptest.NewServer(asAdmin(s.Handler()))
	defer srv.Close()
	var disks []DiskJSON
	resp, body := get(t, srv.URL+"/api/storage")
	if resp.StatusCode != 200 || json.Unmarshal(body, &disks) != nil || len(disks) != 2 {
		t.Fatalf("GET /api/storage: %s %s", resp.Status, body)
	}
	d := disks[0]
	if d.Segments != 3 || d.Recordings < 1<<20 || d.FreeBytes != 11<<30 || d.TotalBytes != 100<<30 {
		t.Errorf("disk d1: %+v", d)
	}
	// Written over the last 12 hours: the day's rate is twice that.
	if want := float64(d.Recordings) * 2; math.Abs(d.BytesPerDay-want) > want*0.01 {
		t.Errorf("rate %.0f B/day, want %.0f", d.BytesPerDay, want)
	}
	if want := (float64(d.Recordings) + float64(10<<30)) / d.BytesPerDay; math.Abs(d.DaysKept-want) > 0.01 {
		t.Errorf("days kept %.2f, want %.2f", d.DaysKept, want)
	}
	if disks[1].Error != "storage gone is unavailable" || disks[1].Segments != 0 {
		t.Errorf("missing disk: %+v", disks[1])
	}
}
