package b2bua_test

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// Blind transfer asked from the carrier's side: the new leg goes into the
// carrier zone under its policy (TLS, SRTP keyed as the zone says, with
// fresh keys), and where the zone refuses transfer nothing is dialled.

// carrierPeer starts another peer of the carrier zone, like the lab's
// carrier: TLS with the lab "peer" certificate, SRTP.
func carrierPeer(t *testing.T, l *lab, name string, answer sim.Answer) *sim.Peer {
	t.Helper()
	z, err := certs.NewZone(certs.Options{Zone: "sim-" + name, MinVersion: tls.VersionTLS12,
		CertFile: l.pki.PeerCertFile, KeyFile: l.pki.PeerKeyFile, CAFile: l.pki.CAFile, VerifyPeer: true, ClientAuth: "request"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sim.New(sim.Config{Name: name, Transport: "tls", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		ServerTLS: z.ServerConfig(), ClientTLS: z.ClientConfig(), Answer: answer, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// sdesKeys are the inline keys of the a=crypto lines in a message.
var sdesKeys = regexp.MustCompile(`a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)`)

func inlineKeys(msg string) map[string]bool {
	keys := map[string]bool{}
	for _, m := range sdesKeys.FindAllStringSubmatch(msg, -1) {
		keys[m[1]] = true
	}
	return keys
}

// referFromCarrier has the carrier's session refer the call to peer c
// over TLS and waits for the transfer to complete: 202, then the
// referrer's BYE, with NOTIFYs 100 and 200 (the last one terminating the
// subscription). It returns the new carrier-side session.
func referFromCarrier(t *testing.T, referrer *sim.Session, c *sim.Peer, uri string) *sim.Session {
	t.Helper()
	ctx := ctxT(t)
	if st, err := referrer.Refer(ctx, uri); err != nil || st != 202 {
		t.Fatalf("REFER to %s: %d, %v; want 202", uri, st, err)
	}
	s := incoming(t, c)
	waitFor(t, 10*time.Second, "the referrer's BYE", func() bool { return referrer.Context().Err() != nil })
	if !notified(referrer, "SIP/2.0 100 Trying") || !notified(referrer, "SIP/2.0 200 OK") {
		t.Errorf("NOTIFYs: %+v", referrer.Notifies())
	}
	if n := referrer.Notifies(); len(n) == 0 || len(n[len(n)-1].State) < 10 || n[len(n)-1].State[:10] != "terminated" {
		t.Errorf("last NOTIFY: %+v, want Subscription-State terminated", n)
	}
	if tr := s.Transport(); tr != "TLS" {
		t.Errorf("the new leg's INVITE came over %s, want TLS", tr)
	}
	return s
}

// primeAt is sim.Prime with sequence numbers from first (and first+2000)
// up: the relay carries on the numbering of a source it saw before (a
// PBX whose numbers went back would be renumbered, and the sim, which
// checks payloads by number, would count them damaged).
func primeAt(t *testing.T, a, b *sim.Session, first uint16) {
	t.Helper()
	ctx := ctxT(t)
	seq, baseA, baseB := first, a.Stats().Intact, b.Stats().Intact
	waitFor(t, 10*time.Second, "media both ways on the new leg", func() bool {
		if err := a.Send(ctx, seq, 1, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(ctx, seq+2000, 1, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		seq++
		return a.Stats().Intact > baseA && b.Stats().Intact > baseB
	})
}

// checkCarrierTransfer checks the record of a call whose carrier leg (b)
// was transferred to peer c: legs a, b, b2; b2 in the carrier zone over
// TLS with a verified certificate, keyed with kx, and media both ways.
func checkCarrierTransfer(t *testing.T, rec *compliance.Call, c *sim.Peer, kx, end string) {
	t.Helper()
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	if tr := rec.Transfers[0]; tr.By != compliance.RoleB || tr.Outcome != compliance.TransferDone || tr.Status != 200 ||
		tr.Leg != "b2" || tr.Target == "" || tr.Target == "200" {
		t.Errorf("transfer: %+v", tr)
	}
	roles := []compliance.Role{}
	for _, g := range rec.Legs {
		roles = append(roles, g.Role)
	}
	// The replaced leg comes first (record.go).
	if fmt.Sprint(roles) != "[b a b2]" {
		t.Fatalf("legs: %v, want [b a b2]", roles)
	}
	b, b2 := leg(rec, compliance.RoleB), leg(rec, "b2")
	if b2.Zone != "carrier" || b2.Transport != "tls" || b2.Remote != c.Addr().String() || b2.CallID == "" || b2.CallID == b.CallID {
		t.Errorf("leg b2: zone %q transport %q remote %q (want %s), call-id %q (b's %q)",
			b2.Zone, b2.Transport, b2.Remote, c.Addr(), b2.CallID, b.CallID)
	}
	if b2.TLS == nil || b2.TLS.PeerCert == nil || !b2.TLS.PeerCert.Verified || b2.TLS.Version == "" {
		t.Errorf("leg b2 TLS: %+v", b2.TLS)
	}
	m := b2.Media
	if m == nil || m.KeyExchange != kx || m.SRTPSuite == "" || m.PacketsIn < packets || m.PacketsOut < packets ||
		m.AuthFailures != 0 || m.Unprotected != 0 {
		t.Errorf("leg b2 media: %+v", m)
	}
	// Each leg's counters are its own: b's the first carrier's (about
	// the packets of the first exchange), b2's the new peer's.
	if b.Media == nil || b.Media.PacketsIn < packets || b.Media.PacketsIn >= 2*packets || m == nil || m.PacketsIn >= 2*packets {
		t.Errorf("packets in: b %+v, b2 %+v; want each leg's own", b.Media, m)
	}
	if d := decision(rec, policy.RuleTransfer); d == nil || d.Verdict != policy.VerdictAllowed || d.Zone != "carrier" {
		t.Errorf("call.transfer decision: %+v", d)
	}
	if rec.Disposition != compliance.DispositionAnswered || rec.EndReason != end {
		t.Errorf("outcome: %s %q, want answered %q", rec.Disposition, rec.EndReason, end)
	}
}

// A carrier zone that allows transfer: the carrier's REFER (over TLS)
// puts another carrier peer in its place. The new leg is a TLS leg of the
// carrier zone, SDES-SRTP with keys of its own (not the first carrier
// leg's), audio flows PBX <-> new peer both ways, the PBX sees nothing.
func TestTransferFromCarrier(t *testing.T) {
	l := newLab(t, labOptions{carrierTransfer: true})
	c2 := carrierPeer(t, l, "carrier2", sim.Answer{})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)

	callee := referFromCarrier(t, carrier, c2, fmt.Sprintf("sips:200@%s", c2.Addr()))
	if ok, suite := callee.SRTP(); !ok || suite == "" {
		t.Errorf("new carrier leg: srtp %v suite %q", ok, suite)
	}
	// Fresh keys: parapet's offer to the new peer shares no key with
	// its offer to the first carrier (compared, never printed).
	first, fresh := inlineKeys(carrier.Dialog()), inlineKeys(callee.Dialog())
	if len(first) == 0 || len(fresh) == 0 {
		t.Fatalf("a=crypto keys: %d in the first offer, %d in the transfer's", len(first), len(fresh))
	}
	for k := range fresh {
		if first[k] {
			t.Error("the transfer's offer reuses a key of the first carrier leg")
		}
	}
	talkAgain(t, caller, callee, 9000)
	if st := callee.Stats(); st.PlainOnWire != 0 {
		t.Errorf("the new carrier peer received %d plaintext payloads", st.PlainOnWire)
	}
	if n := caller.Reinvites(); n != 0 {
		t.Errorf("the PBX got %d re-INVITEs", n)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the transfer target", callee)
	rec := l.sink.waitCalls(t, 1)[0]
	checkCarrierTransfer(t, rec, c2, "sdes", "bye from a")
	if b := leg(rec, compliance.RoleB); b.Media == nil || b.Media.KeyExchange != "sdes" {
		t.Errorf("leg b media: %+v", b.Media)
	}
}

// A carrier zone keyed with DTLS-SRTP: the transfer's new leg is keyed
// by a DTLS handshake of its own with the new peer (its certificate, not
// the first carrier's, in the record).
func TestTransferFromCarrierDTLS(t *testing.T) {
	l := newLab(t, labOptions{carrierTransfer: true, carrierZone: dtlsCarrier})
	c2 := carrierPeer(t, l, "carrier2", sim.Answer{})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	waitDTLS(t, ctx, carrier)
	exchangeDTLS(t, caller, carrier)

	callee := referFromCarrier(t, carrier, c2, fmt.Sprintf("sip:200@%s;transport=tls", c2.Addr()))
	offer := callee.Dialog()
	if callee.Profile() != "UDP/TLS/RTP/SAVP" || len(inlineKeys(offer)) != 0 {
		t.Errorf("the transfer's offer is %s, with %d SDES keys; want DTLS-SRTP only", callee.Profile(), len(inlineKeys(offer)))
	}
	waitDTLS(t, ctx, callee)
	primeAt(t, caller, callee, 3000)
	talkAgain(t, caller, callee, 9000)
	if err := callee.DTLSError(); err != nil {
		t.Errorf("the new peer's DTLS: %v", err)
	}
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the PBX", caller)
	rec := l.sink.waitCalls(t, 1)[0]
	checkCarrierTransfer(t, rec, c2, "dtls", "bye from b")
	b, b2 := leg(rec, compliance.RoleB), leg(rec, "b2")
	if b.Media == nil || b2.Media == nil || b2.Media.DTLSPeerCert == "" || b2.Media.DTLSRole == "" ||
		b2.Media.KeyingError != "" || b.Media.DTLSPeerCert == "" || b.Media.DTLSPeerCert == b2.Media.DTLSPeerCert {
		t.Fatalf("DTLS in the record: b %+v, b2 %+v; want each leg's own peer certificate", b.Media, b2.Media)
	}
}

// A carrier zone that refuses transfer (the default): the carrier's REFER
// gets 403, nothing is dialled, the call goes on, and the record says
// refused.
func TestTransferFromCarrierRefused(t *testing.T) {
	l := newLab(t, labOptions{transfer: true}) // the PBX may transfer; the carrier may not
	c2 := carrierPeer(t, l, "carrier2", sim.Answer{})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	if st, err := carrier.Refer(ctx, fmt.Sprintf("sips:200@%s", c2.Addr())); err != nil || st != 403 {
		t.Fatalf("REFER: %d, %v; want 403", st, err)
	}
	talkAgain(t, caller, carrier, 9000)
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the PBX", caller)
	if n := c2.Invites(); n != 0 {
		t.Errorf("the refused transfer dialled: %d INVITEs", n)
	}
	if n := len(carrier.Notifies()); n != 0 {
		t.Errorf("the refused referrer got %d NOTIFYs", n)
	}
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	if tr := rec.Transfers[0]; tr.By != compliance.RoleB || tr.Outcome != compliance.TransferRefused || tr.Status != 403 || tr.Leg != "" {
		t.Errorf("transfer: %+v", tr)
	}
	if d := decision(rec, policy.RuleTransfer); d == nil || d.Verdict != policy.VerdictRejected || d.Status != 403 || d.Zone != "carrier" {
		t.Errorf("call.transfer decision: %+v", d)
	}
	if len(rec.Legs) != 2 || rec.EndReason != "bye from b" {
		t.Errorf("legs %d, end %q", len(rec.Legs), rec.EndReason)
	}
}

// A transfer target that rings and never answers: when the ring timeout
// runs out parapet cancels it, the referrer gets NOTIFY "408 Request
// Timeout" (ending the subscription) and no BYE, the call goes on as it
// was, and the record says the transfer failed with 408.
func TestTransferTargetTimeout(t *testing.T) {
	t.Cleanup(b2bua.ShortenRingTimeout(time.Second))
	l := newLab(t, labOptions{carrierTransfer: true})
	c2 := carrierPeer(t, l, "carrier2", sim.Answer{Ring: 20 * time.Second})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	if st, err := carrier.Refer(ctx, fmt.Sprintf("sips:200@%s", c2.Addr())); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	waitFor(t, 10*time.Second, "NOTIFY 408", func() bool { return notified(carrier, "SIP/2.0 408 Request Timeout") })
	waitFor(t, 5*time.Second, "the target's CANCEL", func() bool { return c2.Cancelled() == 1 })
	n := carrier.Notifies()
	if len(n) != 2 || n[0].Frag != "SIP/2.0 100 Trying" || len(n[1].State) < 10 || n[1].State[:10] != "terminated" {
		t.Errorf("NOTIFYs: %+v", n)
	}
	if carrier.Context().Err() != nil {
		t.Fatal("the referrer's leg ended")
	}
	talkAgain(t, caller, carrier, 9000)
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the PBX", caller)
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	if tr := rec.Transfers[0]; tr.By != compliance.RoleB || tr.Outcome != compliance.TransferFailed || tr.Status != 408 || tr.Leg != "" {
		t.Errorf("transfer: %+v", tr)
	}
	if len(rec.Legs) != 2 || rec.EndReason != "bye from b" {
		t.Errorf("legs %d, end %q", len(rec.Legs), rec.EndReason)
	}
}

// The other party hangs up while the transfer's target rings: the call
// ends, parapet cancels the target (at once, not when the ring timeout
// runs out) and sends the referrer BYE (no final NOTIFY), and the record,
// written once the target's INVITE is settled, says the transfer failed
// with 487.
func TestTransferHangupWhileRinging(t *testing.T) {
	l := newLab(t, labOptions{carrierTransfer: true})
	c2 := carrierPeer(t, l, "carrier2", sim.Answer{Ring: 20 * time.Second})
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	if st, err := carrier.Refer(ctx, fmt.Sprintf("sips:200@%s", c2.Addr())); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	waitFor(t, 10*time.Second, "the target's INVITE", func() bool { return c2.Invites() == 1 })
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the referrer", carrier)
	waitFor(t, 10*time.Second, "the target's CANCEL", func() bool { return c2.Cancelled() == 1 })
	rec := l.sink.waitCalls(t, 1)[0]
	if len(rec.Transfers) != 1 || rec.Transfers[0].Outcome != compliance.TransferFailed || rec.Transfers[0].Status != 487 {
		t.Errorf("transfers: %+v", rec.Transfers)
	}
	if n := carrier.Notifies(); len(n) != 1 || n[0].Frag != "SIP/2.0 100 Trying" {
		t.Errorf("NOTIFYs: %+v, want only 100 Trying", n)
	}
	if len(rec.Legs) != 2 || rec.EndReason != "bye from a" {
		t.Errorf("legs %d, end %q", len(rec.Legs), rec.EndReason)
	}
}
