package api

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/custos-nvr/custos/internal/retention"
)

// metrics serves GET /metrics in the Prometheus text format (version
// 0.0.4): per stream the recorder's state and counters, per live hub its
// viewers. Operators and admins may read it (a Prometheus server scrapes
// with an API token: bearer_token in its scrape config), and see only
// the cameras they hold a grant on; with Server.MetricsPublic it is open
// to anyone who reaches the listen address, with every camera.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	type sample struct {
		labels string
		value  float64
	}
	var frames, reconnects, up, bitrate, lastFrame, viewers, liveSkipped []sample
	for _, c := range s.Cameras.List() {
		if !listable(r, c.Name) {
			continue
		}
		for i, sup := range c.Streams {
			st := sup.Status()
			l := labels("camera", c.Name, "stream", st.Stream)
			frames = append(frames, sample{l, float64(st.Frames)})
			reconnects = append(reconnects, sample{l, float64(st.Reconnects)})
			u := 0.0
			if st.State == "recording" {
				u = 1
			}
			up = append(up, sample{l, u})
			bitrate = append(bitrate, sample{l, float64(st.BitrateBps)})
			if !st.LastFrame.IsZero() {
				lastFrame = append(lastFrame, sample{l, float64(st.LastFrame.UnixNano()) / 1e9})
			}
			if i < len(c.Live) && c.Live[i] != nil {
				ls := c.Live[i].Stats()
				viewers = append(viewers, sample{l, float64(ls.Viewers)})
				liveSkipped = append(liveSkipped, sample{l, float64(ls.Skipped)})
			}
		}
	}
	for _, f := range []struct {
		name, typ, help string
		samples         []sample
	}{
		{"custos_stream_up", "gauge", "1 while the stream is recording, else 0.", up},
		{"custos_stream_frames_total", "counter", "Frames recorded since the server started.", frames},
		{"custos_stream_reconnects_total", "counter", "Connections to the camera lost and retried.", reconnects},
		{"custos_stream_bitrate_bits_per_second", "gauge", "Recorded bitrate over the last measurement window.", bitrate},
		{"custos_stream_last_frame_timestamp_seconds", "gauge", "Wall time of the last recorded frame.", lastFrame},
		{"custos_live_viewers", "gauge", "Live viewers of the stream.", viewers},
		{"custos_live_skipped_frames_total", "counter", "Frames skipped for live viewers that fell behind.", liveSkipped},
	} {
		family(f.name, f.typ, f.help)
		for _, sm := range f.samples {
			fmt.Fprintf(&b, "%s{%s} %s\n", f.name, sm.labels, strconv.FormatFloat(sm.value, 'g', -1, 64))
		}
	}
	family("custos_storage_locked_full", "gauge", "1 while the disk is below min_free and evidence locks hold everything retention could delete.")
	var alarms map[string]retention.LockedFull
	if s.LockedFull != nil {
		alarms = s.LockedFull()
	}
	for _, d := range s.Disks {
		_, full := alarms[d.Name]
		fmt.Fprintf(&b, "custos_storage_locked_full{%s} %d\n", labels("storage", d.Name), map[bool]int{false: 0, true: 1}[full])
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	family("custos_go_goroutines", "gauge", "Goroutines of the server process.")
	fmt.Fprintf(&b, "custos_go_goroutines %d\n", runtime.NumGoroutine())
	family("custos_go_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.")
	fmt.Fprintf(&b, "custos_go_heap_alloc_bytes %d\n", ms.HeapAlloc)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}

// labels formats Prometheus label pairs, escaping values.
func labels(kv ...string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+`="`+esc.Replace(kv[i+1])+`"`)
	}
	return strings.Join(parts, ",")
}
