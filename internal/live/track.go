package live

import (
	"fmt"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
)

// TrackFor describes the MP4 track of a stream's parameter sets, with the
// picture size from its SPS, as the recorder's segments do (mp4.TrackFor).
func TrackFor(codec media.Codec, p media.ParamSets) (mp4.Track, error) { return mp4.TrackFor(codec, p) }

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
