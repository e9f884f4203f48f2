package h264

import (
	"math/rand"
	"testing"

	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
)

// gop1080p returns the RTP payloads of one 2 s GOP of a 1080p25 4 Mbit/s
// camera stream (a 100 KB IDR picture with SPS/PPS, 49 P pictures of
// 18 KB), FU-A fragments of at most 1400 bytes, grouped per access unit.
func gop1080p() [][]*rtp.Packet {
	r := rand.New(rand.NewSource(1))
	var units [][]*rtp.Packet
	var pz Packetizer
	for i := 0; i < 50; i++ {
		size, typ := 18000, byte(0x41)
		var au [][]byte
		if i == 0 {
			size, typ = 100000, 0x65
			au = append(au, h(sps), h(pps))
		}
		n := make([]byte, size)
		r.Read(n)
		n[0], n[1] = typ, 0x88
		au = append(au, n)
		var pkts []*rtp.Packet
		pz.Packetize(au, 1400, func(payload []byte, marker bool) {
			pkts = append(pkts, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: marker}, Payload: append([]byte(nil), payload...)})
		})
		units = append(units, pkts)
	}
	return units
}

func BenchmarkDepacketize(b *testing.B) {
	gop := gop1080p()
	d := NewDepacketizer(media.ParamSets{})
	var seq uint16
	var ts uint32
	packets, bytes := 0, 0
	for _, u := range gop {
		packets += len(u)
		for _, p := range u {
			bytes += len(p.Payload)
		}
	}
	b.SetBytes(int64(bytes / packets))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for n < b.N {
		for _, u := range gop {
			for _, p := range u {
				p.SequenceNumber, p.Timestamp = seq, ts
				seq++
				if err := d.Push(p); err != nil {
					b.Fatal(err)
				}
				n++
			}
			ts += 3600
			if _, ok := d.Pull(); !ok {
				b.Fatal("no access unit")
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

func BenchmarkPacketize(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	n := make([]byte, 18000)
	r.Read(n)
	n[0] = 0x41
	au := [][]byte{n}
	var pz Packetizer
	b.SetBytes(int64(len(n)))
	b.ReportAllocs()
	for b.Loop() {
		pz.Packetize(au, 1400, func([]byte, bool) {})
	}
}
