package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/store"
)

// Stored times are nanoseconds since the Unix epoch, which int64 holds
// for the years 1678 to 2262.
const (
	minYear = 1678
	maxYear = 2261
	// Query bounds outside that range are clamped to these; far enough
	// from the int64 limits that subtracting a segment length cannot
	// overflow.
	minBoundNS = -(1 << 62)
	maxBoundNS = 1 << 62
)

// toNS converts a time to be stored. Zero or out-of-range times are an
// error.
func toNS(what string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, fmt.Errorf("%s: zero time", what)
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return 0, fmt.Errorf("%s: time %v outside %d..%d", what, t, minYear, maxYear)
	}
	return t.UnixNano(), nil
}

// boundNS converts a query bound, clamping instead of failing, so that a
// zero from means "since the beginning".
func boundNS(t time.Time) int64 {
	switch y := t.Year(); {
	case y < minYear:
		return minBoundNS
	case y > maxYear:
		return maxBoundNS
	}
	return t.UnixNano()
}

// fromNS converts a stored time back, in UTC.
func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Stream implements store.Store: it returns the stream, creating its row
// on first use. Camera and name must not be empty.
func (s *Store) Stream(ctx context.Context, camera, name string) (store.Stream, error) {
	st := store.Stream{Camera: camera, Name: name}
	if camera == "" || name == "" {
		return st, fmt.Errorf("stream %q/%q: empty camera or stream name", camera, name)
	}
	const sel = `SELECT id FROM streams WHERE camera = ? AND name = ?`
	err := s.db.QueryRowContext(ctx, sel, camera, name).Scan(&st.ID)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("stream %s/%s: %w", camera, name, withCtx(ctx, err))
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO streams (camera, name) VALUES (?, ?) ON CONFLICT (camera, name) DO NOTHING`,
			camera, name); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, sel, camera, name).Scan(&st.ID)
	})
	if err != nil {
		return st, fmt.Errorf("create stream %s/%s: %w", camera, name, err)
	}
	return st, nil
}

// Streams implements store.Store; streams are ordered by ID.
func (s *Store) Streams(ctx context.Context) ([]store.Stream, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, camera, name FROM streams ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", withCtx(ctx, err))
	}
	defer rows.Close()
	var out []store.Stream
	for rows.Next() {
		var st store.Stream
		if err := rows.Scan(&st.ID, &st.Camera, &st.Name); err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", withCtx(ctx, err))
	}
	return out, nil
}

// StartRun implements store.Store. An unknown stream is ErrNotFound.
func (s *Store) StartRun(ctx context.Context, streamID int64, start time.Time) (store.Run, error) {
	r := store.Run{StreamID: streamID, Start: start.UTC()}
	ns, err := toNS("start run", start)
	if err != nil {
		return r, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO runs (stream_id, start_ns) SELECT id, ? FROM streams WHERE id = ?`, ns, streamID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("stream %d: %w", streamID, store.ErrNotFound)
		}
		r.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return r, fmt.Errorf("start run of stream %d: %w", streamID, err)
	}
	return r, nil
}

// EndRun implements store.Store. The reason must not be empty (an empty
// reason means open); ending an ended run again overwrites its end. An
// unknown run is ErrNotFound.
func (s *Store) EndRun(ctx context.Context, runID int64, end time.Time, reason string) error {
	if reason == "" {
		return fmt.Errorf("end run %d: empty reason", runID)
	}
	ns, err := toNS("end run", end)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		return execOne(ctx, tx, fmt.Sprintf("run %d", runID),
			`UPDATE runs SET end_ns = ?, end_reason = ? WHERE id = ?`, ns, reason, runID)
	})
	if err != nil {
		return fmt.Errorf("end run %d: %w", runID, err)
	}
	return nil
}

// execOne executes a statement that must change exactly one row;
// changing none is ErrNotFound, described by what.
func execOne(ctx context.Context, tx *sql.Tx, what, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// AddSegment implements store.Store. seg.State may be empty (stored and
// set as writing), writing, or closed (for an index rebuilt from files).
// The run must exist and belong to seg.StreamID, else ErrNotFound; a
// (Disk, Key) pair already in use is an error. It sets seg.ID.
func (s *Store) AddSegment(ctx context.Context, seg *store.Segment) error {
	if seg.State == "" {
		seg.State = store.SegmentWriting
	}
	if err := checkSegment(seg); err != nil {
		return fmt.Errorf("add segment %s: %w", seg.Key, err)
	}
	start, err := toNS("add segment "+seg.Key, seg.Start)
	if err != nil {
		return err
	}
	end := seg.End().UnixNano()
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO segments (stream_id, run_id, disk, key, start_ns, end_ns, dur90k, wall_dur_ns,
	start_pts90k, bytes, frames, key_frames, state, codec, width, height)
SELECT stream_id, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
FROM runs WHERE id = ? AND stream_id = ?`,
			seg.Disk, seg.Key, start, end, seg.Dur90k, int64(seg.WallDur),
			seg.StartPTS90k, seg.Bytes, seg.Frames, seg.KeyFrames, seg.State, seg.Codec, seg.Width, seg.Height,
			seg.RunID, seg.StreamID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %d of stream %d: %w", seg.RunID, seg.StreamID, store.ErrNotFound)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if err := growMaxSeg(ctx, tx, seg.StreamID, end-start); err != nil {
			return err
		}
		seg.ID = id
		return nil
	})
	if err != nil {
		return fmt.Errorf("add segment %s: %w", seg.Key, err)
	}
	seg.Start = seg.Start.UTC()
	return nil
}

func checkSegment(seg *store.Segment) error {
	if seg.State != store.SegmentWriting && seg.State != store.SegmentClosed {
		return fmt.Errorf("invalid state %q", seg.State)
	}
	if seg.Disk == "" || seg.Key == "" {
		return errors.New("empty disk or key")
	}
	if seg.Dur90k < 0 || seg.WallDur < 0 {
		return errors.New("negative duration")
	}
	return nil
}

// growMaxSeg raises the stream's longest segment extent to at least ext.
func growMaxSeg(ctx context.Context, tx *sql.Tx, streamID, ext int64) error {
	_, err := tx.ExecContext(ctx,
		`UPDATE streams SET max_seg_ns = ? WHERE id = ? AND max_seg_ns < ?`, ext, streamID, ext)
	return err
}

// UpdateSegment implements store.Store: it rewrites Dur90k, WallDur,
// Bytes, Frames, KeyFrames and State of the row seg.ID (other fields of
// seg are ignored). An unknown ID is ErrNotFound.
func (s *Store) UpdateSegment(ctx context.Context, seg *store.Segment) error {
	if err := checkSegment(seg); err != nil {
		return fmt.Errorf("update segment %d: %w", seg.ID, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var streamID, ext int64
		err := tx.StmtContext(ctx, s.updateStmt).QueryRowContext(ctx,
			int64(seg.End().Sub(seg.Start)), seg.Dur90k, int64(seg.WallDur), seg.Bytes, seg.Frames,
			seg.KeyFrames, seg.State, seg.ID).Scan(&streamID, &ext)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return growMaxSeg(ctx, tx, streamID, ext)
	})
	if err != nil {
		return fmt.Errorf("update segment %d: %w", seg.ID, err)
	}
	return nil
}

// segmentsQuery is Segments' query, prepared at Open: ?1 stream, ?2
// from, ?3 to. The max_seg_ns bound turns end_ns > from into a range on
// segments_stream_start (a test checks the plan).
const segmentsQuery = `SELECT ` + segmentCols + ` FROM segments
WHERE stream_id = ?1 AND start_ns < ?3 AND end_ns > ?2
	AND start_ns >= ?2 - (SELECT max_seg_ns FROM streams WHERE id = ?1)
ORDER BY start_ns, id`

// updateSegmentQuery is UpdateSegment's statement, prepared at Open.
const updateSegmentQuery = `UPDATE segments SET end_ns = start_ns + ?, dur90k = ?, wall_dur_ns = ?,
	bytes = ?, frames = ?, key_frames = ?, state = ?
WHERE id = ? RETURNING stream_id, end_ns - start_ns`

const segmentCols = `id, stream_id, run_id, disk, key, start_ns, dur90k, wall_dur_ns, start_pts90k,
	bytes, frames, key_frames, state, codec, width, height`

func scanSegments(rows *sql.Rows) ([]store.Segment, error) {
	defer rows.Close()
	var out []store.Segment
	for rows.Next() {
		var g store.Segment
		var start, wallDur int64
		if err := rows.Scan(&g.ID, &g.StreamID, &g.RunID, &g.Disk, &g.Key, &start, &g.Dur90k, &wallDur,
			&g.StartPTS90k, &g.Bytes, &g.Frames, &g.KeyFrames, &g.State, &g.Codec, &g.Width, &g.Height); err != nil {
			return nil, err
		}
		g.Start, g.WallDur = fromNS(start), time.Duration(wallDur)
		out = append(out, g)
	}
	return out, rows.Err()
}

// Segments implements store.Store: segments with start < to and End() >
// from, ordered by start (then ID); an empty range (to <= from) holds
// none. An unknown stream is ErrNotFound.
func (s *Store) Segments(ctx context.Context, streamID int64, from, to time.Time) ([]store.Segment, error) {
	f, t := boundNS(from), boundNS(to)
	if t <= f {
		if err := s.checkStream(ctx, streamID); err != nil {
			return nil, fmt.Errorf("segments of stream %d: %w", streamID, withCtx(ctx, err))
		}
		return nil, nil
	}
	rows, err := s.segmentsStmt.QueryContext(ctx, streamID, f, t)
	if err != nil {
		return nil, fmt.Errorf("segments of stream %d: %w", streamID, withCtx(ctx, err))
	}
	out, err := scanSegments(rows)
	if err == nil && len(out) == 0 {
		err = s.checkStream(ctx, streamID)
	}
	if err != nil {
		return nil, fmt.Errorf("segments of stream %d: %w", streamID, withCtx(ctx, err))
	}
	return out, nil
}

// checkStream returns ErrNotFound for an unknown stream. Queries call it
// only when they found nothing, so known streams pay for it only then.
func (s *Store) checkStream(ctx context.Context, streamID int64) error {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM streams WHERE id = ?`, streamID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Runs implements store.Store. A run covers [Start, E) where E is +∞
// while it is open and, once ended, the later of its EndRun time and the
// end of its last closed segment. Run.End is the end of the run's last
// closed segment (zero if none), whether or not the run has ended.
// Ordered by start (then ID); an empty range (to <= from) holds none. An
// unknown stream is ErrNotFound.
func (s *Store) Runs(ctx context.Context, streamID int64, from, to time.Time) ([]store.Run, error) {
	f, t := boundNS(from), boundNS(to)
	if t <= f {
		if err := s.checkStream(ctx, streamID); err != nil {
			return nil, fmt.Errorf("runs of stream %d: %w", streamID, withCtx(ctx, err))
		}
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `
SELECT id, start_ns, end_reason, seg_end FROM (
	SELECT r.id, r.start_ns, r.end_ns, r.end_reason,
		(SELECT max(g.end_ns) FROM segments g WHERE g.run_id = r.id AND g.state = 'closed') AS seg_end
	FROM runs r WHERE r.stream_id = ?1 AND r.start_ns < ?3)
WHERE end_ns IS NULL OR max(end_ns, coalesce(seg_end, end_ns)) > ?2
ORDER BY start_ns, id`, streamID, f, t)
	if err != nil {
		return nil, fmt.Errorf("runs of stream %d: %w", streamID, withCtx(ctx, err))
	}
	defer rows.Close()
	var out []store.Run
	for rows.Next() {
		r := store.Run{StreamID: streamID}
		var start int64
		var segEnd sql.NullInt64
		if err := rows.Scan(&r.ID, &start, &r.EndReason, &segEnd); err != nil {
			return nil, fmt.Errorf("runs of stream %d: %w", streamID, err)
		}
		r.Start = fromNS(start)
		if segEnd.Valid {
			r.End = fromNS(segEnd.Int64)
		}
		out = append(out, r)
	}
	err = rows.Err()
	if err == nil && len(out) == 0 {
		err = s.checkStream(ctx, streamID)
	}
	if err != nil {
		return nil, fmt.Errorf("runs of stream %d: %w", streamID, withCtx(ctx, err))
	}
	return out, nil
}

// Segment implements store.Store.
func (s *Store) Segment(ctx context.Context, id int64) (store.Segment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+segmentCols+` FROM segments WHERE id = ?`, id)
	if err != nil {
		return store.Segment{}, fmt.Errorf("segment %d: %w", id, withCtx(ctx, err))
	}
	out, err := scanSegments(rows)
	if err != nil {
		return store.Segment{}, fmt.Errorf("segment %d: %w", id, withCtx(ctx, err))
	}
	if len(out) == 0 {
		return store.Segment{}, fmt.Errorf("segment %d: %w", id, store.ErrNotFound)
	}
	return out[0], nil
}

// WritingSegments implements store.Store; ordered by ID.
func (s *Store) WritingSegments(ctx context.Context) ([]store.Segment, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+segmentCols+` FROM segments WHERE state = 'writing' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("writing segments: %w", withCtx(ctx, err))
	}
	out, err := scanSegments(rows)
	if err != nil {
		return nil, fmt.Errorf("writing segments: %w", withCtx(ctx, err))
	}
	return out, nil
}

// HasSegmentsOn implements store.Store. Only segment rows count, not
// garbage entries.
func (s *Store) HasSegmentsOn(ctx context.Context, disk string) (bool, error) {
	var has bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM segments WHERE disk = ?)`, disk).Scan(&has)
	if err != nil {
		return false, fmt.Errorf("segments on disk %s: %w", disk, withCtx(ctx, err))
	}
	return has, nil
}

// MarkGarbage implements store.Store. An unknown segment is ErrNotFound, a
// writing one store.ErrSegmentWriting; the reason must not be empty.
func (s *Store) MarkGarbage(ctx context.Context, segmentID int64, reason string, at time.Time) error {
	if reason == "" {
		return fmt.Errorf("mark segment %d garbage: empty reason", segmentID)
	}
	atNS, err := toNS(fmt.Sprintf("mark segment %d garbage", segmentID), at)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var streamID, start, end, bytes int64
		var disk, key, state string
		err := tx.QueryRowContext(ctx,
			`SELECT stream_id, disk, key, start_ns, end_ns, bytes, state FROM segments WHERE id = ?`,
			segmentID).Scan(&streamID, &disk, &key, &start, &end, &bytes, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if state == store.SegmentWriting {
			return store.ErrSegmentWriting
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, segmentID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO garbage (disk, key, reason, marked_ns) VALUES (?, ?, ?, ?)`,
			disk, key, reason, atNS); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO deletions (segment_id, stream_id, disk, key, start_ns, end_ns, bytes, reason, at_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, segmentID, streamID, disk, key, start, end, bytes, reason, atNS)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark segment %d garbage: %w", segmentID, err)
	}
	return nil
}

// GarbageList implements store.Store; ordered by mark time, disk, key.
func (s *Store) GarbageList(ctx context.Context) ([]store.Garbage, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT disk, key, reason, marked_ns FROM garbage ORDER BY marked_ns, disk, key`)
	if err != nil {
		return nil, fmt.Errorf("garbage list: %w", withCtx(ctx, err))
	}
	defer rows.Close()
	var out []store.Garbage
	for rows.Next() {
		var g store.Garbage
		var marked int64
		if err := rows.Scan(&g.Disk, &g.Key, &g.Reason, &marked); err != nil {
			return nil, fmt.Errorf("garbage list: %w", err)
		}
		g.Marked = fromNS(marked)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("garbage list: %w", withCtx(ctx, err))
	}
	return out, nil
}

// UnmarkGarbage implements store.Store. An entry that is not on the list
// is ErrNotFound.
func (s *Store) UnmarkGarbage(ctx context.Context, disk, key string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return execOne(ctx, tx, "garbage entry",
			`DELETE FROM garbage WHERE disk = ? AND key = ?`, disk, key)
	})
	if err != nil {
		return fmt.Errorf("unmark garbage %s on %s: %w", key, disk, err)
	}
	return nil
}

// Deletions implements store.Store: ordered by deletion time, then by
// order of marking. An unknown stream is ErrNotFound.
func (s *Store) Deletions(ctx context.Context, streamID int64) ([]store.Deletion, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT segment_id, disk, key, start_ns, end_ns, bytes, reason, at_ns
FROM deletions WHERE stream_id = ? ORDER BY at_ns, id`, streamID)
	if err != nil {
		return nil, fmt.Errorf("deletions of stream %d: %w", streamID, withCtx(ctx, err))
	}
	defer rows.Close()
	var out []store.Deletion
	for rows.Next() {
		d := store.Deletion{StreamID: streamID}
		var start, end, at int64
		if err := rows.Scan(&d.SegmentID, &d.Disk, &d.Key, &start, &end, &d.Bytes, &d.Reason, &at); err != nil {
			return nil, fmt.Errorf("deletions of stream %d: %w", streamID, err)
		}
		d.Start, d.End, d.At = fromNS(start), fromNS(end), fromNS(at)
		out = append(out, d)
	}
	err = rows.Err()
	if err == nil && len(out) == 0 {
		err = s.checkStream(ctx, streamID)
	}
	if err != nil {
		return nil, fmt.Errorf("deletions of stream %d: %w", streamID, withCtx(ctx, err))
	}
	return out, nil
}

// AddSegments inserts many segment rows in one transaction, in order,
// setting their IDs: the bulk path for index rebuilds and benchmarks that
// synthesise large indexes. Every row is checked as AddSegment checks it
// and must name an existing run of its stream; on any error nothing is
// inserted. Not part of store.Store.
func (s *Store) AddSegments(ctx context.Context, segs []store.Segment) error {
	for i := range segs {
		if err := checkSegment(&segs[i]); err != nil {
			return fmt.Errorf("add segments: row %d (%s): %w", i, segs[i].Key, err)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO segments (stream_id, run_id, disk, key, start_ns, end_ns, dur90k, wall_dur_ns,
	start_pts90k, bytes, frames, key_frames, state, codec, width, height)
SELECT stream_id, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
FROM runs WHERE id = ? AND stream_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		maxExt := map[int64]int64{}
		for i := range segs {
			seg := &segs[i]
			start, end := seg.Start.UnixNano(), seg.End().UnixNano()
			res, err := stmt.ExecContext(ctx, seg.Disk, seg.Key, start, end, seg.Dur90k, int64(seg.WallDur),
				seg.StartPTS90k, seg.Bytes, seg.Frames, seg.KeyFrames, seg.State, seg.Codec, seg.Width, seg.Height,
				seg.RunID, seg.StreamID)
			if err != nil {
				return fmt.Errorf("row %d (%s): %w", i, seg.Key, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("row %d: run %d of stream %d: %w", i, seg.RunID, seg.StreamID, store.ErrNotFound)
			}
			if seg.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			maxExt[seg.StreamID] = max(maxExt[seg.StreamID], end-start)
		}
		for id, ext := range maxExt {
			if err := growMaxSeg(ctx, tx, id, ext); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add segments: %w", err)
	}
	for i := range segs {
		segs[i].Start = segs[i].Start.UTC()
	}
	return nil
}

// DiskUsage implements store.Store, ordered by disk name.
func (s *Store) DiskUsage(ctx context.Context, since time.Time) ([]store.DiskUsage, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT disk, count(*), sum(bytes), min(start_ns), sum(CASE WHEN start_ns >= ? THEN bytes ELSE 0 END)
FROM segments GROUP BY disk ORDER BY disk`, boundNS(since))
	if err != nil {
		return nil, fmt.Errorf("disk usage: %w", withCtx(ctx, err))
	}
	defer rows.Close()
	var out []store.DiskUsage
	for rows.Next() {
		var u store.DiskUsage
		var oldest int64
		if err := rows.Scan(&u.Disk, &u.Segments, &u.Bytes, &oldest, &u.BytesSince); err != nil {
			return nil, fmt.Errorf("disk usage: %w", err)
		}
		u.Oldest = fromNS(oldest)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("disk usage: %w", withCtx(ctx, err))
	}
	return out, nil
}
