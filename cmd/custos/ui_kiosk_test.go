package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestUIKioskAudit opens the audit page the way a kiosk does, with the
// login in the URL (http://admin:pass@host/), and filters it by an
// evidence lock: the page loads (history.replaceState with the login in
// the document's URL used to throw), and the action filter offers every
// action the server's log may hold, the lock actions included (the list
// comes from GET /api/audit/actions).
func TestUIKioskAudit(t *testing.T) {
	base := uiServer(t, 1)
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"from":%q,"to":%q,"reason":"kiosk test"}`, now.Add(-time.Minute).Format(time.RFC3339), now.Format(time.RFC3339))
	resp, err := http.Post(base+"/api/cameras/door/locks", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST locks: %s", resp.Status)
	}
	var actions []string
	if code := getJSON(t, base+"/api/audit/actions", &actions); code != 200 ||
		!slices.Contains(actions, "evidence_lock") || !slices.Contains(actions, "evidence_unlock") {
		t.Fatalf("GET /api/audit/actions: %d %v", code, actions)
	}

	b := testpeer.Browser(t)
	type page struct {
		Actions []string
		Rows    []string
	}
	got := waitJSPage[page](t, b, base+"/?p=kiosk#/audit?action=evidence_lock", `(() => {
		const opts = [...document.querySelectorAll('#af-action option')].map((o) => o.value).filter((v) => v);
		const rows = [...document.querySelectorAll('#audit-table tbody tr td.action')].map((c) => c.textContent);
		return opts.length > 2 && rows.length ? {actions: opts, rows: rows} : null;
	})()`)
	if !slices.Equal(got.Actions, actions) {
		t.Errorf("the audit filter offers %v, want the server's %v", got.Actions, actions)
	}
	if len(got.Rows) != 1 || got.Rows[0] != "evidence_lock" {
		t.Errorf("kiosk audit page filtered by evidence_lock shows %v", got.Rows)
	}
	hash := waitJS[string](t, b, "location", `location.hash`)
	if want := "#/audit?action=evidence_lock"; hash != want {
		t.Errorf("location.hash %q, want %q", hash, want)
	}
	if u, err := url.Parse(base); err == nil {
		if _, ok := u.User.Password(); !ok {
			t.Fatal("the test must use a URL with a login in it")
		}
	}
}
