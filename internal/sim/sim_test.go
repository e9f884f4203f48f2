package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// capture is a PacketWriter that records headers of what Play sends.
type capture struct {
	seqs    []uint16
	tss     []uint32
	markers int
	limit   int
	cancel  context.CancelFunc
}

func (c *capture) WriteRTP(track int, pkt []byte) error {
	c.seqs = append(c.seqs, binary.BigEndian.Uint16(pkt[2:4]))
	c.tss = append(c.tss, binary.BigEndian.Uint32(pkt[4:8]))
	if pkt[1]&0x80 != 0 {
		c.markers++
		if c.markers >= c.limit {
			c.cancel()
		}
	}
	return nil
}

func (c *capture) Flush() error { return nil }

func TestLoopIsContinuous(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecH264, media.CodecH265} {
		t.Run(string(codec), func(t *testing.T) {
			s, err := New(Options{Cameras: 1, Codec: codec, Speed: 1000})
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.mount("cam1")
			if err != nil {
				t.Fatal(err)
			}
			loop := len(s.main.frames)
			if loop != 250 {
				t.Fatalf("fixture has %d frames, want 250 (10 s at 25 fps)", loop)
			}
			ctx, cancel := context.WithCancel(context.Background())
			c := &capture{limit: 2*loop + 10, cancel: cancel}
			if err := st.Play(ctx, []int{0}, c); !errors.Is(err, context.Canceled) {
				t.Fatalf("Play = %v", err)
			}
			frames := 0
			for i := 1; i < len(c.seqs); i++ {
				if c.seqs[i] != c.seqs[i-1]+1 {
					t.Fatalf("packet %d: sequence %d after %d", i, c.seqs[i], c.seqs[i-1])
				}
				switch d := c.tss[i] - c.tss[i-1]; d {
				case 0:
				case FixtureFrameDur90k:
					frames++
				default:
					t.Fatalf("packet %d (frame %d): timestamp step %d, want 0 or %d", i, frames, d, FixtureFrameDur90k)
				}
			}
			if frames < 2*loop {
				t.Errorf("only %d frame steps seen, want ≥ %d (two loops)", frames, 2*loop)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	s, err := New(Options{Cameras: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cam1", "cam3", "cam2/sub"} {
		if _, err := s.mount(p); err != nil {
			t.Errorf("mount %q: %v", p, err)
		}
	}
	for _, p := range []string{"cam0", "cam4", "cam01", "cam", "cam1/main", "x/cam1", "cam-1", ""} {
		if _, err := s.mount(p); !errors.Is(err, rtsp.ErrNotFound) {
			t.Errorf("mount %q: err = %v, want ErrNotFound", p, err)
		}
	}
	info := s.Streams()
	if info[0].Width != 1920 || info[0].Height != 1080 || info[1].Width != 640 || info[1].Height != 360 {
		t.Errorf("streams = %+v", info)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Cameras: 0},
		{Cameras: 1, Speed: -1},
		{Cameras: 1, Speed: 5000},
		{Cameras: 1, Codec: "vp8"},
		{Cameras: 1, User: "u"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestRealTimePace checks that speed 1 sends 25 frames per second of wall
// time (within scheduling slack), not as fast as it can.
func TestRealTimePace(t *testing.T) {
	s, err := New(Options{Cameras: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.mount("cam1/sub")
	ctx, cancel := context.WithCancel(context.Background())
	c := &capture{limit: 26, cancel: cancel}
	start := time.Now()
	st.Play(ctx, []int{0}, c)
	if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("26 frames took %s, want about 1 s", el)
	}
}
