package b2bua_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// phone starts another PBX phone (UDP, plain RTP) on loopback.
func phone(t *testing.T, name string) *sim.Peer {
	t.Helper()
	p, err := sim.New(sim.Config{Name: name, Transport: "udp", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// talkAgain sends packets both ways between a and b, with sequence
// numbers from first, and waits until each got them all intact on top of
// what it had.
func talkAgain(t *testing.T, a, b *sim.Session, first uint16) {
	t.Helper()
	ctx := ctxT(t)
	baseA, baseB := a.Stats().Intact, b.Stats().Intact
	errc := make(chan error, 2)
	go func() { errc <- a.Send(ctx, first, packets, 2*time.Millisecond) }()
	go func() { errc <- b.Send(ctx, first+2000, packets, 2*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WaitIntact(ctx, baseA+packets); err != nil {
		t.Fatalf("%+v", a.Stats())
	}
	if err := b.WaitIntact(ctx, baseB+packets); err != nil {
		t.Fatalf("%+v", b.Stats())
	}
}

func notified(s *sim.Session, frag string) bool {
	for _, n := range s.Notifies() {
		if n.Frag == frag {
			return true
		}
	}
	return false
}

// A REFER from the PBX phone moves the carrier call to another PBX phone
// (blind transfer, RFC 3515): 202, NOTIFY 100 then 200, BYE to the
// referrer, media carrier <-> the new phone both ways, and the carrier
// sees nothing (no re-INVITE).
func TestTransferFromPBX(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)

	st, err := caller.Refer(ctx, fmt.Sprintf("sip:200@%s", c.Addr()))
	if err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	callee := incoming(t, c)
	select {
	case <-caller.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the referrer got no BYE")
	}
	if !notified(caller, "SIP/2.0 100 Trying") || !notified(caller, "SIP/2.0 200 OK") {
		t.Errorf("NOTIFYs: %+v", caller.Notifies())
	}
	if n := caller.Notifies(); len(n) == 0 || n[len(n)-1].State[:10] != "terminated" {
		t.Errorf("last NOTIFY: %+v, want Subscription-State terminated", n)
	}
	talkAgain(t, carrier, callee, 9000)
	if n := carrier.Reinvites(); n != 0 {
		t.Errorf("carrier got %d re-INVITEs", n)
	}
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-callee.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the transfer target got no BYE")
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	tr := rec.Transfers[0]
	if tr.By != compliance.RoleA || tr.Outcome != compliance.TransferDone || tr.Leg != "a2" || tr.Target == "200" || tr.Target == "" {
		t.Errorf("transfer: %+v", tr)
	}
	roles := []compliance.Role{}
	for _, g := range rec.Legs {
		roles = append(roles, g.Role)
	}
	if fmt.Sprint(roles) != "[a a2 b]" {
		t.Fatalf("legs: %v, want [a a2 b]", roles)
	}
	if a2 := rec.Legs[1]; a2.Zone != "pbx" || a2.Remote != c.Addr().String() || a2.CallID == "" || a2.Media == nil ||
		a2.Media.Profile != "RTP/AVP" {
		t.Errorf("leg a2: %+v", a2)
	}
	if d := decision(rec, policy.RuleTransfer); d == nil || d.Verdict != policy.VerdictAllowed {
		t.Errorf("call.transfer decision: %+v", d)
	}
	if rec.Disposition != compliance.DispositionAnswered || rec.EndReason != "bye from b" {
		t.Errorf("outcome: %s %q", rec.Disposition, rec.EndReason)
	}
}

// Where the zone refuses transfer, a REFER gets 403 and the call goes on
// untouched.
func TestTransferRefused(t *testing.T) {
	l := newLab(t, labOptions{})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	st, err := caller.Refer(ctx, fmt.Sprintf("sip:200@%s", c.Addr()))
	if err != nil || st != 403 {
		t.Fatalf("REFER: %d, %v; want 403", st, err)
	}
	talkAgain(t, caller, carrier, 9000)
	if c.Invites() != 0 || carrier.Reinvites() != 0 {
		t.Errorf("invites to c: %d, re-INVITEs to the carrier: %d", c.Invites(), carrier.Reinvites())
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 || rec.Transfers[0].Outcome != compliance.TransferRefused || rec.Transfers[0].Status != 403 {
		t.Errorf("transfers: %+v", rec.Transfers)
	}
	if d := decision(rec, policy.RuleTransfer); d == nil || d.Verdict != policy.VerdictRejected || d.Status != 403 {
		t.Errorf("call.transfer decision: %+v", d)
	}
	if len(rec.Legs) != 2 || rec.EndReason != "bye from a" {
		t.Errorf("legs %d, end %q", len(rec.Legs), rec.EndReason)
	}
}

// A target that refuses leaves the call as it was: NOTIFY with its
// status, no BYE to the referrer, media as before.
func TestTransferTargetRefuses(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c, err := sim.New(sim.Config{Name: "c", Transport: "udp", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Logger: discard(), Answer: sim.Answer{Status: 486}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	st, err := caller.Refer(ctx, fmt.Sprintf("sip:200@%s", c.Addr()))
	if err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	if !poll(10*time.Second, func() bool { return notified(caller, "SIP/2.0 486 Busy Here") }) {
		t.Fatalf("NOTIFYs: %+v", caller.Notifies())
	}
	talkAgain(t, caller, carrier, 9000)
	if err := caller.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 || rec.Transfers[0].Outcome != compliance.TransferFailed || rec.Transfers[0].Status != 486 {
		t.Errorf("transfers: %+v", rec.Transfers)
	}
}

// Even where the zone allows transfer, a REFER is refused when its target
// is outside the zone's peers (403: parapet never calls out of the zone
// for a REFER); the call goes on. (Attended transfers:
// transfer_attended_test.go.)
func TestTransferTargetChecked(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	for _, tc := range []struct {
		target string
		want   int
	}{
		{"sip:200@192.0.2.1:5060", 403},
		{"tel:+15550100", 403},
		{"sip:200@example.com", 403},
	} {
		if st, err := caller.Refer(ctx, tc.target); err != nil || st != tc.want {
			t.Errorf("REFER to %s: %d, %v; want %d", tc.target, st, err, tc.want)
		}
	}
	talkAgain(t, caller, carrier, 9000)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 3 || len(rec.Legs) != 2 {
		t.Errorf("transfers %+v, %d legs", rec.Transfers, len(rec.Legs))
	}
}

// Session timers (RFC 4028) go on across a transfer: the replaced leg's
// timer no longer runs, and the new leg's is refreshed, so a call with a
// short session interval outlives several intervals after the transfer.
func TestTransferSessionTimer(t *testing.T) {
	l := newLab(t, labOptions{transfer: true, sessionExpires: 2 * time.Second})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	if st, err := caller.Refer(ctx, fmt.Sprintf("sip:200@%s", c.Addr())); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	callee := incoming(t, c)
	// The transfer is done (and the relay side moved to C) when the
	// referrer gets its BYE: media sent before then may be lost.
	waitFor(t, 5*time.Second, "the referrer's BYE", func() bool { return caller.Context().Err() != nil })
	// Each round with new sequence numbers: the carrier's leg is SRTP,
	// which drops replays.
	for first, end := uint16(9000), time.Now().Add(5*time.Second); time.Now().Before(end) && carrier.Context().Err() == nil; first += packets {
		talkAgain(t, carrier, callee, first)
	}
	select {
	case <-carrier.Context().Done():
		t.Fatalf("the call ended: %q", l.sink.waitCalls(t, 1)[0].EndReason)
	case <-callee.Context().Done():
		t.Fatal("the call ended")
	default:
	}
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if rec.EndReason != "bye from a" {
		t.Errorf("end: %q", rec.EndReason)
	}
}
