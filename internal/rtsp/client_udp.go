package rtsp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// udpClientPair is a client's even/odd RTP/RTCP socket pair for one track.
type udpClientPair struct {
	rtp, rtcp *net.UDPConn
}

func (p *udpClientPair) close() {
	if p == nil {
		return
	}
	p.rtp.Close()
	p.rtcp.Close()
}

func (p *udpClientPair) ports() [2]int {
	return [2]int{p.rtp.LocalAddr().(*net.UDPAddr).Port, p.rtcp.LocalAddr().(*net.UDPAddr).Port}
}

func listenClientPair(listen func(string, *net.UDPAddr) (*net.UDPConn, error), ip net.IP) (*udpClientPair, error) {
	a, b, err := listenPortPair(listen, ip)
	if err != nil {
		return nil, err
	}
	a.SetReadBuffer(2 << 20)
	return &udpClientPair{rtp: a, rtcp: b}, nil
}

// rxStats are the receiver-side counters a receiver report needs. They are
// written by the track's RTP reader under playState.hmu.
type rxStats struct {
	started  bool
	baseSeq  uint16
	maxSeq   uint16
	cycles   uint32
	received uint32
	// values at the previous report, for the fraction lost
	expPrior uint32
	rcvPrior uint32
	lastSR   uint32 // middle 32 bits of the last SR's NTP time
	lastSRAt time.Time
}

func (s *rxStats) update(seq uint16) {
	if !s.started {
		s.started, s.baseSeq, s.maxSeq = true, seq, seq
		s.received = 1
		return
	}
	s.received++
	if d := seq - s.maxSeq; d != 0 && d < 0x8000 {
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
	}
}

// punch sends an empty datagram from each client port toward the server so
// that stateful firewalls and NATs between us open the path.
func (p *playState) punch(t *playTrack) {
	if t.serverRTP != nil {
		t.udp.rtp.WriteToUDP([]byte{}, t.serverRTP)
	}
}

func (p *playState) readUDPRTP(t *playTrack) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	var pkt rtp.Packet
	for {
		n, from, err := t.udp.rtp.ReadFromUDP(buf)
		if err != nil {
			if !p.stopping() {
				p.stop(fmt.Errorf("read UDP RTP: %w", err))
			}
			return
		}
		if t.serverIP != nil && !from.IP.Equal(t.serverIP) {
			continue // not from the camera
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		p.gotPacket()
		p.hmu.Lock()
		t.rx.update(pkt.SequenceNumber)
		if !t.hasSSRC {
			t.ssrc, t.hasSSRC = pkt.SSRC, true
		}
		p.h.HandleRTP(t.index, &pkt)
		p.hmu.Unlock()
	}
}

func (p *playState) readUDPRTCP(t *playTrack) {
	defer p.wg.Done()
	buf := make([]byte, 8192)
	for {
		n, from, err := t.udp.rtcp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if t.serverIP != nil && !from.IP.Equal(t.serverIP) {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		p.hmu.Lock()
		for _, pk := range pkts {
			if sr, ok := pk.(*rtcp.SenderReport); ok {
				t.rx.lastSR = uint32(sr.NTPTime >> 16)
				t.rx.lastSRAt = time.Now()
			}
		}
		p.h.HandleRTCP(t.index, pkts)
		p.hmu.Unlock()
	}
}

// receiverReports sends an RTCP receiver report per UDP track every 5 s,
// which keeps the camera's session alive and tells it our loss.
func (p *playState) receiverReports() {
	defer p.wg.Done()
	var b [4]byte
	rand.Read(b[:])
	ourSSRC := binary.BigEndian.Uint32(b[:])
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			for _, tr := range p.tracks {
				if tr.serverRTCP == nil {
					continue
				}
				p.hmu.Lock()
				rr := buildRR(ourSSRC, tr)
				p.hmu.Unlock()
				if b, err := rr.Marshal(); err == nil {
					tr.udp.rtcp.WriteToUDP(b, tr.serverRTCP)
				}
			}
		}
	}
}

func buildRR(ourSSRC uint32, t *playTrack) *rtcp.ReceiverReport {
	rr := &rtcp.ReceiverReport{SSRC: ourSSRC}
	s := &t.rx
	if !s.started || !t.hasSSRC {
		return rr
	}
	extMax := s.cycles + uint32(s.maxSeq)
	expected := extMax - uint32(s.baseSeq) + 1
	lost := int64(expected) - int64(s.received)
	if lost < 0 {
		lost = 0
	}
	expInt := expected - s.expPrior
	rcvInt := s.received - s.rcvPrior
	s.expPrior, s.rcvPrior = expected, s.received
	var frac uint8
	if expInt > 0 && expInt > rcvInt {
		frac = uint8((expInt - rcvInt) << 8 / expInt)
	}
	var dlsr uint32
	if !s.lastSRAt.IsZero() {
		dlsr = uint32(time.Since(s.lastSRAt).Seconds() * 65536)
	}
	rr.Reports = []rtcp.ReceptionReport{{
		SSRC:               t.ssrc,
		FractionLost:       frac,
		TotalLost:          uint32(min(lost, 0x7fffff)),
		LastSequenceNumber: extMax,
		LastSenderReport:   s.lastSR,
		Delay:              dlsr,
	}}
	return rr
}
