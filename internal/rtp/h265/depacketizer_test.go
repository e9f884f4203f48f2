package h265

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/pion/rtp"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/mp4"
)

// NAL units used by the tests (from x265). idr (IDR_N_LP), idr2 (CRA) and
// p (TRAIL_R) start their pictures (first_slice_segment_in_pic_flag 1);
// p2 is a later slice segment.
const (
	vps  = "40010c01ffff016000000300900000030000030078959809"
	sps  = "420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000c84"
	sps2 = "42010102200000030090000003000003005da00280802d1365959a4932bc05a020000003002000000303c1"
	pps  = "4401c172b46240"
	sei  = "4e0105ff"
	idr  = "2801af1d088d2e81"
	idr2 = "2a01b8aabbcc"
	p    = "0201d00011"
	p2   = "020140aa"
)

type tpkt struct {
	seq    uint16
	ts     uint32
	marker bool
	hex    string
}

type tau struct {
	pts     int64
	key     bool
	changed bool
	nalus   []string
}

type depTest struct {
	name   string
	params media.ParamSets
	pkts   []tpkt
	want   []tau
	errs   int                     // Push calls that fail
	stats  media.DepacketizerStats // checked when non-zero (Packets filled in)
	errIs  error
}

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// fu splits nalu into FU payloads of at most n data bytes each.
func fu(nalu string, n int) []string {
	b := h(nalu)
	var out []string
	data := b[2:]
	for first := true; len(data) > 0; first = false {
		take := min(n, len(data))
		hdr := (b[0] >> 1) & 0x3f
		if first {
			hdr |= 0x80
		}
		if take == len(data) {
			hdr |= 0x40
		}
		out = append(out, hex.EncodeToString(append([]byte{b[0]&0x81 | 49<<1, b[1], hdr}, data[:take]...)))
		data = data[take:]
	}
	return out
}

func stap(nalus ...string) string {
	b := []byte{0x60, 0x01}
	for _, n := range nalus {
		nb := h(n)
		b = binary.BigEndian.AppendUint16(b, uint16(len(nb)))
		b = append(b, nb...)
	}
	return hex.EncodeToString(b)
}

// seqPkts makes packets with consecutive sequence numbers from seq0, one
// timestamp, the marker on the last.
func seqPkts(seq0 uint16, ts uint32, payloads ...string) []tpkt {
	var out []tpkt
	for i, pl := range payloads {
		out = append(out, tpkt{seq0 + uint16(i), ts, i == len(payloads)-1, pl})
	}
	return out
}

func cat(lists ...[]tpkt) []tpkt {
	var out []tpkt
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var idrFU = fu(idr, 2) // 3 fragments

var depTests = []depTest{
	{
		name:  "single NAL units",
		pkts:  seqPkts(1, 9000, vps, sps, pps, idr),
		want:  []tau{{9000, true, true, []string{vps, sps, pps, idr}}},
		stats: media.DepacketizerStats{AccessUnits: 1, KeyFrames: 1, ParamsUpdates: 3},
	},
	{
		name:  "AP",
		pkts:  seqPkts(10, 1, stap(sps, pps, sei), idr),
		want:  []tau{{1, true, true, []string{sps, pps, sei, idr}}},
		stats: media.DepacketizerStats{AccessUnits: 1, KeyFrames: 1, ParamsUpdates: 2},
	},
	{
		name: "FU start middle end, then P",
		pkts: cat(seqPkts(100, 0, append([]string{stap(sps, pps)}, idrFU...)...), seqPkts(104, 3600, fu(p, 1)...)),
		want: []tau{{0, true, true, []string{sps, pps, idr}}, {3600, false, false, []string{p}}},
	},
	{
		name:   "waiting for key frame",
		params: media.ParamSets{SPS: h(sps), PPS: h(pps)},
		pkts:   cat(seqPkts(1, 1000, p), seqPkts(2, 4600, p, p2), seqPkts(4, 8200, idr), seqPkts(5, 11800, p)),
		want:   []tau{{8200, true, true, []string{idr}}, {11800, false, false, []string{p}}},
		stats:  media.DepacketizerStats{AccessUnits: 2, KeyFrames: 1, DroppedUnits: 2},
	},
	{
		name: "loss in the middle of FU",
		pkts: cat(seqPkts(1, 0, sps, pps, idr), []tpkt{{4, 3600, false, fu(p, 1)[0]}, {6, 3600, true, fu(p, 1)[2]}},
			seqPkts(7, 7200, p), seqPkts(8, 10800, sps, pps, idr2)),
		want:  []tau{{0, true, true, []string{sps, pps, idr}}, {10800, true, false, []string{sps, pps, idr2}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, LostPackets: 1, DroppedUnits: 2, ParamsUpdates: 2},
	},
	{
		name:  "clean key frame right after a gap is kept",
		pkts:  cat(seqPkts(1, 0, idr), seqPkts(5, 3600, idrFU...)),
		want:  []tau{{0, true, true, []string{idr}}, {3600, true, false, []string{idr}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, LostPackets: 3},
	},
	{
		name:  "key frame missing its first slice after a gap is dropped",
		pkts:  cat(seqPkts(1, 0, idr), seqPkts(5, 3600, "280140ff", idr2)),
		want:  []tau{{0, true, true, []string{idr}}},
		stats: media.DepacketizerStats{AccessUnits: 1, KeyFrames: 1, LostPackets: 3, DroppedUnits: 1},
	},
	{
		name:  "FU continuation right after a gap is loss, not malformed",
		pkts:  cat(seqPkts(1, 0, idr), []tpkt{{3, 3600, true, idrFU[2]}}, seqPkts(4, 7200, idr)),
		want:  []tau{{0, true, true, []string{idr}}, {7200, true, false, []string{idr}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, LostPackets: 1, DroppedUnits: 1},
	},
	{
		name:  "timestamp wrap",
		pkts:  cat(seqPkts(65534, 0xfffff000, idr), seqPkts(65535, 0xfffff000+3600, p), seqPkts(0, 0xfffff000+7200-1<<32, p)),
		want:  []tau{{0xfffff000, true, true, []string{idr}}, {0xfffff000 + 3600, false, false, []string{p}}, {0xfffff000 + 7200, false, false, []string{p}}},
		stats: media.DepacketizerStats{AccessUnits: 3, KeyFrames: 1},
	},
	{
		name: "B-frame timestamps step backwards",
		pkts: cat(seqPkts(1, 1000, idr), seqPkts(2, 1000+3*3600, p), seqPkts(3, 1000+3600, p2), seqPkts(4, 1000+2*3600, p2)),
		want: []tau{{1000, true, true, []string{idr}}, {1000 + 3*3600, false, false, []string{p}}, {1000 + 3600, false, false, []string{p2}}, {1000 + 2*3600, false, false, []string{p2}}},
	},
	{
		name: "B-frame step backwards across the wrap",
		pkts: cat(seqPkts(1, 100, idr), seqPkts(2, 100-3600+1<<32, p)),
		want: []tau{{100, true, true, []string{idr}}, {100 - 3600, false, false, []string{p}}},
	},
	{
		name: "unit ends at timestamp change without marker",
		pkts: []tpkt{{1, 10, false, idr}, {2, 20, false, p}, {3, 20, false, p2}, {4, 30, true, p}},
		want: []tau{{10, true, true, []string{idr}}, {20, false, false, []string{p, p2}}, {30, false, false, []string{p}}},
	},
	{
		name:  "timestamp change with fragment in progress drops the unit",
		pkts:  []tpkt{{1, 10, true, idr}, {2, 20, false, fu(p, 1)[0]}, {3, 30, true, p}, {4, 40, true, idr}},
		want:  []tau{{10, true, true, []string{idr}}, {40, true, false, []string{idr}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, DroppedUnits: 2},
	},
	{
		name: "marker inside a fragmented unit drops it",
		pkts: []tpkt{{1, 10, true, idr}, {2, 20, true, fu(p, 1)[0]}, {3, 30, true, idr}},
		want: []tau{{10, true, true, []string{idr}}, {30, true, false, []string{idr}}},
	},
	{
		name:   "in-band parameter sets equal to SDP, then changed",
		params: media.ParamSets{SPS: h(sps), PPS: h(pps)},
		pkts:   cat(seqPkts(1, 0, stap(sps, pps), idr), seqPkts(3, 3600, p), seqPkts(4, 7200, sps2, pps, idr2), seqPkts(7, 10800, p)),
		want: []tau{{0, true, true, []string{sps, pps, idr}}, {3600, false, false, []string{p}},
			{7200, true, true, []string{sps2, pps, idr2}}, {10800, false, false, []string{p}}},
		stats: media.DepacketizerStats{AccessUnits: 4, KeyFrames: 2, ParamsUpdates: 1},
	},
	{
		name:  "parameter sets with their own timestamp are carried into the next unit",
		pkts:  cat(seqPkts(1, 1, sps, pps), seqPkts(3, 3601, sei), seqPkts(4, 3601, idr)),
		want:  []tau{{3601, true, true, []string{sps, pps, sei, idr}}},
		stats: media.DepacketizerStats{AccessUnits: 1, KeyFrames: 1, ParamsUpdates: 2},
	},
	{
		name:  "duplicates and late packets are ignored",
		pkts:  []tpkt{{1, 0, false, sps}, {1, 0, false, sps}, {2, 0, true, idr}, {1, 0, false, sps}, {3, 3600, true, p}, {3, 3600, true, p}},
		want:  []tau{{0, true, true, []string{sps, idr}}, {3600, false, false, []string{p}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 1, ParamsUpdates: 1},
	},
	{
		name:  "sender restart (large backward jump) drops the unit in progress",
		pkts:  cat([]tpkt{{30000, 0, true, idr}, {30001, 3600, false, p}}, seqPkts(100, 50, idr2)),
		want:  []tau{{0, true, true, []string{idr}}, {50, true, false, []string{idr2}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, DroppedUnits: 1},
	},
	{
		name:  "CRA is a key frame",
		pkts:  cat(seqPkts(1, 0, p), seqPkts(2, 3600, idr2), seqPkts(3, 7200, p)),
		want:  []tau{{3600, true, true, []string{idr2}}, {7200, false, false, []string{p}}},
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 1, DroppedUnits: 1},
	},
	// Malformed packets: each is counted, fails Push and makes the
	// depacketizer wait for a key frame; the key frame after it recovers.
	malformed("empty payload", ""),
	malformed("1-byte payload", "26"),
	malformed("truncated FU header", "6201"),
	malformed("truncated AP size", "600100"),
	malformed("AP size beyond payload", "6001000526"),
	malformed("AP unit shorter than its header", "6001000126"),
	malformed("AP empty", "6001"),
	malformed("AP nested aggregate", "600100026001"),
	malformed("FU end without start", idrFU[2]),
	malformed("FU middle without start", idrFU[1]),
	malformed("FU of aggregate type", "6201b000"),
	malformed("PACI", "64010000"),
	malformed("reserved type 51", "66010000"),
	{
		name: "FU start inside FU",
		pkts: cat(seqPkts(1, 0, idr), []tpkt{{2, 3600, false, idrFU[0]}, {3, 3600, false, idrFU[0]}}, seqPkts(4, 7200, idr)),
		want: []tau{{0, true, true, []string{idr}}, {7200, true, false, []string{idr}}},
		errs: 1, errIs: ErrMalformed,
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, BadPackets: 1, DroppedUnits: 1},
	},
	{
		name: "FU type change",
		pkts: cat(seqPkts(1, 0, idr), []tpkt{{2, 3600, false, idrFU[0]}, {3, 3600, true, fu(p, 1)[2]}}, seqPkts(4, 7200, idr)),
		want: []tau{{0, true, true, []string{idr}}, {7200, true, false, []string{idr}}},
		errs: 1, errIs: ErrMalformed,
	},
	{
		name: "single NAL unit inside FU",
		pkts: cat(seqPkts(1, 0, idr), []tpkt{{2, 3600, false, idrFU[0]}, {3, 3600, true, p}}, seqPkts(4, 7200, idr)),
		want: []tau{{0, true, true, []string{idr}}, {7200, true, false, []string{idr}}},
		errs: 1, errIs: ErrMalformed,
	},
}

func malformed(name, payload string) depTest {
	errIs := ErrMalformed
	if b := h(payload); len(b) > 1 && (b[0]>>1)&0x3f >= 50 {
		errIs = ErrUnsupported
	}
	return depTest{
		name:  "malformed: " + name,
		pkts:  cat(seqPkts(1, 0, idr), []tpkt{{2, 3600, false, p}, {3, 3600, true, payload}, {4, 3600, true, p2}}, seqPkts(5, 7200, p), seqPkts(6, 10800, idr)),
		want:  []tau{{0, true, true, []string{idr}}, {10800, true, false, []string{idr}}},
		errs:  1,
		errIs: errIs,
		stats: media.DepacketizerStats{AccessUnits: 2, KeyFrames: 2, BadPackets: 1, DroppedUnits: 3},
	}
}

func (tc *depTest) packets() []*rtp.Packet {
	var out []*rtp.Packet
	for _, tp := range tc.pkts {
		out = append(out, &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: tp.seq, Timestamp: tp.ts, Marker: tp.marker},
			Payload: h(tp.hex),
		})
	}
	return out
}

func TestDepacketizer(t *testing.T) {
	for _, tc := range depTests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDepacketizer(tc.params)
			var got []media.AccessUnit
			errs := 0
			for _, pkt := range tc.packets() {
				if err := d.Push(pkt); err != nil {
					errs++
					if tc.errIs != nil && !errors.Is(err, tc.errIs) {
						t.Errorf("error %v, want %v", err, tc.errIs)
					}
				}
				// The caller may reuse the packet: scribble over it.
				for i := range pkt.Payload {
					pkt.Payload[i] = 0xee
				}
				for {
					au, ok := d.Pull()
					if !ok {
						break
					}
					got = append(got, au)
				}
			}
			if errs != tc.errs {
				t.Errorf("%d errors, want %d", errs, tc.errs)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d units, want %d: %s", len(got), len(tc.want), describe(got))
			}
			for i, w := range tc.want {
				g := got[i]
				var nalus []string
				for _, n := range g.NALUs {
					nalus = append(nalus, hex.EncodeToString(n))
				}
				if g.PTS90k != w.pts || g.Key != w.key || g.ParamsChanged != w.changed || strings.Join(nalus, ",") != strings.Join(w.nalus, ",") {
					t.Errorf("unit %d: got pts %d key %v changed %v %v\nwant pts %d key %v changed %v %v",
						i, g.PTS90k, g.Key, g.ParamsChanged, nalus, w.pts, w.key, w.changed, w.nalus)
				}
			}
			st := d.Stats()
			if st.Packets != uint64(len(tc.pkts)) {
				t.Errorf("Packets %d, want %d", st.Packets, len(tc.pkts))
			}
			if tc.stats != (media.DepacketizerStats{}) {
				want := tc.stats
				want.Packets = st.Packets
				if st != want {
					t.Errorf("stats %+v\nwant  %+v", st, want)
				}
			}
		})
	}
}

func describe(aus []media.AccessUnit) string {
	var sb strings.Builder
	for _, au := range aus {
		sb.WriteString("\n ")
		sb.WriteString(hex.EncodeToString(binary.AppendVarint(nil, au.PTS90k)))
		for _, n := range au.NALUs {
			sb.WriteString(" " + hex.EncodeToString(n))
		}
	}
	return sb.String()
}

func TestParamsNotMutated(t *testing.T) {
	d := NewDepacketizer(media.ParamSets{})
	for _, pkt := range (&depTest{pkts: cat(seqPkts(1, 0, sps, pps, idr), seqPkts(4, 3600, sps2, pps, idr))}).packets() {
		_ = d.Push(pkt)
	}
	a, _ := d.Pull()
	b, _ := d.Pull()
	if !bytes.Equal(a.Params.SPS, h(sps)) || !bytes.Equal(b.Params.SPS, h(sps2)) || !b.ParamsChanged {
		t.Errorf("params %x / %x", a.Params.SPS, b.Params.SPS)
	}
	// NAL units do not share capacity: appending to one cannot clobber the next.
	_ = append(a.NALUs[0], 0xff)
	_ = append(a.NALUs, nil)
	if !bytes.Equal(a.NALUs[1], h(pps)) || !bytes.Equal(b.NALUs[0], h(sps2)) {
		t.Error("NAL units overlap")
	}
}

// randomAU makes an access unit of NAL units with random sizes: the
// key one starts with SPS and PPS.
func randomAU(r *rand.Rand, key bool) [][]byte {
	var au [][]byte
	if key {
		au = append(au, h(vps), h(sps), h(pps))
	}
	slices := 1 + r.Intn(3)
	for i := 0; i < slices; i++ {
		n := make([]byte, 2+r.Intn(5000))
		r.Read(n)
		n[0], n[1] = 0x02, 0x01
		if key {
			n[0] = 0x26
		}
		if len(n) > 2 {
			if i == 0 {
				n[2] |= 0x80
			} else {
				n[2] &^= 0x80
			}
		}
		au = append(au, n)
	}
	return au
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, mtu := range []int{1, 4, 10, 100, 1400, 9000, 70000} {
		d := NewDepacketizer(media.ParamSets{})
		var pz Packetizer
		seq := uint16(65000)
		var sent [][][]byte
		for i := 0; i < 50; i++ {
			au := randomAU(r, i%10 == 0)
			sent = append(sent, au)
			pz.Packetize(au, mtu, func(payload []byte, marker bool) {
				if len(payload) > max(mtu, 4) {
					t.Fatalf("mtu %d: payload of %d bytes", mtu, len(payload))
				}
				pkt := &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(i * 3600), Marker: marker}, Payload: payload}
				seq++
				if err := d.Push(pkt); err != nil {
					t.Fatalf("mtu %d: %v", mtu, err)
				}
			})
		}
		for i, au := range sent {
			got, ok := d.Pull()
			if !ok {
				t.Fatalf("mtu %d: unit %d missing", mtu, i)
			}
			if got.PTS90k != int64(i*3600) || got.Key != (i%10 == 0) || len(got.NALUs) != len(au) {
				t.Fatalf("mtu %d: unit %d: pts %d key %v %d units", mtu, i, got.PTS90k, got.Key, len(got.NALUs))
			}
			for j := range au {
				if !bytes.Equal(got.NALUs[j], au[j]) {
					t.Fatalf("mtu %d: unit %d NAL %d differs", mtu, i, j)
				}
			}
		}
		if st := d.Stats(); st.BadPackets+st.LostPackets+st.DroppedUnits != 0 {
			t.Errorf("mtu %d: %+v", mtu, st)
		}
	}
}

func TestPacketizeShapes(t *testing.T) {
	var got []string
	emit := func(b []byte, m bool) {
		s := hex.EncodeToString(b)
		if m {
			s += "*"
		}
		got = append(got, s)
	}
	Packetize([][]byte{h(vps), {0x40}, h(pps), h(idr)}, 1400, emit)
	want := []string{stap(vps, pps, idr) + "*"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v want %v", got, want)
	}
	got = nil
	Packetize([][]byte{h(idr)}, 6, emit)
	want = []string{"620194af1d08", "6201548d2e81*"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v want %v", got, want)
	}
	got = nil
	Packetize([][]byte{h(p), h(idr)}, 8, emit)
	want = []string{p, idr + "*"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v want %v", got, want)
	}
}

// encodePackets serializes packets for the fuzzer: per packet 2 bytes
// sequence number, 4 bytes timestamp, 1 byte marker, 2 bytes length, then
// the payload.
func encodePackets(pkts []tpkt) []byte {
	var b []byte
	for _, tp := range pkts {
		pl := h(tp.hex)
		b = binary.BigEndian.AppendUint16(b, tp.seq)
		b = binary.BigEndian.AppendUint32(b, tp.ts)
		m := byte(0)
		if tp.marker {
			m = 1
		}
		b = append(b, m)
		b = binary.BigEndian.AppendUint16(b, uint16(len(pl)))
		b = append(b, pl...)
	}
	return b
}

func decodePacket(b []byte) (*rtp.Packet, []byte, bool) {
	if len(b) < 9 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[7:9]))
	if len(b)-9 < n {
		n = len(b) - 9
	}
	return &rtp.Packet{Header: rtp.Header{
		SequenceNumber: binary.BigEndian.Uint16(b[0:2]),
		Timestamp:      binary.BigEndian.Uint32(b[2:6]),
		Marker:         b[6]&1 == 1,
	}, Payload: b[9 : 9+n]}, b[9+n:], true
}

func FuzzDepacketize(f *testing.F) {
	for _, tc := range depTests {
		f.Add(encodePackets(tc.pkts))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDepacketizer(media.ParamSets{VPS: h(vps), SPS: h(sps), PPS: h(pps)})
		var pulled, keys, pushed uint64
		first := true
		for {
			pkt, rest, ok := decodePacket(b)
			if !ok {
				break
			}
			b = rest
			pushed++
			_ = d.Push(pkt)
			for {
				au, ok := d.Pull()
				if !ok {
					break
				}
				pulled++
				if au.Key {
					keys++
				}
				if first && (!au.Key || !au.ParamsChanged) {
					t.Fatal("first unit not key or ParamsChanged unset")
				}
				first = false
				if len(au.NALUs) == 0 {
					t.Fatal("unit without NAL units")
				}
				if want := mp4.AppendSampleData(nil, au.NALUs); !bytes.Equal(au.Sample, want) {
					t.Fatalf("Sample %x, want the NAL units as an MP4 sample %x", au.Sample, want)
				}
				vcl := false
				for _, n := range au.NALUs {
					if len(n) < 2 {
						t.Fatal("NAL unit shorter than its header")
					}
					vcl = vcl || len(n) >= 2 && (n[0]>>1)&0x3f < 32
				}
				if !vcl || len(au.Params.SPS) == 0 {
					t.Fatal("unit without picture or SPS")
				}
			}
		}
		st := d.Stats()
		if st.Packets != pushed || st.AccessUnits != pulled || st.KeyFrames != keys || st.BadPackets > st.Packets || st.KeyFrames > st.AccessUnits {
			t.Fatalf("stats %+v, pushed %d pulled %d keys %d", st, pushed, pulled, keys)
		}
	})
}
