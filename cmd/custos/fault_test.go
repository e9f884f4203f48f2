package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/api"
	"github.com/custos-nvr/custos/internal/sim"
)

// garbleProxy forwards TCP connections to target; after the first
// passBytes bytes from the camera it applies mode to what follows:
// "flip" changes random bytes (payloads and headers alike), "junk"
// inserts runs of random bytes, "cut" ends the connection mid-frame.
type garbleProxy struct {
	ln        net.Listener
	target    string
	mode      string
	passBytes int
	wg        sync.WaitGroup
}

func newGarbleProxy(t *testing.T, target, mode string) *garbleProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &garbleProxy{ln: ln, target: target, mode: mode, passBytes: 64 << 10}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *garbleProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(up, c) // requests pass untouched
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	buf := make([]byte, 32<<10)
	seen := 0
	for {
		n, err := up.Read(buf)
		if n > 0 {
			b := buf[:n]
			if seen >= p.passBytes {
				switch p.mode {
				case "flip":
					for i := 0; i < n/512+1; i++ {
						b[rng.IntN(n)] ^= byte(1 + rng.IntN(255))
					}
				case "junk":
					if rng.IntN(4) == 0 {
						junk := make([]byte, 1+rng.IntN(3000))
						for i := range junk {
							junk[i] = byte(rng.Uint32())
						}
						if _, err := c.Write(junk); err != nil {
							return
						}
					}
				case "cut":
					c.Write(b[:n/2])
					return
				}
			}
			seen += n
			if _, err := c.Write(b); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestCameraSendsGarbage records four cameras, three of them behind
// proxies that corrupt what the camera sends after the session is set up
// (random bytes flipped, random junk inserted, the connection cut
// mid-frame, again and again): the server keeps running and answering,
// the healthy camera loses nothing, the damaged ones keep recording or
// reconnecting, and custos check finds the files well formed.
func TestCameraSendsGarbage(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 4})
	modes := []string{"flip", "junk", "cut"}
	var cams strings.Builder
	fmt.Fprintf(&cams, "  - {name: healthy, url: \"rtsp://%s/cam1\"}\n", simAddr)
	for i, m := range modes {
		p := newGarbleProxy(t, simAddr, m)
		fmt.Fprintf(&cams, "  - {name: %s, url: \"rtsp://%s/cam%d\"}\n", m, p.ln.Addr(), i+2)
	}
	srv, cfgPath, logs := serveYAML(t, t.TempDir(), "cameras:\n"+cams.String())
	base := srv.authURL()
	const seconds = 12
	time.Sleep(seconds * time.Second)
	var list []api.CameraJSON
	if code := getJSON(t, base+"/api/cameras", &list); code != 200 || len(list) != 4 {
		t.Fatalf("the server stopped answering: %d %+v", code, list)
	}
	for _, c := range list {
		st := c.Streams[0]
		t.Logf("%-8s %-12s frames %4d reconnects %d  %s", c.Name, c.Status, st.Frames, st.Reconnects, c.Reason)
		switch c.Name {
		case "healthy":
			if c.Status != "recording" || st.Reconnects != 0 || st.Frames < 25*(seconds-2) {
				t.Errorf("the healthy camera suffered: %+v", st)
			}
		case "cut":
			if st.Reconnects == 0 {
				t.Errorf("cut connections did not reconnect: %+v", st)
			}
		}
		if c.Status != "recording" && c.Status != "reconnecting" {
			t.Errorf("%s is %s: %s", c.Name, c.Status, c.Reason)
		}
	}
	srv.stop()
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("a panic in the logs:\n%s", logs.String())
	}
	// Whatever was recorded is well-formed MP4 that the index describes.
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 {
		t.Errorf("check after garbage: exit %d\n%s%s", code, out, errOut)
	}
}

// absurdPackets is a sim.Options.Garble for TestCameraSendsAbsurdPackets:
// cam2's packets are truncated (the payload cut at a random point, often
// mid-FU-A), cam3's headers lie (CSRC count 15 in a short packet, an
// extension longer than the packet, padding longer than the payload), and
// cam4 sends, every 5 s, an access unit of one fragmented NAL unit that
// never ends, 17 MiB long (over the depacketizer's 16 MiB bound).
func absurdPackets() func(path string, n int, pkt []byte) [][]byte {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	count := map[string]int{}
	return func(path string, n int, pkt []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		count[path]++
		k := count[path]
		switch path {
		case "cam2":
			if k%7 == 0 && len(pkt) > 13 {
				return [][]byte{pkt[:12+rng.IntN(len(pkt)-12)]}
			}
		case "cam3":
			if k%11 == 0 {
				bad := append([]byte(nil), pkt...)
				switch rng.IntN(3) {
				case 0:
					bad[0] |= 0x0f // 15 CSRCs: 60 bytes the packet may not have
					bad = bad[:min(len(bad), 20)]
				case 1:
					bad[0] |= 0x10 // an extension of 0xffff words
					bad = append(bad[:12], 0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4)
				default:
					bad[0] |= 0x20 // padding of 255 bytes
					bad[len(bad)-1] = 255
				}
				return [][]byte{bad}
			}
		case "cam4":
			if n%125 == 60 && pkt[1]&0x80 != 0 { // after the last packet of a mid-GOP frame
				out := [][]byte{pkt}
				payload := make([]byte, 1400)
				for i := range payload {
					payload[i] = byte(rng.Uint32())
				}
				for i := range 17 << 20 / 1400 {
					p := make([]byte, 12, 12+2+len(payload))
					copy(p, pkt[:12])
					p[0] &^= 0x3f // no padding, extension or CSRCs
					p[1] &^= 0x80 // no marker: the unit never ends
					binary.BigEndian.PutUint32(p[4:8], binary.BigEndian.Uint32(pkt[4:8])+1800)
					fu := byte(28) | 0x60 // FU-A, nri 3
					hdr := byte(1)        // non-IDR slice
					if i == 0 {
						hdr |= 0x80 // start
					}
					p = append(p, fu, hdr)
					p = append(p, payload...)
					out = append(out, p)
				}
				return out
			}
		}
		return [][]byte{pkt}
	}
}

// TestCameraSendsAbsurdPackets records four cameras of one simulator, three
// of which send truncated packets, lying headers or an endless 17 MiB
// access unit: the server keeps answering, the healthy camera loses
// nothing, the others record what survives (the depacketizer drops the
// damaged units and waits for the next key frame), the server's heap stays
// bounded, and custos check passes.
func TestCameraSendsAbsurdPackets(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 4, Garble: absurdPackets()})
	var cams strings.Builder
	for i, name := range []string{"healthy", "truncated", "lies", "huge"} {
		fmt.Fprintf(&cams, "  - {name: %s, url: \"rtsp://%s/cam%d\"}\n", name, simAddr, i+1)
	}
	srv, cfgPath, logs := serveYAML(t, t.TempDir(), "cameras:\n"+cams.String())
	base := srv.authURL()
	const seconds = 12
	var maxHeap uint64
	for range seconds * 2 {
		time.Sleep(500 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapInuse)
	}
	var list []api.CameraJSON
	if code := getJSON(t, base+"/api/cameras", &list); code != 200 || len(list) != 4 {
		t.Fatalf("the server stopped answering: %d %+v", code, list)
	}
	for _, c := range list {
		st := c.Streams[0]
		t.Logf("%-9s %-12s frames %4d reconnects %d  %s", c.Name, c.Status, st.Frames, st.Reconnects, c.Reason)
		switch c.Name {
		case "healthy":
			if c.Status != "recording" || st.Reconnects != 0 || st.Frames < 25*(seconds-2) {
				t.Errorf("the healthy camera suffered: %+v", st)
			}
		default:
			if st.Frames == 0 {
				t.Errorf("%s recorded nothing: %+v", c.Name, st)
			}
		}
	}
	// Three 17 MiB units must not pile up: at most one is being
	// reassembled at a time per stream (this test process holds the
	// simulator and the server).
	t.Logf("max heap in use %.0f MiB", float64(maxHeap)/(1<<20))
	if maxHeap > 200<<20 {
		t.Errorf("heap in use reached %.0f MiB", float64(maxHeap)/(1<<20))
	}
	srv.stop()
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("a panic in the logs:\n%s", logs.String())
	}
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 {
		t.Errorf("check after absurd packets: exit %d\n%s%s", code, out, errOut)
	}
}
