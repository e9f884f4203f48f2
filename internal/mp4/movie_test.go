package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// fixtureSamples turns access units into movie samples (25 fps) and their
// data, all with the given entry index.
func fixtureSamples(aus []testAU, entry int) ([]MovieSample, []byte) {
	var (
		samples []MovieSample
		data    []byte
	)
	for _, au := range aus {
		n := len(data)
		data = AppendSampleData(data, au.nalus)
		samples = append(samples, MovieSample{Dur90k: 3600, Size: uint32(len(data) - n), Key: au.key, Entry: entry})
	}
	return samples, data
}

// chunksOf splits n samples into chunks of per samples and a shorter last.
func chunksOf(n, per int) []int {
	var c []int
	for ; n > 0; n -= per {
		c = append(c, min(n, per))
	}
	return c
}

// writeMovie builds the header of m, checks it and writes header + data to
// a temporary file, returning its path and the parsed header.
func writeMovie(t *testing.T, m *Movie, data []byte) (string, *parsedMovie) {
	t.Helper()
	hdr, err := AppendMovieHeader(nil, m)
	if err != nil {
		t.Fatalf("AppendMovieHeader: %v", err)
	}
	p, err := checkMovieHeader(hdr, m)
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	return writeTemp(t, "m.mp4", append(hdr, data...)), p
}

// fixtureMovie is the first n frames of a fixture as a one-entry movie in
// chunks of 12 samples.
func fixtureMovie(t *testing.T, c media.Codec, fixture string, n int) (*Movie, []byte, Track) {
	t.Helper()
	aus := splitAUs(c, loadFixture(t, fixture))[:n]
	tr := Track{Codec: c, Params: paramsOf(c, aus)}
	entry, err := SampleEntry(tr)
	if err != nil {
		t.Fatal(err)
	}
	samples, data := fixtureSamples(aus, 0)
	return &Movie{Entries: [][]byte{entry}, Width: 1920, Height: 1080, Samples: samples,
		Chunks: chunksOf(n, 12)}, data, tr
}

// ffprobeLines runs ffprobe -v error args... path with csv output and
// returns its lines without trailing commas.
func ffprobeLines(t *testing.T, path string, args ...string) []string {
	t.Helper()
	args = append(append([]string{"-v", "error"}, args...), "-of", "csv=p=0", path)
	out, err := exec.Command(testpeer.FFprobe(t), args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v: %s", args, err, stderrText(err))
	}
	lines := strings.Fields(string(out))
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, ",") // ffprobe ends some lines with a comma
	}
	return lines
}

func stderrText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestSampleEntry checks that SampleEntry is the entry Init puts in stsd.
func TestSampleEntry(t *testing.T) {
	for _, tc := range []struct {
		codec   media.Codec
		fixture string
	}{{media.CodecH264, "main.h264"}, {media.CodecH265, "main.h265"}} {
		tr := Track{Codec: tc.codec, Params: paramsOf(tc.codec, splitAUs(tc.codec, loadFixture(t, tc.fixture)[:200000]))}
		entry, err := SampleEntry(tr)
		if err != nil {
			t.Fatal(err)
		}
		init, err := Init(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(init, entry) || binary.BigEndian.Uint32(entry) != uint32(len(entry)) {
			t.Errorf("%s: SampleEntry is not a box found in Init", tc.codec)
		}
		var got Track
		if err := parseSampleEntry(binary.BigEndian.Uint32(entry[4:]), entry[8:], &got); err != nil ||
			got.Width != 1920 || got.Height != 1080 || !bytes.Equal(got.Params.SPS, tr.Params.SPS) {
			t.Errorf("%s: entry parses to %+v, %v", tc.codec, got, err)
		}
	}
	if _, err := SampleEntry(Track{Codec: media.CodecAAC}); err == nil || !strings.Contains(err.Error(), "mp4 sample entry") {
		t.Errorf("SampleEntry(AAC) error %v", err)
	}
}

// TestMovieDecode writes the first 100 frames of the 1080p fixtures as a
// progressive movie in chunks of 12 samples: ffmpeg must decode it without
// a word, and ffprobe must see every packet where the tables say.
func TestMovieDecode(t *testing.T) {
	for _, tc := range []struct {
		fixture, probeCodec string
		codec               media.Codec
	}{
		{"main.h264", "h264", media.CodecH264},
		{"main.h265", "hevc", media.CodecH265},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			testpeer.FFmpeg(t)
			m, data, tr := fixtureMovie(t, tc.codec, tc.fixture, 100)
			m.CreationTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			path, p := writeMovie(t, m, data)
			if p.created != uint64(m.CreationTime.Unix())+2082844800 || p.chunkBox != "stco" || p.mdatHdrLen != 8 ||
				p.ctts || !p.stss || p.elst {
				t.Errorf("header %+v", p)
			}
			var got Track
			if err := parseSampleEntry(binary.BigEndian.Uint32(p.entries[0][4:]), p.entries[0][8:], &got); err != nil ||
				got.Codec != tc.codec || !bytes.Equal(got.Params.PPS, tr.Params.PPS) {
				t.Errorf("sample entry parses to %+v, %v", got, err)
			}
			frames, errText := testpeer.Decode(t, path)
			if errText != "" {
				t.Errorf("ffmpeg: %s", errText)
			}
			if frames != 100 {
				t.Errorf("ffprobe counted %d frames, want 100", frames)
			}
			if d := ffprobeDuration(t, path); d != 4.0 {
				t.Errorf("ffprobe duration %v s, want 4.0", d)
			}
			v, err := testpeer.ProbeVideo(t, path, 30*time.Second)
			if err != nil || v.Codec != tc.probeCodec || v.Width != 1920 || v.Height != 1080 {
				t.Errorf("ffprobe: %+v, %v", v, err)
			}
			// Every packet: pts, dts, size, file position and key flag.
			lines := ffprobeLines(t, path, "-select_streams", "v:0", "-show_entries", "packet=pts,dts,size,pos,flags")
			if len(lines) != 100 {
				t.Fatalf("%d packets, want 100", len(lines))
			}
			for i, l := range lines {
				key := "_"
				if m.Samples[i].Key {
					key = "K"
				}
				want := fmt.Sprintf("%d,%d,%d,%d,%s", i*3600, i*3600, m.Samples[i].Size, p.offsets[i], key)
				if !strings.HasPrefix(l, want) {
					t.Fatalf("packet %d: ffprobe %q, want %q", i, l, want)
				}
			}
		})
	}
}

// grayFrame decodes one frame with ffmpeg as 8-bit gray: input args, then
// the filter and output.
func grayFrame(t *testing.T, args ...string) []byte {
	t.Helper()
	args = append(append([]string{"-nostdin", "-v", "error"}, args...), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")
	out, err := exec.Command(testpeer.FFmpeg(t), args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, stderrText(err))
	}
	return out
}

// meanAbsDiff is the mean absolute difference of two equal-size images.
func meanAbsDiff(t *testing.T, a, b []byte) float64 {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("images of %d and %d bytes", len(a), len(b))
	}
	var sum int
	for i := range a {
		sum += max(int(a[i])-int(b[i]), int(b[i])-int(a[i]))
	}
	return float64(sum) / float64(len(a))
}

// TestMovieEditList starts the presentation mid-GOP, at frame 37, and shows
// 40 frames: the samples start at the key frame 0 and ffmpeg, which applies
// edit lists, must decode frames 0..36 but show none of them.
func TestMovieEditList(t *testing.T) {
	testpeer.FFmpeg(t)
	m, data, _ := fixtureMovie(t, media.CodecH264, "main.h264", 100)
	m.EditMediaTime90k, m.EditDur90k = 37*3600, 40*3600
	path, p := writeMovie(t, m, data)
	if !p.elst || p.versions["elst"] != 0 {
		t.Fatalf("no version 0 elst: %+v", p)
	}
	if d := ffprobeDuration(t, path); math.Abs(d-1.6) > 0.04 {
		t.Errorf("ffprobe duration %v s, want 1.6", d)
	}
	if _, errText := testpeer.Decode(t, path); errText != "" {
		t.Errorf("ffmpeg: %s", errText)
	}
	pts := ffprobeLines(t, path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")
	if len(pts) == 0 || pts[0] != "0.000000" {
		t.Fatalf("first frame pts_time %v, want 0.000000", pts[:min(len(pts), 3)])
	}
	// ffmpeg keeps the frames whose presentation interval meets the edit.
	if len(pts) != 40 || pts[39] != "1.560000" {
		t.Errorf("%d frames shown, last at %s; want 40, last at 1.560000", len(pts), pts[len(pts)-1])
	}
	// The first frame shown is the fixture's frame 37, not 36 or 38.
	first := grayFrame(t, "-i", path)
	fixture := filepath.Join("..", "sim", "fixtures", "main.h264")
	for _, n := range []int{36, 37, 38} {
		want := grayFrame(t, "-f", "h264", "-i", fixture, "-vf", fmt.Sprintf(`select=eq(n\,%d)`, n))
		d := meanAbsDiff(t, first, want)
		if n == 37 && d > 0.5 || n != 37 && d < 2 {
			t.Errorf("first frame differs from fixture frame %d by %.2f", n, d)
		}
	}
}

// x264BFrames encodes 50 frames with two B-frames and returns the access
// units (decode order) and each one's presentation time.
func x264BFrames(t *testing.T) ([]testAU, []int64) {
	t.Helper()
	dir := t.TempDir()
	mkv, raw := filepath.Join(dir, "in.mkv"), filepath.Join(dir, "in.h264")
	ffmpeg := testpeer.FFmpeg(t)
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-bf", "2",
			"-g", "25", "-pix_fmt", "yuv420p", mkv},
		{"-i", mkv, "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", raw},
	} {
		if out, err := exec.Command(ffmpeg, append([]string{"-nostdin", "-v", "error"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
		}
	}
	var pts90k []int64
	for _, l := range ffprobeLines(t, mkv, "-select_streams", "v:0", "-show_entries", "packet=pts") {
		ms, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("packet pts %q", l)
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
	return aus, pts90k
}

// TestMovieBFrames writes an x264 stream with B-frames with decode times
// equal to the sorted presentation times, so B-frames have negative
// composition offsets (ctts version 1) and no edit is needed: ffmpeg must
// decode every frame and present them at the encoder's times.
func TestMovieBFrames(t *testing.T) {
	aus, pts90k := x264BFrames(t)
	dts90k := slices.Sorted(slices.Values(pts90k))
	samples, data := fixtureSamples(aus, 0)
	negative := false
	for i := range samples {
		samples[i].CTSOffset90k = int32(pts90k[i] - dts90k[i])
		negative = negative || samples[i].CTSOffset90k < 0
	}
	if !negative || dts90k[0] != 0 {
		t.Fatalf("x264 gave no negative offsets or a first time of %d", dts90k[0])
	}
	entry, err := SampleEntry(Track{Codec: media.CodecH264, Params: paramsOf(media.CodecH264, aus)})
	if err != nil {
		t.Fatal(err)
	}
	m := &Movie{Entries: [][]byte{entry}, Width: 320, Height: 240, Samples: samples, Chunks: chunksOf(50, 7)}
	path, p := writeMovie(t, m, data)
	if !p.ctts || p.versions["ctts"] != 1 {
		t.Fatalf("ctts present %v version %d, want version 1", p.ctts, p.versions["ctts"])
	}
	frames, errText := testpeer.Decode(t, path)
	if errText != "" || frames != 50 {
		t.Errorf("ffmpeg decoded %d frames, want 50: %s", frames, errText)
	}
	var got []int64
	for _, l := range ffprobeLines(t, path, "-select_streams", "v:0", "-show_entries", "packet=pts") {
		v, _ := strconv.ParseInt(l, 10, 64)
		got = append(got, v)
	}
	if !slices.Equal(got, pts90k) {
		t.Errorf("ffprobe packet pts\n got %v\nwant %v", got, pts90k)
	}
	shown := ffprobeLines(t, path, "-select_streams", "v:0", "-show_entries", "frame=pts")
	if len(shown) != 50 || shown[0] != "0" || shown[49] != strconv.Itoa(49*3600) {
		t.Errorf("frames shown at %v, want 0..%d", shown, 49*3600)
	}
}

// TestMovieTwoEntries puts 50 frames of the 1080p main stream (entry 1)
// and then 50 of the 360p sub stream (entry 2) in one track.
//
// ffmpeg 5.1's mov demuxer reads every stsd entry and, when the stsc sample
// description index changes, hands the decoder the new entry's avcC as new
// extradata: both halves decode at their own size. The out-of-band case
// proves it: with the parameter sets stripped from the samples, the sub
// stream's frames can only decode from the second entry's avcC.
func TestMovieTwoEntries(t *testing.T) {
	for _, inBand := range []bool{true, false} {
		t.Run(fmt.Sprintf("in-band parameter sets %v", inBand), func(t *testing.T) {
			testpeer.FFmpeg(t)
			m := &Movie{Width: 1920, Height: 1080}
			var data []byte
			for i, fixture := range []string{"main.h264", "sub.h264"} {
				aus := splitAUs(media.CodecH264, loadFixture(t, fixture))[:50]
				entry, err := SampleEntry(Track{Codec: media.CodecH264, Params: paramsOf(media.CodecH264, aus)})
				if err != nil {
					t.Fatal(err)
				}
				if !inBand {
					for j := range aus {
						aus[j].nalus = slices.DeleteFunc(slices.Clone(aus[j].nalus), func(n []byte) bool {
							return n[0]&0x1f == 7 || n[0]&0x1f == 8
						})
					}
				}
				samples, d := fixtureSamples(aus, i)
				m.Entries = append(m.Entries, entry)
				m.Samples = append(m.Samples, samples...)
				m.Chunks = append(m.Chunks, chunksOf(50, 10)...)
				data = append(data, d...)
			}
			path, p := writeMovie(t, m, data)
			for i, want := range [][2]int{{1920, 1080}, {640, 360}} {
				var tr Track
				err := parseSampleEntry(binary.BigEndian.Uint32(p.entries[i][4:]), p.entries[i][8:], &tr)
				if err != nil || tr.Width != want[0] || tr.Height != want[1] {
					t.Errorf("entry %d parses to %dx%d, %v", i, tr.Width, tr.Height, err)
				}
			}
			frames, errText := testpeer.Decode(t, path)
			if errText != "" || frames != 100 {
				t.Errorf("ffmpeg decoded %d frames, want 100: %s", frames, errText)
			}
			sizes := ffprobeLines(t, path, "-select_streams", "v:0", "-show_entries", "frame=width,height")
			if len(sizes) != 100 || sizes[0] != "1920,1080" || sizes[49] != "1920,1080" || sizes[50] != "640,360" || sizes[99] != "640,360" {
				t.Errorf("frame sizes %v", sizes)
			}
		})
	}
}

// Stand-in sample entries for tests of the header bytes: whole boxes of the
// right types, which is all AppendMovieHeader looks at.
var (
	fakeAvc1 = []byte{0, 0, 0, 10, 'a', 'v', 'c', '1', 1, 2}
	fakeHvc1 = []byte{0, 0, 0, 8, 'h', 'v', 'c', '1'}
)

// uniformSamples returns n samples of the given size and duration, all key.
func uniformSamples(n int, size, dur90k uint32) []MovieSample {
	s := make([]MovieSample, n)
	for i := range s {
		s[i] = MovieSample{Dur90k: dur90k, Size: size, Key: true}
	}
	return s
}

// TestMovieHeaderForms checks the box forms chosen at every 32-bit limit,
// without sample data: only the header is built.
func TestMovieHeaderForms(t *testing.T) {
	const big = 0xF0000000 // 3.75 GiB
	// The stco/co64 boundary: a first chunk that puts the second exactly at
	// 2^32-1, then one byte further.
	boundary := func(extra uint32) *Movie {
		m := &Movie{Entries: [][]byte{fakeAvc1}, Samples: []MovieSample{{Size: big, Key: true}, {Size: 1, Key: true}}, Chunks: []int{1, 1}}
		hdr, err := MovieHeaderSize(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Samples[0].Size = math.MaxUint32 - uint32(hdr) + extra
		return m
	}
	twoLong := uniformSamples(2, 100, math.MaxUint32)
	for _, tc := range []struct {
		name     string
		m        *Movie
		chunkBox string
		mdatHdr  int
		versions map[string]byte // box -> version; absent: must not exist
		check    func(t *testing.T, hdr []byte, p *parsedMovie)
	}{
		{name: "small", m: &Movie{Entries: [][]byte{fakeHvc1}, Samples: uniformSamples(3, 7, 3600), Chunks: []int{2, 1}},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 0, "tkhd": 0, "mdhd": 0}},
		{name: "co64 and largesize", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(4, big, 3600), Chunks: []int{1, 1, 1, 1}},
			chunkBox: "co64", mdatHdr: 16},
		{name: "stco with largesize", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(3, big, 3600), Chunks: []int{3}},
			chunkBox: "stco", mdatHdr: 16},
		{name: "largest compact mdat", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(1, math.MaxUint32-8, 3600), Chunks: []int{1}},
			chunkBox: "stco", mdatHdr: 8, check: func(t *testing.T, hdr []byte, _ *parsedMovie) {
				if got := binary.BigEndian.Uint32(hdr[len(hdr)-8:]); got != math.MaxUint32 {
					t.Errorf("mdat size %#x", got)
				}
			}},
		{name: "smallest largesize mdat", m: &Movie{Entries: [][]byte{fakeAvc1},
			Samples: []MovieSample{{Size: math.MaxUint32 - 8, Key: true}, {Size: 1, Key: true}}, Chunks: []int{2}},
			chunkBox: "stco", mdatHdr: 16},
		{name: "last chunk at 2^32-1", m: boundary(0), chunkBox: "stco", mdatHdr: 8},
		{name: "last chunk at 2^32", m: boundary(1), chunkBox: "co64", mdatHdr: 8},
		{name: "64-bit durations", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: twoLong, Chunks: []int{2}},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 1, "tkhd": 1, "mdhd": 1}},
		{name: "elst v1 for media time", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: twoLong, Chunks: []int{1, 1},
			EditMediaTime90k: math.MaxInt32 + 1, EditDur90k: 1000},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 0, "tkhd": 0, "mdhd": 1, "elst": 1}},
		{name: "elst v1 for duration", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: twoLong, Chunks: []int{1, 1},
			EditMediaTime90k: 5},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 1, "tkhd": 1, "mdhd": 1, "elst": 1}},
		{name: "elst v0 for shorter duration", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(3, 7, 3600), Chunks: []int{3},
			EditDur90k: 3600}, chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 0, "elst": 0}},
		{name: "creation after 2040", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(3, 7, 3600), Chunks: []int{3},
			CreationTime: time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"mvhd": 1, "tkhd": 1, "mdhd": 1},
			check: func(t *testing.T, _ []byte, p *parsedMovie) {
				if want := uint64(time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + 2082844800); p.created != want {
					t.Errorf("created %d, want %d", p.created, want)
				}
			}},
		{name: "creation before 1904", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(1, 7, 3600), Chunks: []int{1},
			CreationTime: time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC)}, chunkBox: "stco", mdatHdr: 8,
			check: func(t *testing.T, _ []byte, p *parsedMovie) {
				if p.created != 0 {
					t.Errorf("created %d, want 0", p.created)
				}
			}},
		{name: "zero sizes use the table", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: uniformSamples(3, 0, 0), Chunks: []int{3}},
			chunkBox: "stco", mdatHdr: 8},
		{name: "ctts v0 and no key", m: &Movie{Entries: [][]byte{fakeAvc1}, Samples: []MovieSample{
			{Dur90k: 1, Size: 1, CTSOffset90k: 7}, {Dur90k: 2, Size: 2}, {Dur90k: 2, Size: 3, CTSOffset90k: math.MaxInt32}}, Chunks: []int{1, 2}},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"ctts": 0}},
		{name: "ctts v1", m: &Movie{Entries: [][]byte{fakeAvc1, fakeHvc1}, Samples: []MovieSample{
			{Dur90k: 1, Size: 1, Key: true}, {Dur90k: 1, Size: 1, CTSOffset90k: math.MinInt32, Entry: 1}}, Chunks: []int{1, 1}},
			chunkBox: "stco", mdatHdr: 8, versions: map[string]byte{"ctts": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, err := AppendMovieHeader([]byte("prefix"), tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(hdr, []byte("prefix")) {
				t.Fatal("prefix lost")
			}
			hdr = hdr[len("prefix"):]
			p, err := checkMovieHeader(hdr, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if p.chunkBox != tc.chunkBox || p.mdatHdrLen != tc.mdatHdr {
				t.Errorf("%s and %d-byte mdat header, want %s and %d", p.chunkBox, p.mdatHdrLen, tc.chunkBox, tc.mdatHdr)
			}
			for box, v := range tc.versions {
				if got, ok := p.versions[box]; !ok || got != v {
					t.Errorf("%s version %d (present %v), want %d", box, got, ok, v)
				}
			}
			for box, present := range map[string]bool{"ctts": p.ctts, "elst": p.elst} {
				if _, want := tc.versions[box]; present != want {
					t.Errorf("%s present %v, want %v", box, present, want)
				}
			}
			if tc.check != nil {
				tc.check(t, hdr, p)
			}
		})
	}
}

// validMovie is a small movie that AppendMovieHeader accepts.
func validMovie() *Movie {
	return &Movie{Entries: [][]byte{fakeAvc1, fakeHvc1}, Width: 640, Height: 360,
		Samples: []MovieSample{{Dur90k: 3600, Size: 5, Key: true}, {Dur90k: 3600, Size: 3}, {Dur90k: 3600, Size: 4, Key: true, Entry: 1}},
		Chunks:  []int{2, 1}}
}

func TestAppendMovieHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(m *Movie)
		want   error
	}{
		{"valid", func(*Movie) {}, nil},
		{"no samples", func(m *Movie) { m.Samples, m.Chunks = nil, nil }, ErrMovieNoSamples},
		{"too many samples", func(m *Movie) { m.Samples = make([]MovieSample, maxMovieSamples+1) }, ErrMovieTooMany},
		{"no entries", func(m *Movie) { m.Entries = nil }, ErrMovieEntry},
		{"entry index negative", func(m *Movie) { m.Samples[2].Entry = -1 }, ErrMovieEntry},
		{"entry index out of range", func(m *Movie) { m.Samples[2].Entry = 2 }, ErrMovieEntry},
		{"entry not a box", func(m *Movie) { m.Entries[1] = []byte{0, 0, 0, 9, 'a', 'v', 'c', '1'} }, ErrMovieEntry},
		{"entry too short", func(m *Movie) { m.Entries[1] = []byte{0, 0, 0} }, ErrMovieEntry},
		{"first entry not video", func(m *Movie) { m.Entries[0] = []byte{0, 0, 0, 8, 'm', 'p', '4', 'a'} }, ErrMovieEntry},
		{"no chunks", func(m *Movie) { m.Chunks = nil }, ErrMovieChunks},
		{"chunks short", func(m *Movie) { m.Chunks = []int{2} }, ErrMovieChunks},
		{"chunks long", func(m *Movie) { m.Chunks = []int{2, 2} }, ErrMovieChunks},
		{"chunks extra", func(m *Movie) { m.Chunks = []int{2, 1, 1} }, ErrMovieChunks},
		{"empty chunk", func(m *Movie) { m.Chunks = []int{2, 0, 1} }, ErrMovieChunks},
		{"negative chunk", func(m *Movie) { m.Chunks = []int{4, -1} }, ErrMovieChunks},
		{"chunk mixes entries", func(m *Movie) { m.Chunks = []int{1, 2} }, ErrMovieChunks},
		{"negative edit time", func(m *Movie) { m.EditMediaTime90k = -1 }, ErrMovieEdit},
		{"negative edit duration", func(m *Movie) { m.EditDur90k = -1 }, ErrMovieEdit},
		{"edit past the media", func(m *Movie) { m.EditMediaTime90k = 3 * 3600 }, ErrMovieEdit},
		{"width", func(m *Movie) { m.Width = 70000 }, ErrMovieSize},
		{"height", func(m *Movie) { m.Height = -1 }, ErrMovieSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validMovie()
			tc.change(m)
			dst := []byte("prefix")
			out, err := AppendMovieHeader(dst, m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			size, sizeErr := MovieHeaderSize(m)
			if (sizeErr == nil) != (err == nil) {
				t.Errorf("MovieHeaderSize err %v, AppendMovieHeader err %v", sizeErr, err)
			}
			if err != nil {
				if string(out) != "prefix" {
					t.Errorf("dst changed on error")
				}
				return
			}
			if size != len(out)-len(dst) {
				t.Errorf("MovieHeaderSize %d, header %d bytes", size, len(out)-len(dst))
			}
			if _, err := checkMovieHeader(out[len(dst):], m); err != nil {
				t.Error(err)
			}
		})
	}
}

// movieFromBytes builds an arbitrary movie, valid or not, of at most 64
// samples from fuzz input.
func movieFromBytes(b []byte) *Movie {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		v := b[0]
		b = b[1:]
		return v
	}
	pick := func(vals ...int64) int64 { return vals[int(next())%len(vals)] }
	m := &Movie{}
	for range next() % 4 {
		m.Entries = append(m.Entries, [][]byte{fakeAvc1, fakeHvc1, {0, 0, 0, 8, 'm', 'p', '4', 'a'}, {1, 2}}[next()%4])
	}
	m.Width, m.Height = int(pick(0, 1920, 70000, -1)), int(pick(0, 1080, -1))
	m.EditMediaTime90k = pick(0, 0, 3600, 1<<31, -1, math.MaxInt64)
	m.EditDur90k = pick(0, 0, 3600, 1<<33, -5)
	m.CreationTime = []time.Time{{}, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)}[next()%3]
	for range next() % 64 {
		flags := next()
		m.Samples = append(m.Samples, MovieSample{
			Dur90k:       uint32(pick(3600, 3600, 0, 1, 3003, math.MaxUint32)),
			Size:         uint32(pick(1000, 1000, 0, 1, 0xF0000000, math.MaxUint32)),
			CTSOffset90k: int32(int8(next())) * 3600,
			Key:          flags&1 != 0,
			Entry:        int(flags>>1&7) - 2*int(flags>>4&1), // mostly 0, sometimes out of range
		})
	}
	for total := 0; total < len(m.Samples) && len(m.Chunks) < 80; {
		c := int(next() % 9)
		if len(b) == 0 { // input used up: one last chunk with the rest
			c = len(m.Samples) - total
		}
		m.Chunks = append(m.Chunks, c)
		total += c
	}
	return m
}

// FuzzAppendMovieHeader builds headers from arbitrary movies: it must never
// panic, fail exactly when MovieHeaderSize does, leave dst alone on error
// and otherwise write a header whose tables say what the movie says.
func FuzzAppendMovieHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 1, 1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 3})
	f.Add([]byte{2, 0, 1, 1, 1, 2, 1, 0, 8, 4, 4, 7, 1, 1, 4, 4, 255, 3, 3, 0, 1, 0, 0, 1, 4, 1, 2, 2, 3})
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x08\x08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := movieFromBytes(b)
		size, sizeErr := MovieHeaderSize(m)
		out, err := AppendMovieHeader([]byte("prefix"), m)
		if (err == nil) != (sizeErr == nil) {
			t.Fatalf("AppendMovieHeader err %v, MovieHeaderSize err %v", err, sizeErr)
		}
		if err != nil {
			if string(out) != "prefix" {
				t.Fatal("dst changed on error")
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("prefix")) || size != len(out)-6 {
			t.Fatalf("prefix lost or size %d for %d bytes", size, len(out)-6)
		}
		if _, err := checkMovieHeader(out[6:], m); err != nil {
			t.Fatal(err)
		}
	})
}
