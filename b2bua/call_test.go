package b2bua_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

const packets = 100

// exchange sends packets both ways and checks every one arrives intact.
func exchange(t *testing.T, caller, callee *sim.Session) {
	t.Helper()
	ctx := ctxT(t)
	errc := make(chan error, 2)
	go func() { errc <- caller.Send(ctx, 1000, packets, 2*time.Millisecond) }()
	go func() { errc <- callee.Send(ctx, 5000, packets, 2*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := callee.WaitIntact(ctx, packets); err != nil {
		t.Fatalf("callee: %+v", callee.Stats())
	}
	if err := caller.WaitIntact(ctx, packets); err != nil {
		t.Fatalf("caller: %+v", caller.Stats())
	}
	for name, s := range map[string]*sim.Session{"caller": caller, "callee": callee} {
		if st := s.Stats(); st.Damaged != 0 {
			t.Errorf("%s: %d damaged packets", name, st.Damaged)
		}
	}
}

func decision(c *compliance.Call, rule string) *policy.Decision {
	for i := range c.Decisions {
		if c.Decisions[i].Rule == rule {
			return &c.Decisions[i]
		}
	}
	return nil
}

func leg(c *compliance.Call, role compliance.Role) *compliance.Leg {
	for i := range c.Legs {
		if c.Legs[i].Role == role {
			return &c.Legs[i]
		}
	}
	return nil
}

func control(l *compliance.Leg, ctl policy.Control) policy.FindingStatus {
	for _, f := range l.Controls {
		if f.Control == ctl {
			return f.Status
		}
	}
	return ""
}

// A phone on the PBX side (UDP, plain RTP) calls out to a carrier that
// requires TLS and SDES-SRTP: parapet upgrades the carrier leg.
func TestOutboundCallUpgradesToSRTP(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	if ok, suite := callee.SRTP(); !ok || suite != "AEAD_AES_256_GCM" {
		t.Fatalf("carrier leg: srtp=%v suite=%q, want SRTP with the zone's first suite", ok, suite)
	}
	if ok, _ := caller.SRTP(); ok {
		t.Fatal("PBX leg negotiated SRTP; it offered plain RTP")
	}
	exchange(t, caller, callee)
	if st := callee.Stats(); st.PlainOnWire != 0 {
		t.Errorf("carrier saw %d packets with plaintext payload on the wire", st.PlainOnWire)
	}
	w := l.carrier.Wire()
	if w.Cleartext || w.TLSRecords == 0 || w.TLSRecords != w.Conns {
		t.Errorf("carrier signaling wire: %+v, want only TLS", w)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", callee)

	calls := l.sink.waitCalls(t, 1)
	// A window in which no second record may follow the first.
	poll(100*time.Millisecond, func() bool { return len(l.sink.calls()) != 1 })
	if n := len(l.sink.calls()); n != 1 {
		t.Fatalf("%d call records, want exactly 1", n)
	}
	c := calls[0]
	if c.Disposition != compliance.DispositionAnswered || c.SIPStatus != 200 || c.EndReason != "bye from a" {
		t.Errorf("disposition %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	if d := decision(c, policy.RuleUpgrade); d == nil || d.Verdict != policy.VerdictUpgraded {
		t.Errorf("no upgrade decision in %+v", c.Decisions)
	}
	if c.Caller == "pbx" || !strings.HasPrefix(c.Caller, "hmac-sha256:") || !c.Pseudonymized {
		t.Errorf("caller not pseudonymised: %q", c.Caller)
	}
	a, b := leg(c, compliance.RoleA), leg(c, compliance.RoleB)
	if a == nil || b == nil {
		t.Fatalf("legs: %+v", c.Legs)
	}
	if a.Transport != "udp" || a.Media.KeyExchange != "none" || a.Media.Profile != "RTP/AVP" || a.TLS != nil {
		t.Errorf("leg a: %+v %+v", a, a.Media)
	}
	if b.Transport != "tls" || b.TLS == nil || b.TLS.Version != "TLS1.3" || b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified {
		t.Errorf("leg b tls: %+v", b.TLS)
	}
	if b.Media.Profile != "RTP/SAVP" || b.Media.KeyExchange != "sdes" || b.Media.SRTPSuite != "AEAD_AES_256_GCM" {
		t.Errorf("leg b media: %+v", b.Media)
	}
	if a.Media.PacketsIn < packets || a.Media.PacketsOut < packets || b.Media.PacketsIn < packets || b.Media.PacketsOut < packets {
		t.Errorf("counters a=%+v b=%+v", a.Media, b.Media)
	}
	if got := control(b, policy.ControlEncryption); got != policy.StatusSatisfied {
		t.Errorf("leg b (e)(2)(ii) = %s", got)
	}
	if got := control(a, policy.ControlEncryption); got != policy.StatusNotRequired {
		t.Errorf("leg a (e)(2)(ii) = %s", got)
	}
	checkEvidence(t, l, c, caller, callee)
}

// checkEvidence checks what a record tells an operator beyond the security
// facts, for an answered call from the lab PBX to the lab carrier: each
// peer's device, the codec, who issued the carrier's certificate and which
// CA vouched for it, the duration, and each leg's Call-ID as a keyed hash.
func checkEvidence(t *testing.T, l *lab, c *compliance.Call, caller, callee *sim.Session) {
	t.Helper()
	a, b := leg(c, compliance.RoleA), leg(c, compliance.RoleB)
	if a.UserAgent != l.pbx.Product() || b.UserAgent != l.carrier.Product() {
		t.Errorf("user agents a=%q b=%q, want %q and %q", a.UserAgent, b.UserAgent, l.pbx.Product(), l.carrier.Product())
	}
	if a.Media.Codec != "PCMU/8000" || b.Media.Codec != "PCMU/8000" {
		t.Errorf("codecs a=%q b=%q, want PCMU/8000", a.Media.Codec, b.Media.Codec)
	}
	caPEM, err := os.ReadFile(l.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.Raw)
	if pc := b.TLS.PeerCert; pc.Issuer != ca.Subject.String() || pc.AnchorSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("carrier certificate issuer %q anchor %q, want %q and the lab CA's %x", pc.Issuer, pc.AnchorSHA256, ca.Subject, sum)
	}
	if c.Answer == nil || c.DurationMS == nil || *c.DurationMS != c.End.Sub(*c.Answer).Milliseconds() || *c.DurationMS <= 0 {
		t.Errorf("duration %v for answer %v end %v", c.DurationMS, c.Answer, c.End)
	}
	p := compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	aID := hv(caller.Dialog(), "Call-ID") // parapet's 200 to the PBX: the PBX's Call-ID
	bID := hv(callee.Dialog(), "Call-ID") // parapet's INVITE to the carrier
	if aID == "" || bID == "" || aID == bID {
		t.Fatalf("Call-IDs a=%q b=%q", aID, bID)
	}
	if a.CallID != p.CallID(aID) || b.CallID != p.CallID(bID) || strings.Contains(a.CallID, aID) {
		t.Errorf("call ids a=%q b=%q, want the keyed hashes of %q and %q", a.CallID, b.CallID, aID, bID)
	}
}

// The reverse: the carrier calls in with SRTP, the PBX gets plain RTP.
func TestInboundCallFromCarrier(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Suites: []string{"AES_CM_128_HMAC_SHA1_80"}})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	if ok, suite := caller.SRTP(); !ok || suite != "AES_CM_128_HMAC_SHA1_80" {
		t.Fatalf("carrier leg srtp=%v %s", ok, suite)
	}
	exchange(t, caller, callee)
	if st := caller.Stats(); st.PlainOnWire != 0 {
		t.Errorf("carrier received %d plaintext payloads", st.PlainOnWire)
	}
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.EndReason != "bye from b" {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	a := leg(c, compliance.RoleA)
	if a.Zone != "carrier" || a.TLS == nil || a.Media.SRTPSuite != "AES_CM_128_HMAC_SHA1_80" {
		t.Errorf("leg a: %+v", a)
	}
	if a.TLS.PeerCert == nil || !a.TLS.PeerCert.Verified {
		t.Errorf("carrier client certificate not recorded as verified: %+v", a.TLS.PeerCert)
	}
}

// A carrier offer with plain RTP is refused with 488.
func TestCarrierPlainOfferRejected(t *testing.T) {
	l := newLab(t, labOptions{})
	_, err := l.callIn(ctxT(t), sim.CallOptions{})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 488 {
		t.Fatalf("err = %v, want 488", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 {
		t.Errorf("record: %s %d", c.Disposition, c.SIPStatus)
	}
	if d := decision(c, policy.RuleSRTPRequired); d == nil || d.Verdict != policy.VerdictRejected {
		t.Errorf("decisions: %+v", c.Decisions)
	}
}

// An offer whose only suite is NULL_HMAC_SHA1_80 is refused with 488.
func TestNullSuiteRejected(t *testing.T) {
	l := newLab(t, labOptions{})
	_, err := l.callIn(ctxT(t), sim.CallOptions{SRTP: true, Suites: []string{"NULL_HMAC_SHA1_80"}})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 488 {
		t.Fatalf("err = %v, want 488", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if d := decision(c, policy.RuleNoAcceptableCrypto); d == nil {
		t.Errorf("decisions: %+v", c.Decisions)
	}
}

// The RTP profile offered into a zone follows its rtcp_feedback setting: a
// carrier's RTP/SAVPF offer reaches the PBX as RTP/AVPF when mirrored and as
// RTP/AVP when the PBX zone has feedback off (as Asterisk without avpf=yes
// needs), while the carrier's answer keeps the profile it offered.
func TestFeedbackProfile(t *testing.T) {
	for _, tc := range []struct {
		feedback topology.Feedback
		want     string
	}{
		{"", "RTP/AVPF"},
		{topology.FeedbackOff, "RTP/AVP"},
	} {
		t.Run(string(tc.feedback), func(t *testing.T) {
			l := newLab(t, labOptions{pbxFeedback: tc.feedback})
			ctx := ctxT(t)
			caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Feedback: true})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, l.pbx)
			if got := callee.Profile(); got != tc.want {
				t.Errorf("PBX was offered %s, want %s", got, tc.want)
			}
			if got := caller.Profile(); got != "RTP/SAVPF" {
				t.Errorf("carrier got an answer in %s, want RTP/SAVPF", got)
			}
			exchange(t, caller, callee)
			if err := caller.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			l.sink.waitCalls(t, 1)
		})
	}

	// feedback on: a plain RTP/AVP offer from the PBX reaches the carrier as RTP/SAVPF.
	l := newLab(t, labOptions{carrierFeedback: topology.FeedbackOn})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if got := callee.Profile(); got != "RTP/SAVPF" {
		t.Errorf("carrier was offered %s, want RTP/SAVPF", got)
	}
	if got := caller.Profile(); got != "RTP/AVP" {
		t.Errorf("PBX got an answer in %s, want RTP/AVP", got)
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	l.sink.waitCalls(t, 1)
}

// The same calls over IPv6: listeners, Via/Contact, SDP (c=IN IP6) and the
// relay all on ::1, with TLS verified against the lab certificate's ::1 SAN.
func TestIPv6Calls(t *testing.T) {
	l := newLab(t, labOptions{ipv6: true})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	if ok, _ := callee.SRTP(); !ok {
		t.Error("carrier leg over IPv6 without SRTP")
	}
	if a := callee.RemoteMedia().Addr(); a != netip.IPv6Loopback() {
		t.Errorf("carrier sends media to %s, want ::1", a)
	}
	exchange(t, caller, callee)
	caller.Hangup(ctx)

	in, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatal(err)
	}
	pbx := incoming(t, l.pbx)
	exchange(t, in, pbx)
	pbx.Hangup(ctx)
	for _, c := range l.sink.waitCalls(t, 2) {
		if c.Disposition != compliance.DispositionAnswered {
			t.Errorf("call %s: %s %q", c.ID, c.Disposition, c.EndReason)
		}
		for _, lg := range c.Legs {
			if !strings.HasPrefix(lg.Remote, "[::1]:") {
				t.Errorf("leg %s remote %q, want [::1]:port", lg.Role, lg.Remote)
			}
			if lg.Zone == "carrier" && (lg.TLS == nil || lg.TLS.PeerCert == nil || !lg.TLS.PeerCert.Verified) {
				t.Errorf("carrier leg %s: TLS over IPv6 not verified: %+v", lg.Role, lg.TLS)
			}
		}
	}
}
