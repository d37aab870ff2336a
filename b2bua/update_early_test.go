package b2bua_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// An UPDATE with a new offer in the early dialog (RFC 3311 section 5.1),
// played by simulated peers: the carrier calls the PBX requiring 100rel,
// gets parapet's reliable 183 with its answer, PRACKs it and sends an
// UPDATE with new SDES keys (or, refused, plain RTP/AVP) while the PBX
// holds its answer.

// earlyUpdateCall runs such a call: pbx says how the PBX answers (its
// 2xx held until the UPDATE is answered), eu what the caller's UPDATE
// offers. It returns the UPDATE's status and both ends of the call.
func earlyUpdateCall(t *testing.T, pbx sim.Answer, eu sim.EarlyUpdate) (*lab, int, *sim.Session, *sim.Session) {
	t.Helper()
	hold := make(chan struct{})
	pbx.Early, pbx.Hold = true, hold
	l := newLab(t, labOptions{pbxAnswer: pbx})
	ctx := ctxT(t)
	status := make(chan int, 1)
	eu.Done = func(code int) { status <- code }
	type result struct {
		s   *sim.Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Rel100: true, EarlyUpdate: &eu})
		done <- result{s, err}
	}()
	var code int
	select {
	case code = <-status:
	case r := <-done:
		t.Fatalf("the call ended before the early UPDATE: %v", r.err)
	case <-time.After(15 * time.Second):
		t.Fatal("no early UPDATE")
	}
	close(hold)
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the call was not answered")
	}
	if r.err != nil {
		t.Fatalf("call after the early UPDATE: %v", r.err)
	}
	t.Cleanup(func() { r.s.Hangup(context.Background()) })
	return l, code, r.s, incoming(t, l.pbx)
}

// reoffers are the call's decisions at the re-offer stage.
func reoffers(c *compliance.Call) []policy.Decision {
	var out []policy.Decision
	for _, d := range c.Decisions {
		if d.Stage == policy.StageReoffer {
			out = append(out, d)
		}
	}
	return out
}

// hangUpRecord ends the call from the caller and returns its record.
func hangUpRecord(t *testing.T, l *lab, caller *sim.Session) *compliance.Call {
	t.Helper()
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return l.sink.waitCalls(t, 1)[0]
}

// The callee's 183 is unreliable, so its early dialog carries no offer:
// the caller's new keys concern its leg alone, and parapet answers the
// UPDATE itself. Once the call is answered media flows both ways, the
// caller encrypting with the UPDATE's keys.
func TestEarlyUpdateAnsweredAlone(t *testing.T) {
	l, code, caller, callee := earlyUpdateCall(t, sim.Answer{}, sim.EarlyUpdate{})
	if code != 200 {
		t.Fatalf("early UPDATE got %d, want 200", code)
	}
	if n := callee.Updates(); n != 0 {
		t.Errorf("the callee got %d UPDATEs: the change was the caller's leg's alone", n)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 1 || ds[0].Verdict != policy.VerdictAllowed || ds[0].Zone != "carrier" {
		t.Errorf("re-offer decisions %+v, want one allowed in zone carrier", ds)
	}
}

// The callee's 183 is reliable and it allows UPDATE: parapet bridges the
// caller's early offer to the callee's early dialog as an UPDATE, and
// answers the caller with the callee's answer.
func TestEarlyUpdateBridged(t *testing.T) {
	l, code, caller, callee := earlyUpdateCall(t, sim.Answer{Rel100: true}, sim.EarlyUpdate{})
	if code != 200 {
		t.Fatalf("early UPDATE got %d, want 200", code)
	}
	if n := callee.Updates(); n != 1 {
		t.Errorf("the callee got %d UPDATEs, want the bridged one", n)
	}
	if n := callee.Pracks(); n != 1 {
		t.Errorf("the callee got %d PRACKs for its reliable 183, want 1", n)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 1 || ds[0].Verdict != policy.VerdictAllowed {
		t.Errorf("re-offer decisions %+v, want one allowed", ds)
	}
}

// An early offer of plain RTP/AVP from the carrier, whose zone requires
// SRTP, is refused 488 as a re-INVITE's would be; the record shows the
// decision, and the call goes on with the keys it had.
func TestEarlyUpdateRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		pbx  sim.Answer
	}{{"alone", sim.Answer{}}, {"bridgeable", sim.Answer{Rel100: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			l, code, caller, callee := earlyUpdateCall(t, tc.pbx, sim.EarlyUpdate{Plain: true})
			if code != 488 {
				t.Fatalf("plain early UPDATE got %d, want 488", code)
			}
			if n := callee.Updates(); n != 0 {
				t.Errorf("the callee got %d UPDATEs for a refused offer", n)
			}
			exchange(t, caller, callee)
			rec := hangUpRecord(t, l, caller)
			ds := reoffers(rec)
			if len(ds) != 1 || ds[0].Verdict != policy.VerdictRejected || ds[0].Status != 488 || ds[0].Zone != "carrier" {
				t.Fatalf("re-offer decisions %+v, want one rejected with 488 in zone carrier", ds)
			}
			if ds[0].Rule != policy.RuleSRTPRequired && ds[0].Rule != policy.RuleDowngrade {
				t.Errorf("refused by rule %q, want %s or %s", ds[0].Rule, policy.RuleSRTPRequired, policy.RuleDowngrade)
			}
			if rec.Disposition != compliance.DispositionAnswered {
				t.Errorf("disposition %s, want answered", rec.Disposition)
			}
		})
	}
}

// An early offer that changes what the callee must take (the caller
// going sendonly) while the callee's early dialog cannot carry it (its
// 183 was unreliable): 500 with Retry-After (RFC 3311 section 5.2),
// nothing changed and no decision recorded; the call is answered and
// media flows as before.
func TestEarlyUpdateNotCarried(t *testing.T) {
	l, code, caller, callee := earlyUpdateCall(t, sim.Answer{}, sim.EarlyUpdate{Direction: "sendonly"})
	if code != 500 {
		t.Fatalf("early UPDATE got %d, want 500", code)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 0 {
		t.Errorf("re-offer decisions %+v for an offer that changed nothing", ds)
	}
}

// After parapet PRACKed the callee's reliable 180, its ACK to the
// callee's 200 carries the INVITE's CSeq (RFC 3261 section 13.2.2.4), not
// the PRACK's, and its BYE a CSeq above the PRACK's.
func TestAckAfterPrackHasInviteCSeq(t *testing.T) {
	l := newRawLab(t)
	c, ring := rel100Call(t, l, "ackseq")
	l.a.send(l.aUDP, withHeaders(c.aRequest("PRACK", 2, ""), "RAck: "+hv(ring.text, "RSeq")+" 1 INVITE"))
	l.a.must("200 to A's PRACK", isRes(200, "PRACK"))
	c.bReply(200, "OK")
	if ack := l.b.must("ACK for B's 200", isReq("ACK")); hv(ack.text, "CSeq") != "1 ACK" {
		t.Errorf("ACK to B: CSeq %q, want the INVITE's (1 ACK)", hv(ack.text, "CSeq"))
	}
	if res := c.aFinal(); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("A's INVITE: %s", firstLine(res))
	}
	c.aAck(1)
	l.a.send(l.aUDP, c.aRequest("BYE", 3, ""))
	l.a.must("200 to A's BYE", isRes(200, "BYE"))
	bye := l.b.must("BYE to B", isReq("BYE"))
	if got := hv(bye.text, "CSeq"); got != "3 BYE" {
		t.Errorf("BYE to B: CSeq %q, want 3 BYE (after the PRACK's 2)", got)
	}
	l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
	wantRecord(t, l.record(), compliance.DispositionAnswered, 200, "bye from a")
}
