// timeline.js: the recordings timeline of one camera. It shows recorded
// runs and the gaps between them over a window that zooms from minutes to
// weeks, previews the key frame under the pointer, plays from a click and
// selects a range for export with shift-drag, two taps in select mode
// (for touch screens), dragging the range's handles, or the keyboard. It
// reloads the recordings every few seconds while the page is visible, so
// the run being recorded grows and "now" (a marker) moves on.
"use strict";

const MIN_SPAN = 60e3, MAX_SPAN = 31 * 24 * 3600e3;

// future is how far past now the window may end: a little room for the
// now marker, never more than a minute (a week's view ends at now).
const future = (span) => Math.min(span / 20, 60e3);

class Timeline {
  // el: container; opts: {camera, stream() ("main" or "sub"; main when
  // absent), onSeek(t: Date), onSelect(from, to), onLocks(locks),
  // onPick(on) (select mode turned on or off), refreshMs (10 s when
  // absent)}.
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.span = 900e3; // visible window in ms
    this.end = Date.now() + future(this.span); // now just left of the right edge
    this.seenNow = Date.now(); // now at the last refresh (see refresh)
    this.runs = [];
    this.locks = [];
    this.playhead = null;
    this.sel = null;
    this.picking = null; // select mode: null, or which end the next tap sets ("from", "to")
    this.loads = 0; // completed loads, for tests
    el.classList.add("timeline");
    el.innerHTML = `
      <div class="tl-bar" tabindex="0" role="slider" aria-label="Recordings timeline: click or press Enter to play from a time; arrows move, + and - zoom, shift-drag selects a range to export"></div>
      <div class="tl-ticks" aria-hidden="true"></div>
      <div class="tl-preview" hidden><img alt=""><span></span></div>`;
    this.bar = el.querySelector(".tl-bar");
    this.ticks = el.querySelector(".tl-ticks");
    this.preview = el.querySelector(".tl-preview");
    this.cursor = null; // keyboard position
    this.bind();
    this.load();
    // Refresh while the page is visible; a hidden page asks for nothing
    // and catches up when it is shown again.
    this.timer = 0;
    this.onVisibility = () => this.schedule();
    document.addEventListener("visibilitychange", this.onVisibility);
    this.schedule();
  }

  get start() { return this.end - this.span; }
  get stream() { return (this.opts.stream && this.opts.stream()) || "main"; }
  // x is a pointer's offset from the bar's left edge, whatever element
  // under the pointer received the event.
  x(e) { return e.clientX - this.bar.getBoundingClientRect().left; }
  x2t(x) { return this.start + (x / this.bar.clientWidth) * this.span; }
  t2pct(t) { return ((t - this.start) / this.span) * 100; }

  // schedule starts or stops the periodic refresh by the page's visibility.
  schedule() {
    clearInterval(this.timer);
    this.timer = 0;
    if (document.visibilityState === "hidden") return;
    if (this.seenNow < Date.now() - (this.opts.refreshMs || 10e3)) this.refresh();
    this.timer = setInterval(() => this.refresh(), this.opts.refreshMs || 10e3);
  }

  // refresh moves a window that shows now along with it, then reloads.
  refresh() {
    const now = Date.now();
    if (this.end >= this.seenNow && !this.dragging) this.end += now - this.seenNow;
    this.seenNow = now;
    this.load();
  }

  // destroy stops the refresh; the page calls it when it goes away.
  destroy() {
    clearInterval(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  // clampEnd keeps the window from showing more than a little future.
  clampEnd() {
    this.end = Math.min(this.end, Date.now() + future(this.span));
  }

  // pick turns select mode on or off: while on, a tap or click sets the
  // range's start, the next its end.
  pick(on) {
    this.picking = on ? "from" : null;
    this.el.classList.toggle("tl-picking", !!on);
    if (this.opts.onPick) this.opts.onPick(!!on);
    this.render();
  }

  bind() {
    const bar = this.bar;
    let down = null;
    bar.addEventListener("pointerdown", (e) => {
      const h = e.target.closest(".tl-handle");
      down = { x: this.x(e), end: this.end, shift: e.shiftKey, moved: false,
        edge: h && this.sel ? Number(h.dataset.edge) : null };
      this.dragging = true;
      bar.setPointerCapture(e.pointerId);
    });
    // drag applies a move of the pointer to x while the button is down.
    const drag = (x) => {
      if (Math.abs(x - down.x) > 3) down.moved = true;
      if (down.edge !== null) {
        const other = this.sel[1 - down.edge], t = this.x2t(x);
        this.select(Math.min(other, t), Math.max(other, t));
        down.edge = t < other ? 0 : 1;
      } else if (down.shift) {
        const a = this.x2t(down.x), b = this.x2t(x);
        this.select(Math.min(a, b), Math.max(a, b));
      } else if (down.moved) {
        this.end = down.end - ((x - down.x) / bar.clientWidth) * this.span;
        this.clampEnd();
        this.render();
      }
    };
    bar.addEventListener("pointermove", (e) => {
      const x = this.x(e);
      if (e.pointerType !== "touch" || !down) this.hover(x);
      if (down) drag(x);
    });
    const up = (e) => {
      this.dragging = false;
      if (!down) return;
      // Where the pointer is let go ends a drag (moves may come coalesced).
      if (e.type === "pointerup" && (down.edge !== null || down.shift)) drag(this.x(e));
      const d = down;
      down = null;
      if (e.type === "pointercancel" || d.edge !== null || d.shift) return;
      if (d.moved) { this.load(); return; }
      const t = this.x2t(this.x(e));
      if (this.picking === "from") {
        this.picking = "to";
        this.select(t, t);
      } else if (this.picking === "to") {
        const a = this.sel ? this.sel[0] : t;
        this.pick(false);
        this.select(Math.min(a, t), Math.max(a, t));
      } else {
        this.opts.onSeek(new Date(t));
      }
    };
    bar.addEventListener("pointerup", up);
    bar.addEventListener("pointercancel", up);
    bar.addEventListener("pointerleave", () => { this.preview.hidden = true; });
    bar.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(e.deltaY > 0 ? 1.5 : 1 / 1.5, this.x2t(this.x(e)));
    }, { passive: false });
    bar.addEventListener("keydown", (e) => {
      const step = this.span / 20;
      if (this.cursor === null) this.cursor = this.playhead ?? this.end - this.span / 2;
      if (e.key === "ArrowLeft") this.cursor -= step;
      else if (e.key === "ArrowRight") this.cursor += step;
      else if (e.key === "+" || e.key === "=") return this.zoom(1 / 1.5, this.cursor);
      else if (e.key === "-") return this.zoom(1.5, this.cursor);
      else if (e.key === "Enter") return this.opts.onSeek(new Date(this.cursor));
      else return;
      e.preventDefault();
      if (this.cursor < this.start || this.cursor > this.end) { this.end = this.cursor + this.span / 2; this.clampEnd(); this.load(); }
      this.hover(((this.cursor - this.start) / this.span) * this.bar.clientWidth);
      bar.setAttribute("aria-valuetext", new Date(this.cursor).toLocaleString());
    });
  }

  zoom(factor, around) { this.zoomTo(this.span * factor, around); }

  // zoomTo shows span ms with around at the same place on the screen (as
  // far as the window may reach into the future).
  zoomTo(span, around) {
    span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, span));
    const frac = (around - this.start) / this.span;
    this.end = around + (1 - frac) * span;
    this.span = span;
    this.clampEnd();
    this.load();
  }

  // setSpan zooms around the playhead, else now when it is in view, else
  // the middle.
  setSpan(ms) {
    const now = Date.now();
    this.zoomTo(ms, this.playhead ?? (now >= this.start && now <= this.end ? now : this.end - this.span / 2));
  }

  async load() {
    this.render();
    const from = new Date(this.start - 60e3).toISOString(), to = new Date(this.end + 60e3).toISOString();
    try {
      const r = await fetch(`/api/cameras/${encodeURIComponent(this.opts.camera)}/recordings?stream=${this.stream}&from=${from}&to=${to}`);
      if (!r.ok) throw new Error((await r.json()).error);
      const body = await r.json();
      this.runs = body.runs.map((x) => ({ s: Date.parse(x.start), e: Date.parse(x.end), rec: !!x.recording }));
      this.locks = (body.locks || []).map((x) => ({ s: Date.parse(x.from), e: Date.parse(x.to), id: x.id, reason: x.reason, by: x.created_by }));
      if (this.opts.onLocks) this.opts.onLocks(this.locks);
      this.el.classList.remove("tl-error");
      this.bar.title = "";
    } catch (e) {
      this.el.classList.add("tl-error");
      this.bar.title = "Could not load recordings: " + e.message;
    }
    this.loads++;
    this.render();
  }

  render() {
    const parts = this.runs.filter((r) => r.e > this.start && r.s < this.end).map((r) => {
      const l = Math.max(0, this.t2pct(r.s)), w = Math.min(100, this.t2pct(r.e)) - l;
      return `<div class="tl-run${r.rec ? " tl-live" : ""}" style="left:${l}%;width:${Math.max(w, 0.2)}%"></div>`;
    });
    for (const k of this.locks || []) {
      if (k.e <= this.start || k.s >= this.end) continue;
      const l = Math.max(0, this.t2pct(k.s)), w = Math.min(100, this.t2pct(k.e)) - l;
      parts.push(`<div class="tl-lock" style="left:${l}%;width:${Math.max(w, 0.2)}%" title="Evidence lock: ${(k.reason || "").replace(/[&<>"']/g, "")}"></div>`);
    }
    if (this.sel) {
      const l = this.t2pct(this.sel[0]), w = this.t2pct(this.sel[1]) - l;
      parts.push(`<div class="tl-sel" style="left:${l}%;width:${w}%"></div>`);
      // Handles to drag either end (wide enough for a finger).
      this.sel.forEach((t, i) => {
        if (t >= this.start && t <= this.end) {
          parts.push(`<div class="tl-handle" data-edge="${i}" style="left:${this.t2pct(t)}%" title="${i ? "Drag to move the end" : "Drag to move the start"}"></div>`);
        }
      });
    }
    const now = Date.now();
    if (now >= this.start && now <= this.end) parts.push(`<div class="tl-now" style="left:${this.t2pct(now)}%" title="Now"></div>`);
    if (this.playhead !== null && this.playhead >= this.start && this.playhead <= this.end) {
      parts.push(`<div class="tl-head" style="left:${this.t2pct(this.playhead)}%"></div>`);
    }
    this.bar.innerHTML = parts.join("");
    this.bar.setAttribute("aria-valuemin", this.start);
    this.bar.setAttribute("aria-valuemax", this.end);
    // The visible range in ms, for tests and the curious.
    this.bar.dataset.start = this.start;
    this.bar.dataset.end = this.end;
    // Ticks: about six labels at a round step.
    const steps = [60e3, 300e3, 900e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 86400e3, 7 * 86400e3];
    const step = steps.find((s) => this.span / s <= 8) ?? steps[steps.length - 1];
    const off = new Date().getTimezoneOffset() * 60e3;
    const ticks = [];
    for (let t = Math.ceil((this.start - off) / step) * step + off; t < this.end; t += step) {
      const d = new Date(t);
      const label = step >= 86400e3 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      ticks.push(`<span style="left:${this.t2pct(t)}%">${label}</span>`);
    }
    this.ticks.innerHTML = ticks.join("");
    // A label centred on a tick near either edge would stick out of the
    // timeline (and be cut off): align it with the edge instead.
    const box = this.ticks.getBoundingClientRect();
    for (const s of this.ticks.children) {
      const r = s.getBoundingClientRect();
      if (r.right > box.right) s.style.transform = "translateX(-100%)";
      else if (r.left < box.left) s.style.transform = "none";
      const r2 = s.getBoundingClientRect();
      if (r2.right > box.right + 0.5 || r2.left < box.left - 0.5) s.remove(); // the tick itself is too close
    }
  }

  hover(x) {
    const t = this.x2t(x);
    const inRun = this.runs.some((r) => t >= r.s && t < r.e);
    const p = this.preview;
    p.hidden = false;
    p.style.left = Math.min(Math.max(x - 80, 0), this.bar.clientWidth - 160) + "px";
    p.dataset.t = Math.round(t);
    p.querySelector("span").textContent = new Date(t).toLocaleString() + (inRun ? "" : " (no recording)");
    const img = p.querySelector("img");
    if (inRun) {
      // One request per 2 s bucket: previews come from the key frame anyway.
      const at = new Date(Math.floor(t / 2000) * 2000).toISOString();
      const src = `/api/cameras/${encodeURIComponent(this.opts.camera)}/thumbnail.jpg?width=160&stream=${this.stream}&at=${at}`;
      if (img.dataset.src !== src) { img.dataset.src = src; img.src = src; }
      img.hidden = false;
    } else {
      img.hidden = true;
    }
  }

  select(from, to) {
    this.sel = [from, to];
    this.render();
    this.opts.onSelect(new Date(from), new Date(to));
  }

  setPlayhead(t) {
    this.playhead = t;
    if (t > this.end || t < this.start) { this.end = t + this.span / 2; this.clampEnd(); this.load(); } else this.render();
  }

  // neighbour returns the start of the next run after t (dir > 0) or the
  // start of the run before the one holding t (dir < 0), or null.
  neighbour(t, dir) {
    const runs = [...this.runs].sort((a, b) => a.s - b.s);
    if (dir > 0) return runs.find((r) => r.s > t + 1000)?.s ?? null;
    const before = runs.filter((r) => r.e < t - 1000);
    return before.length ? before[before.length - 1].s : null;
  }
}
