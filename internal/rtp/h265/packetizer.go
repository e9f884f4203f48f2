package h265

// minMTU is the smallest payload size that can carry an FU fragment
// (3 header bytes and 1 byte of data).
const minMTU = 4

// Packetizer splits access units into RTP payloads (RFC 7798, without
// DONL). It keeps one scratch buffer, so reusing a Packetizer makes
// packetization allocation-free. It does no I/O and is not safe for
// concurrent use; the zero value is ready.
type Packetizer struct {
	buf []byte
}

// Packetize is (&Packetizer{}).Packetize, for callers that packetize once.
func Packetize(nalus [][]byte, mtu int, emit func(payload []byte, marker bool)) {
	var p Packetizer
	p.Packetize(nalus, mtu, emit)
}

// Packetize calls emit with the RTP payloads of one access unit, in order,
// none longer than mtu (raised to 4 if smaller): consecutive small NAL units
// are aggregated into AP packets, a unit that fits alone is sent as a single
// NAL unit packet, and a larger one is split into FU fragments. marker is
// true on the access unit's last payload. payload is valid only during the
// call and must not be modified (it may alias nalus). NAL units shorter
// than their 2-byte header are skipped.
func (p *Packetizer) Packetize(nalus [][]byte, mtu int, emit func(payload []byte, marker bool)) {
	if mtu < minMTU {
		mtu = minMTU
	}
	last := len(nalus) - 1
	for last >= 0 && len(nalus[last]) < 2 {
		last--
	}
	for i := 0; i <= last; {
		n := nalus[i]
		if len(n) < 2 {
			i++
			continue
		}
		// Aggregate n with following units while the AP fits.
		size, j, count := 2+2+len(n), i+1, 1
		for ; j <= last && len(n) <= 0xffff; j++ {
			m := nalus[j]
			if len(m) < 2 {
				continue
			}
			if size+2+len(m) > mtu || len(m) > 0xffff {
				break
			}
			size += 2 + len(m)
			count++
		}
		if count > 1 {
			p.ap(nalus[i:j], emit, j > last)
			i = j
			continue
		}
		if len(n) <= mtu {
			emit(n, i == last)
		} else {
			p.fu(n, mtu, emit, i == last)
		}
		i++
	}
}

func (p *Packetizer) ap(nalus [][]byte, emit func([]byte, bool), marker bool) {
	// F is the OR of the units' F bits, LayerId and TID their minimum
	// (RFC 7798 4.4.2).
	f, layer, tid := byte(0), byte(0x3f), byte(7)
	for _, n := range nalus {
		if len(n) >= 2 {
			f |= n[0] & 0x80
			layer = min(layer, (n[0]&1)<<5|n[1]>>3)
			tid = min(tid, n[1]&7)
		}
	}
	b := append(p.buf[:0], f|typeAP<<1|layer>>5, layer<<3|tid)
	for _, n := range nalus {
		if len(n) >= 2 {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
	}
	p.buf = b
	emit(b, marker)
}

func (p *Packetizer) fu(n []byte, mtu int, emit func([]byte, bool), marker bool) {
	h0, h1 := n[0]&0x81|typeFU<<1, n[1]
	typ := (n[0] >> 1) & 0x3f
	data := n[2:]
	start := true
	for len(data) > 0 {
		take := min(len(data), mtu-3)
		hdr := typ
		if start {
			hdr |= 0x80
		}
		end := take == len(data)
		if end {
			hdr |= 0x40
		}
		b := append(p.buf[:0], h0, h1, hdr)
		b = append(b, data[:take]...)
		p.buf = b
		emit(b, marker && end)
		data = data[take:]
		start = false
	}
}
