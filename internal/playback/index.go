// Package playback turns the recording index and the stored segment files
// into what viewers fetch: a progressive MP4 of any time range (built
// virtually, nothing re-muxed on disk), fragmented MP4 for MSE players, and
// HLS playlists. It reads segment files through blob stores and never
// writes. Everything here is safe for concurrent use.
package playback

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// sample is one frame of a segment file, in decode order.
type sample struct {
	off    int64 // absolute file offset of its data
	size   uint32
	dur90k uint32
	// dts90k is the decode time from the start of the segment file (the
	// first sample's decode time is 0).
	dts90k int64
	cts90k int32 // presentation minus decode time
	key    bool
	frag   int32 // index of its fragment
}

func (s *sample) pts90k() int64 { return s.dts90k + int64(s.cts90k) }

// fragInfo is one moof+mdat pair of a segment file.
type fragInfo struct {
	first, n int   // its samples: samples[first : first+n]
	base90k  int64 // decode time of its first sample
	// contiguous reports whether its samples' data lie back to back, so
	// one file range covers them (always so in files Custos writes).
	contiguous bool
}

// segIndex is the sample table of one segment file, as far as its index
// row vouches for (Bytes).
type segIndex struct {
	seg     store.Segment
	track   mp4.Track
	entry   []byte // the sample entry box, shared by segments with equal bytes
	initEnd int64  // ftyp+moov length: the file's init segment
	samples []sample
	frags   []fragInfo
	// dur90k is the media duration of the samples (sum of durations).
	dur90k int64
}

// cost is the cache's measure of a segIndex: its samples.
func (x *segIndex) cost() int { return len(x.samples) + len(x.frags) + 16 }

// IndexCache keeps the sample tables of recently used closed segments, so
// that the range requests a player makes for one export (and HLS and
// thumbnail requests around the same time) read each segment's moofs once.
// Segments still being written are never cached (their rows grow). Safe
// for concurrent use.
type IndexCache struct {
	mu       sync.Mutex
	max      int // total cost
	cur      int
	lru      *list.List // of *cacheEntry, most recent at front
	byKey    map[cacheKey]*list.Element
	inflight map[cacheKey]*loadCall
	hits     uint64
	misses   uint64
}

type cacheKey struct {
	id    int64
	bytes int64
}

type cacheEntry struct {
	key cacheKey
	idx *segIndex
}

type loadCall struct {
	done chan struct{}
	idx  *segIndex
	err  error
}

// NewIndexCache returns a cache holding about maxSamples samples (16 to 40
// bytes each). A maxSamples of 0 disables caching.
func NewIndexCache(maxSamples int) *IndexCache {
	return &IndexCache{max: maxSamples, lru: list.New(), byKey: map[cacheKey]*list.Element{},
		inflight: map[cacheKey]*loadCall{}}
}

// Stats returns the cache's hit and miss counts.
func (c *IndexCache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// get returns seg's sample table, loading it through load on a miss. Loads
// of the same closed segment by concurrent callers happen once.
func (c *IndexCache) get(ctx context.Context, seg store.Segment, load func(context.Context, store.Segment) (*segIndex, error)) (*segIndex, error) {
	if c == nil || c.max == 0 || seg.State != store.SegmentClosed {
		return load(ctx, seg)
	}
	k := cacheKey{seg.ID, seg.Bytes}
	c.mu.Lock()
	if el, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		idx := el.Value.(*cacheEntry).idx
		c.mu.Unlock()
		return idx, nil
	}
	c.misses++
	if call, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.idx, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &loadCall{done: make(chan struct{})}
	c.inflight[k] = call
	c.mu.Unlock()

	// The load must not be cut short by the first caller's cancellation
	// when others wait on it; it is bounded by the file's size.
	call.idx, call.err = load(context.WithoutCancel(ctx), seg)
	c.mu.Lock()
	delete(c.inflight, k)
	if call.err == nil && call.idx.cost() <= c.max {
		c.byKey[k] = c.lru.PushFront(&cacheEntry{key: k, idx: call.idx})
		c.cur += call.idx.cost()
		for c.cur > c.max {
			el := c.lru.Back()
			e := el.Value.(*cacheEntry)
			c.lru.Remove(el)
			delete(c.byKey, e.key)
			c.cur -= e.idx.cost()
		}
	}
	c.mu.Unlock()
	close(call.done)
	return call.idx, call.err
}

// ErrMissingFile is returned (wrapped) when the index names a segment
// whose file is gone or shorter than its row says: the index and the
// storage disagree (custos check names such segments).
var ErrMissingFile = errors.New("playback: segment file missing or short")

// loadIndex reads the sample table of seg's file, up to seg.Bytes.
func loadIndex(ctx context.Context, disks map[string]blob.Store, seg store.Segment) (*segIndex, error) {
	disk, ok := disks[seg.Disk]
	if !ok {
		return nil, fmt.Errorf("segment %d: %w: disk %q is not configured", seg.ID, ErrMissingFile, seg.Disk)
	}
	r, err := disk.Open(ctx, seg.Key)
	if errors.Is(err, blob.ErrNotExist) || errors.Is(err, blob.ErrUnavailable) {
		return nil, fmt.Errorf("segment %d (%s on %s): %w: %w", seg.ID, seg.Key, seg.Disk, ErrMissingFile, err)
	} else if err != nil {
		return nil, fmt.Errorf("segment %d: open %s on %s: %w", seg.ID, seg.Key, seg.Disk, err)
	}
	defer r.Close()
	if r.Size() < seg.Bytes {
		return nil, fmt.Errorf("segment %d (%s on %s) is %d bytes, the index vouches for %d: %w",
			seg.ID, seg.Key, seg.Disk, r.Size(), seg.Bytes, ErrMissingFile)
	}
	x := &segIndex{seg: seg}
	est := int(seg.Frames)
	if est <= 0 || est > 1<<20 {
		est = 64
	}
	x.samples = make([]sample, 0, est)
	var dts int64
	info, err := mp4.ScanFileSamples(r, seg.Bytes, func(frag int, s mp4.SampleInfo) {
		for len(x.frags) <= frag {
			x.frags = append(x.frags, fragInfo{first: len(x.samples), contiguous: true})
		}
		f := &x.frags[frag]
		if f.n == 0 {
			f.base90k = dts
		} else if prev := &x.samples[len(x.samples)-1]; prev.off+int64(prev.size) != s.Offset {
			f.contiguous = false
		}
		f.n++
		x.samples = append(x.samples, sample{off: s.Offset, size: s.Size, dur90k: s.Dur90k, dts90k: dts,
			cts90k: s.CTSOffset90k, key: s.Key, frag: int32(frag)})
		dts += int64(s.Dur90k)
	})
	if err != nil {
		return nil, fmt.Errorf("segment %d (%s on %s): %w", seg.ID, seg.Key, seg.Disk, err)
	}
	if len(x.samples) == 0 {
		return nil, fmt.Errorf("segment %d (%s on %s): no complete fragment in the %d bytes the index vouches for: %w",
			seg.ID, seg.Key, seg.Disk, seg.Bytes, ErrMissingFile)
	}
	x.track, x.initEnd, x.dur90k = info.Track, info.InitEnd, dts
	if x.entry, err = mp4.SampleEntry(info.Track); err != nil {
		return nil, fmt.Errorf("segment %d (%s on %s): %w", seg.ID, seg.Key, seg.Disk, err)
	}
	return x, nil
}
