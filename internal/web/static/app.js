// app.js: the pages. #/ is the grid of live cameras; #/camera/NAME is one
// camera: live or recorded video, the timeline, playback controls and
// export; #/settings is storage and cameras. The account pages (#/users,
// #/audit, #/account) are in admin.js. Everything comes from /api/.
"use strict";

const main = document.getElementById("main");

// A kiosk opens http://user:pass@host/: the login stays in the page's
// base URL, and browsers refuse requests to URLs with credentials, so
// relative URLs are resolved against the same address without them (the
// browser keeps sending the login it answered the challenge with).
(() => {
  const bare = location.origin + location.pathname + location.search;
  if (document.baseURI.split("#")[0] !== bare) {
    const b = document.createElement("base");
    b.href = bare;
    document.head.prepend(b);
  }
})();

// replaceHash replaces the URL's fragment without a hashchange. A kiosk's
// document URL keeps its login (http://user:pass@host/) while the <base>
// above has none, and history.replaceState refuses a URL resolved against
// that <base> (it differs from the document's in more than the fragment:
// SecurityError), so the fragment is resolved against the document's own
// URL, with the <base> out of the way for that one call.
function replaceHash(hash) {
  const b = document.querySelector("base");
  if (b) b.remove();
  try {
    history.replaceState(null, "", hash);
  } finally {
    if (b) document.head.prepend(b);
  }
}

// me is the signed-in user (GET /api/session): name, role, grants and,
// for a cookie session, the CSRF token that every state-changing request
// must carry (the fetch wrapper below adds it, player.js's WHEP requests
// included).
let me = null;
const plainFetch = window.fetch.bind(window);
window.fetch = (input, init) => {
  init = init || {};
  const method = (init.method || "GET").toUpperCase();
  if (me && me.csrf && !["GET", "HEAD", "OPTIONS"].includes(method)) {
    const h = new Headers(init.headers || {});
    h.set("X-CSRF-Token", me.csrf);
    init = Object.assign({}, init, { headers: h });
  }
  return plainFetch(input, init);
};

// showUser puts the user's name and a sign-out button in the header.
function showUser() {
  const box = document.getElementById("user-menu");
  if (!box || !me) return;
  box.innerHTML = `<a href="#/account" id="account-link" title="Your account: password, sessions and API tokens">${esc(me.user)}</a>` +
    `<span>(${esc(me.role)})</span>` +
    (me.method === "session" ? `<button type="button" id="logout">Sign out</button>` : "");
  const b = document.getElementById("logout");
  if (b) b.addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST" }).catch(() => {});
    location.assign("/login");
  });
  for (const a of document.querySelectorAll("[data-role]")) {
    a.hidden = !(me.role === "admin" || (a.dataset.role === "operator" && me.role === "operator"));
  }
}
let cleanup = [];
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

// liveURL returns the WebSocket URL of a camera's live stream.
function liveURL(camera, stream) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/api/cameras/${encodeURIComponent(camera)}/live.ws?stream=${stream}`;
}

// liveMode is "mse" when the page URL asks for it (?live=mse), else
// WebRTC first with MSE as the fallback.
const liveMode = new URLSearchParams(location.search).get("live") === "mse" ? "mse" : "webrtc";

// startLive plays a camera's live stream in video and tells say(text)
// what to show over it: "" while playing, otherwise what is happening or
// what went wrong. WebRTC (WHEP) first: lowest latency; when it fails
// (an H.265 stream, UDP blocked) or shows nothing within 6 s, MSE over a
// WebSocket (player.js, served from internal/live). The element's
// data-transport says which one plays.
function startLive(video, camera, stream, say) {
  const enc = encodeURIComponent(camera);
  let player = null, timer = 0, done = false;
  const mseState = (st) => {
    if (st.error) {
      const codec = st.codec || (st.error.match(/(hvc1|hev1)[\w.]*/) || [""])[0];
      const h265 = /hvc1|hev1/.test(codec);
      say(h265 ? `This browser cannot decode this camera's H.265 video (${codec}). ` +
        "Use a browser with H.265 support, or an H.264 stream of this camera." : st.error);
    } else {
      say({ connecting: "Connecting…", waiting: "Waiting for video…", playing: "", closed: "Stopped" }[st.state] ?? st.state);
    }
  };
  const mse = () => {
    clearTimeout(timer);
    if (player) player.close();
    if (done) return;
    video.dataset.transport = "mse";
    player = CustosLive.play(video, liveURL(camera, stream), { onState: mseState });
  };
  if (liveMode === "mse" || !("RTCPeerConnection" in window)) {
    mse();
  } else {
    video.dataset.transport = "webrtc";
    player = CustosLive.playWebRTC(video, `/api/cameras/${enc}/whep?stream=${stream}`, {
      onState: (st) => {
        if (video.dataset.transport !== "webrtc") return;
        if (st.state === "error") mse();
        else if (st.state === "playing") { clearTimeout(timer); say(""); }
        else say("Connecting…");
      },
    });
    timer = setTimeout(mse, 6000);
  }
  return { close: () => { done = true; clearTimeout(timer); if (player) player.close(); } };
}

function leave() {
  cleanup.forEach((f) => f());
  cleanup = [];
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

// badge shows a camera's state; an error the camera will not get over by
// itself (wrong password, no stream at the URL) comes with its hint first.
function badge(cam) {
  const state = cam.status || "unknown";
  const text = { recording: "Recording", reconnecting: "Reconnecting", error: "Error", starting: "Starting", stopped: "Stopped" }[state] || state;
  return `<span class="badge badge-${esc(state)}" title="${esc(cam.hint || cam.reason || text)}">${esc(text)}</span>` +
    (cam.hint ? `<span class="hint">${esc(cam.hint)}</span>` : "") +
    (cam.reason ? `<span class="reason">${esc(cam.reason)}</span>` : "");
}

// Grid: every camera's live sub-stream (main when it has none).
async function showGrid() {
  main.innerHTML = `<h1 class="sr-only">Cameras</h1><div class="grid" id="grid"></div>`;
  const grid = document.getElementById("grid");
  let cams;
  try {
    cams = await (await api("/api/cameras")).json();
  } catch (e) {
    grid.innerHTML = `<p class="error">Cannot load cameras: ${esc(e.message)}</p>`;
    return;
  }
  if (cams.length === 0) {
    grid.innerHTML = me.role === "admin" || me.role === "operator"
      ? `<p class="empty">No cameras yet. Add one under <a href="#/settings">Settings → Add a camera</a>` +
        (me.role === "admin" ? "." : ", or ask an admin to grant you cameras that are already set up.") + `</p>`
      : `<p class="empty">No cameras are shared with you yet. Ask an administrator of this Custos to grant ` +
        `your account (${esc(me.user)}) the cameras you need; they appear here once granted.</p>`;
    return;
  }
  for (const cam of cams) {
    const tile = document.createElement("article");
    tile.className = "tile";
    tile.dataset.camera = cam.name;
    const stream = cam.streams.length > 1 ? "sub" : "main";
    tile.innerHTML = `
      <a class="tile-video" href="#/camera/${encodeURIComponent(cam.name)}" aria-label="Open camera ${esc(cam.name)}">
        <video muted autoplay playsinline></video><p class="overlay" role="status"></p></a>
      <footer><h2>${esc(cam.name)}</h2><span class="status">${badge(cam)}</span></footer>`;
    grid.appendChild(tile);
    const overlay = tile.querySelector(".overlay");
    const player = startLive(tile.querySelector("video"), cam.name, stream, (text) => { overlay.textContent = text; });
    cleanup.push(() => player.close());
  }
  const poll = setInterval(async () => {
    try {
      for (const cam of await (await api("/api/cameras")).json()) {
        const el = grid.querySelector(`[data-camera="${CSS.escape(cam.name)}"] .status`);
        if (el) el.innerHTML = badge(cam);
      }
    } catch (_) { /* keep the last known state */ }
  }, 5000);
  cleanup.push(() => clearInterval(poll));
}

// pickStream chooses the stream a camera page shows: the one chosen for
// this camera before on this browser, else the first that the browser can
// decode (by the codec the server reports, checked with MediaSource), the
// sub-stream first on a small screen. It returns {names, initial, why,
// remember(name)}.
function pickStream(cam) {
  const names = cam.streams.map((s) => s.stream);
  const key = "custos.stream." + cam.name;
  const remember = (n) => { try { localStorage.setItem(key, n); } catch (_) { /* private mode */ } };
  let saved = null;
  try { saved = localStorage.getItem(key); } catch (_) { /* private mode */ }
  if (names.length < 2) return { names, initial: names[0] || "main", why: "", remember };
  if (names.includes(saved)) return { names, initial: saved, why: "Chosen on this page before", remember, chosen: true };
  const MS = window.MediaSource || window.ManagedMediaSource;
  const plays = (n) => {
    const c = (cam.streams.find((s) => s.stream === n) || {}).codec;
    if (!c) return null; // not known yet
    const type = `video/mp4; codecs="${c}"`;
    return MS && MS.isTypeSupported ? MS.isTypeSupported(type) : document.createElement("video").canPlayType(type) !== "";
  };
  const small = matchMedia("(max-width: 700px), (max-height: 500px)").matches;
  const main = plays("main"), sub = plays("sub");
  if (main === false && sub !== false) return { names, initial: "sub", why: "This browser cannot decode the main stream", remember };
  if (small && sub !== false) return { names, initial: "sub", why: "The sub-stream suits a small screen", remember };
  return { names, initial: "main", why: "The main stream: full resolution", remember };
}

// Camera page.
async function showCamera(name) {
  main.innerHTML = `
    <section class="camera" aria-labelledby="cam-title">
      <header class="cam-head"><h1 id="cam-title">${esc(name)}</h1><span class="status"></span>
        <span class="mode" role="status" aria-live="polite"></span></header>
      <div class="player"><video id="video" playsinline muted></video><p class="overlay" role="status"></p></div>
      <div class="controls" role="toolbar" aria-label="Playback">
        <button id="live" type="button">Live</button>
        <button id="prev" type="button" aria-label="Previous recording">« Prev</button>
        <button id="back" type="button" aria-label="Step back one frame">◀︎ frame</button>
        <button id="play" type="button" aria-label="Play or pause">Pause</button>
        <button id="fwd" type="button" aria-label="Step forward one frame">frame ▶︎</button>
        <button id="next" type="button" aria-label="Next recording">Next »</button>
        <label>Speed <select id="speed"><option>0.5</option><option selected>1</option><option>2</option><option>4</option><option>8</option></select></label>
        <label id="stream-box" hidden>Stream <select id="stream"><option value="main">Main</option><option value="sub">Sub</option></select></label>
        <label>Zoom <select id="span"><option value="900000" selected>15 min</option><option value="3600000">1 hour</option><option value="21600000">6 hours</option><option value="86400000">1 day</option><option value="604800000">1 week</option></select></label>
        <span id="time" class="time"></span>
      </div>
      <div id="timeline"></div>
      <form class="export" id="export" aria-label="Export">
        <label>From <input id="ex-from" type="datetime-local" step="1" required></label>
        <label>To <input id="ex-to" type="datetime-local" step="1" required></label>
        <button type="button" id="mark-in">Mark in</button><button type="button" id="mark-out">Mark out</button>
        <button type="button" id="pick" aria-pressed="false">Select on timeline</button>
        <span id="ex-size" role="status"></span>
        <a id="ex-link" class="button" href="#" download hidden>Download MP4</a>
        <label id="lock-box" hidden>Reason <input id="lock-reason" maxlength="500" placeholder="incident, request, case number"></label>
        <button type="button" id="lock" hidden>Lock this range…</button>
        <p class="hint">To select a range: press “Select on timeline” and tap (or click) its start and then its end, or shift-drag
          on the timeline; drag the range's handles to adjust it. Exports are of the main stream. A lock keeps the range
          from retention until an admin releases it.</p>
      </form>
      <section aria-labelledby="locks-h"><h2 id="locks-h" class="sr-only">Evidence locks in view</h2>
        <ul id="locks" class="locks"></ul><p id="lock-msg" role="status" aria-live="polite"></p></section>
    </section>`;
  const $ = (id) => document.getElementById(id);
  const video = $("video"), overlay = main.querySelector(".player .overlay"), mode = main.querySelector(".mode");
  let cam;
  try {
    cam = (await (await api("/api/cameras")).json()).find((c) => c.name === name);
  } catch (e) {
    overlay.textContent = "Cannot load cameras: " + e.message;
    return;
  }
  if (!cam) {
    main.innerHTML = `<p class="error">No camera named ${esc(name)}. <a href="#/">All cameras</a></p>`;
    return;
  }
  main.querySelector(".cam-head .status").innerHTML = badge(cam);
  const enc = encodeURIComponent(name);
  // recordedStart is the wall time (ms) of the recorded file's 0: the time
  // of its first frame as the server reports it (X-Custos-From), which is
  // later than the time asked for when that falls in a gap.
  let live = null, recordedStart = null;
  // The stream shown, live and recorded: the one chosen on this page for
  // this camera before (remembered in localStorage), else one this
  // browser can decode, the sub-stream on a small screen.
  const stream = pickStream(cam);
  let current = stream.initial;
  const tl = new Timeline($("timeline"), {
    camera: name,
    stream: () => current,
    onSeek: (t) => playAt(t.getTime()),
    onSelect: (a, b) => setRange(a, b),
    onLocks: (locks) => showLocks(locks),
    onPick: (on) => { $("pick").setAttribute("aria-pressed", String(on)); },
  });
  cleanup.push(() => tl.destroy());
  if (stream.names.length > 1) {
    $("stream-box").hidden = false;
    $("stream").value = current;
    $("stream-box").title = stream.why;
    $("stream").onchange = () => {
      current = $("stream").value;
      stream.remember(current);
      stream.chosen = true;
      $("stream-box").title = "Chosen on this page";
      const at = recordedStart === null ? null : shown();
      tl.load();
      if (at === null) goLive(); else playAt(at);
    };
  }
  // showLocks lists the evidence locks in view; admins can release them.
  function showLocks(locks) {
    const ul = $("locks");
    ul.innerHTML = locks.map((k) => `<li data-lock="${k.id}">Locked ${esc(new Date(k.s).toLocaleString())} – ${esc(new Date(k.e).toLocaleString())}
      by ${esc(k.by)}: ${esc(k.reason)}${me.role === "admin" ? ` <button type="button" data-release="${k.id}">Release…</button>` : ""}</li>`).join("");
    for (const b of ul.querySelectorAll("[data-release]")) {
      b.onclick = async () => {
        const li = b.parentElement;
        let input = li.querySelector("input");
        if (!input) {
          b.insertAdjacentHTML("beforebegin", `<label>Why <input maxlength="500"></label> `);
          b.textContent = "Release";
          li.querySelector("input").focus();
          return;
        }
        try {
          await api(`/api/locks/${b.dataset.release}/release`, { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ reason: input.value }) });
          $("lock-msg").textContent = "Lock released.";
          tl.load();
        } catch (e) {
          $("lock-msg").innerHTML = `<span class="error" role="alert">${esc(e.message)}</span>`;
        }
      };
    }
  }

  function goLive() {
    stopLive();
    recordedStart = null;
    playSeq++;
    video.removeAttribute("src");
    live = startLive(video, name, current, (text) => {
      const undecodable = text && /cannot decode/.test(text) && current === "main" && stream.names.includes("sub");
      if (undecodable && !stream.chosen) { // the codec was not known when the page opened
        stream.chosen = true;
        setTimeout(fallBack);
        return;
      }
      overlay.textContent = undecodable ? text + " Choose “Sub” under Stream to watch the sub-stream." : text;
    });
    mode.textContent = "Live";
    $("live").setAttribute("aria-pressed", "true");
  }
  function stopLive() {
    if (live) { live.close(); live = null; }
    $("live").setAttribute("aria-pressed", "false");
  }
  // playAt plays recorded video from wall time t (ms): an export of the
  // next hour. It starts at t, or at the next recorded frame when t is in
  // a gap: a HEAD request first asks the server where (X-Custos-From; HEAD
  // sends no video and is not a viewing), and the page's clock, playhead
  // and marks count from that time, so they show the frame on screen.
  let playSeq = 0;
  async function playAt(t) {
    stopLive();
    const seq = ++playSeq;
    const to = Math.min(t + 3600e3, Date.now());
    recordedStart = null;
    video.pause();
    video.removeAttribute("src");
    overlay.textContent = "Loading…";
    const url = `/api/cameras/${enc}/export.mp4?stream=${current}&from=${new Date(t).toISOString()}&to=${new Date(to).toISOString()}`;
    let from;
    try {
      const r = await api(url, { method: "HEAD" });
      from = Date.parse(r.headers.get("X-Custos-From"));
      if (isNaN(from)) throw new Error("the server did not say where the video starts");
    } catch (e) {
      if (seq !== playSeq) return;
      overlay.textContent = e.message.startsWith("404") ? "No recorded video from this time on." : "Playback failed: " + e.message;
      mode.textContent = "Recorded";
      return;
    }
    if (seq !== playSeq) return; // another seek, or live, came first
    recordedStart = from;
    video.src = url;
    video.playbackRate = Number($("speed").value);
    video.play().catch(() => {});
    mode.textContent = "Recorded: " + new Date(from).toLocaleString() +
      (from - t > 1000 ? " (the next recording after the time chosen)" : "");
    tl.setPlayhead(from);
  }
  // shown is the wall time (ms) of what the video shows.
  const shown = () => recordedStart === null ? Date.now() : recordedStart + video.currentTime * 1000;
  // fallBack moves to the sub-stream, once, when the main stream turned
  // out not to play here and nobody chose it on this page.
  function fallBack() {
    stream.chosen = true;
    current = "sub";
    $("stream").value = "sub";
    $("stream-box").title = "This browser cannot decode the main stream";
    const at = recordedStart === null ? null : shown();
    tl.load();
    if (at === null) goLive(); else playAt(at);
  }
  video.addEventListener("error", () => {
    if (live || recordedStart === null) return;
    const e = video.error;
    if (e && e.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED && current === "main" && stream.names.includes("sub") && !stream.chosen) {
      stream.chosen = true;
      setTimeout(fallBack);
      return;
    }
    overlay.textContent = e && e.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED
      ? "No recorded video at this time, or this browser cannot decode it (H.265)." +
        (current === "main" && stream.names.includes("sub") ? " Choose “Sub” under Stream to watch the sub-stream." : "")
      : "Playback failed: " + (e ? e.message || "media error " + e.code : "unknown error");
  });
  video.addEventListener("playing", () => { overlay.textContent = ""; $("play").textContent = "Pause"; });
  video.addEventListener("pause", () => { $("play").textContent = "Play"; });
  const tick = setInterval(() => {
    const now = shown();
    $("time").textContent = new Date(now).toLocaleString();
    $("time").dataset.t = Math.round(now);
    if (recordedStart !== null) tl.setPlayhead(now);
  }, 250);
  cleanup.push(() => { clearInterval(tick); stopLive(); });

  $("live").onclick = goLive;
  $("play").onclick = () => {
    if (video.paused) video.play(); else video.pause();
  };
  const step = (d) => { if (recordedStart === null) return; video.pause(); video.currentTime = Math.max(0, video.currentTime + d); };
  $("back").onclick = () => step(-0.04);
  $("fwd").onclick = () => step(0.04);
  $("speed").onchange = () => { video.playbackRate = Number($("speed").value); };
  $("span").onchange = () => tl.setSpan(Number($("span").value));
  const jump = (dir) => {
    const t = tl.neighbour(shown(), dir);
    if (t !== null) playAt(t);
    else mode.textContent = dir > 0 ? "No later recording in view" : "No earlier recording in view";
  };
  $("prev").onclick = () => jump(-1);
  $("next").onclick = () => jump(1);
  main.querySelector(".camera").addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === " ") { e.preventDefault(); $("play").click(); }
    if (e.key === "," ) step(-0.04);
    if (e.key === ".") step(0.04);
  });

  // Export: a range from the timeline or the inputs; the size comes from
  // a HEAD request (Content-Length is known before any byte is sent).
  const toLocal = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
  function setRange(a, b) {
    $("ex-from").value = toLocal(a);
    $("ex-to").value = toLocal(b);
    sizeRange();
  }
  async function sizeRange() {
    const a = new Date($("ex-from").value), b = new Date($("ex-to").value);
    const link = $("ex-link"), size = $("ex-size");
    link.hidden = true;
    if (isNaN(a) || isNaN(b) || b <= a) { size.textContent = "Choose a start before the end."; return; }
    if (!(cam.perms || "").split(",").includes("export")) {
      // The server would refuse the download (403): say why instead.
      size.textContent = "Downloading a clip needs the export permission on this camera.";
      return;
    }
    const url = `/api/cameras/${enc}/export.mp4?from=${a.toISOString()}&to=${b.toISOString()}&download=1`;
    try {
      const r = await api(url, { method: "HEAD" });
      const n = Number(r.headers.get("Content-Length"));
      size.textContent = `${(n / 1048576).toFixed(1)} MiB`;
      link.href = url;
      link.hidden = false;
    } catch (e) {
      size.textContent = e.message.startsWith("404") ? "No recorded video in this range." : e.message;
    }
  }
  // Evidence locks: anyone with the lock grant may lock a past range,
  // with a reason; admins release them.
  const lockPerm = (cam.perms || "").split(",").includes("lock");
  $("lock").hidden = !lockPerm;
  $("lock").onclick = async () => {
    const box = $("lock-box"), msg = $("lock-msg");
    if (box.hidden) { box.hidden = false; $("lock").textContent = "Lock"; $("lock-reason").focus(); return; }
    const a = new Date($("ex-from").value), b = new Date($("ex-to").value);
    try {
      await api(`/api/cameras/${enc}/locks`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from: a.toISOString(), to: b.toISOString(), reason: $("lock-reason").value }) });
      msg.textContent = `Locked ${a.toLocaleString()} – ${b.toLocaleString()}.`;
      box.hidden = true; $("lock").textContent = "Lock this range…"; $("lock-reason").value = "";
      tl.load();
    } catch (e) {
      msg.innerHTML = `<span class="error" role="alert">${esc(e.message)}</span>`;
    }
  };
  $("ex-from").onchange = sizeRange;
  $("ex-to").onchange = sizeRange;
  $("mark-in").onclick = () => { $("ex-from").value = toLocal(new Date(shown())); sizeRange(); };
  $("mark-out").onclick = () => { $("ex-to").value = toLocal(new Date(shown())); sizeRange(); };
  $("pick").onclick = () => { tl.pick(tl.picking === null); };
  setRange(new Date(Date.now() - 600e3), new Date());
  goLive();
  // For tests and the curious: the page's state.
  window.custos = { timeline: tl, video, recordedStart: () => recordedStart, shown, live: () => live !== null, stream: () => current };
}

// Settings: storage status and each camera's configuration (read-only
// for now: the configuration file is edited by hand).
function route() {
  leave();
  const m = location.hash.match(/^#\/camera\/(.+)$/);
  const page = location.hash.split("?")[0];
  if (m) showCamera(decodeURIComponent(m[1]));
  else if (page === "#/settings") showSettings();
  else if (page === "#/users") showUsers(); // admin.js
  else if (page === "#/audit") showAudit();
  else if (page === "#/account") showAccount();
  else showGrid();
  main.focus({ preventScroll: true });
}
// labelCells gives every cell of a table with a header row the name of its
// column (data-label), which the phone layout shows in front of the value
// (app.css): the pages build their tables as plain HTML, this runs after
// them. A tap on a cut-off detail cell shows it whole.
function labelCells() {
  for (const table of main.querySelectorAll("table:not(.grants)")) {
    const head = table.tHead && table.tHead.rows[0];
    if (!head) continue;
    const names = [...head.cells].map((c) => (c.querySelector(".sr-only") ? "" : c.textContent.trim()));
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        [...row.cells].forEach((c, i) => {
          if (names[i] && c.tagName === "TD" && c.dataset.label !== names[i]) c.dataset.label = names[i];
        });
      }
    }
  }
}
let labelQueued = false;
new MutationObserver(() => {
  if (labelQueued) return;
  labelQueued = true;
  requestAnimationFrame(() => { labelQueued = false; labelCells(); });
}).observe(main, { childList: true, subtree: true });
main.addEventListener("click", (e) => {
  const d = e.target.closest && e.target.closest("td.detail");
  if (d) d.classList.toggle("open");
});
window.addEventListener("hashchange", route);
// Leaving the page ends its live views at once (the server records each
// view's end; a page kept in the back-forward cache would hold them open).
window.addEventListener("pagehide", leave);
setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleTimeString(); }, 1000);
(async () => {
  try {
    me = await (await api("/api/session")).json();
  } catch (e) {
    main.innerHTML = `<p class="error">${esc(e.message)}</p><p><a href="/login">Sign in</a></p>`;
    return;
  }
  showUser();
  route();
})();
