package rtsp

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/pion/rtcp"
)

// srInterval is how often a server session sends RTCP sender reports.
const srInterval = 5 * time.Second

// sessionWriter implements PacketWriter for one server session. It stamps
// the session's SSRC into every packet, counts what it sent, and emits a
// sender report per track every srInterval from Flush.
type sessionWriter struct {
	c      *serverConn
	tcp    bool
	tracks map[int]*writerTrack
	udp    *net.UDPConn
	rtcp   *net.UDPConn
	buf    []byte // pending interleaved frames (TCP)
	scr    []byte // scratch for UDP datagrams
	lastSR time.Time
	now    func() time.Time
}

type writerTrack struct {
	st        sessionTrack
	packets   uint32
	octets    uint32
	lastTS    uint32
	sentAny   bool
	lastSentT time.Time
}

func newSessionWriter(c *serverConn, sess *serverSession) *sessionWriter {
	w := &sessionWriter{c: c, tcp: sess.tcp, tracks: make(map[int]*writerTrack), now: time.Now}
	for _, t := range sess.tracks {
		w.tracks[t.index] = &writerTrack{st: t}
	}
	if !sess.tcp && c.srv.udp != nil {
		w.udp = c.srv.udp.rtp
		w.rtcp = c.srv.udp.rtcp
	}
	return w
}

func (w *sessionWriter) WriteRTP(track int, pkt []byte) error {
	t, ok := w.tracks[track]
	if !ok {
		return nil // not set up by this client
	}
	if len(pkt) < 12 || len(pkt) > 0xffff {
		return fmt.Errorf("rtsp server: RTP packet of %d bytes on track %d", len(pkt), track)
	}
	t.packets++
	t.octets += uint32(len(pkt) - 12)
	t.lastTS = binary.BigEndian.Uint32(pkt[4:8])
	t.sentAny = true
	if w.tcp {
		start := len(w.buf) + 4
		w.buf = WriteInterleaved(w.buf, uint8(t.st.channel), pkt)
		binary.BigEndian.PutUint32(w.buf[start+8:start+12], t.st.ssrc)
		return nil
	}
	w.scr = append(w.scr[:0], pkt...)
	binary.BigEndian.PutUint32(w.scr[8:12], t.st.ssrc)
	if _, err := w.udp.WriteToUDP(w.scr, t.st.udpRTP); err != nil {
		return fmt.Errorf("rtsp server: send RTP to %s: %w", t.st.udpRTP, err)
	}
	return nil
}

func (w *sessionWriter) Flush() error {
	now := w.now()
	if now.Sub(w.lastSR) >= srInterval {
		w.lastSR = now
		if err := w.sendSenderReports(now); err != nil {
			return err
		}
	}
	if !w.tcp || len(w.buf) == 0 {
		return nil
	}
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	w.c.nc.SetWriteDeadline(now.Add(10 * time.Second))
	_, err := w.c.nc.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("rtsp server: write to %s: %w", w.c.remote, err)
	}
	return nil
}

func (w *sessionWriter) sendSenderReports(now time.Time) error {
	for _, t := range w.tracks {
		if !t.sentAny {
			continue
		}
		sr := rtcp.SenderReport{
			SSRC:        t.st.ssrc,
			NTPTime:     NTPTime(now),
			RTPTime:     t.lastTS,
			PacketCount: t.packets,
			OctetCount:  t.octets,
		}
		b, err := sr.Marshal()
		if err != nil {
			return fmt.Errorf("rtsp server: sender report: %w", err)
		}
		if w.tcp {
			w.buf = WriteInterleaved(w.buf, uint8(t.st.channel+1), b)
			continue
		}
		if w.rtcp != nil && t.st.udpRTCP != nil {
			// Best effort: a lost report only delays the NTP mapping.
			w.rtcp.WriteToUDP(b, t.st.udpRTCP)
		}
	}
	return nil
}

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP) to
// 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// NTPTime converts t to a 64-bit NTP timestamp (32.32 fixed point seconds
// since 1900).
func NTPTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// TimeFromNTP converts a 64-bit NTP timestamp to a time.Time.
func TimeFromNTP(ntp uint64) time.Time {
	secs := int64(ntp>>32) - ntpEpochOffset
	nsec := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, nsec)
}
