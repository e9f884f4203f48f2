// Package ingest turns the RTP packets of an RTSP session into access units:
// per track it runs the codec's depacketizer (behind a reorder window for
// UDP), maps RTP time to the camera's NTP time from RTCP sender reports, and
// keeps the counters a probe or a recorder reports. It does no I/O.
package ingest

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtp/h264"
	"github.com/custos-nvr/custos/internal/rtp/h265"
	"github.com/custos-nvr/custos/internal/rtp/reorder"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// Frame is one access unit of a video track, with the camera's wall time
// when the camera sent RTCP sender reports.
type Frame struct {
	Track int
	Codec media.Codec
	media.AccessUnit
	// NTP is the camera's clock for this frame, derived from the latest
	// sender report; zero until the first report arrives.
	NTP time.Time
}

// TrackStats are a track's counters. Video tracks count access units;
// other tracks only packets and bytes.
type TrackStats struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	Frames      uint64 `json:"frames"`
	KeyFrames   uint64 `json:"key_frames"`
	LostPackets uint64 `json:"lost_packets"`
	BadPackets  uint64 `json:"bad_packets"`
	Dropped     uint64 `json:"dropped_frames"`
	// MinPTS90k and MaxPTS90k span the presentation times of the frames
	// (extended RTP time; the clock rate is the track's, 90 kHz for
	// video). With a constant frame rate, Frames should equal
	// (MaxPTS90k-MinPTS90k)/frame duration + 1: fewer means frames the
	// camera sent never arrived whole.
	MinPTS90k int64 `json:"min_pts90k,omitempty"`
	MaxPTS90k int64 `json:"max_pts90k,omitempty"`
}

type depacketizer interface {
	Push(*rtp.Packet) error
	Pull() (media.AccessUnit, bool)
	Stats() media.DepacketizerStats
}

type track struct {
	index     int
	codec     media.Codec
	clockRate uint32
	dp        depacketizer // nil for tracks that are only counted
	ro        *reorder.Buffer
	stats     TrackStats

	hasSR   bool
	srRTP   uint32
	srNTP   time.Time
	lastErr error
}

// Receiver implements rtsp.Handler. The rtsp client serialises its calls,
// so the frame callback runs on one goroutine at a time; Stats may be
// called concurrently from any goroutine.
type Receiver struct {
	mu      sync.Mutex
	tracks  map[int]*track
	onFrame func(*Frame)
	frame   Frame
}

// ReorderWindow is the number of packets a UDP track holds back to put
// reordered packets back in sequence.
const ReorderWindow = 64

// NewReceiver prepares depacketizers for the given tracks of desc. Video
// tracks (H.264, H.265) yield frames to onFrame; the *Frame is reused after
// the call returns, but its NALUs belong to the callee. Other tracks are
// counted. udp enables the reorder window. Unsupported video codecs are an
// error naming the codec.
func NewReceiver(desc rtsp.Description, tracks []int, udp bool, onFrame func(*Frame)) (*Receiver, error) {
	r := &Receiver{tracks: make(map[int]*track), onFrame: onFrame}
	for _, i := range tracks {
		if i < 0 || i >= len(desc.Tracks) {
			return nil, fmt.Errorf("no track %d", i)
		}
		dt := desc.Tracks[i]
		t := &track{index: i, codec: dt.Codec, clockRate: uint32(dt.ClockRate)}
		if t.clockRate == 0 {
			t.clockRate = 90000
		}
		switch dt.Codec {
		case media.CodecH264:
			t.dp = h264.NewDepacketizer(dt.Params)
		case media.CodecH265:
			t.dp = h265.NewDepacketizer(dt.Params)
		default:
			if dt.Media == "video" {
				return nil, fmt.Errorf("track %d: unsupported video codec %q", i, dt.Codec)
			}
		}
		if udp && t.dp != nil {
			t.ro = reorder.New(ReorderWindow)
		}
		r.tracks[i] = t
	}
	return r, nil
}

// SetTransport implements rtsp.TransportAware: the client calls it before
// the first packet of a session, so a session that fell back from TCP to
// UDP (461) gets the reorder window and one that fell back from UDP to TCP
// goes without it. A reorder window already in use is kept as it is.
func (r *Receiver) SetTransport(mode rtsp.TransportMode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		switch {
		case mode == rtsp.UDP && t.dp != nil && t.ro == nil:
			t.ro = reorder.New(ReorderWindow)
		case mode != rtsp.UDP && t.ro != nil && t.ro.Len() == 0:
			t.ro = nil
		}
	}
}

// HandleRTP implements rtsp.Handler.
func (r *Receiver) HandleRTP(idx int, pkt *rtp.Packet) {
	r.mu.Lock()
	t := r.tracks[idx]
	if t == nil {
		r.mu.Unlock()
		return
	}
	t.stats.Packets++
	t.stats.Bytes += uint64(len(pkt.Payload))
	if t.dp == nil {
		r.mu.Unlock()
		return
	}
	if t.ro == nil {
		r.push(t, pkt)
	} else {
		c := pkt.Clone()
		t.ro.Push(c)
		for {
			p, ok := t.ro.Pop()
			if !ok {
				break
			}
			r.push(t, p)
		}
	}
	r.mu.Unlock()
}

// push feeds one packet to the depacketizer and delivers finished frames.
// Called with r.mu held; the callback runs with it held too, which is what
// serialises Stats against the counters.
func (r *Receiver) push(t *track, pkt *rtp.Packet) {
	if err := t.dp.Push(pkt); err != nil {
		t.lastErr = err
	}
	for {
		au, ok := t.dp.Pull()
		if !ok {
			break
		}
		if t.stats.Frames == 0 || au.PTS90k < t.stats.MinPTS90k {
			t.stats.MinPTS90k = au.PTS90k
		}
		if t.stats.Frames == 0 || au.PTS90k > t.stats.MaxPTS90k {
			t.stats.MaxPTS90k = au.PTS90k
		}
		t.stats.Frames++
		if au.Key {
			t.stats.KeyFrames++
		}
		if r.onFrame == nil {
			continue
		}
		r.frame = Frame{Track: t.index, Codec: t.codec, AccessUnit: au}
		if t.hasSR {
			d := int64(int32(uint32(au.PTS90k) - t.srRTP))
			r.frame.NTP = t.srNTP.Add(time.Duration(d) * time.Second / time.Duration(t.clockRate))
		}
		r.onFrame(&r.frame)
	}
}

// HandleRTCP implements rtsp.Handler: sender reports anchor NTP time.
func (r *Receiver) HandleRTCP(idx int, pkts []rtcp.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[idx]
	if t == nil {
		return
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok && sr.NTPTime != 0 {
			t.hasSR = true
			t.srRTP = sr.RTPTime
			t.srNTP = rtsp.TimeFromNTP(sr.NTPTime)
		}
	}
}

// Stats returns the counters of track idx.
func (r *Receiver) Stats(idx int) TrackStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[idx]
	if t == nil {
		return TrackStats{}
	}
	s := t.stats
	if t.dp != nil {
		ds := t.dp.Stats()
		s.LostPackets = ds.LostPackets
		s.BadPackets = ds.BadPackets
		s.Dropped = ds.DroppedUnits
	}
	return s
}
