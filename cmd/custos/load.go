package main

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/cameras"
	"github.com/custos-nvr/custos/internal/netlimit"
)

// The descriptor reserve (docs/guide.md, "Sizing"): recording must never
// fail to open a file or a socket because web clients hold descriptors.
// The server keeps fdBase for itself (index, audit log, listener, thumbnail
// pipes), fdPerStream for each camera stream (its RTSP connection, or RTP
// and RTCP sockets over UDP, the segment being written, directory syncs),
// fdPerLive for each live view (a WebRTC session's UDP sockets), and
// gives HTTP connections what is left at fdPerConn each (the socket and a
// recording file a playback request reads).
const (
	fdBase      = 64
	fdPerStream = 8
	fdPerLive   = 8
	fdPerConn   = 2
)

// connBudget is how many HTTP connections fit in limit descriptors with
// streams camera streams and live views open; limit 0 (unknown) means no
// bound (-1).
func connBudget(limit uint64, streams, live int) int {
	if limit == 0 || limit > 1<<30 {
		return -1
	}
	return max(int(limit)-fdBase-fdPerStream*streams-fdPerLive*live, 0) / fdPerConn
}

// fdBudget is the listener's connection budget (netlimit.Options.Budget):
// connBudget's count of descriptors, and a check of those really open
// (exports hold several recording files, other parts of the server open
// their own): while fewer than fdBase + fdPerStream per stream are free,
// no connection is admitted. The real count is read at most every
// fdRecount. Safe for concurrent use.
type fdBudget struct {
	limit   uint64
	streams func() int
	live    func() int
	// openFiles counts the open descriptors (netlimit.OpenFiles).
	openFiles func() (int, bool)
	now       func() time.Time

	mu   sync.Mutex
	at   time.Time
	open int
	ok   bool
}

const fdRecount = 100 * time.Millisecond

func (b *fdBudget) conns() int {
	streams := b.streams()
	n := connBudget(b.limit, streams, b.live())
	if n < 0 {
		return n
	}
	b.mu.Lock()
	if now := b.now(); now.Sub(b.at) >= fdRecount {
		b.at = now
		b.open, b.ok = b.openFiles()
	}
	open, ok := b.open, b.ok
	b.mu.Unlock()
	if ok && int(b.limit)-open < fdBase+fdPerStream*streams {
		return 0
	}
	return n
}

// streamCount counts the streams the manager records now.
func streamCount(m *cameras.Manager) int {
	n := 0
	for _, c := range m.List() {
		n += len(c.Streams)
	}
	return n
}

// refusals logs refused connections, at most once per refusalsEvery with
// the counts since the last line, so a flood cannot flood the log.
type refusals struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	last   time.Time
	counts map[string]int
}

const refusalsEvery = 10 * time.Second

// note counts one refusal; safe for concurrent use, never blocks on I/O
// longer than one log line.
func (r *refusals) note(addr netip.Addr, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[reason]++
	if now := r.now(); now.Sub(r.last) >= refusalsEvery {
		r.last = now
		args := []any{"last_addr", addr.String()}
		for _, k := range []string{netlimit.ReasonMax, netlimit.ReasonPerAddr, netlimit.ReasonBudget} {
			args = append(args, k, r.counts[k])
		}
		r.log.Warn("http: refused connections over the limits (counts since the last such line)", args...)
		clear(r.counts)
	}
}
