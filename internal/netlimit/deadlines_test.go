package netlimit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeadlinesBody: a request body that trickles in is cut once body
// has passed; a body sent at once, then a handler that works longer
// than body, is not cut.
func TestDeadlinesBody(t *testing.T) {
	const body = 300 * time.Millisecond
	h := Deadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(2 * body) // long work after the body
		select {
		case <-r.Context().Done():
			return // cut: nothing written
		default:
		}
		fmt.Fprintf(w, "got %d", len(b))
	}), body, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got 5" {
		t.Errorf("whole body then long work: %s %q", resp.Status, b)
	}

	// Slow body: 10 bytes announced, 1 sent, then nothing.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "timeout") {
			t.Errorf("slow body: %s %q, want 400 with a timeout", r.Status, b)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("slow body held the connection %v", d)
	}
}

// TestDeadlinesWrite: a client that stops reading is cut after about
// write; one that reads slowly but steadily a response longer than
// write (through Write and through ReadFrom of a file, net/http's
// sendfile path) gets it all.
func TestDeadlinesWrite(t *testing.T) {
	const write = 400 * time.Millisecond
	const size = 16 << 20
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	h := Deadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if r.URL.Path == "/file" {
			f, ferr := os.Open(file)
			if ferr != nil {
				t.Error(ferr)
				return
			}
			defer f.Close()
			_, err = io.CopyN(w, f, size)
		} else {
			buf := make([]byte, 32<<10)
			for i := 0; i < size/len(buf) && err == nil; i++ {
				_, err = w.Write(buf)
			}
		}
		errs <- err
	}), 0, write)
	srv := httptest.NewUnstartedServer(h)
	srv.Start()
	defer srv.Close()

	for _, path := range []string{"/write", "/file"} {
		// Steady reader: 64 KiB every 4 ms, 16 MiB in over 1 s (> write).
		c := rawGet(t, srv, path)
		buf := make([]byte, 64<<10)
		var n int
		start := time.Now()
		for n < size {
			m, err := io.ReadFull(c, buf)
			n += m
			if err != nil {
				break
			}
			time.Sleep(4 * time.Millisecond)
		}
		if err := <-errs; err != nil || n < size {
			t.Errorf("%s, steady reader: handler %v, read %d of %d bytes in %v", path, err, n, size, time.Since(start))
		}
		c.Close()

		// A reader that stops: the handler's write fails within ~write.
		c = rawGet(t, srv, path)
		start = time.Now()
		select {
		case err := <-errs:
			if err == nil {
				t.Errorf("%s, stopped reader: the whole response was written (buffers too large for the test?)", path)
			} else if d := time.Since(start); d > 3*write+time.Second {
				t.Errorf("%s, stopped reader: cut after %v", path, d)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s, stopped reader: not cut within 10 s", path)
		}
		c.Close()
	}
}

// rawGet sends GET path on a new connection with a bounded receive buffer
// and returns the connection, unread.
func rawGet(t *testing.T, srv *httptest.Server, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(256 << 10)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return c
}

// TestDeadlinesHijack: a hijacked connection (a WebSocket) is not bound
// by the response's write deadline: it outlives it and still works.
func TestDeadlinesHijack(t *testing.T) {
	const write = 200 * time.Millisecond
	h := Deadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack through the wrapper: %v", err)
			return
		}
		defer c.Close()
		time.Sleep(3 * write)
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\nlate")
		if err := brw.Flush(); err != nil {
			t.Errorf("write after the response's deadline: %v", err)
		}
	}), time.Second, write)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := rawGet(t, srv, "/")
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "late") {
		t.Errorf("hijacked connection got %q", b)
	}
}
