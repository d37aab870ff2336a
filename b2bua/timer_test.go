package b2bua_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// Session timers (RFC 4028) and UPDATE (RFC 3311), played by raw peers.

// shortTimers gives both zones of a raw lab a session interval of se and
// a minimum of 1 s (the configuration file never goes below 90 s).
func shortTimers(se time.Duration) func(*b2bua.Config) {
	return func(cfg *b2bua.Config) {
		for i := range cfg.Zones {
			cfg.Zones[i].SessionExpires, cfg.Zones[i].MinSE = se, time.Second
		}
	}
}

// withHeaders adds header lines to a SIP message, before its Content-Length.
func withHeaders(msg string, hdrs ...string) string {
	return strings.Replace(msg, "\r\nContent-Length:", "\r\n"+strings.Join(hdrs, "\r\n")+"\r\nContent-Length:", 1)
}

// timedCall sets up a call whose caller asks for a session interval of se
// seconds and refreshes it itself, and whose callee (allowing UPDATE)
// makes parapet the refresher of leg B.
func timedCall(t *testing.T, l *rawLab, name string, se int) *rawCall {
	t.Helper()
	c := &rawCall{l: l, callID: fmt.Sprintf("%s-%d@raw", name, time.Now().UnixNano()), aSeq: 1, bTag: "btag" + name, bSeq: 100}
	c.inv = withHeaders(invite(l.a.addr(), l.aUDP.String(), c.callID, "application/sdp", plainSDP(4000, 1)),
		"Supported: timer", fmt.Sprintf("Session-Expires: %d;refresher=uac", se), "Allow: INVITE, ACK, BYE, UPDATE")
	l.a.send(l.aUDP, c.inv)
	c.bInv = l.b.must("INVITE at B", isReq("INVITE"))
	c.bFrom = c.bInv.from
	if got := hv(c.bInv.text, "Session-Expires"); got != fmt.Sprint(se) || !strings.Contains(hv(c.bInv.text, "Supported"), "timer") {
		t.Errorf("INVITE to B: Session-Expires %q, Supported %q", got, hv(c.bInv.text, "Supported"))
	}
	l.b.send(c.bFrom, withHeaders(reply(c.bInv.text, 200, "OK", c.bTag, l.b.addr(), plainSDP(5000, 1)),
		fmt.Sprintf("Session-Expires: %d;refresher=uac", se), "Require: timer", "Allow: INVITE, ACK, BYE, UPDATE"))
	l.b.must("ACK for B's 200", isReq("ACK"))
	res := c.aFinal()
	if !strings.HasPrefix(res, "SIP/2.0 200") || hv(res, "Session-Expires") != fmt.Sprintf("%d;refresher=uac", se) ||
		hv(res, "Require") != "timer" {
		t.Fatalf("A's 200: %s\nSession-Expires %q Require %q", firstLine(res), hv(res, "Session-Expires"), hv(res, "Require"))
	}
	c.aAck(1)
	return c
}

// answerUpdates has B answer parapet's refreshes (UPDATE) with 200 until
// stop is closed; it returns how many it answered.
func answerUpdates(c *rawCall, se int, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		count := 0
		for {
			select {
			case <-stop:
				n <- count
				return
			default:
			}
			m := c.l.b.wait(100*time.Millisecond, c.atB(isReq("UPDATE")))
			if m == nil {
				continue
			}
			count++
			c.l.b.send(m.from, withHeaders(reply(m.text, 200, "OK", "", c.l.b.addr(), ""),
				fmt.Sprintf("Session-Expires: %d;refresher=uac", se), "Require: timer"))
		}
	}()
	return n
}

// A call survives three session intervals: the caller refreshes leg A
// with UPDATE, parapet refreshes leg B with UPDATE, and each refresh is
// answered on its own leg.
func TestSessionTimerRefreshes(t *testing.T) {
	const se = 2
	l := newRawLab(t, shortTimers(se*time.Second))
	c := timedCall(t, l, "refresh", se)
	stop := make(chan struct{})
	updates := answerUpdates(c, se, stop)
	end := time.Now().Add(3*se*time.Second + 500*time.Millisecond)
	for seq := 2; time.Now().Before(end); seq++ {
		<-time.After(se * time.Second / 3) // pacing, as a refresher does: well within the half interval
		l.a.send(l.aUDP, withHeaders(c.aRequest("UPDATE", seq, ""), fmt.Sprintf("Session-Expires: %d;refresher=uac", se), "Supported: timer"))
		res := l.a.must("200 to A's UPDATE", func(m string) bool { return isRes(200, "UPDATE")(m) && cseqOf(m) == seq })
		if hv(res.text, "Session-Expires") != fmt.Sprintf("%d;refresher=uac", se) {
			t.Errorf("200 to A's refresh: Session-Expires %q", hv(res.text, "Session-Expires"))
		}
		c.aSeq = seq
	}
	close(stop)
	if n := <-updates; n < 5 {
		t.Errorf("parapet refreshed leg B %d times in 3 intervals, want at least 5", n)
	}
	if n := l.srv.Stats().CallsActive; n != 1 {
		t.Fatalf("%d calls active after 3 session intervals", n)
	}
	if n := l.b.count(c.atB(isReq("INVITE"))); n != 1 {
		t.Errorf("B got %d INVITEs: a refresh of leg A must stay on leg A", n)
	}
	c.hangUpFromA(t, c.aSeq+1)
}

// A caller that stops refreshing has its call ended before the session
// expires (RFC 4028 section 10): BYE on both legs, and the record says
// the session timer expired.
func TestSessionTimerExpires(t *testing.T) {
	const se = 2
	l := newRawLab(t, shortTimers(se*time.Second))
	c := timedCall(t, l, "expire", se)
	stop := make(chan struct{})
	defer close(stop)
	answerUpdates(c, se, stop)
	start := time.Now()
	bye := l.a.wait(3*se*time.Second, c.atA(isReq("BYE")))
	if bye == nil {
		t.Fatal("no BYE to a caller that stopped refreshing")
	}
	if d := time.Since(start); d > se*time.Second {
		t.Errorf("BYE after %v, want before the %ds interval ran out", d, se)
	}
	l.a.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
	byeB := l.b.must("BYE to B", c.atB(isReq("BYE")))
	l.b.send(byeB.from, reply(byeB.text, 200, "OK", "", "", ""))
	wantRecord(t, l.record(), compliance.DispositionTimeout, 200,
		"session timer expired on leg a: no session refresh within 2s (RFC 4028)")
}

// A session interval below the zone's minimum gets 422 with Min-SE, and
// the record says why.
func TestSessionIntervalTooSmall(t *testing.T) {
	l := newRawLab(t) // the defaults: 90 s minimum
	callID := fmt.Sprintf("short-%d@raw", time.Now().UnixNano())
	inv := withHeaders(invite(l.a.addr(), l.aUDP.String(), callID, "application/sdp", plainSDP(4000, 1)),
		"Supported: timer", "Session-Expires: 60")
	l.a.send(l.aUDP, inv)
	res := l.a.must("422", isRes(422, "INVITE"))
	if hv(res.text, "Min-SE") != "90" {
		t.Errorf("422 Min-SE %q, want 90", hv(res.text, "Min-SE"))
	}
	(&rawCall{l: l, callID: callID}).ackNon2xx(res.text)
	wantRecord(t, l.record(), compliance.DispositionRejected, 422,
		"session interval 1m0s is below the zone's minimum 1m30s (RFC 4028)")
	if n := l.b.count(isReq("INVITE")); n != 0 {
		t.Errorf("B got %d INVITEs", n)
	}
}

// An UPDATE with an SDP offer mid-call is judged and bridged as a
// re-INVITE's: the other leg gets a re-INVITE with parapet's offer, and
// the UPDATE's 200 carries parapet's answer, with no ACK.
func TestUpdateReoffer(t *testing.T) {
	l := newRawLab(t)
	c := l.establish("upd")
	l.a.send(l.aUDP, c.aRequest("UPDATE", 2, plainSDP(4100, 2)))
	re := l.b.must("re-INVITE at B", c.atB(func(m string) bool { return isReq("INVITE")(m) && tagOf(hv(m, "To")) != "" }))
	if !strings.Contains(re.text, "m=audio ") {
		t.Fatalf("re-INVITE without an offer:\n%s", re.text)
	}
	l.b.send(re.from, reply(re.text, 200, "OK", "", l.b.addr(), plainSDP(5100, 2)))
	l.b.must("ACK for B's 200", c.atB(isReq("ACK")))
	res := l.a.must("200 to the UPDATE", func(m string) bool { return isRes(200, "UPDATE")(m) && cseqOf(m) == 2 })
	if !strings.Contains(res.text, "m=audio ") || hv(res.text, "Content-Type") != "application/sdp" {
		t.Errorf("200 to the UPDATE has no answer:\n%s", res.text)
	}
	// A policy refusal is the re-INVITE's: an offer dropping a stream.
	l.a.send(l.aUDP, c.aRequest("UPDATE", 3, "v=0\r\no=raw 42 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"))
	l.a.must("400 to an UPDATE with no m= line", func(m string) bool { return isFinal("UPDATE")(m) && cseqOf(m) == 3 })
	c.hangUpFromA(t, 4)
}

// An UPDATE in the early dialog: without SDP it is answered 200; with an
// offer, 500 with Retry-After (RFC 3311 section 5.2), and the call goes on.
func TestUpdateEarlyDialog(t *testing.T) {
	l := newRawLab(t)
	c := l.invite("early")
	c.bReply(180, "Ringing")
	ring := l.a.must("180 at A", c.atA(isRes(180, "INVITE")))
	c.aTo, c.aCtc = hv(ring.text, "To"), uriOf(hv(ring.text, "Contact"))
	l.a.send(l.aUDP, c.aRequest("UPDATE", 2, ""))
	l.a.must("200 to the early UPDATE", func(m string) bool { return isRes(200, "UPDATE")(m) && cseqOf(m) == 2 })
	l.a.send(l.aUDP, c.aRequest("UPDATE", 3, plainSDP(4100, 2)))
	res := l.a.must("500 to an early offer", func(m string) bool { return isRes(500, "UPDATE")(m) && cseqOf(m) == 3 })
	if hv(res.text, "Retry-After") == "" {
		t.Error("500 without Retry-After")
	}
	c.bReply(200, "OK")
	l.b.must("ACK for B's 200", isReq("ACK"))
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("A's INVITE: %s", firstLine(res))
	}
	c.aAck(1)
	c.hangUpFromA(t, 4)
}

// rel100Call starts a call whose caller supports and requires 100rel,
// and has B send a reliable 180 (RSeq 7): parapet offers 100rel to B and
// PRACKs its 180. It returns A's reliable 180.
func rel100Call(t *testing.T, l *rawLab, name string) (*rawCall, *rawMsg) {
	t.Helper()
	c := &rawCall{l: l, callID: fmt.Sprintf("%s-%d@raw", name, time.Now().UnixNano()), aSeq: 1, bTag: "btag" + name, bSeq: 100}
	c.inv = withHeaders(invite(l.a.addr(), l.aUDP.String(), c.callID, "application/sdp", plainSDP(4000, 1)),
		"Supported: 100rel", "Require: 100rel")
	l.a.send(l.aUDP, c.inv)
	c.bInv = l.b.must("INVITE at B", isReq("INVITE"))
	c.bFrom = c.bInv.from
	if !strings.Contains(hv(c.bInv.text, "Supported"), "100rel") {
		t.Errorf("INVITE to B: Supported %q, want 100rel offered", hv(c.bInv.text, "Supported"))
	}
	l.b.send(c.bFrom, withHeaders(reply(c.bInv.text, 180, "Ringing", c.bTag, l.b.addr(), ""), "Require: 100rel", "RSeq: 7"))
	prack := l.b.must("PRACK at B", c.atB(isReq("PRACK")))
	if got := hv(prack.text, "RAck"); got != "7 1 INVITE" || tagOf(hv(prack.text, "To")) != c.bTag {
		t.Errorf("PRACK to B: RAck %q, To %q: want B's early dialog", got, hv(prack.text, "To"))
	}
	l.b.send(prack.from, reply(prack.text, 200, "OK", "", "", ""))
	ring := l.a.must("reliable 180 at A", c.atA(isRes(180, "INVITE")))
	if hv(ring.text, "Require") != "100rel" || hv(ring.text, "RSeq") == "" {
		t.Fatalf("180 to A is not reliable:\n%s", ring.text)
	}
	c.aTo, c.aCtc = hv(ring.text, "To"), uriOf(hv(ring.text, "Contact"))
	return c, ring
}

// 100rel end to end: offered to B because the caller supports it, B's
// reliable 180 PRACKed by parapet, parapet's to A PRACKed by A.
func TestRel100TowardCallee(t *testing.T) {
	l := newRawLab(t)
	c, ring := rel100Call(t, l, "rel")
	l.a.send(l.aUDP, withHeaders(c.aRequest("PRACK", 2, ""), "RAck: "+hv(ring.text, "RSeq")+" 1 INVITE"))
	l.a.must("200 to A's PRACK", isRes(200, "PRACK"))
	c.bReply(200, "OK")
	l.b.must("ACK for B's 200", isReq("ACK"))
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("A's INVITE: %s", firstLine(res))
	}
	c.aAck(1)
	c.hangUpFromA(t, 3)
}

// A reliable provisional response whose PRACK never comes ends the call
// with 500 after 64*T1 (RFC 3262 section 3): B is cancelled and the
// record says why.
func TestNoPrackEndsCall(t *testing.T) {
	l := newRawLab(t)
	c, _ := rel100Call(t, l, "noprack")
	cancel := l.b.wait(40*time.Second, isReq("CANCEL"))
	if cancel == nil {
		t.Fatal("B was not cancelled")
	}
	l.b.send(cancel.from, reply(cancel.text, 200, "OK", "", "", ""))
	c.bReply(487, "Request Terminated")
	final := l.a.must("final response to A", c.atA(isFinal("INVITE")))
	if !strings.HasPrefix(final.text, "SIP/2.0 500") {
		t.Fatalf("A's INVITE ended with %s, want 500", firstLine(final.text))
	}
	c.ackNon2xx(final.text)
	wantRecord(t, l.record(), compliance.DispositionFailed, 500,
		"no PRACK from the caller for a reliable provisional response within 64*T1 (RFC 3262 section 3)")
}

// Done when of issue 11: a call survives three session intervals with
// media both ways (SRTP toward the carrier). The caller (the PBX side)
// refreshes leg A with UPDATE; the carrier makes parapet the refresher
// of leg B, which it refreshes with re-INVITEs (the carrier allows no
// UPDATE).
func TestSessionRefreshMediaBothWays(t *testing.T) {
	const se = 2
	l := newLab(t, labOptions{sessionExpires: se * time.Second, carrierAnswer: sim.Answer{SessionExpires: se}})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{SessionExpires: se})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	exchange(t, caller, callee)
	end := time.Now().Add(3*se*time.Second + 500*time.Millisecond)
	for time.Now().Before(end) {
		<-time.After(se * time.Second / 3) // pacing, as a refresher does: well within the half interval
		code, got, err := caller.Refresh(ctx, se)
		if err != nil || code != 200 || got != fmt.Sprintf("%d;refresher=uac", se) {
			t.Fatalf("caller's refresh: %d %q %v", code, got, err)
		}
	}
	if n := callee.Reinvites(); n < 5 {
		t.Errorf("parapet refreshed leg B %d times in 3 intervals, want at least 5", n)
	}
	if n := caller.Reinvites(); n != 0 {
		t.Errorf("the caller got %d re-INVITEs: its refreshes must stay on its leg", n)
	}
	exchange(t, caller, callee)
	if n := l.srv.Stats().CallsActive; n != 1 {
		t.Fatalf("%d calls active after 3 session intervals", n)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.EndReason != "bye from a" {
		t.Errorf("record %s %q", c.Disposition, c.EndReason)
	}
}

// A caller that knows nothing of session timers: parapet grants the
// zone's interval with itself as the refresher (RFC 4028 section 9) and
// refreshes leg A with re-INVITEs (the caller allows no UPDATE); a callee
// that answers without Session-Expires has no session timer on leg B
// (section 7.2) and gets no refresh.
func TestSessionTimerParapetRefreshesCaller(t *testing.T) {
	const se = 2
	l := newRawLab(t, shortTimers(se*time.Second))
	c := l.invite("plaincaller")
	c.bReply(200, "OK")
	l.b.must("ACK for B's 200", isReq("ACK"))
	res := c.aFinal()
	if hv(res, "Session-Expires") != fmt.Sprintf("%d;refresher=uas", se) || hv(res, "Require") != "" {
		t.Fatalf("A's 200: Session-Expires %q Require %q", hv(res, "Session-Expires"), hv(res, "Require"))
	}
	c.aAck(1)
	for i := range 3 {
		re := l.a.must(fmt.Sprintf("refresh %d at A", i+1), c.atA(isReq("INVITE")))
		if hv(re.text, "Session-Expires") != fmt.Sprintf("%d;refresher=uac", se) || !strings.Contains(re.text, "m=audio ") {
			t.Fatalf("parapet's refresh:\n%s", re.text)
		}
		l.a.send(re.from, reply(re.text, 200, "OK", "", l.a.addr(), plainSDP(4000, 1)))
		l.a.must("ACK of the refresh", c.atA(isReq("ACK")))
	}
	if n := l.b.count(c.atB(isReq("INVITE"))); n != 1 {
		t.Errorf("B got %d INVITEs: it has no session timer", n)
	}
	if n := l.srv.Stats().CallsActive; n != 1 {
		t.Fatalf("%d calls active", n)
	}
	c.hangUpFromA(t, 2)
}

// A callee that finds parapet's session interval too small (422 with
// Min-SE) is invited again, once, asking for its minimum (RFC 4028
// section 7.4), and the call completes.
func TestCallee422InvitedAgain(t *testing.T) {
	l := newRawLab(t, shortTimers(2*time.Second))
	c := l.invite("callee422")
	l.b.send(c.bFrom, withHeaders(reply(c.bInv.text, 422, "Session Interval Too Small", c.bTag, "", ""), "Min-SE: 5"))
	again := l.b.must("the second INVITE at B", func(m string) bool {
		return isReq("INVITE")(m) && hv(m, "Call-ID") != hv(c.bInv.text, "Call-ID")
	})
	if got := hv(again.text, "Session-Expires"); got != "5" {
		t.Errorf("second INVITE: Session-Expires %q, want 5", got)
	}
	c.bInv, c.bFrom = again, again.from
	l.b.send(c.bFrom, withHeaders(reply(c.bInv.text, 200, "OK", c.bTag, l.b.addr(), plainSDP(5000, 1)),
		"Session-Expires: 5;refresher=uas", "Require: timer"))
	l.b.must("ACK for B's 200", c.atB(isReq("ACK")))
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("A's INVITE: %s", firstLine(res))
	}
	c.aAck(1)
	c.hangUpFromA(t, 2)
}

// An UPDATE with a new offer mid-call is judged and bridged as a
// re-INVITE is (TestReinvite): a downgrade from SRTP on the carrier leg
// gets 488 and the call keeps its media; an acceptable offer reaches the
// PBX as a re-INVITE, the carrier leg keeps SRTP (its keys taken from the
// new offer), and media flows both ways after it.
func TestUpdateReofferSRTP(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	if code, err := callee.Update(ctx, true); err != nil || code != 488 {
		t.Fatalf("downgrade UPDATE: %d %v, want 488", code, err)
	}
	if code, err := callee.Update(ctx, false); err != nil || code != 200 {
		t.Fatalf("carrier UPDATE: %d %v", code, err)
	}
	if n := caller.Reinvites(); n != 1 {
		t.Errorf("the PBX got %d re-INVITEs, want 1", n)
	}
	if ok, _ := callee.SRTP(); !ok {
		t.Error("carrier leg lost SRTP after the UPDATE")
	}
	errc := make(chan error, 2)
	go func() { errc <- caller.Send(ctx, 9000, 20, 2*time.Millisecond) }()
	go func() { errc <- callee.Send(ctx, 7000, 20, 2*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := callee.WaitIntact(ctx, packets+20); err != nil {
		t.Fatalf("carrier after the UPDATE: %+v", callee.Stats())
	}
	if err := caller.WaitIntact(ctx, packets+20); err != nil {
		t.Fatalf("PBX after the UPDATE: %+v", caller.Stats())
	}
	caller.Hangup(ctx)
	if c := l.sink.waitCalls(t, 1)[0]; c.Disposition != compliance.DispositionAnswered {
		t.Errorf("record %s %q", c.Disposition, c.EndReason)
	}
}
