package live

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
)

// Frame is one access unit as a FrameViewer receives it: the raw coded
// picture, for transports that packetize it themselves (WebRTC).
//
// AnnexB is shared between frame viewers and must not be modified.
type Frame struct {
	// AnnexB is the access unit with 4-byte start codes; a key frame
	// starts with its parameter sets (see ingest.AppendAnnexB).
	AnnexB []byte
	// Codec and Params are the stream's codec and parameter sets in force.
	Codec  media.Codec
	Params media.ParamSets
	// Key reports an IDR (H.264) or IRAP (H.265) picture.
	Key bool
	// PTS90k and DTS90k are the frame's presentation and decode times on
	// the hub's timeline (as in Message); Dur90k is its duration in
	// decode order (a guess for the newest live frame, as in fragments).
	PTS90k, DTS90k, Dur90k int64
	// Cached marks frames of the GOP cache handed out by SubscribeFrames:
	// published before the subscription, hence already late.
	Cached bool
	// Published is when the recorder handed the frame to the hub (for
	// the live latency figures).
	Published time.Time
}

// FrameViewer is a subscriber of a Hub that receives access units in
// Annex B rather than fMP4 fragments, with the same bounded queue and
// drop-to-next-key-frame rule as Viewer. Next and Close may be called
// from any goroutine; Next from one at a time.
type FrameViewer struct {
	hub    *Hub
	notify chan struct{} // capacity 1: something was queued
	done   chan struct{} // closed by shut

	mu      sync.Mutex
	q       []Frame
	cost    []int // q[i]'s cost against limit (0 for cached frames)
	head    int
	bytes   int
	limit   int
	needKey bool
	lost    bool
	dropped int
	closed  bool
}

// SubscribeFrames adds a frame viewer. Its first frames are the cached
// GOP from its key frame (Cached set), when the hub has one, then every
// frame published afterwards; without a cached GOP it starts at the next
// key frame. After Close it returns a viewer whose Next reports
// ErrClosed. The hub builds Annex B access units only while it has frame
// viewers, once per frame for all of them.
func (h *Hub) SubscribeFrames() *FrameViewer {
	v := &FrameViewer{hub: h, notify: make(chan struct{}, 1), done: make(chan struct{}), limit: h.queueBytes}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		v.shut()
		return v
	}
	var gop []entry
	if h.init.Data != nil && h.gopOK && len(h.gop) > 0 {
		gop = slices.Clone(h.gop)
	}
	lastDur := h.lastDur
	v.needKey = gop == nil
	h.frameViewers = append(h.frameViewers, v)
	h.mu.Unlock()

	if gop != nil {
		head := make([]Frame, len(gop))
		for i := range gop {
			dur := lastDur
			if i+1 < len(gop) {
				dur = gop[i+1].dts - gop[i].dts
			}
			head[i] = annexBFrame(&gop[i], dur)
			head[i].Cached = true
		}
		v.prepend(head)
	}
	return v
}

// annexBFrame builds the Frame of entry e.
func annexBFrame(e *entry, dur90k int64) Frame {
	au := media.AccessUnit{NALUs: e.nalus, Key: e.key, Params: e.params}
	data := ingest.AppendAnnexB(make([]byte, 0, e.size+64), e.codec, &au)
	return Frame{AnnexB: data, Codec: e.codec, Params: e.params, Key: e.key,
		PTS90k: e.dts + int64(e.cts), DTS90k: e.dts, Dur90k: dur90k, Published: e.published}
}

// pushFrames queues e for every frame viewer. h.mu is held.
func (h *Hub) pushFrames(e *entry, dur90k int64) {
	f := annexBFrame(e, dur90k)
	for _, v := range h.frameViewers {
		if !v.push(f) {
			h.stats.Overflows++
		}
	}
}

func (h *Hub) removeFrames(v *FrameViewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.frameViewers, v); i >= 0 {
		h.frameViewers = slices.Delete(h.frameViewers, i, i+1)
	}
}

// Next blocks until the next frame is available and returns it, or until
// ctx ends (returning ctx.Err()) or the viewer or its hub is closed
// (returning ErrClosed). Frames come in decode order from a key frame; a
// viewer whose queue overflowed, or whose hub was Reset, skips to the next
// key frame.
func (v *FrameViewer) Next(ctx context.Context) (Frame, error) {
	for {
		v.mu.Lock()
		if v.closed {
			v.mu.Unlock()
			return Frame{}, ErrClosed
		}
		if v.head < len(v.q) {
			f := v.q[v.head]
			v.bytes -= v.cost[v.head]
			v.q[v.head] = Frame{}
			v.head++
			if v.head == len(v.q) {
				v.q, v.cost, v.head = v.q[:0], v.cost[:0], 0
			}
			v.mu.Unlock()
			return f, nil
		}
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		case <-v.done:
			return Frame{}, ErrClosed
		case <-v.notify:
		}
	}
}

// Close removes the viewer from its hub; a Next blocked meanwhile returns
// ErrClosed. It may be called more than once, from any goroutine.
func (v *FrameViewer) Close() {
	v.hub.removeFrames(v)
	v.shut()
}

// Dropped returns the number of frames the viewer missed because its
// queue was full.
func (v *FrameViewer) Dropped() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.dropped
}

func (v *FrameViewer) shut() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	v.q, v.cost, v.head, v.bytes = nil, nil, 0, 0
	close(v.done)
}

func (v *FrameViewer) resync() {
	v.mu.Lock()
	v.needKey = true
	v.mu.Unlock()
}

// push queues f without blocking; it returns false when the queue was full
// (the queue is then cleared and the viewer resumes at the next key frame,
// possibly f).
func (v *FrameViewer) push(f Frame) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return true
	}
	if v.needKey && !f.Key {
		if v.lost {
			v.dropped++
		}
		return true
	}
	ok := true
	if v.bytes+len(f.AnnexB) > v.limit && v.bytes > 0 {
		ok = false
		v.dropped += len(v.q) - v.head
		clear(v.q)
		v.q, v.cost, v.head, v.bytes = v.q[:0], v.cost[:0], 0, 0
		v.lost = true
		if !f.Key {
			v.needKey = true
			v.dropped++
			return false
		}
	}
	v.needKey, v.lost = false, false
	v.q = append(v.q, f)
	v.cost = append(v.cost, len(f.AnnexB))
	v.bytes += len(f.AnnexB)
	v.wake()
	return ok
}

// prepend puts the cached frames before everything queued so far, at no
// cost against the bound (the hub bounds its GOP cache).
func (v *FrameViewer) prepend(fs []Frame) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	q := append(fs, v.q[v.head:]...)
	cost := append(make([]int, len(fs), len(q)), v.cost[v.head:]...)
	v.q, v.cost, v.head = q, cost, 0
	v.mu.Unlock()
	v.wake()
}

func (v *FrameViewer) wake() {
	select {
	case v.notify <- struct{}{}:
	default:
	}
}
