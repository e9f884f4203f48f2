package recorder

import "time"

// MaxCorrectionPPM bounds how far a segment's wall duration may differ from
// its media duration (parts per million). See docs/time.md.
const MaxCorrectionPPM = 500

// runClock maps one run's media time to wall time. The run is anchored at
// the local clock when its first frame arrived; after that, each segment's
// wall duration is its media duration stretched or shrunk by at most
// MaxCorrectionPPM toward the local clock, so consecutive segments abut
// exactly and a camera clock that drifts never makes the error grow.
// Not safe for concurrent use.
type runClock struct {
	anchorPTS90k int64
	// wallEnd is the wall time at which the next segment starts.
	wallEnd time.Time
	// mediaEnd90k is the media time corresponding to wallEnd.
	mediaEnd90k int64
}

func newRunClock(firstPTS90k int64, arrival time.Time) *runClock {
	return &runClock{anchorPTS90k: firstPTS90k, wallEnd: arrival, mediaEnd90k: firstPTS90k}
}

// start is the wall time of the next segment's first frame.
func (c *runClock) start() time.Time { return c.wallEnd }

// advance closes a segment ending at media time endPTS90k whose end frame
// arrived (by the local clock) at arrival, and returns the segment's wall
// duration. The local clock only steers: the correction is the error
// between arrival and the media-predicted end, spread over the segment,
// clamped to ±MaxCorrectionPPM.
func (c *runClock) advance(endPTS90k int64, arrival time.Time) time.Duration {
	dur90k := endPTS90k - c.mediaEnd90k
	if dur90k <= 0 {
		return 0
	}
	media := time.Duration(dur90k) * time.Second / 90000
	predicted := c.wallEnd.Add(media)
	errDur := arrival.Sub(predicted)
	limit := media * MaxCorrectionPPM / 1_000_000
	corr := min(max(errDur, -limit), limit)
	wall := media + corr
	c.wallEnd = c.wallEnd.Add(wall)
	c.mediaEnd90k = endPTS90k
	return wall
}
