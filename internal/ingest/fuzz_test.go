package ingest

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// FuzzReceiver feeds what a camera could send after PLAY into a Receiver
// with an H.264 track, an H.265 track and an audio track, over UDP (the
// reorder window) or TCP: the input is a sequence of records, each a byte
// choosing track and kind (RTP or RTCP) and a 2-byte length, then that
// many bytes, parsed by pion as the RTSP client does (unparsable ones are
// skipped, as the client skips them). Frames must carry NAL units and
// their MP4 sample, with the frame's track; the counters must agree with
// what was pushed and delivered.
func FuzzReceiver(f *testing.F) {
	rec := func(kind byte, b []byte) []byte {
		out := []byte{kind, byte(len(b) >> 8), byte(len(b))}
		return append(out, b...)
	}
	pkt := func(seq uint16, ts uint32, marker bool, payload ...byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: marker, PayloadType: 96}, Payload: payload}
		b, _ := p.Marshal()
		return b
	}
	sr, _ := (&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, RTPTime: 1000}).Marshal()
	var seed []byte
	seed = append(seed, rec(0, pkt(1, 1000, true, 0x65, 0x88, 0x84))...)
	seed = append(seed, rec(0, pkt(2, 4600, false, 0x7c, 0x81, 0x9a))...)
	seed = append(seed, rec(0, pkt(3, 4600, true, 0x7c, 0x41, 0x02))...)
	seed = append(seed, rec(3, sr)...)
	seed = append(seed, rec(1, pkt(1, 1000, true, 0x26, 0x01, 0xaf, 0x09))...)
	seed = append(seed, rec(2, pkt(1, 80, false, make([]byte, 160)...))...)
	f.Add(false, seed)
	f.Add(true, seed)
	f.Add(true, rec(0, pkt(65535, 0, true, 0x18, 0x00, 0x02, 0x09, 0xf0, 0x00, 0x03, 0x65, 0x88, 0x84)))
	f.Fuzz(func(t *testing.T, udp bool, in []byte) {
		desc := rtsp.Description{Tracks: []rtsp.Track{
			{Media: "video", Codec: media.CodecH264, ClockRate: 90000,
				Params: media.ParamSets{SPS: []byte{0x67, 0x42, 0x00, 0x1e, 0xab}, PPS: []byte{0x68, 0xce, 0x38, 0x80}}},
			{Media: "video", Codec: media.CodecH265, ClockRate: 90000,
				Params: media.ParamSets{VPS: []byte{0x40, 0x01, 0x0c}, SPS: []byte{0x42, 0x01, 0x01}, PPS: []byte{0x44, 0x01, 0xc1}}},
			{Media: "audio", Codec: media.CodecPCMA, ClockRate: 8000},
		}}
		delivered := map[int]uint64{}
		r, err := NewReceiver(desc, []int{0, 1, 2}, udp, func(fr *Frame) {
			if fr.Track != 0 && fr.Track != 1 {
				t.Fatalf("a frame on track %d", fr.Track)
			}
			if len(fr.NALUs) == 0 {
				t.Fatal("a frame without NAL units")
			}
			if want := mp4.AppendSampleData(nil, fr.NALUs); !bytes.Equal(fr.Sample, want) {
				t.Fatalf("sample %x, want %x", fr.Sample, want)
			}
			delivered[fr.Track]++
		})
		if err != nil {
			t.Fatal(err)
		}
		pushed := map[int]uint64{}
		for len(in) >= 3 {
			kind, n := in[0], int(binary.BigEndian.Uint16(in[1:3]))
			in = in[3:]
			if n > len(in) {
				n = len(in)
			}
			b := in[:n]
			in = in[n:]
			track := int(kind % 3)
			if kind&0x80 != 0 || kind%4 == 3 {
				pkts, err := rtcp.Unmarshal(b)
				if err == nil {
					r.HandleRTCP(track, pkts)
				}
				continue
			}
			var p rtp.Packet
			if p.Unmarshal(b) != nil {
				continue
			}
			r.HandleRTP(track, &p)
			pushed[track]++
		}
		for tr := range 3 {
			st := r.Stats(tr)
			if st.Packets != pushed[tr] {
				t.Fatalf("track %d counted %d packets, %d pushed", tr, st.Packets, pushed[tr])
			}
			if st.Frames != delivered[tr] || st.KeyFrames > st.Frames {
				t.Fatalf("track %d stats %+v, %d frames delivered", tr, st, delivered[tr])
			}
			if st.Frames > 0 && st.MinPTS90k > st.MaxPTS90k {
				t.Fatalf("track %d PTS span %d..%d", tr, st.MinPTS90k, st.MaxPTS90k)
			}
		}
	})
}
