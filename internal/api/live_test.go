package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/live"
)

// TestLiveViewersPerUser: one user's live views, WebSocket and WebRTC
// together, stop at MaxLivePerUser with a 429 that says why; another
// user is not affected; a view that ends frees its place.
func TestLiveViewersPerUser(t *testing.T) {
	hub := live.NewHub(live.HubOptions{})
	defer hub.Close()
	idx := newIndex(t)
	s := &Server{Cameras: CameraList{{Name: "door", Live: []*live.Hub{hub}}}, Index: idx, MaxLivePerUser: 2}
	withAccounts(t, s, idx)
	if _, err := s.Auth.AddUser(context.Background(), "guard", auth.Viewer, "guard-password", map[string]auth.Perm{"door": auth.PermLive}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	basic := func(user, pass string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
	}
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/cameras/door/live.ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(user, pass string) (*websocket.Conn, int) {
		c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: basic(user, pass)})
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			return nil, resp.StatusCode
		}
		return c, http.StatusSwitchingProtocols
	}
	var open []*websocket.Conn
	for range 2 {
		c, code := dial("guard", "guard-password")
		if c == nil {
			t.Fatalf("live view %d: %d", len(open)+1, code)
		}
		open = append(open, c)
	}
	waitViews := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); s.LiveViews() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d live views counted, want %d", s.LiveViews(), want)
			}
		}
	}
	waitViews(2)
	if c, code := dial("guard", "guard-password"); c != nil || code != http.StatusTooManyRequests {
		t.Errorf("third WebSocket view: %d, want 429", code)
	}
	// A WebRTC offer is a live view too (refused before it is read).
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/cameras/door/whep", strings.NewReader("v=0\r\n"))
	req.Header = basic("guard", "guard-password")
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body [512]byte
	n, _ := resp.Body.Read(body[:])
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body[:n]), "live.max_viewers_per_user") {
		t.Errorf("WHEP offer over the bound: %s %s", resp.Status, body[:n])
	}
	// Admin has its own count.
	if c, code := dial("admin", testAdminPassword); c == nil {
		t.Errorf("another user's view: %d", code)
	} else {
		c.CloseNow()
	}
	open[0].Close(websocket.StatusNormalClosure, "")
	waitViews(1)
	c, code := dial("guard", "guard-password")
	if c == nil {
		t.Fatalf("after closing one: %d", code)
	}
	c.CloseNow()
	open[1].CloseNow()
	waitViews(0)
}
