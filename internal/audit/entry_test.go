package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func sampleEntry() Entry {
	e := Entry{
		Seq: 7, Time: time.Date(2026, 11, 29, 9, 30, 0, 123456789, time.UTC),
		Actor: "alice", Addr: "192.0.2.7:51234", Action: Export, Camera: "front-door",
		Detail: map[string]string{"from": "2026-11-29T09:00:00Z", "to": "2026-11-29T09:10:00Z", "reason": "<police> & \"case\" 42\n"},
		Result: ResultOK, Prev: bytes.Repeat([]byte{0xab}, HashSize),
	}
	e.Hash = e.ComputeHash()
	return e
}

func mustLine(t testing.TB, e Entry) string {
	t.Helper()
	b, err := encodeLine(&e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:len(b)-1])
}

// parseCases is the table for TestParseLine and the seeds of FuzzParseLine.
func parseCases(t testing.TB) []struct {
	name, line string
	ok         bool
} {
	good := sampleEntry()
	l := mustLine(t, good)
	system := Entry{Seq: 1, Time: time.Unix(0, 1).UTC(), Action: Start, Result: ResultOK, Prev: make([]byte, HashSize)}
	system.Hash = system.ComputeHash()
	sl := mustLine(t, system)
	return []struct {
		name, line string
		ok         bool
	}{
		{"good", l, true},
		{"system, empty detail", sl, true},
		{"whole-second time", strings.Replace(sl, `"at":"1970-01-01T00:00:00.000000001Z"`, `"at":"1970-01-01T00:00:00Z"`, 1), true},
		{"empty", "", false},
		{"not json", "hello", false},
		{"trailing data", l + " {}", false},
		{"space inside", strings.Replace(l, `"seq":7`, `"seq": 7`, 1), false},
		{"missing field", strings.Replace(l, `"camera":"front-door",`, ``, 1), false},
		{"unknown field", strings.Replace(l, `"seq":7,`, `"seq":7,"x":1,`, 1), false},
		{"duplicate field", strings.Replace(l, `"seq":7,`, `"seq":7,"seq":8,`, 1), false},
		{"fields reordered", strings.Replace(l, `{"seq":7,"at":"2026-11-29T09:30:00.123456789Z"`, `{"at":"2026-11-29T09:30:00.123456789Z","seq":7`, 1), false},
		{"null detail", strings.Replace(sl, `"detail":{}`, `"detail":null`, 1), false},
		{"uppercase hex", strings.Replace(l, `"prev":"abab`, `"prev":"ABAB`, 1), false},
		{"short hash", strings.Replace(l, `"prev":"abab`, `"prev":"ab`, 1), false},
		{"offset time", strings.Replace(l, `09:30:00.123456789Z`, `10:30:00.123456789+01:00`, 1), false},
		{"bad time", strings.Replace(l, `09:30:00`, `25:30:00`, 1), false},
		{"escaped letter", strings.Replace(l, `"alice"`, `"\u0061lice"`, 1), false},
		{"float seq", strings.Replace(l, `"seq":7`, `"seq":7.0`, 1), false},
		{"invalid utf-8", strings.Replace(l, `alice`, "al\xffce", 1), false},
	}
}

func TestParseLine(t *testing.T) {
	good := sampleEntry()
	for _, tc := range parseCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseLine([]byte(tc.line))
			if (err == nil) != tc.ok {
				t.Fatalf("parseLine(%q) err = %v, want ok=%v", tc.line, err, tc.ok)
			}
			if tc.name == "good" {
				if ok, field := equal(&e, &good); !ok {
					t.Errorf("round trip changed %s: %+v", field, e)
				}
				if !e.Time.Equal(good.Time) || e.Time.Location() != time.UTC {
					t.Errorf("time %v, want %v in UTC", e.Time, good.Time)
				}
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	for _, tc := range parseCases(f) {
		f.Add([]byte(tc.line))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseLine(b)
		if err != nil {
			return
		}
		// Only the canonical form parses: it re-encodes to the same bytes.
		again, err := encodeLine(&e)
		if err != nil {
			t.Fatalf("encodeLine of a parsed line: %v", err)
		}
		if !bytes.Equal(again[:len(again)-1], b) {
			t.Fatalf("parsed %q, re-encoded %q", b, again)
		}
		if !bytes.Equal(e.ComputeHash(), e.ComputeHash()) {
			t.Fatal("hash not deterministic")
		}
	})
}

// TestHashCoversEveryField changes each field in turn, including
// splitting a string differently between neighbouring fields.
func TestHashCoversEveryField(t *testing.T) {
	base := sampleEntry()
	h := base.ComputeHash()
	edits := map[string]func(e *Entry){
		"seq":          func(e *Entry) { e.Seq++ },
		"time":         func(e *Entry) { e.Time = e.Time.Add(time.Nanosecond) },
		"actor":        func(e *Entry) { e.Actor = "mallory" },
		"addr":         func(e *Entry) { e.Addr = "" },
		"action":       func(e *Entry) { e.Action = Playback },
		"camera":       func(e *Entry) { e.Camera = "yard" },
		"detail value": func(e *Entry) { e.Detail["reason"] = "none" },
		"detail key":   func(e *Entry) { e.Detail["why"] = e.Detail["reason"]; delete(e.Detail, "reason") },
		"detail added": func(e *Entry) { e.Detail["x"] = "" },
		"result":       func(e *Entry) { e.Result = ResultDenied },
		"prev":         func(e *Entry) { e.Prev = bytes.Repeat([]byte{0xac}, HashSize) },
		"actor|addr":   func(e *Entry) { e.Actor, e.Addr = e.Actor+e.Addr[:3], e.Addr[3:] },
	}
	for name, edit := range edits {
		e := sampleEntry()
		edit(&e)
		if bytes.Equal(e.ComputeHash(), h) {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	k1, k2 := sampleEntry(), sampleEntry()
	k1.Detail, k2.Detail = map[string]string{"a": "bc"}, map[string]string{"ab": "c"}
	if bytes.Equal(k1.ComputeHash(), k2.ComputeHash()) {
		t.Error("detail a=bc and ab=c hash alike")
	}
	// Nil and empty Detail hash alike; the Hash field is not hashed.
	a, b := sampleEntry(), sampleEntry()
	a.Detail, b.Detail = nil, map[string]string{}
	b.Hash = nil
	if !bytes.Equal(a.ComputeHash(), b.ComputeHash()) {
		t.Error("nil and empty Detail hash differently")
	}
}

func TestValidate(t *testing.T) {
	for _, e := range []Entry{
		{Action: "launch_missiles", Result: ResultOK},
		{Action: Login, Result: "maybe"},
		{Action: Login, Result: ResultOK, Actor: "\xff"},
		{Action: Login, Result: ResultOK, Detail: map[string]string{"k": "\xfe"}},
	} {
		if err := validate(&e); err == nil {
			t.Errorf("validate(%+v) = nil", e)
		}
	}
}
