// Package netlimit bounds what network clients can hold of the server:
// open connections (in total, per remote address, and within the
// file-descriptor budget the recorders leave), the time a request's body
// and a response's progress may take, and the process's file limit.
// Recording must never run out of descriptors because of HTTP load.
package netlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"
)

// Options bound a Listener. The zero value bounds nothing.
type Options struct {
	// Max bounds the open connections in total; 0 or less: no bound.
	Max int
	// PerAddr bounds the open connections from one remote IP address;
	// 0 or less: no bound.
	PerAddr int
	// Exempt, when set, exempts an address from PerAddr (a trusted
	// reverse proxy, which carries every user's connections; Max still
	// applies). It must be safe for concurrent use.
	Exempt func(netip.Addr) bool
	// Budget, when set, is called at every accept and further bounds the
	// total: the connections the file-descriptor reserve leaves room for
	// now (it may change as cameras are added). Values below 0 count as 0.
	Budget func() int
	// OnRefuse, when set, is called for each refused connection (from
	// Accept's goroutine; it must not block) with the remote address and
	// the bound that refused it.
	OnRefuse func(addr netip.Addr, reason string)
}

// Refusal reasons given to Options.OnRefuse.
const (
	ReasonMax     = "max_conns"
	ReasonPerAddr = "max_conns_per_addr"
	ReasonBudget  = "descriptor reserve"
)

// Listener is a net.Listener that closes, at once, every connection over
// its bounds: the refused client sees the connection closed before any
// byte, and the kernel's backlog keeps draining. Accepted connections are
// counted until closed. Safe for concurrent use.
type Listener struct {
	net.Listener
	o Options

	mu     sync.Mutex
	open   int
	byAddr map[netip.Addr]int
}

// New returns ln bounded by o.
func New(ln net.Listener, o Options) *Listener {
	return &Listener{Listener: ln, o: o, byAddr: map[netip.Addr]int{}}
}

// Open returns the number of accepted connections not yet closed.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Accept waits for and returns the next connection within the bounds,
// closing those over them; its errors are the wrapped listener's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if reason := l.admit(addr); reason != "" {
			c.Close()
			if l.o.OnRefuse != nil {
				l.o.OnRefuse(addr, reason)
			}
			continue
		}
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// admit counts a new connection from addr, or returns why it is refused.
func (l *Listener) admit(addr netip.Addr) string {
	budget := -1
	if l.o.Budget != nil {
		budget = max(l.o.Budget(), 0)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.o.Max > 0 && l.open >= l.o.Max:
		return ReasonMax
	case budget >= 0 && l.open >= budget:
		return ReasonBudget
	case l.o.PerAddr > 0 && l.byAddr[addr] >= l.o.PerAddr && (l.o.Exempt == nil || !l.o.Exempt(addr)):
		return ReasonPerAddr
	}
	l.open++
	l.byAddr[addr]++
	return ""
}

func (l *Listener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// remoteAddr is c's remote IP (IPv4-mapped addresses unmapped), or the
// zero Addr for a non-IP connection (all of which share one count).
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// conn is an accepted connection, uncounted when first closed.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// ReadFrom keeps the wrapped connection's fast path (sendfile for a
// TCP connection) for net/http's responses.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection where the wrapped one can
// (net/http uses it to close a connection gracefully).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the wrapped connection.
func (c *conn) NetConn() net.Conn { return c.Conn }
