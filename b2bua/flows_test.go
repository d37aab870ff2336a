package b2bua_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// Call flows whose timing matters (a CANCEL crossing a 200, an ACK
// overtaken by a re-INVITE, requests that do not fit the dialog) are
// played by raw SIP peers on both sides: a caller A and a callee B, both
// over UDP, whose every message the test writes by hand.

// rawPeer is a SIP peer on a UDP socket that keeps every message it
// receives.
type rawPeer struct {
	t    testing.TB
	c    *net.UDPConn
	mu   sync.Mutex
	msgs []*rawMsg
	seq  int
}

type rawMsg struct {
	text  string
	from  *net.UDPAddr
	taken bool
}

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, c: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, &rawMsg{text: string(buf[:n]), from: from})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func (p *rawPeer) addr() string { return p.c.LocalAddr().String() }

func (p *rawPeer) port() int { return p.c.LocalAddr().(*net.UDPAddr).Port }

func (p *rawPeer) branch() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return fmt.Sprintf("z9hG4bKraw%d-%d", p.port(), p.seq)
}

func (p *rawPeer) send(to *net.UDPAddr, msg string) {
	p.t.Helper()
	if _, err := p.c.WriteToUDP([]byte(msg), to); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns the first message not yet taken that match accepts, and
// takes it; nil after d.
func (p *rawPeer) wait(d time.Duration, match func(string) bool) *rawMsg {
	var got *rawMsg
	poll(d, func() bool { got = p.take(match); return got != nil })
	return got
}

// take returns the first message not yet taken that match accepts, and
// takes it; nil if there is none.
func (p *rawPeer) take(match func(string) bool) *rawMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		if !m.taken && match(m.text) {
			m.taken = true
			return m
		}
	}
	return nil
}

// must is wait that fails the test after 5 s.
func (p *rawPeer) must(what string, match func(string) bool) *rawMsg {
	p.t.Helper()
	m := p.wait(5*time.Second, match)
	if m == nil {
		p.t.Fatalf("%s never came; received:\n%s", what, p.dump())
	}
	return m
}

// count counts the messages received that match, taken or not.
func (p *rawPeer) count(match func(string) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.msgs {
		if match(m.text) {
			n++
		}
	}
	return n
}

func (p *rawPeer) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, m := range p.msgs {
		fmt.Fprintf(&b, "  %s [%s]\n", firstLine(m.text), hv(m.text, "CSeq"))
	}
	return b.String()
}

// hv is the value of the first header name of a SIP message.
func hv(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func tagOf(h string) string {
	_, t, ok := strings.Cut(h, ";tag=")
	if !ok {
		return ""
	}
	t, _, _ = strings.Cut(t, ";")
	return t
}

func uriOf(h string) string {
	if i, j := strings.Index(h, "<"), strings.Index(h, ">"); i >= 0 && j > i {
		return h[i+1 : j]
	}
	return h
}

// isReq matches a request of method.
func isReq(method string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(m, method+" ") }
}

// isRes matches a response with status code to a request of method.
func isRes(code int, method string) func(string) bool {
	return func(m string) bool {
		return strings.HasPrefix(m, fmt.Sprintf("SIP/2.0 %d ", code)) && strings.HasSuffix(hv(m, "CSeq"), " "+method)
	}
}

// isFinal matches a final response to a request of method.
func isFinal(method string) func(string) bool {
	return func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 ") && !strings.HasPrefix(m, "SIP/2.0 1") && strings.HasSuffix(hv(m, "CSeq"), " "+method)
	}
}

func cseqOf(m string) int {
	n, _, _ := strings.Cut(hv(m, "CSeq"), " ")
	v, _ := strconv.Atoi(n)
	return v
}

// reply builds a response to req; toTag is added to To unless it has one.
func reply(req string, code int, reason, toTag, contact, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		k, v, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			if toTag != "" && tagOf(v) == "" {
				line += ";tag=" + toTag
			}
			b.WriteString(line + "\r\n")
		}
	}
	if contact != "" {
		fmt.Fprintf(&b, "Contact: <sip:callee@%s>\r\n", contact)
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func plainSDP(port, version int) string {
	return fmt.Sprintf("v=0\r\no=raw 42 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", version, port)
}

// rawLab is parapet with two plain zones, a and b, both on UDP, and a
// route from a to the raw callee.
type rawLab struct {
	t    *testing.T
	sink *memSink
	srv  *b2bua.Server
	a, b *rawPeer
	aUDP *net.UDPAddr    // parapet's listener in zone a
	seen map[string]bool // Call-IDs of the INVITEs B took
}

func newRawLab(t *testing.T, tweaks ...func(*b2bua.Config)) *rawLab {
	t.Helper()
	l := &rawLab{t: t, sink: &memSink{}, a: newRawPeer(t), b: newRawPeer(t), seen: map[string]bool{}}
	lo := netip.MustParsePrefix("127.0.0.0/8")
	zone := func(name string, ts ...policy.Transport) topology.Zone {
		z := topology.Zone{
			Policy: policy.Zone{Name: name, Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
				SRTP: policy.RequirementOff, Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
		}
		for _, t := range ts {
			z.Listen = append(z.Listen, topology.Listener{Transport: t, Addr: netip.AddrPortFrom(loop, 0)})
		}
		return z
	}
	cfg := b2bua.Config{
		// A caller may come over TCP too.
		Zones: []topology.Zone{zone("a", policy.TransportUDP, policy.TransportTCP), zone("b", policy.TransportUDP)},
		Routes: []topology.Route{{Name: "out", From: "a", To: "b",
			Target: topology.Target{Host: "127.0.0.1", Port: l.b.port(), Transport: policy.TransportUDP}}},
		Media:      topology.Media{Address: loop, PortMin: 45000, PortMax: 45999, Timeout: 20 * time.Second},
		PolicyHash: "sha256:test",
		Sink:       l.sink,
		Logger:     discard(),
	}
	for _, f := range tweaks {
		f(&cfg)
	}
	l.srv = startServer(t, cfg)
	ap := l.srv.Addrs("a")[policy.TransportUDP]
	l.aUDP = net.UDPAddrFromAddrPort(ap)
	return l
}

// rawCall is one call through a rawLab, seen from both raw peers.
type rawCall struct {
	l      *rawLab
	callID string
	inv    string // A's INVITE
	aTo    string // To of parapet's responses to A (with its tag)
	aCtc   string // parapet's Contact toward A
	aSeq   int

	bInv  *rawMsg // the INVITE B received
	bTag  string
	bSeq  int
	bFrom *net.UDPAddr
}

// invite sends A's INVITE and waits until B has it.
func (l *rawLab) invite(name string) *rawCall {
	l.t.Helper()
	c := &rawCall{l: l, callID: fmt.Sprintf("%s-%d@raw", name, time.Now().UnixNano()), aSeq: 1, bTag: "btag" + name, bSeq: 100}
	c.inv = invite(l.a.addr(), l.aUDP.String(), c.callID, "application/sdp", plainSDP(4000, 1))
	l.a.send(l.aUDP, c.inv)
	c.bInv = l.b.must("INVITE at B", func(m string) bool {
		return isReq("INVITE")(m) && tagOf(hv(m, "To")) == "" && !l.seen[hv(m, "Call-ID")]
	})
	l.seen[hv(c.bInv.text, "Call-ID")] = true
	c.bFrom = c.bInv.from
	return c
}

// atA narrows match to the messages of this call at A.
func (c *rawCall) atA(match func(string) bool) func(string) bool {
	return func(m string) bool { return hv(m, "Call-ID") == c.callID && match(m) }
}

// atB narrows match to the messages of this call at B.
func (c *rawCall) atB(match func(string) bool) func(string) bool {
	id := hv(c.bInv.text, "Call-ID")
	return func(m string) bool { return hv(m, "Call-ID") == id && match(m) }
}

// bReply sends B's response to its INVITE.
func (c *rawCall) bReply(code int, reason string) {
	body := ""
	if code == 200 {
		body = plainSDP(5000, 1)
	}
	c.l.b.send(c.bFrom, reply(c.bInv.text, code, reason, c.bTag, c.l.b.addr(), body))
}

// bRequest builds a request from B inside its dialog.
func (c *rawCall) bRequest(method string, cseq int) string {
	if cseq == 0 {
		c.bSeq++
		cseq = c.bSeq
	}
	inv := c.bInv.text
	return strings.Join([]string{
		fmt.Sprintf("%s %s SIP/2.0", method, uriOf(hv(inv, "Contact"))),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=%s", c.l.b.addr(), c.l.b.branch()),
		"Max-Forwards: 70",
		fmt.Sprintf("From: %s;tag=%s", hv(inv, "To"), c.bTag),
		"To: " + hv(inv, "From"),
		"Call-ID: " + hv(inv, "Call-ID"),
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		fmt.Sprintf("Contact: <sip:callee@%s>", c.l.b.addr()),
		"Content-Length: 0", "", ""}, "\r\n")
}

// aFinal waits for the final response to A's INVITE and notes the dialog.
func (c *rawCall) aFinal() string {
	c.l.t.Helper()
	m := c.l.a.must("final response to A's INVITE", c.atA(isFinal("INVITE")))
	c.aTo, c.aCtc = hv(m.text, "To"), uriOf(hv(m.text, "Contact"))
	return m.text
}

// aRequest builds a request from A inside its dialog.
func (c *rawCall) aRequest(method string, cseq int, body string) string {
	if cseq == 0 {
		c.aSeq++
		cseq = c.aSeq
	}
	local := c.l.a.addr()
	target := c.aCtc
	if target == "" {
		target = uriOf(hv(c.inv, "Contact"))
	}
	lines := []string{
		fmt.Sprintf("%s %s SIP/2.0", method, target),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=%s", local, c.l.a.branch()),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:pbx@%s>;tag=%s", local, c.callID),
		"To: " + c.aTo,
		"Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		fmt.Sprintf("Contact: <sip:pbx@%s>", local),
	}
	if body != "" {
		lines = append(lines, "Content-Type: application/sdp")
	}
	lines = append(lines, fmt.Sprintf("Content-Length: %d", len(body)), "", body)
	return strings.Join(lines, "\r\n")
}

// aAck acknowledges parapet's final response to A's INVITE with CSeq cseq.
// hangUpFromA ends an answered call with a BYE from A (CSeq cseq): A gets
// 200, B gets the BYE and answers it, and the record says "bye from a".
func (c *rawCall) hangUpFromA(t *testing.T, cseq int) {
	t.Helper()
	l := c.l
	l.a.send(l.aUDP, c.aRequest("BYE", cseq, ""))
	l.a.must("200 to A's BYE", isRes(200, "BYE"))
	bye := l.b.must("BYE to B", isReq("BYE"))
	l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
	wantRecord(t, l.record(), compliance.DispositionAnswered, 200, "bye from a")
}

func (c *rawCall) aAck(cseq int) {
	c.l.a.send(c.l.aUDP, c.aRequest("ACK", cseq, ""))
}

// aCancel cancels A's INVITE.
func (c *rawCall) aCancel() {
	c.inviteTxRequest("CANCEL", fmt.Sprintf("<sip:+15551230000@%s>", c.l.aUDP))
}

// ackNon2xx acknowledges a non-2xx final response to A's INVITE (same
// branch as the INVITE, RFC 3261 section 17.1.1.3).
func (c *rawCall) ackNon2xx(res string) {
	c.inviteTxRequest("ACK", hv(res, "To"))
}

// inviteTxRequest sends a request of A's INVITE transaction (its branch,
// From and CSeq number) with the given To.
func (c *rawCall) inviteTxRequest(method, to string) {
	local := c.l.a.addr()
	c.l.a.send(c.l.aUDP, strings.Join([]string{
		fmt.Sprintf("%s sip:+15551230000@%s SIP/2.0", method, c.l.aUDP),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s", local, c.callID),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:pbx@%s>;tag=%s", local, c.callID),
		"To: " + to,
		"Call-ID: " + c.callID,
		"CSeq: 1 " + method,
		"Content-Length: 0", "", ""}, "\r\n"))
}

// establish sets up a call: B answers 200, A gets it and ACKs.
func (l *rawLab) establish(name string) *rawCall {
	l.t.Helper()
	c := l.invite(name)
	c.bReply(180, "Ringing")
	c.bReply(200, "OK")
	l.b.must("ACK for B's 200", isReq("ACK"))
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
		l.t.Fatalf("A's INVITE: %s", firstLine(res))
	}
	c.aAck(1)
	return c
}

// record waits for the call's one record.
func (l *rawLab) record() *compliance.Call {
	l.t.Helper()
	return l.sink.waitCalls(l.t, 1)[0]
}

func wantRecord(t *testing.T, c *compliance.Call, disposition compliance.Disposition, status int, reason string) {
	t.Helper()
	if c.Disposition != disposition || c.SIPStatus != status || (reason != "" && c.EndReason != reason) {
		t.Errorf("record %s %d %q, want %s %d %q", c.Disposition, c.SIPStatus, c.EndReason, disposition, status, reason)
	}
}

// A CANCEL that crosses the callee's 200 (RFC 3261 section 9.1): parapet
// must ACK that 200 and then BYE the callee, whatever B answers to the
// CANCEL and whenever its 200 comes; the caller gets 487 and the record
// says cancelled.
func TestCancelCrossesCalleeAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ring    bool // B sends 180 before A's CANCEL
		respond func(c *rawCall, cancel *rawMsg)
	}{
		// B had sent its 200 when the CANCEL reached it; it answers the
		// CANCEL 200 (RFC 6026: the transaction still exists).
		{"200 then CANCEL 200", true, func(c *rawCall, cancel *rawMsg) {
			c.bReply(200, "OK")
			c.l.b.send(cancel.from, reply(cancel.text, 200, "OK", c.bTag, "", ""))
		}},
		// B answers the CANCEL, then its 200 comes instead of a 487.
		{"CANCEL 200 then 200", true, func(c *rawCall, cancel *rawMsg) {
			c.l.b.send(cancel.from, reply(cancel.text, 200, "OK", c.bTag, "", ""))
			time.Sleep(20 * time.Millisecond) // the scenario: the 200 comes a little after
			c.bReply(200, "OK")
		}},
		// B had answered 200 and no longer knows the INVITE transaction.
		{"200 then CANCEL 481", true, func(c *rawCall, cancel *rawMsg) {
			c.bReply(200, "OK")
			c.l.b.send(cancel.from, reply(cancel.text, 481, "Call/Transaction Does Not Exist", c.bTag, "", ""))
		}},
		// The CANCEL came before any provisional: parapet cannot CANCEL
		// yet, and B answers 200.
		{"no provisional, then 200", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newRawLab(t)
			c := l.invite("x")
			if tc.ring {
				c.bReply(180, "Ringing")
				l.a.must("180 at A", isRes(180, "INVITE"))
			}
			c.aCancel()
			l.a.must("200 to A's CANCEL", isRes(200, "CANCEL"))
			res := l.a.must("487 at A", isFinal("INVITE"))
			if !strings.HasPrefix(res.text, "SIP/2.0 487") {
				t.Fatalf("A's INVITE got %s", firstLine(res.text))
			}
			c.ackNon2xx(res.text)
			if tc.ring {
				cancel := l.b.must("CANCEL at B", isReq("CANCEL"))
				tc.respond(c, cancel)
			} else {
				if m := l.b.wait(300*time.Millisecond, isReq("CANCEL")); m != nil {
					t.Fatal("parapet sent CANCEL before any provisional response")
				}
				c.bReply(200, "OK")
			}
			ack := l.b.must("ACK for B's 200", isReq("ACK"))
			if cseqOf(ack.text) != 1 || tagOf(hv(ack.text, "To")) != c.bTag {
				t.Errorf("ACK %s To %s", hv(ack.text, "CSeq"), hv(ack.text, "To"))
			}
			bye := l.b.must("BYE to B", isReq("BYE"))
			l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
			wantRecord(t, l.record(), compliance.DispositionCancelled, 487, "")
		})
	}
}

// A CANCEL before any provisional response: parapet CANCELs B as soon as
// B's first provisional response comes.
func TestCancelBeforeProvisional(t *testing.T) {
	l := newRawLab(t)
	c := l.invite("early")
	c.aCancel()
	res := l.a.must("487 at A", isFinal("INVITE"))
	c.ackNon2xx(res.text)
	time.Sleep(300 * time.Millisecond) // the scenario: B's 180 comes late, A's call already over
	c.bReply(180, "Ringing")
	cancel := l.b.must("CANCEL at B after its 180", isReq("CANCEL"))
	l.b.send(cancel.from, reply(cancel.text, 200, "OK", c.bTag, "", ""))
	c.bReply(487, "Request Terminated")
	l.b.must("ACK for B's 487", isReq("ACK"))
	start := time.Now()
	wantRecord(t, l.record(), compliance.DispositionCancelled, 487, "")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the call ended %v after B's 487", d)
	}
}

// A's ACK overtaken by a re-INVITE (UDP does not keep order; a caller may
// also send them back to back): the ACK still confirms the dialog, parapet
// stops retransmitting its 200 and the call goes on.
func TestAckAfterReinvite(t *testing.T) {
	for _, reinviteFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("reinviteFirst=%v", reinviteFirst), func(t *testing.T) {
			l := newRawLab(t)
			c := l.invite("ack")
			c.bReply(200, "OK")
			l.b.must("ACK for B's 200", isReq("ACK"))
			if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
				t.Fatalf("A's INVITE: %s", firstLine(res))
			}
			// The same offer again (same o= version): parapet answers it
			// itself.
			reinvite := c.aRequest("INVITE", 2, plainSDP(4000, 1))
			if reinviteFirst {
				// The re-INVITE overtakes the ACK.
				l.a.send(l.aUDP, reinvite)
				time.Sleep(20 * time.Millisecond) // the scenario: the ACK comes after it
				c.aAck(1)
			} else {
				// Back to back, in order.
				c.aAck(1)
				l.a.send(l.aUDP, reinvite)
			}
			second := func(m string) bool { return isRes(200, "INVITE")(m) && cseqOf(m) == 2 }
			l.a.must("200 to the re-INVITE", second)
			c.aAck(2)
			first := func(m string) bool { return isRes(200, "INVITE")(m) && cseqOf(m) == 1 }
			// A window over two of the 200's retransmission times (T1,
			// 3*T1): a retransmission would show parapet missed the ACK.
			poll(1800*time.Millisecond, func() bool { return l.a.count(first) > 1 })
			if n := l.a.count(first); n != 1 {
				t.Errorf("parapet sent its 200 %d times: it did not take A's ACK", n)
			}
			if n := l.srv.Stats().CallsActive; n != 1 {
				t.Fatalf("%d calls active", n)
			}
			c.hangUpFromA(t, 3)
		})
	}
}

// Requests that do not fit the dialog do not end the call (RFC 3261
// section 12.2.2): a From tag that is not the peer's gets 481, a CSeq not
// above the peer's last one 500; the call goes on.
func TestByeOutsideDialogRefused(t *testing.T) {
	info := func(c *rawCall, fromA bool, cseq int) {
		t.Helper()
		l := c.l
		if fromA {
			req := c.aRequest("INFO", cseq, "")
			l.a.send(l.aUDP, strings.Replace(req, "Content-Length: 0", "Content-Type: application/dtmf-relay\r\nContent-Length: 0", 1))
			m := l.b.must("INFO at B", isReq("INFO"))
			l.b.send(m.from, reply(m.text, 200, "OK", "", "", ""))
			l.a.must("200 to A's INFO", isRes(200, "INFO"))
			return
		}
		l.b.send(c.bFrom, c.bRequest("INFO", cseq))
		m := l.a.must("INFO at A", isReq("INFO"))
		l.a.send(m.from, reply(m.text, 200, "OK", "", "", ""))
		l.b.must("200 to B's INFO", isRes(200, "INFO"))
	}
	for _, tc := range []struct {
		name  string
		fromA bool
		req   func(c *rawCall) string
		want  int
	}{
		{"A, wrong From tag", true, func(c *rawCall) string {
			return strings.Replace(c.aRequest("BYE", 0, ""), ";tag="+c.callID, ";tag=wrongfrom", 1)
		}, 481},
		{"A, no From tag", true, func(c *rawCall) string {
			return strings.Replace(c.aRequest("BYE", 0, ""), ";tag="+c.callID, "", 1)
		}, 481},
		{"A, wrong To tag", true, func(c *rawCall) string {
			return strings.Replace(c.aRequest("BYE", 0, ""), ";tag="+tagOf(c.aTo), ";tag=wrongto", 1)
		}, 481},
		{"A, CSeq of its INVITE", true, func(c *rawCall) string { return c.aRequest("BYE", 1, "") }, 500},
		{"A, CSeq below its INFO's", true, func(c *rawCall) string {
			info(c, true, 10)
			return c.aRequest("BYE", 5, "")
		}, 500},
		{"B, wrong From tag", false, func(c *rawCall) string {
			return strings.Replace(c.bRequest("BYE", 0), ";tag="+c.bTag, ";tag=wrongfrom", 1)
		}, 481},
		{"B, CSeq below its INFO's", false, func(c *rawCall) string {
			info(c, false, 10)
			return c.bRequest("BYE", 5)
		}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newRawLab(t)
			c := l.establish("bye")
			from, to, at := l.a, l.aUDP, l.a
			if !tc.fromA {
				from, to, at = l.b, c.bFrom, l.b
			}
			from.send(to, tc.req(c))
			res := at.must("response to the BYE", isFinal("BYE"))
			if !strings.HasPrefix(res.text, fmt.Sprintf("SIP/2.0 %d ", tc.want)) {
				t.Errorf("BYE got %s, want %d", firstLine(res.text), tc.want)
			}
			ended := func() bool {
				return l.a.count(isReq("BYE"))+l.b.count(isReq("BYE")) > 0 || l.srv.Stats().CallsActive != 1
			}
			poll(200*time.Millisecond, ended) // a window in which the call must stay up
			if ended() {
				t.Fatalf("the call ended: A got %s B got %s", l.a.dump(), l.b.dump())
			}
			// The real BYE still ends the call.
			c.hangUpFromA(t, 50)
		})
	}
}

// The callee hangs up before the caller acknowledged parapet's 200: the
// call ends at once, "bye from b"; the caller gets its BYE once it
// acknowledged (RFC 3261 section 15 allows none before), even when its ACK
// comes after the record was written, and a caller that never does is not
// waited for until the media timeout.
func TestCalleeByeBeforeCallerAck(t *testing.T) {
	for _, ack := range []string{"soon", "late", "never"} {
		t.Run("ack="+ack, func(t *testing.T) {
			l := newRawLab(t)
			c := l.invite("bba")
			c.bReply(200, "OK")
			l.b.must("ACK for B's 200", isReq("ACK"))
			c.aFinal()
			l.b.send(c.bFrom, c.bRequest("BYE", 0))
			l.b.must("200 to B's BYE", isRes(200, "BYE"))
			start := time.Now()
			noByeYet := func(when string) {
				t.Helper()
				if n := l.a.count(c.atA(isReq("BYE"))); n != 0 {
					t.Errorf("A got %d BYEs %s", n, when)
				}
			}
			switch ack {
			case "soon":
				// The scenario: the ACK comes 300 ms late, a window in
				// which parapet must not give up on it.
				poll(300*time.Millisecond, func() bool { return l.a.count(c.atA(isReq("BYE"))) != 0 })
				noByeYet("before its ACK")
				c.aAck(1)
			case "late":
				// After the record: parapet stopped waiting for the ACK
				// to end the call, but sipgo still retransmits the 200.
				wantRecord(t, l.record(), compliance.DispositionAnswered, 200, "bye from b")
				poll(500*time.Millisecond, func() bool { return l.a.count(c.atA(isReq("BYE"))) != 0 }) // as "soon"
				noByeYet("before its ACK")
				c.aAck(1)
			}
			if ack != "never" {
				bye := l.a.must("BYE to A", c.atA(isReq("BYE")))
				l.a.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
			}
			if ack != "late" {
				wantRecord(t, l.record(), compliance.DispositionAnswered, 200, "bye from b")
			}
			if ack == "never" {
				noByeYet("without ever acknowledging")
			}
			if d := time.Since(start); d > 7*time.Second {
				t.Errorf("the call ended %v after B's BYE", d)
			}
			if n := l.b.count(isReq("BYE")); n != 0 {
				t.Errorf("B got %d BYEs after its own", n)
			}
		})
	}
}

// A call that ends (here: parapet shuts down) while the caller has not yet
// acknowledged parapet's 200: the callee gets its BYE at once, without
// waiting for the caller's ACK.
func TestHangupBeforeCallerAckByesCalleeAtOnce(t *testing.T) {
	l := newRawLab(t)
	c := l.invite("hba")
	c.bReply(200, "OK")
	l.b.must("ACK for B's 200", isReq("ACK"))
	c.aFinal()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- l.srv.Shutdown(ctx)
	}()
	bye := l.b.must("BYE to B", c.atB(isReq("BYE")))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("B's BYE came %v after the hangup: it waited for the caller's ACK", d)
	}
	l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
	if n := l.a.count(c.atA(isReq("BYE"))); n != 0 {
		t.Errorf("A got %d BYEs without having acknowledged", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantRecord(t, l.record(), compliance.DispositionShutdown, 200, "shutdown (before the caller's ACK)")
}

// A BYE from the caller on an early dialog (RFC 3261 section 15): 200 to
// the BYE, 487 to its INVITE, and the callee is cancelled.
func TestCallerByeOnEarlyDialog(t *testing.T) {
	l := newRawLab(t)
	c := l.invite("early-bye")
	c.bReply(180, "Ringing")
	ring := l.a.must("180 at A", isRes(180, "INVITE"))
	c.aTo, c.aCtc = hv(ring.text, "To"), uriOf(hv(ring.text, "Contact"))
	if tagOf(c.aTo) == "" {
		t.Fatalf("180 without a To tag: %s", ring.text)
	}
	l.a.send(l.aUDP, c.aRequest("BYE", 2, ""))
	l.a.must("200 to A's BYE", isRes(200, "BYE"))
	res := l.a.must("final response to A's INVITE", isFinal("INVITE"))
	if !strings.HasPrefix(res.text, "SIP/2.0 487") {
		t.Errorf("A's INVITE got %s, want 487", firstLine(res.text))
	}
	c.ackNon2xx(res.text)
	cancel := l.b.must("CANCEL at B", isReq("CANCEL"))
	l.b.send(cancel.from, reply(cancel.text, 200, "OK", c.bTag, "", ""))
	c.bReply(487, "Request Terminated")
	l.b.must("ACK for B's 487", isReq("ACK"))
	wantRecord(t, l.record(), compliance.DispositionCancelled, 487, "")
}

// The caller's CANCEL and the callee's 200 at the same moment, in either
// order: whichever wins at parapet, the two legs agree. Either the caller
// got 487, the callee its ACK and BYE, and the record says cancelled; or
// the caller got 200 and the call is up.
func TestCancelRacesAnswer(t *testing.T) {
	l := newRawLab(t)
	outcomes := map[string]int{}
	for i := range 24 {
		c := l.invite(fmt.Sprintf("race%d", i))
		c.bReply(180, "Ringing")
		l.a.must("180 at A", c.atA(isRes(180, "INVITE")))
		gap := time.Duration(i/2%8) * 150 * time.Microsecond
		if i%2 == 0 {
			c.aCancel()
			time.Sleep(gap) // the scenario: the race, at this gap
			c.bReply(200, "OK")
		} else {
			c.bReply(200, "OK")
			time.Sleep(gap) // the scenario: the race, at this gap
			c.aCancel()
		}
		res := c.aFinal()
		l.b.must("ACK for B's 200", c.atB(isReq("ACK")))
		if cancel := l.b.wait(200*time.Millisecond, c.atB(isReq("CANCEL"))); cancel != nil {
			l.b.send(cancel.from, reply(cancel.text, 200, "OK", c.bTag, "", ""))
		}
		var rec *compliance.Call
		if strings.HasPrefix(res, "SIP/2.0 487") {
			c.ackNon2xx(res)
			bye := l.b.must("BYE to B", c.atB(isReq("BYE")))
			l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
			rec = l.sink.waitCalls(t, i+1)[i]
			wantRecord(t, rec, compliance.DispositionCancelled, 487, "cancelled by caller")
		} else {
			c.aAck(1)
			byes := func() int { return l.b.count(c.atB(isReq("BYE"))) + l.a.count(c.atA(isReq("BYE"))) }
			poll(100*time.Millisecond, func() bool { return byes() != 0 }) // a window in which the call must stay up
			if n := byes(); n != 0 {
				t.Fatalf("round %d: the caller got 200 but the call was ended", i)
			}
			l.a.send(l.aUDP, c.aRequest("BYE", 2, ""))
			l.a.must("200 to A's BYE", c.atA(isRes(200, "BYE")))
			bye := l.b.must("BYE to B", c.atB(isReq("BYE")))
			l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
			rec = l.sink.waitCalls(t, i+1)[i]
			wantRecord(t, rec, compliance.DispositionAnswered, 200, "bye from a")
		}
		t.Logf("round %d: A got %s; %s %q", i, firstLine(res), rec.Disposition, rec.EndReason)
		outcomes[string(rec.Disposition)]++
	}
	// Half the rounds send the CANCEL first: some of those must have
	// been honoured, or the race was never run.
	if outcomes[string(compliance.DispositionCancelled)] == 0 {
		t.Errorf("no round ended cancelled: %v", outcomes)
	}
}
