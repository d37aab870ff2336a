package b2bua_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// dtlsCarrier keys the lab's carrier zone with DTLS-SRTP only.
func dtlsCarrier(z *policy.Zone) { z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS} }

// waitDTLS waits for the handshake of a sim session that runs DTLS-SRTP.
func waitDTLS(t *testing.T, ctx context.Context, s *sim.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.WaitDTLS(ctx); err != nil {
		t.Fatalf("DTLS-SRTP handshake at the sim: %v", err)
	}
}

// exchangeDTLS primes the media path and then, like exchange, sends
// packets both ways and checks every one of them arrives intact. Like
// exchange it uses fixed sequence numbers: once per call (SRTP replay
// protection drops them the second time).
func exchangeDTLS(t *testing.T, caller, callee *sim.Session) {
	t.Helper()
	ctx := ctxT(t)
	if err := sim.Prime(ctx, caller, callee); err != nil {
		t.Fatal(err)
	}
	baseCaller, baseCallee := caller.Stats().Intact, callee.Stats().Intact
	errc := make(chan error, 2)
	go func() { errc <- caller.Send(ctx, 1000, packets, 2*time.Millisecond) }()
	go func() { errc <- callee.Send(ctx, 5000, packets, 2*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := callee.WaitIntact(ctx, baseCallee+packets); err != nil {
		t.Fatalf("callee: %+v (had %d intact before)", callee.Stats(), baseCallee)
	}
	if err := caller.WaitIntact(ctx, baseCaller+packets); err != nil {
		t.Fatalf("caller: %+v (had %d intact before)", caller.Stats(), baseCaller)
	}
	for name, s := range map[string]*sim.Session{"caller": caller, "callee": callee} {
		if st := s.Stats(); st.Damaged != 0 {
			t.Errorf("%s: %d damaged packets", name, st.Damaged)
		}
	}
}

// The PBX (plain RTP over UDP) calls out to a carrier zone keyed with
// DTLS-SRTP: parapet offers UDP/TLS/RTP/SAVP with actpass and its
// fingerprint; the carrier answers active (it starts the handshake) or
// passive (parapet does); media flows both ways, encrypted toward the
// carrier, and the record says the carrier leg was keyed by DTLS.
func TestDTLSOutboundUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    sim.Answer
		simSetup  string // the carrier's a=setup in its answer
		wantSuite string
	}{
		{"carrier active", sim.Answer{}, "active", "AEAD_AES_256_GCM"},
		{"carrier passive", sim.Answer{DTLSSetup: "passive", Suite: "AES_CM_128_HMAC_SHA1_80"}, "passive", "AES_CM_128_HMAC_SHA1_80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, labOptions{carrierZone: dtlsCarrier, carrierAnswer: tc.answer})
			ctx := ctxT(t)
			caller, callee := l.connect(t, ctx)

			offer := callee.Dialog() // the INVITE the carrier received
			for _, want := range []string{"m=audio ", " UDP/TLS/RTP/SAVP ", "a=setup:actpass\r\n", "a=fingerprint:sha-256 ", "a=rtcp-mux\r\n"} {
				if !strings.Contains(offer, want) {
					t.Errorf("parapet's offer to the carrier lacks %q:\n%s", want, offer)
				}
			}
			if strings.Contains(offer, "a=crypto") {
				t.Errorf("parapet's DTLS-SRTP offer carries SDES keys:\n%s", offer)
			}
			if got := callee.Profile(); got != "UDP/TLS/RTP/SAVP" {
				t.Errorf("carrier was offered %s", got)
			}
			if got := callee.DTLSSetup(); got != tc.simSetup {
				t.Errorf("carrier's DTLS role %q, want %q", got, tc.simSetup)
			}
			answer := caller.Dialog() // the 200 OK the PBX received
			if got := caller.Profile(); got != "RTP/AVP" || strings.Contains(answer, "a=fingerprint") || strings.Contains(answer, "a=setup") {
				t.Errorf("PBX got a %s answer with DTLS attributes:\n%s", got, answer)
			}

			waitDTLS(t, ctx, callee)
			if ok, suite := callee.SRTP(); !ok || suite != tc.wantSuite {
				t.Errorf("carrier leg: srtp=%v suite=%q, want %s", ok, suite, tc.wantSuite)
			}
			if ok, _ := caller.SRTP(); ok {
				t.Error("PBX leg negotiated SRTP; it offered plain RTP")
			}
			exchangeDTLS(t, caller, callee)
			if st := callee.Stats(); st.PlainOnWire != 0 {
				t.Errorf("carrier received %d plaintext payloads", st.PlainOnWire)
			}
			if err := callee.DTLSError(); err != nil {
				t.Errorf("carrier's DTLS error after the call: %v", err)
			}
			if err := caller.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, "BYE to the carrier", callee)

			c := l.sink.waitCalls(t, 1)[0]
			if c.Disposition != compliance.DispositionAnswered || c.SIPStatus != 200 || c.EndReason != "bye from a" {
				t.Errorf("disposition %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
			}
			if d := decision(c, policy.RuleUpgrade); d == nil || d.Verdict != policy.VerdictUpgraded {
				t.Errorf("no upgrade decision in %+v", c.Decisions)
			}
			a, b := leg(c, compliance.RoleA), leg(c, compliance.RoleB)
			if a == nil || b == nil || a.Media == nil || b.Media == nil {
				t.Fatalf("legs: %+v", c.Legs)
			}
			if a.Media.KeyExchange != "none" || a.Media.Profile != "RTP/AVP" || a.Media.SRTPSuite != "" {
				t.Errorf("leg a media: %+v", a.Media)
			}
			if b.Media.Profile != "UDP/TLS/RTP/SAVP" || b.Media.KeyExchange != "dtls" || b.Media.SRTPSuite != tc.wantSuite ||
				b.Media.KeyingError != "" || !b.Media.RTCPMux {
				t.Errorf("leg b media: %+v", b.Media)
			}
			if b.Media.PacketsIn < packets || b.Media.PacketsOut < packets || b.Media.AuthFailures != 0 {
				t.Errorf("leg b counters: %+v", b.Media)
			}
			wantRole := map[string]string{"active": "server", "passive": "client"}[tc.simSetup]
			if b.Media.DTLSRole != wantRole || b.Media.DTLSPeerCert != l.carrier.Fingerprint() {
				t.Errorf("leg b DTLS evidence: role %q cert %q, want %q and the carrier's %q",
					b.Media.DTLSRole, b.Media.DTLSPeerCert, wantRole, l.carrier.Fingerprint())
			}
			if got := control(b, policy.ControlEncryption); got != policy.StatusSatisfied {
				t.Errorf("leg b (e)(2)(ii) = %s", got)
			}
		})
	}
}

// The carrier calls in with a DTLS-SRTP offer (actpass) into a carrier
// zone that allows it: parapet answers passive, the carrier starts the
// handshake, and the PBX gets plain RTP.
func TestDTLSInbound(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: func(z *policy.Zone) {
		z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}
	}})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	answer := caller.Dialog() // parapet's 200 OK to the carrier
	for _, want := range []string{" UDP/TLS/RTP/SAVP ", "a=setup:passive\r\n", "a=fingerprint:sha-256 "} {
		if !strings.Contains(answer, want) {
			t.Errorf("parapet's answer to the carrier lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "a=crypto") {
		t.Errorf("parapet's DTLS-SRTP answer carries SDES keys:\n%s", answer)
	}
	if got := caller.DTLSSetup(); got != "active" {
		t.Errorf("carrier's role %q, want active (parapet answered passive)", got)
	}
	if got := callee.Profile(); got != "RTP/AVP" || strings.Contains(callee.Dialog(), "a=fingerprint") {
		t.Errorf("PBX was offered %s:\n%s", got, callee.Dialog())
	}
	waitDTLS(t, ctx, caller)
	if ok, suite := caller.SRTP(); !ok || suite != "AEAD_AES_256_GCM" {
		t.Errorf("carrier leg srtp=%v %q, want AEAD_AES_256_GCM (parapet's first suite)", ok, suite)
	}
	exchangeDTLS(t, caller, callee)
	if st := caller.Stats(); st.PlainOnWire != 0 {
		t.Errorf("carrier received %d plaintext payloads", st.PlainOnWire)
	}
	if st := callee.Stats(); st.PlainOnWire < packets {
		t.Errorf("PBX received %d plain payloads, want at least %d", st.PlainOnWire, packets)
	}
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", caller)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.EndReason != "bye from b" {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	a, b := leg(c, compliance.RoleA), leg(c, compliance.RoleB)
	if a == nil || b == nil || a.Media == nil || b.Media == nil {
		t.Fatalf("legs: %+v", c.Legs)
	}
	if a.Zone != "carrier" || a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite != "AEAD_AES_256_GCM" ||
		a.Media.Profile != "UDP/TLS/RTP/SAVP" || a.Media.KeyingError != "" || a.Media.PacketsIn < packets {
		t.Errorf("leg a: zone %s media %+v", a.Zone, a.Media)
	}
	if a.Media.DTLSRole != "server" || a.Media.DTLSPeerCert != l.carrier.Fingerprint() {
		t.Errorf("leg a DTLS evidence: role %q cert %q, want server and the carrier's %q",
			a.Media.DTLSRole, a.Media.DTLSPeerCert, l.carrier.Fingerprint())
	}
	if b.Media.KeyExchange != "none" || b.Media.SRTPSuite != "" {
		t.Errorf("leg b media: %+v", b.Media)
	}
	if got := control(a, policy.ControlEncryption); got != policy.StatusSatisfied {
		t.Errorf("leg a (e)(2)(ii) = %s", got)
	}
}

// A DTLS-SRTP offer into a carrier zone that allows only SDES is refused
// with 488, and nothing reaches the PBX.
func TestDTLSInboundNotAllowed(t *testing.T) {
	l := newLab(t, labOptions{})
	_, err := l.callIn(ctxT(t), sim.CallOptions{DTLS: true})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 488 {
		t.Fatalf("err = %v, want 488", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 {
		t.Errorf("record: %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	if d := decision(c, policy.RuleKeyExchange); d == nil || d.Verdict != policy.VerdictRejected || d.Zone != "carrier" {
		t.Errorf("decisions: %+v", c.Decisions)
	}
	select {
	case s := <-l.pbx.Incoming():
		t.Errorf("the PBX got call %s", s.CallID())
	case <-time.After(100 * time.Millisecond):
	}
}

// A carrier whose certificate does not match the fingerprint in its SDP:
// parapet's handshake with it fails whichever side starts it, and parapet
// hangs the call up on both legs.
func TestDTLSWrongFingerprint(t *testing.T) {
	for _, setup := range []string{"active", "passive"} {
		t.Run(setup, func(t *testing.T) {
			l := newLab(t, labOptions{carrierZone: dtlsCarrier,
				carrierAnswer: sim.Answer{DTLSSetup: setup, DTLSWrongFingerprint: true}})
			ctx := ctxT(t)
			caller, callee := l.connect(t, ctx)
			if strings.Contains(callee.Dialog(), l.carrier.Fingerprint()) {
				t.Fatal("the INVITE to the carrier carries the carrier's own fingerprint")
			}
			waitEnded(t, "parapet hangs up after the failed handshake", caller, callee)
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := callee.WaitDTLS(wctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the carrier's handshake: %v, want a failure", err)
			}
			if ok, _ := callee.SRTP(); ok {
				t.Error("the carrier got SRTP keys")
			}
			c := l.sink.waitCalls(t, 1)[0]
			if c.Disposition != compliance.DispositionFailed || !strings.Contains(c.EndReason, "DTLS-SRTP handshake") {
				t.Errorf("record: %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
			}
			b := leg(c, compliance.RoleB)
			if b == nil || b.Media == nil {
				t.Fatalf("legs: %+v", c.Legs)
			}
			if b.Media.KeyExchange != "dtls" || b.Media.SRTPSuite != "" || b.Media.KeyingError == "" {
				t.Errorf("leg b media: %+v", b.Media)
			}
			if !strings.Contains(b.Media.KeyingError, "fingerprint") && !strings.Contains(c.EndReason, "fingerprint") {
				t.Errorf("neither the keying error %q nor the end reason %q says the fingerprint did not match",
					b.Media.KeyingError, c.EndReason)
			}
		})
	}
}

// A re-INVITE from the PBX during a DTLS-SRTP call: parapet re-offers to
// the carrier with the same fingerprint, the carrier keeps its role, and
// the association (and its keys) goes on: no new handshake, media still
// flows.
func TestDTLSReinviteKeepsAssociation(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: dtlsCarrier})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	waitDTLS(t, ctx, callee)
	exchangeDTLS(t, caller, callee)
	_, suite := callee.SRTP()

	status, err := caller.Reinvite(ctx, false)
	if err != nil || status != 200 {
		t.Fatalf("re-INVITE: %d %v", status, err)
	}
	if n := callee.Reinvites(); n != 1 {
		t.Fatalf("the carrier got %d re-INVITEs, want 1", n)
	}
	if ok, s := callee.SRTP(); !ok || s != suite || callee.DTLSError() != nil {
		t.Errorf("carrier after the re-INVITE: srtp=%v %q err=%v", ok, s, callee.DTLSError())
	}
	before := callee.Stats()
	beforeCaller := caller.Stats()
	ctx2 := ctxT(t)
	if err := caller.Send(ctx2, 2000, packets, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := callee.Send(ctx2, 7000, packets, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := callee.WaitIntact(ctx2, before.Intact+packets); err != nil {
		t.Errorf("carrier after the re-INVITE: %+v (before %+v)", callee.Stats(), before)
	}
	if err := caller.WaitIntact(ctx2, beforeCaller.Intact+packets); err != nil {
		t.Errorf("PBX after the re-INVITE: %+v (before %+v)", caller.Stats(), beforeCaller)
	}
	if st := callee.Stats(); st.Damaged != 0 || st.PlainOnWire != 0 {
		t.Errorf("carrier: %+v", st)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("record: %s %q", c.Disposition, c.EndReason)
	}
	if b := leg(c, compliance.RoleB); b == nil || b.Media == nil || b.Media.KeyExchange != "dtls" || b.Media.SRTPSuite != suite {
		t.Errorf("leg b: %+v", b)
	}
}

// Delayed offer: the PBX sends an INVITE without SDP and the carrier
// offers DTLS-SRTP in its 200; parapet answers it in the ACK.
func TestDTLSDelayedOfferOutbound(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: dtlsCarrier, carrierAnswer: sim.Answer{Offer: sim.CallOptions{DTLS: true}}})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if err := callee.AnswerError(); err != nil {
		t.Fatalf("carrier's answer in the ACK: %v", err)
	}
	if got := callee.DTLSSetup(); got != "active" {
		t.Errorf("carrier's role %q, want active (parapet answers passive)", got)
	}
	waitDTLS(t, ctx, callee)
	exchangeDTLS(t, caller, callee)
	if st := callee.Stats(); st.PlainOnWire != 0 {
		t.Errorf("carrier received %d plaintext payloads", st.PlainOnWire)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("record: %s %q", c.Disposition, c.EndReason)
	}
	if b := leg(c, compliance.RoleB); b == nil || b.Media == nil || b.Media.KeyExchange != "dtls" || b.Media.SRTPSuite != "AEAD_AES_256_GCM" {
		t.Errorf("leg b: %+v", b.Media)
	}
}

// The same failure on an inbound call: the carrier's offer names a
// fingerprint that is not its certificate's; parapet (the DTLS server)
// refuses the carrier's handshake and hangs up both legs.
func TestDTLSInboundWrongFingerprint(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: dtlsCarrier})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{DTLS: true, DTLSWrongFingerprint: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	waitEnded(t, "parapet hangs up after the failed handshake", caller, callee)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := caller.WaitDTLS(wctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the carrier's handshake: %v, want a failure", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || !strings.Contains(c.EndReason, "DTLS-SRTP handshake with leg a") {
		t.Errorf("record: %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	a := leg(c, compliance.RoleA)
	if a == nil || a.Media == nil || a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite != "" ||
		!strings.Contains(a.Media.KeyingError, "fingerprint") {
		t.Errorf("leg a: %+v", a)
	}
}

// After DTLS-SRTP calls end, in either role and failed or not, neither
// parapet nor the sims keep a goroutine of theirs (pion's handshake and
// read loops included), and parapet holds no call or media port.
func TestDTLSNoLeaks(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: dtlsCarrier})
	ctx := ctxT(t)
	warm, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitDTLS(t, ctx, incoming(t, l.carrier))
	warm.Hangup(ctx)
	l.sink.waitCalls(t, 1)
	base := goroutineBaseline(t, l)

	for i := range 4 {
		var caller, callee *sim.Session
		if i%2 == 0 {
			caller, callee = l.connect(t, ctx)
			waitDTLS(t, ctx, callee)
		} else {
			if caller, err = l.callIn(ctx, sim.CallOptions{DTLS: true}); err != nil {
				t.Fatal(err)
			}
			callee = incoming(t, l.pbx)
			waitDTLS(t, ctx, caller)
		}
		exchangeDTLS(t, caller, callee)
		if i < 2 {
			caller.Hangup(ctx)
		} else {
			callee.Hangup(ctx)
		}
		waitEnded(t, "hangup", caller, callee)
	}
	// One that fails its handshake.
	if _, err := l.callIn(ctx, sim.CallOptions{DTLS: true, DTLSWrongFingerprint: true}); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "failed handshake", incoming(t, l.pbx))
	l.sink.waitCalls(t, 6)
	waitIdle(t, l, base)
}

// The carrier sends early media (183 with its DTLS-SRTP answer) and its
// certificate does not match its fingerprint: the handshake fails before
// the call is answered, so parapet gives up on the carrier leg (CANCEL)
// and refuses the PBX's call instead of letting it ring on.
func TestDTLSEarlyMediaHandshakeFails(t *testing.T) {
	const ring = 5 * time.Second
	l := newLab(t, labOptions{carrierZone: dtlsCarrier,
		carrierAnswer: sim.Answer{Early: true, Ring: ring, DTLSSetup: "passive", DTLSWrongFingerprint: true}})
	ctx := ctxT(t)
	start := time.Now()
	_, err := l.callOut(ctx, sim.CallOptions{})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 488 || !strings.Contains(rej.Warning, "DTLS-SRTP key agreement failed") {
		t.Fatalf("PBX call: %v, want 488 saying the key agreement failed", err)
	}
	if d := time.Since(start); d >= ring {
		t.Errorf("the PBX waited %v, until the carrier's answer", d)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.SIPStatus != rej.Status || !strings.Contains(c.EndReason, "DTLS-SRTP handshake with leg b") {
		t.Errorf("record: %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	if b := leg(c, compliance.RoleB); b == nil || b.Media == nil || b.Media.KeyExchange != "dtls" || !strings.Contains(b.Media.KeyingError, "fingerprint") {
		t.Errorf("leg b: %+v", b)
	}
	// parapet cancelled the carrier's INVITE while it rang.
	waitFor(t, ring, "the carrier's INVITE to be cancelled", func() bool { return l.carrier.Cancelled() > 0 })
	select {
	case s := <-l.carrier.Incoming():
		t.Errorf("the carrier answered call %s", s.CallID())
	default:
	}
}

// On an inbound DTLS-SRTP call the carrier re-offers: keeping its role and
// fingerprint, the association goes on; a re-offer in plain RTP is a
// downgrade, refused with 488, and the SRTP media goes on.
func TestDTLSInboundReinvite(t *testing.T) {
	l := newLab(t, labOptions{carrierZone: dtlsCarrier})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	waitDTLS(t, ctx, caller)
	exchangeDTLS(t, caller, callee)
	seq := uint16(10000)
	flows := func(when string) {
		t.Helper()
		c0, p0 := caller.Stats(), callee.Stats()
		if err := caller.Send(ctx, seq, 20, 2*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := callee.Send(ctx, seq+20000, 20, 2*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		seq += 100
		if err := callee.WaitIntact(ctx, p0.Intact+20); err != nil {
			t.Fatalf("%s: PBX %+v", when, callee.Stats())
		}
		if err := caller.WaitIntact(ctx, c0.Intact+20); err != nil {
			t.Fatalf("%s: carrier %+v", when, caller.Stats())
		}
		if c1 := caller.Stats(); c1.Damaged != 0 || c1.PlainOnWire != 0 {
			t.Errorf("%s: carrier %+v", when, c1)
		}
	}
	if st, err := caller.Reinvite(ctx, false); err != nil || st != 200 {
		t.Fatalf("carrier re-INVITE keeping DTLS-SRTP: %d %v", st, err)
	}
	flows("after the carrier's re-INVITE")
	if st, err := caller.Reinvite(ctx, true); err != nil || st != 488 {
		t.Fatalf("carrier re-INVITE in plain RTP: %d %v, want 488", st, err)
	}
	flows("after the refused downgrade")
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("record: %s %q", c.Disposition, c.EndReason)
	}
	if d := decision(c, policy.RuleDowngrade); d == nil || d.Verdict != policy.VerdictRejected || d.Zone != "carrier" {
		t.Errorf("decisions: %+v", c.Decisions)
	}
	if a := leg(c, compliance.RoleA); a == nil || a.Media == nil || a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite != "AEAD_AES_256_GCM" {
		t.Errorf("leg a: %+v", a)
	}
}

// A carrier zone that lists dtls then sdes, toward a carrier that knows
// only SDES: the DTLS-SRTP offer gets 488, parapet offers SDES-SRTP in a
// new INVITE, and the call goes on; the record says so.
func TestKeyExchangeFallback(t *testing.T) {
	l := newLab(t, labOptions{
		carrierZone: func(z *policy.Zone) {
			z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS, policy.KeyExchangeSDES}
		},
		carrierAnswer: sim.Answer{RejectDTLS: true},
	})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if ok, suite := callee.SRTP(); !ok || callee.DTLSSetup() != "" {
		t.Errorf("carrier leg srtp=%v %s dtls=%q, want SDES-SRTP", ok, suite, callee.DTLSSetup())
	}
	if n := l.carrier.Invites(); n != 2 {
		t.Errorf("carrier got %d INVITEs, want 2 (DTLS-SRTP refused, then SDES-SRTP)", n)
	}
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || decision(c, policy.RuleKeyExchangeFallback) == nil {
		t.Errorf("record: %s %+v", c.Disposition, c.Decisions)
	}
	if b := leg(c, compliance.RoleB); b == nil || b.Media == nil || b.Media.KeyExchange != "sdes" {
		t.Errorf("leg b: %+v", b)
	}

	// A callee that refuses every offer: one try per key exchange, then 488.
	l2 := newLab(t, labOptions{
		carrierZone: func(z *policy.Zone) {
			z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS, policy.KeyExchangeSDES}
		},
		carrierAnswer: sim.Answer{Status: 488},
	})
	_, err = l2.callOut(ctx, sim.CallOptions{})
	wantRejected(t, err, 488)
	if n := l2.carrier.Invites(); n != 2 {
		t.Errorf("carrier got %d INVITEs, want 2", n)
	}
	if c := l2.sink.waitCalls(t, 1)[0]; c.Disposition != compliance.DispositionFailed || c.SIPStatus != 488 {
		t.Errorf("record: %s %d", c.Disposition, c.SIPStatus)
	}
}
