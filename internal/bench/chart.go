package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a chart.
type Series struct {
	Name  string
	Color string
	X, Y  []float64
}

// LineChart draws series as an SVG line chart (width×height pixels) with
// axes, ticks and a legend; marks are x positions drawn as shaded bands
// of markWidth. No I/O; the result is a standalone SVG document.
func LineChart(title, xLabel, yLabel string, series []Series, marks []float64, markWidth float64, width, height int) []byte {
	const left, right, top, bottom = 60.0, 20.0, 40.0, 45.0
	w, h := float64(width)-left-right, float64(height)-top-bottom
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range series {
		for i := range s.X {
			xmin, xmax, ymax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i]), math.Max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 0) || xmax <= xmin {
		xmin, xmax = 0, 1
	}
	ymax = niceCeil(ymax)
	px := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*w }
	py := func(y float64) float64 { return top + h - y/ymax*h }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))
	for _, m := range marks {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="%.1f" height="%g" fill="#f4c7c3"/>`+"\n", px(m), top, math.Max(1, markWidth/(xmax-xmin)*w), h)
	}
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, left+w, py(y), py(y), left-6, py(y)+4, y)
		x := xmin + (xmax-xmin)*float64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), top+h+16,
			strconv.FormatFloat(x, 'f', decimals(xmax-xmin), 64))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+w/2, top+h+36, esc(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+h/2, esc(yLabel))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#888"/>`+"\n", left, top, w, h)
	for k, s := range series {
		var pts []string
		for i := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[i]), py(s.Y[i])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.Color, strings.Join(pts, " "))
		if len(s.X) <= 20 { // few points: mark each
			for i := range s.X {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(s.X[i]), py(s.Y[i]), s.Color)
			}
		}
		lx := left + 10 + float64(k)*(w-20)/float64(len(series))
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="%s" stroke-width="3"/><text x="%g" y="%g">%s</text>`+"\n",
			lx, lx+20, top+12, top+12, s.Color, lx+25, top+16, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// decimals is how many decimals tick labels over a span need.
func decimals(span float64) int {
	switch {
	case span >= 50:
		return 0
	case span >= 5:
		return 1
	}
	return 2
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// SoakChart draws a soak's memory and goroutines over time, outages
// shaded.
func SoakChart(res *SoakResult) []byte {
	var t, rss, heap, gor []float64
	var outages []float64
	for _, s := range res.Samples {
		if s.Outage {
			outages = append(outages, s.Seconds/60)
			continue
		}
		t = append(t, s.Seconds/60)
		rss, heap, gor = append(rss, s.RSSMiB), append(heap, s.HeapMiB), append(gor, float64(s.Goroutines)/10)
	}
	width := 0.0
	if res.Outages > 0 {
		width = res.OutageSeconds / float64(res.Outages) / 60
	}
	return LineChart(fmt.Sprintf("custos serve, %d cameras: memory and goroutines during the soak (outages shaded)", res.Cameras),
		"minutes", "MiB / tens of goroutines", []Series{
			{Name: "RSS (MiB)", Color: "#1f77b4", X: t, Y: rss},
			{Name: "Go heap (MiB)", Color: "#2ca02c", X: t, Y: heap},
			{Name: "goroutines / 10", Color: "#d62728", X: t, Y: gor},
		}, outages, width, 900, 360)
}
