// Package check verifies the storage invariants of docs/storage.md against
// the index and the files: every row's bytes exist with the recorded size
// and parse as the fragments the row claims, no file lacks a row, and
// segments of a run abut in media and wall time. It only reads; it is
// safe to run beside a recording server (rows being written may grow).
package check

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// Problem is one violated invariant.
type Problem struct {
	Disk string `json:"disk,omitempty"`
	Key  string `json:"key,omitempty"`
	What string `json:"what"`
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.What
	}
	return fmt.Sprintf("%s:%s: %s", p.Disk, p.Key, p.What)
}

// Report is the outcome of Run.
type Report struct {
	Streams  int       `json:"streams"`
	Segments int       `json:"segments"`
	Bytes    int64     `json:"bytes"`
	Files    int       `json:"files"`
	Problems []Problem `json:"problems"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Run checks every stream in idx against the files on disks. Disks absent
// from the map (unavailable) are reported once and their segments skipped.
// It returns an error only when the index itself cannot be read.
func Run(ctx context.Context, idx store.Store, disks map[string]blob.Store) (*Report, error) {
	rep := &Report{Problems: []Problem{}}
	add := func(disk, key, format string, a ...any) {
		rep.Problems = append(rep.Problems, Problem{Disk: disk, Key: key, What: fmt.Sprintf(format, a...)})
	}
	streams, err := idx.Streams(ctx)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	rep.Streams = len(streams)
	known := map[string]map[string]bool{} // disk → key → has row
	missingDisk := map[string]bool{}
	for _, st := range streams {
		segs, err := idx.Segments(ctx, st.ID, time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("segments of %s/%s: %w", st.Camera, st.Name, err)
		}
		for i := range segs {
			sg := &segs[i]
			rep.Segments++
			rep.Bytes += sg.Bytes
			if known[sg.Disk] == nil {
				known[sg.Disk] = map[string]bool{}
			}
			known[sg.Disk][sg.Key] = true
			d := disks[sg.Disk]
			if d == nil {
				if !missingDisk[sg.Disk] {
					missingDisk[sg.Disk] = true
					add(sg.Disk, "", "storage %q is not available: its segments were not checked", sg.Disk)
				}
				continue
			}
			checkSegment(ctx, d, sg, add)
			if i > 0 {
				checkAbut(&segs[i-1], sg, add)
			}
		}
	}
	garbage, err := idx.GarbageList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pending deletions: %w", err)
	}
	for _, g := range garbage {
		if known[g.Disk] == nil {
			known[g.Disk] = map[string]bool{}
		}
		known[g.Disk][g.Key] = true
	}
	for name, d := range disks {
		for obj, err := range d.List(ctx, "") {
			if err != nil {
				add(name, "", "listing files: %v", err)
				break
			}
			rep.Files++
			if !known[name][obj.Key] {
				add(name, obj.Key, "orphan file (%d bytes): no index row names it", obj.Size)
			}
		}
	}
	return rep, nil
}

// checkSegment compares one row with its file.
func checkSegment(ctx context.Context, d blob.Store, sg *store.Segment, add func(disk, key, format string, a ...any)) {
	r, err := d.Open(ctx, sg.Key)
	if err != nil {
		add(sg.Disk, sg.Key, "file unreadable: %v", err)
		return
	}
	defer r.Close()
	size := r.Size()
	switch {
	case sg.State == store.SegmentClosed && size != sg.Bytes:
		add(sg.Disk, sg.Key, "file has %d bytes, index says %d", size, sg.Bytes)
		return
	case size < sg.Bytes:
		add(sg.Disk, sg.Key, "file has %d bytes, fewer than the %d the index vouches for", size, sg.Bytes)
		return
	}
	info, err := mp4.ScanFile(r, size)
	if err != nil {
		add(sg.Disk, sg.Key, "not a playable segment: %v", err)
		return
	}
	if info.ValidEnd < sg.Bytes {
		add(sg.Disk, sg.Key, "complete fragments end at byte %d, index vouches for %d", info.ValidEnd, sg.Bytes)
		return
	}
	if sg.State != store.SegmentClosed {
		return // still growing: the row lags the file by design
	}
	var frames, keys, dur int64
	for _, f := range info.Fragments {
		frames += int64(f.Samples)
		keys += int64(f.KeyFrames)
		dur += int64(f.Dur90k)
	}
	if frames != sg.Frames || keys != sg.KeyFrames || dur != sg.Dur90k {
		add(sg.Disk, sg.Key, "file holds %d frames (%d key) over %d ticks, index says %d (%d) over %d",
			frames, keys, dur, sg.Frames, sg.KeyFrames, sg.Dur90k)
	}
	if len(info.Fragments) > 0 && !info.Fragments[0].FirstKey {
		add(sg.Disk, sg.Key, "first fragment does not start with a key frame")
	}
}

// checkAbut checks that consecutive closed segments of one run abut.
func checkAbut(prev, cur *store.Segment, add func(disk, key, format string, a ...any)) {
	if prev.RunID != cur.RunID {
		if cur.Start.Before(prev.End()) {
			add(cur.Disk, cur.Key, "run %d starts at %s, before run %d ends at %s", cur.RunID,
				cur.Start.Format(time.RFC3339Nano), prev.RunID, prev.End().Format(time.RFC3339Nano))
		}
		return
	}
	if prev.State != store.SegmentClosed {
		add(prev.Disk, prev.Key, "segment still being written although a later one exists")
		return
	}
	if prev.StartPTS90k+prev.Dur90k != cur.StartPTS90k {
		add(cur.Disk, cur.Key, "media time starts at %d, previous segment ends at %d", cur.StartPTS90k, prev.StartPTS90k+prev.Dur90k)
	}
	if !prev.End().Equal(cur.Start) {
		add(cur.Disk, cur.Key, "wall time starts at %s, previous segment ends at %s",
			cur.Start.Format(time.RFC3339Nano), prev.End().Format(time.RFC3339Nano))
	}
}
