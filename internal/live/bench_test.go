package live

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/custos-nvr/custos/internal/ingest"
	"github.com/custos-nvr/custos/internal/media"
)

// drainers starts n viewers of h, each read by a goroutine that discards
// its messages; stop closes them and waits for the goroutines.
func drainers(h *Hub, n int) (stop func()) {
	var wg sync.WaitGroup
	vs := make([]*Viewer, n)
	for i := range vs {
		vs[i] = h.Subscribe()
		v := vs[i]
		wg.Go(func() {
			for {
				if _, err := v.Next(context.Background()); err != nil {
					return
				}
			}
		})
	}
	return func() {
		for _, v := range vs {
			v.Close()
		}
		wg.Wait()
	}
}

// benchPublish publishes the main.h264 clip in a loop (1080p, 2.4 Mbit/s,
// 12 KB per frame on average) with one reused Frame, as the recorder does.
func benchPublish(b *testing.B, h *Hub, fx fixture, from int) int {
	f := &ingest.Frame{Codec: media.CodecH264}
	f.Params = fx.params
	i := from
	for b.Loop() {
		ff := fx.frames[i%len(fx.frames)]
		f.PTS90k, f.Key, f.NALUs = int64(i)*3600, ff.Key, ff.NALUs
		h.Publish(f)
		i++
	}
	return i - from
}

// BenchmarkPublish measures Publish with 0, 1 and 10 viewers that drain
// their queues concurrently (on other goroutines, so on this 2-core
// machine they compete with Publish for the CPU).
func BenchmarkPublish(b *testing.B) {
	fx := loadFixture(b, "main.h264")
	var size int64
	for _, f := range fx.frames {
		for _, n := range f.NALUs {
			size += int64(len(n))
		}
	}
	for _, viewers := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			h := NewHub(HubOptions{})
			fx.publish(h, 0, 250, 0) // the timing is decided, a GOP cached
			stop := drainers(h, viewers)
			b.SetBytes(size / int64(len(fx.frames)))
			b.ReportAllocs()
			n := benchPublish(b, h, fx, 250)
			stop()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/frame")
			st := h.Stats()
			b.ReportMetric(float64(st.Dropped)/float64(n*max(viewers, 1)), "drops/frame")
		})
	}
}

// BenchmarkPublishLatency reports the time from Publish to a frame's
// fragment being queued for all of 10 draining viewers, as percentiles.
func BenchmarkPublishLatency(b *testing.B) {
	fx := loadFixture(b, "main.h264")
	for _, viewers := range []int{1, 10} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			h := NewHub(HubOptions{})
			fx.publish(h, 0, 250, 0)
			stop := drainers(h, viewers)
			benchPublish(b, h, fx, 250)
			stop()
			lat := h.Stats().Latency
			b.ReportMetric(float64(lat.P50.Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat.P90.Nanoseconds()), "p90-ns")
			b.ReportMetric(float64(lat.P99.Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(lat.Max.Nanoseconds()), "max-ns")
		})
	}
}

// BenchmarkSubscribe measures joining a stream: building the init and
// the cached GOP (the clip's 50-frame GOP, about 0.6 MB) as one fragment.
func BenchmarkSubscribe(b *testing.B) {
	fx := loadFixture(b, "main.h264")
	h := NewHub(HubOptions{})
	fx.publish(h, 0, 99, 0) // GOP of frames 50..98
	b.ReportAllocs()
	for b.Loop() {
		h.Subscribe().Close()
	}
}
