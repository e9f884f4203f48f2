// Package thumb turns one stored key frame into a JPEG by running ffmpeg,
// with a bounded number of decodes at a time and an in-memory cache, for
// timeline previews. Safe for concurrent use.
package thumb

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/media"
)

// ErrNoDecoder is returned (wrapped) when ffmpeg cannot be found: the
// server keeps serving everything else and says why thumbnails are off.
var ErrNoDecoder = errors.New("thumbnails need ffmpeg, which was not found")

// Maker makes JPEGs of key frames.
type Maker struct {
	// FFmpeg is the ffmpeg binary; empty means "ffmpeg" on PATH.
	FFmpeg string
	// Timeout bounds one decode (default 10 s).
	Timeout time.Duration

	once     sync.Once
	path     string
	lookErr  error
	sem      chan struct{}
	mu       sync.Mutex
	cache    map[string]*list.Element
	lru      *list.List
	cacheLen int // bytes of JPEG held
	maxCache int
}

type entry struct {
	key  string
	jpeg []byte
}

// New returns a Maker running at most parallel ffmpeg processes at once
// (at least 1) and caching up to cacheBytes of JPEGs.
func New(ffmpeg string, parallel int, cacheBytes int) *Maker {
	return &Maker{FFmpeg: ffmpeg, sem: make(chan struct{}, max(parallel, 1)),
		cache: map[string]*list.Element{}, lru: list.New(), maxCache: cacheBytes}
}

// Available reports whether thumbnails can be made: nil, or ErrNoDecoder
// (wrapped, with the lookup's error) when ffmpeg is not found. It looks
// ffmpeg up once (PATH I/O) and remembers the answer; safe for
// concurrent use. The server calls it at start to warn once.
func (m *Maker) Available() error {
	m.once.Do(func() {
		name := m.FFmpeg
		if name == "" {
			name = "ffmpeg"
		}
		if m.path, m.lookErr = exec.LookPath(name); m.lookErr != nil {
			m.lookErr = fmt.Errorf("%w (%v)", ErrNoDecoder, m.lookErr)
		}
	})
	return m.lookErr
}

// MaxWidth bounds the width a caller may ask for.
const MaxWidth = 3840

// JPEG returns a JPEG of the single picture in annexB (parameter sets and
// one key frame with start codes) scaled to width pixels wide (0 keeps the
// size), from the cache when id (the frame's identity) was made before at
// that width. It blocks while other decodes hold every slot, until ctx
// ends. It fails with ErrNoDecoder without ffmpeg, and with ffmpeg's first
// error line when the picture does not decode.
func (m *Maker) JPEG(ctx context.Context, codec media.Codec, annexB []byte, id string, width int) ([]byte, error) {
	if width < 0 || width > MaxWidth {
		return nil, fmt.Errorf("thumbnail width %d outside 0..%d", width, MaxWidth)
	}
	key := id + "/" + strconv.Itoa(width)
	if b := m.cached(key); b != nil {
		return b, nil
	}
	if err := m.Available(); err != nil {
		return nil, err
	}
	var format string
	switch codec {
	case media.CodecH264:
		format = "h264"
	case media.CodecH265:
		format = "hevc"
	default:
		return nil, fmt.Errorf("thumbnail: codec %q cannot be decoded", codec)
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.sem }()
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-f", format, "-i", "pipe:0", "-frames:v", "1"}
	if width > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:-2", width))
	}
	args = append(args, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "pipe:1")
	cmd := exec.CommandContext(ctx, m.path, args...)
	cmd.Stdin = bytes.NewReader(annexB)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("thumbnail: ffmpeg: %w", ctx.Err())
		}
		return nil, fmt.Errorf("thumbnail: ffmpeg: %v: %s", err, firstLine(stderr.Bytes()))
	}
	if out.Len() < 4 || out.Bytes()[0] != 0xff || out.Bytes()[1] != 0xd8 {
		return nil, fmt.Errorf("thumbnail: ffmpeg produced no JPEG: %s", firstLine(stderr.Bytes()))
	}
	b := out.Bytes()
	m.store(key, b)
	return b, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	if len(b) == 0 {
		return "no message"
	}
	return string(b)
}

func (m *Maker) cached(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.cache[key]; ok {
		m.lru.MoveToFront(el)
		return el.Value.(*entry).jpeg
	}
	return nil
}

func (m *Maker) store(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(b) > m.maxCache {
		return
	}
	if _, ok := m.cache[key]; ok {
		return
	}
	m.cache[key] = m.lru.PushFront(&entry{key: key, jpeg: b})
	m.cacheLen += len(b)
	for m.cacheLen > m.maxCache {
		el := m.lru.Back()
		e := el.Value.(*entry)
		m.lru.Remove(el)
		delete(m.cache, e.key)
		m.cacheLen -= len(e.jpeg)
	}
}
