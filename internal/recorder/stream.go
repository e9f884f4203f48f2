package recorder

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/media/dts"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// Segment and fragment sizes (see docs/storage.md).
const (
	// SegmentTarget is the nominal segment length; a segment is cut at the
	// first key frame at or after its boundary.
	SegmentTarget = 60 * time.Second
	// MaxFragment90k bounds a fragment: one GOP or at most half a second,
	// so a crash loses at most about half a second of buffered video.
	MaxFragment90k = 45000
)

// errDiscontinuity ends a run when the camera's timestamps jump (by more
// than dts.MaxStep90k).
var errDiscontinuity = errors.New("timestamp discontinuity")

// runWriter turns the frames of one connection (one run) into segments. It
// is driven from the RTSP client's reader goroutine: Frame is called for
// each access unit in order, Close once at the end. Not safe for
// concurrent use.
type runWriter struct {
	ctx        context.Context
	disk       blob.Store
	idx        store.Store
	chain      ChainRecorder // nil: no hash chain
	streamID   int64
	camera     string
	stream     string
	codec      media.Codec
	fsyncEvery time.Duration
	phase      time.Duration // stagger of segment boundaries for this stream

	run   store.Run
	clock *runClock
	seg   *segmentFile
	track mp4.Track
	// boundary is the wall time after which the next key frame cuts.
	boundary time.Time

	// pending is the fragment being built; its last sample's duration is
	// unknown until the next frame arrives. parts are the samples' bytes,
	// the frames' own buffers (not copied: written with one writev).
	samples   []mp4.Sample
	parts     [][]byte
	partBytes int
	keys      int
	prevPTS   int64
	prevDTS   int64
	tm        dts.Timer[prerolled] // decode times (see Frame)
	lastDur   uint32
	havePrev  bool
	fragStart int64 // PTS of the fragment's first sample
	segSeq    int
	// stranded is the row of a segment that could not be closed (its disk
	// went away): still in state writing, vouching for what was synced.
	stranded *store.Segment
	// stepPending is how far the local clock stepped since the run
	// started (see clockStepped); the run ends at the next key frame.
	stepPending time.Duration
	// seenKey: the run's first key frame has arrived; openStart: it is an
	// H.265 CRA or BLA, whose RASL pictures that follow are skipped (see
	// leading). skipped counts the frames dropped before recording began.
	seenKey, openStart bool
	skipped            int64
}

// clockStepped tells the run that the local wall clock jumped by step
// (measured against a monotonic clock): an NTP step, a manual change, a
// clock set at boot on a machine without a real-time clock. The run ends
// at the next key frame (so no frame is lost) with the step as its
// reason, and the next run is anchored at the new clock: its recordings
// are labelled with the corrected time, where the 500 ppm steering
// would take days to follow a step of minutes.
func (r *runWriter) clockStepped(step time.Duration) {
	if r.clock != nil {
		r.stepPending += step
	}
}

// anchor returns the wall time a new run starting at arrival gets: the
// arrival, or, if that lies inside recordings this stream already has
// (the local clock went back), the end of those recordings, so a stream's
// runs never overlap (docs/time.md).
func (r *runWriter) anchor(arrival time.Time) (time.Time, error) {
	at := arrival
	for range 16 {
		runs, err := r.idx.Runs(r.ctx, r.streamID, at, at.Add(time.Nanosecond))
		if err != nil {
			return at, fmt.Errorf("runs at %s: %w", at.Format(time.RFC3339Nano), err)
		}
		later := at
		for _, ru := range runs {
			if ru.End.After(later) {
				later = ru.End
			}
		}
		if !later.After(at) {
			break
		}
		at = later
	}
	return at, nil
}

// stagger spreads segment boundaries of different streams over the
// minute, so cameras do not all close and fsync segments at once.
func stagger(camera, stream string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(camera + "/" + stream))
	return time.Duration(h.Sum32()%60000) * time.Millisecond
}

// nextBoundary returns the first staggered boundary at least half a target
// after t.
func nextBoundary(t time.Time, phase time.Duration) time.Time {
	base := t.Add(SegmentTarget / 2).Add(-phase).Truncate(SegmentTarget).Add(phase)
	for !base.After(t.Add(SegmentTarget / 2)) {
		base = base.Add(SegmentTarget)
	}
	return base
}

// Frame records one access unit that arrived at the given local time.
// Decode times come from a dts.Timer (the rule is in its package comment):
// a run holds back its first dts.HoldBack frames from the first key frame
// (160 ms at 25 fps) to see whether the camera sends B-frames.
func (r *runWriter) Frame(f *ingest.Frame, arrival time.Time) error {
	if r.leading(f) {
		r.skipped++
		return nil
	}
	r.tm.Push(f.PTS90k, f.Key, prerolled{frame: *f, arrival: arrival})
	return r.drain()
}

// drain records the frames the timer has released.
func (r *runWriter) drain() error {
	for {
		t, ok := r.tm.Next()
		if !ok {
			return nil
		}
		if err := r.frame(&t.Value.frame, &t, t.Value.arrival); err != nil {
			return err
		}
	}
}

// leading reports whether f comes before what a run can record: any
// frame before the run's first key frame (a session joined mid-GOP), and,
// when that key frame is an H.265 CRA or BLA (an open GOP), the RASL
// pictures right after it, which refer to pictures before it that the run
// does not have and cannot be decoded (RADL and trailing pictures can).
func (r *runWriter) leading(f *ingest.Frame) bool {
	if !r.seenKey {
		if !f.Key {
			return true
		}
		r.seenKey = true
		r.openStart = r.codec == media.CodecH265 && h265Open(f.NALUs)
		return false
	}
	if !r.openStart {
		return false
	}
	if h265RASL(f.NALUs) {
		return true
	}
	r.openStart = false
	return false
}

// h265Open reports whether an IRAP access unit is a CRA or BLA picture
// (one that may have RASL pictures).
func h265Open(nalus [][]byte) bool {
	for _, n := range nalus {
		if h265.IsVCL(n) {
			t := h265.Type(n)
			return t == h265.NALCRA || t >= h265.NALBLAWLP && t <= h265.NALBLANLP
		}
	}
	return false
}

// h265RASL reports whether an access unit is a RASL picture (types 8, 9).
func h265RASL(nalus [][]byte) bool {
	for _, n := range nalus {
		if h265.IsVCL(n) {
			t := h265.Type(n)
			return t == 8 || t == 9
		}
	}
	return false
}

type prerolled struct {
	frame   ingest.Frame
	arrival time.Time
}

func (r *runWriter) frame(f *ingest.Frame, t *dts.Frame[prerolled], arrival time.Time) error {
	if r.seg == nil && !f.Key {
		return nil // a segment starts at a key frame
	}
	dts := t.DTS90k
	if r.havePrev {
		step := f.PTS90k - r.prevPTS
		if t.Same && len(r.samples) > 0 {
			// Same picture split over several units (cameras that set the
			// RTP marker on every slice): it belongs to the last sample.
			sample := sampleOf(f)
			r.parts = append(r.parts, sample)
			r.partBytes += len(sample)
			r.samples[len(r.samples)-1].Size += uint32(len(sample))
			return nil
		}
		if t.Jump || t.Same {
			return fmt.Errorf("%w: %d ticks after the previous frame", errDiscontinuity, step)
		}
		d := dts - r.prevDTS
		r.samples[len(r.samples)-1].Dur90k = uint32(d)
		r.lastDur = uint32(d)
	}
	if r.seg != nil && f.Key {
		// The previous fragment is complete: every duration is known.
		if err := r.flushFragment(arrival); err != nil {
			return err
		}
		frameWall := r.clock.start().Add(time.Duration(dts-r.clock.mediaEnd90k) * time.Second / 90000)
		if r.stepPending != 0 {
			if err := r.closeSegment(dts, arrival); err != nil {
				return err
			}
			if err := r.idx.EndRun(r.ctx, r.run.ID, r.clock.start(), fmt.Sprintf("the local clock stepped %+.3f s", r.stepPending.Seconds())); err != nil {
				return fmt.Errorf("end run: %w", err)
			}
			r.clock, r.run, r.stepPending = nil, store.Run{}, 0
		} else if !frameWall.Before(r.boundary) || f.ParamsChanged {
			if err := r.closeSegment(dts, arrival); err != nil {
				return err
			}
		}
	} else if r.seg != nil && dts-r.fragStart >= MaxFragment90k {
		if err := r.flushFragment(arrival); err != nil {
			return err
		}
	}
	if r.seg == nil {
		if err := r.openSegment(f, dts, arrival); err != nil {
			return err
		}
	}
	if len(r.samples) == 0 {
		r.fragStart = dts
	}
	sample := sampleOf(f)
	r.parts = append(r.parts, sample)
	r.partBytes += len(sample)
	r.samples = append(r.samples, mp4.Sample{Size: uint32(len(sample)), Key: f.Key, Dur90k: r.lastDur,
		CTSOffset90k: t.CTS90k})
	if f.Key {
		r.keys++
	}
	r.prevPTS, r.prevDTS, r.havePrev = f.PTS90k, dts, true
	return nil
}

func (r *runWriter) openSegment(f *ingest.Frame, dts int64, arrival time.Time) error {
	if r.clock == nil {
		at, err := r.anchor(arrival)
		if err != nil {
			return err
		}
		r.clock = newRunClock(dts, at)
		run, err := r.idx.StartRun(r.ctx, r.streamID, at)
		if err != nil {
			return fmt.Errorf("start run: %w", err)
		}
		r.run = run
		if r.chain != nil {
			if err := r.chain.RunStarted(r.ctx, r.camera, r.stream, r.streamID, run.Start); err != nil {
				return err
			}
		}
	}
	track, err := mp4.TrackFor(r.codec, f.Params)
	if err != nil {
		return fmt.Errorf("camera %s %s: %w", r.camera, r.stream, err)
	}
	r.track = track
	start := r.clock.start()
	r.segSeq++
	seg := store.Segment{
		StreamID:    r.streamID,
		RunID:       r.run.ID,
		Disk:        r.disk.Name(),
		Key:         fmt.Sprintf("%s/%s/%s/%d-r%d-%d.mp4", r.camera, r.stream, start.UTC().Format("2006-01-02"), start.UnixMilli(), r.run.ID, r.segSeq),
		Start:       start,
		StartPTS90k: dts,
	}
	sf, err := createSegment(r.ctx, r.disk, r.idx, seg, r.track, r.camera, r.stream, r.run.Start, dts-r.clock.anchorPTS90k, arrival)
	if err != nil {
		return err
	}
	r.seg = sf
	r.boundary = nextBoundary(start, r.phase)
	return nil
}

// flushFragment writes the pending samples as one fragment.
func (r *runWriter) flushFragment(now time.Time) error {
	if len(r.samples) == 0 {
		return nil
	}
	err := r.seg.appendFragment(r.ctx, r.samples, r.parts, r.partBytes, r.keys, now, r.fsyncEvery)
	clear(r.parts) // do not keep the frames' buffers alive
	r.samples, r.parts, r.partBytes, r.keys = r.samples[:0], r.parts[:0], 0, 0
	return err
}

// sampleOf returns the frame as an MP4 sample: the one its depacketizer
// laid out, or (frames made elsewhere, as in tests) a new copy.
func sampleOf(f *ingest.Frame) []byte {
	if f.Sample != nil {
		return f.Sample
	}
	return mp4.AppendSampleData(nil, f.NALUs)
}

// closeSegment ends the current segment at media time endPTS90k.
func (r *runWriter) closeSegment(endPTS90k int64, arrival time.Time) error {
	wall := r.clock.advance(endPTS90k, arrival)
	sf := r.seg
	err := sf.close(r.ctx, wall, arrival)
	r.seg = nil
	if err != nil {
		r.stranded = &sf.seg
	}
	if err == nil && r.chain != nil {
		err = r.chain.SegmentClosed(r.ctx, r.camera, r.stream, sf.seg, integrity.SegmentHash(sf.fragHashes), sf.initHash)
	}
	return err
}

// Close ends the run: the last frame gets the previous frame's duration,
// the open segment is closed and the run is ended with reason.
func (r *runWriter) Close(reason string, now time.Time) error {
	var errs []error
	r.tm.Flush()
	if err := r.drain(); err != nil {
		errs = append(errs, err)
	}
	if r.seg != nil {
		if len(r.samples) > 0 {
			r.samples[len(r.samples)-1].Dur90k = r.lastDur
		}
		if err := r.flushFragment(now); err != nil {
			errs = append(errs, err)
		}
		end := r.clock.mediaEnd90k + r.seg.durSinceStart90k
		if err := r.closeSegment(end, now); err != nil {
			errs = append(errs, err)
		}
	}
	if r.run.ID != 0 {
		if err := r.idx.EndRun(r.ctx, r.run.ID, r.clock.start(), reason); err != nil {
			errs = append(errs, fmt.Errorf("end run: %w", err))
		}
	}
	return errors.Join(errs...)
}
