// Package dts derives decode times from the presentation times of one run
// of video frames, the one rule the recorder and live view share.
//
// A Timer does no I/O, never blocks and is not safe for concurrent use.
// Push frames (90 kHz presentation time, key flag, the caller's value) in
// the order they arrive, which is decode order; pull them with Next, each
// with its decode time and composition offset.
//
// The rule:
//   - Frames before the run's first key frame are dropped (Push reports
//     false): nothing before it decodes.
//   - The first HoldBack units from the first key frame are held back to
//     see their order; after that every frame comes out at once. Flush
//     releases what is held at the end of a run.
//   - Decode times are on the run's timeline, which is presentation time
//     until a jump (below). Without B-frames (presentation times only
//     increase) the decode time is the presentation time, so each frame
//     keeps its exact duration.
//   - Once a presentation time steps backwards the run has B-frames, for
//     good: each decode time is the previous one plus the frame interval,
//     and the composition offset (presentation minus decode time) may be
//     negative. The interval is the smallest positive gap between the
//     held-back presentation times once sorted (with a B-pyramid, P+4,
//     B+2, b+1, b+3, no step between consecutive frames is one interval),
//     then the smallest positive step seen between consecutive frames.
//     With ±1 tick of jitter the interval is one tick short, so decode
//     time falls behind by at most a tick a frame until the bound below.
//   - Composition offsets stay within ±MaxCTS90k: a frame more than that
//     after its decode time (the frame rate dropped, jitter) moves decode
//     time forward to the bound; one more than that before it is a jump.
//   - A unit with the previous unit's presentation time is more of the
//     same picture: it gets the same decode time and Same.
//   - A step of more than MaxStep90k either way is a jump (a camera clock
//     step): the frame is marked Jump, its decode time is the previous one
//     plus the last decode step (or the interval, or DefaultStep90k), and
//     the timeline continues from there. Callers that end a run at a jump
//     start a new Timer.
//   - Key frames inside a run change nothing; a new run (reconnect) is a
//     new Timer (the zero value is ready to use).
//
// Decode times strictly increase from one picture to the next.
package dts

import "slices"

const (
	// HoldBack is how many units a run holds back from its first key
	// frame before deciding whether it has B-frames (160 ms at 25 fps).
	HoldBack = 4
	// MaxStep90k is the largest step between consecutive presentation
	// times, either way, that is not a jump.
	MaxStep90k = 10 * 90000
	// MaxCTS90k bounds composition offsets either way.
	MaxCTS90k = 90000
	// DefaultStep90k is the decode step after a jump when none is known
	// (25 fps).
	DefaultStep90k = 3600
)

// Frame is one pushed unit with its decode time.
type Frame[T any] struct {
	PTS90k int64 // as pushed
	DTS90k int64 // decode time on the run's timeline
	CTS90k int32 // presentation time on the timeline minus DTS90k
	Key    bool
	Same   bool // same presentation time as the previous unit: same picture
	Jump   bool // presentation time jumped by more than MaxStep90k
	Value  T
}

// Timer times the frames of one run. See the package comment.
type Timer[T any] struct {
	started  bool
	decided  bool
	bframes  bool
	havePrev bool
	interval int64
	prevPTS  int64
	prevDTS  int64
	prevStep int64
	offset   int64 // timeline minus presentation time
	held     []Frame[T]
	out      []Frame[T]
	next     int
}

// Push takes one unit. It reports false if the unit was dropped (before
// the run's first key frame).
func (t *Timer[T]) Push(pts90k int64, key bool, v T) bool {
	if !t.started && !key {
		return false
	}
	t.started = true
	f := Frame[T]{PTS90k: pts90k, Key: key, Value: v}
	if t.decided {
		t.time(&f)
		t.emit(f)
		return true
	}
	t.held = append(t.held, f)
	if len(t.held) >= HoldBack {
		t.decide()
	}
	return true
}

// Flush releases the held-back frames (the end of a run), deciding from
// those it has.
func (t *Timer[T]) Flush() {
	if !t.decided && len(t.held) > 0 {
		t.decide()
	}
}

// Next returns the next timed frame, if any.
func (t *Timer[T]) Next() (Frame[T], bool) {
	if t.next >= len(t.out) {
		clear(t.out)
		t.out, t.next = t.out[:0], 0
		var zero Frame[T]
		return zero, false
	}
	f := t.out[t.next]
	t.out[t.next] = Frame[T]{}
	t.next++
	return f, true
}

// Interval90k returns the frame interval found so far (0 if none).
func (t *Timer[T]) Interval90k() int64 { return t.interval }

// Held returns how many frames are held back.
func (t *Timer[T]) Held() int { return len(t.held) }

func (t *Timer[T]) emit(f Frame[T]) { t.out = append(t.out, f) }

func (t *Timer[T]) decide() {
	t.decided = true
	pts := make([]int64, len(t.held))
	for i := range t.held {
		pts[i] = t.held[i].PTS90k
		if i > 0 {
			if step := pts[i] - pts[i-1]; step < 0 && step >= -MaxStep90k {
				t.bframes = true
			}
		}
	}
	slices.Sort(pts)
	for i := 1; i < len(pts); i++ {
		t.lower(pts[i] - pts[i-1])
	}
	for i := range t.held {
		f := t.held[i]
		t.time(&f)
		t.emit(f)
	}
	clear(t.held)
	t.held = t.held[:0]
}

// lower takes step as the interval if it is a smaller positive one.
func (t *Timer[T]) lower(step int64) {
	if step > 0 && step <= MaxStep90k && (t.interval == 0 || step < t.interval) {
		t.interval = step
	}
}

func (t *Timer[T]) time(f *Frame[T]) {
	pts := f.PTS90k
	var dts int64
	switch {
	case !t.havePrev:
		dts = pts + t.offset
	case pts == t.prevPTS:
		f.Same = true
		dts = t.prevDTS
	default:
		step := pts - t.prevPTS
		jump := step > MaxStep90k || step < -MaxStep90k
		if !jump && (t.bframes || step < 0) {
			t.bframes = true
			t.lower(step)
			dts = t.prevDTS + max(t.interval, 1)
			if lag := pts + t.offset - dts; lag > MaxCTS90k {
				dts += lag - MaxCTS90k
			} else if lag < -MaxCTS90k {
				jump = true
			}
		} else if !jump {
			t.lower(step)
			dts = pts + t.offset
		}
		if jump {
			f.Jump = true
			switch {
			case t.prevStep > 0:
				dts = t.prevDTS + t.prevStep
			case t.interval > 0:
				dts = t.prevDTS + t.interval
			default:
				dts = t.prevDTS + DefaultStep90k
			}
			t.offset = dts - pts
		}
		t.prevStep = dts - t.prevDTS
	}
	f.DTS90k, f.CTS90k = dts, int32(pts+t.offset-dts)
	t.prevPTS, t.prevDTS, t.havePrev = pts, dts, true
}
