package netlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// dial opens n connections to ln's address and returns them.
func dial(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// closedByServer reports whether the server closed c (EOF or reset)
// within 300 ms, rather than keeping it open.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// serveHold accepts from l and holds every accepted connection open
// until the test ends; it returns the accepted connections' channel.
func serveHold(t *testing.T, l *Listener) <-chan net.Conn {
	t.Helper()
	got := make(chan net.Conn, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			got <- c
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		close(got)
		for c := range got {
			c.Close()
		}
	})
	return got
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestListenerBounds: connections over Max, over PerAddr (not for an
// exempt address) and over the Budget are closed at once and reported;
// closing an accepted one frees its place.
func TestListenerBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      Options
		reason string
		admit  int
	}{
		{"max", Options{Max: 3}, ReasonMax, 3},
		{"per address", Options{Max: 10, PerAddr: 2}, ReasonPerAddr, 2},
		{"budget", Options{Max: 10, Budget: func() int { return 4 }}, ReasonBudget, 4},
		{"negative budget", Options{Budget: func() int { return -5 }}, ReasonBudget, 0},
		{"exempt", Options{Max: 5, PerAddr: 1, Exempt: func(a netip.Addr) bool { return a.IsLoopback() }}, ReasonMax, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var reasons []string
			tc.o.OnRefuse = func(a netip.Addr, reason string) {
				mu.Lock()
				defer mu.Unlock()
				if a != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("refused address %v", a)
				}
				reasons = append(reasons, reason)
			}
			l := New(listen(t), tc.o)
			got := serveHold(t, l)
			cs := dial(t, l.Addr().String(), tc.admit+2)
			var kept []net.Conn
			for range tc.admit {
				select {
				case c := <-got:
					kept = append(kept, c)
				case <-time.After(5 * time.Second):
					t.Fatalf("only %d connections accepted, want %d", len(kept), tc.admit)
				}
			}
			for i, c := range cs {
				if closed := closedByServer(c); closed != (i >= tc.admit) {
					t.Errorf("connection %d: closed by the server=%v", i, closed)
				}
			}
			// OnRefuse runs just after the close the client saw.
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				mu.Lock()
				n := len(reasons)
				mu.Unlock()
				if n >= 2 || time.Now().After(deadline) {
					break
				}
			}
			mu.Lock()
			if len(reasons) != 2 || reasons[0] != tc.reason || reasons[1] != tc.reason {
				t.Errorf("refusals %v, want 2 × %s", reasons, tc.reason)
			}
			mu.Unlock()
			if l.Open() != tc.admit {
				t.Errorf("Open() = %d, want %d", l.Open(), tc.admit)
			}
			if tc.admit == 0 {
				return
			}
			// Closing one (twice: counted once) makes room for one more.
			kept[0].Close()
			kept[0].Close()
			if l.Open() != tc.admit-1 {
				t.Errorf("after a close: Open() = %d, want %d", l.Open(), tc.admit-1)
			}
			c := dial(t, l.Addr().String(), 1)[0]
			select {
			case k := <-got:
				defer k.Close()
			case <-time.After(5 * time.Second):
				t.Fatal("no room after a close")
			}
			if closedByServer(c) {
				t.Error("the connection after a close was refused")
			}
		})
	}
}

// TestConnReadFrom: the wrapper keeps io.ReaderFrom (net/http's sendfile
// path) and delivers the bytes.
func TestConnReadFrom(t *testing.T) {
	l := New(listen(t), Options{})
	got := serveHold(t, l)
	c := dial(t, l.Addr().String(), 1)[0]
	sc := <-got
	rf, ok := sc.(io.ReaderFrom)
	if !ok {
		t.Fatal("accepted connection is not an io.ReaderFrom")
	}
	go func() {
		rf.ReadFrom(io.LimitReader(zeros{}, 100000))
		sc.Close()
	}()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != 100000 {
		t.Errorf("read %d bytes, %v", n, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
