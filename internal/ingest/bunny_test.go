package ingest

import (
	"bufio"
	"bytes"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestBunnyReplay replays a real server's interleaved byte stream (Wowza
// serving Big Buck Bunny, see internal/rtsp/testdata/README.md) through the
// framing reader and the receiver, and checks the frame count against the
// RTP marker bits, then has ffmpeg decode what came out.
func TestBunnyReplay(t *testing.T) {
	descRaw, err := os.ReadFile("../rtsp/testdata/bunny_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rtsp.ReadResponse(bufio.NewReader(bytes.NewReader(descRaw)))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(resp.Header.Get("Content-Base"))
	desc, err := rtsp.ParseSDP(resp.Body, base)
	if err != nil {
		t.Fatal(err)
	}
	video := -1
	for i, tr := range desc.Tracks {
		if tr.Codec == media.CodecH264 {
			video = i
		}
	}
	if video < 0 {
		t.Fatal("no H.264 track in bunny_describe.txt")
	}

	var annexB []byte
	frames := 0
	rcv, err := NewReceiver(desc, []int{video}, false, func(f *Frame) {
		frames++
		annexB = AppendAnnexB(annexB, f.Codec, &f.AccessUnit)
	})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := os.Open("../rtsp/testdata/bunny_interleaved.rtsp")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	// bunny_setup.txt put the audio track on channels 0-1; the video track
	// was set up second, on channels 2-3.
	const videoChannel = 2
	rd := rtsp.NewReader(stream, 64<<10)
	markers := 0
	var pkt rtp.Packet
	for {
		it, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Channel != videoChannel {
			continue
		}
		if err := pkt.Unmarshal(it.Payload); err != nil {
			t.Fatal(err)
		}
		if pkt.Marker {
			markers++
		}
		rcv.HandleRTP(video, &pkt)
	}
	st := rcv.Stats(video)
	if frames != markers || st.Frames != uint64(frames) {
		t.Errorf("frames = %d (stats %d), want %d (one per marker bit)", frames, st.Frames, markers)
	}
	if st.KeyFrames == 0 || st.LostPackets != 0 || st.BadPackets != 0 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("bunny: %d frames, %d key frames, %d bytes", frames, st.KeyFrames, st.Bytes)

	out := filepath.Join(t.TempDir(), "bunny.h264")
	if err := os.WriteFile(out, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	decoded, errText := testpeer.Decode(t, out)
	if errText != "" {
		t.Errorf("ffmpeg errors:\n%s", errText)
	}
	if decoded != frames {
		t.Errorf("ffmpeg decoded %d frames, we produced %d", decoded, frames)
	}
}
