package recorder

import (
	"testing"
	"time"
)

// TestRunClockDrift simulates a camera whose clock runs 100 ppm fast or
// slow for 24 h of 60 s segments, with arrival jitter: the wall times we
// assign must stay within 50 ms of the true local clock and segments must
// abut exactly.
func TestRunClockDrift(t *testing.T) {
	for _, ppm := range []float64{100, -100, 400, 0} {
		t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		c := newRunClock(1000, t0)
		pts := int64(1000)
		trueElapsed := time.Duration(0)
		var worst time.Duration
		prevEnd := c.start()
		for seg := 0; seg < 24*60; seg++ {
			start := c.start()
			if !start.Equal(prevEnd) {
				t.Fatalf("ppm %v seg %d: start %s does not abut previous end %s", ppm, seg, start, prevEnd)
			}
			// 60 s of camera media time; real time passes 60 s × (1 − ppm).
			pts += 60 * 90000
			trueElapsed += time.Duration(float64(60*time.Second) * (1 - ppm/1e6))
			jitter := time.Duration((seg*7919)%41-20) * time.Millisecond // ±20 ms
			arrival := t0.Add(trueElapsed + jitter)
			wall := c.advance(pts, arrival)
			prevEnd = start.Add(wall)
			if d := prevEnd.Sub(t0.Add(trueElapsed)); d.Abs() > worst {
				worst = d.Abs()
			}
			if m := 60 * time.Second * MaxCorrectionPPM / 1e6; (wall - 60*time.Second).Abs() > m {
				t.Fatalf("correction %s exceeds %d ppm", wall-60*time.Second, MaxCorrectionPPM)
			}
		}
		if ppm <= MaxCorrectionPPM && worst > 50*time.Millisecond {
			t.Errorf("ppm %v: worst wall-time error %s over 24 h, want ≤ 50 ms", ppm, worst)
		}
		t.Logf("drift %v ppm: worst error %s over 24 h", ppm, worst)
	}
}
