// Package recorder records camera streams: per stream a supervisor
// connects, writes segments (fragmented MP4 through a blob.Store, indexed
// in a store.Store) and reconnects with jittered backoff. See
// docs/storage.md for the write order and docs/time.md for wall time.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/store"
)

// Stream states reported by Status.
const (
	StateStarting     = "starting"
	StateRecording    = "recording"
	StateReconnecting = "reconnecting"
	StateStopped      = "stopped"
	StateError        = "error"
)

// Backoff bounds between reconnect attempts.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// StreamConfig is what a supervisor needs to record one stream.
type StreamConfig struct {
	Camera string // camera name: [a-z0-9_-], unique
	Stream string // "main" or "sub"
	// Client carries URL, credentials, transport and dialer.
	Client rtsp.ClientConfig
	// Disk receives the segment files; Index the rows.
	Disk  blob.Store
	Index store.Store
	// FsyncEvery is the power-loss window (default 10 s).
	FsyncEvery time.Duration
	Logger     *slog.Logger
	// Now is the local clock (default time.Now).
	Now func() time.Time
	// Mono is a monotonic clock (any origin) against which steps of Now
	// are measured (see runWriter.clockStepped). With the default Now it
	// is Go's monotonic clock; with an injected Now and no Mono, steps
	// are not looked for.
	Mono func() time.Duration
	// OnWriteError, when set, is told (without blocking) when writing to
	// storage failed, so retention can free space at once.
	OnWriteError func(error)
	// Live, when set, gets every frame after the recorder has taken it,
	// and a Reset at each new connection (live view: internal/live).
	Live LiveSink
	// NoFramesTimeout ends a session whose packets have made no frame for
	// this long (default 30 s).
	NoFramesTimeout time.Duration
	// Chain, when set, records each run start and each closed segment
	// (with its hashes) in the stream's hash chain (internal/evidence).
	// Its errors are the recorder's: the run ends as on an index error.
	Chain ChainRecorder
	// Sleep waits d or until ctx ends, between connection attempts
	// (default: a timer). Tests inject it, with Now, to run hours of
	// retries in simulated time.
	Sleep func(ctx context.Context, d time.Duration)
}

// ChainRecorder keeps a stream's hash chain (*evidence.Chains).
type ChainRecorder interface {
	RunStarted(ctx context.Context, camera, stream string, streamID int64, at time.Time) error
	SegmentClosed(ctx context.Context, camera, stream string, seg store.Segment, segHash, initHash [32]byte) error
}

// LiveSink receives the frames of a stream for live viewers. Publish is
// called on the ingest goroutine after the frame was recorded and must
// not block; it may keep f.NALUs (the recorder never modifies them) but
// not f.
type LiveSink interface {
	Publish(f *ingest.Frame)
	Reset()
}

// Status is a stream's state for the API.
type Status struct {
	Camera string `json:"camera"`
	Stream string `json:"stream"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Hint says what to fix when the camera refuses us for a reason that
	// retrying will not cure (state error): wrong credentials, no stream
	// at the URL's path, Basic refused over plain RTSP.
	Hint       string    `json:"hint,omitempty"`
	LastFrame  time.Time `json:"last_frame,omitzero"`
	BitrateBps int64     `json:"bitrate_bps"`
	Frames     int64     `json:"frames"`
	Reconnects int64     `json:"reconnects"`
}

// Supervisor records one stream until its context ends. Run blocks; Status
// may be called from any goroutine.
type Supervisor struct {
	cfg StreamConfig
	log *slog.Logger

	bytes      atomic.Int64
	frames     atomic.Int64
	lastFrameN atomic.Int64 // unix nanos of the last frame

	diskErr error // storage unusable: never record
	// away is kept across sessions while the storage is unavailable;
	// touched only by the session goroutine.
	away paused

	// Bitrate window, touched only by the frame callback; rate is what
	// Status reports.
	winStart time.Time
	winBytes int64
	rate     atomic.Int64

	mu         sync.Mutex
	state      string
	reason     string
	hint       string
	reconnects int64
}

// SetupError, given to NewSupervisor as its diskErr, is a reason other
// than storage why a stream cannot record (a stored camera password that
// cannot be decrypted); the stream reports it as it is.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// NewSupervisor validates cfg and returns a supervisor in state starting.
// diskErr, when not nil, says why the stream's storage is unusable: the
// supervisor then reports state error with that reason and records
// nothing, while the other streams go on.
func NewSupervisor(cfg StreamConfig, diskErr error) (*Supervisor, error) {
	if cfg.Index == nil {
		return nil, errors.New("recorder: an index is required")
	}
	if cfg.Disk == nil && diskErr == nil {
		return nil, errors.New("recorder: a disk is required")
	}
	if cfg.FsyncEvery <= 0 {
		cfg.FsyncEvery = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
		if cfg.Mono == nil {
			base := time.Now()
			cfg.Mono = func() time.Duration { return time.Since(base) }
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("camera", cfg.Camera, "stream", cfg.Stream)
	cfg.Client.Logger = log
	s := &Supervisor{cfg: cfg, log: log, state: StateStarting}
	if diskErr != nil {
		s.state, s.reason, s.diskErr = StateError, "storage unavailable: "+diskErr.Error(), diskErr
		var se *SetupError
		if errors.As(diskErr, &se) {
			s.reason = se.Err.Error()
		}
	}
	return s, nil
}

func (s *Supervisor) setState(state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.reason, s.hint = state, reason, ""
}

// Status reports the stream's state, bitrate (over the last full second of
// frames) and last frame time.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Camera: s.cfg.Camera, Stream: s.cfg.Stream, State: s.state, Reason: s.reason, Hint: s.hint,
		BitrateBps: s.rate.Load(), Frames: s.frames.Load(), Reconnects: s.reconnects}
	if n := s.lastFrameN.Load(); n != 0 {
		st.LastFrame = time.Unix(0, n)
	}
	if st.State != StateRecording {
		st.BitrateBps = 0
	}
	return st
}

// countFrame updates the counters for one recorded frame of size bytes.
// Called from the frame callback only.
func (s *Supervisor) countFrame(size int, now time.Time) {
	s.bytes.Add(int64(size))
	s.frames.Add(1)
	s.lastFrameN.Store(now.UnixNano())
	if s.winStart.IsZero() {
		s.winStart = now
	}
	s.winBytes += int64(size)
	if el := now.Sub(s.winStart); el >= time.Second {
		s.rate.Store(int64(float64(s.winBytes) * 8 / el.Seconds()))
		s.winStart, s.winBytes = now, 0
	}
}

// Run connects, records and reconnects until ctx ends. Each connection is
// a run; between runs the index shows a gap. A camera that refuses us in a
// way retrying cannot cure (see refusal) is shown in state error with a
// hint and retried after minutes, so a wrong password does not lock the
// camera's account; a new configuration makes a new Supervisor, which
// tries at once.
func (s *Supervisor) Run(ctx context.Context) {
	if s.diskErr != nil {
		<-ctx.Done()
		return
	}
	backoff := minBackoff
	refusals := 0 // consecutive refused sessions
	for ctx.Err() == nil {
		began := s.cfg.Now()
		err := s.session(ctx)
		if ctx.Err() != nil {
			break
		}
		var oe *net.OpError
		if s.cfg.Now().Sub(began) > maxBackoff || errors.As(err, &oe) && oe.Op == "dial" {
			// It recorded for a while, or the camera is simply not there
			// (a refused or timed-out connection costs nothing): retry
			// at the shortest interval so recording resumes within
			// about a second of the camera's return. Cameras that answer
			// but fail (bad streams, errors) back off up to 30 s.
			backoff = minBackoff
		}
		reason := s.redact(err.Error())
		hint := s.refusal(err)
		state, wait := StateReconnecting, backoff/2+time.Duration(rand.Int64N(int64(backoff/2)+1))
		if hint != "" {
			refusals++
			state, wait = StateError, refusedBackoff(refusals)
			wait -= time.Duration(rand.Int64N(int64(wait/10) + 1)) // up to 10 % early
		} else {
			refusals = 0
		}
		s.mu.Lock()
		repeat := s.state == state && s.reason == reason
		s.state, s.reason, s.hint = state, reason, hint
		s.reconnects++
		s.mu.Unlock()
		switch {
		case repeat:
			// The same failure again (a camera that is away): once is
			// enough at warning level.
			s.log.Debug("recorder: still failing", "err", reason, "retry_in", wait)
		case hint != "":
			s.log.Error("recorder: camera refused the session", "err", reason, "hint", hint, "retry_in", wait)
		default:
			s.log.Warn("recorder: stream interrupted", "err", reason, "retry_in", wait)
		}
		s.sleep(ctx, wait)
		if !(errors.As(err, &oe) && oe.Op == "dial") {
			backoff = min(backoff*2, maxBackoff)
		}
	}
	s.setState(StateStopped, "")
}

func (s *Supervisor) sleep(ctx context.Context, d time.Duration) {
	if s.cfg.Sleep != nil {
		s.cfg.Sleep(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// refusedBackoffs is the wait after the 1st, 2nd, 3rd and later
// consecutive refusals (wrong credentials, no such stream): a camera that
// locks an account after a few failed logins sees about a dozen in two
// hours, not hundreds.
var refusedBackoffs = [...]time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute}

func refusedBackoff(n int) time.Duration {
	return refusedBackoffs[min(n, len(refusedBackoffs))-1]
}

// refusal returns what the user must fix when err is a refusal that
// retrying will not cure, or "" for other failures: the camera rejected
// the credentials (401 after an answer, 403), has no stream at the path
// (404, 454), offers only Basic over plain RTSP, or redirected elsewhere
// and asked for the credentials we withheld there.
func (s *Supervisor) refusal(err error) string {
	var se *rtsp.StatusError
	switch {
	case errors.Is(err, rtsp.ErrBasicRefused):
		return "camera offers only Basic auth over unencrypted RTSP; set allow_basic_auth: true for camera " + s.cfg.Camera + " to allow it"
	case errors.Is(err, rtsp.ErrCredentialsWithheld):
		return "the camera redirected to another host and asked for the password there; it is not sent to another host: put that host in the camera's URL"
	case errors.Is(err, rtsp.ErrUnauthorized), errors.As(err, &se) && se.Code == 403:
		return "camera refused the credentials: check the camera's password in Settings"
	case errors.As(err, &se) && (se.Code == 404 || se.Code == 454):
		return "camera has no stream at this path: check the URL"
	}
	return ""
}

// session is one connection: it returns why it ended.
func (s *Supervisor) session(ctx context.Context) error {
	c, err := rtsp.Dial(ctx, s.cfg.Client)
	if err != nil {
		return err
	}
	defer c.Close()
	desc := c.Description()
	video := -1
	for i, t := range desc.Tracks {
		if t.Codec.IsVideo() {
			video = i
			break
		}
	}
	if video < 0 {
		return rtsp.ErrNoVideo
	}
	st, err := s.cfg.Index.Stream(ctx, s.cfg.Camera, s.cfg.Stream)
	if err != nil {
		return fmt.Errorf("index stream: %w", err)
	}
	newRun := func() *runWriter {
		return &runWriter{ctx: context.WithoutCancel(ctx), disk: s.cfg.Disk, idx: s.cfg.Index, chain: s.cfg.Chain, camera: s.cfg.Camera,
			stream: s.cfg.Stream, codec: desc.Tracks[video].Codec, fsyncEvery: s.cfg.FsyncEvery,
			phase: stagger(s.cfg.Camera, s.cfg.Stream), streamID: st.ID}
	}
	// rw is nil while the storage is unavailable (a disk unmounted or a
	// directory removed under the running server): the session goes on
	// for live viewers, and recording resumes with a new run when the
	// storage returns (see pause and resume).
	var rw *runWriter
	if err := blob.Check(s.cfg.Disk); err != nil {
		s.pause(err)
	} else {
		rw = newRun()
	}
	p := &s.away
	s.winStart, s.winBytes = time.Time{}, 0
	failed := make(chan error, 1)
	var frameErr error
	var lastFrame atomic.Int64 // s.elapsed() at this session's last frame
	lastFrame.Store(int64(s.elapsed()))
	var prevWall time.Time // wall and monotonic time of the previous frame
	var prevMono time.Duration
	rcv, err := ingest.NewReceiver(desc, []int{video}, s.cfg.Client.Transport == rtsp.UDP, func(f *ingest.Frame) {
		if frameErr != nil {
			return
		}
		now := s.cfg.Now()
		if s.cfg.Mono != nil {
			mono := s.cfg.Mono()
			if !prevWall.IsZero() && rw != nil {
				// Wall time without its monotonic reading, or Sub
				// would use the latter and never see a step.
				if step := now.Round(0).Sub(prevWall) - (mono - prevMono); step >= ClockStep || step <= -ClockStep {
					s.log.Warn("recorder: the local clock stepped; a new run starts at the next key frame", "step", step)
					rw.clockStepped(step)
				}
			}
			prevWall, prevMono = now.Round(0), mono
		}
		if rw == nil && s.resume(p, st, now) {
			rw = newRun()
		}
		if rw != nil {
			if err := rw.Frame(f, now); err != nil {
				derr := blob.Check(s.cfg.Disk)
				if derr == nil {
					frameErr = err
					failed <- err
					return
				}
				// The storage went away: end the run (closing what can
				// be closed) and keep the session for live view.
				if cerr := rw.Close("storage unavailable: "+derr.Error(), now); cerr != nil {
					s.log.Warn("recorder: the run cut by the storage loss could not be closed; its segment is finished when the storage returns", "err", cerr)
				}
				p.stranded = rw.stranded
				rw = nil
				s.pause(derr)
			} else {
				s.countFrame(f.Size(), now)
			}
		}
		lastFrame.Store(int64(s.elapsed()))
		if s.cfg.Live != nil {
			s.cfg.Live.Publish(f)
		}
	})
	if err != nil {
		return err
	}
	if s.cfg.Live != nil {
		s.cfg.Live.Reset() // a new connection: new timing, perhaps new parameters
	}
	// rw belongs to the frame callback once Play starts it.
	recording := rw != nil
	if err := c.Play(ctx, []int{video}, rcv); err != nil {
		return err
	}
	if recording {
		s.setState(StateRecording, "")
		s.log.Info("recorder: recording", "transport", c.Transport())
	}
	var why error
	// Packets that never make a frame (a camera sending garbage, a
	// stream lost until a key frame that never comes) end the session
	// after noFramesTimeout, as silence does: a new session often heals it.
	noFrames := s.cfg.NoFramesTimeout
	if noFrames <= 0 {
		noFrames = noFramesTimeout
	}
	watchdog := time.NewTicker(min(time.Second, noFrames/4))
	defer watchdog.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			why = ctx.Err()
		case err := <-failed:
			why = err
		case <-c.Done():
			why = c.Wait()
			if why == nil {
				why = errors.New("camera ended the session")
			}
		case <-watchdog.C:
			if s.elapsed()-time.Duration(lastFrame.Load()) < noFrames {
				continue
			}
			why = fmt.Errorf("no usable video for %s: packets arrive but make no frame (corrupted or lost data)", noFrames)
		}
		break wait
	}
	c.Close() // no frame callback runs after this returns
	reason := "stopped"
	if ctx.Err() == nil {
		reason = s.redact(why.Error())
	}
	if rw == nil {
		return why
	}
	if rw.skipped > 0 {
		s.log.Info("recorder: frames before the run's first decodable key frame were not recorded", "frames", rw.skipped)
	}
	cerr := rw.Close(reason, s.cfg.Now())
	if frameErr != nil && !errors.Is(frameErr, errDiscontinuity) && s.cfg.OnWriteError != nil {
		// After Close, so the segment that hit the error is closed and
		// retention may delete it if it must.
		s.cfg.OnWriteError(frameErr)
	}
	if cerr != nil {
		return errors.Join(why, cerr)
	}
	return why
}

// elapsed is the clock the watchdog measures silence with: the monotonic
// clock when there is one, so a step of the wall clock is not mistaken for
// minutes without frames.
func (s *Supervisor) elapsed() time.Duration {
	if s.cfg.Mono != nil {
		return s.cfg.Mono()
	}
	return time.Duration(s.cfg.Now().UnixNano())
}

// ClockStep is the smallest jump of the local wall clock, against the
// monotonic clock between two frames, that ends a run (docs/time.md).
// Smaller differences are left to the 500 ppm steering.
const ClockStep = time.Second

// noFramesTimeout ends a session whose packets yield no frame. Long
// enough for cameras whose key frames come 20 s apart ("smart" codecs):
// the first frame of a session waits for one.
const noFramesTimeout = 30 * time.Second

// redact removes the camera's password from a message, whatever shape the
// message has, before it reaches a log line, the index or the API.
func (s *Supervisor) redact(msg string) string {
	msg = rtsp.RedactURL(msg)
	pws := []string{s.cfg.Client.Password}
	if u, err := url.Parse(s.cfg.Client.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			pws = append(pws, p)
		}
	}
	for _, p := range pws {
		if len(p) >= 3 {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// paused is what a session keeps while its storage is unavailable.
type paused struct {
	// stranded is the segment the lost storage left in state writing.
	stranded *store.Segment
	// lastTry is when resume last looked at the storage.
	lastTry time.Time
}

// pause reports that recording stopped because the storage is unavailable
// (err names why); the session stays up for live viewers.
func (s *Supervisor) pause(err error) {
	reason := "recording paused, live view goes on: " + err.Error()
	s.mu.Lock()
	changed := s.reason != reason
	s.state, s.reason, s.hint = StateError, reason, ""
	s.mu.Unlock()
	if changed {
		s.log.Error("recorder: storage unavailable; recording paused until it returns", "err", err)
	}
}

// resume reports whether recording can start again: it looks at the
// storage at most once a second and, when it is back, first finishes the
// segment the loss left open (as crash recovery does: complete fragments
// kept and hashed, a torn tail cut, or the deletion recorded when the file
// is gone). Called on the ingest goroutine.
func (s *Supervisor) resume(p *paused, st store.Stream, now time.Time) bool {
	if !p.lastTry.IsZero() && now.Sub(p.lastTry) < time.Second && now.Sub(p.lastTry) >= 0 {
		return false
	}
	p.lastTry = now
	if err := blob.Check(s.cfg.Disk); err != nil {
		s.pause(err)
		return false
	}
	if p.stranded != nil {
		rc, _ := s.cfg.Chain.(RecoveryChain)
		seg := p.stranded
		if err := recoverSegment(context.Background(), s.cfg.Index, s.cfg.Disk, seg, st, rc); err != nil {
			// The row stays in state writing; the next start's
			// recovery tries again.
			s.log.Error("recorder: finishing the segment the storage loss left open", "key", seg.Key, "err", err)
		} else {
			s.log.Info("recorder: finished the segment the storage loss left open", "key", seg.Key,
				"bytes", seg.Bytes, "frames", seg.Frames)
		}
		p.stranded = nil
	}
	s.setState(StateRecording, "")
	s.log.Info("recorder: storage is back; recording resumes at the next key frame")
	return true
}
