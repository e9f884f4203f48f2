package dts

import (
	"encoding/binary"
	"slices"
	"testing"
)

type push struct {
	pts int64
	key bool
}

// cases are the unit-test table and the fuzzer's seeds. dts lists the
// decode time of every frame that is not dropped; jump the index (in that
// list) of a frame marked Jump, or -1.
var cases = []struct {
	name   string
	frames []push
	dts    []int64
	jump   int
}{
	{"no B-frames", keyFirst(0, 3600, 7200, 10800, 14400, 18000),
		[]int64{0, 3600, 7200, 10800, 14400, 18000}, -1},
	{"one B-frame (I P B)", keyFirst(0, 7200, 3600, 14400, 10800, 21600, 18000),
		[]int64{0, 3600, 7200, 10800, 14400, 18000, 21600}, -1},
	{"x264 B-pyramid (P+4 B+2 b+1 b+3)", keyFirst(0, 14400, 7200, 3600, 10800, 28800, 21600, 18000, 25200),
		steps(0, 3600, 9), -1},
	{"open GOP (leading pictures before the CRA)", keyFirst(21600, 14400, 18000, 32400, 25200, 28800),
		[]int64{21600, 25200, 28800, 32400, 36000, 39600}, -1},
	{"PTS jump (camera clock step)", keyFirst(0, 3600, 7200, 10800, 10800+3600*90000, 14400+3600*90000),
		[]int64{0, 3600, 7200, 10800, 14400, 18000}, 4},
	{"jitter of ±1 tick with B-frames", keyFirst(0, 7201, 3599, 14400, 10801, 21599, 18000),
		steps(0, 3599, 7), -1},
	{"jitter of ±1 tick without B-frames", keyFirst(0, 3601, 7199, 10800, 14401),
		[]int64{0, 3601, 7199, 10800, 14401}, -1},
	{"first frame not a key frame", append([]push{{-3600, false}}, keyFirst(0, 3600, 7200, 10800, 14400)...),
		[]int64{0, 3600, 7200, 10800, 14400}, -1},
}

func keyFirst(pts ...int64) []push {
	p := make([]push, len(pts))
	for i, v := range pts {
		p[i] = push{v, i == 0}
	}
	return p
}

func steps(from, step int64, n int) []int64 {
	d := make([]int64, n)
	for i := range d {
		d[i] = from + int64(i)*step
	}
	return d
}

// run pushes frames, checking the invariants, and returns the frames out.
func run(t *testing.T, frames []push) []Frame[int] {
	t.Helper()
	var tm Timer[int]
	var out []Frame[int]
	pushed := 0
	pull := func() {
		for {
			f, ok := tm.Next()
			if !ok {
				return
			}
			out = append(out, f)
		}
	}
	for i, p := range frames {
		if tm.Push(p.pts, p.key, i) {
			pushed++
		}
		if tm.Held() > HoldBack {
			t.Fatalf("frame %d: %d held back, want at most %d", i, tm.Held(), HoldBack)
		}
		pull()
	}
	tm.Flush()
	pull()
	if len(out) != pushed {
		t.Fatalf("%d frames out, %d pushed", len(out), pushed)
	}
	for i, f := range out {
		if i > 0 && f.Value <= out[i-1].Value {
			t.Fatalf("frame %d out of order", i)
		}
		if f.CTS90k > MaxCTS90k || f.CTS90k < -MaxCTS90k {
			t.Fatalf("frame %d: composition offset %d beyond ±%d", i, f.CTS90k, MaxCTS90k)
		}
		if i == 0 {
			continue
		}
		prev := out[i-1]
		if f.Same {
			if f.DTS90k != prev.DTS90k {
				t.Fatalf("frame %d: same picture, decode time %d after %d", i, f.DTS90k, prev.DTS90k)
			}
		} else if f.DTS90k <= prev.DTS90k {
			t.Fatalf("frame %d: decode time %d after %d", i, f.DTS90k, prev.DTS90k)
		}
	}
	return out
}

func TestTimer(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.frames)
			var got []int64
			jump := -1
			for i, f := range out {
				got = append(got, f.DTS90k)
				if f.Jump {
					jump = i
				}
				if !f.Jump && jump < 0 && int64(f.CTS90k) != f.PTS90k-f.DTS90k {
					t.Errorf("frame %d: offset %d, want pts-dts %d", i, f.CTS90k, f.PTS90k-f.DTS90k)
				}
			}
			if !slices.Equal(got, tc.dts) {
				t.Errorf("decode times %v, want %v", got, tc.dts)
			}
			if jump != tc.jump {
				t.Errorf("jump at %d, want %d", jump, tc.jump)
			}
		})
	}
}

// encode turns frames into the fuzzer's input: per frame a 4-byte
// little-endian step from the previous PTS and a key byte.
func encode(frames []push) []byte {
	var b []byte
	var prev int64
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(f.pts-prev)))
		k := byte(0)
		if f.key {
			k = 1
		}
		b = append(b, k)
		prev = f.pts
	}
	return b
}

func FuzzDTS(f *testing.F) {
	for _, tc := range cases {
		f.Add(encode(tc.frames))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var frames []push
		var pts int64
		for ; len(b) >= 5 && len(frames) < 1000; b = b[5:] {
			pts += int64(int32(binary.LittleEndian.Uint32(b)))
			frames = append(frames, push{pts, b[4]&1 != 0})
		}
		run(t, frames)
	})
}
