package recorder_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/sim"
)

// keyFrameEater forwards an RTSP-over-TCP session but drops every
// interleaved RTP packet that carries part of a key frame or a parameter
// set (H.264 NAL types 5, 7, 8, alone, in STAP-A or in FU-A): packets keep
// arriving, but no frame can ever be depacketized.
func keyFrameEater(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				r := bufio.NewReader(up)
				for {
					b, err := r.Peek(1)
					if err != nil {
						return
					}
					if b[0] != '$' { // an RTSP response: headers (and body) as they are
						var msg bytes.Buffer
						n := 0
						for {
							line, err := r.ReadString('\n')
							if err != nil {
								return
							}
							msg.WriteString(line)
							if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
								n = atoiTrim(v)
							}
							if line == "\r\n" {
								break
							}
						}
						body := make([]byte, n)
						if _, err := io.ReadFull(r, body); err != nil {
							return
						}
						msg.Write(body)
						if _, err := c.Write(msg.Bytes()); err != nil {
							return
						}
						continue
					}
					hdr := make([]byte, 4)
					if _, err := io.ReadFull(r, hdr); err != nil {
						return
					}
					pkt := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
					if _, err := io.ReadFull(r, pkt); err != nil {
						return
					}
					if hdr[1]%2 == 0 && len(pkt) > 13 && keyPart(pkt[12:]) {
						continue
					}
					if _, err := c.Write(append(hdr, pkt...)); err != nil {
						return
					}
				}
			})
		}
	}()
	return ln.Addr().String()
}

func atoiTrim(s string) int {
	n := 0
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// keyPart reports whether an H.264 RTP payload carries (part of) an IDR
// picture or a parameter set.
func keyPart(p []byte) bool {
	switch typ := p[0] & 0x1f; typ {
	case 5, 7, 8:
		return true
	case 24: // STAP-A
		return true
	case 28: // FU-A
		return len(p) > 1 && p[1]&0x1f == 5
	}
	return false
}

// TestNoFramesWatchdog: a camera whose packets keep coming but never make
// a frame (every key frame lost) is not left "recording" forever: the
// session ends after the timeout and the supervisor reconnects, with the
// reason in its status.
func TestNoFramesWatchdog(t *testing.T) {
	r := newRig(t, sim.Options{Cameras: 1})
	addr := keyFrameEater(t, r.addr)
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{
		Camera: "cam", Stream: "main", Client: rtsp.ClientConfig{URL: "rtsp://" + addr + "/cam1/sub"},
		Disk: r.disk, Index: r.idx, NoFramesTimeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sup.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := sup.Status()
		if st.Reconnects >= 1 && strings.Contains(st.Reason, "no usable video") {
			t.Logf("status %+v", st)
			if st.Frames != 0 {
				t.Errorf("frames recorded from a stream without key frames: %d", st.Frames)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect after 20 s of frameless packets: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
