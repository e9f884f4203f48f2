package playback

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/store"
)

// DefaultMaxRange bounds the span of one export, fragment stream or
// playlist when Source.MaxRange is zero: a day of 1080p is tens of GiB.
const DefaultMaxRange = 24 * time.Hour

// Source answers playback requests from an index and the disks it names.
// Safe for concurrent use once built; its fields must not change after.
type Source struct {
	Index store.Store
	// Disks are the blob stores by name (store.Segment.Disk).
	Disks map[string]blob.Store
	// Cache keeps sample tables of closed segments; nil disables it.
	Cache *IndexCache
	// MaxRange bounds a request's span (DefaultMaxRange when zero).
	MaxRange time.Duration
	Logger   *slog.Logger
}

// Error is a request the recordings cannot satisfy, with the HTTP status
// it maps to (400 for a malformed request, 404 for no video).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrNoVideo is returned (wrapped in *Error, 404) when a range holds no
// recorded video.
var ErrNoVideo = errors.New("no recorded video in range")

func noVideo(format string, a ...any) error {
	return &Error{Status: 404, Message: fmt.Sprintf(format, a...)}
}

func (s *Source) maxRange() time.Duration {
	if s.MaxRange > 0 {
		return s.MaxRange
	}
	return DefaultMaxRange
}

func (s *Source) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// checkRange validates a requested [from, to).
func (s *Source) checkRange(from, to time.Time) error {
	if !to.After(from) {
		return &Error{Status: 400, Message: fmt.Sprintf("to (%s) must be after from (%s)", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))}
	}
	if to.Sub(from) > s.maxRange() {
		return &Error{Status: 400, Message: fmt.Sprintf("range of %s is longer than the limit of %s", to.Sub(from), s.maxRange())}
	}
	return nil
}

// selection is a resolved time range: the segments it touches and where
// in the first and last of them it starts and ends.
type selection struct {
	camera, stream string
	segs           []*segIndex
	// startSample is the first included sample of segs[0] (a key frame),
	// shown the sample of segs[0] shown at from;
	// endSample is one past the last included sample of the last segment.
	startSample, shown, endSample int
	// fromPTS90k and toPTS90k are the presentation times, local to the
	// first and last segment, of the range's ends.
	fromPTS90k, toPTS90k int64
	// from and to are the range actually covered: the request clipped to
	// recorded video.
	from, to time.Time
	etag     string
}

// bounds returns the included samples of segment j.
func (sel *selection) bounds(j int) (lo, hi int) {
	lo, hi = 0, len(sel.segs[j].samples)
	if j == 0 {
		lo = sel.startSample
	}
	if j == len(sel.segs)-1 {
		hi = sel.endSample
	}
	return lo, hi
}

// toLocal90k maps a wall time to media time local to seg, undoing the
// run's clock correction (docs/time.md).
func toLocal90k(seg *store.Segment, t time.Time) int64 {
	d := float64(t.Sub(seg.Start)) * 90000 / 1e9
	if seg.WallDur > 0 && seg.Dur90k > 0 {
		d *= float64(seg.Dur90k) * 1e9 / 90000 / float64(seg.WallDur)
	}
	return int64(math.Round(d))
}

// toWall maps media time local to seg to wall time.
func toWall(seg *store.Segment, local90k int64) time.Time {
	d := float64(local90k) * 1e9 / 90000
	if seg.WallDur > 0 && seg.Dur90k > 0 {
		d *= float64(seg.WallDur) / (float64(seg.Dur90k) * 1e9 / 90000)
	}
	return seg.Start.Add(time.Duration(math.Round(d)))
}

// ticks converts a duration to 90 kHz ticks, rounding.
func ticks(d time.Duration) int64 { return int64(math.Round(float64(d) * 90000 / 1e9)) }

// selectRange resolves [from, to) of a camera's stream. kind goes into
// the ETag so that different renderings of one range differ.
func (s *Source) selectRange(ctx context.Context, camera, stream string, from, to time.Time, kind string) (*selection, error) {
	if err := s.checkRange(from, to); err != nil {
		return nil, err
	}
	st, err := s.Index.Stream(ctx, camera, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s/%s: %w", camera, stream, err)
	}
	rows, err := s.Index.Segments(ctx, st.ID, from, to)
	if err != nil {
		return nil, err
	}
	sel := &selection{camera: camera, stream: stream}
	for _, row := range rows {
		x, err := s.Cache.get(ctx, row, s.load)
		if errors.Is(err, ErrMissingFile) {
			// A hole in storage is a gap in the video, not a failed export;
			// custos check reports it.
			s.logger().Warn("playback: skipping segment", "camera", camera, "stream", stream, "err", err)
			continue
		} else if err != nil {
			return nil, err
		}
		sel.segs = append(sel.segs, x)
	}
	rng := fmt.Sprintf("%s/%s between %s and %s", camera, stream, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	if len(sel.segs) == 0 {
		return nil, noVideo("no recorded video of %s", rng)
	}

	// The start: the frame shown at from, decoded from its GOP's key frame.
	first := sel.segs[0]
	sel.from = from
	if from.Before(first.seg.Start) {
		sel.from = first.seg.Start
	}
	pt := toLocal90k(&first.seg, sel.from)
	shown := -1
	for i := range first.samples {
		p := first.samples[i].pts90k()
		if p <= pt && (shown < 0 || p >= first.samples[shown].pts90k()) {
			shown = i
		}
	}
	shown = max(shown, 0)
	sel.shown = shown
	for sel.startSample = shown; sel.startSample > 0 && !first.samples[sel.startSample].key; sel.startSample-- {
	}
	// Start where the frame shown at from starts: players drop a frame
	// whose start an edit list cuts off (ffmpeg does), so starting mid-frame
	// would show the next one first. The export is at most one frame
	// longer than asked.
	sel.fromPTS90k = first.samples[shown].pts90k()

	// The end: every sample up to the last one shown before to.
	reqFrom, reqTo := from, to
	for {
		j := len(sel.segs) - 1
		last := sel.segs[j]
		sel.to = to
		if end := segEnd(last); end.Before(to) {
			sel.to = end
		}
		ptTo := toLocal90k(&last.seg, sel.to)
		lo := 0
		if j == 0 {
			lo = sel.startSample
		}
		sel.endSample = -1
		var presEnd int64
		for i := lo; i < len(last.samples); i++ {
			sm := &last.samples[i]
			if sm.pts90k() < ptTo {
				sel.endSample = i + 1
			}
		}
		for i := lo; i < sel.endSample; i++ {
			sm := &last.samples[i]
			presEnd = max(presEnd, sm.pts90k()+int64(sm.dur90k))
		}
		if sel.endSample > lo {
			sel.toPTS90k = min(ptTo, presEnd)
			if j > 0 || sel.toPTS90k > sel.fromPTS90k {
				break
			}
		}
		if j == 0 {
			return nil, noVideo("no recorded video of %s", rng)
		}
		// to falls before the last segment's first frame is shown.
		sel.segs = sel.segs[:j]
		to = segEnd(sel.segs[j-1])
	}
	sel.to = toWall(&sel.segs[len(sel.segs)-1].seg, sel.toPTS90k)
	sel.from = toWall(&first.seg, sel.fromPTS90k)
	sel.etag = etagOf(kind, st.ID, reqFrom, reqTo, sel)
	return sel, nil
}

// segEnd is the wall end of the samples a segment index holds.
func segEnd(x *segIndex) time.Time { return toWall(&x.seg, x.dur90k) }

// load reads one segment's sample table.
func (s *Source) load(ctx context.Context, seg store.Segment) (*segIndex, error) {
	return loadIndex(ctx, s.Disks, seg)
}

// etagOf derives a strong ETag from what determines the bytes: the
// rendering, the range and every row with the byte count it vouches for.
func etagOf(kind string, streamID int64, from, to time.Time, sel *selection) string {
	h := sha256.New()
	var b []byte
	b = append(b, "custos-playback-v1\x00"...)
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(streamID))
	b = binary.BigEndian.AppendUint64(b, uint64(from.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(to.UnixNano()))
	for _, x := range sel.segs {
		b = binary.BigEndian.AppendUint64(b, uint64(x.seg.ID))
		b = binary.BigEndian.AppendUint64(b, uint64(x.seg.Bytes))
		b = binary.BigEndian.AppendUint64(b, uint64(x.seg.Start.UnixNano()))
		b = binary.BigEndian.AppendUint64(b, uint64(x.seg.WallDur))
		b = append(b, x.seg.Disk...)
		b = append(b, 0)
		b = append(b, x.seg.Key...)
		b = append(b, 0)
	}
	h.Write(b)
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}
