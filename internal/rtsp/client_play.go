package rtsp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// playState is one playing session: its tracks, the goroutines that read
// media, the keep-alive and the stall watchdog.
type playState struct {
	c       *Client
	h       Handler
	mode    TransportMode
	tracks  []*playTrack
	byChan  [256]*playTrack // TCP: RTP channel → track (RTCP is channel+1)
	timeout time.Duration   // session timeout announced by the server

	hmu     sync.Mutex // serialises Handler calls (UDP has several readers)
	pkt     rtp.Packet // reused by the TCP reader
	packets atomic.Uint64

	firstPacket chan struct{}
	firstOnce   sync.Once
	quit        chan struct{}
	stopOnce    sync.Once
	err         error
	done        chan struct{}
	wg          sync.WaitGroup
}

type playTrack struct {
	index   int
	channel int
	ssrc    uint32
	hasSSRC bool

	udp        *udpClientPair
	serverIP   net.IP
	serverRTP  *net.UDPAddr
	serverRTCP *net.UDPAddr
	rx         rxStats
}

func newPlayState(c *Client, h Handler, mode TransportMode) *playState {
	return &playState{c: c, h: h, mode: mode, timeout: 60 * time.Second,
		firstPacket: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
}

func (p *playState) closeSockets() {
	for _, t := range p.tracks {
		t.udp.close()
	}
}

// start launches the session's goroutines. The control connection is read
// by one goroutine from now on.
func (p *playState) start() {
	cc := p.c.conn
	cc.mu.Lock()
	cc.async = true
	cc.mu.Unlock()
	for _, t := range p.tracks {
		if p.mode == TCP && t.channel < 255 {
			p.byChan[t.channel] = t
		}
	}
	p.wg.Add(3)
	go p.readControl()
	go p.keepAlive()
	go p.watchdog()
	if p.mode == UDP {
		for _, t := range p.tracks {
			p.wg.Add(2)
			go p.readUDPRTP(t)
			go p.readUDPRTCP(t)
			p.punch(t)
		}
		p.wg.Add(1)
		go p.receiverReports()
	}
	go func() {
		p.wg.Wait()
		close(p.done)
	}()
}

// stop ends the session with err (the first call wins) and unblocks every
// goroutine; it does not wait.
func (p *playState) stop(err error) {
	p.stopOnce.Do(func() {
		p.err = err
		close(p.quit)
		p.c.conn.nc.SetReadDeadline(time.Unix(1, 0))
		p.closeSockets()
	})
}

func (p *playState) wait() { <-p.done }

func (p *playState) stopping() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

func (p *playState) gotPacket() {
	if p.packets.Add(1) == 1 {
		p.firstOnce.Do(func() { close(p.firstPacket) })
	}
}

func (p *playState) readControl() {
	defer p.wg.Done()
	cc := p.c.conn
	cc.nc.SetReadDeadline(time.Time{})
	for {
		it, err := cc.rd.Read()
		if err != nil {
			if !p.stopping() {
				p.stop(fmt.Errorf("read from camera %s: %w", p.c.url.Host, err))
			}
			return
		}
		switch {
		case it.Response != nil:
			cc.dispatch(it.Response)
		case it.Request != nil:
			cc.answerServerRequest(it.Request)
		case it.Channel >= 0:
			p.interleaved(it.Channel, it.Payload)
		}
	}
}

func (p *playState) interleaved(ch int, payload []byte) {
	if t := p.byChan[ch]; t != nil {
		if err := p.pkt.Unmarshal(payload); err != nil {
			return // counted by nobody: the depacketizer sees the sequence gap
		}
		p.gotPacket()
		p.h.HandleRTP(t.index, &p.pkt)
		return
	}
	if ch > 0 {
		if t := p.byChan[ch-1]; t != nil {
			if pkts, err := rtcp.Unmarshal(payload); err == nil {
				p.h.HandleRTCP(t.index, pkts)
			}
		}
	}
}

// keepAlive refreshes the session at half its timeout with GET_PARAMETER
// when the server lists it, OPTIONS otherwise.
func (p *playState) keepAlive() {
	defer p.wg.Done()
	every := p.timeout / 2
	if every < time.Second {
		every = time.Second
	}
	method := "OPTIONS"
	if strings.Contains(strings.ToUpper(p.c.public), "GET_PARAMETER") {
		method = "GET_PARAMETER"
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			if err := p.c.conn.send(context.Background(), method, p.c.desc.playURL(p.c.url.String())); err != nil {
				p.stop(fmt.Errorf("keep-alive: %w", err))
				return
			}
		}
	}
}

// watchdog ends the session with ErrStall when no RTP packet arrived for
// StallTimeout.
func (p *playState) watchdog() {
	defer p.wg.Done()
	stall := p.c.cfg.StallTimeout
	tick := min(stall/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	last := p.packets.Load()
	lastChange := time.Now()
	for {
		select {
		case <-p.quit:
			return
		case now := <-t.C:
			if n := p.packets.Load(); n != last {
				last, lastChange = n, now
				continue
			}
			if now.Sub(lastChange) >= stall {
				p.stop(fmt.Errorf("camera %s: %w for %s", p.c.url.Host, ErrStall, stall))
				return
			}
		}
	}
}
