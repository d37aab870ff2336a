package b2bua_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// referReplaces is a Refer-To URI toward target asking it to replace the
// dialog id (RFC 3891), escaped as a URI header.
func referReplaces(target, id string) string {
	return target + "?Replaces=" + url.QueryEscape(id)
}

// A PBX phone with a carrier call through parapet completes an attended
// transfer: it REFERs with Replaces naming its consultation call with
// another PBX phone (a dialog parapet does not hold). That phone gets an
// INVITE carrying the Replaces as given, Require: replaces and the
// REFER's Referred-By; it answers, media flows carrier <-> the new phone
// both ways, the referrer gets BYE, and the record says the transfer was
// attended.
func TestAttendedTransferFromPBX(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)

	const consult = "consult-7f3a@pbx.example;to-tag=c-41;from-tag=a-17"
	st, err := caller.Refer(ctx, referReplaces(fmt.Sprintf("sip:200@%s", c.Addr()), consult))
	if err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	callee := incoming(t, c)
	if got := callee.InviteHeader("Replaces"); len(got) != 1 || got[0] != consult {
		t.Errorf("Replaces: %q, want %q", got, consult)
	}
	if got := callee.InviteHeader("Require"); !slices.Contains(got, "replaces") {
		t.Errorf("Require: %q, want replaces", got)
	}
	wantBy := fmt.Sprintf("<sip:pbx@%s>", l.pbx.Addr())
	if got := callee.InviteHeader("Referred-By"); len(got) != 1 || got[0] != wantBy {
		t.Errorf("Referred-By: %q, want %q", got, wantBy)
	}
	waitFor(t, 10*time.Second, "the referrer's BYE", func() bool { return caller.Context().Err() != nil })
	if !notified(caller, "SIP/2.0 200 OK") {
		t.Errorf("NOTIFYs: %+v", caller.Notifies())
	}
	talkAgain(t, carrier, callee, 9000)
	if n := carrier.Reinvites(); n != 0 {
		t.Errorf("carrier got %d re-INVITEs", n)
	}
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the target's BYE", func() bool { return callee.Context().Err() != nil })
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	tr := rec.Transfers[0]
	if tr.Kind != compliance.TransferAttended || tr.Outcome != compliance.TransferDone || tr.Leg != "a2" ||
		tr.ReferredBy == "" || tr.ReferredBy == "pbx" || tr.Target == "200" {
		t.Errorf("transfer: %+v", tr)
	}
	if len(rec.Legs) != 3 || rec.Legs[1].Role != "a2" || rec.Legs[1].Remote != c.Addr().String() {
		t.Errorf("legs: %+v", rec.Legs)
	}
	d := decision(rec, policy.RuleTransfer)
	if d == nil || d.Verdict != policy.VerdictAllowed || !strings.Contains(d.Reason, "attended") {
		t.Errorf("call.transfer decision: %+v", d)
	}
}

// A REFER whose Replaces does not parse gets 400; one naming a dialog
// parapet holds (here the referrer's own leg) gets 501: dialog ids do not
// cross parapet. The call goes on, and each refusal is recorded as an
// attended transfer refused.
func TestAttendedTransferRefused(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	callID, local, remote := caller.DialogID()
	target := fmt.Sprintf("sip:200@%s", c.Addr())
	for _, tc := range []struct {
		name, refer string
		want        int
	}{
		{"no from-tag", referReplaces(target, "abc@pbx;to-tag=1"), 400},
		{"no Call-ID", referReplaces(target, ";to-tag=1;from-tag=2"), 400},
		{"bad escape", target + "?Replaces=abc%ZZ", 400},
		{"parapet's dialog", referReplaces(target, fmt.Sprintf("%s;to-tag=%s;from-tag=%s", callID, remote, local)), 501},
	} {
		if st, err := caller.Refer(ctx, tc.refer); err != nil || st != tc.want {
			t.Errorf("%s: REFER %s: %d, %v; want %d", tc.name, tc.refer, st, err, tc.want)
		}
	}
	talkAgain(t, caller, carrier, 9000)
	if c.Invites() != 0 {
		t.Errorf("the target got %d INVITEs", c.Invites())
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 4 || len(rec.Legs) != 2 {
		t.Fatalf("transfers %+v, %d legs", rec.Transfers, len(rec.Legs))
	}
	for _, tr := range rec.Transfers {
		if tr.Kind != compliance.TransferAttended || tr.Outcome != compliance.TransferRefused {
			t.Errorf("transfer: %+v", tr)
		}
	}
}

// An INVITE carrying Replaces is never routed on (its dialog id would mean
// nothing beyond parapet): 481 when it names no dialog parapet holds, 400
// when it does not parse; naming a leg parapet holds but may not let it
// replace: 403 from another zone, 486 early-only for an answered call,
// 501 for a leg parapet originated toward the callee. Each is a rejected
// call whose call.transfer decision says why.
func TestInviteWithReplaces(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	inbound, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatal(err)
	}
	answering := incoming(t, l.pbx) // leg b of the inbound call, in the PBX zone
	dialog := func(s *sim.Session, early string) string {
		id, local, remote := s.DialogID()
		return fmt.Sprintf("%s;to-tag=%s;from-tag=%s%s", id, remote, local, early)
	}
	forged := func(s *sim.Session) string { // parapet's tag right, the peer's not
		id, _, remote := s.DialogID()
		return fmt.Sprintf("%s;to-tag=%s;from-tag=forged", id, remote)
	}
	for _, tc := range []struct {
		name, replaces string
		require        bool // with Require: replaces (no 420 then)
		want           int
	}{
		{"unknown dialog", "elsewhere-1@pbx;to-tag=1;from-tag=2", false, 481},
		{"another zone's leg", dialog(carrier, ""), true, 403},
		{"malformed", "abc@pbx;to-tag", false, 400},
		{"required, unknown", "elsewhere-2@pbx;to-tag=1;from-tag=2", true, 481},
		{"early-only", dialog(caller, ";early-only"), false, 486},
		{"leg b", dialog(answering, ""), false, 501},
		{"the peer's tag wrong", forged(caller), false, 481},
	} {
		hs := []sip.Header{sip.NewHeader("Replaces", tc.replaces)}
		if tc.require {
			hs = append(hs, sip.NewHeader("Require", "replaces"))
		}
		_, err := l.callOut(ctx, sim.CallOptions{Headers: hs})
		var rej *sim.Rejected
		if !errors.As(err, &rej) || rej.Status != tc.want {
			t.Errorf("%s: INVITE with Replaces %q: %v; want %d", tc.name, tc.replaces, err, tc.want)
		}
	}
	if n := l.carrier.Invites(); n != 1 {
		t.Errorf("the carrier got %d INVITEs, want 1 (the first call's)", n)
	}
	talkAgain(t, caller, carrier, 9000)
	talkAgain(t, inbound, answering, 12000)
	for _, s := range []*sim.Session{caller, inbound} {
		if err := s.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refused := 0
	for _, rec := range l.sink.waitCalls(t, 9) {
		d := decision(rec, policy.RuleTransfer)
		if d == nil {
			if len(rec.Transfers) != 0 || rec.Disposition != compliance.DispositionAnswered {
				t.Errorf("call: %s %+v", rec.Disposition, rec.Transfers)
			}
			continue
		}
		refused++
		if rec.Disposition != compliance.DispositionRejected || d.Stage != policy.StageAdmission || d.Status != rec.SIPStatus {
			t.Errorf("record: %s %d, decision %+v", rec.Disposition, rec.SIPStatus, d)
		}
	}
	if refused != 7 {
		t.Errorf("%d records with a call.transfer refusal, want 7", refused)
	}
}

// A REFER without Referred-By: the new leg's INVITE names the referrer
// itself (its number at its host), and the record has it pseudonymised.
func TestTransferReferredByReferrer(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{From: "+15551110000"})
	if err != nil {
		t.Fatal(err)
	}
	carrier := incoming(t, l.carrier)
	if st, err := caller.ReferFrom(ctx, fmt.Sprintf("sip:200@%s", c.Addr()), ""); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	callee := incoming(t, c)
	want := fmt.Sprintf("<sip:+15551110000@%s>", l.pbx.Addr())
	if got := callee.InviteHeader("Referred-By"); len(got) != 1 || got[0] != want {
		t.Errorf("Referred-By: %q, want %q", got, want)
	}
	if got := callee.InviteHeader("Replaces"); got != nil {
		t.Errorf("Replaces in a blind transfer: %q", got)
	}
	waitFor(t, 10*time.Second, "the referrer's BYE", func() bool { return caller.Context().Err() != nil })
	talkAgain(t, carrier, callee, 9000)
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	tr := rec.Transfers[0]
	if tr.Kind != compliance.TransferBlind || tr.Outcome != compliance.TransferDone || tr.ReferredBy != rec.Caller {
		t.Errorf("transfer: %+v (caller %s)", tr, rec.Caller)
	}
}

// The referrer's consultation call goes through parapet too (a PBX phone
// calling another through a route back into the PBX zone): its REFER on
// the carrier call names, in Replaces, its own leg of that call, which
// means nothing beyond parapet. parapet translates: it invites the
// consultation call's other party, with a Replaces naming parapet's other
// leg of that call as that party knows it. The target replaces that leg
// (here: hangs it up, as a phone would), the carrier call goes on to it,
// and both records say what happened.
func TestAttendedTransferTranslated(t *testing.T) {
	c := phone(t, "c")
	hairpin := func(r *topology.Route, _ *lab) {
		r.To = "pbx"
		r.Target = topology.Target{Host: "127.0.0.1", Port: int(c.Addr().Port()), Transport: policy.TransportUDP}
	}
	l := newLab(t, labOptions{transfer: true, outbound: hairpin})
	ctx := ctxT(t)
	carrier, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatal(err)
	}
	phoneX := incoming(t, l.pbx) // the PBX phone's leg of the carrier call
	phoneY, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cY := incoming(t, c) // the consultation call, as its other party has it
	yCallID, yLocal, yRemote := phoneY.DialogID()
	refer := referReplaces(fmt.Sprintf("sip:%s", l.pbxUDP), fmt.Sprintf("%s;to-tag=%s;from-tag=%s", yCallID, yRemote, yLocal))
	if st, err := phoneX.Refer(ctx, refer); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	cX := incoming(t, c)
	cCallID, cLocal, cRemote := cY.DialogID()
	if want, got := fmt.Sprintf("%s;to-tag=%s;from-tag=%s", cCallID, cLocal, cRemote), cX.InviteHeader("Replaces"); len(got) != 1 || got[0] != want {
		t.Errorf("Replaces: %q, want %q", got, want)
	}
	if err := cY.Hangup(ctx); err != nil { // the replaced dialog ends
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the referrer's BYEs", func() bool {
		return phoneX.Context().Err() != nil && phoneY.Context().Err() != nil
	})
	talkAgain(t, carrier, cX, 9000)
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	recs := l.sink.waitCalls(t, 2)
	x, y := recs[0], recs[1]
	if len(y.Transfers) != 0 {
		x, y = y, x
	}
	if len(x.Transfers) != 1 || x.Transfers[0].Kind != compliance.TransferAttended || x.Transfers[0].Outcome != compliance.TransferDone {
		t.Errorf("transfers: %+v", x.Transfers)
	}
	if d := decision(x, policy.RuleTransfer); d == nil || !strings.Contains(d.Reason, "names leg a of call "+y.ID) {
		t.Errorf("call.transfer decision: %+v", d)
	}
	if y.EndReason != "bye from b" || len(y.Transfers) != 0 {
		t.Errorf("consultation call: %q, %+v", y.EndReason, y.Transfers)
	}
}

// A transferor that sends its REFER to the transfer target (not to
// parapet) names its own dialog with parapet in the Replaces, and the
// target's INVITE with that Replaces reaches parapet: it takes the
// replaced leg's place (RFC 3891 section 3). The carrier call goes on to
// the new phone, the transferor gets BYE, and the record lists the new
// leg and a transfer of kind replaced.
func TestInviteReplacesLeg(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	callID, local, remote := caller.DialogID()
	replaces := sip.NewHeader("Replaces", fmt.Sprintf("%s;to-tag=%s;from-tag=%s", callID, remote, local))
	by := sip.NewHeader("Referred-By", "<sip:pbx@"+l.pbx.Addr().String()+">")
	cs, err := c.Call(ctx, fmt.Sprintf("sip:+15551230000@%s", l.pbxUDP), sim.CallOptions{Headers: []sip.Header{replaces, by}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replaced leg's BYE", func() bool { return caller.Context().Err() != nil })
	talkAgain(t, carrier, cs, 9000)
	if n := carrier.Reinvites(); n != 0 || l.carrier.Invites() != 1 {
		t.Errorf("carrier: %d re-INVITEs, %d INVITEs", n, l.carrier.Invites())
	}
	if err := cs.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the carrier's BYE", func() bool { return carrier.Context().Err() != nil })
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	tr := rec.Transfers[0]
	if tr.Kind != compliance.TransferReplaced || tr.By != compliance.RoleA || tr.Leg != "a2" || tr.Outcome != compliance.TransferDone ||
		tr.ReferredBy == "" || tr.ReferredBy == "pbx" {
		t.Errorf("transfer: %+v", tr)
	}
	if len(rec.Legs) != 3 || rec.Legs[1].Role != "a2" || rec.Legs[1].Remote != c.Addr().String() || rec.Legs[1].Media == nil {
		t.Errorf("legs: %+v", rec.Legs)
	}
	if rec.Disposition != compliance.DispositionAnswered || rec.EndReason != "bye from a" {
		t.Errorf("outcome: %s %q", rec.Disposition, rec.EndReason)
	}
	if n := len(l.sink.calls()); n != 1 {
		t.Errorf("%d records, want 1 (the replacing INVITE is no call of its own)", n)
	}
}
