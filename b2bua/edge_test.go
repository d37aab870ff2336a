package b2bua_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

var tenSlash8 = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

// One spoofed INVITE from outside the peers draws exactly one response,
// never a retransmission: a stateful 403 over UDP would be sent again
// after 0.5, 1.5 and 3.5 s (RFC 3261 section 17.2.1, Timer G) until an
// ACK that a spoofed source never sends.
func TestSpoofedInviteDrawsOneResponse(t *testing.T) {
	l := newLab(t, labOptions{pbxPeers: tenSlash8})
	u := newUDPPeer(t, l.pbxUDP.String())
	inv := rawInvite(l.pbxUDP.String(), u.local(), "spoofed-1")
	if _, err := u.c.WriteToUDP([]byte(inv), u.to); err != nil {
		t.Fatal(err)
	}
	got := u.drain(4 * time.Second)
	if len(got) != 1 || !strings.HasPrefix(got[0], "SIP/2.0 403 ") {
		t.Fatalf("one spoofed INVITE drew %d responses: %q", len(got), got)
	}
	if len(got[0]) > 2*len(inv) {
		t.Errorf("the 403 (%d bytes) is more than twice the INVITE (%d)", len(got[0]), len(inv))
	}
	if st := l.srv.Stats(); st.CallsActive != 0 {
		t.Errorf("a stranger's INVITE left %d calls", st.CallsActive)
	}
}

// A zone that drops outsiders answers them nothing, over UDP and TCP, and
// a scanner gets nothing even from a zone that refuses outsiders; both are
// counted. A peer is served all the while.
func TestOutsidersDropped(t *testing.T) {
	l := newLab(t, labOptions{pbxPeers: tenSlash8, pbxOutsiders: topology.RefusalDrop})
	u := newUDPPeer(t, l.pbxUDP.String())
	for i := range 3 {
		u.c.WriteToUDP([]byte(rawInvite(l.pbxUDP.String(), u.local(), fmt.Sprintf("dark-%d", i))), u.to)
	}
	if got := u.drain(time.Second); len(got) != 0 {
		t.Errorf("a zone that drops outsiders answered %q", got)
	}
	// Over TCP the connection is closed at accept: nothing is read.
	if c, err := net.Dial("tcp", l.srv.Addrs("pbx")[policy.TransportTCP].String()); err == nil {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, rawInvite(l.pbxUDP.String(), c.LocalAddr().String(), "dark-tcp"))
		buf := make([]byte, 512)
		if n, _ := c.Read(buf); n != 0 {
			t.Errorf("a dropped TCP outsider read %q", buf[:n])
		}
		c.Close()
	}
	tally := l.outsiderTally(t, "pbx")
	if tally.Dropped != 3 || tally.Connections != 1 || tally.Refused != 0 {
		t.Errorf("tally %+v", tally)
	}

	r := newLab(t, labOptions{pbxPeers: tenSlash8})
	s := newUDPPeer(t, r.pbxUDP.String())
	scan := strings.Replace(rawInvite(r.pbxUDP.String(), s.local(), "scan-1"), "Max-Forwards: 70",
		"Max-Forwards: 70\r\nUser-Agent: friendly-scanner", 1)
	s.c.WriteToUDP([]byte(scan), s.to)
	if got := s.drain(time.Second); len(got) != 0 {
		t.Errorf("a scanner was answered %q", got)
	}
	if tally := r.outsiderTally(t, "pbx"); tally.Scanners != 1 || tally.Total() != 1 {
		t.Errorf("scanner tally %+v", tally)
	}
}

// A stranger's request over TLS (on a connection its budget admitted) gets
// one 403, without Server or Warning, and is tallied as over UDP.
func TestOutsiderOverTLSRefused(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: func(z *policy.Zone) { z.Peers = tenSlash8 }})
	c, err := tls.Dial("tcp", l.carrierTLS.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := l.carrierTLS.String()
	opt := strings.Join([]string{
		fmt.Sprintf("OPTIONS sip:%s;transport=tls SIP/2.0", to),
		fmt.Sprintf("Via: SIP/2.0/TLS %s;branch=z9hG4bKtls1", c.LocalAddr()),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:probe@%s>;tag=t1", c.LocalAddr()),
		fmt.Sprintf("To: <sip:%s>", to),
		"Call-ID: tls-stranger", "CSeq: 1 OPTIONS", "Content-Length: 0", "", ""}, "\r\n")
	if _, err := fmt.Fprint(c, opt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	res := string(buf[:n])
	if err != nil || !strings.HasPrefix(res, "SIP/2.0 403 ") || strings.Contains(res, "\r\nServer:") ||
		strings.Contains(res, "\r\nWarning:") {
		t.Fatalf("a stranger's OPTIONS over TLS: %q (%v)", res, err)
	}
	if tally := l.outsiderTally(t, "carrier"); tally.Refused != 1 || tally.Methods["OPTIONS"] != 1 {
		t.Errorf("tally %+v", tally)
	}
}
