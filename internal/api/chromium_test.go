package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/playback"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestChromiumPlaysPlayback has headless Chromium play an export and an
// HLS playlist across a gap: the picture has the recorded size and time
// advances.
func TestChromiumPlaysPlayback(t *testing.T) {
	srv, _ := playbackServer(t)
	ctx := testpeer.Browser(t)
	for _, tc := range []struct {
		name, kind, url string
	}{
		{"export.mp4 from mid-GOP", "mp4", rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 260)},
		{"export.mp4 across a gap", "mp4", rangeURL(srv.URL, "/api/cameras/door/export.mp4", 250, 560)},
		{"playback.m3u8 across a gap", "hls", rangeURL(srv.URL, "/api/cameras/door/playback.m3u8", 230, 560)},
		{"evidence export (recorded fragments unchanged)", "mp4", rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 260, "download", "1", "evidence", "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, last, err := testpeer.PlayVideo(t, ctx, tc.url, tc.kind, 2*time.Second, 60*time.Second)
			if err != nil {
				t.Fatalf("Chromium: %v (first %+v, last %+v)", err, first, last)
			}
			if first.VideoWidth != 1920 || first.VideoHeight != 1080 {
				t.Errorf("video is %dx%d, want 1920x1080", first.VideoWidth, first.VideoHeight)
			}
			if last.CurrentTime-first.CurrentTime < 2 || last.Frames < 25 {
				t.Errorf("playback did not advance: %+v -> %+v", first, last)
			}
			t.Logf("%s: %+v -> %+v", tc.name, first, last)
		})
	}
}

// TestChromiumPlaysBoundedExport: a user with the recordings permission
// but not export plays export.mp4 in Chromium although every Range
// response is cut to 256 KiB (the player asks for the rest), and a GET
// without Range is refused.
func TestChromiumPlaysBoundedExport(t *testing.T) {
	rc := pt.NewRecording(t, "door")
	rc.AddRun(t, pt.At(0), 300, 100)
	s := &Server{Cameras: CameraList{{Name: "door"}}, Index: rc.Index,
		Playback:         &playback.Source{Index: rc.Index, Disks: rc.Disks, Cache: playback.NewIndexCache(1 << 20)},
		PlayerRangeBytes: 256 << 10}
	withAccounts(t, s, rc.Index)
	if _, err := s.Auth.AddUser(context.Background(), "watcher", auth.Viewer, "watcher-password",
		map[string]auth.Perm{"door": auth.PermRecordings}); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.SetBasicAuth("watcher", "watcher-password")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u := rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 260)
	if resp, body := get(t, u); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET without Range: %s, want 403", resp.Status)
	} else if resp, _ := get(t, u, "Range", "bytes=0-"); resp.StatusCode != 206 || len(body) == 0 {
		t.Fatalf("bytes=0-: %s", resp.Status)
	}
	ctx := testpeer.Browser(t)
	first, last, err := testpeer.PlayVideo(t, ctx, u, "mp4", 2*time.Second, 60*time.Second)
	if err != nil {
		t.Fatalf("Chromium: %v (first %+v, last %+v)", err, first, last)
	}
	if last.CurrentTime-first.CurrentTime < 2 || last.Frames < 25 {
		t.Errorf("playback did not advance: %+v -> %+v", first, last)
	}
}
