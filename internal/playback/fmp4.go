package playback

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// wallTicks is t as 90 kHz ticks since the Unix epoch: the decode-time
// base of fragments served for MSE and HLS, so that every fragment of a
// camera sits on one timeline whatever request fetched it.
func wallTicks(t time.Time) uint64 {
	return uint64(t.Unix())*90000 + uint64(t.Nanosecond())*9/100000
}

// WallOfTicks is the inverse of the fragments' time base: the wall time of
// a decode time in 90 kHz ticks since the Unix epoch.
func WallOfTicks(t90k uint64) time.Time {
	sec := int64(t90k / 90000)
	return time.Unix(sec, int64(t90k%90000)*100000/9).UTC()
}

// appendFragments adds fragments [first, end) of x to f, each with a
// fresh moof whose decode time is wall-clock based (wallTicks) and whose
// data is the stored sample bytes. seq numbers the fragments across calls.
func appendFragments(f *File, x *segIndex, first, end int, seq *uint32) {
	var hdr []byte
	var samples []mp4.Sample
	for fi := first; fi < end; fi++ {
		fr := &x.frags[fi]
		samples = samples[:0]
		dataLen := 0
		for i := fr.first; i < fr.first+fr.n; i++ {
			sm := &x.samples[i]
			samples = append(samples, mp4.Sample{Dur90k: sm.dur90k, Size: sm.size, Key: sm.key, CTSOffset90k: sm.cts90k})
			dataLen += int(sm.size)
		}
		*seq++
		base := wallTicks(toWall(&x.seg, fr.base90k))
		hdr = mp4.AppendFragmentHeader(hdr[:0], *seq, base, samples, dataLen)
		f.addMem(bytes.Clone(hdr))
		for i := fr.first; i < fr.first+fr.n; i++ {
			sm := &x.samples[i]
			f.addVideo(x.seg.Disk, x.seg.Key, sm.off, int64(sm.size),
				toWall(&x.seg, sm.dts90k), toWall(&x.seg, sm.dts90k+int64(sm.dur90k)))
		}
	}
}

// Fragments returns a fragmented MP4 of [from, to) for an MSE player:
// the init segment, then whole fragments from the one holding the key
// frame of the frame shown at from up to the one holding the last frame
// before to. Decode times are 90 kHz ticks since the Unix epoch
// (WallOfTicks), so a player can place the video on the wall clock and
// append responses for other ranges to the same buffer; gaps between runs
// are gaps in the buffer. When the codec parameters change between
// segments, a new init segment precedes the fragments that need it. Errors
// as Export.
func (s *Source) Fragments(ctx context.Context, camera, stream string, from, to time.Time) (*File, error) {
	sel, err := s.selectRange(ctx, camera, stream, from, to, "fmp4")
	if err != nil {
		return nil, err
	}
	f := &File{Name: exportName(sel, "mp4"), ContentType: "video/mp4", ETag: sel.etag, disks: s.Disks}
	var seq uint32
	var entry []byte
	for j, x := range sel.segs {
		lo, hi := sel.bounds(j)
		first, end := int(x.samples[lo].frag), int(x.samples[hi-1].frag)+1
		if j == 0 {
			f.From = toWall(&x.seg, x.frags[first].base90k)
		}
		if j == len(sel.segs)-1 {
			f.To = toWall(&x.seg, x.frags[end-1].base90k+fragDur(x, end-1))
		}
		if !bytes.Equal(entry, x.entry) {
			f.addRange(x.seg.Disk, x.seg.Key, 0, x.initEnd)
			entry = x.entry
		}
		if x.seg.Start.After(f.ModTime) {
			f.ModTime = x.seg.Start
		}
		appendFragments(f, x, first, end, &seq)
	}
	return f, nil
}

// fragDur is the media duration of fragment fi of x.
func fragDur(x *segIndex, fi int) int64 {
	fr := &x.frags[fi]
	last := &x.samples[fr.first+fr.n-1]
	return last.dts90k + int64(last.dur90k) - fr.base90k
}

// segmentOf returns the index of segment id after checking that it
// belongs to the camera's stream (so a URL cannot reach another camera's
// video by guessing IDs).
func (s *Source) segmentOf(ctx context.Context, camera, stream string, id int64) (*segIndex, error) {
	st, err := s.Index.Stream(ctx, camera, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s/%s: %w", camera, stream, err)
	}
	row, err := s.Index.Segment(ctx, id)
	if err != nil || row.StreamID != st.ID {
		return nil, noVideo("camera %s has no segment %d in stream %s (deleted by retention, or never recorded)", camera, id, stream)
	}
	return s.Cache.get(ctx, row, s.load)
}

// SegmentInit returns the init segment (ftyp and moov) of stored segment
// id of a camera's stream: the EXT-X-MAP of HLS playlists.
func (s *Source) SegmentInit(ctx context.Context, camera, stream string, id int64) (*File, error) {
	x, err := s.segmentOf(ctx, camera, stream, id)
	if err != nil {
		return nil, err
	}
	f := &File{Name: fmt.Sprintf("init-%d.mp4", id), ContentType: "video/mp4", disks: s.Disks,
		From: x.seg.Start, To: x.seg.Start, ModTime: x.seg.Start,
		ETag: fmt.Sprintf(`"init-%d-%d"`, x.seg.ID, x.initEnd)}
	f.addRange(x.seg.Disk, x.seg.Key, 0, x.initEnd)
	return f, nil
}

// SegmentFragments returns n fragments of stored segment id starting at
// fragment first, with wall-clock decode times (as Fragments): an HLS
// media segment. A range past the fragments the index vouches for is a
// 404 *Error.
func (s *Source) SegmentFragments(ctx context.Context, camera, stream string, id int64, first, n int) (*File, error) {
	x, err := s.segmentOf(ctx, camera, stream, id)
	if err != nil {
		return nil, err
	}
	if first < 0 || n <= 0 || first >= len(x.frags) || n > len(x.frags)-first {
		return nil, noVideo("segment %d has %d fragments; fragments %d..%d do not exist", id, len(x.frags), first, first+n-1)
	}
	f := &File{Name: fmt.Sprintf("seg-%d-%d-%d.m4s", id, first, n), ContentType: "video/iso.segment", disks: s.Disks,
		From: toWall(&x.seg, x.frags[first].base90k), ModTime: x.seg.Start,
		ETag: fmt.Sprintf(`"frag-%d-%d-%d-%d"`, id, first, n, x.seg.Start.UnixNano())}
	f.To = toWall(&x.seg, x.frags[first+n-1].base90k+fragDur(x, first+n-1))
	var seq uint32 = uint32(first)
	appendFragments(f, x, first, first+n, &seq)
	return f, nil
}

// closed reports whether a segment row is final.
func closed(x *segIndex) bool { return x.seg.State == store.SegmentClosed }
