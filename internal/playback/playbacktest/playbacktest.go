// Package playbacktest builds synthetic recordings for tests and
// benchmarks of playback: real segment files made from internal/sim's
// frame-numbered fixture, with their index rows, and ffmpeg checks of what
// playback serves. Only tests and benchmarks import it.
package playbacktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// The fixture: internal/sim's 1080p clip, 250 frames at 25 fps, key frames
// every 50, each frame's number drawn on it.
const (
	fixtureRel = "internal/sim/fixtures/main.h264"
	FixtureLen = 250
	Frame90k   = 3600 // 25 fps
	FrameDur   = 40 * time.Millisecond
)

// T0 is the wall time of the first recorded frame in the tests.
var T0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// At returns the wall time of frame time k after T0.
func At(k float64) time.Time { return T0.Add(time.Duration(k * float64(FrameDur))) }

// fixturePath finds the fixture from any package directory of the module.
func fixturePath(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, fixtureRel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// Frame is one picture of the fixture.
type Frame struct {
	NALUs [][]byte
	Key   bool
}

// fixtureFrames splits the fixture into pictures (one slice each: a VCL
// NAL unit with first_mb_in_slice 0 starts a picture; parameter sets go
// with the picture they precede).
func Frames(t testing.TB) ([]Frame, media.ParamSets) {
	t.Helper()
	b, err := os.ReadFile(fixturePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var frames []Frame
	var pending [][]byte
	var ps media.ParamSets
	for _, n := range h264.SplitAnnexB(b) {
		switch h264.Type(n) {
		case h264.NALSPS:
			if ps.SPS == nil {
				ps.SPS = n
			}
		case h264.NALPPS:
			if ps.PPS == nil {
				ps.PPS = n
			}
		}
		if !h264.IsVCL(n) {
			pending = append(pending, n)
			continue
		}
		if len(n) > 1 && n[1]&0x80 != 0 || len(frames) == 0 {
			frames = append(frames, Frame{Key: h264.IsKey(n)})
		}
		f := &frames[len(frames)-1]
		f.NALUs = append(append(f.NALUs, pending...), n)
		pending = nil
	}
	if len(frames) != FixtureLen {
		t.Fatalf("fixture has %d frames, want %d", len(frames), FixtureLen)
	}
	return frames, ps
}

// Recording is a test index and disk with synthetic recordings of one
// camera's main stream.
type Recording struct {
	Index  *sqlite.Store
	Disks  map[string]blob.Store
	Dir    string
	Camera string
	// Key signs the stream's hash chain, which AddRun keeps as the
	// recorder does (run starts, closed segments).
	Key    ed25519.PrivateKey
	Chains *evidence.Chains
	disk   blob.Store
	stream store.Stream
	frames []Frame
	ps     media.ParamSets
}

// NewRecording makes an empty index and disk "d1" in a temporary
// directory, for camera's main stream.
func NewRecording(t testing.TB, camera string) *Recording {
	t.Helper()
	dir := t.TempDir()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	if err := os.Mkdir(filepath.Join(dir, "disk"), 0o755); err != nil {
		t.Fatal(err)
	}
	disk, err := local.Open(filepath.Join(dir, "disk"), "d1", local.Options{Init: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := idx.Stream(context.Background(), camera, "main")
	if err != nil {
		t.Fatal(err)
	}
	frames, ps := Frames(t)
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Recording{Index: idx, Disks: map[string]blob.Store{"d1": disk}, Dir: dir, Camera: camera,
		Key: key, Chains: &evidence.Chains{Store: idx, Key: key},
		disk: disk, stream: st, frames: frames, ps: ps}
}

// AddRun records n frames starting at wall time start as one run of
// segments of segFrames frames (cut at key frames) with fragments of at
// most 12 frames that start at every key frame, as the recorder writes
// them. Frame k of the run shows fixture frame k % 250.
func (rc *Recording) AddRun(t testing.TB, start time.Time, n, segFrames int) {
	t.Helper()
	ctx := context.Background()
	run, err := rc.Index.StartRun(ctx, rc.stream.ID, start)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Chains.RunStarted(ctx, rc.Camera, "main", rc.stream.ID, start); err != nil {
		t.Fatal(err)
	}
	track := mp4.Track{Codec: media.CodecH264, Params: rc.ps}
	init, err := mp4.Init(track)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; {
		segStart := start.Add(time.Duration(k) * FrameDur)
		seg := store.Segment{StreamID: rc.stream.ID, RunID: run.ID, Disk: "d1",
			Key: fmt.Sprintf("%s/main/%d-r%d.mp4", rc.Camera, segStart.UnixMilli(), run.ID), Start: segStart,
			StartPTS90k: int64(k) * Frame90k, State: store.SegmentWriting, Codec: mp4.CodecString(track),
			Width: 1920, Height: 1080}
		if err := rc.Index.AddSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		file := append([]byte(nil), init...)
		var index mp4.SampleIndexWriter
		var samples []mp4.Sample
		var data []byte
		base := uint64(k) * Frame90k // decode times run on across a run's segments
		seq := uint32(0)
		flush := func() {
			if len(samples) == 0 {
				return
			}
			seq++
			off := len(file)
			file = mp4.AppendFragment(file, seq, base, samples, data)
			index.AddFragment(int64(off), len(file)-off-len(data), samples)
			base += uint64(len(samples)) * Frame90k
			samples, data = nil, nil
		}
		count := 0
		for ; k < n; k++ {
			f := rc.frames[k%FixtureLen]
			if f.Key && count >= segFrames {
				break
			}
			if f.Key || len(samples) >= 12 {
				flush()
			}
			m := len(data)
			data = mp4.AppendSampleData(data, f.NALUs)
			samples = append(samples, mp4.Sample{Dur90k: Frame90k, Size: uint32(len(data) - m), Key: f.Key})
			count++
			if f.Key {
				seg.KeyFrames++
			}
		}
		flush()
		file = index.AppendBox(file) // as the recorder closes a segment
		w, err := rc.disk.Create(ctx, seg.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(file); err != nil {
			t.Fatal(err)
		}
		w.Close()
		seg.Bytes, seg.Frames, seg.Dur90k = int64(len(file)), int64(count), int64(count)*Frame90k
		seg.WallDur, seg.State = time.Duration(count)*FrameDur, store.SegmentClosed
		if err := rc.Index.UpdateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		segHash, initHash, _, err := integrity.HashSegment(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Chains.SegmentClosed(ctx, rc.Camera, "main", seg, segHash, initHash); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Index.EndRun(ctx, run.ID, start.Add(time.Duration(n)*FrameDur), "test"); err != nil {
		t.Fatal(err)
	}
}

// WriteFile copies size bytes from r to path.
func WriteFile(t testing.TB, r io.Reader, size int64, path string) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != size {
		t.Fatalf("read %d bytes of a %d-byte file", buf.Len(), size)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ProbeDuration returns ffprobe's format duration of path.
func ProbeDuration(t testing.TB, path string) float64 {
	t.Helper()
	out, err := exec.Command(testpeer.FFprobe(t), "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", out, err)
	}
	return d
}

// DecodeErrors returns what `ffmpeg -v error -i path -f null -` prints and
// the number of frames it decoded.
func DecodeErrors(t testing.TB, path string) (string, int) {
	t.Helper()
	cmd := exec.Command(testpeer.FFmpeg(t), "-hide_banner", "-nostdin", "-v", "error", "-i", path,
		"-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out), 0
	}
	cmd = exec.Command(testpeer.FFprobe(t), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	n, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe count frames: %v", err)
	}
	frames, _ := strconv.Atoi(strings.TrimSpace(string(n)))
	return string(out), frames
}

// GrayFrame decodes one frame to 192x108 grayscale: the first displayed
// frame of path, or frame index n of the fixture when n >= 0.
func GrayFrame(t testing.TB, path string, n int) []byte {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-i", path}
	vf := "scale=192:108"
	if n >= 0 {
		vf = fmt.Sprintf("select=eq(n\\,%d),scale=192:108", n)
	}
	args = append(args, "-vf", vf, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")
	out, err := exec.Command(testpeer.FFmpeg(t), args...).Output()
	if err != nil || len(out) != 192*108 {
		t.Fatalf("decode frame %d of %s: %v (%d bytes)", n, path, err, len(out))
	}
	return out
}

func MeanAbsDiff(a, b []byte) float64 {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}

// FixtureGray caches decoded fixture frames by index.
type FixtureGray map[int][]byte

func (c FixtureGray) Get(t testing.TB, n int) []byte {
	n = ((n % FixtureLen) + FixtureLen) % FixtureLen
	if b, ok := c[n]; ok {
		return b
	}
	b := GrayFrame(t, fixturePath(t), n)
	c[n] = b
	return b
}

// AssertShows checks that the first displayed frame of path is fixture
// frame want: identical pixels, and closer than its neighbours.
func AssertShows(t testing.TB, cache FixtureGray, path string, want int) {
	t.Helper()
	got := GrayFrame(t, path, -1)
	d := MeanAbsDiff(got, cache.Get(t, want))
	dPrev := MeanAbsDiff(got, cache.Get(t, want-1))
	dNext := MeanAbsDiff(got, cache.Get(t, want+1))
	if d > 0.5 || d >= dPrev || d >= dNext {
		t.Errorf("first frame shown is not fixture frame %d: mean abs diff %.3f (frame %d: %.3f, frame %d: %.3f)",
			want%FixtureLen, d, want-1, dPrev, want+1, dNext)
	}
}
