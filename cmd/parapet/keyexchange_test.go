package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// The per-leg key exchange rule with real phones: SDES keys are taken and
// offered only on a leg whose SIP is TLS, and DTLS-SRTP is taken by default
// wherever SRTP may run.

// A baresip phone set to mandatory SDES-SRTP calls over UDP into a zone that
// also listens on TLS and requires SRTP: parapet answers 488 and, on the
// wire, sends no a=crypto line back over that UDP leg (the phone's own key
// did cross in clear: that is what the test makes sure it sees).
func TestBaresipSDESOverUDPOnMixedZone(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapetZones(t, base,
		fmt.Sprintf(`"udp://127.0.0.1:%d", "tls://127.0.0.1:%d"`, base+60, base+62), `srtp = "require"`, `srtp = "require"`,
		routesTo(fmt.Sprintf("sips:127.0.0.1:%d", base+11), fmt.Sprintf("sip:127.0.0.1:%d", base)))
	cap := startCapture(t, base)
	alice, _ := baresipPair(t, base, p.pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "udp", MediaEnc: "srtp-mand"}, peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mand"})
	if err := alice.Command("dial", fmt.Sprintf("sip:bob@127.0.0.1:%d", base+60)); err != nil {
		t.Fatal(err)
	}
	ev, err := alice.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED")
	if err != nil {
		t.Fatal(err)
	}
	if ev["type"] != "CALL_CLOSED" {
		t.Fatalf("an SDES offer over UDP was answered: %v", ev)
	}
	cap.Stop()

	offered := cap.tshark(t, "-Y", fmt.Sprintf(`udp.dstport == %d && frame contains "a=crypto"`, base+60))
	if len(offered) == 0 {
		t.Fatal("the capture shows no SDES offer from the phone: the test proves nothing")
	}
	if sent := cap.tshark(t, "-Y", fmt.Sprintf(`udp.srcport == %d && (frame contains "a=crypto" || frame contains "inline:")`, base+60)); len(sent) != 0 {
		t.Errorf("parapet sent %d frames with SDES key material over UDP", len(sent))
	}
	if refused := cap.tshark(t, "-Y", fmt.Sprintf(`udp.srcport == %d && sip.Status-Code == 488`, base+60)); len(refused) == 0 {
		t.Error("no 488 from parapet on the wire")
	}
	if onward := cap.tshark(t, "-Y", fmt.Sprintf("tcp.dstport == %d", base+11)); len(onward) != 0 {
		t.Errorf("%d frames toward the callee: the call should have stopped at parapet", len(onward))
	}

	calls := onlyCalls(p.records(t))
	if len(calls) != 1 {
		t.Fatalf("%d call records, want 1", len(calls))
	}
	c := calls[0]
	var rule bool
	for _, d := range c.Decisions {
		rule = rule || d.Rule == "media.sdes-clear-signaling" && d.Verdict == "rejected"
	}
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 || !rule {
		t.Errorf("record: %s %d, decisions %+v", c.Disposition, c.SIPStatus, c.Decisions)
	}
}

// linphone, a second stack, offers DTLS-SRTP over UDP into the PBX zone,
// which allows SRTP and sets no key_exchange: parapet takes the DTLS-SRTP
// offer (it answered 488 before) and carries the call to a carrier-side
// baresip over TLS with SDES.
func TestLinphoneDTLSOnPlainZone(t *testing.T) {
	requirePeers(t, "linphonec", "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapet(t, base, fmt.Sprintf("sips:127.0.0.1:%d", base+11), fmt.Sprintf("sip:127.0.0.1:%d", base))
	cap := startCapture(t, base)
	// bob (baresip, TLS, mandatory SDES) at base+10 (TLS +11), RTP base+40..59;
	// linphone over UDP at base+5, RTP base+20..39.
	bob := peers.StartBaresip(t, peers.BaresipConfig{Name: "bob", SIPPort: base + 10, CtrlPort: base + 12, RTPLo: base + 40, RTPHi: base + 59,
		Transport: "tls", MediaEnc: "srtp-mand", Tone: 880, TLSBundle: p.pki.PeerBundleFile})
	lin := startLinphone(t, linphoneConf{udpPort: base + 5, tlsPort: base + 3, rtpLo: base + 20, rtpHi: base + 39,
		caFile: p.pki.CAFile, certFile: p.pki.PeerCertFile, keyFile: p.pki.PeerKeyFile, menc: "dtls"})
	heard := lin.callBob(t, bob, "UDP", fmt.Sprintf("sip:bob@127.0.0.1:%d", base+60))
	cap.Stop()

	if sent := cap.tshark(t, "-Y", fmt.Sprintf(`udp.port == %d && frame contains "a=crypto"`, base+60)); len(sent) != 0 {
		t.Errorf("%d SIP frames with SDES keys on the UDP leg", len(sent))
	}
	if hs := cap.dtlsVersions(t, base+20, base+39); len(hs) == 0 {
		t.Error("no DTLS handshake on linphone's media ports")
	}
	if v := cap.media(t, base+20, base+39); v.plain() || v.packets < callSeconds*50 {
		t.Errorf("linphone's leg media does not look like SRTP: %+v", v)
	}
	a, b := linphoneCallLegs(t, p, heard)
	if a.Zone != "pbx" || a.Transport != "udp" || a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite == "" ||
		a.Media.DTLSPeerCert == "" || a.Media.KeyingError != "" {
		t.Errorf("linphone's leg %+v %+v", a, a.Media)
	}
	if b.Transport != "tls" || b.Media.KeyExchange != "sdes" {
		t.Errorf("bob's leg %+v %+v", b, b.Media)
	}
	if a.UserAgent == "" || b.UserAgent == "" || a.Media.Codec != "PCMU/8000" {
		t.Errorf("evidence: user agents %q, %q; codec %q", a.UserAgent, b.UserAgent, a.Media.Codec)
	}
}
