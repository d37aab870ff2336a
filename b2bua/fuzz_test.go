package b2bua_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/topology"
)

// FuzzSIPDatagram throws arbitrary datagrams at a live parapet's UDP
// listener and checks, after each, that parapet still answers OPTIONS: no
// input may crash it or wedge its transport.
func FuzzSIPDatagram(f *testing.F) {
	l := newLab(f, labOptions{})
	to := l.pbxUDP.String()
	u := newUDPPeer(f, to)
	local := u.local()
	sdp := "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	f.Add([]byte(invite(local, to, "seed1", "application/sdp", sdp)))
	f.Add([]byte(invite(local, to, "seed2", "application/sdp", strings.Replace(sdp, "RTP/AVP 0", "RTP/SAVP 0\r\na=crypto:1 NULL_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1))))
	f.Add([]byte(invite(local, to, "seed3", "application/sdp", "m=audio 99999 RTP/AVP 0\r\n")))
	f.Add([]byte(strings.Replace(invite(local, to, "seed4", "application/sdp", sdp), "CSeq: 1 INVITE", "CSeq: x", 1)))
	f.Add([]byte("BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bKb\r\nCall-ID: nope\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte(strings.Replace(invite(local, to, "seed5", "application/sdp", sdp), "Content-Length:", "Require: 100rel\r\nContent-Length:", 1)))
	f.Add([]byte(invite(local, to, "seed6", "", "")))
	f.Add([]byte(invite(local, to, "seed7", "application/sdp", strings.Replace(sdp, "RTP/AVP 0", "UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\na=fingerprint:sha-256 AB:CD", 1))))
	f.Add([]byte("PRACK sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bKp\r\nCall-ID: nope\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCSeq: 2 PRACK\r\nRAck: 99 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte{0x80, 0x00, 0x00, 0x01})
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := u.c.WriteToUDP(data, u.to); err != nil {
			t.Skip("datagram too large to send")
		}
		if !u.pingAnswered(to, "SIP/2.0 200") {
			t.Fatalf("parapet stopped answering after %q", data)
		}
	})
}

// pingAnswered sends an OPTIONS of its own to parapet at to and reports
// whether a response starting with want answers it within 3 s: parapet
// reads a socket in order, so it also tells that what came before was
// read.
func (u *udpPeer) pingAnswered(to, want string) bool {
	branch := fmt.Sprintf("z9hG4bKping%d", time.Now().UnixNano())
	opt := strings.Join([]string{
		fmt.Sprintf("OPTIONS sip:%s SIP/2.0", to),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=%s", u.local(), branch),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:ping@%s>;tag=%s", u.local(), branch),
		fmt.Sprintf("To: <sip:%s>", to),
		"Call-ID: " + branch,
		"CSeq: 1 OPTIONS", "Content-Length: 0", "", ""}, "\r\n")
	u.c.WriteToUDP([]byte(opt), u.to)
	u.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 8192)
	for {
		k, _, err := u.c.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if r := string(buf[:k]); strings.HasPrefix(r, want) && strings.Contains(r, branch) {
			return true
		}
	}
}

// FuzzStrangerDatagram throws arbitrary datagrams at the gate, from a
// source outside the zone's peers (budgets raised so that each is parsed
// and judged), and checks after each that the gate still answers a
// stranger's OPTIONS with its one 403.
func FuzzStrangerDatagram(f *testing.F) {
	lim := topology.DefaultLimits
	lim.OutsiderRate, lim.PrefixRate, lim.SourceRate = 1e6, 1e6, 1e6
	l := newLab(f, labOptions{pbxPeers: tenSlash8, limits: lim})
	to := l.pbxUDP.String()
	u := newUDPPeer(f, to)
	local := u.local()
	f.Add([]byte(rawInvite(to, local, "seed1")))
	f.Add([]byte(strings.Replace(rawInvite(to, local, "seed2"), "Max-Forwards: 70", "User-Agent: friendly-scanner", 1)))
	f.Add([]byte(strings.Replace(rawInvite(to, local, "seed3"), "INVITE sip:", "ACK sip:", 1)))
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nCall-ID: a\r\n\r\n"))
	f.Add([]byte{0x80, 0x00, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := u.c.WriteToUDP(data, u.to); err != nil {
			t.Skip("datagram too large to send")
		}
		if !u.pingAnswered(to, "SIP/2.0 403") {
			t.Fatalf("the gate stopped answering after %q", data)
		}
	})
}
