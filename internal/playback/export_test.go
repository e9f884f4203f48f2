package playback

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

var at = pt.At

const frameDur = pt.FrameDur

// testSource records nothing yet: a Source over an empty test recording
// of camera "door".
func testSource(t *testing.T) (*Source, *pt.Recording) {
	rc := pt.NewRecording(t, "door")
	return &Source{Index: rc.Index, Disks: rc.Disks, Cache: NewIndexCache(1 << 20)}, rc
}

// writeFile saves a virtual file.
func writeFile(t *testing.T, f *File, path string) {
	t.Helper()
	rd := f.Open(context.Background())
	defer rd.Close()
	pt.WriteFile(t, rd, f.Size(), path)
}

// TestExportRanges exports ranges on and off key frames, inside one
// segment, across segments and across a gap, and checks each with ffmpeg:
// the duration is the range within one frame, it decodes without a word
// from ffmpeg, and the first frame shown is the one recorded at from.
func TestExportRanges(t *testing.T) {
	src, rc := testSource(t)
	// Run 1: frames 0..299 in segments of 100 (4 s each). Then a 7.2 s
	// gap (180 frame times), run 2: 150 frames starting at frame time 480.
	rc.AddRun(t, at(0), 300, 100)
	rc.AddRun(t, at(480), 150, 100)
	cache := pt.FixtureGray{}
	cases := []struct {
		name     string
		from, to float64 // frame times after t0
		wantDur  float64 // seconds
		shows    int     // fixture frame shown first
	}{
		{"on key frames, one segment", 50, 90, 1.6, 50},
		{"off key frames, one segment", 37, 83, 1.84, 37},
		{"from mid-frame starts at that frame", 37.5, 83, 1.84, 37},
		{"across segments", 70, 260, 7.6, 70},
		{"first frame of a segment", 100, 130, 1.2, 100},
		{"across a gap", 280, 520, 9.6, 280},
		{"from in a gap starts at the next run", 400, 520, 1.6, 0},
		{"to past the end is clipped", 600, 1000, 1.2, 120},
		{"from before the start is clipped", -100, 20, 0.8, 0},
		{"whole recording", 0, 630, 25.2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := src.Export(context.Background(), "door", "main", at(tc.from), at(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "export.mp4")
			writeFile(t, f, path)
			if got := pt.ProbeDuration(t, path); math.Abs(got-tc.wantDur) > frameDur.Seconds() {
				t.Errorf("ffprobe duration %.3f s, want %.3f ± 0.04", got, tc.wantDur)
			}
			if got := f.To.Sub(f.From).Seconds(); math.Abs(got-tc.wantDur) > 0.001 {
				t.Errorf("File range %s..%s = %.3f s, want %.3f", f.From, f.To, got, tc.wantDur)
			}
			errText, frames := pt.DecodeErrors(t, path)
			if errText != "" {
				t.Errorf("ffmpeg -v error printed: %s", errText)
			}
			if frames == 0 {
				t.Errorf("ffmpeg decoded no frames")
			}
			pt.AssertShows(t, cache, path, tc.shows)
		})
	}
}

// TestExportErrors covers ranges that cannot be exported.
func TestExportErrors(t *testing.T) {
	src, rc := testSource(t)
	rc.AddRun(t, at(0), 100, 100)
	ctx := context.Background()
	cases := []struct {
		name       string
		camera     string
		from, to   time.Time
		wantStatus int
	}{
		{"reversed", "door", at(50), at(10), 400},
		{"empty", "door", at(10), at(10), 400},
		{"too long", "door", at(0), at(0).Add(25 * time.Hour), 400},
		{"before any video", "door", at(-1000), at(-500), 404},
		{"after all video", "door", at(200), at(300), 404},
		{"camera never recorded", "gate", at(0), at(50), 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := src.Export(ctx, tc.camera, "main", tc.from, tc.to)
			var pe *Error
			if !errors.As(err, &pe) || pe.Status != tc.wantStatus {
				t.Fatalf("Export = %v, want a %d *Error", err, tc.wantStatus)
			}
			t.Logf("%d: %s", pe.Status, pe.Message)
		})
	}
}

// TestExportRangeRequests checks that any byte range of the virtual file
// equals the same span of a full read, and that the ETag follows content.
func TestExportRangeRequests(t *testing.T) {
	src, rc := testSource(t)
	rc.AddRun(t, at(0), 200, 100)
	ctx := context.Background()
	f, err := src.Export(ctx, "door", "main", at(10), at(190))
	if err != nil {
		t.Fatal(err)
	}
	var full bytes.Buffer
	rd := f.Open(ctx)
	if _, err := rd.WriteTo(&full); err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if int64(full.Len()) != f.Size() {
		t.Fatalf("full read %d bytes, Size %d", full.Len(), f.Size())
	}
	rd = f.Open(ctx)
	defer rd.Close()
	size := f.Size()
	for _, r := range [][2]int64{{0, 1}, {0, 100}, {7, 4096}, {size - 1, 1}, {size / 2, size / 2}, {1000, 300000}} {
		buf := make([]byte, r[1])
		n, err := rd.ReadAt(buf, r[0])
		if n != len(buf) || (err != nil && r[0]+r[1] < size) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", r[0], r[1], n, err)
		}
		if !bytes.Equal(buf, full.Bytes()[r[0]:r[0]+r[1]]) {
			t.Errorf("ReadAt(%d, %d) differs from the full read", r[0], r[1])
		}
	}
	again, err := src.Export(ctx, "door", "main", at(10), at(190))
	if err != nil {
		t.Fatal(err)
	}
	if again.ETag != f.ETag {
		t.Errorf("same range, different ETag: %s, %s", f.ETag, again.ETag)
	}
	other, err := src.Export(ctx, "door", "main", at(10), at(189))
	if err != nil {
		t.Fatal(err)
	}
	if other.ETag == f.ETag {
		t.Errorf("different range, same ETag %s", f.ETag)
	}
	// New recording inside the range changes the content and the tag.
	rc.AddRun(t, at(300), 100, 100)
	before, _ := src.Export(ctx, "door", "main", at(150), at(450))
	rc.AddRun(t, at(420), 50, 100)
	after, err := src.Export(ctx, "door", "main", at(150), at(450))
	if err != nil || before == nil {
		t.Fatal(err)
	}
	if after.ETag == before.ETag {
		t.Errorf("content changed, ETag did not")
	}
}
