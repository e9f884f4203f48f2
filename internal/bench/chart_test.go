package bench

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestLineChartIsSVG(t *testing.T) {
	b := LineChart(`a <title> & "quotes"`, "x", "y", []Series{{Name: "s", Color: "#000", X: []float64{0, 1, 2}, Y: []float64{3, 1, 4}}},
		[]float64{1}, 0.5, 400, 200)
	d := xml.NewDecoder(strings.NewReader(string(b)))
	polylines := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, b)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 1 || !strings.Contains(string(b), "&lt;title&gt;") {
		t.Errorf("chart: %d polylines\n%s", polylines, b)
	}
}

func TestLeaks(t *testing.T) {
	res := &SoakResult{Samples: []SoakSample{{Seconds: 60, Goroutines: 100, RSSMiB: 50, Viewers: 5}, {Seconds: 600, Goroutines: 400, RSSMiB: 52, Viewers: 5}}}
	leaks(res)
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "goroutines grew") {
		t.Errorf("problems %v", res.Problems)
	}
	res = &SoakResult{Samples: []SoakSample{{Seconds: 60, Goroutines: 100, RSSMiB: 50, Viewers: 5}, {Seconds: 600, Goroutines: 130, RSSMiB: 60, Viewers: 9}}}
	if leaks(res); len(res.Problems) != 0 {
		t.Errorf("flat run reported %v", res.Problems)
	}
}
