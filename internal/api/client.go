package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientAddrKey struct{}

// clientAddr is the client's IP address (no port): the one function
// every use of the client's address goes through (audit entries,
// throttling, sessions). Behind a trusted proxy it is taken from
// X-Forwarded-For (see ClientAddr); Handler resolves it once per request.
func clientAddr(r *http.Request) string {
	if a, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return a
	}
	return ClientAddr(r.RemoteAddr, nil, nil)
}

// withClientAddr resolves the request's client address once (with the
// server's trusted proxies) for clientAddr.
func (s *Server) withClientAddr(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.TrustedProxies)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, a)))
	})
}

// ClientAddr returns the client's address of a request from remoteAddr
// (host:port, as in http.Request.RemoteAddr) with X-Forwarded-For header
// values xff: when the direct peer is in trusted, the right-most
// X-Forwarded-For address that is not in trusted (each proxy appends the
// address it received the request from, so everything left of the first
// untrusted hop may be forged); when every hop is trusted, the left-most.
// An unparseable hop ends the walk at the last good one. Otherwise,
// and always when trusted is empty, the peer's address. Addresses are
// normalised (IPv4-mapped IPv6 as IPv4, no zone). No I/O.
func ClientAddr(remoteAddr string, xff []string, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if !inPrefixes(peer, trusted) || len(xff) == 0 {
		return peer.String()
	}
	var hops []string
	for _, v := range xff {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !inPrefixes(a, trusted) {
			break
		}
	}
	return client.String()
}

// parseHop parses one X-Forwarded-For element: an address, possibly with
// a port ("192.0.2.1:5000", "[2001:db8::1]:80").
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
