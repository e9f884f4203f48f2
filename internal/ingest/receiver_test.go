package ingest

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/rtsp"
)

func TestReceiverNTPFromSenderReport(t *testing.T) {
	desc := rtsp.Description{Tracks: []rtsp.Track{
		{Media: "video", Codec: media.CodecH264, ClockRate: 90000,
			Params: media.ParamSets{SPS: []byte{0x67, 0x42, 0x00, 0x1e, 0xab}, PPS: []byte{0x68, 0xce, 0x38, 0x80}}},
		{Media: "audio", Codec: media.CodecPCMA, ClockRate: 8000},
		{Media: "application", Codec: media.CodecMetadata},
	}}
	var got []Frame
	r, err := NewReceiver(desc, []int{0, 1}, false, func(f *Frame) { got = append(got, *f) })
	if err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r.HandleRTCP(0, []rtcp.Packet{&rtcp.SenderReport{SSRC: 1, NTPTime: rtsp.NTPTime(anchor), RTPTime: 1000}})
	// An IDR 0.5 s after the report, then a P frame 40 ms later.
	send := func(seq uint16, ts uint32, payload []byte) {
		r.HandleRTP(0, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true, PayloadType: 96}, Payload: payload})
	}
	send(1, 1000+45000, []byte{0x65, 0x88, 0x84})
	send(2, 1000+45000+3600, []byte{0x41, 0x9a, 0x02})
	r.HandleRTP(1, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 9}, Payload: make([]byte, 160)})
	if len(got) != 2 {
		t.Fatalf("%d frames, want 2", len(got))
	}
	for i, want := range []time.Time{anchor.Add(500 * time.Millisecond), anchor.Add(540 * time.Millisecond)} {
		if d := got[i].NTP.Sub(want); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("frame %d NTP = %s, want %s", i, got[i].NTP, want)
		}
	}
	if !got[0].Key || got[1].Key {
		t.Errorf("key flags = %v %v", got[0].Key, got[1].Key)
	}
	if st := r.Stats(1); st.Packets != 1 || st.Bytes != 160 || st.Frames != 0 {
		t.Errorf("audio stats = %+v", st)
	}
	if st := r.Stats(0); st.Frames != 2 || st.KeyFrames != 1 || st.MaxPTS90k-st.MinPTS90k != 3600 {
		t.Errorf("video stats = %+v", st)
	}
}

func TestReceiverRefusesUnknownVideo(t *testing.T) {
	desc := rtsp.Description{Tracks: []rtsp.Track{{Media: "video", Codec: "jpeg"}}}
	if _, err := NewReceiver(desc, []int{0}, false, nil); err == nil {
		t.Error("MJPEG video track accepted")
	}
}
