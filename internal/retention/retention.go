// Package retention deletes recordings the owner's rules no longer keep:
// per camera a maximum age and a maximum size, and per storage directory a
// free-space floor. It deletes oldest first, never a segment being written,
// and every deletion goes through the crash-safe protocol of
// docs/storage.md (mark as garbage with a reason, delete the file, unmark),
// so each hole in the footage has a reason on record.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/store"
)

// Policy is one camera's limits; zero means no limit.
type Policy struct {
	Camera   string
	MaxAge   time.Duration
	MaxBytes int64
}

// Disk is a storage directory with a free-space floor.
type Disk struct {
	Store blob.Store
	// MinFree is the floor in bytes; 0 disables it unless
	// MinFreePercent is set.
	MinFree int64
	// MinFreePercent, when positive, is the floor as a percentage of the
	// disk's size (Total); the larger of the two floors applies.
	MinFreePercent float64
	// Free reports the free bytes now (nil disables the floor).
	Free func() (int64, error)
	// Total reports the disk's size (needed by MinFreePercent).
	Total func() (int64, error)
}

// floorBytes is the disk's free-space floor now; 0 when it has none.
func (d Disk) floorBytes() (int64, error) {
	if d.MinFreePercent <= 0 || d.Total == nil {
		return d.MinFree, nil
	}
	total, err := d.Total()
	if err != nil {
		return 0, err
	}
	return max(d.MinFree, int64(d.MinFreePercent/100*float64(total))), nil
}

// Retention applies the policies. A Pass is not safe to run concurrently
// with another Pass; it is safe beside recording.
type Retention struct {
	Index    store.Store
	Disks    map[string]Disk
	Policies []Policy
	// PolicyFunc, when set, is called at each pass instead of reading
	// Policies (cameras added and removed while the server runs).
	PolicyFunc func() []Policy
	// Default applies to every camera with recordings but no policy (a
	// camera removed from the configuration); zero keeps them forever.
	Default Policy
	Now     func() time.Time
	Logger  *slog.Logger
	// Chain, when set, records each deletion in its stream's hash chain
	// before the segment is marked garbage; when that fails the segment
	// is kept and the pass fails (a hole without a chain entry would be
	// unexplained).
	Chain interface {
		SegmentDeleted(ctx context.Context, camera, stream string, seg store.Segment, reason string, at time.Time) error
	}
	// Audit, when set, receives one entry per stream and reason for each
	// pass that deleted something (the index's deletion log keeps every
	// segment).
	Audit Auditor

	alarmMu sync.Mutex
	alarms  map[string]*LockedFull // by disk
}

// LockedFull is the alarm of a disk below its free-space floor whose
// remaining recordings are all held by evidence locks: retention cannot
// free space, recording goes on into the space below the floor, and when
// the disk is actually full its cameras fail to write (docs/storage.md).
type LockedFull struct {
	Disk string
	// Since is the pass that first found it so.
	Since         time.Time
	Free, MinFree int64
	// Locked is how many segments on the disk the locks kept.
	Locked int

	warned time.Time
}

// lockedFullWarnEvery rate-limits the warning of a disk full of locked
// video.
const lockedFullWarnEvery = 10 * time.Minute

// LockedFull returns the disks in that state at the last pass, by name.
// Safe for concurrent use with Pass.
func (r *Retention) LockedFull() map[string]LockedFull {
	r.alarmMu.Lock()
	defer r.alarmMu.Unlock()
	out := make(map[string]LockedFull, len(r.alarms))
	for k, a := range r.alarms {
		out[k] = *a
	}
	return out
}

// setAlarm raises (locked > 0) or clears the locked-full alarm of a disk
// and logs it: at warn when raised and every lockedFullWarnEvery while it
// lasts, at info when cleared.
func (r *Retention) setAlarm(name string, free, minFree int64, locked int, now time.Time) {
	r.alarmMu.Lock()
	defer r.alarmMu.Unlock()
	a := r.alarms[name]
	if locked == 0 {
		if a != nil {
			delete(r.alarms, name)
			if r.Logger != nil {
				r.Logger.Info("retention: storage is no longer full of locked video", "storage", name, "free", free, "min_free", minFree)
			}
		}
		return
	}
	if r.alarms == nil {
		r.alarms = map[string]*LockedFull{}
	}
	if a == nil {
		a = &LockedFull{Disk: name, Since: now}
		r.alarms[name] = a
	}
	a.Free, a.MinFree, a.Locked = free, minFree, locked
	if r.Logger != nil && (a.warned.IsZero() || now.Sub(a.warned) >= lockedFullWarnEvery) {
		a.warned = now
		r.Logger.Warn("retention: storage is below min_free and evidence locks hold everything left to delete; "+
			"recording goes on until the disk is full, then its cameras fail to write: release locks or add space",
			"storage", name, "free", free, "min_free", minFree, "locked_segments", locked, "since", a.Since)
	}
}

// Auditor is the part of *audit.Log retention uses.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
}

// deleted sums one stream's deletions for one reason within a pass.
type deleted struct {
	streamID int64
	reason   string
	segments int
	bytes    int64
	from, to time.Time
}

// Result counts what a pass deleted.
type Result struct {
	Segments int
	Bytes    int64
	// Locked counts segments kept because of an evidence lock.
	Locked int

	deleted []deleted
	locked  func(store.Segment) bool
	streams map[int64]store.Stream
}

func (res *Result) note(sg store.Segment, reason string) {
	for i := range res.deleted {
		d := &res.deleted[i]
		if d.streamID == sg.StreamID && d.reason == reason {
			d.segments++
			d.bytes += sg.Bytes
			if sg.Start.Before(d.from) {
				d.from = sg.Start
			}
			if e := sg.End(); e.After(d.to) {
				d.to = e
			}
			return
		}
	}
	res.deleted = append(res.deleted, deleted{streamID: sg.StreamID, reason: reason, segments: 1, bytes: sg.Bytes, from: sg.Start, to: sg.End()})
}

// audit appends the pass's deletions to the audit log. A failure is
// logged: retention must go on (the index's deletion log has each one).
func (r *Retention) audit(ctx context.Context, res *Result, streams []store.Stream) {
	if r.Audit == nil {
		return
	}
	for _, d := range res.deleted {
		cam, stream := "", ""
		for _, st := range streams {
			if st.ID == d.streamID {
				cam, stream = st.Camera, st.Name
			}
		}
		_, err := r.Audit.Append(ctx, audit.Entry{Action: audit.RetentionDelete, Camera: cam, Result: "ok",
			Detail: map[string]string{"stream": stream, "reason": d.reason, "segments": strconv.Itoa(d.segments),
				"bytes": strconv.FormatInt(d.bytes, 10), "from": d.from.UTC().Format(time.RFC3339Nano),
				"to": d.to.UTC().Format(time.RFC3339Nano)}})
		if err != nil && r.Logger != nil {
			r.Logger.Error("retention: audit entry not written", "camera", cam, "err", err)
		}
	}
}

// Pass runs every rule once and returns what it deleted. It stops at the
// first error that is not about a single file (the index failing).
func (r *Retention) Pass(ctx context.Context) (Result, error) {
	var res Result
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	if err := r.finishPending(ctx); err != nil {
		return res, err
	}
	streams, err := r.Index.Streams(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: list streams: %w", err)
	}
	defer r.audit(ctx, &res, streams)
	// Evidence locks: no segment overlapping an active lock of its
	// camera is deleted, whatever the rule.
	locks, err := r.Index.Locks(ctx, "", time.Unix(0, 0), now.Add(100*365*24*time.Hour), false)
	if err != nil {
		return res, fmt.Errorf("retention: evidence locks: %w", err)
	}
	camOf := map[int64]string{}
	res.streams = map[int64]store.Stream{}
	for _, st := range streams {
		camOf[st.ID] = st.Camera
		res.streams[st.ID] = st
	}
	res.locked = func(sg store.Segment) bool {
		for _, l := range locks {
			if l.Camera == camOf[sg.StreamID] && sg.Start.Before(l.To) && sg.End().After(l.From) {
				return true
			}
		}
		return false
	}
	byCamera := map[string][]store.Stream{}
	for _, st := range streams {
		byCamera[st.Camera] = append(byCamera[st.Camera], st)
	}
	policies := r.Policies
	if r.PolicyFunc != nil {
		policies = r.PolicyFunc()
	}
	has := map[string]bool{}
	for _, p := range policies {
		has[p.Camera] = true
	}
	for cam := range byCamera {
		if !has[cam] {
			d := r.Default
			d.Camera = cam
			policies = append(policies, d)
		}
	}
	for _, p := range policies {
		if p.MaxAge <= 0 && p.MaxBytes <= 0 {
			continue
		}
		segs, err := r.segments(ctx, byCamera[p.Camera])
		if err != nil {
			return res, err
		}
		var total int64
		for _, sg := range segs {
			total += sg.Bytes
		}
		for _, sg := range segs {
			if sg.State != store.SegmentClosed {
				continue
			}
			reason := ""
			switch {
			case p.MaxAge > 0 && sg.End().Before(now.Add(-p.MaxAge)):
				reason = fmt.Sprintf("retention: older than max_age %s", p.MaxAge)
			case p.MaxBytes > 0 && total > p.MaxBytes:
				reason = fmt.Sprintf("retention: camera over max_bytes %d", p.MaxBytes)
			default:
				continue
			}
			lockedBefore := res.Locked
			if err := r.delete(ctx, sg, reason, now, &res); err != nil {
				return res, err
			}
			if res.Locked == lockedBefore {
				total -= sg.Bytes // gone (or going: a failed delete is retried)
			}
		}
	}
	for name, d := range r.Disks {
		if err := r.floor(ctx, name, d, streams, now, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// segments returns the streams' segments, oldest first.
func (r *Retention) segments(ctx context.Context, streams []store.Stream) ([]store.Segment, error) {
	var all []store.Segment
	for _, st := range streams {
		segs, err := r.Index.Segments(ctx, st.ID, time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("retention: segments of %s/%s: %w", st.Camera, st.Name, err)
		}
		all = append(all, segs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start.Before(all[j].Start) })
	return all, nil
}

// floor deletes the oldest closed segments on a disk until its free space
// is back above the floor (or nothing deletable is left).
func (r *Retention) floor(ctx context.Context, name string, d Disk, streams []store.Stream, now time.Time, res *Result) error {
	if (d.MinFree <= 0 && d.MinFreePercent <= 0) || d.Free == nil {
		return nil
	}
	if err := blob.Check(d.Store); err != nil {
		// An unmounted disk's free space is its mount point's: ignore it.
		// Debug: the cameras on it already report the loss, and this
		// would repeat every pass for as long as the disk is away.
		if r.Logger != nil {
			r.Logger.Debug("retention: storage unavailable; its floor is not applied", "storage", name, "err", err)
		}
		return nil
	}
	minFree, err := d.floorBytes()
	if err != nil {
		return fmt.Errorf("retention: size of %s: %w", name, err)
	}
	free, err := d.Free()
	if err != nil {
		return fmt.Errorf("retention: free space of %s: %w", name, err)
	}
	if minFree <= 0 || free >= minFree {
		r.setAlarm(name, free, minFree, 0, now)
		return nil
	}
	segs, err := r.segments(ctx, streams)
	if err != nil {
		return err
	}
	lockedBefore := res.Locked
	for _, sg := range segs {
		if free >= minFree {
			break
		}
		if sg.Disk != name || sg.State != store.SegmentClosed {
			continue
		}
		reason := fmt.Sprintf("retention: storage %s below min_free %d (free %d)", name, minFree, free)
		if err := r.delete(ctx, sg, reason, now, res); err != nil {
			return err
		}
		if free, err = d.Free(); err != nil {
			return fmt.Errorf("retention: free space of %s: %w", name, err)
		}
	}
	locked := 0
	if free < minFree {
		locked = res.Locked - lockedBefore
		if locked == 0 && r.Logger != nil {
			r.Logger.Warn("retention: storage still below its floor with nothing closed left to delete", "storage", name, "free", free, "min_free", minFree)
		}
	}
	r.setAlarm(name, free, minFree, locked, now)
	return nil
}

// delete runs the deletion protocol for one segment, unless an evidence
// lock holds it.
func (r *Retention) delete(ctx context.Context, sg store.Segment, reason string, now time.Time, res *Result) error {
	if res.locked != nil && res.locked(sg) {
		res.Locked++
		return nil
	}
	d, ok := r.Disks[sg.Disk]
	if !ok || blob.Check(d.Store) != nil {
		return nil // disk unavailable: keep the row, try again later
	}
	if r.Chain != nil {
		st := res.streams[sg.StreamID]
		if err := r.Chain.SegmentDeleted(ctx, st.Camera, st.Name, sg, reason, now); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	if err := r.Index.MarkGarbage(ctx, sg.ID, reason, now); err != nil {
		if errors.Is(err, store.ErrSegmentWriting) {
			return nil
		}
		return fmt.Errorf("retention: mark %s: %w", sg.Key, err)
	}
	if err := d.Store.Delete(ctx, sg.Key); err != nil {
		// The garbage mark stays; start-up or the next pass finishes it.
		if r.Logger != nil {
			r.Logger.Error("retention: delete failed, will retry", "disk", sg.Disk, "key", sg.Key, "err", err)
		}
		return nil
	}
	if err := r.Index.UnmarkGarbage(ctx, sg.Disk, sg.Key); err != nil {
		return fmt.Errorf("retention: unmark %s: %w", sg.Key, err)
	}
	res.Segments++
	res.Bytes += sg.Bytes
	res.note(sg, reason)
	if r.Logger != nil {
		r.Logger.Info("retention: deleted segment", "disk", sg.Disk, "key", sg.Key, "bytes", sg.Bytes, "reason", reason)
	}
	return nil
}

// finishPending retries deletions whose file could not be removed before.
func (r *Retention) finishPending(ctx context.Context) error {
	garbage, err := r.Index.GarbageList(ctx)
	if err != nil {
		return fmt.Errorf("retention: pending deletions: %w", err)
	}
	for _, g := range garbage {
		d, ok := r.Disks[g.Disk]
		if !ok {
			continue
		}
		if err := d.Store.Delete(ctx, g.Key); err != nil {
			continue // still failing: keep the mark
		}
		if err := r.Index.UnmarkGarbage(ctx, g.Disk, g.Key); err != nil {
			return fmt.Errorf("retention: unmark %s: %w", g.Key, err)
		}
	}
	return nil
}
