package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/internal/peers"
)

const callSeconds = 3

// baresipPair starts alice (the caller) and bob (auto-answer) in a port
// block: alice at base+0 (TLS +1, ctrl +2, RTP +20..39), bob at base+10
// (TLS +11, ctrl +12, RTP +40..59).
func baresipPair(t *testing.T, base int, pki string, alice, bob peers.BaresipConfig) (*peers.Baresip, *peers.Baresip) {
	alice.Name, alice.SIPPort, alice.CtrlPort, alice.RTPLo, alice.RTPHi, alice.Tone = "alice", base, base+2, base+20, base+39, 440
	bob.Name, bob.SIPPort, bob.CtrlPort, bob.RTPLo, bob.RTPHi, bob.Tone = "bob", base+10, base+12, base+40, base+59, 880
	alice.TLSBundle, bob.TLSBundle = pki, pki
	return peers.StartBaresip(t, alice), peers.StartBaresip(t, bob)
}

// call dials from a, holds the call, and has a hang up. It returns an error
// if the call was not established.
func call(t *testing.T, a, b *peers.Baresip, uri string) error {
	t.Helper()
	if err := a.Command("dial", uri); err != nil {
		return err
	}
	ev, err := a.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED")
	if err != nil {
		return err
	}
	if ev["type"] == "CALL_CLOSED" {
		return fmt.Errorf("call closed: %v", ev["param"])
	}
	if _, err := b.WaitEvent(5*time.Second, "CALL_ESTABLISHED"); err != nil {
		return err
	}
	time.Sleep(callSeconds * time.Second)
	a.Command("hangup", "")
	if _, err := b.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		return fmt.Errorf("callee never saw the hangup: %w", err)
	}
	// The caller's own CALL_CLOSED ("Connection reset by user"), so that
	// the next call's wait does not take it for its own end.
	if _, err := a.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		return fmt.Errorf("caller never closed its call: %w", err)
	}
	return nil
}

func wantLegs(t *testing.T, c *compliance.Call) (a, b *compliance.Leg) {
	t.Helper()
	for i := range c.Legs {
		switch c.Legs[i].Role {
		case compliance.RoleA:
			a = &c.Legs[i]
		case compliance.RoleB:
			b = &c.Legs[i]
		}
	}
	if a == nil || b == nil || a.Media == nil || b.Media == nil {
		t.Fatalf("call record lacks a leg or its media: %+v", c.Legs)
	}
	// 50 packets/s for callSeconds, both ways, on both legs.
	min := uint64(callSeconds * 50 * 8 / 10)
	for _, l := range []*compliance.Leg{a, b} {
		if l.Media.PacketsIn < min || l.Media.PacketsOut < min {
			t.Errorf("leg %s: %d packets in, %d out; want >= %d each", l.Role, l.Media.PacketsIn, l.Media.PacketsOut, min)
		}
		t.Logf("leg %s media: %+v", l.Role, *l.Media)
		// Nothing a real phone sends is an authentication failure, a
		// replay or malformed. baresip 1.0 sends two RTCP packets in
		// clear even on an SRTP session: an APP "PING" (16 bytes) as a
		// stream starts and its RTCP BYE as it ends. parapet drops them
		// and counts them as unprotected — or as dropped_before_answer
		// when the first comes before parapet has the answer, and not at
		// all when the last comes after the call's relay closed.
		if l.Media.AuthFailures != 0 || l.Media.Replays != 0 || l.Media.Malformed != 0 {
			t.Errorf("leg %s: %d auth failures, %d replays, %d malformed; want none",
				l.Role, l.Media.AuthFailures, l.Media.Replays, l.Media.Malformed)
		}
		if l.Media.Unprotected > 2 || l.Media.KeyExchange == "none" && l.Media.Unprotected != 0 {
			t.Errorf("leg %s (%s): %d unprotected packets, want at most baresip's 2 clear RTCP on an SRTP leg",
				l.Role, l.Media.KeyExchange, l.Media.Unprotected)
		}
	}
	return a, b
}

// A PBX phone (baresip over UDP, plain RTP) calls a carrier-side phone
// (baresip over TLS, mandatory SDES-SRTP) through parapet. The carrier zone
// prefers DTLS-SRTP, which this phone refuses with 488: parapet falls back
// to SDES-SRTP.
func TestBaresipOutboundUpgrade(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapetMedia(t, base, `srtp = "allow"`, "srtp = \"require\"\n    key_exchange = [\"dtls\", \"sdes\"]",
		routesTo(fmt.Sprintf("sips:127.0.0.1:%d", base+11), fmt.Sprintf("sip:127.0.0.1:%d", base)))
	cap := startCapture(t, base)
	alice, bob := baresipPair(t, base, p.pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "udp"}, peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mand"})
	if err := call(t, alice, bob, fmt.Sprintf("sip:bob@127.0.0.1:%d", base+60)); err != nil {
		t.Fatal(err)
	}
	cap.Stop()

	// The wire: clear SIP and RTP on the PBX leg; only TLS and SRTP on the carrier leg.
	cap.sipLegClear(t, base+60)
	t.Logf("carrier leg TLS version %s", cap.sipLegTLS(t, base+11))
	cap.wantMedia(t, base+40, base+20)

	calls := onlyCalls(p.records(t))
	if len(calls) != 1 {
		t.Fatalf("%d call records, want 1", len(calls))
	}
	c := calls[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	a, b := wantLegs(t, c)
	if a.Transport != "udp" || a.Media.KeyExchange != "none" {
		t.Errorf("leg a %+v", a)
	}
	if b.Transport != "tls" || b.TLS == nil || b.Media.KeyExchange != "sdes" || b.Media.SRTPSuite == "" {
		t.Errorf("leg b %+v %+v", b, b.Media)
	}
	if b.TLS != nil && (b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified) {
		t.Errorf("bob's certificate not verified: %+v", b.TLS.PeerCert)
	}
	var upgraded bool
	for _, d := range c.Decisions {
		upgraded = upgraded || d.Rule == "media.upgrade"
	}
	if !upgraded {
		t.Errorf("no upgrade decision: %+v", c.Decisions)
	}
	var fellBack bool
	for _, d := range c.Decisions {
		fellBack = fellBack || d.Rule == "media.key-exchange-fallback"
	}
	if !fellBack {
		t.Errorf("no key-exchange fallback decision: %+v", c.Decisions)
	}

	auditParapetCall(t, cap.path, filepath.Join(p.dir, "parapet.hcl"), c.PolicyHash)
}

// auditParapetCall runs parapet audit on the capture of a call through
// parapet from a PBX phone (SIP over UDP, plain RTP) to a carrier-side one
// (TLS, SRTP). Judged as external (no -c), the PBX leg is flagged against
// 164.312(e) and the carrier leg is not; judged by parapet's own config,
// the PBX zone allows what the leg did, and the report names the policy
// hash parapet's own records carry.
func auditParapetCall(t *testing.T, capture, config, policyHash string) {
	t.Helper()
	code, stdout, stderr := runCmd("audit", "-format", "json", capture)
	if code != 0 {
		t.Fatalf("parapet audit: exit %d: %s", code, stderr)
	}
	validateReport(t, stdout)
	var r report.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != report.KindCapture || len(r.Sources) != 1 || len(r.Sources[0].SHA256) != 64 || r.Capture == nil {
		t.Fatalf("report %+v", r)
	}
	var clearLeg, tlsLeg bool
	for _, z := range r.Legs.ByZone {
		if z.Zone != "external" {
			t.Errorf("zone %q: want every leg judged external without -c", z.Zone)
		}
	}
	if r.Legs.External != 2 || r.Legs.TLS12 != 1 {
		t.Errorf("legs %+v: want 2 external, 1 over TLS 1.2+", r.Legs)
	}
	for _, c := range r.Controls {
		if c.ID == "164.312(e)(1)" {
			clearLeg = c.Status == report.StatusNeedsAttention && countNamed(c.Findings, "violated") == 1
			tlsLeg = countNamed(c.Findings, "satisfied") == 1
		}
	}
	if !clearLeg || !tlsLeg {
		t.Errorf("(e)(1): want the clear PBX leg violated and the TLS leg satisfied: %+v", r.Controls)
	}
	var rtp, srtp int
	for _, f := range r.Capture.Flows {
		switch f.Class {
		case report.FlowRTP:
			rtp++
		case report.FlowSRTP:
			srtp++
		}
	}
	if rtp != 2 || srtp != 2 || len(r.Capture.Handshakes) == 0 {
		t.Errorf("capture: %d RTP flows, %d SRTP flows, %d handshakes; want 2, 2, at least 1", rtp, srtp, len(r.Capture.Handshakes))
	}

	// With parapet's config, the PBX leg is in the pbx zone, which allows
	// SIP over UDP and plain RTP.
	code, stdout, stderr = runCmd("audit", "-c", config, "-format", "json", capture)
	if code != 0 {
		t.Fatalf("parapet audit -c: exit %d: %s", code, stderr)
	}
	r = report.Report{}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, z := range r.Legs.ByZone {
		zones[z.Zone] = z.External
	}
	if ext, ok := zones["pbx"]; !ok || ext {
		t.Errorf("with -c: zones %v, want the pbx leg in zone pbx, not external", zones)
	}
	notes := strings.Join(r.Sources[0].Notes, " ")
	if strings.Contains(notes, "random key") {
		t.Errorf("with -c, tokens should use parapet's own pseudonymisation key: %q", notes)
	}
	if policyHash == "" || !strings.Contains(notes, "policy "+policyHash) {
		t.Errorf("with -c, the report should name the policy %q parapet's records carry: %q", policyHash, notes)
	}
}

func countNamed(cs []report.Count, name string) int {
	for _, c := range cs {
		if c.Name == name {
			return c.Count
		}
	}
	return 0
}

// The reverse: a carrier-side phone (TLS, SRTP) calls a PBX phone (UDP).
func TestBaresipInbound(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapet(t, base, fmt.Sprintf("sips:127.0.0.1:%d", base+1), fmt.Sprintf("sip:127.0.0.1:%d", base+10))
	cap := startCapture(t, base)
	alice, bob := baresipPair(t, base, p.pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mand"}, peers.BaresipConfig{Transport: "udp"})
	if err := call(t, alice, bob, fmt.Sprintf("sip:bob@127.0.0.1:%d", base+61)); err != nil {
		t.Fatal(err)
	}
	cap.Stop()
	cap.sipLegTLS(t, base+61)
	cap.sipLegClear(t, base+60)
	cap.wantMedia(t, base+20, base+40)
	calls := onlyCalls(p.records(t))
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered {
		t.Fatalf("records %+v", calls)
	}
	a, _ := wantLegs(t, calls[0])
	if a.Zone != "carrier" || a.Media.SRTPSuite != "AES_CM_128_HMAC_SHA1_80" || a.TLS == nil {
		t.Errorf("leg a %+v %+v", a, a.Media)
	}
	// The caller's clear RTCP "PING" comes when it gets the answer, after
	// parapet took its offer: it is counted as unprotected.
	if a.Media.Unprotected < 1 {
		t.Errorf("leg a: baresip's clear RTCP not counted as unprotected: %+v", a.Media)
	}
}

// A carrier-side phone offering RTP/SAVPF (baresip srtp-mandf) calls a PBX
// phone that, like Asterisk without avpf=yes, declines any profile but
// RTP/AVP: the PBX zone's rtcp_feedback = "off" makes the call work.
func TestBaresipFeedbackProfileToPBX(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapetMedia(t, base, "srtp = \"allow\"\n    rtcp_feedback = \"off\"", `srtp = "require"`,
		routesTo(fmt.Sprintf("sips:127.0.0.1:%d", base+1), fmt.Sprintf("sip:127.0.0.1:%d", base+10)))
	cap := startCapture(t, base)
	alice, bob := baresipPair(t, base, p.pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mandf"}, peers.BaresipConfig{Transport: "udp"})
	if err := call(t, alice, bob, fmt.Sprintf("sip:bob@127.0.0.1:%d", base+61)); err != nil {
		t.Fatal(err)
	}
	cap.Stop()
	cap.wantMedia(t, base+20, base+40)
	calls := onlyCalls(p.records(t))
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered {
		t.Fatalf("records %+v", calls)
	}
	a, b := wantLegs(t, calls[0])
	if a.Media.Profile != "RTP/SAVPF" || b.Media.Profile != "RTP/AVP" {
		t.Errorf("profiles: leg a %s, leg b %s; want RTP/SAVPF and RTP/AVP", a.Media.Profile, b.Media.Profile)
	}
}

// DTLS-SRTP with real baresip phones (dtls_srtp), both ways: a carrier
// phone keyed by DTLS-SRTP calls a plain PBX phone, then a PBX phone calls
// a carrier phone to which parapet itself offers DTLS-SRTP. On the wire the
// carrier leg must show a DTLS 1.2 handshake on its media ports and SRTP.
func TestBaresipDTLSSRTP(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	for _, dir := range []string{"inbound", "outbound"} {
		t.Run(dir, func(t *testing.T) {
			base := portBlock(t)
			// baresip offers UDP/TLS/RTP/SAVPF; a plain baresip takes only RTP/AVP.
			p := startParapetMedia(t, base, "srtp = \"allow\"\n    rtcp_feedback = \"off\"",
				"srtp = \"require\"\n    key_exchange = [\"dtls\"]",
				routesTo(fmt.Sprintf("sips:127.0.0.1:%d", base+11), fmt.Sprintf("sip:127.0.0.1:%d", base+10)))
			cap := startCapture(t, base)
			carrier, pbx := peers.BaresipConfig{Transport: "tls", MediaEnc: "dtls_srtp"}, peers.BaresipConfig{Transport: "udp"}
			alice, bob, dial := carrier, pbx, base+61
			if dir == "outbound" {
				alice, bob, dial = pbx, carrier, base+60
			}
			a, b := baresipPair(t, base, p.pki.PeerBundleFile, alice, bob)
			if err := call(t, a, b, fmt.Sprintf("sip:bob@127.0.0.1:%d", dial)); err != nil {
				t.Fatal(err)
			}
			cap.Stop()
			carrierRTP, pbxRTP := base+20, base+40 // alice's and bob's RTP ranges
			if dir == "outbound" {
				carrierRTP, pbxRTP = pbxRTP, carrierRTP
			}
			cap.wantMedia(t, carrierRTP, pbxRTP)
			vs := cap.dtlsVersions(t, carrierRTP, carrierRTP+19)
			if len(vs) == 0 {
				t.Error("carrier leg: no DTLS handshake on the media ports")
			}
			for _, v := range vs {
				if v != "0xfefd" {
					t.Errorf("carrier leg: DTLS record version %s in the ServerHello flight, want DTLS 1.2 (0xfefd)", v)
				}
			}
			calls := onlyCalls(p.records(t))
			if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered {
				t.Fatalf("records %+v", calls)
			}
			la, lb := wantLegs(t, calls[0])
			carrierLeg, pbxLeg := la, lb
			if dir == "outbound" {
				carrierLeg, pbxLeg = lb, la
			}
			if carrierLeg.Media.KeyExchange != "dtls" || carrierLeg.Media.SRTPSuite == "" || carrierLeg.Media.KeyingError != "" {
				t.Errorf("carrier leg media %+v", carrierLeg.Media)
			}
			if pbxLeg.Media.KeyExchange != "none" {
				t.Errorf("PBX leg media %+v", pbxLeg.Media)
			}
		})
	}
}

func writeOpenSSLConf(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "openssl.cnf")
	conf := "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n" + body
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A phone limited to TLS 1.2 works; one limited to TLS 1.1 is refused and
// the refusal is recorded; a plain-RTP offer over TLS gets 488.
func TestBaresipTLSVersionsAndPlainOffer(t *testing.T) {
	requirePeers(t, "baresip")
	base := portBlock(t)
	p := startParapet(t, base, fmt.Sprintf("sips:127.0.0.1:%d", base+1), fmt.Sprintf("sip:127.0.0.1:%d", base+10))
	tls12 := writeOpenSSLConf(t, "MaxProtocol = TLSv1.2\n")
	alice, bob := baresipPair(t, base, p.pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mand", OpenSSLConf: tls12}, peers.BaresipConfig{Transport: "udp"})
	if err := call(t, alice, bob, fmt.Sprintf("sip:bob@127.0.0.1:%d", base+61)); err != nil {
		t.Fatalf("TLS 1.2 call: %v", err)
	}

	legacy := writeOpenSSLConf(t, "MinProtocol = TLSv1\nMaxProtocol = TLSv1.1\nCipherString = DEFAULT@SECLEVEL=0\n")
	old := peers.StartBaresip(t, peers.BaresipConfig{Name: "old", SIPPort: base + 3, CtrlPort: base + 5, RTPLo: base + 30, RTPHi: base + 39,
		Transport: "tls", MediaEnc: "srtp-mand", Tone: 440, TLSBundle: p.pki.PeerBundleFile, OpenSSLConf: legacy})
	old.Command("dial", fmt.Sprintf("sip:bob@127.0.0.1:%d", base+61))
	if ev, err := old.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED"); err != nil || ev["type"] != "CALL_CLOSED" {
		t.Fatalf("TLS 1.1 phone: %v %v, want the call closed", ev, err)
	}

	plain := peers.StartBaresip(t, peers.BaresipConfig{Name: "plain", SIPPort: base + 6, CtrlPort: base + 8, RTPLo: base + 24, RTPHi: base + 29,
		Transport: "tls", Tone: 440, TLSBundle: p.pki.PeerBundleFile})
	plain.Command("dial", fmt.Sprintf("sip:bob@127.0.0.1:%d", base+61))
	ev, err := plain.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED")
	if err != nil || ev["type"] != "CALL_CLOSED" || !strings.Contains(fmt.Sprint(ev["param"]), "488") {
		t.Fatalf("plain-RTP phone over TLS: %v %v, want 488", ev, err)
	}

	recs := p.records(t)
	var answered12, rejected488, refused11 bool
	for _, r := range recs {
		if c := r.Call; c != nil {
			if c.Disposition == compliance.DispositionAnswered && c.Legs[0].TLS != nil && c.Legs[0].TLS.Version == "TLS1.2" {
				answered12 = true
			}
			if c.Disposition == compliance.DispositionRejected && c.SIPStatus == 488 {
				rejected488 = true
			}
		}
		if e := r.Conn; e != nil && e.Event == compliance.EventTLSRefused && e.ClientMaxVersion == "TLS1.1" {
			refused11 = true
		}
	}
	if !answered12 || !rejected488 || !refused11 {
		t.Errorf("records: TLS1.2 answered=%v, 488 rejected=%v, TLS1.1 refused=%v", answered12, rejected488, refused11)
	}
}
