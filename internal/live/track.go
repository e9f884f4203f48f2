package live

import (
	"fmt"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
)

// TrackFor describes the MP4 track of a stream's parameter sets, with the
// picture size from its SPS (as the recorder's segments do). It does no
// I/O. It fails when the sets are incomplete, the SPS does not parse or the
// codec is not H.264 or H.265.
func TrackFor(codec media.Codec, p media.ParamSets) (mp4.Track, error) {
	t := mp4.Track{Codec: codec, Params: p}
	if !p.Complete(codec) {
		return t, fmt.Errorf("no %s parameter sets yet", codec)
	}
	switch codec {
	case media.CodecH264:
		sps, err := h264.ParseSPS(p.SPS)
		if err != nil {
			return t, fmt.Errorf("parse SPS: %w", err)
		}
		t.Width, t.Height = sps.Width, sps.Height
	case media.CodecH265:
		sps, err := h265.ParseSPS(p.SPS)
		if err != nil {
			return t, fmt.Errorf("parse SPS: %w", err)
		}
		t.Width, t.Height = sps.Width, sps.Height
	default:
		return t, fmt.Errorf("codec %s cannot be streamed", codec)
	}
	return t, nil
}

// initMessage builds the init segment message for a track.
func initMessage(codec media.Codec, p media.ParamSets) (Message, error) {
	t, err := TrackFor(codec, p)
	if err != nil {
		return Message{}, err
	}
	data, err := mp4.Init(t)
	if err != nil {
		return Message{}, err
	}
	cs := mp4.CodecString(t)
	if cs == "" {
		return Message{}, fmt.Errorf("no codec string for %s parameter sets", codec)
	}
	return Message{Data: data, IsInit: true, Codec: cs, Width: t.Width, Height: t.Height}, nil
}
