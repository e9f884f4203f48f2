package netlimit

import (
	"io"
	"net/http"
	"time"
)

// sendChunk is the most a response's ReadFrom sends under one write
// deadline: a client must take it within write timeout's last extension.
const sendChunk = 1 << 20

// Deadlines bounds the time clients may hold a request without progress,
// without cutting long responses (exports, playback) or live sockets:
//
//   - body: a request body must arrive within body of the request's start
//     (the connection's read deadline, lifted once the body is read, so a
//     long handler is not cut afterwards);
//   - write: each write of the response (Write, WriteHeader, Flush, and
//     every MiB of ReadFrom) must complete within write of its start;
//     the deadline is moved forward as the response makes progress, at
//     most every write/4, so a response that makes no progress for
//     between 3/4 and all of write is cut.
//
// A hijacked connection (a WebSocket) has its deadlines cleared by
// net/http and keeps its own. Zero or negative durations bound nothing.
// The ResponseWriter given to h unwraps (http.ResponseController) to the
// server's. Handlers that compute for longer than write before their
// first byte may extend the deadline themselves.
func Deadlines(h http.Handler, body, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if body > 0 && r.Body != nil && r.Body != http.NoBody {
			if err := rc.SetReadDeadline(time.Now().Add(body)); err == nil {
				r.Body = &bodyReader{ReadCloser: r.Body, rc: rc}
			}
		}
		if write > 0 {
			dw := &deadlineWriter{ResponseWriter: w, rc: rc, d: write}
			if dw.extend() == nil {
				w = dw
			}
		}
		h.ServeHTTP(w, r)
	})
}

// bodyReader lifts the connection's read deadline once the body is read.
type bodyReader struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter moves the write deadline forward as the response
// progresses. Not safe for concurrent use (nor is a ResponseWriter).
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	next time.Time // when to move the deadline again
}

// extend sets the write deadline to now+d, when the last one is older
// than d/4.
func (w *deadlineWriter) extend() error {
	now := time.Now()
	if now.Before(w.next) {
		return nil
	}
	w.next = now.Add(w.d / 4)
	return w.rc.SetWriteDeadline(now.Add(w.d))
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher.
func (w *deadlineWriter) Flush() {
	w.extend()
	w.rc.Flush()
}

// Unwrap is for http.ResponseController (and WebSocket libraries).
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom sends r through the server's fast path (sendfile), a MiB at
// a time so that each MiB gets a fresh deadline. An *io.LimitedReader of
// a file (io.CopyN's) is cut into LimitedReaders of the same file, which
// keeps sendfile.
func (w *deadlineWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	src, remain := r, int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		src, remain = lr.R, lr.N
		defer func() { lr.N = remain }()
	}
	var total int64
	for remain != 0 {
		w.next = time.Time{} // a fresh deadline for every chunk
		if err := w.extend(); err != nil {
			return total, err
		}
		chunk := int64(sendChunk)
		if remain > 0 {
			chunk = min(chunk, remain)
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: src, N: chunk})
		total += n
		if remain > 0 {
			remain -= n
		}
		if err != nil {
			return total, err
		}
		if n < chunk {
			return total, nil // the source ended
		}
	}
	return total, nil
}
