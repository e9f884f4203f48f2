package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/sim"
)

// TestProbeRoute probes a simulated camera through POST /api/probe, and
// checks the refusals: bad JSON, a non-RTSP URL, too long, wrong password,
// nobody listening.
func TestProbeRoute(t *testing.T) {
	s, err := sim.New(sim.Options{Cameras: 1, User: "admin", Pass: "right-pw"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := closed.Addr().String()
	closed.Close()

	api := &Server{}
	withAccounts(t, api, newIndex(t))
	srv := httptest.NewServer(asAdmin(api.Handler()))
	defer srv.Close()
	post := func(body string) (int, []byte) {
		resp, err := http.Post(srv.URL+"/api/probe", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	code, body := post(`{"url": "rtsp://admin:right-pw@` + ln.Addr().String() + `/cam1", "seconds": 1}`)
	var res probe.Result
	if code != 200 || json.Unmarshal(body, &res) != nil || len(res.Tracks) == 0 || res.Tracks[0].Width != 1920 ||
		res.Tracks[0].Received == nil || res.Tracks[0].Received.Frames < 20 {
		t.Fatalf("probe: %d %s", code, body)
	}
	if strings.Contains(string(body), "right-pw") {
		t.Errorf("the answer shows the password: %s", body)
	}
	for _, tc := range []struct {
		name, body string
		code       int
		reason     string
	}{
		{"not JSON", `url=x`, 400, "must be JSON"},
		{"unknown field", `{"url": "rtsp://a/b", "host": 1}`, 400, "must be JSON"},
		{"http URL", `{"url": "http://example.com/"}`, 400, "not an rtsp:// URL"},
		{"too long", `{"url": "rtsp://a/b", "seconds": 60}`, 400, "seconds must be"},
		{"wrong password", `{"url": "rtsp://` + ln.Addr().String() + `/cam1", "username": "admin", "password": "wrong-pw"}`, 422, "401"},
		{"nobody there", `{"url": "rtsp://` + deadAddr + `/x"}`, 422, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.body)
			if code != tc.code || !strings.Contains(string(body), tc.reason) || strings.Contains(string(body), "wrong-pw") {
				t.Errorf("%d %s, want %d with %q", code, body, tc.code, tc.reason)
			}
		})
	}
}
