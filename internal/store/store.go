// Package store defines the recording index: streams, runs (one per camera
// connection), segments (one per segment file) and the garbage list that
// makes deletion crash-safe. The index is the truth about what was
// recorded; segment files can rebuild it (custos check --repair).
// Implementations live in subpackages (sqlite/ now, postgres/ later) and
// must pass the shared suite in storetest/.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when a row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrSegmentWriting is returned (wrapped) by MarkGarbage for a segment
// still in state writing: its file may still grow, so it cannot be deleted.
var ErrSegmentWriting = errors.New("store: segment is being written")

// Stream is one recorded stream of a camera ("main" or "sub").
type Stream struct {
	ID     int64
	Camera string
	Name   string
}

// Run is one uninterrupted connection to a camera. Consecutive segments of
// a run abut exactly; between runs there is a gap.
type Run struct {
	ID       int64
	StreamID int64
	// Start is the wall time of the run's first frame.
	Start time.Time
	// End is the wall end of its last closed segment (zero while open or
	// before any segment closed).
	End time.Time
	// EndReason says why the run ended ("" while open).
	EndReason string
}

// Segment states.
const (
	SegmentWriting = "writing" // being written; bytes may exceed the row
	SegmentClosed  = "closed"  // complete; the row describes every byte
)

// Segment is one segment file: a fragmented MP4 covering about a minute
// of one stream. Times are wall times derived from media time (see
// docs/time.md); durations in 90 kHz ticks stay exact.
type Segment struct {
	ID       int64
	StreamID int64
	RunID    int64
	// Disk names the blob.Store holding the file, Key its object key.
	Disk string
	Key  string
	// Start is the wall time of the first frame; Dur90k the media
	// duration covered (next segment's first frame minus this one's, or
	// last frame plus its duration while writing).
	Start  time.Time
	Dur90k int64
	// WallDur is the wall-clock length: Dur90k stretched by the run's
	// clock correction (at most 500 ppm, docs/time.md), so that segments
	// of a run abut exactly in wall time. Zero while writing.
	WallDur time.Duration
	// StartPTS90k is the extended RTP time of the first frame.
	StartPTS90k int64
	// Bytes is the length of the file the row vouches for; Frames and
	// KeyFrames count the frames in those bytes.
	Bytes     int64
	Frames    int64
	KeyFrames int64
	State     string
	// Codec is the MP4 sample entry codec string (e.g. avc1.640028).
	Codec         string
	Width, Height int
}

// End returns the wall end of the segment: Start plus WallDur once
// closed, plus the media duration while writing.
func (s *Segment) End() time.Time {
	if s.WallDur > 0 {
		return s.Start.Add(s.WallDur)
	}
	return s.Start.Add(time.Duration(s.Dur90k) * time.Second / 90000)
}

// Garbage is a file whose deletion is under way: marked before the blob is
// deleted, unmarked after, so a crash in between is finished at start-up.
type Garbage struct {
	Disk   string
	Key    string
	Reason string
	Marked time.Time
}

// Deletion is the permanent record of a segment deleted (by retention or
// by hand), kept after the file and its row are gone so that every hole
// in the footage has a reason on record.
type Deletion struct {
	SegmentID int64
	StreamID  int64
	Disk      string
	Key       string
	Start     time.Time
	End       time.Time
	Bytes     int64
	Reason    string
	At        time.Time
}

// DiskUsage sums the segments one disk holds, for storage status.
type DiskUsage struct {
	Disk     string
	Segments int64
	Bytes    int64
	// Oldest is the start of the disk's oldest segment.
	Oldest time.Time
	// BytesSince is the bytes of segments that started at or after the
	// time asked for (the recent write rate).
	BytesSince int64
}

// Lock is an evidence lock: retention and deletion leave the camera's
// recordings overlapping [From, To) alone until the lock is released.
// Released locks stay on record.
type Lock struct {
	ID        int64
	Camera    string
	From, To  time.Time
	Reason    string
	CreatedBy string
	Created   time.Time
	// Released is zero while the lock holds.
	ReleasedBy    string
	Released      time.Time
	ReleaseReason string
}

// Active reports whether the lock still holds.
func (l *Lock) Active() bool { return l.Released.IsZero() }

// ErrReleased is returned (wrapped) by ReleaseLock for a lock already
// released.
var ErrReleased = errors.New("store: lock already released")

// Store is the recording index. Methods are safe for concurrent use.
type Store interface {
	// Stream returns the stream's ID, creating the row on first use.
	Stream(ctx context.Context, camera, name string) (Stream, error)
	// Streams lists all streams.
	Streams(ctx context.Context) ([]Stream, error)

	// StartRun opens a run for a stream.
	StartRun(ctx context.Context, streamID int64, start time.Time) (Run, error)
	// EndRun records a run's end and reason.
	EndRun(ctx context.Context, runID int64, end time.Time, reason string) error

	// AddSegment inserts a segment row (state writing) and sets its ID.
	AddSegment(ctx context.Context, seg *Segment) error
	// UpdateSegment rewrites a segment's growing fields (Dur90k, WallDur,
	// Bytes, Frames, KeyFrames, State). Call it only after the bytes it
	// vouches for are on disk.
	UpdateSegment(ctx context.Context, seg *Segment) error
	// Segments returns the segments of a stream overlapping [from, to),
	// ordered by start time.
	Segments(ctx context.Context, streamID int64, from, to time.Time) ([]Segment, error)
	// Segment returns one segment row by ID (ErrNotFound when it does not
	// exist, including once it is marked garbage).
	Segment(ctx context.Context, id int64) (Segment, error)
	// Runs returns the runs of a stream overlapping [from, to), ordered by
	// start, with End filled from their segments.
	Runs(ctx context.Context, streamID int64, from, to time.Time) ([]Run, error)
	// WritingSegments lists segments left in state writing (after a crash).
	WritingSegments(ctx context.Context) ([]Segment, error)
	// HasSegmentsOn reports whether any segment row names the disk (to
	// tell an unmounted disk's empty mount point from a new disk).
	HasSegmentsOn(ctx context.Context, disk string) (bool, error)

	// MarkGarbage moves a segment row to the garbage list and appends a
	// Deletion in one transaction (the row disappears from playback at
	// once). A segment in state writing cannot be marked.
	MarkGarbage(ctx context.Context, segmentID int64, reason string, at time.Time) error
	// GarbageList lists pending deletions.
	GarbageList(ctx context.Context) ([]Garbage, error)
	// UnmarkGarbage drops a garbage entry once its blob is deleted.
	UnmarkGarbage(ctx context.Context, disk, key string) error
	// DiskUsage sums segments per disk (disks with no segment are
	// absent), with BytesSince counting those that started at or after
	// since. It reads every segment row: callers cache it.
	DiskUsage(ctx context.Context, since time.Time) ([]DiskUsage, error)
	// Deletions lists the deletion log of a stream, oldest first.
	Deletions(ctx context.Context, streamID int64) ([]Deletion, error)

	// AddLock records a new evidence lock and sets its ID.
	AddLock(ctx context.Context, l *Lock) error
	// ReleaseLock releases an active lock (ErrNotFound, ErrReleased).
	ReleaseLock(ctx context.Context, id int64, by, reason string, at time.Time) error
	// Locks returns the locks overlapping [from, to), of one camera (or
	// all when camera is ""), active ones only unless withReleased,
	// ordered by start.
	Locks(ctx context.Context, camera string, from, to time.Time, withReleased bool) ([]Lock, error)

	// Close releases the store.
	Close() error
}
