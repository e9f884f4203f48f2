// Package live fans the access units of one camera stream out to live
// viewers as fragmented MP4 (an init segment, then one moof+mdat per
// frame), with a bounded queue and a drop counter per viewer, and serves
// them to browsers as MSE over WebSocket.
//
// The recorder's ingest goroutine calls Hub.Publish for every frame; the
// hub never blocks it. Viewers (Hub.Subscribe) start with the init segment
// and the cached group of pictures from its key frame, so the first
// picture shows at once, then get every frame as soon as it is published.
//
// Fragments carry decode times on the hub's own 90 kHz timeline, which
// starts at 0 with the hub's first frame and goes on, never backwards,
// across Resets; one fragment's bytes are shared by all viewers. A viewer
// joining later therefore starts at a later media time, and a browser must
// seek into the buffered range: PlayerJS (player.js, served by the caller)
// does that, follows the live edge, and reconnects.
//
// For WebRTC (ServeWHEP, webrtc.go), SubscribeFrames hands out the same
// frames as H.264/H.265 access units in Annex B instead of fragments.
package live

import (
	"bytes"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
)

// Defaults and bounds.
const (
	// DefaultQueueBytes bounds a viewer's queue when HubOptions.QueueBytes
	// is zero.
	DefaultQueueBytes = 8 << 20
	// maxGOPBytes and maxGOPFrames bound the cached group of pictures;
	// a longer GOP is not cached (viewers then start at the next key
	// frame).
	maxGOPBytes  = 8 << 20
	maxGOPFrames = 300
	// defaultStep90k is the frame duration assumed before one is known
	// (25 fps).
	defaultStep90k = 3600
	// maxPendingBytes bounds a picture being assembled from units that
	// share one timestamp.
	maxPendingBytes = 16 << 20
)

// HubOptions configure a Hub.
type HubOptions struct {
	// Camera and Stream name the stream in logs.
	Camera, Stream string
	// QueueBytes bounds each viewer's queue (default 8 MiB). A viewer
	// whose queue is full misses frames: its queue is cleared and it
	// resumes at the next key frame (jump to live edge). The cached GOP
	// is bounded by the smaller of QueueBytes and 8 MiB.
	QueueBytes int
	// Logger receives warnings (unusable parameter sets, discontinuities);
	// nil discards them.
	Logger *slog.Logger
}

// Hub is the live fan-out of one stream. Publish, Reset and Close are for
// the stream's ingest goroutine (one at a time); Subscribe, Viewers and
// Stats may be called from any goroutine. No method blocks on a viewer.
type Hub struct {
	log        *slog.Logger
	queueBytes int
	gopCap     int

	mu      sync.Mutex
	closed  bool
	viewers []*Viewer
	// frameViewers get access units in Annex B (SubscribeFrames, for
	// WebRTC); whep is the registry of WebRTC sessions (ServeWHEP).
	frameViewers []*FrameViewer
	whep         whepSessions

	// The track in force, and its init message (zero Data until the first
	// usable frame of a run).
	codec    media.Codec
	params   media.ParamSets
	init     Message
	badParam media.ParamSets // last parameter sets that failed, logged once

	// Timing of the current run (see timing.go).
	tm timing
	// coalesce is set once the camera sent a picture in several units
	// with one timestamp (see timing).
	coalesce bool
	// end90k is where the timeline continues: the last emitted frame's
	// decode time plus its duration.
	end90k  int64
	lastDur int64

	// gop is the cached group of pictures, from its key frame, in decode
	// order; gopOK is false when there is none (none yet, or too long).
	gop      []entry
	gopOK    bool
	gopBytes int

	seq     uint32 // mfhd sequence number of the last fragment
	scratch []byte // sample data of the frame being emitted
	stats   Stats
	lat     latencyHist
	sentLat latencyHist // Publish to written to a WebSocket (ServeMSE)
	gone    int         // frames dropped by viewers that have closed
}

// entry is one frame: its NAL units (retained, never modified) and times.
type entry struct {
	nalus     [][]byte
	sample    []byte // the frame as an MP4 sample when its depacketizer laid it out (media.AccessUnit.Sample)
	params    media.ParamSets
	codec     media.Codec
	key       bool
	pts       int64 // camera presentation time
	dts       int64 // decode time on the hub's timeline
	cts       int32 // presentation minus decode time
	size      int   // approximate sample size (NAL units plus length prefixes)
	published time.Time
}

// NewHub returns a hub without viewers. It starts no goroutine.
func NewHub(o HubOptions) *Hub {
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		log:        o.Logger.With("camera", o.Camera, "stream", o.Stream),
		queueBytes: o.QueueBytes,
		gopCap:     min(o.QueueBytes, maxGOPBytes),
	}
}

// Publish hands the hub one access unit, in decode order, from the
// recorder's ingest goroutine. It never blocks on a viewer and never fails
// the caller: frames the hub cannot use (before the first key frame of a
// run, with unusable parameter sets, of a codec other than H.264 or H.265)
// are skipped. It retains f.NALUs and f.Sample, which the caller must not modify
// afterwards, but not f itself. With no viewers it only keeps the current
// GOP. Not safe for concurrent use with itself, Reset or Close.
func (h *Hub) Publish(f *ingest.Frame) {
	now := time.Now()
	size := 0
	for _, n := range f.NALUs {
		size += 4 + len(n)
	}
	e := entry{nalus: f.NALUs, sample: f.Sample, params: f.Params, codec: f.Codec, key: f.Key, pts: f.PTS90k, size: size, published: now}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.stats.Published++
	if !f.Codec.IsVideo() {
		h.stats.Skipped++
		return
	}
	h.tm.push(h, &e)
}

// Reset forgets the cached GOP and the timing of the run (the camera
// reconnected, or its timestamps jumped). Viewers keep what they have
// queued, get a fresh init segment with the next usable frame and
// continue at the next key frame, on a timeline that goes on after the
// last frame they got. It does not block on viewers.
func (h *Hub) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tm.flush(h)
	h.tm = timing{}
	h.clearGOP()
	h.codec, h.params, h.init = "", media.ParamSets{}, Message{}
	for _, v := range h.viewers {
		v.resync()
	}
	for _, v := range h.frameViewers {
		v.resync()
	}
	h.stats.Resets++
}

// Codec returns the RFC 6381 codecs parameter of the track in force (e.g.
// "avc1.640028"), which a browser checks with MediaSource.isTypeSupported,
// or "" before the first usable frame of a run. Safe for concurrent use.
func (h *Hub) Codec() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.init.Codec
}

// Subscribe adds a viewer. Its first messages are the init segment and,
// when the hub has one cached, the current GOP from its key frame as one
// fragment; then every frame published afterwards, each as its own
// fragment. When no GOP is cached it waits for the next key frame. After
// Close it returns a viewer whose Next reports ErrClosed. Safe for
// concurrent use; the GOP fragment is built without holding up Publish.
func (h *Hub) Subscribe() *Viewer {
	v := newViewer(h, h.queueBytes)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		v.shut()
		return v
	}
	init := h.init
	var gop []entry
	if init.Data != nil && h.gopOK && len(h.gop) > 0 {
		gop = slices.Clone(h.gop)
	}
	lastDur, seq := h.lastDur, h.seq
	v.needKey = gop == nil
	h.viewers = append(h.viewers, v)
	h.stats.Subscribed++
	h.mu.Unlock()

	var head []Message
	if init.Data != nil {
		head = append(head, init)
	}
	if gop != nil {
		head = append(head, buildGOP(gop, lastDur, seq))
	}
	v.prepend(head)
	return v
}

// Viewers returns the number of subscribed viewers.
func (h *Hub) Viewers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.viewers)
}

// Close ends every viewer (their Next returns ErrClosed) and makes later
// Publish calls no-ops and later Subscribe calls return closed viewers.
func (h *Hub) Close() {
	h.mu.Lock()
	vs, fvs := h.viewers, h.frameViewers
	h.viewers, h.frameViewers, h.closed = nil, nil, true
	h.clearGOP()
	h.mu.Unlock()
	for _, v := range vs {
		v.shut()
	}
	for _, v := range fvs {
		v.shut()
	}
}

func (h *Hub) remove(v *Viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.viewers, v); i >= 0 {
		last := len(h.viewers) - 1
		h.viewers[i] = h.viewers[last]
		h.viewers[last] = nil
		h.viewers = h.viewers[:last]
		h.gone += v.Dropped()
	}
}

func (h *Hub) clearGOP() {
	clear(h.gop)
	h.gop, h.gopOK, h.gopBytes = h.gop[:0], false, 0
}

// useTrack makes e's parameter sets the track in force, building a new
// init segment and handing it to the viewers when they changed. It reports
// false when they are unusable (the frame is then skipped). h.mu is held.
func (h *Hub) useTrack(e *entry) bool {
	if h.init.Data != nil && e.codec == h.codec && sameParams(e.params, h.params) {
		return true
	}
	msg, err := initMessage(e.codec, e.params)
	if err != nil {
		if !sameParams(e.params, h.badParam) {
			h.badParam = e.params
			h.log.Warn("live: unusable parameter sets; frames skipped", "err", err)
		}
		h.stats.Skipped++
		return false
	}
	h.codec, h.params, h.init = e.codec, e.params, msg
	h.clearGOP()
	for _, v := range h.viewers {
		v.pushInit(msg)
	}
	return true
}

// emit caches e in the GOP and queues it, as a fragment of its own, for
// every viewer; dur90k is its duration, a guess when the next frame is not
// known yet. h.mu is held.
func (h *Hub) emit(e *entry, dur90k int64) {
	if e.key {
		h.clearGOP()
		h.gopOK = true
	}
	if h.gopOK {
		if len(h.gop) >= maxGOPFrames || h.gopBytes+e.size > h.gopCap {
			h.clearGOP()
		} else {
			h.gop = append(h.gop, *e)
			h.gopBytes += e.size
		}
	}
	h.end90k, h.lastDur = e.dts+dur90k, dur90k
	h.stats.Frames++
	h.stats.Bytes += uint64(e.size)
	h.seq++
	if len(h.frameViewers) > 0 {
		h.pushFrames(e, dur90k)
	}
	if len(h.viewers) == 0 {
		return
	}

	sample := e.sample
	if sample == nil {
		h.scratch = mp4.AppendSampleData(h.scratch[:0], e.nalus)
		sample = h.scratch
	}
	s := [1]mp4.Sample{{Dur90k: uint32(dur90k), Size: uint32(len(sample)), Key: e.key, CTSOffset90k: e.cts}}
	data := make([]byte, 0, fragmentOverhead+len(sample))
	data = mp4.AppendFragmentHeader(data, h.seq, uint64(e.dts), s[:], len(sample))
	data = append(data, sample...)
	if cap(h.scratch) > 4<<20 {
		h.scratch = nil // do not keep a rare huge frame's buffer
	}
	msg := Message{Data: data, Key: e.key, PTS90k: e.dts + int64(e.cts), DTS90k: e.dts, CameraPTS90k: e.pts, Frames: 1,
		Published: e.published}
	for _, v := range h.viewers {
		if !v.pushFrame(msg) {
			h.stats.Overflows++
		}
	}
	h.stats.Fragments++
	h.stats.FragmentBytes += uint64(len(data))
	h.lat.add(time.Since(e.published))
}

// fragmentOverhead is the size of a one-sample fragment's moof and mdat
// header.
const fragmentOverhead = 8 + 16 + 8 + 16 + 20 + 20 + 16 + 8

// buildGOP returns the cached GOP as one fragment. Its durations are the
// steps between decode times, the last one lastDur90k.
func buildGOP(gop []entry, lastDur90k int64, seq uint32) Message {
	n := 0
	for i := range gop {
		n += gop[i].size
	}
	samples := make([]mp4.Sample, len(gop))
	data := make([]byte, 0, n)
	for i := range gop {
		e := &gop[i]
		start := len(data)
		if e.sample != nil {
			data = append(data, e.sample...)
		} else {
			data = mp4.AppendSampleData(data, e.nalus)
		}
		dur := lastDur90k
		if i+1 < len(gop) {
			dur = gop[i+1].dts - e.dts
		}
		samples[i] = mp4.Sample{Dur90k: uint32(dur), Size: uint32(len(data) - start), Key: e.key, CTSOffset90k: e.cts}
	}
	out := make([]byte, 0, 64+16*len(samples)+len(data))
	out = mp4.AppendFragmentHeader(out, seq, uint64(gop[0].dts), samples, len(data))
	out = append(out, data...)
	return Message{Data: out, Key: true, PTS90k: gop[0].dts + int64(gop[0].cts), DTS90k: gop[0].dts,
		CameraPTS90k: gop[0].pts, Frames: len(gop)}
}

func sameParams(a, b media.ParamSets) bool {
	return bytes.Equal(a.SPS, b.SPS) && bytes.Equal(a.PPS, b.PPS) && bytes.Equal(a.VPS, b.VPS)
}

// noteSent records that a live frame published at t has been written to a
// viewer's connection.
func (h *Hub) noteSent(t time.Time) {
	d := time.Since(t)
	h.mu.Lock()
	h.sentLat.add(d)
	h.mu.Unlock()
}
