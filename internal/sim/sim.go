// Package sim is Custos's camera simulator: an RTSP server that serves N
// cameras from small fixtures embedded in the binary, looping forever with
// continuous RTP timestamps and sequence numbers, paced in real time or
// faster. Packets are prepared once at start and shared by every session;
// a session only stamps sequence number, timestamp and SSRC as it sends.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// Options configure a simulator.
type Options struct {
	// Cameras is the number of cameras, served at /cam1 … /camN (main
	// stream) and /camK/sub (sub-stream). Must be ≥ 1.
	Cameras int
	// Codec of the main streams: media.CodecH264 (default) or
	// media.CodecH265. Sub-streams are always H.264, as on most cameras.
	Codec media.Codec
	// Speed multiplies the pace: 1 is real time, 10 sends ten seconds of
	// video per second. Timestamps stay those of real-time video.
	Speed float64
	// User and Pass, when set, require Digest authentication.
	User, Pass string
	// RefuseTCP makes the cameras answer SETUP for TCP interleaved with
	// 461 Unsupported Transport: they serve UDP only.
	RefuseTCP bool
	// Logger for session events; nil discards.
	Logger *slog.Logger
	// Now and Sleep pace the streams (defaults: time.Now, a timer); tests
	// may inject them.
	Now func() time.Time
	// Garble, when set, is a fault injector for tests: each RTP packet of
	// frame n on path (its timestamp set) is replaced by the packets it
	// returns (none drops it), which get consecutive sequence numbers. It
	// is called from the session's goroutine and may keep nothing it is
	// given.
	Garble func(path string, n int, pkt []byte) [][]byte
}

// Sim is a running simulator. Create it with New, serve with Serve, stop
// with Close. Safe for concurrent use.
type Sim struct {
	opts Options
	main *clip
	sub  *clip
	srv  *rtsp.Server
}

// New loads and packetizes the fixtures. It does no network I/O.
func New(opts Options) (*Sim, error) {
	if opts.Cameras < 1 {
		return nil, fmt.Errorf("sim: cameras must be at least 1, got %d", opts.Cameras)
	}
	if opts.Speed == 0 {
		opts.Speed = 1
	}
	if opts.Speed < 0.01 || opts.Speed > 1000 {
		return nil, fmt.Errorf("sim: speed %g out of range 0.01..1000", opts.Speed)
	}
	if opts.Codec == "" {
		opts.Codec = media.CodecH264
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if (opts.User == "") != (opts.Pass == "") {
		return nil, fmt.Errorf("sim: --user and --pass go together")
	}
	s := &Sim{opts: opts}
	var err error
	switch opts.Codec {
	case media.CodecH264:
		s.main, err = loadClip("main.h264", media.CodecH264)
	case media.CodecH265:
		s.main, err = loadClip("main.h265", media.CodecH265)
	default:
		return nil, fmt.Errorf("sim: codec %q not supported (h264 or h265)", opts.Codec)
	}
	if err != nil {
		return nil, err
	}
	if s.sub, err = loadClip("sub.h264", media.CodecH264); err != nil {
		return nil, err
	}
	s.srv = &rtsp.Server{Mount: s.mount, Logger: opts.Logger, ServerName: "Custos simulator", RefuseTCP: opts.RefuseTCP}
	if opts.User != "" {
		s.srv.Auth = rtsp.NewDigestServer("Custos simulator", opts.User, opts.Pass)
	}
	return s, nil
}

// Serve accepts RTSP clients on ln until Close; it blocks.
func (s *Sim) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Close ends every session and waits for them.
func (s *Sim) Close() error { return s.srv.Close() }

// StreamInfo describes one simulated stream, for probes and tests.
type StreamInfo struct {
	Path          string
	Codec         media.Codec
	Width, Height int
	FPS           int
	LoopFrames    int
	BitrateBps    int
}

// Streams lists camera 1's main and sub streams (all cameras are alike).
// Each camera also serves /camN/switch (H.264 only): the main stream's
// clip and the sub-stream's in turn, changing the parameter sets (and the
// resolution) every loop.
func (s *Sim) Streams() []StreamInfo {
	info := func(path string, c *clip) StreamInfo {
		secs := float64(len(c.frames)) / FixtureFPS
		return StreamInfo{Path: path, Codec: c.codec, Width: c.width, Height: c.height, FPS: FixtureFPS,
			LoopFrames: len(c.frames), BitrateBps: int(float64(c.bytes*8) / secs)}
	}
	return []StreamInfo{info("cam1", s.main), info("cam1/sub", s.sub)}
}

func (s *Sim) mount(path string) (rtsp.Stream, error) {
	cam, sub, sw := path, false, false
	if p, ok := strings.CutSuffix(path, "/sub"); ok {
		cam, sub = p, true
	} else if p, ok := strings.CutSuffix(path, "/switch"); ok {
		cam, sw = p, true
	}
	n, ok := strings.CutPrefix(cam, "cam")
	if !ok {
		return nil, rtsp.ErrNotFound
	}
	k, err := strconv.Atoi(n)
	if err != nil || k < 1 || k > s.opts.Cameras || strconv.Itoa(k) != n {
		return nil, rtsp.ErrNotFound
	}
	c := s.main
	if sub {
		c = s.sub
	}
	st := &stream{sim: s, clip: c, name: path}
	if sw {
		if s.main.codec != s.sub.codec {
			return nil, rtsp.ErrNotFound
		}
		st.next = s.sub
	}
	return st, nil
}

// stream is one camera stream as seen by one RTSP session.
type stream struct {
	sim  *Sim
	clip *clip
	name string
	// next, when set, alternates with clip at every loop (/camN/switch:
	// the main stream's parameters, then the sub-stream's, and so on, as
	// a camera whose resolution is changed while it streams).
	next *clip
}

func (st *stream) SDP() []byte {
	var sb strings.Builder
	sb.WriteString("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n")
	fmt.Fprintf(&sb, "s=Custos simulated camera %s\r\n", st.name)
	sb.WriteString("c=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n")
	sb.WriteString(st.clip.sdp)
	sb.WriteString("a=control:trackID=0\r\n")
	return []byte(sb.String())
}

// Play loops the clip from its first frame. Frame n of the session is sent
// at start + n·40 ms / speed with RTP timestamp base + n·3600, so the loop
// point has no discontinuity in timestamps or sequence numbers. A session
// that falls more than a second behind its schedule is rebased rather than
// sent in a burst.
func (st *stream) Play(ctx context.Context, tracks []int, w rtsp.PacketWriter) error {
	var rb [6]byte
	rand.Read(rb[:])
	seq := binary.BigEndian.Uint16(rb[0:2])
	tsBase := binary.BigEndian.Uint32(rb[2:6])
	cur, other := st.clip, st.next
	frames, pos := cur.frames, 0
	frameDur := time.Duration(float64(time.Second) / FixtureFPS / st.sim.opts.Speed)
	start := st.sim.opts.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	scratch := make([]byte, 0, 1500)
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * frameDur)
		wait := due.Sub(st.sim.opts.Now())
		if wait < -time.Second {
			// More than a second behind (an overloaded machine or a slow
			// client): rebase instead of bursting, as a camera would.
			start = start.Add(-wait)
			wait = 0
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		if pos == len(frames) {
			pos = 0
			if other != nil {
				cur, other = other, cur
				frames = cur.frames
			}
		}
		fr := &frames[pos]
		pos++
		ts := tsBase + uint32(n)*FixtureFrameDur90k
		for _, pkt := range fr.packets {
			scratch = append(scratch[:0], pkt...)
			stamp(scratch, seq, ts)
			seq++
			if g := st.sim.opts.Garble; g != nil {
				seq-- // the packets sent get the sequence numbers
				for _, p := range g(st.name, n, scratch) {
					if len(p) >= 4 {
						binary.BigEndian.PutUint16(p[2:4], seq)
					}
					seq++
					if err := w.WriteRTP(0, p); err != nil {
						return err
					}
				}
				continue
			}
			if err := w.WriteRTP(0, scratch); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
