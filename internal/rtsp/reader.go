package rtsp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxGarbage is how many consecutive bytes that are neither an interleaved
// frame nor a plausible RTSP message Reader skips before giving up.
const MaxGarbage = 64 << 10

// ErrGarbage is returned (wrapped) when more than MaxGarbage bytes in a row
// could not be recognised.
var ErrGarbage = errors.New("rtsp: too many unrecognised bytes on the connection")

// Item is one unit read from an RTSP connection: an interleaved frame
// (Channel >= 0, Payload set) or a message (Channel == -1 and exactly one of
// Request or Response set).
type Item struct {
	// Channel is the interleaved channel of a frame, or -1 for a message.
	Channel int
	// Payload is the frame's content. It aliases the Reader's buffer and is
	// valid only until the next call to Read.
	Payload  []byte
	Request  *Request
	Response *Response
}

// Reader splits the byte stream of an RTSP connection (RFC 2326 §10.12) into
// interleaved frames, requests and responses. It owns a bufio.Reader over
// the given io.Reader and does no other I/O. Frames are returned without
// allocation once the internal buffers have grown; messages are allocated.
//
// Bytes that start neither a frame ('$') nor a plausible request or status
// line are skipped and counted (Skipped); more than MaxGarbage in a row is an
// error. A Reader is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	p       parser
	scratch []byte // frames larger than br's buffer
	skipped uint64
}

// NewReader returns a Reader reading from r through a buffer of size bytes
// (at least 4096; 64 KiB + 4 or more lets every frame be returned without a
// copy).
func NewReader(r io.Reader, size int) *Reader {
	if size < 4096 {
		size = 4096
	}
	br := bufio.NewReaderSize(r, size)
	return &Reader{br: br, p: parser{br: br}}
}

// Skipped returns the total number of unrecognised bytes skipped so far.
func (r *Reader) Skipped() uint64 { return r.skipped }

// Read blocks until the next item is complete and returns it. At a clean end
// of stream it returns io.EOF; a stream cut inside an item gives
// io.ErrUnexpectedEOF. An error from the underlying reader while waiting for
// the first bytes of an item (e.g. a read deadline) leaves the Reader usable;
// after any other error it should be discarded.
func (r *Reader) Read() (Item, error) {
	run := 0
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return Item{}, err // io.EOF even after trailing garbage
		}
		if b[0] == '$' {
			return r.readFrame()
		}
		if b[0] >= 'A' && b[0] <= 'Z' {
			kind, err := r.classify()
			if err != nil {
				return Item{}, err
			}
			switch kind {
			case kindRequest:
				req, err := r.p.request()
				if err != nil {
					return Item{}, err
				}
				return Item{Channel: -1, Request: req}, nil
			case kindResponse:
				resp, err := r.p.response()
				if err != nil {
					return Item{}, err
				}
				return Item{Channel: -1, Response: resp}, nil
			}
		}
		n := r.skip()
		run += n
		r.skipped += uint64(n)
		if run > MaxGarbage {
			return Item{}, fmt.Errorf("%w (%d bytes)", ErrGarbage, run)
		}
	}
}

// readFrame reads "$", channel, 16-bit length and payload.
func (r *Reader) readFrame() (Item, error) {
	hdr, err := r.br.Peek(4)
	if err != nil {
		return Item{}, eofInside(err, len(hdr))
	}
	ch := int(hdr[1])
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	if 4+n <= r.br.Size() {
		buf, err := r.br.Peek(4 + n)
		if err != nil {
			return Item{}, eofInside(err, len(buf))
		}
		r.br.Discard(4 + n)
		return Item{Channel: ch, Payload: buf[4 : 4+n]}, nil
	}
	r.br.Discard(4)
	if cap(r.scratch) < n {
		r.scratch = make([]byte, n)
	}
	if _, err := io.ReadFull(r.br, r.scratch[:n]); err != nil {
		return Item{}, eofInside(err, 1)
	}
	return Item{Channel: ch, Payload: r.scratch[:n]}, nil
}

func eofInside(err error, got int) error {
	if err == io.EOF && got > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// skip discards the byte at the front and any following bytes (among those
// already buffered) that cannot start an item. It returns the count.
func (r *Reader) skip() int {
	buf, _ := r.br.Peek(r.br.Buffered())
	n := 1
	for n < len(buf) && n < MaxGarbage+1 {
		c := buf[n]
		if c == '$' || c >= 'A' && c <= 'Z' {
			break
		}
		n++
	}
	r.br.Discard(n)
	return n
}

const (
	kindNeedMore = iota
	kindGarbage
	kindRequest
	kindResponse
)

// classify looks (without consuming) at the bytes at the front of the
// buffer and decides whether they start a request, a response or garbage,
// reading more when undecided.
func (r *Reader) classify() (int, error) {
	for {
		buf, _ := r.br.Peek(r.br.Buffered())
		kind := classifyStart(buf)
		if kind != kindNeedMore {
			return kind, nil
		}
		if len(buf) >= r.br.Size() {
			return kindGarbage, nil // a start line longer than the buffer
		}
		more, err := r.br.Peek(len(buf) + 1)
		if err != nil {
			if len(more) > len(buf) {
				continue
			}
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// classifyStart decides from the first bytes of b whether they begin a
// status line ("RTSP/1.0 200"), a request line ("METHOD url RTSP/") or
// neither. It returns kindNeedMore when b ends before a decision.
func classifyStart(b []byte) int {
	const proto = "RTSP/"
	i := 0
	for i < len(b) && i < len(proto) && b[i] == proto[i] {
		i++
	}
	if i == len(b) && i < len(proto) {
		return kindNeedMore
	}
	if i == len(proto) {
		return classifyStatus(b[i:])
	}
	// Request: METHOD SP+ URL SP+ RTSP/
	i = 0
	for i < len(b) && i <= 32 && isMethodByte(b[i]) {
		i++
	}
	if i == len(b) {
		return kindNeedMore
	}
	if i == 0 || i > 32 || !isBlank(b[i]) {
		return kindGarbage
	}
	i = skipBlanks(b, i)
	start := i
	for i < len(b) && b[i] > ' ' && b[i] != 0x7f {
		i++
	}
	if i == len(b) {
		return kindNeedMore
	}
	if i == start || !isBlank(b[i]) {
		return kindGarbage
	}
	i = skipBlanks(b, i)
	for j := 0; j < len(proto); j, i = j+1, i+1 {
		if i == len(b) {
			return kindNeedMore
		}
		if b[i] != proto[j] {
			return kindGarbage
		}
	}
	return kindRequest
}

// classifyStatus checks what follows "RTSP/": version, blanks, three digits,
// then a blank or line end.
func classifyStatus(b []byte) int {
	i := 0
	for i < len(b) && i < 8 && (b[i] >= '0' && b[i] <= '9' || b[i] == '.') {
		i++
	}
	if i == len(b) {
		return kindNeedMore
	}
	if i == 0 || !isBlank(b[i]) {
		return kindGarbage
	}
	i = skipBlanks(b, i)
	for j := 0; j < 3; j, i = j+1, i+1 {
		if i == len(b) {
			return kindNeedMore
		}
		if b[i] < '0' || b[i] > '9' {
			return kindGarbage
		}
	}
	if i == len(b) {
		return kindNeedMore
	}
	switch b[i] {
	case ' ', '\t', '\r', '\n':
		return kindResponse
	}
	return kindGarbage
}

func isMethodByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipBlanks(b []byte, i int) int {
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	return i
}

// WriteInterleaved appends an interleaved frame ('$', channel, 16-bit
// length, payload) to dst and returns the extended slice. It panics if
// payload is longer than 65535 bytes, which no RTP or RTCP packet on an RTSP
// connection may be.
func WriteInterleaved(dst []byte, channel uint8, payload []byte) []byte {
	if len(payload) > 0xffff {
		panic(fmt.Sprintf("rtsp: interleaved payload of %d bytes exceeds 65535", len(payload)))
	}
	dst = append(dst, '$', channel, byte(len(payload)>>8), byte(len(payload)))
	return append(dst, payload...)
}
