package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Viewer.Next once the viewer or its hub is
// closed.
var ErrClosed = errors.New("live: viewer closed")

// Message is one unit a viewer receives: an init segment or a fragment
// (moof+mdat) of fragmented MP4 with a 90 kHz timescale.
//
// Data is shared between viewers and must not be modified.
type Message struct {
	Data []byte
	// IsInit marks an init segment (ftyp+moov). Codec, Width and Height are
	// set on init segments only.
	IsInit bool
	// Codec is the RFC 6381 codecs parameter for MSE, e.g. "avc1.640028"
	// or "hvc1.1.6.L120.B0".
	Codec         string
	Width, Height int
	// Key reports a fragment that starts with a key frame: a viewer can
	// start decoding there.
	Key bool
	// PTS90k and DTS90k are the presentation and decode times of the
	// fragment's first sample on the viewer's media timeline, which is
	// what a browser reports as currentTime*90000. They never go backwards
	// across a Reset. CameraPTS90k is the same frame's presentation time as
	// the camera sent it (extended RTP time).
	PTS90k, DTS90k int64
	CameraPTS90k   int64
	// Frames is the number of samples in the fragment: 1 for a live
	// frame, the cached GOP's length for the first fragment after
	// Subscribe.
	Frames int
	// Published is when the recorder handed the frame to the hub (live
	// frames only; zero for init segments and the cached GOP).
	Published time.Time
}

// MIME returns the MSE type of an init message, e.g.
// `video/mp4; codecs="avc1.640028"`.
func (m *Message) MIME() string {
	return fmt.Sprintf("video/mp4; codecs=%q", m.Codec)
}

// queued is a message in a viewer's queue; cost is what it counts against
// the queue's byte bound (zero for init segments and the GOP that
// Subscribe hands out, which the hub bounds on its own).
type queued struct {
	msg  Message
	cost int
}

// Viewer is one subscriber of a Hub: a bounded queue of messages that the
// hub fills without ever waiting and the viewer drains with Next. Next and
// Close may be called from any goroutine; Next from one at a time.
type Viewer struct {
	hub    *Hub
	notify chan struct{} // capacity 1: something was queued
	done   chan struct{} // closed by Close

	mu      sync.Mutex
	q       []queued // q[head:] are pending
	head    int
	bytes   int  // sum of the pending costs
	limit   int  // bound on bytes
	needKey bool // fragments are skipped until a key fragment
	// lost is true from an overflow until the next key fragment: the
	// fragments skipped meanwhile count as dropped.
	lost    bool
	dropped int
	closed  bool
}

func newViewer(h *Hub, limit int) *Viewer {
	return &Viewer{
		hub:    h,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		limit:  limit,
	}
}

// Next blocks until the next message is available and returns it, or until
// ctx ends (returning ctx.Err()) or the viewer or its hub is closed
// (returning ErrClosed). Messages come in this order: an init segment, then
// fragments starting with a key fragment; after a Reset or a change of
// parameter sets another init segment, then fragments from the next key
// fragment. A viewer whose queue overflowed skips to the next key fragment
// (Dropped counts what it missed). Data of successive fragments carries
// strictly increasing decode times.
func (v *Viewer) Next(ctx context.Context) (Message, error) {
	for {
		v.mu.Lock()
		if v.closed {
			v.mu.Unlock()
			return Message{}, ErrClosed
		}
		if v.head < len(v.q) {
			e := v.q[v.head]
			v.q[v.head] = queued{} // release the data
			v.head++
			v.bytes -= e.cost
			if v.head == len(v.q) {
				v.q, v.head = v.q[:0], 0
			}
			v.mu.Unlock()
			return e.msg, nil
		}
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-v.done:
			return Message{}, ErrClosed
		case <-v.notify:
		}
	}
}

// Close removes the viewer from its hub and releases its queue; a Next
// blocked meanwhile returns ErrClosed. It does not block (beyond short
// locks) and may be called more than once, from any goroutine.
func (v *Viewer) Close() {
	v.hub.remove(v)
	v.shut()
}

// shut marks the viewer closed without touching the hub's list.
func (v *Viewer) shut() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	clear(v.q)
	v.q, v.head, v.bytes = nil, 0, 0
	close(v.done)
}

// Dropped returns the number of frames this viewer missed because its
// queue was full: those cleared from the queue and those skipped until the
// next key frame. It is safe for concurrent use.
func (v *Viewer) Dropped() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.dropped
}

// Queued returns the number of messages and bytes waiting in the queue.
func (v *Viewer) Queued() (messages, bytes int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.q) - v.head, v.bytes
}

// pushInit queues an init segment: never dropped, and fragments are then
// skipped until a key fragment.
func (v *Viewer) pushInit(m Message) {
	v.mu.Lock()
	if !v.closed {
		v.q = append(v.q, queued{msg: m})
		v.needKey = true
	}
	v.mu.Unlock()
	v.wake()
}

// resync makes the viewer skip to the next key fragment (the hub lost the
// stream's continuity, e.g. on Reset).
func (v *Viewer) resync() {
	v.mu.Lock()
	v.needKey = true
	v.mu.Unlock()
}

// pushFrame queues fragment m without blocking. It returns false when the
// viewer's queue was full, in which case the queued fragments are dropped
// (init segments stay) and the viewer resumes at the next key fragment
// (possibly m itself).
func (v *Viewer) pushFrame(m Message) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return true
	}
	if v.needKey && !m.Key {
		if v.lost {
			v.dropped += m.Frames
		}
		return true
	}
	ok := true
	if v.bytes+len(m.Data) > v.limit && v.bytes > 0 {
		ok = false
		v.overflow()
		if !m.Key {
			v.dropped += m.Frames
			return false
		}
	}
	v.needKey, v.lost = false, false
	v.q = append(v.q, queued{msg: m, cost: len(m.Data)})
	v.bytes += len(m.Data)
	v.wake()
	return ok
}

// overflow drops every pending fragment but keeps the latest pending init
// segment, which the next key fragment needs. v.mu is held.
func (v *Viewer) overflow() {
	var init *queued
	for i := v.head; i < len(v.q); i++ {
		if v.q[i].msg.IsInit {
			init = &v.q[i]
		} else {
			v.dropped += v.q[i].msg.Frames
		}
	}
	kept := queued{}
	if init != nil {
		kept = *init
	}
	clear(v.q)
	v.q, v.head, v.bytes = v.q[:0], 0, 0
	if init != nil {
		v.q = append(v.q, kept)
	}
	v.needKey, v.lost = true, true
}

// prepend puts msgs before everything queued so far (Subscribe's init and
// GOP, built after the viewer was registered). They cost nothing against
// the bound.
func (v *Viewer) prepend(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	pending := v.q[v.head:]
	q := make([]queued, 0, len(msgs)+len(pending)+8)
	for _, m := range msgs {
		q = append(q, queued{msg: m})
	}
	q = append(q, pending...)
	v.q, v.head = q, 0
	v.mu.Unlock()
	v.wake()
}

func (v *Viewer) wake() {
	select {
	case v.notify <- struct{}{}:
	default:
	}
}
