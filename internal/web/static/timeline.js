// timeline.js: the recordings timeline of one camera. It shows recorded
// runs and the gaps between them over a window that zooms from minutes to
// weeks, previews the key frame under the pointer, plays from a click and
// selects a range for export with shift-drag (or the keyboard).
"use strict";

const MIN_SPAN = 60e3, MAX_SPAN = 31 * 24 * 3600e3;

class Timeline {
  // el: container; opts: {camera, onSeek(t: Date), onSelect(from, to)}.
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.span = 900e3; // visible window in ms
    this.end = Date.now() + this.span / 10; // now a little left of the right edge
    this.runs = [];
    this.locks = [];
    this.playhead = null;
    this.sel = null;
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
  }

  get start() { return this.end - this.span; }
  x2t(x) { return this.start + (x / this.bar.clientWidth) * this.span; }
  t2pct(t) { return ((t - this.start) / this.span) * 100; }

  bind() {
    const bar = this.bar;
    let down = null;
    bar.addEventListener("pointerdown", (e) => {
      down = { x: e.offsetX, end: this.end, shift: e.shiftKey, moved: false };
      bar.setPointerCapture(e.pointerId);
    });
    bar.addEventListener("pointermove", (e) => {
      this.hover(e.offsetX);
      if (!down) return;
      if (Math.abs(e.offsetX - down.x) > 3) down.moved = true;
      if (down.shift) {
        const a = this.x2t(down.x), b = this.x2t(e.offsetX);
        this.select(Math.min(a, b), Math.max(a, b));
      } else if (down.moved) {
        this.end = down.end - ((e.offsetX - down.x) / bar.clientWidth) * this.span;
        this.render();
      }
    });
    bar.addEventListener("pointerup", (e) => {
      if (down && !down.moved && !down.shift) this.opts.onSeek(new Date(this.x2t(e.offsetX)));
      if (down && down.moved && !down.shift) this.load();
      down = null;
    });
    bar.addEventListener("pointerleave", () => { this.preview.hidden = true; });
    bar.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(e.deltaY > 0 ? 1.5 : 1 / 1.5, this.x2t(e.offsetX));
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
      if (this.cursor < this.start || this.cursor > this.end) { this.end = this.cursor + this.span / 2; this.load(); }
      this.hover(((this.cursor - this.start) / this.span) * this.bar.clientWidth);
      bar.setAttribute("aria-valuetext", new Date(this.cursor).toLocaleString());
    });
  }

  zoom(factor, around) {
    const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, this.span * factor));
    const frac = (around - this.start) / this.span;
    this.end = around + (1 - frac) * span;
    this.span = span;
    this.load();
  }

  setSpan(ms) { this.zoom(ms / this.span, this.playhead ?? this.end - this.span / 2); }

  async load() {
    this.render();
    const from = new Date(this.start - 60e3).toISOString(), to = new Date(this.end + 60e3).toISOString();
    try {
      const r = await fetch(`/api/cameras/${encodeURIComponent(this.opts.camera)}/recordings?from=${from}&to=${to}`);
      if (!r.ok) throw new Error((await r.json()).error);
      const body = await r.json();
      this.runs = body.runs.map((x) => ({ s: Date.parse(x.start), e: Date.parse(x.end), rec: !!x.recording }));
      this.locks = (body.locks || []).map((x) => ({ s: Date.parse(x.from), e: Date.parse(x.to), id: x.id, reason: x.reason, by: x.created_by }));
      if (this.opts.onLocks) this.opts.onLocks(this.locks);
      this.el.classList.remove("tl-error");
    } catch (e) {
      this.el.classList.add("tl-error");
      this.bar.title = "Could not load recordings: " + e.message;
    }
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
    }
    if (this.playhead !== null && this.playhead >= this.start && this.playhead <= this.end) {
      parts.push(`<div class="tl-head" style="left:${this.t2pct(this.playhead)}%"></div>`);
    }
    this.bar.innerHTML = parts.join("");
    this.bar.setAttribute("aria-valuemin", this.start);
    this.bar.setAttribute("aria-valuemax", this.end);
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
  }

  hover(x) {
    const t = this.x2t(x);
    const inRun = this.runs.some((r) => t >= r.s && t < r.e);
    const p = this.preview;
    p.hidden = false;
    p.style.left = Math.min(Math.max(x - 80, 0), this.bar.clientWidth - 160) + "px";
    p.querySelector("span").textContent = new Date(t).toLocaleString() + (inRun ? "" : " (no recording)");
    const img = p.querySelector("img");
    if (inRun) {
      // One request per 2 s bucket: previews come from the key frame anyway.
      const at = new Date(Math.floor(t / 2000) * 2000).toISOString();
      const src = `/api/cameras/${encodeURIComponent(this.opts.camera)}/thumbnail.jpg?width=160&stream=main&at=${at}`;
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
    if (t > this.end || t < this.start) { this.end = t + this.span / 2; this.load(); } else this.render();
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
