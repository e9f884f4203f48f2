package live

// timing derives decode times for the frames of one run (from a Reset, or
// the hub's start, to the next) the way the recorder does, on the hub's
// own timeline: the first frame of a run starts where the previous run's
// last frame ended, so a viewer's decode times never go backwards.
//
// Cameras without B-frames send presentation times in decode order, so
// the decode time is the presentation time (shifted onto the timeline).
// Once a presentation time steps backwards the stream has B-frames, and
// decode times advance by the smallest frame interval seen; each frame
// carries its composition offset (presentation minus decode time, possibly
// negative). To choose before emitting anything, the first prerollFrames
// frames of a run from its first key frame are held back and looked at.
//
// A frame is emitted at once, with the step that led to it as its
// duration (the real one is known only when the next frame comes); the
// next fragment's decode time is authoritative, so a wrong guess leaves a
// tiny gap or overlap in the buffered range, not a drift.
//
// Cameras that send one picture as several units with one timestamp (the
// RTP marker bit on every slice) are noticed at the first such unit: from
// then on the hub holds each frame until the next timestamp, one frame
// more latency, and emits it whole with its exact duration.
type timing struct {
	decided  bool
	preroll  []entry
	bframes  bool
	minStep  int64 // smallest positive step between presentation times
	havePrev bool
	prevPTS  int64 // camera time
	prevDTS  int64 // hub time
	prevStep int64 // last decode step, the guess for the next duration
	// offset maps camera presentation times onto the hub's timeline.
	offset int64
	// pending is, when coalescing, the frame not emitted yet.
	pending    entry
	hasPending bool
}

// maxCTS90k bounds the composition offset that decode times advancing by
// the smallest frame interval build up when a camera's intervals jitter
// or its frame rate drops; past it, decode times catch up at once.
const maxCTS90k = 90000

// push takes one published frame. h.mu is held.
func (t *timing) push(h *Hub, e *entry) {
	if t.decided {
		t.frame(h, e)
		return
	}
	if len(t.preroll) == 0 && !e.key {
		h.stats.Skipped++ // nothing before a run's first key frame decodes
		return
	}
	t.preroll = append(t.preroll, *e)
	if len(t.preroll) >= prerollFrames {
		t.decide(h)
	}
}

// decide chooses the decode-time mode from the held-back frames and emits
// them.
func (t *timing) decide(h *Hub) {
	t.decided = true
	for i := 1; i < len(t.preroll); i++ {
		step := t.preroll[i].pts - t.preroll[i-1].pts
		if step < 0 && step > -maxFrameGap90k {
			t.bframes = true
		}
		if step > 0 && step <= maxFrameGap90k && (t.minStep == 0 || step < t.minStep) {
			t.minStep = step
		}
	}
	held := t.preroll
	t.preroll = nil
	for i := range held {
		t.frame(h, &held[i])
	}
	clear(held)
}

// flush emits what the run still holds (Reset), with guessed durations.
func (t *timing) flush(h *Hub) {
	if !t.decided && len(t.preroll) > 0 {
		t.decide(h)
	}
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
	case t.minStep > 0:
		return t.minStep
	case h.lastDur > 0:
		return h.lastDur
	}
	return defaultStep90k
}

// frame times one frame of a decided run and emits it (or holds it when
// coalescing).
func (t *timing) frame(h *Hub, e *entry) {
	if t.havePrev && e.pts == t.prevPTS {
		t.continuation(h, e)
		return
	}
	var dts int64
	if !t.havePrev {
		dts = h.end90k
		t.offset = dts - e.pts
	} else {
		step := e.pts - t.prevPTS
		switch {
		case step > maxFrameGap90k || step < -maxFrameGap90k:
			h.log.Warn("live: timestamp discontinuity; timeline continues", "step90k", step)
			h.stats.Discontinuities++
			dts = t.prevDTS + t.guess(h)
			t.offset = dts - e.pts
		case t.bframes || step < 0:
			t.bframes = true
			if step > 0 && (t.minStep == 0 || step < t.minStep) {
				t.minStep = step
			}
			dts = t.prevDTS + max(t.minStep, 1)
			if lag := e.pts + t.offset - dts; lag > maxCTS90k {
				dts += lag - maxCTS90k // the frame rate dropped, or jitters
			}
		default:
			if t.minStep == 0 || step < t.minStep {
				t.minStep = step
			}
			dts = t.prevDTS + step
		}
		t.prevStep = dts - t.prevDTS
	}
	e.dts, e.cts = dts, int32(e.pts+t.offset-dts)
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
