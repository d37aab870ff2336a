package b2bua_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// The INVITE with Replaces that takes a leg's place (replacesin.go): its
// offer is judged against the call's media and the zone's policy, and
// keyed afresh with its own peer.

// replacing has peer c call parapet's PBX address with a Replaces naming
// the dialog of caller (the PBX phone's leg of a call through parapet),
// as a transfer target would, and a Referred-By.
func replacing(ctx context.Context, l *lab, c *sim.Peer, caller *sim.Session, o sim.CallOptions) (*sim.Session, error) {
	callID, local, remote := caller.DialogID()
	o.Headers = append(o.Headers, sip.NewHeader("Replaces", fmt.Sprintf("%s;to-tag=%s;from-tag=%s", callID, remote, local)),
		sip.NewHeader("Referred-By", "<sip:pbx@"+l.pbx.Addr().String()+">"))
	return c.Call(ctx, fmt.Sprintf("sip:+15551230000@%s", l.pbxUDP), o)
}

// refusedReplacing checks that the replacing INVITE got want and that the
// call went on as it was: media both ways, nothing for the carrier, one
// record of the call (no transfer, two legs) and one of the refused
// INVITE (rejected, its call.transfer decision with the status and a
// reason containing why).
func refusedReplacing(t *testing.T, l *lab, err error, caller, carrier *sim.Session, want int, why string) {
	t.Helper()
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != want {
		t.Fatalf("replacing INVITE: %v; want %d", err, want)
	}
	talkAgain(t, caller, carrier, 9000)
	if n := carrier.Reinvites(); n != 0 || caller.Context().Err() != nil {
		t.Errorf("carrier: %d re-INVITEs; the replaced leg ended: %v", n, caller.Context().Err())
	}
	if err := caller.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := l.sink.waitCalls(t, 2)
	call, refused := recs[0], recs[1]
	if len(call.Legs) == 1 {
		call, refused = refused, call
	}
	if len(call.Transfers) != 0 || len(call.Legs) != 2 || call.Disposition != compliance.DispositionAnswered {
		t.Errorf("the call: %s, legs %d, transfers %+v", call.Disposition, len(call.Legs), call.Transfers)
	}
	d := decision(refused, policy.RuleTransfer)
	if refused.Disposition != compliance.DispositionRejected || refused.SIPStatus != want || d == nil || d.Status != want ||
		!strings.Contains(d.Reason, why) {
		t.Errorf("the refused INVITE: %s %d, decision %+v; want rejected %d, %q", refused.Disposition, refused.SIPStatus, d, want, why)
	}
}

// The call runs a format (96, with the PBX phone and the carrier each
// offering it) that the replacing INVITE's offer lacks: the relay passes
// formats as they are, so the new peer could not decode what the carrier
// sends. 488, and the call goes on.
func TestInviteReplacesLacksFormat(t *testing.T) {
	l := newLab(t, labOptions{transfer: true, extraFormats: 1})
	c := phone(t, "c") // PCMU and telephone-event only
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	_, err := replacing(ctx, l, c, caller, sim.CallOptions{})
	refusedReplacing(t, l, err, caller, carrier, 488, "lacks format 96")
}

// A PBX zone that requires SRTP: a replacing INVITE offering plain RTP is
// refused by the zone's media policy like a first offer would be (488,
// the policy's own decision in the refused INVITE's record too), and the
// call goes on.
func TestInviteReplacesPolicyRefused(t *testing.T) {
	l := newLab(t, labOptions{transfer: true, pbxZone: func(z *policy.Zone) {
		z.SRTP = policy.RequirementRequire
		z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS}
	}})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{DTLS: true}) // no SDES over UDP
	if err != nil {
		t.Fatal(err)
	}
	carrier := incoming(t, l.carrier)
	waitDTLS(t, ctx, caller)
	exchangeDTLS(t, caller, carrier)
	_, err = replacing(ctx, l, c, caller, sim.CallOptions{})
	refusedReplacing(t, l, err, caller, carrier, 488, "the offer is refused")
	for _, rec := range l.sink.calls() {
		if len(rec.Legs) != 1 {
			continue
		}
		refusals := 0
		for _, d := range rec.Decisions {
			if d.Verdict == policy.VerdictRejected && d.Rule != policy.RuleTransfer {
				refusals++
			}
		}
		if refusals == 0 {
			t.Errorf("the refused INVITE's record has no decision of the media policy: %+v", rec.Decisions)
		}
	}
}

// A PBX zone keyed with DTLS-SRTP: the replacing INVITE's leg runs a DTLS
// handshake of its own with the new peer (its certificate in the record,
// not the replaced phone's), and audio flows carrier <-> new peer both
// ways; the replaced phone gets BYE.
func TestInviteReplacesDTLS(t *testing.T) {
	l := newLab(t, labOptions{transfer: true, pbxZone: func(z *policy.Zone) {
		z.SRTP = policy.RequirementRequire
		z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS}
	}})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	carrier := incoming(t, l.carrier)
	waitDTLS(t, ctx, caller)
	exchangeDTLS(t, caller, carrier)
	cs, err := replacing(ctx, l, c, caller, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatalf("replacing INVITE: %v", err)
	}
	waitFor(t, 10*time.Second, "the replaced leg's BYE", func() bool { return caller.Context().Err() != nil })
	if cs.Profile() != "UDP/TLS/RTP/SAVP" || len(inlineKeys(cs.Dialog())) != 0 {
		t.Errorf("the answer is %s with %d SDES keys; want DTLS-SRTP only", cs.Profile(), len(inlineKeys(cs.Dialog())))
	}
	waitDTLS(t, ctx, cs)
	// The carrier's numbers go on from the first exchange's (5000 up).
	primeAt(t, carrier, cs, 6000)
	talkAgain(t, carrier, cs, 9000)
	if err := cs.DTLSError(); err != nil {
		t.Errorf("the new peer's DTLS: %v", err)
	}
	if n := carrier.Reinvites(); n != 0 {
		t.Errorf("carrier got %d re-INVITEs", n)
	}
	if err := cs.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", carrier)
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 || rec.Transfers[0].Kind != compliance.TransferReplaced || rec.Transfers[0].Outcome != compliance.TransferDone {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	a, a2 := leg(rec, compliance.RoleA), leg(rec, "a2")
	if a == nil || a2 == nil || a.Media == nil || a2.Media == nil {
		t.Fatalf("legs: %+v", rec.Legs)
	}
	m := a2.Media
	if m.KeyExchange != "dtls" || m.SRTPSuite == "" || m.DTLSPeerCert == "" || m.DTLSRole == "" || m.KeyingError != "" ||
		m.PacketsIn < packets || m.PacketsOut < packets || m.AuthFailures != 0 || m.Unprotected != 0 {
		t.Errorf("leg a2 media: %+v", m)
	}
	// Each leg's counters are its own: a's the replaced phone's (the
	// first exchange and its priming), a2's the new peer's.
	if a.Media.PacketsIn < packets || a.Media.PacketsIn >= 2*packets || m.PacketsIn >= 2*packets {
		t.Errorf("packets in: a %+v, a2 %+v; want each leg's own", a.Media, m)
	}
	if a.Media.DTLSPeerCert == "" || a.Media.DTLSPeerCert == m.DTLSPeerCert {
		t.Errorf("DTLS peer certificates: a %q, a2 %q; want each leg's own", a.Media.DTLSPeerCert, m.DTLSPeerCert)
	}
}
