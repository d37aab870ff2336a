package b2bua_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// twoStreamSDP is plainSDP with a second audio stream on port+2.
func twoStreamSDP(port, version int) string {
	return plainSDP(port, version) + fmt.Sprintf("m=audio %d RTP/AVP 0\r\n", port+2)
}

// A re-offer with fewer m= lines than the session is refused with 488
// (RFC 3264 section 8: m= lines are never removed) before it reaches the
// other leg, and the call goes on.
func TestReofferDroppingStreamsRefused(t *testing.T) {
	l := newRawLab(t)
	c := &rawCall{l: l, callID: fmt.Sprintf("drop-%d@raw", time.Now().UnixNano()), aSeq: 1, bTag: "btagdrop", bSeq: 100}
	c.inv = invite(l.a.addr(), l.aUDP.String(), c.callID, "application/sdp", twoStreamSDP(4000, 1))
	l.a.send(l.aUDP, c.inv)
	c.bInv = l.b.must("INVITE at B", isReq("INVITE"))
	c.bFrom = c.bInv.from
	l.b.send(c.bFrom, reply(c.bInv.text, 200, "OK", c.bTag, l.b.addr(), twoStreamSDP(5000, 1)))
	l.b.must("ACK for B's 200", isReq("ACK"))
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") || strings.Count(res, "m=audio ") != 2 {
		t.Fatalf("A's INVITE: %s", res)
	}
	c.aAck(1)
	l.a.send(l.aUDP, c.aRequest("INVITE", 2, plainSDP(4000, 2)))
	l.a.must("488 to the re-INVITE", func(m string) bool { return isRes(488, "INVITE")(m) && cseqOf(m) == 2 })
	if n := l.b.count(isReq("INVITE")); n != 1 {
		t.Errorf("B got %d INVITEs, want only the first", n)
	}
	if n := l.srv.Stats().CallsActive; n != 1 {
		t.Fatalf("%d calls active", n)
	}
	c.hangUpFromA(t, 3)
}
