// Package probe describes a camera: it connects with the RTSP client,
// reads the session description and, optionally, receives media for a while
// and counts what arrived. It is what "custos probe" prints and what the
// settings UI shows before a camera is saved.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// Options for Run.
type Options struct {
	// Client is the RTSP client configuration (URL, credentials,
	// transport, dialer, logger).
	Client rtsp.ClientConfig
	// Duration, when positive, receives media for this long and counts it.
	Duration time.Duration
	// OnFrame, when set, receives every video frame while receiving (on
	// the client's reader goroutine; the *Frame is reused after return).
	OnFrame func(*ingest.Frame)
	// Dump, when set, receives the first video track's access units as an
	// Annex B elementary stream (parameter sets repeated before each key
	// frame), which ffmpeg and ffplay read directly.
	Dump io.Writer
}

// Result is the JSON document "custos probe" prints.
type Result struct {
	URL       string  `json:"url"`
	Server    string  `json:"server,omitempty"`
	Transport string  `json:"transport"`
	Tracks    []Track `json:"tracks"`
	// Seconds is how long media was received (absent without --seconds).
	Seconds float64 `json:"seconds,omitempty"`
}

// Track describes one media section of the camera's description.
type Track struct {
	Index     int         `json:"index"`
	Media     string      `json:"media"`
	Codec     media.Codec `json:"codec"`
	Control   string      `json:"control"`
	Profile   string      `json:"profile,omitempty"`
	Width     int         `json:"width,omitempty"`
	Height    int         `json:"height,omitempty"`
	FPS       float64     `json:"fps,omitempty"`
	ClockRate int         `json:"clock_rate,omitempty"`
	Channels  int         `json:"channels,omitempty"`
	// Ignored says why a track is not received (ONVIF metadata, unknown).
	Ignored string `json:"ignored,omitempty"`
	// Received is present when media was received.
	Received *ingest.TrackStats `json:"received,omitempty"`
}

// Run probes the camera. It blocks for the connection plus Duration and
// returns an error classified by Describe when the camera cannot be used.
func Run(ctx context.Context, opts Options) (*Result, error) {
	c, err := rtsp.Dial(ctx, opts.Client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	desc := c.Description()
	res := &Result{URL: c.URL(), Server: c.Server(), Transport: string(c.Transport())}
	var play []int
	hasVideo := false
	var unsupported []string
	for i, t := range desc.Tracks {
		tr := Track{Index: i, Media: t.Media, Codec: t.Codec, Control: rtsp.RedactURL(t.Control), ClockRate: t.ClockRate, Channels: t.Channels}
		switch {
		case t.Codec.IsVideo():
			hasVideo = true
			describeVideo(&tr, t.Codec, t.Params)
			if tr.FPS == 0 && t.Framerate > 0 {
				tr.FPS = t.Framerate
			}
			play = append(play, i)
		case t.Codec == media.CodecMetadata:
			tr.Ignored = "ONVIF metadata track"
		case t.Media == "video":
			tr.Ignored = "unsupported video codec"
			unsupported = append(unsupported, string(t.Codec))
		case t.Media == "audio":
			play = append(play, i) // carried and counted; recorded later
		default:
			tr.Ignored = "not audio or video"
		}
		res.Tracks = append(res.Tracks, tr)
	}
	if !hasVideo {
		if len(unsupported) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, strings.Join(unsupported, ", "))
		}
		return nil, rtsp.ErrNoVideo
	}
	if opts.Duration <= 0 {
		return res, nil
	}
	dumpTrack := -1
	for _, i := range play {
		if desc.Tracks[i].Codec.IsVideo() {
			dumpTrack = i
			break
		}
	}
	var dumpBuf []byte
	var dumpErr error
	rcv, err := ingest.NewReceiver(desc, play, opts.Client.Transport == rtsp.UDP, func(f *ingest.Frame) {
		if opts.OnFrame != nil {
			opts.OnFrame(f)
		}
		if opts.Dump != nil && f.Track == dumpTrack && dumpErr == nil {
			dumpBuf = ingest.AppendAnnexB(dumpBuf[:0], f.Codec, &f.AccessUnit)
			_, dumpErr = opts.Dump.Write(dumpBuf)
		}
	})
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	if err := c.Play(ctx, play, rcv); err != nil {
		return nil, err
	}
	res.Transport = string(c.Transport())
	t := time.NewTimer(opts.Duration)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
		return nil, fmt.Errorf("receiving media: %w", c.Wait())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.Close()
	res.Seconds = time.Since(begin).Seconds()
	if dumpErr != nil {
		return nil, fmt.Errorf("writing received video: %w", dumpErr)
	}
	for i := range res.Tracks {
		tr := &res.Tracks[i]
		if tr.Ignored != "" {
			continue
		}
		st := rcv.Stats(tr.Index)
		tr.Received = &st
	}
	return res, nil
}

// ErrUnsupportedCodec means the camera offers video only in codecs Custos
// cannot record.
var ErrUnsupportedCodec = errors.New("unsupported codec")

func describeVideo(tr *Track, codec media.Codec, p media.ParamSets) {
	if len(p.SPS) == 0 {
		return
	}
	if codec == media.CodecH265 {
		if sps, err := h265.ParseSPS(p.SPS); err == nil {
			tr.Profile, tr.Width, tr.Height, tr.FPS = sps.ProfileName, sps.Width, sps.Height, sps.FPS
		}
		return
	}
	if sps, err := h264.ParseSPS(p.SPS); err == nil {
		tr.Profile, tr.Width, tr.Height, tr.FPS = sps.ProfileName, sps.Width, sps.Height, sps.FPS
	}
}

// Describe turns a probe error into the one-line reason a user needs:
// unreachable, timed out, 401 (wrong credentials, or credentials withheld
// after a redirect to another host), Basic refused over plain RTSP,
// unsupported codec, no video track, or the server's status.
func Describe(err error) string {
	var se *rtsp.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, rtsp.ErrBasicRefused):
		return "refused to send the password in clear: " + err.Error() +
			"; allow it with --allow-basic (custos probe) or allow_basic_auth: true (camera configuration)"
	case errors.Is(err, rtsp.ErrCredentialsWithheld):
		return "401 unauthorized after a redirect to another host: " + err.Error()
	case errors.Is(err, rtsp.ErrUnauthorized):
		return "401 unauthorized: wrong or missing credentials (" + err.Error() + ")"
	case errors.Is(err, ErrUnsupportedCodec):
		return "unsupported codec: " + err.Error()
	case errors.Is(err, rtsp.ErrNoVideo):
		return "no video track: the camera offers no H.264 or H.265 stream"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(), strings.Contains(err.Error(), "timed out"):
		return "timed out: " + err.Error()
	case errors.As(err, &oe) && oe.Op == "dial":
		return "unreachable: " + err.Error()
	case errors.As(err, &se) && se.Code == 461:
		return fmt.Sprintf("camera refused the transport (%d %s): %s; leave --transport out to let Custos pick the one the camera serves", se.Code, se.Reason, err.Error())
	case errors.As(err, &se):
		return fmt.Sprintf("camera refused (%d %s): %s", se.Code, se.Reason, err.Error())
	case errors.Is(err, rtsp.ErrStall):
		return "stalled: " + err.Error()
	}
	return err.Error()
}
