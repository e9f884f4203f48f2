package playback

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/url"
	"time"
)

// HLSTarget90k is the media-segment length a playlist aims for: whole GOPs
// are grouped until they reach it, so every media segment starts with a
// key frame.
const HLSTarget90k = 4 * 90000

// Playlist is an HLS playlist with the range it covers.
type Playlist struct {
	Body     []byte
	From, To time.Time
	ETag     string
	// Closed is false when the range reaches the segment being written:
	// the playlist is then a snapshot (a later request sees more).
	Closed bool
}

// Playlist returns an HLS VOD playlist (version 7: fMP4 with EXT-X-MAP)
// for [from, to) of a camera's stream. Media segments are groups of whole
// GOPs of about HLSTarget90k, fetched from the segment endpoints by
// relative URLs (segments/{id}/init.mp4 and segments/{id}/frags.m4s, both
// with ?stream=), so the playlist must be served from
// /api/cameras/{name}/playback.m3u8. Each media segment carries
// EXT-X-PROGRAM-DATE-TIME so players show wall time; a gap between runs or
// a codec change is an EXT-X-DISCONTINUITY; EXT-X-START points at from
// precisely (media segments begin at key frames, up to a GOP earlier).
// Errors as Export.
func (s *Source) Playlist(ctx context.Context, camera, stream string, from, to time.Time) (*Playlist, error) {
	sel, err := s.selectRange(ctx, camera, stream, from, to, "hls")
	if err != nil {
		return nil, err
	}
	type mediaSeg struct {
		segID        int64
		first, n     int
		start        time.Time
		dur          time.Duration
		disc, newMap bool
	}
	var out []mediaSeg
	var entry []byte
	var prevEnd time.Time
	for j, x := range sel.segs {
		lo, hi := sel.bounds(j)
		first, end := int(x.samples[lo].frag), int(x.samples[hi-1].frag)+1
		newMap := !bytes.Equal(entry, x.entry)
		entry = x.entry
		disc := j > 0 && (newMap || x.seg.Start.Sub(prevEnd) > 100*time.Millisecond)
		for fi := first; fi < end; {
			// A media segment: from a fragment that starts with a key frame
			// until the target length is reached at the next one.
			g := fi
			var dur int64
			for fi < end && (fi == g || !x.samples[x.frags[fi].first].key || dur < HLSTarget90k) {
				dur += fragDur(x, fi)
				fi++
			}
			startW := toWall(&x.seg, x.frags[g].base90k)
			endW := toWall(&x.seg, x.frags[fi-1].base90k+fragDur(x, fi-1))
			out = append(out, mediaSeg{segID: x.seg.ID, first: g, n: fi - g, start: startW, dur: endW.Sub(startW),
				disc: disc && g == first, newMap: newMap && g == first})
		}
		prevEnd = segEnd(x)
	}
	target := 1.0
	for _, m := range out {
		target = max(target, math.Round(m.dur.Seconds()))
	}
	q := url.Values{"stream": {stream}}.Encode()
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", int(target))
	b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-START:TIME-OFFSET=%.3f,PRECISE=YES\n", max(0, sel.from.Sub(out[0].start).Seconds()))
	for _, m := range out {
		if m.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if m.newMap {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"segments/%d/init.mp4?%s\"\n", m.segID, q)
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", m.start.UTC().Format("2006-01-02T15:04:05.000Z"))
		fmt.Fprintf(&b, "#EXTINF:%.5f,\nsegments/%d/frags.m4s?%s&first=%d&n=%d\n", m.dur.Seconds(), m.segID, q, m.first, m.n)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	pl := &Playlist{Body: b.Bytes(), From: sel.from, To: sel.to, ETag: sel.etag, Closed: closed(sel.segs[len(sel.segs)-1])}
	return pl, nil
}
