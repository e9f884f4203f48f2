package recorder

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/blob/local"
	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// BenchmarkRunWriter records the simulator's 1080p clip (2.4 Mbit/s, 25
// fps) through one run writer onto a local disk with a SQLite index: the
// recording path after depacketization (fragments of half a second, each
// hashed and written with one writev; a segment per minute of video,
// closed with its sample index, its row and its hash-chain entry off).
// fsync is left to the end so the figure is the CPU cost, not the disk's.
// Reported per frame, with the video bytes written per second.
func BenchmarkRunWriter(b *testing.B) {
	frames, params, err := sim.Fixture("main.h264")
	if err != nil {
		b.Fatal(err)
	}
	// Frames as the depacketizer hands them over: NAL units and the laid
	// out sample sharing one buffer.
	in := make([]ingest.Frame, len(frames))
	var clipBytes int64
	for i, f := range frames {
		nalus, sample := media.LayOutUnit(joinSpans(f.NALUs))
		in[i] = ingest.Frame{Codec: media.CodecH264, AccessUnit: media.AccessUnit{Key: f.Key, NALUs: nalus, Sample: sample, Params: params}}
		clipBytes += int64(len(sample))
	}
	in[0].ParamsChanged = true
	dir := b.TempDir()
	os.Mkdir(filepath.Join(dir, "disk"), 0o755)
	disk, err := local.Open(filepath.Join(dir, "disk"), "disk1", local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer disk.Close()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	st, err := idx.Stream(context.Background(), "cam", "main")
	if err != nil {
		b.Fatal(err)
	}
	rw := &runWriter{ctx: context.Background(), disk: disk, idx: idx, camera: "cam", stream: "main", codec: media.CodecH264,
		fsyncEvery: time.Hour, streamID: st.ID}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b.SetBytes(clipBytes / int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		f := &in[n%len(in)]
		f.PTS90k = int64(n) * 3600
		if err := rw.Frame(f, t0.Add(time.Duration(n)*40*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := rw.Close("done", t0.Add(time.Duration(b.N)*40*time.Millisecond)); err != nil {
		b.Fatal(err)
	}
}

// joinSpans lays nalus end to end and returns them as LayOutUnit's input.
func joinSpans(nalus [][]byte) ([]byte, int, func(int) (int, int)) {
	var data []byte
	var spans [][2]int
	for _, n := range nalus {
		spans = append(spans, [2]int{len(data), len(data) + len(n)})
		data = append(data, n...)
	}
	return data, len(spans), func(i int) (int, int) { return spans[i][0], spans[i][1] }
}
