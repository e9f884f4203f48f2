package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
)

// TestLockLimits: setting a lock needs the lock grant (export is not
// enough); a lock cannot end in the future; a non-admin's lock spans at
// most LockMaxSpan and a non-admin holds at most LockMaxActive; admins
// are not limited by either, and a released lock frees a place.
func TestLockLimits(t *testing.T) {
	s, srv := accessServer(t)
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s.Now = clock.Now
	s.LockMaxSpan, s.LockMaxActive = 48*time.Hour, 2
	ctx := context.Background()
	if _, err := s.Auth.Update(ctx, "guard", nil, map[string]auth.Perm{"door": auth.PermRecordings | auth.PermExport | auth.PermLock}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Auth.AddUser(ctx, "exporter", auth.Viewer, "exporter-password",
		map[string]auth.Perm{"door": auth.PermRecordings | auth.PermExport}); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	lock := func(user, pass string, from, to time.Time) (int, string) {
		body := fmt.Sprintf(`{"from":%q,"to":%q,"reason":"incident"}`, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		resp, b := do(t, nil, srv.URL, req{method: "POST", path: "/api/cameras/door/locks", body: body, user: user, pass: pass})
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		user     string
		from, to time.Time
		code     int
		msg      string
	}{
		{"exporter", now.Add(-time.Hour), now, 403, "no lock permission"},
		{"guard", now.Add(-time.Hour), now.Add(2 * time.Minute), 400, "in the future"},
		{"guard", now.Add(24 * time.Hour), now.Add(25 * time.Hour), 400, "in the future"},
		{"admin", now.Add(-time.Hour), now.Add(time.Hour), 400, "in the future"},
		{"guard", now.Add(-72 * time.Hour), now, 400, "at most 48h0m0s"},
		{"guard", now.Add(-time.Hour), now.Add(30 * time.Second), 201, ""}, // clock slack
		{"guard", now.Add(-48 * time.Hour), now.Add(-47 * time.Hour), 201, ""},
		{"guard", now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), 409, "holds 2 active evidence locks"},
		{"admin", now.Add(-72 * time.Hour), now, 201, ""}, // admins: longer and more
		{"admin", now.Add(-5 * time.Hour), now, 201, ""},
		{"admin", now.Add(-6 * time.Hour), now, 201, ""},
	} {
		pass := tc.user + "-password"
		if tc.user == "admin" {
			pass = testAdminPassword
		}
		code, body := lock(tc.user, pass, tc.from, tc.to)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s locks %s..%s: %d %s, want %d %q", tc.user, tc.from, tc.to, code, body, tc.code, tc.msg)
		}
	}
	// Releasing one of guard's locks frees a place.
	ls, _ := s.Index.Locks(ctx, "door", time.Unix(0, 0), now.Add(time.Hour), false)
	for _, l := range ls {
		if l.CreatedBy == "guard" {
			resp, b := do(t, nil, srv.URL, req{method: "POST", path: fmt.Sprintf("/api/locks/%d/release", l.ID), body: `{"reason":"done"}`,
				user: "admin", pass: testAdminPassword})
			if resp.StatusCode != 204 {
				t.Fatalf("release: %s %s", resp.Status, b)
			}
			break
		}
	}
	if code, body := lock("guard", "guard-password", now.Add(-3*time.Hour), now.Add(-2*time.Hour)); code != 201 {
		t.Errorf("after a release: %d %s", code, body)
	}
}

// TestLockedFullReported: retention's alarm of a disk full of locked
// video shows in GET /api/storage and /metrics.
func TestLockedFullReported(t *testing.T) {
	s, srv := accessServer(t)
	since := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	alarm := map[string]retention.LockedFull{}
	s.LockedFull = func() map[string]retention.LockedFull { return alarm }
	s.Disks = []Disk{{Name: "d1", Path: "/x", MinFree: 3000, Usage: func() (uint64, uint64, error) { return 10000, 0, nil }},
		{Name: "d2", Path: "/y", Usage: func() (uint64, uint64, error) { return 10000, 5000, nil }}}
	srv = httptest.NewServer(s.Handler())
	defer srv.Close()
	check := func(full bool) {
		t.Helper()
		resp, body := do(t, nil, srv.URL, req{method: "GET", path: "/api/storage", user: "admin", pass: testAdminPassword})
		var disks []DiskJSON
		if resp.StatusCode != 200 || json.Unmarshal(body, &disks) != nil || len(disks) != 2 {
			t.Fatalf("storage: %s %s", resp.Status, body)
		}
		if disks[0].LockedFull != full || (full != strings.Contains(disks[0].Alarm, "evidence locks hold all 7 segments")) || disks[1].LockedFull {
			t.Errorf("storage with alarm %v: %+v", full, disks)
		}
		_, body = do(t, nil, srv.URL, req{method: "GET", path: "/metrics", user: "admin", pass: testAdminPassword})
		want := fmt.Sprintf("custos_storage_locked_full{storage=\"d1\"} %d\n", map[bool]int{false: 0, true: 1}[full])
		if !strings.Contains(string(body), want) || !strings.Contains(string(body), "custos_storage_locked_full{storage=\"d2\"} 0\n") {
			t.Errorf("metrics without %q:\n%s", want, body)
		}
	}
	check(false)
	alarm["d1"] = retention.LockedFull{Disk: "d1", Since: since, Free: 0, MinFree: 3000, Locked: 7}
	check(true)
	// A camera on d1 whose writes fail says why.
	st := s.lockedFullReason(recorder.Status{State: recorder.StateReconnecting, Reason: "write: no space left on device"}, "d1")
	if !strings.HasPrefix(st.Reason, "write: no space left on device (storage d1 is below min_free") {
		t.Errorf("reason %q", st.Reason)
	}
	if st := s.lockedFullReason(recorder.Status{State: recorder.StateRecording}, "d1"); st.Reason != "" {
		t.Errorf("recording stream's reason %q", st.Reason)
	}
}
