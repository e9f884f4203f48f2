package h264

// minMTU is the smallest payload size that can carry an FU-A fragment
// (2 header bytes and 1 byte of data).
const minMTU = 3

// Packetizer splits access units into RTP payloads (RFC 6184 packetization
// mode 1). It keeps one scratch buffer, so reusing a Packetizer makes
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
// none longer than mtu (raised to 3 if smaller): consecutive small NAL units
// are aggregated into STAP-A packets, a unit that fits alone is sent as a
// single NAL unit packet, and a larger one is split into FU-A fragments.
// marker is true on the access unit's last payload. payload is valid only
// during the call and must not be modified (it may alias nalus). Empty NAL
// units are skipped.
func (p *Packetizer) Packetize(nalus [][]byte, mtu int, emit func(payload []byte, marker bool)) {
	if mtu < minMTU {
		mtu = minMTU
	}
	last := len(nalus) - 1
	for last >= 0 && len(nalus[last]) == 0 {
		last--
	}
	for i := 0; i <= last; {
		n := nalus[i]
		if len(n) == 0 {
			i++
			continue
		}
		// Aggregate n with following units while the STAP-A fits.
		size, j := 1+2+len(n), i+1
		for ; j <= last && len(n) <= 0xffff; j++ {
			if len(nalus[j]) == 0 {
				continue
			}
			if size+2+len(nalus[j]) > mtu || len(nalus[j]) > 0xffff {
				break
			}
			size += 2 + len(nalus[j])
		}
		if count := countNonEmpty(nalus[i:j]); count > 1 {
			p.stapA(nalus[i:j], size, emit, j > last)
			i = j
			continue
		}
		if len(n) <= mtu {
			emit(n, i == last)
		} else {
			p.fuA(n, mtu, emit, i == last)
		}
		i++
	}
}

func countNonEmpty(nalus [][]byte) int {
	c := 0
	for _, n := range nalus {
		if len(n) > 0 {
			c++
		}
	}
	return c
}

func (p *Packetizer) stapA(nalus [][]byte, size int, emit func([]byte, bool), marker bool) {
	b := p.buf[:0]
	// F is the OR of the units' F bits, NRI their maximum (RFC 6184 5.7.1).
	var f, nri byte
	for _, n := range nalus {
		if len(n) > 0 {
			f |= n[0] & 0x80
			nri = max(nri, n[0]&0x60)
		}
	}
	b = append(b, f|nri|typeSTAPA)
	for _, n := range nalus {
		if len(n) > 0 {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
	}
	p.buf = b
	emit(b, marker)
}

func (p *Packetizer) fuA(n []byte, mtu int, emit func([]byte, bool), marker bool) {
	indicator := n[0]&0xe0 | typeFUA
	typ := n[0] & 0x1f
	data := n[1:]
	start := true
	for len(data) > 0 {
		take := min(len(data), mtu-2)
		hdr := typ
		if start {
			hdr |= 0x80
		}
		end := take == len(data)
		if end {
			hdr |= 0x40
		}
		b := append(p.buf[:0], indicator, hdr)
		b = append(b, data[:take]...)
		p.buf = b
		emit(b, marker && end)
		data = data[take:]
		start = false
	}
}
