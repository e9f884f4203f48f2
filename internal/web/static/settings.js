// settings.js: #/settings (operators and admins): storage status, the
// cameras with their storage and retention, and the camera form that
// probes a camera (POST /api/probe) before it is added or changed
// (POST /api/cameras, PUT and DELETE /api/cameras/NAME). Cameras of the
// configuration file are shown but change only there. Uses main, esc,
// api and badge from app.js; loaded before it, runs after.
"use strict";

const gib = (n) => n >= 1073741824 ? (n / 1073741824).toFixed(1) + " GiB" : (n / 1048576).toFixed(1) + " MiB";

async function showSettings() {
  main.innerHTML = `<h1>Settings</h1>
    <section aria-labelledby="st-h"><h2 id="st-h">Storage</h2><div id="storage">Loading…</div></section>
    <section aria-labelledby="cam-h"><h2 id="cam-h">Cameras</h2><div id="cams">Loading…</div>
      <p id="cams-msg" role="status" aria-live="polite"></p></section>
    <section aria-labelledby="form-h"><h2 id="form-h">Add a camera</h2>
      <form id="camform" class="add" autocomplete="off">
        <label>Name <input id="cf-name" required pattern="[a-z0-9][a-z0-9_\-]*" maxlength="63" placeholder="front-door"></label>
        <label>Main stream URL <input id="cf-url" required placeholder="rtsp://192.168.1.10:554/Streaming/Channels/101"></label>
        <label>Sub-stream URL <input id="cf-sub" placeholder="optional: smaller, for the grid"></label>
        <label>User <input id="cf-user"></label>
        <label>Password <input id="cf-pass" type="password" autocomplete="new-password"></label>
        <label>Transport <select id="cf-transport"><option value="tcp">TCP</option><option value="udp">UDP</option></select></label>
        <label title="Only for a camera that offers nothing better: its password then crosses the network in clear"><input id="cf-basic" type="checkbox"> Allow Basic authentication (password sent in clear)</label>
        <label>Storage <select id="cf-storage"><option value="">default</option></select></label>
        <label>Keep days <input id="cf-days" type="number" min="0" step="any" placeholder="default"></label>
        <label>Keep at most GiB <input id="cf-gib" type="number" min="0" step="any" placeholder="default"></label>
        <button type="submit" id="cf-probe">Probe</button>
        <button type="button" id="cf-cancel" hidden>Cancel</button>
      </form>
      <p class="hint" id="cf-hint">Probe connects to the camera and shows what it sends; then save it. It records at once.</p>
      <div id="cf-result" role="status" aria-live="polite"></div>
    </section>`;
  const $ = (id) => document.getElementById(id);
  $("camform").onsubmit = (e) => { e.preventDefault(); probeForm(); };
  $("cf-cancel").onclick = () => resetForm();
  try {
    const disks = await (await api("/api/storage")).json();
    $("storage").innerHTML = `<table><thead><tr><th scope="col">Disk</th><th scope="col">Path</th>
      <th scope="col">Free</th><th scope="col">Recordings</th><th scope="col">Oldest</th><th scope="col">Rate</th><th scope="col">Days kept</th></tr></thead><tbody>` +
      disks.map((d) => `<tr data-disk="${esc(d.name)}"><td>${esc(d.name)}</td><td><code>${esc(d.path)}</code></td>
        <td>${d.error ? `<span class="error">${esc(d.error)}</span>` : `${gib(d.free_bytes)} of ${gib(d.total_bytes)}`}</td>
        <td>${gib(d.recording_bytes)} (${d.segments} segments)</td>
        <td>${d.oldest ? new Date(d.oldest).toLocaleString() : "—"}</td>
        <td>${gib(d.bytes_per_day)}/day</td><td class="days">${d.days_kept ? d.days_kept.toFixed(1) : "—"}</td></tr>`).join("") +
      `</tbody></table>`;
    $("cf-storage").innerHTML = `<option value="">default</option>` +
      disks.map((d) => `<option value="${esc(d.name)}">${esc(d.name)}</option>`).join("");
  } catch (e) {
    $("storage").innerHTML = `<p class="error">Cannot load storage: ${esc(e.message)}</p>`;
  }
  await listCameras();
}

let camerasShown = [];

// listCameras fills the cameras table; cameras added here have Edit and
// Remove, those of the configuration file say where they change.
async function listCameras() {
  const box = document.getElementById("cams");
  try {
    camerasShown = await (await api("/api/cameras")).json();
  } catch (e) {
    box.innerHTML = `<p class="error">Cannot load cameras: ${esc(e.message)}</p>`;
    return;
  }
  box.innerHTML = `<table><thead><tr><th scope="col">Camera</th><th scope="col">Status</th>
    <th scope="col">Streams</th><th scope="col">Storage</th><th scope="col">Keep at most</th><th scope="col">Defined in</th>
    <th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>` +
    camerasShown.map((c) => `<tr data-camera="${esc(c.name)}"><td><a href="#/camera/${encodeURIComponent(c.name)}">${esc(c.name)}</a></td><td>${badge(c)}</td>
      <td>${c.streams.map((s) => esc(s.stream)).join(", ")}</td><td>${esc(c.config.storage || "default")}</td>
      <td>${[c.config.max_age_hours ? +(c.config.max_age_hours / 24).toFixed(1) + " days" : "",
             c.config.max_bytes ? gib(c.config.max_bytes) : ""].filter(Boolean).join(", ") || "no limit"}</td>
      <td>${c.config.source === "api" ? "this page" : "configuration file"}</td>
      <td>${c.config.source === "api" && mayManage(c) ? `<button type="button" data-edit="${esc(c.name)}">Edit</button>
        <button type="button" data-remove="${esc(c.name)}">Remove</button>` : ""}</td></tr>`).join("") +
    `</tbody></table>`;
  for (const b of box.querySelectorAll("[data-edit]")) b.onclick = () => editCamera(b.dataset.edit);
  for (const b of box.querySelectorAll("[data-remove]")) b.onclick = () => removeCamera(b.dataset.remove, b);
}

let editing = ""; // the camera being changed, "" when adding

// mayManage mirrors the server's rule: changing or removing a camera
// takes live, recordings and export on it (not the later lock).
function mayManage(c) {
  const p = String(c.perms || "").split(",");
  return ["live", "recordings", "export"].every((x) => p.includes(x));
}

function resetForm() {
  const $ = (id) => document.getElementById(id);
  editing = "";
  $("camform").reset();
  $("cf-name").disabled = false;
  $("cf-pass").placeholder = "";
  $("form-h").textContent = "Add a camera";
  $("cf-cancel").hidden = true;
  $("cf-result").innerHTML = "";
}

// editCamera fills the form with a camera's settings (the password stays
// on the server: an empty field keeps it).
function editCamera(name) {
  const $ = (id) => document.getElementById(id);
  const c = camerasShown.find((x) => x.name === name);
  if (!c) return;
  editing = name;
  $("form-h").textContent = `Change ${name}`;
  $("cf-name").value = name;
  $("cf-name").disabled = true;
  $("cf-url").value = c.config.url || "";
  $("cf-sub").value = c.config.sub_url || "";
  $("cf-user").value = c.config.username || "";
  $("cf-pass").value = "";
  $("cf-pass").placeholder = c.config.has_password ? "unchanged (type it to move the camera to another host)" : "";
  $("cf-transport").value = c.config.transport || "tcp";
  $("cf-basic").checked = !!c.config.allow_basic_auth;
  $("cf-storage").value = c.config.storage || "";
  $("cf-days").value = c.config.max_age_hours ? +(c.config.max_age_hours / 24).toFixed(3) : "";
  $("cf-gib").value = c.config.max_bytes ? +(c.config.max_bytes / 1073741824).toFixed(3) : "";
  $("cf-cancel").hidden = false;
  $("cf-result").innerHTML = `<p>Probe to check the camera, or save the changes directly.</p>
    <button type="button" id="cf-save">Save changes</button>`;
  document.getElementById("cf-save").onclick = saveCamera;
  $("cf-url").focus();
}

function formBody() {
  const $ = (id) => document.getElementById(id);
  const num = (v) => (v === "" ? 0 : Number(v));
  return {
    name: $("cf-name").value.trim(), url: $("cf-url").value.trim(), sub_url: $("cf-sub").value.trim(),
    username: $("cf-user").value, password: $("cf-pass").value, transport: $("cf-transport").value,
    allow_basic_auth: $("cf-basic").checked,
    storage: $("cf-storage").value, max_age_hours: num($("cf-days").value) * 24,
    max_bytes: Math.round(num($("cf-gib").value) * 1073741824),
  };
}

// probeForm probes the main and sub-stream typed into the form and shows
// what they send, then offers to save (or to save anyway after a failure:
// a camera may be offline while it is installed).
async function probeForm() {
  const out = document.getElementById("cf-result");
  const b = formBody();
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(b.name)) { out.innerHTML = `<p class="error" role="alert">A name is lower-case letters, digits, - and _.</p>`; return; }
  out.textContent = "Probing…";
  const rows = [];
  let ok = true;
  for (const [stream, url] of [["main", b.url], ["sub", b.sub_url]]) {
    if (!url) continue;
    try {
      const res = await (await api("/api/probe", { method: "POST", headers: { "Content-Type": "application/json" },
        // Editing with the password left empty: the server probes with the
        // stored one, but only on the camera's own host and port.
        body: JSON.stringify({ url, username: b.username, password: b.password, seconds: 2,
          allow_basic_auth: b.allow_basic_auth, camera: editing && !b.password ? editing : undefined }) })).json();
      for (const t of res.tracks.filter((t) => t.received)) {
        rows.push(`<tr><td>${stream}</td><td>${esc(t.codec)} ${esc(t.profile || "")}</td><td>${t.width}×${t.height}</td>
          <td>${t.fps ? t.fps.toFixed(0) : "?"}</td><td>${(t.received.bytes * 8 / res.seconds / 1000).toFixed(0)} kbit/s</td></tr>`);
      }
    } catch (e) {
      ok = false;
      rows.push(`<tr><td>${stream}</td><td colspan="4" class="error">${esc(e.message)}</td></tr>`);
    }
  }
  const verb = editing ? "Save changes" : "Save camera";
  out.innerHTML = `<table class="probe"><thead><tr><th scope="col">Stream</th><th scope="col">Codec</th><th scope="col">Size</th>
    <th scope="col">FPS</th><th scope="col">Bitrate</th></tr></thead><tbody>${rows.join("")}</tbody></table>` +
    (ok ? `<button type="button" id="cf-save">${verb}</button>`
        : `<p class="error">The camera did not answer as expected: fix the URL or credentials and probe again, or save anyway.</p>
           <button type="button" id="cf-save">${verb} anyway</button>`);
  document.getElementById("cf-save").onclick = saveCamera;
}

async function saveCamera() {
  const out = document.getElementById("cf-result");
  const b = formBody();
  const msg = document.getElementById("cams-msg");
  try {
    await api(editing ? `/api/cameras/${encodeURIComponent(editing)}` : "/api/cameras", {
      method: editing ? "PUT" : "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(b) });
  } catch (e) {
    out.insertAdjacentHTML("beforeend", `<p class="error" role="alert">${esc(e.message)}</p>`);
    return;
  }
  msg.textContent = editing ? `Saved ${b.name}.` : `Added ${b.name}: it is recording.`;
  resetForm();
  await listCameras();
}

// removeCamera asks once more, then stops the camera; its recordings stay.
async function removeCamera(name, button) {
  const msg = document.getElementById("cams-msg");
  if (button.dataset.confirm !== "1") {
    button.dataset.confirm = "1";
    button.textContent = `Remove ${name}? Press again`;
    msg.textContent = `Removing ${name} stops its recording; what it recorded is kept.`;
    return;
  }
  try {
    await api(`/api/cameras/${encodeURIComponent(name)}`, { method: "DELETE" });
  } catch (e) {
    msg.innerHTML = `<span class="error" role="alert">${esc(e.message)}</span>`;
    return;
  }
  msg.textContent = `Removed ${name}; its recordings are kept.`;
  if (editing === name) resetForm();
  await listCameras();
}
