package b2bua

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// A leg's Negotiation (negLocked) is the last guard of the per-leg key exchange rule: whatever a
// plan says, no a=crypto key is written into an SDP for a leg whose SIP is
// not TLS.
func TestBuildSDPNeverWritesSDESKeysOverClearSIP(t *testing.T) {
	src, err := media.ParseSDP([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("127.0.0.1")
	locals := []media.Endpoint{{Addr: addr, Port: 20000, RTCPPort: 20001}}
	profile := media.OfferProfile{SRTP: true, Suites: []string{string(policy.SuiteAEADAES128GCM)}}
	c := &Call{env: &env{mediaAddr: addr}}
	for _, tr := range []policy.Transport{policy.TransportUDP, policy.TransportTCP, policy.TransportTLS} {
		l := &leg{role: compliance.RoleB, transport: tr}
		sdp, err := c.negLocked(l).Offer(src, locals, profile)
		switch {
		case tr != policy.TransportTLS && (err == nil || sdp != nil || l.neg.Local() != nil):
			t.Errorf("%s: SDP with SDES keys built (err %v)", tr, err)
		case tr == policy.TransportTLS && (err != nil || !bytes.Contains(sdp, []byte("a=crypto:1 AEAD_AES_128_GCM inline:"))):
			t.Errorf("%s: %v\n%s", tr, err, sdp)
		}
	}
}
