package live

import "github.com/custos-nvr/custos/internal/media/dts"

// timing gives the frames of one run (from a Reset, or the hub's start, to
// the next) decode times by the rule the recorder uses (package dts), on
// the hub's own timeline: the first frame of a run starts where the
// previous run's last frame ended, so a viewer's decode times never go
// backwards; at a timestamp jump the timeline continues.
//
// A frame is emitted as soon as the dts.Timer releases it, with the step
// that led to it as its duration (the real one is known only when the next
// frame comes); the next fragment's decode time is authoritative, so a
// wrong guess leaves a tiny gap or overlap in the buffered range, not a
// drift.
//
// Cameras that send one picture as several units with one timestamp (the
// RTP marker bit on every slice) are noticed at the first such unit: from
// then on the hub holds each frame until the next timestamp, one frame
// more latency, and emits it whole with its exact duration.
type timing struct {
	dt       dts.Timer[entry]
	havePrev bool
	prevPTS  int64 // camera time
	prevDTS  int64 // hub time
	prevStep int64 // last decode step, the guess for the next duration
	// base maps the timer's timeline onto the hub's.
	base int64
	// pending is, when coalescing, the frame not emitted yet.
	pending    entry
	hasPending bool
}

// maxCTS90k bounds composition offsets (see dts.MaxCTS90k).
const maxCTS90k = dts.MaxCTS90k

// push takes one published frame. h.mu is held.
func (t *timing) push(h *Hub, e *entry) {
	if !t.dt.Push(e.pts, e.key, *e) {
		h.stats.Skipped++ // nothing before a run's first key frame decodes
		return
	}
	t.drain(h)
}

// drain emits the frames the timer released.
func (t *timing) drain(h *Hub) {
	for {
		f, ok := t.dt.Next()
		if !ok {
			return
		}
		t.frame(h, &f)
	}
}

// flush emits what the run still holds (Reset), with guessed durations.
func (t *timing) flush(h *Hub) {
	t.dt.Flush()
	t.drain(h)
	if t.hasPending {
		t.hasPending = false
		h.emit(&t.pending, t.guess(h))
		t.pending = entry{}
	}
}

// guess returns the duration to give a frame whose successor is unknown.
func (t *timing) guess(h *Hub) int64 {
	switch {
	case t.prevStep > 0:
		return t.prevStep
	case t.dt.Interval90k() > 0:
		return t.dt.Interval90k()
	case h.lastDur > 0:
		return h.lastDur
	}
	return defaultStep90k
}

// frame puts one timed frame on the hub's timeline and emits it (or holds
// it when coalescing).
func (t *timing) frame(h *Hub, f *dts.Frame[entry]) {
	e := &f.Value
	if f.Same {
		t.continuation(h, e)
		return
	}
	if !t.havePrev {
		t.base = h.end90k - f.DTS90k
	} else if f.Jump {
		h.log.Warn("live: timestamp discontinuity; timeline continues", "step90k", e.pts-t.prevPTS)
		h.stats.Discontinuities++
	}
	dts := f.DTS90k + t.base
	if t.havePrev {
		t.prevStep = dts - t.prevDTS
	}
	e.dts, e.cts = dts, f.CTS90k
	t.prevPTS, t.prevDTS, t.havePrev = e.pts, dts, true

	if t.hasPending {
		t.hasPending = false
		h.emit(&t.pending, dts-t.pending.dts)
		t.pending = entry{}
	}
	if !h.useTrack(e) {
		return
	}
	if h.coalesce {
		t.pending, t.hasPending = *e, true
		return
	}
	h.emit(e, t.guess(h))
}

// continuation handles a unit with the previous one's timestamp: more of
// the same picture. h.mu is held.
func (t *timing) continuation(h *Hub, e *entry) {
	if !h.coalesce {
		// The picture went out already; later viewers get it whole from
		// the cache, current ones without these units (once per hub).
		h.coalesce = true
		h.log.Info("live: camera sends pictures in several units; each frame is held until the next")
		if n := len(h.gop); h.gopOK && n > 0 && h.gop[n-1].pts == e.pts {
			g := &h.gop[n-1]
			g.nalus = append(g.nalus[:len(g.nalus):len(g.nalus)], e.nalus...)
			g.size += e.size
			h.gopBytes += e.size
			if e.key && !g.key {
				// The picture is a key frame after all: the GOP starts there.
				g.key = true
				kept := *g
				h.clearGOP()
				h.gop, h.gopOK, h.gopBytes = append(h.gop, kept), true, kept.size
			}
		}
		h.stats.Skipped++
		return
	}
	p := &t.pending
	if !t.hasPending || p.pts != e.pts || p.size+e.size > maxPendingBytes {
		h.stats.Skipped++
		return
	}
	// Never append into the caller's slice: copy on first growth.
	p.nalus = append(p.nalus[:len(p.nalus):len(p.nalus)], e.nalus...)
	p.key = p.key || e.key
	p.size += e.size
}
