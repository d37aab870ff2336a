package b2bua_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// A PBX phone sends an INVITE without SDP: the carrier offers SRTP in its
// 200, parapet offers plain RTP to the PBX in its own 200, and carries the
// PBX's answer (from its ACK) to the carrier as an SRTP answer in the ACK.
func TestDelayedOfferOutbound(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Offer: sim.CallOptions{SRTP: true,
		Suites: []string{"AEAD_AES_256_GCM", "AES_CM_128_HMAC_SHA1_80"}}}})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if err := callee.AnswerError(); err != nil {
		t.Fatalf("carrier's answer in the ACK: %v", err)
	}
	if ok, suite := callee.SRTP(); !ok || suite != "AEAD_AES_256_GCM" {
		t.Errorf("carrier leg srtp=%v %s, want AEAD_AES_256_GCM", ok, suite)
	}
	if ok, _ := caller.SRTP(); ok {
		t.Error("PBX leg negotiated SRTP; parapet should have offered it plain RTP")
	}
	exchange(t, caller, callee)
	if st := callee.Stats(); st.PlainOnWire != 0 {
		t.Errorf("carrier received %d plaintext payloads", st.PlainOnWire)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.EndReason != "bye from a" {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	var carrierOffer bool
	for _, d := range c.Decisions {
		carrierOffer = carrierOffer || d.Stage == policy.StageOffer && d.Zone == "carrier" && d.Verdict == policy.VerdictAllowed
	}
	if !carrierOffer {
		t.Errorf("no decision on the carrier's offer: %+v", c.Decisions)
	}
	if b := leg(c, compliance.RoleB); b.Media == nil || b.Media.SRTPSuite != "AEAD_AES_256_GCM" || b.Media.PacketsIn < packets {
		t.Errorf("leg b media %+v", b.Media)
	}
	if a := leg(c, compliance.RoleA); a.Media == nil || a.Media.KeyExchange != "none" || a.Media.PacketsIn < packets {
		t.Errorf("leg a media %+v", a.Media)
	}
}

// The reverse: the carrier sends an offerless INVITE, the PBX offers plain
// RTP, and parapet upgrades: its offer to the carrier is SRTP.
func TestDelayedOfferInboundUpgrade(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	if ok, suite := caller.SRTP(); !ok || suite == "" {
		t.Errorf("carrier leg srtp=%v %q: parapet's offer in its 200 was not SRTP", ok, suite)
	}
	exchange(t, caller, callee)
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	if d := decision(c, policy.RuleUpgrade); d == nil || d.Zone != "pbx" {
		t.Errorf("no upgrade decision on the PBX's offer: %+v", c.Decisions)
	}
}

// A carrier that offers plain RTP in its 200 is refused: parapet still
// ACKs it (declining every stream) and hangs it up; the PBX gets 488.
func TestDelayedOfferCarrierOffersPlain(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	_, err := l.callOut(ctx, sim.CallOptions{Delayed: true})
	rej := wantRejected(t, err, 488)
	if !strings.Contains(rej.Warning, "requires SRTP") {
		t.Errorf("Warning %q", rej.Warning)
	}
	callee := incoming(t, l.carrier)
	waitEnded(t, "carrier hung up after its refused offer", callee)
	// The ACK parapet owed the carrier declines the offered stream.
	var acks [][]byte
	poll(5*time.Second, func() bool {
		acks = l.carrier.AckBodies(callee.CallID())
		return len(acks) > 0
	})
	if len(acks) != 1 || !strings.Contains(string(acks[0]), "\r\nm=audio 0 RTP/AVP ") {
		t.Errorf("ACKs to the carrier: %q, want one declining the audio stream", acks)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 {
		t.Errorf("record %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	if d := decision(c, policy.RuleSRTPRequired); d == nil || d.Zone != "carrier" {
		t.Errorf("decisions %+v", c.Decisions)
	}
}

// A carrier caller that answers parapet's SRTP offer with plain RTP in its
// ACK: both legs are hung up and the record says why.
func TestDelayedOfferCallerAnswersPlain(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Plain: true}})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	waitEnded(t, "both legs hung up after the refused answer", caller, callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || !strings.Contains(c.EndReason, "caller's answer refused") {
		t.Errorf("record %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	if d := decision(c, policy.RuleAnswerSRTPRequired); d == nil || d.Zone != "carrier" {
		t.Errorf("decisions %+v", c.Decisions)
	}
}
