package live

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestViewerAddrs: the viewer's own address, listed networks, and for a
// loopback viewer the host's own addresses; nothing else.
func TestViewerAddrs(t *testing.T) {
	lan := netip.MustParsePrefix("192.168.7.0/24")
	remote := ViewerAddrs(netip.MustParseAddr("10.1.2.3"), []netip.Prefix{lan})
	for a, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.168.7.40": true,
		"10.1.2.4": false, "127.0.0.1": false, "8.8.8.8": false, "192.168.8.1": false} {
		if got := remote(netip.MustParseAddr(a)); got != want {
			t.Errorf("viewer 10.1.2.3: %s allowed=%v, want %v", a, got, want)
		}
	}
	local := ViewerAddrs(netip.MustParseAddr("127.0.0.1"), nil)
	for a, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": true, "8.8.8.8": false} {
		if got := local(netip.MustParseAddr(a)); got != want {
			t.Errorf("viewer 127.0.0.1: %s allowed=%v, want %v", a, got, want)
		}
	}
}

// TestWHEPCandidateElsewhere: an offer naming a candidate on another
// address than the viewer's (a UDP socket on 127.0.0.2 standing in for a
// third party) gets no STUN sent there while the session connects over
// the viewer's own candidate; with that address allowed, the same rig
// does see the checks (so the test can tell).
func TestWHEPCandidateElsewhere(t *testing.T) {
	fx := loadFixture(t, "main.h264")
	for _, tc := range []struct {
		name  string
		allow bool
	}{{"viewer's own address only", false}, {"address allowed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			victim, err := net.ListenPacket("udp4", "127.0.0.2:0")
			if err != nil {
				t.Skipf("no 127.0.0.2 on this host: %v", err)
			}
			defer victim.Close()
			vport := victim.LocalAddr().(*net.UDPAddr).Port
			h := NewHub(HubOptions{})
			defer h.Close()
			o := WHEPOptions{}
			if tc.allow {
				// The viewer (127.0.0.1) plus the other address, but not
				// the host's own LAN addresses: the check is about 127.0.0.2.
				o.AllowRemote = func(a netip.Addr) bool { return a.IsLoopback() }
			} else {
				// The default (the viewer's own address), narrowed to
				// 127.0.0.1: a loopback viewer may also reach the host's
				// addresses, 127.0.0.2 among them.
				o.AllowRemote = ViewerAddrs(netip.MustParseAddr("10.255.255.1"), []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
			}
			url := whepServer(t, h, o)
			fx.publish(h, 0, 10, 0)

			pc := testPeer(t, webrtc.RTPCodecTypeVideo)
			connected := make(chan struct{})
			pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
				if s == webrtc.PeerConnectionStateConnected {
					close(connected)
				}
			})
			offer := makeOffer(t, pc)
			// A host candidate of the viewer's, then one on the victim.
			i := strings.Index(offer, "a=candidate:")
			if i < 0 {
				t.Fatalf("offer without candidates:\n%s", offer)
			}
			offer = offer[:i] + fmt.Sprintf("a=candidate:4242 1 udp 2130706431 127.0.0.2 %d typ host\r\n", vport) + offer[i:]
			resp, answer := postOffer(t, url+"/whep", "application/sdp", offer)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %s: %s", resp.Status, answer)
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-connected:
			case <-time.After(20 * time.Second):
				t.Fatal("the viewer did not connect within 20 s")
			}
			// ICE checks every candidate pair within a few hundred ms of
			// starting; 2 s more leaves retransmissions time too.
			victim.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1500)
			n, from, err := victim.ReadFrom(buf)
			got := err == nil
			if got != tc.allow {
				t.Errorf("packets to the offered 127.0.0.2:%d: received=%v (%d bytes from %v), want %v", vport, got, n, from, tc.allow)
			}
		})
	}
}
