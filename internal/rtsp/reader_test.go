package rtsp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pion/rtp"
)

// readerStreams feed TestReaderMixed and FuzzReadMessage: a connection's
// bytes and what Reader.Read must return, in order, as short strings:
// "$<channel>:<payload>", "req <METHOD>", "resp <code>".
var readerStreams = []struct {
	name    string
	in      []byte
	want    []string
	skipped uint64
}{
	{
		name: "frames around a response",
		in: cat(WriteInterleaved(nil, 0, []byte("rtp1")),
			[]byte("RTSP/1.0 200 OK\r\nCSeq: 4\r\nContent-Length: 3\r\n\r\nabc"),
			WriteInterleaved(nil, 1, []byte("rtcp")), WriteInterleaved(nil, 2, nil)),
		want: []string{"$0:rtp1", "resp 200", "$1:rtcp", "$2:"},
	},
	{
		name: "garbage and padding resynchronise",
		in: cat([]byte("\x00\x00\xff junk\r\n"), WriteInterleaved(nil, 0, []byte("a")),
			[]byte("\r\n"), []byte("GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n"),
			[]byte("Hello World RTSP\n"), []byte("RTSP/x OK\n"), WriteInterleaved(nil, 3, []byte("b"))),
		want:    []string{"$0:a", "req GET_PARAMETER", "$3:b"},
		skipped: 10 + 2 + 17 + 10,
	},
	{
		name: "server request between frames, LF only",
		in: cat(WriteInterleaved(nil, 0, []byte("x")), []byte("OPTIONS * RTSP/1.0\nCSeq: 1\n\n"),
			[]byte("RTSP/1.0 200\nCSeq: 2\n\n")),
		want: []string{"$0:x", "req OPTIONS", "resp 200"},
	},
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func describeItem(it Item) string {
	switch {
	case it.Request != nil:
		return "req " + it.Request.Method
	case it.Response != nil:
		return "resp " + strconv.Itoa(it.Response.StatusCode)
	}
	return "$" + strconv.Itoa(it.Channel) + ":" + string(it.Payload)
}

func TestReaderMixed(t *testing.T) {
	for _, tc := range readerStreams {
		for _, slow := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(tc.in)
			if slow {
				src = iotest.OneByteReader(src)
			}
			rd := NewReader(src, 4096)
			var got []string
			for {
				it, err := rd.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s (slow=%v): %v after %q", tc.name, slow, err, got)
				}
				got = append(got, describeItem(it))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("%s (slow=%v): got %q, want %q", tc.name, slow, got, tc.want)
			}
			if rd.Skipped() != tc.skipped {
				t.Errorf("%s (slow=%v): Skipped = %d, want %d", tc.name, slow, rd.Skipped(), tc.skipped)
			}
		}
	}
}

func TestReaderGarbageLimit(t *testing.T) {
	in := cat(bytes.Repeat([]byte("x"), MaxGarbage+10), WriteInterleaved(nil, 0, []byte("late")))
	rd := NewReader(bytes.NewReader(in), 4096)
	if _, err := rd.Read(); !errors.Is(err, ErrGarbage) {
		t.Fatalf("err = %v, want ErrGarbage", err)
	}
	// Just under the limit is fine.
	in = cat(bytes.Repeat([]byte("x"), MaxGarbage), WriteInterleaved(nil, 0, []byte("ok")))
	rd = NewReader(bytes.NewReader(in), 4096)
	if it, err := rd.Read(); err != nil || string(it.Payload) != "ok" || rd.Skipped() != MaxGarbage {
		t.Fatalf("got %q, %v, skipped %d", it.Payload, err, rd.Skipped())
	}
	// Upper-case letters that never form a start line are skipped too.
	in = cat(bytes.Repeat([]byte("A B "), 1000), WriteInterleaved(nil, 5, []byte("z")))
	rd = NewReader(bytes.NewReader(in), 4096)
	if it, err := rd.Read(); err != nil || it.Channel != 5 || rd.Skipped() != 4000 {
		t.Fatalf("got %+v, %v, skipped %d", it, err, rd.Skipped())
	}
}

func TestReaderBigFrameSmallBuffer(t *testing.T) {
	big := bytes.Repeat([]byte{0x80, 1, 2, 3}, 16384)[:65535]
	in := cat(WriteInterleaved(nil, 0, big[:60000]), WriteInterleaved(nil, 1, []byte("s")), WriteInterleaved(nil, 0, big))
	rd := NewReader(bytes.NewReader(in), 4096)
	for i, want := range [][]byte{big[:60000], []byte("s"), big} {
		it, err := rd.Read()
		if err != nil || !bytes.Equal(it.Payload, want) {
			t.Fatalf("frame %d: len %d, %v", i, len(it.Payload), err)
		}
	}
	if _, err := rd.Read(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	frame := WriteInterleaved(nil, 0, []byte("payload"))
	for _, in := range [][]byte{frame[:2], frame[:6], []byte("RTSP/1.0 200 OK\r\nCSe"), []byte("RTSP/1.")} {
		rd := NewReader(bytes.NewReader(in), 4096)
		if _, err := rd.Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err = %v, want ErrUnexpectedEOF", in, err)
		}
	}
}

func TestReaderTimeoutKeepsState(t *testing.T) {
	frame := WriteInterleaved(nil, 7, []byte("abc"))
	// A deadline fires after half a frame header; the next Read continues.
	src := &scripted{steps: []step{{data: frame[:2]}, {err: iotest.ErrTimeout}, {data: frame[2:]}}}
	rd := NewReader(src, 4096)
	if _, err := rd.Read(); err != iotest.ErrTimeout {
		t.Fatalf("first Read: %v, want timeout", err)
	}
	it, err := rd.Read()
	if err != nil || it.Channel != 7 || string(it.Payload) != "abc" {
		t.Fatalf("second Read: %+v, %v", it, err)
	}
}

type step struct {
	data []byte
	err  error
}

// scripted returns each step's data or error in turn, then io.EOF.
type scripted struct{ steps []step }

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

func TestReaderNoAllocPerFrame(t *testing.T) {
	frame := WriteInterleaved(nil, 0, bytes.Repeat([]byte{1}, 1400))
	src := &repeatReader{data: frame}
	rd := NewReader(src, 64<<10)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := rd.Read(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame", allocs)
	}
}

type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func TestWriteInterleaved(t *testing.T) {
	got := WriteInterleaved([]byte{9}, 3, make([]byte, 300))
	if !bytes.Equal(got[:5], []byte{9, '$', 3, 1, 44}) || len(got) != 305 {
		t.Errorf("got %x...", got[:5])
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a payload over 65535 bytes")
		}
	}()
	WriteInterleaved(nil, 0, make([]byte, 65536))
}

// TestBunnyInterleaved replays the bytes a Wowza server sent after PLAY.
func TestBunnyInterleaved(t *testing.T) {
	data, err := os.ReadFile("testdata/bunny_interleaved.rtsp")
	if err != nil {
		t.Fatal(err)
	}
	rd := NewReader(bytes.NewReader(data), 256<<10)
	perChannel := map[int]int{}
	var pkt rtp.Packet
	for {
		it, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Request != nil || it.Response != nil {
			t.Fatalf("unexpected message %+v", it)
		}
		perChannel[it.Channel]++
		if it.Channel%2 == 0 {
			if err := pkt.Unmarshal(it.Payload); err != nil {
				t.Fatalf("channel %d frame %d: %v", it.Channel, perChannel[it.Channel], err)
			}
		}
	}
	// bunny_setup.txt gave interleaved=0-1 for the audio track (trackID=1);
	// the video track (trackID=2) used channels 2-3. No RTCP was captured.
	if perChannel[0] != 102 || perChannel[2] != 269 || len(perChannel) != 2 {
		t.Errorf("frames per channel = %v, want map[0:102 2:269]", perChannel)
	}
	if rd.Skipped() != 0 {
		t.Errorf("Skipped = %d", rd.Skipped())
	}
}
