package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestUIAccounts drives the account pages in Chromium against a real
// server: form sign-in (a wrong password first), #/users (add a user with
// grants through the form, an API error next to the form, a token shown
// once that works as a bearer token, grants edited, a user deleted after
// confirming), #/audit (filter, paging, system actor), a viewer's view
// (admin links hidden, #/users refused, only granted cameras, #/account:
// own tokens and a password change that signs out), and the three pages
// at phone width.
func TestUIAccounts(t *testing.T) {
	base := uiServer(t, 1)
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	adminPW, _ := bu.User.Password()
	origin := bu.Scheme + "://" + bu.Host
	const guardPW, guardPW2 = "guard-password-1", "guard-password-2"

	admin := testpeer.Browser(t)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("admin signs in with the form", func(t *testing.T) {
		formLogin(t, admin, origin, "admin", "not-the-password")
		got := waitJS[[]string](t, admin, "sign-in error", `(() => {
			const e = document.getElementById('login-error');
			return e.textContent ? [e.getAttribute('role'), e.textContent, location.pathname] : null;
		})()`)
		if want := []string{"alert", "wrong user name or password", "/login"}; !reflect.DeepEqual(got, want) {
			t.Errorf("after a wrong password: %q, want %q", got, want)
		}
		formLogin(t, admin, origin, "admin", adminPW)
		l := waitGrid(t, admin)
		if !strings.Contains(l.User, "admin") || !reflect.DeepEqual(l.Tiles, []string{"door", "yard"}) || l.Hidden != 0 {
			t.Errorf("grid after signing in as admin: %+v", l)
		}
	})

	step("admin adds guard on #/users", func(t *testing.T) {
		pageReady(t, admin, origin+"/?p=users#/users", `document.querySelector('#nu-grants tr[data-camera="door"]') &&
			document.querySelector('#users-list tr[data-user="admin"]') && !/Loading/.test(document.getElementById('tokens').textContent)`)
		door := func(perm string) chromedp.CSS {
			return chromedp.CSS(`#nu-grants tr[data-camera="door"] input[data-perm="` + perm + `"]`)
		}
		// A password the server refuses: its message shows next to the form.
		do(t, admin, "fill the add-user form",
			chromedp.SendKeys(chromedp.CSS("#nu-name"), "guard"),
			chromedp.SetValue(chromedp.CSS("#nu-role"), "viewer"),
			chromedp.SendKeys(chromedp.CSS("#nu-pass"), "short"),
			chromedp.Click(door("live")),
			chromedp.Click(door("recordings")),
			chromedp.Click(chromedp.CSS("#add-user button[type=submit]")))
		if msg := waitJS[string](t, admin, "add-user error", `document.getElementById('nu-err').textContent`); !strings.Contains(msg, "password too short") {
			t.Errorf("add-user error: %q", msg)
		}
		do(t, admin, "fix the password",
			clearInput("#nu-pass"),
			chromedp.SendKeys(chromedp.CSS("#nu-pass"), guardPW),
			chromedp.Click(chromedp.CSS("#add-user button[type=submit]")))
		row := waitJS[string](t, admin, "guard in the users table",
			`(document.querySelector('#users-list tr[data-user="guard"]') || {}).textContent`)
		if !strings.Contains(row, "viewer") || !strings.Contains(row, "door: live, recordings") {
			t.Errorf("guard's row: %q", row)
		}
		if g := apiUser(t, base, "guard"); g == nil || g.Role != "viewer" || !reflect.DeepEqual(g.Grants, map[string]string{"door": "live,recordings"}) {
			t.Errorf("GET /api/users: guard is %+v, want a viewer with door: live,recordings", g)
		}
	})

	step("admin makes a token for guard", func(t *testing.T) {
		waitJS[bool](t, admin, "guard in the token form", `[...document.querySelectorAll('#tok-user option')].some((o) => o.value === 'guard')`)
		do(t, admin, "fill the token form",
			chromedp.SendKeys(chromedp.CSS("#tok-name"), "ci"),
			chromedp.SetValue(chromedp.CSS("#tok-user"), "guard"),
			clearInput("#tok-ttl"),
			chromedp.SendKeys(chromedp.CSS("#tok-ttl"), "24"),
			chromedp.Click(chromedp.CSS("#tok-form button[type=submit]")))
		shown := waitJS[[]string](t, admin, "new token", `(() => {
			const i = document.getElementById('new-token');
			return i && i.value ? [i.value, document.getElementById('tok-new').textContent, document.getElementById('tok-ok').textContent,
				String(document.activeElement === i)] : null;
		})()`)
		tok := shown[0]
		if !strings.Contains(shown[1], "will not be shown again") || !strings.Contains(shown[2], "will not be shown again") || shown[3] != "true" {
			t.Errorf("new token box %q, status %q, focused %s", shown[1], shown[2], shown[3])
		}
		var sess struct{ User, Method string }
		if code := bearerGet(t, origin+"/api/session", tok, &sess); code != 200 || sess.User != "guard" || sess.Method != "token" {
			t.Errorf("GET /api/session with the shown token: %d %+v", code, sess)
		}
		if code := bearerGet(t, origin+"/api/users", tok, nil); code != http.StatusForbidden {
			t.Errorf("GET /api/users with guard's token: %d, want 403", code)
		}
		row := waitJS[string](t, admin, "the token's row", `[...document.querySelectorAll('#tokens tbody tr')]
			.map((r) => [...r.cells].map((c) => c.textContent.trim()).join('|')).find((s) => s.startsWith('ci|'))`)
		if !strings.HasPrefix(row, "ci|guard|") || strings.Contains(row, tok) {
			t.Errorf("token row: %q", row)
		}
		do(t, admin, "scroll up", chromedp.Evaluate[chromedp.Void](`scrollTo(0, 0)`))
		screenshot(t, admin, "users.png")
	})

	step("admin edits grants and deletes a user", func(t *testing.T) {
		do(t, admin, "edit guard",
			chromedp.Click(chromedp.CSS(`#users-list button[data-edit="guard"]`)),
			chromedp.Click(chromedp.CSS(`#ue-grants tr[data-camera="door"] input[data-perm="export"]`)),
			chromedp.Click(chromedp.CSS(`#ue-access button[type=submit]`)))
		waitJS[bool](t, admin, "saved", `/^Saved/.test(document.getElementById('ue-access-ok').textContent)`)
		if g := apiUser(t, base, "guard"); g == nil || !reflect.DeepEqual(g.Grants, map[string]string{"door": "live,recordings,export"}) {
			t.Errorf("guard after editing grants: %+v", g)
		}
		// A user made through the API, deleted on the page after confirming.
		resp, err := http.Post(base+"/api/users", "application/json",
			strings.NewReader(`{"name":"temp","role":"operator","password":"temp-password"}`))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /api/users: %v %v", err, resp)
		}
		resp.Body.Close()
		pageReady(t, admin, origin+"/?p=users2#/users", `document.querySelector('#users-list tr[data-user="temp"]')`)
		do(t, admin, "delete temp",
			chromedp.Click(chromedp.CSS(`#users-list button[data-edit="temp"]`)),
			chromedp.Click(chromedp.CSS(`#ue-delete`)))
		if q := waitJS[string](t, admin, "confirmation", `document.getElementById('ue-confirm') && document.getElementById('ue-q').textContent`); !strings.Contains(q, "Delete temp?") {
			t.Errorf("confirmation: %q", q)
		}
		if apiUser(t, base, "temp") == nil {
			t.Fatal("temp was deleted before the confirmation")
		}
		do(t, admin, "confirm", chromedp.Click(chromedp.CSS(`#ue-confirm`)))
		waitJS[bool](t, admin, "temp gone", `!document.querySelector('#users-list tr[data-user="temp"]') && /Deleted temp/.test(document.getElementById('ul-ok').textContent)`)
		if u := apiUser(t, base, "temp"); u != nil {
			t.Errorf("temp still exists: %+v", u)
		}
	})

	step("admin reads the audit log", func(t *testing.T) {
		type entry struct {
			Seq                                 int
			Actor, Action, Detail, Result, Hash string
		}
		rows := `[...document.querySelectorAll('#audit-table tbody tr')].map((r) => ({seq: +r.dataset.seq,
			actor: r.querySelector('.actor').textContent, action: r.querySelector('.action').textContent,
			detail: r.querySelector('.detail').textContent, result: r.querySelector('.result').textContent,
			hash: r.querySelector('.hash').textContent}))`
		all, err := testpeer.EvalPage[[]entry](t, admin, origin+"/?p=audit#/audit", `(() => { const r = `+rows+`; return r.length ? r : null; })()`, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) < 5 || !slices.IsSortedFunc(all, func(a, b entry) int { return b.Seq - a.Seq }) {
			t.Errorf("audit log not newest first: %+v", all)
		}
		hint := waitJS[string](t, admin, "verify hint", `document.querySelector('main').textContent.match(/custos audit verify --config FILE[^.]*/)?.[0]`)
		t.Logf("hint: %s", hint)
		screenshot(t, admin, "audit.png")

		do(t, admin, "filter action=user_add",
			chromedp.SetValue(chromedp.CSS("#af-action"), "user_add"),
			chromedp.Click(chromedp.CSS("#audit-filter button[type=submit]")))
		got := waitJS[[]entry](t, admin, "user_add entries", `(() => { const r = `+rows+`;
			return r.length && r.every((e) => e.action === 'user_add') ? r : null; })()`)
		hex12 := regexp.MustCompile(`^[0-9a-f]{12}$`)
		found := false
		for _, e := range got {
			if !hex12.MatchString(e.Hash) {
				t.Errorf("hash cell %q: want 12 hex digits", e.Hash)
			}
			if e.Actor == "admin" && strings.Contains(e.Detail, "user=guard") && e.Result == "ok" {
				found = true
			}
		}
		if !found {
			t.Errorf("no user_add of guard by admin: %+v", got)
		}
		if h := waitJS[string](t, admin, "hash", `location.hash`); h != "#/audit?action=user_add" {
			t.Errorf("location.hash %q: the filter is not in the URL", h)
		}

		// Paging: three at a time, "Older" continues below the last.
		first := waitJSPage[[]entry](t, admin, origin+"/?p=audit2#/audit?limit=3", `(() => { const r = `+rows+`;
			return r.length === 3 && !document.getElementById('audit-older').hidden ? r : null; })()`)
		do(t, admin, "older", chromedp.Click(chromedp.CSS("#audit-older")))
		more := waitJS[[]entry](t, admin, "older entries", `(() => { const r = `+rows+`; return r.length === 6 ? r : null; })()`)
		if !reflect.DeepEqual(more[:3], first) {
			t.Errorf("older replaced the first page: %+v, then %+v", first, more)
		}
		for i := 1; i < len(more); i++ {
			if more[i].Seq != more[i-1].Seq-1 {
				t.Errorf("entries %d and %d after paging: want consecutive, newest first: %+v", i-1, i, more)
			}
		}
		// The server's own entries: actor "system"; a filter read from the URL.
		start := waitJSPage[[]entry](t, admin, origin+"/?p=audit3#/audit?action=start", `(() => { const r = `+rows+`;
			return r.length && document.getElementById('af-action').value === 'start' ? r : null; })()`)
		if start[0].Actor != "system" || start[0].Action != "start" {
			t.Errorf("start entry: %+v", start[0])
		}
		// A time range: datetime-local inputs become RFC 3339 bounds.
		from := time.Now().Add(time.Hour).Truncate(time.Second)
		do(t, admin, "filter from an hour ahead",
			clearInput("#af-action"),
			setInput("#af-from", from.Format("2006-01-02T15:04:05")),
			chromedp.Click(chromedp.CSS("#audit-filter button[type=submit]")))
		none := waitJS[[]string](t, admin, "no entries", `document.getElementById('audit-ok').textContent === 'No entries match.' &&
			[location.hash, String(document.querySelectorAll('#audit-table tbody tr').length)]`)
		if want := []string{"#/audit?from=" + url.QueryEscape(from.UTC().Format("2006-01-02T15:04:05.000Z")), "0"}; !reflect.DeepEqual(none, want) {
			t.Errorf("filtered from %s: %q, want %q", from, none, want)
		}
	})

	step("guard's view", func(t *testing.T) {
		guard := testpeer.Browser(t)
		formLogin(t, guard, origin, "guard", guardPW)
		l := waitGrid(t, guard)
		if !strings.Contains(l.User, "guard") || !reflect.DeepEqual(l.Tiles, []string{"door"}) || l.Hidden != 3 {
			t.Errorf("guard's grid: %+v (want only door, settings/users/audit links hidden)", l)
		}
		msg, err := testpeer.EvalPage[string](t, guard, origin+"/?p=users#/users", `(document.querySelector('main [role=alert]') || {}).textContent`, 30*time.Second)
		if err != nil || !strings.Contains(msg, "needs the admin role") {
			t.Errorf("#/users as guard: %q %v", msg, err)
		}
		// #/account from the header: guard's own token; a password change
		// with the wrong current password is refused, the right one signs
		// out everywhere.
		pageReady(t, guard, origin+"/?p=grid#/", `document.getElementById('account-link')`)
		do(t, guard, "account link", chromedp.Click(chromedp.CSS("#account-link")))
		toks := waitJS[[]string](t, guard, "guard's tokens", `document.querySelector('#tokens table') &&
			[...document.querySelectorAll('#tokens tbody tr td:first-child')].map((td) => td.textContent)`)
		if !reflect.DeepEqual(toks, []string{"ci"}) {
			t.Errorf("guard's tokens on #/account: %q, want [ci]", toks)
		}
		change := func(current string) {
			do(t, guard, "change password",
				clearInput("#pw-cur"), chromedp.SendKeys(chromedp.CSS("#pw-cur"), current),
				clearInput("#pw-new"), chromedp.SendKeys(chromedp.CSS("#pw-new"), guardPW2),
				clearInput("#pw-again"), chromedp.SendKeys(chromedp.CSS("#pw-again"), guardPW2),
				chromedp.Click(chromedp.CSS("#pw-form button[type=submit]")))
		}
		change("wrong-password")
		if msg := waitJS[string](t, guard, "refused", `document.getElementById('pw-err').textContent`); msg != "wrong user name or password" {
			t.Errorf("wrong current password: %q", msg)
		}
		change(guardPW)
		waitJS[bool](t, guard, "back at the sign-in form", `location.pathname === '/login' && !!document.getElementById('login')`)
		if code := basicGet(t, origin+"/api/session", "guard", guardPW2); code != 200 {
			t.Errorf("new password: %d", code)
		}
		if code := basicGet(t, origin+"/api/session", "guard", guardPW); code != http.StatusUnauthorized {
			t.Errorf("old password: %d", code)
		}
		p, err := testpeer.EvalPage[string](t, guard, origin+"/?p=after#/", `document.readyState === 'complete' && location.pathname`, 30*time.Second)
		if err != nil || p != "/login" {
			t.Errorf("the old session still opens the UI: %q %v", p, err)
		}
	})

	step("phone width", func(t *testing.T) {
		do(t, admin, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		for _, pg := range []struct{ url, ready string }{
			{"/?p=phone1#/users", `document.querySelector('#users-list table') && document.querySelector('#sessions table') && document.querySelector('#tokens table')`},
			{"/?p=phone2#/audit", `document.querySelector('#audit-table tbody tr')`},
			{"/?p=phone3#/account", `document.querySelector('#sessions table') && !/Loading/.test(document.getElementById('tokens').textContent)`},
		} {
			bad := waitJSPage[[]string](t, admin, origin+pg.url, `(() => {
				if (!(`+pg.ready+`)) return null;
				const name = (el) => (el.getAttribute('aria-label') || (el.labels && el.labels.length && el.labels[0].textContent) ||
					el.textContent || el.title || '').trim();
				const bad = [...document.querySelectorAll('button, a, input, select')]
					.filter((el) => !el.hidden && el.type !== 'hidden' && !name(el)).map((el) => el.outerHTML.slice(0, 80));
				if (document.documentElement.scrollWidth > innerWidth) bad.push('page ' + document.documentElement.scrollWidth + ' px wide');
				for (const th of document.querySelectorAll('th')) if (!th.getAttribute('scope')) bad.push('th without scope: ' + th.textContent);
				return ['checked', ...bad];
			})()`)
			if len(bad) > 1 {
				t.Errorf("%s: %q", pg.url, bad[1:])
			}
		}
	})
}

// formLogin opens the sign-in form in the tab of ctx and submits user and
// password, typed like a person would.
func formLogin(t *testing.T, ctx context.Context, origin, user, password string) {
	t.Helper()
	pageReady(t, ctx, origin+"/login", `document.readyState === 'complete' && document.getElementById('login')`)
	do(t, ctx, "sign in as "+user,
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")))
}

// landing is the camera grid as a signed-in user sees it.
type landing struct {
	User  string
	Tiles []string
	// Hidden counts the nav links hidden for the user's role.
	Hidden int
}

// waitGrid waits until the tab shows the camera grid at /.
func waitGrid(t *testing.T, ctx context.Context) landing {
	t.Helper()
	return waitJS[landing](t, ctx, "the camera grid", `location.pathname === '/' && document.querySelector('#grid .tile') &&
		document.getElementById('user-menu').textContent && {
			user: document.getElementById('user-menu').textContent,
			tiles: [...document.querySelectorAll('#grid .tile')].map((e) => e.dataset.camera),
			hidden: [...document.querySelectorAll('nav a')].filter((a) => a.offsetParent === null).length}`)
}

// pageReady opens pageURL in the tab of ctx and waits until ready (a
// JavaScript expression) is truthy.
func pageReady(t *testing.T, ctx context.Context, pageURL, ready string) {
	t.Helper()
	if _, err := testpeer.EvalPage[chromedp.Void](t, ctx, pageURL, ready, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitJSPage is pageReady returning expr's value.
func waitJSPage[T any](t *testing.T, ctx context.Context, pageURL, expr string) T {
	t.Helper()
	v, err := testpeer.EvalPage[T](t, ctx, pageURL, expr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitJS evaluates expr in the tab of ctx every 100 ms until it is truthy
// and returns its value decoded into T. Unlike chromedp.Poll it outlives
// navigations (a sign-in moves to another page); it fails the test after
// 30 s.
func waitJS[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	js := "(() => { const v = (" + expr + "); return v ? JSON.stringify(v) : ''; })()"
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := chromedp.Run(ectx, chromedp.Evaluate[string](js))
		cancel()
		if err == nil && s != "" {
			var v T
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				t.Fatalf("%s: decode %s: %v", what, s, err)
			}
			return v
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not true within 30 s (last error: %v)", what, expr, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clearInput empties the input or select matching the CSS selector sel (chromedp.Clear
// only resets the value attribute, chromedp.SetValue refuses "").
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel))
}

// setInput sets an input's value by script: chromedp.SetValue resolves a
// node id first, which a DOM change on a loaded machine can invalidate
// between the query and the set ("could not set value on node N").
func setInput(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, sel, value))
}

// do runs browser actions, failing the test after 30 s or on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(dctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// apiUserJSON is a user in GET /api/users.
type apiUserJSON struct {
	Name, Role string
	Grants     map[string]string
}

// apiUser returns the user named name from GET /api/users (as the admin
// of base), nil when there is none.
func apiUser(t *testing.T, base, name string) *apiUserJSON {
	t.Helper()
	var us []apiUserJSON
	if code := getJSON(t, base+"/api/users", &us); code != 200 {
		t.Fatalf("GET /api/users: %d", code)
	}
	for _, u := range us {
		if u.Name == name {
			return &u
		}
	}
	return nil
}

// bearerGet GETs u with a bearer token, decodes a 200 answer into v (when
// not nil) and returns the status.
func bearerGet(t *testing.T, u, token string, v any) int {
	t.Helper()
	return authGet(t, u, "Bearer "+token, v)
}

// basicGet GETs u with HTTP Basic credentials and returns the status.
func basicGet(t *testing.T, u, user, password string) int {
	t.Helper()
	return authGet(t, u, "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)), nil)
}

func authGet(t *testing.T, u, authorization string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", u, err, b)
		}
	}
	return resp.StatusCode
}
