package b2bua_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/topology"
)

// Nothing of one leg's topology reaches the other: no Via, Contact,
// Call-ID, tag, SIP or media address of the PBX appears in what the
// carrier receives, and the other way round.
func TestTopologyHidden(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	defer caller.Hangup(ctx)

	atCarrier := callee.Dialog() // the INVITE the carrier received
	atPBX := caller.Dialog()     // the 200 OK the PBX received
	pbxSide := []string{
		l.pbx.Addr().String(), fmt.Sprintf(":%d", l.pbx.Addr().Port()),
		caller.MediaAddr().String(), fmt.Sprintf(" %d RTP/", caller.MediaAddr().Port()),
		caller.CallID(),
	}
	for _, s := range pbxSide {
		if strings.Contains(atCarrier, s) {
			t.Errorf("the carrier's INVITE contains the PBX side's %q:\n%s", s, atCarrier)
		}
	}
	carrierSide := []string{
		l.carrier.Addr().String(), fmt.Sprintf(":%d", l.carrier.Addr().Port()),
		callee.MediaAddr().String(), fmt.Sprintf(" %d RTP/", callee.MediaAddr().Port()),
		callee.CallID(),
	}
	for _, s := range carrierSide {
		if strings.Contains(atPBX, s) {
			t.Errorf("the PBX's 200 OK contains the carrier side's %q:\n%s", s, atPBX)
		}
	}
	// Each leg sees parapet's own Via/Contact for its zone.
	if !strings.Contains(atCarrier, "Via: SIP/2.0/TLS") || !strings.Contains(atCarrier, l.carrierTLS.Addr().String()) {
		t.Errorf("carrier INVITE lacks parapet's TLS Via/Contact:\n%s", atCarrier)
	}
	if !strings.Contains(atPBX, fmt.Sprintf("Contact: <sip:%s>", l.pbxUDP)) {
		t.Errorf("PBX 200 lacks parapet's pbx-zone Contact %s:\n%s", l.pbxUDP, atPBX)
	}
	// No SDES key on the PBX leg (plain RTP zone without TLS).
	if strings.Contains(atPBX, "a=crypto") {
		t.Errorf("key material sent over clear signaling:\n%s", atPBX)
	}
}

// 183 with SDP from the callee reaches the caller as 183 with parapet's
// own SDP (early media), and the call then completes.
func TestEarlyMedia(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Early: true, Ring: 200 * time.Millisecond}})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	var early string
	for _, p := range caller.Provisional() {
		if strings.HasPrefix(p, "SIP/2.0 183") {
			early = p
		}
	}
	if early == "" || !strings.Contains(early, "m=audio") || strings.Contains(early, "a=crypto") {
		t.Fatalf("no 183 with plain SDP at the caller: %q", caller.Provisional())
	}
	if strings.Contains(early, fmt.Sprintf(" %d RTP/", callee.MediaAddr().Port())) {
		t.Error("183 carries the callee's media port")
	}
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s", c.Disposition)
	}
}

// udpPeer is a raw SIP peer: it writes datagrams to parapet and reads its
// responses at the address its Via names.
type udpPeer struct {
	c  *net.UDPConn
	to *net.UDPAddr
}

func newUDPPeer(t testing.TB, to string) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ra, _ := net.ResolveUDPAddr("udp", to)
	return &udpPeer{c: c, to: ra}
}

func (u *udpPeer) local() string { return u.c.LocalAddr().String() }

// send writes msg and returns the first non-100 response.
func (u *udpPeer) send(t *testing.T, msg string) string {
	t.Helper()
	if _, err := u.c.WriteToUDP([]byte(msg), u.to); err != nil {
		t.Fatal(err)
	}
	u.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, _, err := u.c.ReadFromUDP(buf)
		if err != nil {
			return ""
		}
		if s := string(buf[:n]); !strings.HasPrefix(s, "SIP/2.0 100") {
			return s
		}
	}
}

// drain returns every response that arrives within d.
func (u *udpPeer) drain(d time.Duration) []string {
	var out []string
	buf := make([]byte, 4096)
	u.c.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := u.c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		out = append(out, string(buf[:n]))
	}
}

// rawInvite is an INVITE without a body from local.
func rawInvite(to, local, callID string) string {
	return invite(local, to, callID, "application/sdp", "")
}

func invite(local, to, callID, ctype, body string) string {
	return strings.Join([]string{
		fmt.Sprintf("INVITE sip:+15551230000@%s SIP/2.0", to),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s", local, callID),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:pbx@%s>;tag=%s", local, callID),
		fmt.Sprintf("To: <sip:+15551230000@%s>", to),
		"Call-ID: " + callID,
		"CSeq: 1 INVITE",
		fmt.Sprintf("Contact: <sip:pbx@%s>", local),
		"Content-Type: " + ctype,
		fmt.Sprintf("Content-Length: %d", len(body)),
		"", body}, "\r\n")
}

// Malformed input gets a clear status, is recorded, and does not stop
// parapet from serving.
func TestMalformedInput(t *testing.T) {
	l := newLab(t, labOptions{})
	to := l.pbxUDP.String()
	u := newUDPPeer(t, to)
	local := u.local()

	cases := []struct {
		name, ctype, body string
		status            string
	}{
		{"garbage SDP", "application/sdp", "this is not sdp\r\n", "SIP/2.0 400"},
		{"SDP without m= line", "application/sdp", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", "SIP/2.0 400"},
		{"body that is not SDP", "text/plain", "hello", "SIP/2.0 415"},
		{"RTP over TCP only", "application/sdp", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 TCP/RTP/AVP 0\r\n", "SIP/2.0 488"},
		{"unknown profile only", "application/sdp", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/FOO 0\r\n", "SIP/2.0 488"},
	}
	for i, tc := range cases {
		res := u.send(t, invite(local, to, fmt.Sprintf("bad%d", i), tc.ctype, tc.body))
		if !strings.HasPrefix(res, tc.status) {
			t.Errorf("%s: got %q, want %s", tc.name, firstLine(res), tc.status)
		}
		if !strings.Contains(res, "Warning: 399 parapet") {
			t.Errorf("%s: no Warning explaining why: %q", tc.name, res)
		}
	}
	// Bytes that are not SIP at all, and a request without the headers a
	// transaction needs.
	u.c.WriteToUDP([]byte{0x16, 0x03, 0x01, 0x00, 0xff, 0xde, 0xad}, u.to)
	u.c.WriteToUDP([]byte("INVITE sip:x@y SIP/2.0\r\n\r\n"), u.to)
	if !poll(5*time.Second, func() bool { return l.srv.Stats().ParseErrors >= 2 }) {
		t.Fatalf("the two datagrams were not counted as unparsable: %+v", l.srv.Stats())
	}

	calls := l.sink.waitCalls(t, len(cases))
	for _, c := range calls {
		if c.Disposition != compliance.DispositionRejected || len(c.Decisions) < 2 {
			t.Errorf("record %s %d %+v", c.Disposition, c.SIPStatus, c.Decisions)
		}
	}
	// Still serving.
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatalf("parapet stopped serving after bad input: %v", err)
	}
	incoming(t, l.carrier)
	caller.Hangup(ctx)
}

// Requests without what RFC 3261 section 8.1.1 requires of every request,
// or with a header that may appear once twice, get 400 (505 for another
// SIP version), whatever the method; a Request-URI of a scheme parapet
// does not serve gets 416, an extension it does not support 420. From a
// stranger, every one of them gets 403 and nothing else: the peer check
// comes first, and a stranger learns nothing of parapet's parser.
func TestRequestBasics(t *testing.T) {
	dup := func(h string) func(string) string {
		return func(m string) string {
			i := strings.Index(m, h+":")
			j := strings.Index(m[i:], "\r\n")
			return m[:i+j+2] + m[i:i+j+2] + m[i+j+2:]
		}
	}
	cut := func(h string) func(string) string {
		return func(m string) string {
			i := strings.Index(m, h+":")
			j := strings.Index(m[i:], "\r\n")
			return m[:i] + m[i+j+2:]
		}
	}
	swap := func(old, new string) func(string) string {
		return func(m string) string { return strings.Replace(m, old, new, 1) }
	}
	cases := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"well formed", func(m string) string { return m }, "SIP/2.0 200"},
		{"SIP/3.0", swap(" SIP/2.0\r\n", " SIP/3.0\r\n"), "SIP/2.0 505"},
		{"no Call-ID", cut("Call-ID"), "SIP/2.0 400"},
		{"no From", cut("From"), "SIP/2.0 400"},
		{"CSeq of another method", swap("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"), "SIP/2.0 400"},
		{"two Call-IDs", dup("Call-ID"), "SIP/2.0 400"},
		{"two Froms", dup("From"), "SIP/2.0 400"},
		{"two Tos", dup("To"), "SIP/2.0 400"},
		{"two CSeqs", dup("CSeq"), "SIP/2.0 400"},
		{"From with an unquoted comma", swap("From: <", "From: Bell, Alexander <"), "SIP/2.0 400"},
		{"tel: Request-URI", swap("OPTIONS sip:", "OPTIONS tel:+15551230000;x="), "SIP/2.0 416"},
		{"Proxy-Require", swap("Max-Forwards: 70", "Max-Forwards: 70\r\nProxy-Require: foo"), "SIP/2.0 420"},
	}
	run := func(t *testing.T, l *lab, stranger bool) {
		to := l.pbxUDP.String()
		u := newUDPPeer(t, to)
		opt := func(n int, edit func(string) string) string {
			return edit(strings.Join([]string{
				fmt.Sprintf("OPTIONS sip:%s SIP/2.0", to),
				fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bKbasic%d", u.local(), n),
				"Max-Forwards: 70",
				fmt.Sprintf("From: <sip:probe@%s>;tag=b%d", u.local(), n),
				fmt.Sprintf("To: <sip:%s>", to),
				fmt.Sprintf("Call-ID: basics-%d", n),
				"CSeq: 1 OPTIONS", "Content-Length: 0", "", ""}, "\r\n"))
		}
		for i, tc := range cases {
			want := tc.want
			if stranger {
				want = "SIP/2.0 403"
			}
			res := u.send(t, opt(i, tc.edit))
			if !strings.HasPrefix(res, want) || stranger && strings.Contains(res, "\r\nWarning:") {
				t.Errorf("%s: got %q, want %s", tc.name, res, want)
			}
		}
	}
	t.Run("peer", func(t *testing.T) { run(t, newLab(t, labOptions{}), false) })
	t.Run("stranger", func(t *testing.T) {
		// Budgets raised: a dozen requests from one address in a moment
		// would be over its source_rate.
		lim := topology.DefaultLimits
		lim.SourceRate, lim.PrefixRate = 100, 100
		run(t, newLab(t, labOptions{pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, limits: lim}), true)
	})
}

// Max-Forwards 0 goes no further (483); 1 goes on, with 0, and is answered.
func TestMaxForwards(t *testing.T) {
	l := newLab(t, labOptions{})
	to := l.pbxUDP.String()
	u := newUDPPeer(t, to)
	sdp := "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	for _, tc := range []struct{ mf, want string }{{"0", "SIP/2.0 483"}, {"1", "SIP/2.0 200"}} {
		req := strings.Replace(invite(u.local(), to, "mf"+tc.mf, "application/sdp", sdp), "Max-Forwards: 70", "Max-Forwards: "+tc.mf, 1)
		if res := u.send(t, req); !strings.HasPrefix(res, tc.want) {
			t.Errorf("Max-Forwards %s: got %q, want %s", tc.mf, firstLine(res), tc.want)
		}
	}
	// The call that went on reached the carrier with one hop less.
	if inv := incoming(t, l.carrier).Dialog(); !strings.Contains(inv, "\r\nMax-Forwards: 0\r\n") {
		t.Errorf("the carrier's INVITE does not carry Max-Forwards 0:\n%s", inv)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// After calls end, parapet holds no call, no leg, no media port and no
// goroutine of theirs.
func TestNoLeaksAfterCalls(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	warm, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	incoming(t, l.carrier)
	warm.Hangup(ctx)
	l.sink.waitCalls(t, 1)
	base := goroutineBaseline(t, l)

	for i := range 5 {
		caller, err := l.callOut(ctx, sim.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		callee := incoming(t, l.carrier)
		exchange(t, caller, callee)
		if i%2 == 0 {
			caller.Hangup(ctx)
		} else {
			callee.Hangup(ctx)
		}
	}
	l.sink.waitCalls(t, 6)
	waitIdle(t, l, base)
	if got := l.srv.Stats().Calls[string(compliance.DispositionAnswered)]; got != 6 {
		for _, c := range l.sink.calls() {
			t.Logf("call %s: %s %d %q", c.ID, c.Disposition, c.SIPStatus, c.EndReason)
		}
		t.Errorf("%d answered calls counted, want 6", got)
	}
}

// A failure toward the callee side is explained to the caller without
// naming the callee side's address; the record keeps the detail.
func TestFailureWarningHidesTopology(t *testing.T) {
	l := newLab(t, labOptions{})
	carrier := l.carrier.Addr().String()
	l.carrier.Close() // connection refused
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	rej := wantRejected(t, err, 503)
	if rej.Warning == "" || strings.Contains(rej.Warning, carrier) || strings.Contains(rej.Warning, "127.0.0.1") {
		t.Errorf("warning %q reveals the callee side", rej.Warning)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if !strings.Contains(c.EndReason, carrier) {
		t.Errorf("the record lost the detail: %q", c.EndReason)
	}
}

// A method parapet does not know gets 405 with Allow (RFC 3261 section
// 8.2.1) from a peer, and from a stranger 403 (no Warning naming the zone,
// no Server, no Allow), counted in the zone's outsider tally as any other
// request from outside the peers.
func TestUnknownMethod(t *testing.T) {
	foo := func(local, to, callID string) string {
		return strings.Join([]string{
			fmt.Sprintf("FOO sip:+15551230000@%s SIP/2.0", to),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s", local, callID),
			"Max-Forwards: 70",
			fmt.Sprintf("From: <sip:pbx@%s>;tag=%s", local, callID),
			fmt.Sprintf("To: <sip:+15551230000@%s>", to),
			"Call-ID: " + callID,
			"CSeq: 1 FOO",
			"Content-Length: 0", "", ""}, "\r\n")
	}
	l := newLab(t, labOptions{})
	u := newUDPPeer(t, l.pbxUDP.String())
	res := u.send(t, foo(u.local(), l.pbxUDP.String(), "foo1"))
	if !strings.HasPrefix(res, "SIP/2.0 405") || !strings.Contains(res, "\r\nAllow: INVITE,") {
		t.Errorf("a peer's FOO: %q, want 405 with Allow", res)
	}

	strangers := newLab(t, labOptions{pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	s := newUDPPeer(t, strangers.pbxUDP.String())
	res = s.send(t, foo(s.local(), strangers.pbxUDP.String(), "foo2"))
	if !strings.HasPrefix(res, "SIP/2.0 403") || strings.Contains(res, "\r\nWarning:") ||
		strings.Contains(res, "\r\nServer:") || strings.Contains(res, "\r\nAllow:") {
		t.Errorf("a stranger's FOO: %q, want a bare 403", res)
	}
	if tally := strangers.outsiderTally(t, "pbx"); tally.Refused != 1 || tally.Methods["other"] != 1 {
		t.Errorf("the stranger's FOO in the tally: %+v", tally)
	}
}

// An OPTIONS that requires an extension parapet does not support gets 420
// naming it in Unsupported (RFC 3261 section 8.2.2.3; RFC 4475 section
// 3.3.6's torture message "unknown Require"); one requiring 100rel, or
// nothing, gets 200.
func TestOptionsRequire(t *testing.T) {
	options := func(local, to, callID, require string) string {
		lines := []string{
			fmt.Sprintf("OPTIONS sip:%s SIP/2.0", to),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s", local, callID),
			"Max-Forwards: 70",
			fmt.Sprintf("From: <sip:pbx@%s>;tag=%s", local, callID),
			fmt.Sprintf("To: <sip:%s>", to),
			"Call-ID: " + callID,
			"CSeq: 1 OPTIONS",
		}
		if require != "" {
			lines = append(lines, "Require: "+require)
		}
		return strings.Join(append(lines, "Content-Length: 0", "", ""), "\r\n")
	}
	l := newLab(t, labOptions{})
	u := newUDPPeer(t, l.pbxUDP.String())
	for i, c := range []struct {
		require, status, unsupported string
	}{
		{"", "SIP/2.0 200", ""},
		{"100rel", "SIP/2.0 200", ""},
		{"nothingyet", "SIP/2.0 420", "Unsupported: nothingyet"},
		{"100rel, foo, bar", "SIP/2.0 420", "Unsupported: foo, bar"},
	} {
		res := u.send(t, options(u.local(), l.pbxUDP.String(), fmt.Sprintf("opt%d", i), c.require))
		if !strings.HasPrefix(res, c.status) || c.unsupported != "" && !strings.Contains(res, "\r\n"+c.unsupported+"\r\n") {
			t.Errorf("OPTIONS requiring %q: %q, want %s %s", c.require, res, c.status, c.unsupported)
		}
	}
}
