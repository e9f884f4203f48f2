// Package reorder puts RTP packets received over UDP back into sequence
// order within a bounded window. It does no I/O and never blocks.
package reorder

import "github.com/pion/rtp"

// MaxJump is how far a sequence number may move (ahead of the next
// expected packet, or behind it) before the buffer treats the stream as
// restarted and resynchronises on the new number instead of waiting.
const MaxJump = 3000

// Buffer holds up to a window of sequence numbers and releases packets in
// order. A missing packet is waited for until a packet a full window ahead
// of it arrives; then it is skipped, and the consumer sees the gap in
// sequence numbers as loss. Duplicates and packets older than the last
// released one are dropped; the first packet pushed is released at once, so
// it fixes the start. A jump of more than MaxJump either way (a
// sender restart) releases everything held and starts over at the new
// number.
//
// The buffer keeps the *rtp.Packet pointers it is given until Pop returns
// them; the caller must not reuse a pushed packet before that. Dropped
// packets are not kept. A Buffer is not safe for concurrent use.
type Buffer struct {
	window  int
	slots   []*rtp.Packet // ring indexed by seq & mask
	mask    uint16
	started bool
	next    uint16 // sequence number of the next packet to release
	held    int    // packets in slots

	out  []*rtp.Packet // released in order, waiting for Pop
	head int

	dropped uint64
	resets  uint64
}

// New returns a buffer that reorders within window packets (at least 1,
// at most 32768).
func New(window int) *Buffer {
	window = min(max(window, 1), 1<<15)
	size := 1
	for size < window {
		size <<= 1
	}
	return &Buffer{window: window, slots: make([]*rtp.Packet, size), mask: uint16(size - 1)}
}

// Len returns the number of packets held, released or not yet.
func (b *Buffer) Len() int { return b.held + len(b.out) - b.head }

// Dropped returns how many duplicate or late packets were dropped.
func (b *Buffer) Dropped() uint64 { return b.dropped }

// Resets returns how many times a sequence jump restarted the buffer.
func (b *Buffer) Resets() uint64 { return b.resets }

// Push adds pkt. Packets that become releasable are returned by Pop.
func (b *Buffer) Push(pkt *rtp.Packet) {
	seq := pkt.SequenceNumber
	if !b.started {
		b.started, b.next = true, seq
	}
	ahead := seq - b.next // modulo 2^16
	switch {
	case int(ahead) < b.window:
	case ahead < 0x8000 && ahead <= MaxJump:
		// Beyond the window: release (or skip) the oldest until it fits.
		for int(seq-b.next) >= b.window {
			if b.held == 0 {
				b.next = seq - uint16(b.window) + 1
				break
			}
			b.release()
		}
	case ahead >= 0x8000 && -ahead <= MaxJump:
		b.dropped++ // late or duplicate of a released packet
		return
	default:
		b.Flush()
		b.resets++
		b.next = seq
	}
	i := seq & b.mask
	if b.slots[i] != nil {
		b.dropped++ // duplicate of a held packet
		return
	}
	b.slots[i] = pkt
	b.held++
	b.drain()
}

// release moves the packet at next (if any) to out and advances next.
func (b *Buffer) release() {
	i := b.next & b.mask
	if p := b.slots[i]; p != nil {
		b.out = append(b.out, p)
		b.slots[i] = nil
		b.held--
	}
	b.next++
}

// drain releases the run of consecutive packets at next.
func (b *Buffer) drain() {
	for b.held > 0 && b.slots[b.next&b.mask] != nil {
		b.release()
	}
}

// Flush releases every held packet in order, skipping gaps; Pop then
// returns them. Use it when the stream ends.
func (b *Buffer) Flush() {
	for b.held > 0 {
		b.release()
	}
}

// Pop returns the next packet in order, if one is ready.
func (b *Buffer) Pop() (*rtp.Packet, bool) {
	if b.head < len(b.out) {
		p := b.out[b.head]
		b.out[b.head] = nil
		b.head++
		if b.head == len(b.out) {
			b.out, b.head = b.out[:0], 0
		}
		return p, true
	}
	return nil, false
}
