package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
)

// TestSubscribeMidGOP subscribes a viewer in the middle of a GOP of the
// simulator's clips: it gets the init segment, the GOP from its key frame
// as one fragment, then every frame as its own fragment, and the whole
// decodes in ffmpeg with the expected number of frames.
func TestSubscribeMidGOP(t *testing.T) {
	for _, tc := range []struct{ fixture, codec string }{
		{"main.h264", "avc1.640028"},
		{"main.h265", "hvc1."},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			checkGoroutines(t)
			fx := loadFixture(t, tc.fixture)
			h := NewHub(HubOptions{Camera: "cam", Stream: "main"})
			const pts0 = 1 << 32 // an extended RTP time far from zero
			if c := h.Codec(); c != "" {
				t.Fatalf("Codec() before any frame = %q, want empty", c)
			}
			fx.publish(h, 0, 70, pts0)
			if c := h.Codec(); !strings.HasPrefix(c, tc.codec) {
				t.Errorf("Codec() = %q, want %s*", c, tc.codec)
			}
			v := h.Subscribe()
			defer v.Close()
			if h.Viewers() != 1 {
				t.Fatalf("Viewers() = %d, want 1", h.Viewers())
			}
			fx.publish(h, 70, 150, pts0)
			msgs := readN(t, v, 2+80, 30*time.Second)
			expectNothing(t, v)

			init, gop := msgs[0], msgs[1]
			if !init.IsInit || !strings.HasPrefix(init.Codec, tc.codec) || init.Width != 1920 || init.Height != 1080 {
				t.Fatalf("first message: init %v codec %q %dx%d, want init %s* 1920x1080",
					init.IsInit, init.Codec, init.Width, init.Height, tc.codec)
			}
			if want := fmt.Sprintf("video/mp4; codecs=%q", init.Codec); init.MIME() != want {
				t.Errorf("MIME() = %s, want %s", init.MIME(), want)
			}
			if gop.IsInit || !gop.Key || gop.Frames != 20 || gop.CameraPTS90k != pts0+50*3600 || gop.DTS90k != 50*3600 {
				t.Fatalf("second message: init %v key %v frames %d camera pts %d dts %d; want the GOP from frame 50 (20 frames, dts %d)",
					gop.IsInit, gop.Key, gop.Frames, gop.CameraPTS90k-pts0, gop.DTS90k, 50*3600)
			}
			for i, m := range msgs[2:] {
				frame := 70 + i
				if m.IsInit || m.Frames != 1 || m.Key != (frame%50 == 0) || m.DTS90k != int64(frame)*3600 || m.PTS90k != m.DTS90k {
					t.Fatalf("message for frame %d: init %v frames %d key %v dts %d pts %d", frame, m.IsInit, m.Frames, m.Key, m.DTS90k, m.PTS90k)
				}
			}
			// The fragments' own times agree and follow each other without
			// a gap: each tfdt is the previous one plus its durations.
			var next uint64
			for i, m := range msgs[1:] {
				fi := parseFragment(t, m.Data)
				if fi.tfdt != uint64(m.DTS90k) || len(fi.samples) != m.Frames || fi.samples[0].Key != m.Key {
					t.Fatalf("fragment %d: tfdt %d, %d samples, key %v; message says %d, %d, %v",
						i, fi.tfdt, len(fi.samples), fi.samples[0].Key, m.DTS90k, m.Frames, m.Key)
				}
				if i > 0 && fi.tfdt != next {
					t.Fatalf("fragment %d starts at %d, the previous one ended at %d", i, fi.tfdt, next)
				}
				next = fi.tfdt + fi.dur
			}
			decodeFile(t, "live.mp4", concat(msgs), 100)

			st := h.Stats()
			if st.Published != 150 || st.Frames != 150 || st.Fragments != 80 || st.Viewers != 1 || st.Dropped != 0 {
				t.Errorf("stats %+v: want 150 published and emitted, 80 fragments, 1 viewer, none dropped", st)
			}
			if st.Latency.Count != 80 || st.Latency.P50 <= 0 || st.Latency.P99 < st.Latency.P50 {
				t.Errorf("latency %+v: want 80 samples, 0 < p50 <= p99", st.Latency)
			}
			v.Close()
			if h.Viewers() != 0 {
				t.Errorf("Viewers() = %d after Close, want 0", h.Viewers())
			}
			if _, err := v.Next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestSlowViewer shows that a viewer that never reads does not hold up
// Publish, loses frames instead, and then resumes at a key frame.
func TestSlowViewer(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{}) // default 8 MiB queue: 2000 frames are 24 MB
	stuck := h.Subscribe()
	defer stuck.Close()

	const n = 2000
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		fx.publish(h, 0, n, 0)
		done <- time.Since(start)
	}()
	var took time.Duration
	select {
	case took = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Publish of 2000 frames blocked by a viewer that does not read")
	}
	t.Logf("published %d frames in %v (%v per frame) with a stuck viewer", n, took, took/n)
	// Generous for a busy 2-core machine under -race; unblocked it takes
	// a few tens of milliseconds.
	if took > 15*time.Second {
		t.Errorf("Publish of %d frames took %v", n, took)
	}
	dropped := stuck.Dropped()
	if dropped == 0 {
		t.Fatal("the stuck viewer dropped nothing")
	}
	msgs, bytes := stuck.Queued()
	if bytes > DefaultQueueBytes {
		t.Errorf("queue holds %d bytes, more than its bound %d", bytes, DefaultQueueBytes)
	}
	t.Logf("dropped %d frames; %d messages (%d bytes) queued", dropped, msgs, bytes)

	// It reads again: the init segment it has not read yet, then a key
	// frame, then every frame in order.
	got := readAll(t, stuck, 200*time.Millisecond)
	if len(got) < 2 || !got[0].IsInit || got[1].IsInit || !got[1].Key {
		t.Fatalf("after the drop: %d messages; want the init, then a key fragment", len(got))
	}
	frames := 0
	for i, m := range got[1:] {
		frames += m.Frames
		if i > 0 && m.DTS90k != got[i].DTS90k+3600 {
			t.Fatalf("fragment %d at dts %d after %d: frames missing in the middle", i+1, m.DTS90k, got[i].DTS90k)
		}
	}
	if frames+dropped != n {
		t.Errorf("received %d frames and dropped %d, want %d in all", frames, dropped, n)
	}
	if last := got[len(got)-1]; last.DTS90k != (n-1)*3600 {
		t.Errorf("last fragment at dts %d, want the last frame's %d", last.DTS90k, (n-1)*3600)
	}
	// Reading on, it gets what comes next, and it all decodes.
	fx.publish(h, n, n+100, 0)
	more := readN(t, stuck, 100, 30*time.Second)
	if stuck.Dropped() != dropped {
		t.Errorf("a reading viewer dropped %d more frames", stuck.Dropped()-dropped)
	}
	decodeFile(t, "resumed.mp4", concat(append(got, more...)), frames+100)
	if st := h.Stats(); st.Dropped != uint64(dropped) || st.Overflows == 0 {
		t.Errorf("stats: dropped %d overflows %d, want %d and > 0", st.Dropped, st.Overflows, dropped)
	}
}

// TestReset resets the hub in the middle of a stream, as a camera
// reconnect does, with new timestamps that are far earlier: the viewer
// gets a new init segment, then a key frame, on a timeline that goes on.
func TestReset(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	fx.publish(h, 0, 60, 5_000_000)
	v := h.Subscribe()
	defer v.Close()
	fx.publish(h, 60, 90, 5_000_000)
	h.Reset()
	// The new run starts mid-GOP at far earlier times: frames 10..49
	// cannot be decoded and are skipped.
	fx.publish(h, 10, 161, 1000)
	msgs := readN(t, v, 1+1+30+1+111, 30*time.Second)
	expectNothing(t, v)

	var second int
	var prev fragInfo
	for i, m := range msgs {
		if m.IsInit {
			if i != 0 {
				second = i
			}
			continue
		}
		fi := parseFragment(t, m.Data)
		if fi.tfdt != uint64(m.DTS90k) {
			t.Fatalf("message %d: tfdt %d, DTS90k %d", i, fi.tfdt, m.DTS90k)
		}
		if prev.samples != nil && fi.tfdt <= prev.tfdt {
			t.Fatalf("message %d: decode time %d after %d: the timeline went backwards", i, fi.tfdt, prev.tfdt)
		}
		if prev.samples != nil && fi.tfdt != prev.tfdt+prev.dur {
			t.Errorf("message %d: starts at %d, the previous fragment ended at %d", i, fi.tfdt, prev.tfdt+prev.dur)
		}
		prev = fi
	}
	if second != 32 {
		t.Fatalf("second init segment is message %d, want 32 (after the GOP and 30 frames)", second)
	}
	after := msgs[second+1]
	if !after.Key || after.CameraPTS90k != 1000+50*3600 || after.DTS90k != 90*3600 {
		t.Errorf("first fragment after Reset: key %v camera pts %d dts %d; want key frame 50 (pts %d) at dts %d",
			after.Key, after.CameraPTS90k, after.DTS90k, 1000+50*3600, 90*3600)
	}
	// Each run decodes on its own.
	decodeFile(t, "run1.mp4", concat(msgs[:second]), 40)
	decodeFile(t, "run2.mp4", concat(msgs[second:]), 111)
	if st := h.Stats(); st.Resets != 1 || st.Skipped != 40 {
		t.Errorf("stats: %d resets, %d skipped; want 1 and 40", st.Resets, st.Skipped)
	}

	// A viewer that subscribes after a Reset, before a frame, waits for
	// the new run's init segment and key frame.
	h.Reset()
	late := h.Subscribe()
	defer late.Close()
	expectNothing(t, late)
	fx.publish(h, 0, 3, 77)
	expectNothing(t, late) // still the run's preroll
	fx.publish(h, 3, 5, 77)
	got := readN(t, late, 1+5, 10*time.Second)
	if !got[0].IsInit || !got[1].Key || got[1].DTS90k <= msgs[len(msgs)-1].DTS90k {
		t.Errorf("late viewer: init %v, key %v at dts %d (the last run ended after %d)",
			got[0].IsInit, got[1].Key, got[1].DTS90k, msgs[len(msgs)-1].DTS90k)
	}
}

// TestBFrames feeds the hub a real stream with B-frames (x264's default),
// in decode order with presentation times as RTP carries them, subscribes
// in the middle of it and checks that ffmpeg decodes every frame and that
// the presentation times are the camera's, shifted.
func TestBFrames(t *testing.T) {
	checkGoroutines(t)
	frames := encodeBFrames(t)
	h := NewHub(HubOptions{})
	for i := range 60 {
		h.Publish(frames[i])
	}
	v := h.Subscribe()
	defer v.Close()
	for _, f := range frames[60:] {
		h.Publish(f)
	}
	want := len(frames) - 50
	msgs := readN(t, v, 2+len(frames)-60, 30*time.Second)
	expectNothing(t, v)
	if msgs[1].Frames != 10 {
		t.Fatalf("GOP fragment has %d frames, want 10", msgs[1].Frames)
	}
	decodeFile(t, "bframes.mp4", concat(msgs), want)

	var shift int64
	var prevDTS int64 = -1
	n := 50
	negative := false
	for _, m := range msgs[1:] {
		fi := parseFragment(t, m.Data)
		dts := int64(fi.tfdt)
		for _, s := range fi.samples {
			if dts <= prevDTS {
				t.Fatalf("frame %d: decode time %d after %d", n, dts, prevDTS)
			}
			pts := dts + int64(s.CTSOffset90k)
			if n == 50 {
				shift = pts - frames[n].PTS90k
			}
			if pts-frames[n].PTS90k != shift || s.Key != frames[n].Key {
				t.Fatalf("frame %d: pts %d key %v; want camera pts %d + %d, key %v", n, pts, s.Key, frames[n].PTS90k, shift, frames[n].Key)
			}
			negative = negative || s.CTSOffset90k < 0
			prevDTS = dts
			dts += int64(s.Dur90k)
			n++
		}
	}
	if n != len(frames) {
		t.Errorf("%d frames in the fragments, want %d", n-50, want)
	}
	if !negative {
		t.Log("no negative composition offsets")
	}
}

// encodeBFrames has ffmpeg encode 4 s of 320x240 H.264 with B-frames and a
// key frame every 50 frames into fragmented MP4 and returns its access
// units as a depacketizer would give them (decode order, presentation
// times from 900000).
func encodeBFrames(t *testing.T) []*ingest.Frame {
	t.Helper()
	ffmpeg := testpeerFFmpeg(t)
	path := t.TempDir() + "/b.mp4"
	runCmd(t, ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4",
		"-c:v", "libx264", "-bf", "3", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-video_track_timescale", "90000", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", path)
	data := readFile(t, path)
	var frames []*ingest.Frame
	var params media.ParamSets
	info, err := mp4.ScanFileSamples(bytes.NewReader(data), int64(len(data)), func(int, mp4.SampleInfo) {})
	if err != nil {
		t.Fatalf("scan ffmpeg's file: %v", err)
	}
	params = info.Track.Params
	reordered := false
	for _, fr := range info.Fragments {
		ss, err := mp4.ReadSamples(bytes.NewReader(data), fr)
		if err != nil {
			t.Fatal(err)
		}
		dts := int64(fr.BaseDecodeTime90k)
		for _, s := range ss {
			var nalus [][]byte
			b := data[s.Offset : s.Offset+int64(s.Size)]
			for len(b) >= 4 {
				n := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
				nalus = append(nalus, b[4:4+n])
				b = b[4+n:]
			}
			pts := 900_000 + dts + int64(s.CTSOffset90k)
			if len(frames) > 0 && pts < frames[len(frames)-1].PTS90k {
				reordered = true
			}
			frames = append(frames, &ingest.Frame{Codec: media.CodecH264, AccessUnit: media.AccessUnit{
				PTS90k: pts, Key: s.Key, NALUs: nalus, Params: params}})
			dts += int64(s.Dur90k)
		}
	}
	if len(frames) != 100 || !frames[0].Key || !frames[50].Key || !reordered {
		t.Fatalf("ffmpeg gave %d frames (key 0: %v, key 50: %v, reordered %v); want 100, key frames at 0 and 50, B-frames",
			len(frames), frames[0].Key, len(frames) > 50 && frames[50].Key, reordered)
	}
	return frames
}

// TestSplitPictures publishes key frames split in two units with one
// timestamp (parameter sets, then the IDR slice), as cameras that set the
// RTP marker on every NAL unit send them: the hub notices and from then on
// joins the units of a picture before emitting it.
func TestSplitPictures(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			f := fx.frame(i, 0)
			if !f.Key {
				h.Publish(f)
				continue
			}
			nalus := f.NALUs
			first := *f
			first.NALUs, first.Key = nalus[:len(nalus)-1], false
			h.Publish(&first)
			f.NALUs = nalus[len(nalus)-1:]
			h.Publish(f)
		}
	}
	pub(0, 60)
	if !h.coalesce {
		t.Fatal("the hub did not notice split pictures")
	}
	v := h.Subscribe()
	defer v.Close()
	pub(60, 150)
	// Frame 149 is held until the next timestamp.
	msgs := readN(t, v, 2+(149-59), 30*time.Second)
	expectNothing(t, v)
	if g := msgs[1]; !g.Key || g.CameraPTS90k != 50*3600 || g.Frames != 9 {
		t.Fatalf("GOP: key %v pts %d frames %d; want from frame 50, 9 frames (frame 59 is held)", g.Key, g.CameraPTS90k, g.Frames)
	}
	k := msgs[2+100-59]
	size := 0
	for _, n := range fx.frames[100].NALUs {
		size += 4 + len(n)
	}
	if fi := parseFragment(t, k.Data); !k.Key || k.CameraPTS90k != 100*3600 || int(fi.samples[0].Size) != size {
		t.Errorf("frame 100: key %v pts %d size %d; want a key frame at %d of %d bytes", k.Key, k.CameraPTS90k, fi.samples[0].Size, 100*3600, size)
	}
	for i, m := range msgs[2:] {
		if fi := parseFragment(t, m.Data); fi.dur != 3600 {
			t.Fatalf("frame %d: duration %d, want 3600 (exact when held)", 59+i, fi.dur)
		}
	}
	decodeFile(t, "split.mp4", concat(msgs), 149-50)
}

// TestGOPBound publishes a stream whose GOP is longer than the cache: a
// viewer then waits for the next key frame instead of getting a GOP.
func TestGOPBound(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{QueueBytes: 1 << 20})
	// Real key frames; tiny stand-ins for the others (never decoded), so
	// that the frame bound is reached before the byte bound.
	key, delta := fx.frames[0].NALUs, [][]byte{{0x41, 0x9a, 0x00, 0x01}}
	pub := func(i int, isKey bool) {
		f := &ingest.Frame{Codec: media.CodecH264, AccessUnit: media.AccessUnit{
			PTS90k: int64(i) * 3600, Key: isKey, NALUs: delta, Params: fx.params}}
		if isKey {
			f.NALUs = key
		}
		h.Publish(f)
	}
	for i := range 20 {
		pub(i, i == 0)
	}
	if !h.gopOK || len(h.gop) != 20 {
		t.Fatalf("GOP of 20 frames not cached: ok %v, %d frames", h.gopOK, len(h.gop))
	}
	for i := 20; i < 400; i++ {
		pub(i, false)
	}
	if h.gopOK || len(h.gop) != 0 || h.gopBytes != 0 {
		t.Fatalf("a 400-frame GOP is cached: ok %v, %d frames, %d bytes", h.gopOK, len(h.gop), h.gopBytes)
	}
	v := h.Subscribe()
	defer v.Close()
	if m := readN(t, v, 1, time.Second)[0]; !m.IsInit {
		t.Fatal("first message is not the init segment")
	}
	pub(400, false)
	expectNothing(t, v)
	pub(401, true)
	if m := readN(t, v, 1, time.Second)[0]; !m.Key || m.DTS90k != 401*3600 {
		t.Fatalf("got key %v at %d, want the key frame at %d", m.Key, m.DTS90k, 401*3600)
	}
	if v.Dropped() != 0 {
		t.Errorf("waiting for the first key frame counted %d drops", v.Dropped())
	}
	// The byte bound: a cache over QueueBytes (1 MiB) is dropped as well.
	big := make([]byte, 300<<10)
	big[0] = 0x41 // a non-IDR slice
	for i := 402; i < 410; i++ {
		h.Publish(&ingest.Frame{Codec: media.CodecH264, AccessUnit: media.AccessUnit{
			PTS90k: int64(i) * 3600, NALUs: [][]byte{big}, Params: fx.params}})
	}
	if h.gopOK || h.gopBytes > 1<<20 {
		t.Errorf("GOP cache of %d bytes kept (ok %v), bound 1 MiB", h.gopBytes, h.gopOK)
	}
}

// TestParamsChange switches the stream from the H.264 main clip to the
// sub clip (other parameter sets): viewers get a new init segment and
// continue at the new stream's key frame.
func TestParamsChange(t *testing.T) {
	main, sub := loadFixture(t, "main.h264"), loadFixture(t, "sub.h264")
	h := NewHub(HubOptions{})
	v := h.Subscribe()
	defer v.Close()
	main.publish(h, 0, 30, 0)
	for i := range 60 {
		h.Publish(sub.frame(i, 30*3600))
	}
	msgs := readN(t, v, 1+30+1+60, 30*time.Second)
	expectNothing(t, v)
	if m := msgs[31]; !m.IsInit || m.Width != 640 || m.Height != 360 {
		t.Fatalf("message 31: init %v %dx%d, want the sub stream's init 640x360", m.IsInit, m.Width, m.Height)
	}
	if !msgs[32].Key || msgs[32].DTS90k != 30*3600 {
		t.Errorf("after the new init: key %v at %d", msgs[32].Key, msgs[32].DTS90k)
	}
	decodeFile(t, "main.mp4", concat(msgs[:31]), 30)
	decodeFile(t, "sub.mp4", concat(msgs[31:]), 60)

	// Unusable parameter sets: frames are skipped, nothing is sent.
	bad := sub.params
	bad.SPS = []byte{0x67, 0xff}
	f := sub.frame(60, 30*3600)
	f.Params = bad
	h.Publish(f)
	expectNothing(t, v)
}

// TestConcurrentViewers runs viewers that subscribe, read a while and
// close, from many goroutines while frames are published, for the race
// detector and the goroutine count.
func TestConcurrentViewers(t *testing.T) {
	checkGoroutines(t)
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{QueueBytes: 256 << 10})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := h.Subscribe()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var last int64 = -1
				for range rng.IntN(60) {
					m, err := v.Next(ctx)
					if err != nil {
						break
					}
					if !m.IsInit && m.DTS90k <= last {
						errs <- fmt.Errorf("viewer: decode time %d after %d", m.DTS90k, last)
					}
					if !m.IsInit {
						last = m.DTS90k
					}
					if rng.IntN(20) == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				cancel()
				if rng.IntN(2) == 0 {
					go v.Close() // closing from another goroutine
				} else {
					v.Close()
				}
				_ = v.Dropped()
			}
		})
	}
	for i := 0; i < 1500; i++ {
		h.Publish(fx.frame(i, 0))
		if i%300 == 299 {
			h.Reset()
		}
		if i%50 == 0 {
			_ = h.Stats()
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h.Close()
	if h.Viewers() != 0 {
		t.Errorf("%d viewers after Close", h.Viewers())
	}
	v := h.Subscribe()
	if _, err := v.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next of a viewer of a closed hub: %v, want ErrClosed", err)
	}
	t.Logf("stats %+v", h.Stats())
}

// TestCloseWakesNext checks that Close and the context end a blocked Next.
func TestCloseWakesNext(t *testing.T) {
	checkGoroutines(t)
	h := NewHub(HubOptions{})
	v := h.Subscribe()
	res := make(chan error, 1)
	go func() {
		_, err := v.Next(context.Background())
		res <- err
	}()
	time.Sleep(20 * time.Millisecond)
	h.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Next after hub Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	v2 := NewHub(HubOptions{}).Subscribe()
	defer v2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, err := v2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v", err)
	}
}

// TestTimingSynthetic drives the decode-time derivation with made-up
// frames: B-frames (presentation order I P B B), then a frame rate that
// drops to a fifth, then a jump of the camera's clock. Decode times must
// rise strictly, presentation times must be the camera's shifted by one
// offset per stretch, and composition offsets must stay bounded.
func TestTimingSynthetic(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	h := NewHub(HubOptions{})
	v := h.Subscribe()
	defer v.Close()
	var pts []int64
	// Decode order I P B B P B B ...: presentation 0, 3, 1, 2, 6, 4, 5, ...
	add := func(base, step int64, groups int) int64 {
		if len(pts) == 0 || base != pts[len(pts)-3] {
			pts = append(pts, base) // an I (or the P) that starts the stretch
		}
		for g := range groups {
			b := base + int64(g)*3*step
			pts = append(pts, b+3*step, b+step, b+2*step)
		}
		return base + int64(groups)*3*step
	}
	next := add(1_000_000, 3600, 40)
	next = add(next, 5*3600, 40)
	add(next+3600*90000, 3600, 10) // the clock jumps by an hour
	for i, p := range pts {
		h.Publish(&ingest.Frame{Codec: media.CodecH264, AccessUnit: media.AccessUnit{
			PTS90k: p, Key: i == 0, NALUs: [][]byte{{0x41, 0x9a, byte(i)}}, Params: fx.params}})
	}
	msgs := readAll(t, v, 200*time.Millisecond)
	var prevDTS int64 = -1
	shift := int64(0)
	stretch := 0
	for i, m := range msgs[1:] {
		if m.DTS90k <= prevDTS {
			t.Fatalf("frame %d: dts %d after %d", i, m.DTS90k, prevDTS)
		}
		prevDTS = m.DTS90k
		if cts := m.PTS90k - m.DTS90k; cts > maxCTS90k+3*5*3600 || cts < -3*5*3600 {
			t.Errorf("frame %d: composition offset %d out of bounds", i, cts)
		}
		d := m.PTS90k - m.CameraPTS90k
		if i == 0 || d != shift {
			stretch++
			shift = d
		}
	}
	if len(msgs)-1 != len(pts) {
		t.Errorf("%d fragments for %d frames", len(msgs)-1, len(pts))
	}
	if stretch != 2 {
		t.Errorf("presentation times shifted by %d different offsets, want 2 (before and after the jump)", stretch)
	}
	if st := h.Stats(); st.Discontinuities != 1 {
		t.Errorf("%d discontinuities, want 1", st.Discontinuities)
	}
}
