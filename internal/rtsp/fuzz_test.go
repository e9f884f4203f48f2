package rtsp

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureFiles returns the contents of every capture (text and binary).
func captureFiles(f *testing.F) [][]byte {
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, name := range files {
		// Skip the README and directories (testdata/fuzz holds the
		// committed corpus; a fuzz worker that failed here died with
		// "terminated without fuzzing: EOF").
		if st, err := os.Stat(name); err != nil || st.IsDir() || strings.HasSuffix(name, "README.md") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzReadMessage runs a Reader over arbitrary bytes: it must not panic,
// must honour the size limits, and must make progress (no item is returned
// without consuming input).
func FuzzReadMessage(f *testing.F) {
	for _, tc := range messageCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range readerStreams {
		f.Add(tc.in)
	}
	for _, b := range captureFiles(f) {
		if len(b) > 4096 {
			b = b[:4096] // a prefix of the interleaved capture is plenty
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data), 4096)
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("more items (%d) than input bytes", i)
			}
			it, err := rd.Read()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) ||
					errors.Is(err, ErrGarbage) || errors.Is(err, ErrHeaderTooLarge) || errors.Is(err, ErrTooManyHeaders) ||
					errors.Is(err, ErrBodyTooLarge) {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			switch {
			case it.Request != nil:
				checkLimits(t, it.Request.Header, it.Request.Body)
				if !isMethodToken(it.Request.Method) {
					t.Fatalf("method %q", it.Request.Method)
				}
				round(t, it.Request.Marshal())
			case it.Response != nil:
				checkLimits(t, it.Response.Header, it.Response.Body)
				round(t, it.Response.Marshal())
			default:
				if it.Channel < 0 || it.Channel > 255 || len(it.Payload) > 65535 {
					t.Fatalf("frame channel %d len %d", it.Channel, len(it.Payload))
				}
			}
			if rd.Skipped() > uint64(len(data)) {
				t.Fatalf("skipped %d of %d bytes", rd.Skipped(), len(data))
			}
		}
	})
}

func checkLimits(t *testing.T, h Header, body []byte) {
	if len(h) > MaxHeaders || len(body) > MaxBodyBytes {
		t.Fatalf("limits exceeded: %d headers, %d body bytes", len(h), len(body))
	}
}

// round checks that a marshalled message reads back as one message.
func round(t *testing.T, wire []byte) {
	rd := NewReader(bytes.NewReader(wire), 4096)
	it, err := rd.Read()
	if err != nil {
		if errors.Is(err, ErrHeaderTooLarge) {
			return // re-marshalling may add ": " and CRLFs
		}
		t.Fatalf("re-read %q: %v", wire, err)
	}
	if it.Request == nil && it.Response == nil {
		t.Fatalf("re-read %q: got a frame", wire)
	}
}

func FuzzParseSDP(f *testing.F) {
	for _, tc := range sdpCases {
		f.Add([]byte(tc.body))
	}
	for _, b := range captureFiles(f) {
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	base, _ := url.Parse("rtsp://cam:554/stream?x=1")
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseSDP(data, base)
		if err != nil {
			return
		}
		if len(d.Tracks) == 0 || len(d.Tracks) > MaxSDPTracks {
			t.Fatalf("%d tracks", len(d.Tracks))
		}
		for _, tr := range d.Tracks {
			if tr.Control == "" || tr.PayloadType > 127 {
				t.Fatalf("track %+v", tr)
			}
		}
	})
}

func FuzzParseTransport(f *testing.F) {
	for _, tc := range transportCases {
		f.Add(tc.in)
	}
	f.Add(`RTP/AVP/TCP;unicast;interleaved=0-1;mode="PLAY,RECORD", RTP/AVP;unicast;client_port=5000-5001`)
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTransport(s)
		if err == nil {
			for _, p := range [][2]int{tr.Interleaved, tr.ClientPort, tr.ServerPort, tr.Port} {
				if p[0] < 0 || p[1] < 0 || p[0] > 65535 || p[1] > 65535 {
					t.Fatalf("pair %v", p)
				}
			}
			if tr.HasInterleaved && (tr.Interleaved[0] > 255 || tr.Interleaved[1] > 255) {
				t.Fatalf("interleaved %v", tr.Interleaved)
			}
		}
		ParseTransports(s)
		ParseSession(s)
		ParseRTPInfo(s)
		ParseRange(s)
	})
}

func FuzzParseChallenges(f *testing.F) {
	for _, tc := range challengeCases {
		f.Add(strings.Join(tc.in, "\n"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		chals := ParseChallenges(strings.Split(s, "\n"))
		a, err := NewAuthenticator("user", "pass-secret", chals)
		if err != nil {
			if strings.Contains(err.Error(), "pass-secret") {
				t.Fatal("password in error")
			}
			return
		}
		h := a.Authorization("DESCRIBE", "rtsp://cam/")
		if strings.ContainsAny(h, "\r\n") {
			t.Fatalf("CR/LF in Authorization %q", h)
		}
		srv := NewDigestServer("r", "user", "pass-secret")
		srv.Verify("DESCRIBE", s)
	})
}
