// admin.js: the account pages. #/users (admins): users with their role
// and camera grants, every session and API token; #/audit (admins): the
// audit log, newest first; #/account (everyone): one's own password,
// sessions and tokens. Loaded before app.js, whose helpers (main, me,
// esc, api, cleanup) these functions use when they run.
"use strict";

const PERMS = [["live", "Live"], ["recordings", "Recordings"], ["export", "Export"], ["lock", "Lock"]];
const ROLES = ["viewer", "operator", "admin"];
// AUDIT_PAGE is how many audit entries one request asks for.
const AUDIT_PAGE = 50;

const byId = (id) => document.getElementById(id);
const when = (s) => (s ? new Date(s).toLocaleString() : "—");
const timeCell = (s) => (s ? `<time datetime="${esc(s)}">${esc(when(s))}</time>` : "—");
const jsonReq = (method, body) => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const userPath = (name) => "/api/users/" + encodeURIComponent(name);
// toLocalInput formats a Date for a datetime-local input (local time).
const toLocalInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);

// msgs returns the message regions that follow a form: role=status for
// progress and success, role=alert for errors. say fills them.
const msgs = (id) => `<p id="${id}-ok" class="msg ok" role="status"></p><p id="${id}-err" class="msg error" role="alert"></p>`;
function say(id, text, isError) {
  const ok = byId(id + "-ok"), err = byId(id + "-err");
  if (ok) ok.textContent = isError ? "" : text;
  if (err) err.textContent = isError ? text : "";
}

// grantsText describes a user's grants for a table cell.
function grantsText(role, grants) {
  if (role === "admin") return "every camera (admin)";
  const parts = Object.keys(grants || {}).sort().map((c) =>
    `${c === "*" ? "all cameras" : c}: ${String(grants[c]).split(",").join(", ")}`);
  return parts.join("; ") || "none";
}

// grantsTable is the grant editor: a row per camera (and one for every
// camera, "*"; and one for any granted camera that is no longer
// configured), a checkbox per permission. readGrants reads it back.
function grantsTable(cams, grants) {
  grants = grants || {};
  const names = cams.map((c) => c.name);
  for (const k of Object.keys(grants)) if (k !== "*" && !names.includes(k)) names.push(k);
  const rows = [["*", "All cameras (*)"]].concat(names.map((n) => [n, n]));
  return `<table class="grants"><thead><tr><th scope="col">Camera</th>` +
    PERMS.map(([, label]) => `<th scope="col">${label}</th>`).join("") + `</tr></thead><tbody>` +
    rows.map(([key, label]) => {
      const have = String(grants[key] || "").split(",");
      return `<tr data-camera="${esc(key)}"><th scope="row">${esc(label)}</th>` + PERMS.map(([p, plabel]) =>
        `<td><label class="cb"><input type="checkbox" data-perm="${p}" aria-label="${esc(plabel + ": " + label)}"` +
        `${have.includes(p) ? " checked" : ""}></label></td>`).join("") + `</tr>`;
    }).join("") + `</tbody></table>`;
}
function readGrants(box) {
  const out = {};
  for (const tr of box.querySelectorAll("tr[data-camera]")) {
    const ps = [...tr.querySelectorAll("input[data-perm]:checked")].map((i) => i.dataset.perm);
    if (ps.length) out[tr.dataset.camera] = ps.join(",");
  }
  return out;
}
const sameGrants = (a, b) => grantsText("", a) === grantsText("", b);
const roleSelect = (id, role) => `<select id="${id}">` +
  ROLES.map((r) => `<option${r === role ? " selected" : ""}>${r}</option>`).join("") + `</select>`;

// shortUA names the browser and system of a User-Agent header.
function shortUA(ua) {
  const b = ["Edg", "OPR", "Firefox", "Chrome", "Safari"].map((n) => (ua.match(new RegExp(n + "/(\\d+)")) || [])[0]).find(Boolean);
  const os = (ua.match(/Android|iPhone|iPad|Windows|Mac OS X|CrOS|Linux/) || [])[0];
  return [b && b.replace("Edg/", "Edge/").replace("OPR/", "Opera/"), os].filter(Boolean).join(" on ") || ua || "—";
}

// sessionsSection runs the sessions section (sessionsHTML): every
// session (admins, all: true) or one's own, each with a button that ends
// it (ending this browser's signs out). It returns the list's reload.
function sessionsSection(all) {
  const box = byId("sessions");
  box.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-session]");
    if (!b) return;
    b.disabled = true;
    try {
      await api("/api/sessions/" + encodeURIComponent(b.dataset.session), { method: "DELETE" });
      if (b.dataset.current) { location.assign("/login"); return; }
      say("ss", "Session ended.");
      load();
    } catch (err) {
      b.disabled = false;
      say("ss", "Cannot end the session: " + err.message, true);
    }
  });
  async function load() {
    let list;
    try {
      list = await (await api("/api/sessions")).json();
    } catch (err) {
      box.textContent = "";
      say("ss", "Cannot load sessions: " + err.message, true);
      return;
    }
    if (!all) list = list.filter((s) => s.user === me.user);
    list.sort((a, b) => (a.last_seen < b.last_seen ? 1 : -1));
    if (!list.length) { box.innerHTML = `<p>No browser sessions.</p>`; return; }
    box.innerHTML = `<table><thead><tr>${all ? `<th scope="col">User</th>` : ""}<th scope="col">Signed in</th>
      <th scope="col">Last seen</th><th scope="col">Expires</th><th scope="col">Address</th><th scope="col">Browser</th>
      <th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>` +
      list.map((s) => `<tr data-session-row="${esc(s.id)}">${all ? `<td>${esc(s.user)}</td>` : ""}<td>${timeCell(s.created)}</td>
        <td>${timeCell(s.last_seen)}</td><td>${timeCell(s.expires)}</td><td>${esc(s.addr)}</td>
        <td title="${esc(s.user_agent)}">${esc(shortUA(s.user_agent))}${s.current ? ` <strong>(this browser)</strong>` : ""}</td>
        <td><button type="button" data-session="${esc(s.id)}"${s.current ? ` data-current="1"` : ""}
          aria-label="${esc(s.current ? "Sign out this browser" : `End the session of ${s.user} from ${s.addr}, last seen ${when(s.last_seen)}`)}">
          ${s.current ? "Sign out" : "End"}</button></td></tr>`).join("") + `</tbody></table>`;
  }
  load();
  return load;
}

// tokensSection runs the API tokens section: the list (all for admins
// when users is given, else one's own), a form to make one (for any of
// users, or for oneself) and the new token, shown once.
function tokensSection(users) {
  const list = byId("tokens"), form = byId("tok-form"), made = byId("tok-new");
  const userSel = byId("tok-user");
  if (userSel && users) {
    const cur = userSel.value || me.user;
    userSel.innerHTML = users.map((n) => `<option${n === cur ? " selected" : ""}>${esc(n)}</option>`).join("");
  }
  if (form.dataset.wired) return load();
  form.dataset.wired = "1";
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: byId("tok-name").value.trim(), ttl_hours: Number(byId("tok-ttl").value || 0) };
    if (userSel) body.user = userSel.value;
    made.hidden = true;
    say("tok", "Creating…");
    try {
      const t = await (await api("/api/tokens", jsonReq("POST", body))).json();
      made.innerHTML = `<label>New token “${esc(t.name)}” for ${esc(t.user)}
          <input id="new-token" readonly spellcheck="false" value="${esc(t.token)}"></label>
        <button type="button" id="tok-copy">Copy</button>
        <p class="hint">Copy it now: it will not be shown again. Send it as <code>Authorization: Bearer TOKEN</code>.</p>`;
      made.hidden = false;
      const input = byId("new-token");
      byId("tok-copy").addEventListener("click", async () => {
        input.select();
        try {
          await navigator.clipboard.writeText(input.value);
          say("tok", "Copied.");
        } catch (_) {
          say("tok", document.execCommand("copy") ? "Copied." : "Press Ctrl+C (⌘C) to copy the selected token.");
        }
      });
      say("tok", `Token “${t.name}” created for ${t.user}${t.expires ? ", valid until " + when(t.expires) : ", never expires"}. ` +
        "Copy it now: it will not be shown again.");
      form.reset();
      input.focus();
      input.select();
      load();
    } catch (err) {
      say("tok", "Cannot create the token: " + err.message, true);
    }
  });
  list.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-token]");
    if (!b) return;
    b.disabled = true;
    try {
      await api("/api/tokens/" + encodeURIComponent(b.dataset.token), { method: "DELETE" });
      say("tok", "Token deleted.");
      load();
    } catch (err) {
      b.disabled = false;
      say("tok", "Cannot delete the token: " + err.message, true);
    }
  });
  async function load() {
    let toks;
    try {
      toks = await (await api("/api/tokens")).json();
    } catch (err) {
      list.textContent = "";
      say("tok", "Cannot load tokens: " + err.message, true);
      return;
    }
    if (!users) toks = toks.filter((t) => t.user === me.user);
    if (!toks.length) { list.innerHTML = `<p>No API tokens.</p>`; return; }
    list.innerHTML = `<table><thead><tr><th scope="col">Name</th>${users ? `<th scope="col">User</th>` : ""}
      <th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th>
      <th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>` +
      toks.map((t) => `<tr data-token-row="${t.id}"><td>${esc(t.name)}</td>${users ? `<td>${esc(t.user)}</td>` : ""}
        <td>${timeCell(t.created)}</td><td>${t.last_used ? timeCell(t.last_used) : "never"}</td>
        <td>${t.expires ? timeCell(t.expires) : "never"}</td>
        <td><button type="button" data-token="${t.id}" aria-label="${esc(`Delete token ${t.name} of ${t.user}`)}">Delete</button></td></tr>`).join("") +
      `</tbody></table>`;
  }
  return load();
}

// tokensHTML and sessionsHTML are the sections the two functions above
// run; forUser adds the user choice of admins.
const sessionsHTML = (title) => `<section aria-labelledby="ss-h"><h2 id="ss-h">${title}</h2>
  <div id="sessions">Loading…</div>${msgs("ss")}</section>`;
const tokensHTML = (forUser) => `<section aria-labelledby="tok-h"><h2 id="tok-h">API tokens</h2>
  <p class="hint note">A token lets a script or another system use the API as its user (<code>Authorization: Bearer …</code>), without a password.</p>
  <div id="tokens">Loading…</div>
  <form id="tok-form" class="add" aria-labelledby="tok-form-h"><h3 id="tok-form-h" class="sr-only">New API token</h3>
    <label>Token name <input id="tok-name" required maxlength="100" autocomplete="off" placeholder="backup script"></label>
    ${forUser ? `<label>For user <select id="tok-user"></select></label>` : ""}
    <label>Valid for (hours, 0 = never expires) <input id="tok-ttl" type="number" min="0" step="any" value="0"></label>
    <button type="submit">Create token</button>
  </form>${msgs("tok")}
  <div id="tok-new" class="token-box" hidden></div></section>`;

// showUsers is #/users: users, their editor, the add form, sessions and
// tokens.
async function showUsers() {
  main.innerHTML = `<h1>Users and access</h1>
    <section aria-labelledby="ul-h"><h2 id="ul-h">Users</h2><div id="users-list">Loading…</div>${msgs("ul")}</section>
    <section id="user-edit" aria-labelledby="ue-h" hidden></section>
    <section aria-labelledby="nu-h"><h2 id="nu-h">Add a user</h2>
      <form id="add-user" class="add">
        <label>Name <input id="nu-name" required maxlength="64" autocomplete="off"></label>
        <label>Role ${roleSelect("nu-role", "viewer")}</label>
        <label>Password <input id="nu-pass" type="password" required autocomplete="new-password"></label>
        <fieldset class="grants-box"><legend>Camera access (operators and viewers; admins may use every camera)</legend>
          <div id="nu-grants">Loading…</div></fieldset>
        <button type="submit">Add user</button>
      </form>${msgs("nu")}
    </section>
    ${sessionsHTML("Sessions")}
    ${tokensHTML(true)}`;
  let users = [], cams = [];
  try {
    [users, cams] = await Promise.all([api("/api/users").then((r) => r.json()), api("/api/cameras").then((r) => r.json())]);
  } catch (e) {
    main.innerHTML = `<h1>Users and access</h1><p class="error" role="alert">${esc(e.message)}</p>`;
    return;
  }
  byId("nu-grants").innerHTML = grantsTable(cams, {});
  const reloadSessions = sessionsSection(true);

  function render() {
    users.sort((a, b) => a.name.localeCompare(b.name));
    byId("users-list").innerHTML = `<table><thead><tr><th scope="col">Name</th><th scope="col">Role</th>
      <th scope="col">Cameras</th><th scope="col">Created</th><th scope="col">Password changed</th>
      <th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>` +
      users.map((u) => `<tr data-user="${esc(u.name)}"><th scope="row">${esc(u.name)}${u.name === me.user ? " (you)" : ""}</th>
        <td>${esc(u.role)}</td><td class="grants-text">${esc(grantsText(u.role, u.grants))}</td>
        <td>${timeCell(u.created)}</td><td>${timeCell(u.password_changed)}</td>
        <td><button type="button" data-edit="${esc(u.name)}" aria-controls="user-edit" aria-label="Edit ${esc(u.name)}">Edit</button></td></tr>`).join("") +
      `</tbody></table>`;
    tokensSection(users.map((u) => u.name));
  }
  async function reload() {
    try {
      users = await (await api("/api/users")).json();
      render();
    } catch (e) {
      say("ul", "Cannot load users: " + e.message, true);
    }
  }
  render();
  byId("users-list").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-edit]");
    const u = b && users.find((x) => x.name === b.dataset.edit);
    if (u) edit(u);
  });

  // edit opens the editor of user u under the list: role and grants,
  // password, delete (after a confirmation).
  function edit(u) {
    const box = byId("user-edit");
    box.hidden = false;
    box.innerHTML = `<h2 id="ue-h" tabindex="-1">Edit ${esc(u.name)}</h2>
      <form id="ue-access" class="add">
        <label>Role ${roleSelect("ue-role", u.role)}</label>
        <fieldset class="grants-box"><legend>Camera access of ${esc(u.name)}</legend><div id="ue-grants">${grantsTable(cams, u.grants)}</div></fieldset>
        <button type="submit">Save role and access</button>
      </form>${msgs("ue-access")}
      <form id="ue-pass" class="add">
        <label>New password for ${esc(u.name)} <input id="ue-newpass" type="password" required autocomplete="new-password"></label>
        <button type="submit">Set password</button>
        <p class="hint">Setting a password ends all of the user's sessions.</p>
      </form>${msgs("ue-pass")}
      <div id="ue-del" class="add"></div>${msgs("ue-del")}
      <p><button type="button" id="ue-close">Close the editor</button></p>`;
    const close = () => { box.hidden = true; box.innerHTML = ""; const b = main.querySelector(`button[data-edit="${CSS.escape(u.name)}"]`); if (b) b.focus(); };
    byId("ue-close").addEventListener("click", close);
    byId("ue-access").addEventListener("submit", async (e) => {
      e.preventDefault();
      const role = byId("ue-role").value, grants = readGrants(byId("ue-grants"));
      const body = {};
      if (role !== u.role) body.role = role;
      if (!sameGrants(grants, u.grants)) body.grants = grants;
      if (!Object.keys(body).length) { say("ue-access", "Nothing to change."); return; }
      say("ue-access", "Saving…");
      try {
        const nu = await (await api(userPath(u.name), jsonReq("PATCH", body))).json();
        if (u.name === me.user && body.role) { location.reload(); return; }
        Object.assign(u, nu);
        say("ue-access", `Saved: ${u.name} is ${u.role} with ${grantsText(u.role, u.grants)}.`);
        render();
      } catch (err) {
        say("ue-access", err.message, true);
      }
    });
    byId("ue-pass").addEventListener("submit", async (e) => {
      e.preventDefault();
      say("ue-pass", "Setting…");
      try {
        await api(userPath(u.name) + "/password", jsonReq("PUT", { password: byId("ue-newpass").value }));
        if (u.name === me.user) { location.assign("/login"); return; }
        byId("ue-newpass").value = "";
        say("ue-pass", `Password of ${u.name} set; their sessions have ended.`);
        reload();
        reloadSessions();
      } catch (err) {
        say("ue-pass", err.message, true);
      }
    });
    const del = byId("ue-del");
    const askDelete = () => {
      del.innerHTML = `<button type="button" id="ue-delete" class="danger">Delete ${esc(u.name)}…</button>`;
      byId("ue-delete").addEventListener("click", () => {
        del.innerHTML = `<p id="ue-q">Delete ${esc(u.name)}? Their sessions and API tokens end; the audit log keeps their entries.</p>
          <button type="button" id="ue-confirm" class="danger" aria-describedby="ue-q">Yes, delete ${esc(u.name)}</button>
          <button type="button" id="ue-cancel">Cancel</button>`;
        byId("ue-cancel").addEventListener("click", () => { askDelete(); byId("ue-delete").focus(); });
        byId("ue-confirm").addEventListener("click", async () => {
          try {
            await api(userPath(u.name), { method: "DELETE" });
            if (u.name === me.user) { location.assign("/login"); return; }
            box.hidden = true;
            box.innerHTML = "";
            say("ul", `Deleted ${u.name}.`);
            await reload();
            byId("ul-h").focus();
          } catch (err) {
            askDelete();
            say("ue-del", err.message, true);
          }
        });
        byId("ue-cancel").focus();
      });
    };
    askDelete();
    byId("ue-h").focus();
  }

  byId("add-user").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: byId("nu-name").value.trim(), role: byId("nu-role").value, password: byId("nu-pass").value,
      grants: readGrants(byId("nu-grants")) };
    say("nu", "Adding…");
    try {
      const u = await (await api("/api/users", jsonReq("POST", body))).json();
      e.target.reset();
      byId("nu-grants").innerHTML = grantsTable(cams, {});
      say("nu", `Added ${u.name} (${u.role}, ${grantsText(u.role, u.grants)}).`);
      await reload();
    } catch (err) {
      say("nu", err.message, true);
    }
  });
}

// showAudit is #/audit: the audit log, filtered by the form (whose values
// are kept in the URL: #/audit?action=login&…), newest first, an "Older"
// button per page.
async function showAudit() {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const limit = Math.min(Math.max(Number(q.get("limit")) || AUDIT_PAGE, 1), 1000);
  main.innerHTML = `<h1>Audit log</h1>
    <form id="audit-filter" class="add filters" aria-label="Filter the audit log">
      <label>Actor <input id="af-actor" autocomplete="off" placeholder="any"></label>
      <label>Action <select id="af-action"><option value="">any</option></select></label>
      <label>Camera <input id="af-camera" list="af-cams" autocomplete="off" placeholder="any"></label><datalist id="af-cams"></datalist>
      <label>From <input id="af-from" type="datetime-local" step="1"></label>
      <label>To <input id="af-to" type="datetime-local" step="1"></label>
      <button type="submit">Show</button> <button type="button" id="af-clear">Clear filters</button>
    </form>
    <p class="hint note">Every entry carries a hash chained to the one before; on the server,
      <code>custos audit verify --config FILE</code> checks the whole chain offline.</p>
    ${msgs("audit")}
    <section aria-labelledby="al-h"><h2 id="al-h" class="sr-only">Entries</h2><div id="audit-list"></div></section>
    <p><button type="button" id="audit-older" hidden>Older</button></p>`;
  const f = { actor: byId("af-actor"), action: byId("af-action"), camera: byId("af-camera"), from: byId("af-from"), to: byId("af-to") };
  // The actions come from the server (GET /api/audit/actions), the
  // one list of what the log may hold; the one in the URL is kept even
  // before they arrive.
  const wanted = q.get("action") || "";
  // A choice made before the list arrived is kept.
  const setActions = (list) => {
    const keep = f.action.value || wanted;
    if (keep && !list.includes(keep)) list = [keep, ...list];
    f.action.innerHTML = `<option value="">any</option>` + list.map((a) => `<option>${esc(a)}</option>`).join("");
    f.action.value = keep;
  };
  setActions([]);
  api("/api/audit/actions").then((r) => r.json()).then(setActions).catch(() => {});
  for (const k of ["actor", "camera"]) f[k].value = q.get(k) || "";
  for (const k of ["from", "to"]) if (q.get(k) && !isNaN(new Date(q.get(k)))) f[k].value = toLocalInput(new Date(q.get(k)));
  api("/api/cameras").then((r) => r.json()).then((cams) => {
    byId("af-cams").innerHTML = cams.map((c) => `<option value="${esc(c.name)}">`).join("");
  }).catch(() => {});
  let last = 0, shown = 0;
  const params = () => {
    const p = new URLSearchParams();
    for (const k of ["actor", "action", "camera"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
    for (const k of ["from", "to"]) {
      const d = new Date(f[k].value);
      if (f[k].value && !isNaN(d)) p.set(k, d.toISOString());
    }
    return p;
  };
  async function load(older) {
    const p = params();
    if (!older) {
      const h = new URLSearchParams(p);
      if (q.has("limit")) h.set("limit", limit);
      replaceHash("#/audit" + (h.toString() ? "?" + h : ""));
      last = 0;
      shown = 0;
    }
    p.set("limit", limit);
    if (older) p.set("before", last);
    say("audit", "Loading…");
    let entries;
    try {
      entries = await (await api("/api/audit?" + p)).json();
    } catch (e) {
      say("audit", "Cannot load the audit log: " + e.message, true);
      return;
    }
    const list = byId("audit-list");
    if (!list) return;
    if (!older) {
      list.innerHTML = `<table id="audit-table"><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th>
        <th scope="col">Address</th><th scope="col">Action</th><th scope="col">Camera</th><th scope="col">Details</th>
        <th scope="col">Result</th><th scope="col">Hash</th></tr></thead><tbody></tbody></table>`;
    }
    list.querySelector("tbody").insertAdjacentHTML("beforeend", entries.map((e) => `<tr data-seq="${e.seq}">
      <td>${e.seq}</td><td>${timeCell(e.time)}</td>
      <td class="actor">${e.actor ? esc(e.actor) : `<em class="muted">system</em>`}</td><td>${esc(e.addr || "")}</td>
      <td class="action">${esc(e.action)}</td><td>${esc(e.camera || "")}</td>
      <td class="detail">${Object.keys(e.detail || {}).sort().map((k) => `<span>${esc(k)}=${esc(e.detail[k])}</span>`).join(" ")}</td>
      <td class="result result-${esc(e.result)}">${esc(e.result)}</td>
      <td><code class="hash" title="${esc(e.hash)}">${esc(String(e.hash).slice(0, 12))}</code></td></tr>`).join(""));
    shown += entries.length;
    if (entries.length) last = entries[entries.length - 1].seq;
    const more = entries.length === limit && last > 1;
    byId("audit-older").hidden = !more;
    say("audit", shown === 0 ? "No entries match." : `${shown} entr${shown === 1 ? "y" : "ies"}, newest first${more ? "" : "; that is all"}.`);
  }
  byId("audit-filter").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  byId("af-clear").addEventListener("click", () => { byId("audit-filter").reset(); load(false); });
  byId("audit-older").addEventListener("click", () => load(true));
  load(false);
}

// showAccount is #/account: one's own password, sessions and tokens.
function showAccount() {
  const g = me.role === "admin" ? "every camera" : grantsText(me.role, me.grants);
  main.innerHTML = `<h1>Account</h1>
    <p>Signed in as <strong>${esc(me.user)}</strong> (${esc(me.role)}); cameras: ${esc(g)}.</p>
    <section aria-labelledby="pw-h"><h2 id="pw-h">Change password</h2>
      <form id="pw-form" class="add">
        <input type="text" autocomplete="username" value="${esc(me.user)}" hidden>
        <label>Current password <input id="pw-cur" type="password" required autocomplete="current-password"></label>
        <label>New password <input id="pw-new" type="password" required autocomplete="new-password"></label>
        <label>New password again <input id="pw-again" type="password" required autocomplete="new-password"></label>
        <button type="submit">Change password</button>
        <p class="hint">This signs you out everywhere, this browser included: sign in again with the new password.</p>
      </form>${msgs("pw")}
    </section>
    ${sessionsHTML("Your sessions")}
    ${tokensHTML(false)}`;
  byId("pw-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (byId("pw-new").value !== byId("pw-again").value) {
      say("pw", "The new passwords differ.", true);
      byId("pw-again").focus();
      return;
    }
    say("pw", "Changing…");
    try {
      await api(userPath(me.user) + "/password", jsonReq("PUT", { password: byId("pw-new").value, current_password: byId("pw-cur").value }));
      say("pw", "Password changed. Sign in again.");
      location.assign("/login");
    } catch (err) {
      say("pw", err.message, true);
    }
  });
  sessionsSection(false);
  tokensSection(null);
}
