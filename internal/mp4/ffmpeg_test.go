package mp4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// ffprobeDuration returns the format duration ffprobe reports for path.
func ffprobeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command(testpeer.FFprobe(t), "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe duration: %v", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration: output %q", out)
	}
	return d
}

// TestFixturesDecode muxes the simulator fixtures (250 frames, 25 fps, GOP
// 50) into init + one fragment per GOP and has ffmpeg decode the result.
func TestFixturesDecode(t *testing.T) {
	for _, tc := range []struct {
		fixture, probeCodec, codecString string
		codec                            media.Codec
	}{
		{"main.h264", "h264", "avc1.640028", media.CodecH264},
		{"main.h265", "hevc", "hvc1.1.6.L120.90", media.CodecH265},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			testpeer.FFmpeg(t)
			aus := splitAUs(tc.codec, loadFixture(t, tc.fixture))
			if len(aus) != 250 {
				t.Fatalf("split %d access units, want 250", len(aus))
			}
			f := buildFile(t, tc.codec, aus, 3600, nil)
			if len(f.frags) != 5 {
				t.Fatalf("%d fragments, want 5", len(f.frags))
			}
			if got := CodecString(Track{Codec: tc.codec, Params: paramsOf(tc.codec, aus)}); got != tc.codecString {
				t.Errorf("CodecString = %q, want %q", got, tc.codecString)
			}
			path := writeTemp(t, "f.mp4", f.data)
			frames, errText := testpeer.Decode(t, path)
			if errText != "" {
				t.Errorf("ffmpeg: %s", errText)
			}
			if frames != 250 {
				t.Errorf("ffprobe counted %d frames, want 250", frames)
			}
			v, err := testpeer.ProbeVideo(t, path, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if v.Codec != tc.probeCodec || v.Width != 1920 || v.Height != 1080 {
				t.Errorf("ffprobe: %+v, want %s 1920x1080", v, tc.probeCodec)
			}
			if d := ffprobeDuration(t, path); d != 10.0 {
				t.Errorf("ffprobe duration %v s, want 10.0", d)
			}
		})
	}
}

// TestBFrames muxes a real x264 stream with B-frames: the PTS of each packet
// come from ffprobe on the Matroska file the encoder wrote, the DTS are the
// sorted PTS, and the composition offsets are their difference (shifted so
// none is negative). ffmpeg must decode all frames and see the same PTS.
func TestBFrames(t *testing.T) {
	ffmpeg, ffprobe := testpeer.FFmpeg(t), testpeer.FFprobe(t)
	dir := t.TempDir()
	mkv, raw := filepath.Join(dir, "in.mkv"), filepath.Join(dir, "in.h264")
	run := func(name string, args ...string) []byte {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v: %s", filepath.Base(name), args, err, stderr.String())
		}
		return out
	}
	run(ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "2", "-c:v", "libx264", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p", mkv)
	run(ffmpeg, "-nostdin", "-v", "error", "-i", mkv, "-c:v", "copy", "-bsf:v", "h264_mp4toannexb",
		"-f", "h264", raw)
	out := run(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
		"-of", "csv=p=0", mkv)
	var pts90k []int64
	for _, line := range strings.Fields(string(out)) {
		ms, err := strconv.ParseInt(strings.TrimSuffix(line, ","), 10, 64)
		if err != nil {
			t.Fatalf("ffprobe packet pts %q: %v", line, err)
		}
		pts90k = append(pts90k, ms*90) // Matroska time base is 1 ms
	}
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	aus := splitAUs(media.CodecH264, data)
	if len(aus) != 50 || len(pts90k) != 50 {
		t.Fatalf("%d access units, %d packets; want 50 each", len(aus), len(pts90k))
	}
	dts90k := slices.Clone(pts90k)
	slices.Sort(dts90k)
	var shift int64
	for i := range dts90k {
		shift = max(shift, dts90k[i]-pts90k[i])
	}
	cts := make([]int32, len(aus))
	reordered := false
	for i := range cts {
		cts[i] = int32(pts90k[i] + shift - dts90k[i])
		reordered = reordered || pts90k[i] != dts90k[i]
	}
	if !reordered {
		t.Fatal("x264 produced no B-frames")
	}
	f := buildFile(t, media.CodecH264, aus, 3600, cts)
	path := writeTemp(t, "b.mp4", f.data)
	frames, errText := testpeer.Decode(t, path)
	if errText != "" {
		t.Errorf("ffmpeg: %s", errText)
	}
	if frames != 50 {
		t.Errorf("ffprobe counted %d frames, want 50", frames)
	}
	v, err := testpeer.ProbeVideo(t, path, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.HasBFrames == 0 {
		t.Errorf("ffprobe has_b_frames = 0 for a stream with B-frames")
	}
	// ffprobe's packet PTS in the MP4 (time base 1/90000) are ours.
	out = run(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
		"-of", "csv=p=0", path)
	var got []int64
	for _, line := range strings.Fields(string(out)) {
		v, _ := strconv.ParseInt(strings.TrimSuffix(line, ","), 10, 64)
		got = append(got, v)
	}
	want := make([]int64, len(pts90k))
	for i := range pts90k {
		want[i] = pts90k[i] + shift
	}
	if !slices.Equal(got, want) {
		t.Errorf("ffprobe packet pts\n got %v\nwant %v", got, want)
	}
	// ReadSamples returns the composition offsets written.
	info, err := ScanFile(bytes.NewReader(f.data), int64(len(f.data)))
	if err != nil {
		t.Fatal(err)
	}
	var readCTS []int32
	for _, fr := range info.Fragments {
		ss, err := ReadSamples(bytes.NewReader(f.data), fr)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			readCTS = append(readCTS, s.CTSOffset90k)
		}
	}
	if !slices.Equal(readCTS, cts) {
		t.Errorf("ReadSamples CTS offsets %v, want %v", readCTS, cts)
	}
}
