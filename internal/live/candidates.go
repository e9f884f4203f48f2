package live

import (
	"net"
	"net/http"
	"net/netip"
)

// Which addresses a WebRTC session may send to. ICE sends STUN binding
// requests to every candidate the peer names (in the offer, trickled, or
// learnt from a binding request's source: peer-reflexive), so a viewer
// who could name any host:port would make the server send packets there
// (a reflector through the NVR's network position). Sessions therefore
// send only to the viewer's own address, the one its HTTP request came
// from, and to networks the owner lists (a LAN whose browsers reach the
// NVR through a proxy or from another address of theirs).
//
// A viewer on loopback is on this host, whose addresses are all its own:
// browsers send ICE from their LAN address, not 127.0.0.1, to the NVR's
// LAN candidate. mDNS (.local) candidates are never resolved (the ICE
// agent's mDNS is off) and so never sent to; the browser then reaches the
// NVR's host candidates itself and is learnt from its requests' source.

// ViewerAddrs returns the remote-address policy for a viewer at viewer
// (its HTTP request's address): viewer itself, any address in allowed,
// and, when viewer is a loopback address, this host's own addresses.
// It reads the host's interface addresses once, now. The result is safe
// for concurrent use.
func ViewerAddrs(viewer netip.Addr, allowed []netip.Prefix) func(netip.Addr) bool {
	viewer = viewer.Unmap()
	var own []netip.Addr
	if viewer.IsLoopback() {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					own = append(own, p.Addr().Unmap())
				}
			}
		}
	}
	return func(a netip.Addr) bool {
		a = a.Unmap()
		if a == viewer {
			return true
		}
		for _, p := range allowed {
			if p.Contains(a) {
				return true
			}
		}
		if viewer.IsLoopback() {
			if a.IsLoopback() {
				return true
			}
			for _, o := range own {
				if a == o {
					return true
				}
			}
		}
		return false
	}
}

// requestAddr is the address r came from (r.RemoteAddr), or the zero
// Addr when it does not parse.
func requestAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}
