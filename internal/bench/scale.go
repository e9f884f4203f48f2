package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// ScaleOptions configure Scale.
type ScaleOptions struct {
	Exe string
	// Counts are the numbers of cameras measured, in order.
	Counts   []int
	Duration time.Duration
	// FFmpegUpTo and MotionUpTo bound the counts at which the peers run
	// (ffmpeg is a process of ~50 MiB per camera; motion decodes every
	// frame): 0 leaves a peer out.
	FFmpegUpTo, MotionUpTo int
	Dir                    string
	Progress               io.Writer
}

// ScaleRow is one camera count.
type ScaleRow struct {
	Cameras        int     `json:"cameras"`
	Custos         Cost    `json:"custos"`
	FramesRecorded int64   `json:"frames_recorded"`
	FramesExpected float64 `json:"frames_expected"`
	Reconnects     int64   `json:"reconnects"`
	FFmpeg         *Cost   `json:"ffmpeg,omitempty"`
	Motion         *Cost   `json:"motion,omitempty"`
}

// Scale runs Record at each count, with the peers up to their bounds.
func Scale(ctx context.Context, o ScaleOptions) ([]ScaleRow, error) {
	var rows []ScaleRow
	for _, n := range o.Counts {
		ro := RecordOptions{Exe: o.Exe, Cameras: n, Duration: o.Duration, Dir: o.Dir, Progress: o.Progress}
		if n <= o.FFmpegUpTo {
			ro.Baselines = append(ro.Baselines, "ffmpeg")
		}
		if n <= o.MotionUpTo {
			ro.Baselines = append(ro.Baselines, "motion")
		}
		res, err := Record(ctx, ro)
		if err != nil {
			return rows, fmt.Errorf("%d cameras: %w", n, err)
		}
		rows = append(rows, ScaleRow{Cameras: n, Custos: res.Custos, FramesRecorded: res.FramesRecorded,
			FramesExpected: res.FramesExpected, Reconnects: res.Reconnects, FFmpeg: res.Baseline, Motion: res.Motion})
	}
	return rows, nil
}

// ScaleCharts draws CPU per stream-hour and RSS per stream against the
// number of cameras, for Custos and each peer measured.
func ScaleCharts(rows []ScaleRow) (cpu, rss []byte) {
	type line struct {
		name, color string
		get         func(ScaleRow) *Cost
	}
	lines := []line{
		{"custos serve", "#1f77b4", func(r ScaleRow) *Cost { return &r.Custos }},
		{"ffmpeg -c copy -f segment", "#ff7f0e", func(r ScaleRow) *Cost { return r.FFmpeg }},
		{"motion (passthrough)", "#2ca02c", func(r ScaleRow) *Cost { return r.Motion }},
	}
	var cs, rs []Series
	var motionCPU []string
	for _, r := range rows {
		if r.Motion != nil {
			motionCPU = append(motionCPU, fmt.Sprintf("%.0f at %d cameras", r.Motion.CPUSecPerStreamHr, r.Cameras))
		}
	}
	for _, l := range lines {
		c := Series{Name: l.name, Color: l.color}
		m := Series{Name: l.name, Color: l.color}
		for _, r := range rows {
			if k := l.get(r); k != nil {
				c.X, c.Y = append(c.X, float64(r.Cameras)), append(c.Y, k.CPUSecPerStreamHr)
				m.X, m.Y = append(m.X, float64(r.Cameras)), append(m.Y, k.RSSPerStreamMiB)
			}
		}
		if len(c.X) == 0 {
			continue
		}
		// motion decodes every frame: two orders of magnitude above the
		// others, it would flatten them; its CPU figure goes in the title.
		if l.name != "motion (passthrough)" {
			cs = append(cs, c)
		}
		rs = append(rs, m)
	}
	title := "Recording cost: CPU seconds per stream-hour (lower is better)"
	if len(motionCPU) > 0 {
		title += "; motion: " + strings.Join(motionCPU, ", ")
	}
	cpu = LineChart(title, "cameras (1080p, 2.4 Mbit/s)", "CPU-s per stream-hour", cs, nil, 0, 900, 380)
	rss = LineChart("Recording memory: RSS per stream (lower is better)", "cameras (1080p, 2.4 Mbit/s)", "MiB per stream", rs, nil, 0, 900, 380)
	return cpu, rss
}
