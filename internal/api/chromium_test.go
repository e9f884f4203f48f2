package api

import (
	"testing"
	"time"

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
