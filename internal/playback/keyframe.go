package playback

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/media"
)

// KeyFrame is one stored key frame, ready for a decoder.
type KeyFrame struct {
	Codec media.Codec
	// AnnexB holds the parameter sets and the frame's NAL units with start
	// codes (an elementary stream of one picture).
	AnnexB []byte
	// At is the wall time the frame is shown.
	At time.Time
	// ID identifies the frame in storage (segment row, file offset and
	// length): equal IDs mean equal pictures, a cache key.
	ID string
}

// maxKeyFrameBytes bounds the one frame read for a thumbnail.
const maxKeyFrameBytes = 16 << 20

// KeyFrame returns the key frame at or before at in a camera's stream: the
// one that starts the GOP of the frame shown at that time. A time with no
// recording is a 404 *Error.
func (s *Source) KeyFrame(ctx context.Context, camera, stream string, at time.Time) (*KeyFrame, error) {
	st, err := s.Index.Stream(ctx, camera, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s/%s: %w", camera, stream, err)
	}
	rows, err := s.Index.Segments(ctx, st.ID, at, at.Add(time.Nanosecond))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, noVideo("no recording of %s/%s at %s", camera, stream, at.UTC().Format(time.RFC3339Nano))
	}
	x, err := s.Cache.get(ctx, rows[len(rows)-1], s.load)
	if errors.Is(err, ErrMissingFile) {
		return nil, noVideo("the recording of %s/%s at %s is missing from storage", camera, stream, at.UTC().Format(time.RFC3339Nano))
	} else if err != nil {
		return nil, err
	}
	pt := toLocal90k(&x.seg, at)
	k := 0
	for i := range x.samples {
		if x.samples[i].key && x.samples[i].pts90k() <= pt {
			k = i
		}
	}
	sm := x.samples[k]
	if sm.size > maxKeyFrameBytes {
		return nil, fmt.Errorf("key frame of %d bytes in segment %d is larger than %d", sm.size, x.seg.ID, maxKeyFrameBytes)
	}
	disk := s.Disks[x.seg.Disk]
	if disk == nil {
		return nil, noVideo("disk %q of the recording is not configured", x.seg.Disk)
	}
	r, err := disk.Open(ctx, x.seg.Key)
	if errors.Is(err, blob.ErrNotExist) || errors.Is(err, blob.ErrUnavailable) {
		return nil, noVideo("the recording of %s/%s at %s is missing from storage or its disk is unavailable", camera, stream, at.UTC().Format(time.RFC3339Nano))
	} else if err != nil {
		return nil, fmt.Errorf("open %s on %s: %w", x.seg.Key, x.seg.Disk, err)
	}
	defer r.Close()
	data := make([]byte, sm.size)
	if _, err := r.ReadAt(data, sm.off); err != nil {
		return nil, fmt.Errorf("read key frame of %s on %s: %w", x.seg.Key, x.seg.Disk, err)
	}
	kf := &KeyFrame{Codec: x.track.Codec, At: toWall(&x.seg, sm.pts90k()),
		ID: fmt.Sprintf("%d-%d-%d", x.seg.ID, sm.off, sm.size)}
	start := []byte{0, 0, 0, 1}
	for _, ps := range [][]byte{x.track.Params.VPS, x.track.Params.SPS, x.track.Params.PPS} {
		if len(ps) > 0 {
			kf.AnnexB = append(append(kf.AnnexB, start...), ps...)
		}
	}
	// Samples are 4-byte length-prefixed NAL units (mp4.AppendSampleData).
	for len(data) >= 4 {
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) {
			return nil, fmt.Errorf("key frame in segment %d: NAL length %d overruns the sample", x.seg.ID, n)
		}
		kf.AnnexB = append(append(kf.AnnexB, start...), data[4:4+n]...)
		data = data[4+n:]
	}
	return kf, nil
}
