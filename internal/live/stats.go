package live

import (
	"math"
	"time"
)

// Stats are a hub's counters since NewHub. Counters only grow.
type Stats struct {
	// Published counts Publish calls; Frames the frames emitted (cached
	// and, with viewers, queued); Skipped the units that could not be used
	// (before a run's first key frame, unusable parameter sets, extra
	// units of a picture that went out already).
	Published, Frames, Skipped uint64
	// Bytes is the NAL unit payload of the emitted frames (with 4-byte
	// length prefixes).
	Bytes uint64
	// Fragments and FragmentBytes count the per-frame fragments built for
	// viewers (once per frame, shared by all viewers).
	Fragments, FragmentBytes uint64
	// Subscribed counts Subscribe calls; Viewers is the current number.
	Subscribed uint64
	Viewers    int
	// Overflows counts a viewer's queue being found full; Dropped the
	// frames all viewers (closed ones included) missed that way.
	Overflows uint64
	Dropped   uint64
	// Resets and Discontinuities count Reset calls and timestamp jumps.
	Resets, Discontinuities uint64
	// Latency is the time from Publish to a frame's fragment being in
	// every viewer's queue, for frames published with viewers present. It
	// includes frames held back (a run's first frames, coalescing).
	Latency LatencySummary
	// SentLatency is the time from Publish to the frame being written to
	// a viewer's WebSocket (ServeMSE) or WebRTC track (ServeWHEP: the
	// RTP packets handed to the peer connection), per viewer and frame:
	// the server's whole part of live latency after ingest.
	SentLatency LatencySummary
}

// LatencySummary summarises a latency distribution. Quantiles are
// approximate (buckets about 9 % wide).
type LatencySummary struct {
	Count         uint64
	Mean, Max     time.Duration
	P50, P90, P99 time.Duration
}

// Stats returns the hub's counters. Safe for concurrent use.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	s := h.stats
	s.Viewers = len(h.viewers)
	dropped := h.gone
	vs := append([]*Viewer(nil), h.viewers...)
	s.Latency = h.lat.summary()
	s.SentLatency = h.sentLat.summary()
	h.mu.Unlock()
	for _, v := range vs {
		dropped += v.Dropped()
	}
	s.Dropped = uint64(dropped)
	return s
}

// latencyHist is a histogram of durations in logarithmic buckets, eight
// per power of two from 1 ns up to about 10^12 ns. It does not allocate.
type latencyHist struct {
	buckets [latBuckets]uint64
	count   uint64
	sum     time.Duration
	max     time.Duration
}

const (
	latPerOctave = 8
	latBuckets   = 40 * latPerOctave
)

func latBucket(d time.Duration) int {
	if d <= 1 {
		return 0
	}
	b := int(math.Log2(float64(d)) * latPerOctave)
	return min(b, latBuckets-1)
}

func (l *latencyHist) add(d time.Duration) {
	l.buckets[latBucket(d)]++
	l.count++
	l.sum += d
	l.max = max(l.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l *latencyHist) quantile(q float64) time.Duration {
	if l.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(l.count)))
	var n uint64
	for i, c := range l.buckets {
		n += c
		if n >= max(rank, 1) {
			up := time.Duration(math.Exp2(float64(i+1) / latPerOctave))
			return min(up, l.max)
		}
	}
	return l.max
}

func (l *latencyHist) summary() LatencySummary {
	s := LatencySummary{Count: l.count, Max: l.max}
	if l.count > 0 {
		s.Mean = l.sum / time.Duration(l.count)
		s.P50, s.P90, s.P99 = l.quantile(0.5), l.quantile(0.9), l.quantile(0.99)
	}
	return s
}
