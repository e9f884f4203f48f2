package playback

import (
	"context"
	"testing"

	pt "github.com/custos-nvr/custos/internal/playback/playbacktest"
)

// BenchmarkExport plans a ten-minute export (ten one-minute segments of
// 1080p, about 180 MB) and reads its first 64 KiB: the server's work
// before the first byte. "cold" starts with an empty sample-table cache
// (the files' sample indexes are read), "warm" keeps it.
//
//	go test -run '^$' -bench Export ./internal/playback/
func BenchmarkExport(b *testing.B) {
	rc := pt.NewRecording(b, "door")
	rc.AddRun(b, pt.At(0), 15000+100, 1500)
	ctx := context.Background()
	buf := make([]byte, 64<<10)
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			src := &Source{Index: rc.Index, Disks: rc.Disks, Cache: NewIndexCache(1 << 20)}
			for i := 0; b.Loop(); i++ {
				if mode == "cold" {
					src.Cache = NewIndexCache(1 << 20)
				}
				from := pt.At(float64(i % 97))
				f, err := src.Export(ctx, "door", "main", from, from.Add(600e9))
				if err != nil {
					b.Fatal(err)
				}
				rd := f.Open(ctx)
				if _, err := rd.ReadAt(buf, 0); err != nil {
					b.Fatal(err)
				}
				rd.Close()
			}
		})
	}
}
