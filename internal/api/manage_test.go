package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/live"
	"github.com/custos-nvr/custos/internal/recorder"
)

// recordingAdmin is a CameraAdmin that records what reached it.
type recordingAdmin struct {
	mu    sync.Mutex
	calls []string
}

func (a *recordingAdmin) note(s string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, s)
	return nil
}

func (a *recordingAdmin) Add(_ context.Context, c config.Camera) error {
	return a.note("add " + c.Name)
}
func (a *recordingAdmin) Update(_ context.Context, c config.Camera) error {
	return a.note("update " + c.Name)
}
func (a *recordingAdmin) Remove(_ context.Context, name string) error {
	return a.note("remove " + name)
}

func (a *recordingAdmin) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

// runningCamera is a camera with a main stream (in error: no disk) and a
// live hub, so that /metrics and /api/live have something to list.
func runningCamera(t *testing.T, s *Server, name string) Camera {
	t.Helper()
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{Camera: name, Stream: "main", Index: s.Index}, errors.New("no disk in this test"))
	if err != nil {
		t.Fatal(err)
	}
	h := live.NewHub(live.HubOptions{Camera: name, Stream: "main"})
	t.Cleanup(h.Close)
	return Camera{Name: name, Streams: []*recorder.Supervisor{sup}, Live: []*live.Hub{h}}
}

// TestCameraManagementScoped: an operator changes, removes or sets the
// retention of only the cameras on which they hold every permission, adds
// cameras only with every permission on *, and /api/live and /metrics show
// them only the cameras they hold a grant on.
func TestCameraManagementScoped(t *testing.T) {
	idx := newIndex(t)
	ca := &recordingAdmin{}
	s := &Server{Index: idx, CameraAdmin: ca}
	withAccounts(t, s, idx)
	s.Cameras = CameraList{runningCamera(t, s, "door"), runningCamera(t, s, "gate")}
	ctx := context.Background()
	for _, u := range []struct {
		name   string
		grants map[string]auth.Perm
	}{
		{"owner", map[string]auth.Perm{"door": auth.PermAll}},                      // manages door
		{"watcher", map[string]auth.Perm{"door": auth.PermLive | auth.PermExport}}, // not all: manages nothing
		{"chief", map[string]auth.Perm{auth.AllCameras: auth.PermAll}},             // manages every camera, adds
	} {
		if _, err := s.Auth.AddUser(ctx, u.name, auth.Operator, u.name+"-password", u.grants); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	body := `{"url":"rtsp://127.0.0.1:8554/x"}`
	for _, tc := range []struct {
		user, method, path string
		want               int
	}{
		{"owner", "PUT", "/api/cameras/gate", 403},
		{"owner", "DELETE", "/api/cameras/gate", 403},
		{"owner", "PUT", "/api/cameras/nosuch", 403}, // names cannot be probed
		{"owner", "POST", "/api/cameras", 403},
		{"watcher", "PUT", "/api/cameras/door", 403},
		{"watcher", "DELETE", "/api/cameras/door", 403},
		{"watcher", "POST", "/api/cameras", 403},
		{"owner", "PUT", "/api/cameras/door", 200},
		{"owner", "DELETE", "/api/cameras/door", 204},
		{"chief", "PUT", "/api/cameras/gate", 200},
		{"chief", "POST", "/api/cameras", 201},
	} {
		b := body
		if tc.method == "POST" {
			b = `{"name":"yard","url":"rtsp://127.0.0.1:8554/x"}`
		}
		if tc.method == "DELETE" {
			b = ""
		}
		resp, rb := do(t, nil, srv.URL, req{method: tc.method, path: tc.path, body: b, user: tc.user, pass: tc.user + "-password"})
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s: %s %s, want %d", tc.user, tc.method, tc.path, resp.Status, rb, tc.want)
		}
	}
	if got, want := ca.got(), []string{"update door", "remove door", "update gate", "add yard"}; !slices.Equal(got, want) {
		t.Errorf("the camera admin was asked %q, want %q", got, want)
	}

	// Listings: owner and watcher hold grants on door only.
	for _, user := range []string{"owner", "watcher"} {
		for _, path := range []string{"/api/live", "/metrics"} {
			resp, rb := do(t, nil, srv.URL, req{method: "GET", path: path, user: user, pass: user + "-password"})
			if resp.StatusCode != 200 || !strings.Contains(string(rb), `door`) || strings.Contains(string(rb), "gate") {
				t.Errorf("%s GET %s: %s, want door and not gate in\n%s", user, path, resp.Status, rb)
			}
		}
	}
	resp, rb := do(t, nil, srv.URL, req{method: "GET", path: "/metrics", user: "chief", pass: "chief-password"})
	if resp.StatusCode != 200 || !strings.Contains(string(rb), `camera="gate"`) || !strings.Contains(string(rb), `camera="door"`) {
		t.Errorf("chief GET /metrics: %s, want door and gate in\n%s", resp.Status, rb)
	}
}
