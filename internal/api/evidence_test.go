package api

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

// TestEvidenceExportParts: an evidence export across the recording's gap
// answers part 1 and, with part=2, part 2, each saying in its headers
// what every part covers and what the gap is; a covered range says
// "none"; a bad part is a 400.
func TestEvidenceExportParts(t *testing.T) {
	srv, rc := playbackServer(t)
	pub := rc.Key.Public().(ed25519.PublicKey)
	ts := func(k float64) string { return pt.At(k).UTC().Format(time.RFC3339Nano) }
	var covered string
	for _, part := range []string{"1", "2"} {
		resp, body := get(t, rangeURL(srv.URL, "/api/cameras/door/export.mp4", 250, 560, "download", "1", "evidence", "1", "part", part))
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("X-Custos-Part") != part || h.Get("X-Custos-Parts") != "2" ||
			h.Get("X-Custos-Gaps") != ts(300)+"/"+ts(480)+" no_recording" {
			t.Fatalf("part %s: %s %v", part, resp.Status, h)
		}
		if covered == "" {
			covered = h.Get("X-Custos-Covered")
		} else if h.Get("X-Custos-Covered") != covered {
			t.Errorf("parts disagree on what is covered: %q and %q", covered, h.Get("X-Custos-Covered"))
		}
		cov := strings.Split(covered, ", ")
		if len(cov) != 2 || !strings.HasSuffix(cov[0], "/"+ts(300)) || !strings.HasPrefix(cov[1], ts(480)+"/") {
			t.Errorf("X-Custos-Covered %q", covered)
		}
		rep, _, err := integrity.VerifyFile(bytes.NewReader(body), int64(len(body)), pub)
		if err != nil || rep.Part != int(part[0]-'0') || h.Get("X-Custos-From") != rep.Covered.From.Format(time.RFC3339Nano) ||
			h.Get("X-Custos-To") != rep.Covered.To.Format(time.RFC3339Nano) {
			t.Errorf("part %s verifies as %+v, %v; headers %s – %s", part, rep, err, h.Get("X-Custos-From"), h.Get("X-Custos-To"))
		}
	}
	resp, _ := get(t, rangeURL(srv.URL, "/api/cameras/door/export.mp4", 37, 260, "download", "1", "evidence", "1"))
	if resp.StatusCode != 200 || resp.Header.Get("X-Custos-Gaps") != "none" || resp.Header.Get("X-Custos-Parts") != "1" {
		t.Errorf("covered range: %s %v", resp.Status, resp.Header)
	}
	for _, part := range []string{"3", "0", "x"} {
		resp, body := get(t, rangeURL(srv.URL, "/api/cameras/door/export.mp4", 250, 560, "download", "1", "evidence", "1", "part", part))
		if resp.StatusCode != 400 {
			t.Errorf("part %s: %s %s", part, resp.Status, body)
		}
	}
}
