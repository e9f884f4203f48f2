package playback

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/mp4"
)

// Export returns a progressive MP4 (moov first) of [from, to) of a
// camera's stream, built from the index and the stored fragments without
// copying them: the media bytes are the recorded bytes.
//
// The file starts exactly at from even mid-GOP: frames back to the key
// frame are included and hidden by an edit list. to is clipped to the last
// recorded frame and from to the first. A range that spans a gap still
// exports: the last frame before the gap stays on screen for the length
// of the gap, so the file's timeline matches the wall clock. It fails with
// a 400 *Error for a reversed or overlong range and a 404 *Error when the
// range holds no video. It reads the index and each segment's sample index
// (or its moofs, for segments without one).
func (s *Source) Export(ctx context.Context, camera, stream string, from, to time.Time) (*File, error) {
	sel, err := s.selectRange(ctx, camera, stream, from, to, "mp4")
	if err != nil {
		return nil, err
	}
	return buildExport(sel, s.Disks)
}

func buildExport(sel *selection, disks map[string]blob.Store) (*File, error) {
	f := &File{
		Name:        exportName(sel, "mp4"),
		ContentType: "video/mp4",
		From:        sel.from, To: sel.to,
		ETag:  sel.etag,
		disks: disks,
	}
	total, frags := 0, 0
	for j, x := range sel.segs {
		lo, hi := sel.bounds(j)
		total += hi - lo
		frags += int(x.samples[hi-1].frag-x.samples[lo].frag) + 1
	}
	m := &mp4.Movie{Samples: make([]mp4.MovieSample, 0, total), Chunks: make([]int, 0, frags)}
	type chunk struct {
		disk, key string
		off, n    int64
		from, to  time.Time // wall time of its samples
	}
	chunks := make([]chunk, 0, frags)
	// The file's timeline is the camera's media time within a run (frame
	// durations exactly as recorded, so players see the camera's steady
	// frame rate) and the wall clock across gaps between runs: the last
	// sample before a gap lasts until the next run starts. The file thus
	// lasts the wall-clock range to within the run's clock correction
	// (at most 500 ppm, docs/time.md).
	var outDTS, editStart, editEnd int64
	for j, x := range sel.segs {
		lo, hi := sel.bounds(j)
		if j > 0 {
			if gap := ticks(x.seg.Start.Sub(segEnd(sel.segs[j-1]))); gap > 0 && len(m.Samples) > 0 {
				// Up to 13 h (the largest sample duration); longer gaps shorten.
				last := &m.Samples[len(m.Samples)-1]
				add := min(gap, math.MaxUint32-int64(last.Dur90k))
				last.Dur90k += uint32(add)
				outDTS += add
			}
		}
		shift := outDTS - x.samples[lo].dts90k // output time minus segment-local time
		if j == 0 {
			editStart = x.samples[sel.shown].pts90k() + shift
		}
		if j == len(sel.segs)-1 {
			editEnd = sel.toPTS90k + shift
		}
		entry := -1
		for e, b := range m.Entries {
			if bytes.Equal(b, x.entry) {
				entry = e
			}
		}
		if entry < 0 {
			entry = len(m.Entries)
			m.Entries = append(m.Entries, x.entry)
			if m.Width == 0 {
				m.Width, m.Height = x.track.Width, x.track.Height
			}
		}
		if x.seg.Start.After(f.ModTime) {
			f.ModTime = x.seg.Start
		}
		for i := lo; i < hi; i++ {
			sm := &x.samples[i]
			m.Samples = append(m.Samples, mp4.MovieSample{Dur90k: sm.dur90k, Size: sm.size, CTSOffset90k: sm.cts90k,
				Key: sm.key, Entry: entry})
			outDTS += int64(sm.dur90k)
			// A chunk is a run of samples back to back in one fragment.
			end := toWall(&x.seg, sm.dts90k+int64(sm.dur90k))
			if l := len(chunks); i > lo && sm.frag == x.samples[i-1].frag && l > 0 &&
				chunks[l-1].key == x.seg.Key && chunks[l-1].off+chunks[l-1].n == sm.off {
				chunks[l-1].n += int64(sm.size)
				chunks[l-1].to = end
				m.Chunks[l-1]++
				continue
			}
			chunks = append(chunks, chunk{disk: x.seg.Disk, key: x.seg.Key, off: sm.off, n: int64(sm.size),
				from: toWall(&x.seg, sm.dts90k), to: end})
			m.Chunks = append(m.Chunks, 1)
		}
	}
	// An edit cannot start before the media (a negative media time means
	// an empty edit); only a camera whose key frames are shown before they
	// are decoded could get there.
	editStart = max(editStart, 0)
	m.EditMediaTime90k = editStart
	m.EditDur90k = editEnd - editStart
	if m.EditDur90k <= 0 {
		return nil, noVideo("no recorded video of %s/%s in range", sel.camera, sel.stream)
	}
	m.CreationTime = sel.from
	size, err := mp4.MovieHeaderSize(m)
	if err != nil {
		return nil, fmt.Errorf("export %s/%s: %w", sel.camera, sel.stream, err)
	}
	hdr, err := mp4.AppendMovieHeader(make([]byte, 0, size), m)
	if err != nil {
		return nil, fmt.Errorf("export %s/%s: %w", sel.camera, sel.stream, err)
	}
	f.addMem(hdr)
	for _, c := range chunks {
		f.addVideo(c.disk, c.key, c.off, c.n, c.from, c.to)
	}
	return f, nil
}

// exportName suggests a file name: camera, stream and the UTC range.
func exportName(sel *selection, ext string) string {
	const layout = "20060102T150405Z"
	return safeName(fmt.Sprintf("%s-%s-%s-%s.%s", sel.camera, sel.stream,
		sel.from.UTC().Format(layout), sel.to.UTC().Format(layout), ext))
}

// safeName replaces what a Content-Disposition file name must not hold.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '/' || r == '\\' || r > 0x7e {
			return '_'
		}
		return r
	}, name)
}
