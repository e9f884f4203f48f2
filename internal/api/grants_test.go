package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/auth"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

// TestPlayerGrants walks every route that needs a camera grant with a
// recordings-only user (watcher) and a user with recordings and export
// (exporter): watching in a player works for both, whole files only for
// exporter. A camera route added without a row here fails the test.
func TestPlayerGrants(t *testing.T) {
	s, base, _ := viewingServer(t)
	s.PlayerRangeBytes = 1000
	if _, err := s.Auth.AddUser(context.Background(), "exporter", auth.Viewer, "exporter-password",
		map[string]auth.Perm{"door": auth.PermRecordings | auth.PermExport}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Index.Stream(context.Background(), "door", "main")
	segs, _ := s.Index.Segments(context.Background(), st.ID, pt.At(-1), pt.At(1000))
	seg := fmt.Sprint(segs[0].ID)
	exp := rangeURL("", "/api/cameras/door/export.mp4", 0, 300)
	type want struct{ watcher, exporter int }
	rows := []struct {
		pattern, path string
		header        []string
		want          want
	}{
		{"GET /api/cameras/{name}/recordings", rangeURL("", "/api/cameras/door/recordings", 0, 300), nil, want{200, 200}},
		{"GET /api/cameras/{name}/locks", rangeURL("", "/api/cameras/door/locks", 0, 300), nil, want{200, 200}},
		{"POST /api/cameras/{name}/locks", "/api/cameras/door/locks", nil, want{403, 403}}, // the lock grant: TestLockLimits
		// A player's Range request: cut to PlayerRangeBytes without export.
		{"GET /api/cameras/{name}/export.mp4", exp, []string{"Range", "bytes=0-"}, want{206, 206}},
		// The whole file without Range: a download.
		{"", exp, nil, want{403, 200}},
		{"", exp, []string{"Range", "bytes=0-9,20-29"}, want{416, 206}},
		// A stale If-Range would send the whole file: dropped.
		{"", exp, []string{"Range", "bytes=0-99", "If-Range", `"stale"`}, want{206, 200}},
		{"", exp + "&download=1", nil, want{403, 200}},
		{"", exp + "&download=1&evidence=1", nil, want{403, 501}}, // no chains here
		{"GET /api/cameras/{name}/fragments.mp4", rangeURL("", "/api/cameras/door/fragments.mp4", 0, 100), nil, want{200, 200}},
		{"", rangeURL("", "/api/cameras/door/fragments.mp4", 0, 3001), nil, want{403, 200}}, // > 2 min
		{"GET /api/cameras/{name}/playback.m3u8", rangeURL("", "/api/cameras/door/playback.m3u8", 0, 300), nil, want{200, 200}},
		{"GET /api/cameras/{name}/segments/{id}/init.mp4", "/api/cameras/door/segments/" + seg + "/init.mp4", nil, want{200, 200}},
		{"GET /api/cameras/{name}/segments/{id}/frags.m4s", "/api/cameras/door/segments/" + seg + "/frags.m4s?first=0&n=1", nil, want{200, 200}},
		{"GET /api/cameras/{name}/thumbnail.jpg", "/api/cameras/door/thumbnail.jpg?at=x", nil, want{400, 400}}, // grant passed
		{"GET /api/cameras/{name}/live.ws", "/api/cameras/door/live.ws", nil, want{403, 403}},
		{"POST /api/cameras/{name}/whep", "/api/cameras/door/whep", nil, want{403, 403}},
		{"DELETE /api/cameras/{name}/whep", "/api/cameras/door/whep", nil, want{403, 403}},
		// Camera management needs the operator role: TestCameraManagementScoped.
		{"POST /api/cameras", "/api/cameras", nil, want{403, 403}},
		{"PUT /api/cameras/{name}", "/api/cameras/door", nil, want{403, 403}},
		{"DELETE /api/cameras/{name}", "/api/cameras/door", nil, want{403, 403}},
	}
	covered := map[string]bool{}
	for _, row := range rows {
		covered[row.pattern] = true
	}
	for _, rt := range s.Routes() {
		if rt.Camera && !covered[rt.Pattern] {
			t.Errorf("camera route %s has no row in TestPlayerGrants", rt.Pattern)
		}
	}
	pattern := ""
	for _, row := range rows {
		if row.pattern != "" {
			pattern = row.pattern
		}
		method, _, _ := strings.Cut(pattern, " ")
		for _, u := range []struct {
			name string
			want int
		}{{"watcher", row.want.watcher}, {"exporter", row.want.exporter}} {
			resp, body := do(t, nil, base, req{method: method, path: row.path, user: u.name, pass: u.name + "-password", header: row.header})
			settle(t, s)
			if resp.StatusCode != u.want {
				t.Errorf("%s %s %s %v: %s %.200s, want %d", u.name, method, row.path, row.header, resp.Status, body, u.want)
				continue
			}
			if u.name == "watcher" && resp.StatusCode == 206 && len(body) > 1000 {
				t.Errorf("watcher %s %v: %d bytes, want at most 1000", row.path, row.header, len(body))
			}
		}
	}
	// The bound says what was cut: the player asks for the rest.
	resp, body := do(t, nil, base, req{method: "GET", path: exp, user: "watcher", pass: "watcher-password", header: []string{"Range", "bytes=500-"}})
	if cr := resp.Header.Get("Content-Range"); resp.StatusCode != http.StatusPartialContent || len(body) != 1000 || !strings.HasPrefix(cr, "bytes 500-1499/") {
		t.Errorf("watcher bytes=500-: %s %q, %d bytes", resp.Status, cr, len(body))
	}
}

// TestBoundRange: the Range header of a user without export asks for at
// most max bytes; what cannot be one satisfiable range is refused.
func TestBoundRange(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"bytes=0-", "bytes=0-99", false},
		{"bytes=0-9", "bytes=0-9", false},
		{"bytes=50-500", "bytes=50-149", false},
		{"bytes=950-", "bytes=950-999", false},
		{"bytes=-30", "bytes=970-999", false},
		{"bytes=-5000", "bytes=0-99", false},
		{"bytes=2000-", "bytes=2000-", false}, // past the end: 416 from ServeContent
		{"bytes=0-9,20-29", "", true},
		{"bytes=9-1", "", true},
		{"bytes=-0", "", true},
		{"items=0-9", "", true},
		{"bytes=x-", "", true},
	} {
		got, err := boundRange(tc.in, 1000, 100)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("boundRange(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
