package policy

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func pbxZone() *Zone {
	return &Zone{Name: "pbx", Signaling: RequirementOff, MinTLS: VersionTLS12, SRTP: RequirementAllow,
		KeyExchange: []KeyExchange{KeyExchangeSDES, KeyExchangeDTLS}, Suites: DefaultSuites, Peers: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
}

func carrierZone() *Zone {
	return &Zone{Name: "carrier", Signaling: RequirementRequire, MinTLS: VersionTLS12, VerifyPeer: true,
		ClientAuth: ClientAuthRequest, SRTP: RequirementRequire, KeyExchange: []KeyExchange{KeyExchangeSDES},
		Suites: DefaultSuites, Peers: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
}

func observe(z *Zone) *Zone { z.Mode = ModeObserve; return z }

// dtlsZone is a carrier zone keyed with DTLS-SRTP first, SDES second.
func dtlsZone() *Zone {
	z := carrierZone()
	z.KeyExchange = []KeyExchange{KeyExchangeDTLS, KeyExchangeSDES}
	return z
}

func dtlsAudio(problem string) MediaFacts {
	return MediaFacts{Present: true, Streams: []StreamFacts{{Media: "audio", Proto: "UDP/TLS/RTP/SAVP", Port: 4000,
		DTLS: true, DTLSProblem: problem}}}
}

var (
	tlsSig = SignalingFacts{Transport: TransportTLS, Source: netip.MustParseAddrPort("198.51.100.7:40000"),
		TLS: &TLSFacts{Version: VersionTLS13, CipherSuite: "TLS_AES_128_GCM_SHA256",
			PeerCert: &CertFacts{Subject: "CN=carrier", Verified: true}}}
	udpSig = SignalingFacts{Transport: TransportUDP, Source: netip.MustParseAddrPort("192.0.2.10:5060")}
)

func plainAudio() MediaFacts {
	return MediaFacts{Present: true, Streams: []StreamFacts{{Media: "audio", Proto: "RTP/AVP", Port: 4000}}}
}

func srtpAudio(suites ...Suite) MediaFacts {
	s := StreamFacts{Media: "audio", Proto: "RTP/SAVP", Port: 4000}
	for i, su := range suites {
		s.Crypto = append(s.Crypto, CryptoFacts{Tag: i + 1, Suite: su})
	}
	return MediaFacts{Present: true, Streams: []StreamFacts{s}}
}

// The policy decision table, one row per case.
func TestEvaluateDecisionTable(t *testing.T) {
	tests := []struct {
		name        string
		in          Input
		wantVerdict Verdict
		wantRule    string
		wantStatus  int
		wantSRTP    bool // the judged leg runs SRTP
		wantOnward  *OfferPlan
		wantControl Control
	}{
		{
			name: "TLS client offers < 1.2: handshake refused",
			in: Input{Stage: StageHandshake, Zone: carrierZone(),
				Handshake: HandshakeFacts{ClientMaxVersion: VersionTLS11, Error: "tls: client offered only unsupported versions"}},
			wantVerdict: VerdictRejected, wantRule: RuleTLSVersion, wantControl: ControlTransmission,
		},
		{
			name: "TLS handshake fails for another reason (bad certificate)",
			in: Input{Stage: StageHandshake, Zone: carrierZone(),
				Handshake: HandshakeFacts{ClientMaxVersion: VersionTLS13, Error: "tls: bad certificate"}},
			wantVerdict: VerdictRejected, wantRule: RuleHandshakeFailed, wantControl: ControlAuthentication,
		},
		{
			name:        "source not in the zone's peers: 403",
			in:          Input{Stage: StageAdmission, Zone: pbxZone(), Signaling: udpSig, Admitted: false},
			wantVerdict: VerdictRejected, wantRule: RuleSourceNotAllowed, wantStatus: 403, wantControl: ControlAccess,
		},
		{
			name:        "source not in peers, observe mode: would reject",
			in:          Input{Stage: StageAdmission, Zone: observe(pbxZone()), Signaling: udpSig, Admitted: false},
			wantVerdict: VerdictWouldReject, wantRule: RuleSourceNotAllowed, wantStatus: 403,
		},
		{
			name:        "plain SIP into a TLS-only zone: 403",
			in:          Input{Stage: StageAdmission, Zone: carrierZone(), Signaling: udpSig, Admitted: true},
			wantVerdict: VerdictRejected, wantRule: RuleTLSRequired, wantStatus: 403,
		},
		{
			name: "negotiated TLS below the zone floor: 403 (defence in depth)",
			in: Input{Stage: StageAdmission, Zone: carrierZone(), Admitted: true,
				Signaling: SignalingFacts{Transport: TransportTLS, TLS: &TLSFacts{Version: VersionTLS11}}},
			wantVerdict: VerdictRejected, wantRule: RuleTLSVersion, wantStatus: 403,
		},
		{
			name: "client_auth require without a verified certificate: 403",
			in: Input{Stage: StageAdmission, Zone: func() *Zone { z := carrierZone(); z.ClientAuth = ClientAuthRequire; return z }(),
				Admitted: true, Signaling: SignalingFacts{Transport: TransportTLS, TLS: &TLSFacts{Version: VersionTLS13}}},
			wantVerdict: VerdictRejected, wantRule: RulePeerUnauthenticated, wantStatus: 403,
		},
		{
			name:        "TLS 1.3 from an admitted source: allowed",
			in:          Input{Stage: StageAdmission, Zone: carrierZone(), Signaling: tlsSig, Admitted: true},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed,
		},
		{
			name:        "A offer RTP/AVP, A zone require: 488",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Media: plainAudio(), Onward: pbxZone()},
			wantVerdict: VerdictRejected, wantRule: RuleSRTPRequired, wantStatus: 488, wantControl: ControlEncryption,
		},
		{
			name:        "A offer RTP/AVP, A zone require, observe: would reject, proceeds plain",
			in:          Input{Stage: StageOffer, Zone: observe(carrierZone()), Signaling: tlsSig, Media: plainAudio(), Onward: pbxZone()},
			wantVerdict: VerdictWouldReject, wantRule: RuleSRTPRequired, wantStatus: 488, wantOnward: &OfferPlan{},
		},
		{
			name:        "A offer RTP/AVP, A zone allow, B zone require: upgrade",
			in:          Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: carrierZone(), OnwardTransport: TransportTLS},
			wantVerdict: VerdictUpgraded, wantRule: RuleUpgrade, wantOnward: &OfferPlan{SRTP: true, Suites: DefaultSuites},
		},
		{
			name: "A offer RTP/AVP, A zone off, B zone require: upgrade",
			in: Input{Stage: StageOffer, Zone: func() *Zone { z := pbxZone(); z.SRTP = RequirementOff; return z }(),
				Signaling: udpSig, Media: plainAudio(), Onward: carrierZone(), OnwardTransport: TransportTLS},
			wantVerdict: VerdictUpgraded, wantRule: RuleUpgrade, wantOnward: &OfferPlan{SRTP: true, Suites: DefaultSuites},
		},
		{
			name:        "A offer SRTP with an allowed suite: accepted, onward plain",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Media: srtpAudio(SuiteAESCM128HMACSHA1_80), Onward: pbxZone()},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed, wantSRTP: true, wantOnward: &OfferPlan{},
		},
		{
			name:        "A offer SRTP with only NULL_HMAC_SHA1_80: 488",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Media: srtpAudio("NULL_HMAC_SHA1_80"), Onward: pbxZone()},
			wantVerdict: VerdictRejected, wantRule: RuleNoAcceptableCrypto, wantStatus: 488,
		},
		{
			name:        "NULL-only offer in observe mode is still refused (never use a NULL suite)",
			in:          Input{Stage: StageOffer, Zone: observe(carrierZone()), Signaling: tlsSig, Media: srtpAudio("NULL_HMAC_SHA1_80"), Onward: pbxZone()},
			wantVerdict: VerdictRejected, wantRule: RuleNoAcceptableCrypto, wantStatus: 488,
		},
		{
			name:        "A offer SRTP with a suite the zone does not allow (32-bit tag): 488",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Media: srtpAudio(SuiteAESCM128HMACSHA1_32), Onward: pbxZone()},
			wantVerdict: VerdictRejected, wantRule: RuleNoAcceptableCrypto, wantStatus: 488,
		},
		{
			name: "A offer SRTP with UNENCRYPTED_SRTP: 488",
			in: Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Onward: pbxZone(), Media: MediaFacts{Present: true,
				Streams: []StreamFacts{{Media: "audio", Proto: "RTP/SAVP", Port: 4000,
					Crypto: []CryptoFacts{{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, UnsafeParams: []string{"UNENCRYPTED_SRTP"}}}}}}},
			wantVerdict: VerdictRejected, wantRule: RuleNoAcceptableCrypto, wantStatus: 488,
		},
		{
			name:        "A offer DTLS-SRTP into a zone that allows only SDES: 488",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Onward: pbxZone(), Media: dtlsAudio("")},
			wantVerdict: VerdictRejected, wantRule: RuleKeyExchange, wantStatus: 488,
		},
		{
			name:        "A offer DTLS-SRTP into a zone that allows it: allowed, SRTP",
			in:          Input{Stage: StageOffer, Zone: dtlsZone(), Signaling: tlsSig, Onward: pbxZone(), Media: dtlsAudio("")},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed, wantSRTP: true,
		},
		{
			name:        "A offer DTLS-SRTP without a usable fingerprint: 488",
			in:          Input{Stage: StageOffer, Zone: dtlsZone(), Signaling: tlsSig, Onward: pbxZone(), Media: dtlsAudio("no a=fingerprint with a supported hash")},
			wantVerdict: VerdictRejected, wantRule: RuleNoAcceptableCrypto, wantStatus: 488,
		},
		{
			name:        "A offer DTLS-SRTP into a zone with SRTP off: 488",
			in:          Input{Stage: StageOffer, Zone: func() *Zone { z := dtlsZone(); z.SRTP = RequirementOff; return z }(), Signaling: tlsSig, Onward: pbxZone(), Media: dtlsAudio("")},
			wantVerdict: VerdictRejected, wantRule: RuleSRTPOff, wantStatus: 488,
		},
		{
			name: "B answer DTLS-SRTP where parapet offered it: accepted, SRTP",
			in: Input{Stage: StageAnswer, Zone: dtlsZone(), Signaling: tlsSig, Media: func() MediaFacts {
				m := dtlsAudio("")
				m.Streams[0].DTLSOffered = true
				return m
			}()},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed, wantSRTP: true,
		},
		{
			name:        "B answer DTLS-SRTP where parapet offered SDES: 488",
			in:          Input{Stage: StageAnswer, Zone: dtlsZone(), Signaling: tlsSig, Media: dtlsAudio("")},
			wantVerdict: VerdictRejected, wantRule: RuleKeyExchange, wantStatus: 488,
		},
		{
			name:        "A offer SRTP into a zone with SRTP off: 488",
			in:          Input{Stage: StageOffer, Zone: func() *Zone { z := pbxZone(); z.SRTP = RequirementOff; return z }(), Signaling: udpSig, Media: srtpAudio(SuiteAESCM128HMACSHA1_80), Onward: carrierZone(), OnwardTransport: TransportTLS},
			wantVerdict: VerdictRejected, wantRule: RuleSRTPOff, wantStatus: 488,
		},
		{
			name:        "delayed offer (no SDP): allowed; the callee's offer and the caller's answer are judged later",
			in:          Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Onward: pbxZone()},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed,
		},
		{
			name:        "SDP without any m= line: 488",
			in:          Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: MediaFacts{Present: true}, Onward: carrierZone(), OnwardTransport: TransportTLS},
			wantVerdict: VerdictRejected, wantRule: RuleOfferRequired, wantStatus: 488,
		},
		{
			name: "B answer with the offered line: accepted",
			in: Input{Stage: StageAnswer, Zone: carrierZone(), Signaling: tlsSig, Media: MediaFacts{Present: true,
				Streams: []StreamFacts{{Media: "audio", Proto: "RTP/SAVP", Port: 4000,
					Crypto: []CryptoFacts{{Tag: 1, Suite: SuiteAEADAES256GCM, Offered: true}}}}}},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed, wantSRTP: true,
		},
		{
			name:        "B answer without acceptable SRTP, B zone require: B torn down, A gets 488",
			in:          Input{Stage: StageAnswer, Zone: carrierZone(), Signaling: tlsSig, Media: plainAudio()},
			wantVerdict: VerdictRejected, wantRule: RuleAnswerSRTPRequired, wantStatus: 488,
		},
		{
			name: "B answer with a tag parapet did not offer: 488",
			in: Input{Stage: StageAnswer, Zone: carrierZone(), Signaling: tlsSig, Media: MediaFacts{Present: true,
				Streams: []StreamFacts{{Media: "audio", Proto: "RTP/SAVP", Port: 4000,
					Crypto: []CryptoFacts{{Tag: 41, Suite: SuiteAESCM128HMACSHA1_80}}}}}},
			wantVerdict: VerdictRejected, wantRule: RuleAnswerNotOffered, wantStatus: 488,
		},
		{
			name:        "re-INVITE downgrading media on a require leg: 488, call continues",
			in:          Input{Stage: StageReoffer, Zone: carrierZone(), Signaling: tlsSig, Media: plainAudio(), CurrentSRTP: true},
			wantVerdict: VerdictRejected, wantRule: RuleDowngrade, wantStatus: 488,
		},
		{
			name:        "re-INVITE keeping SRTP: accepted",
			in:          Input{Stage: StageReoffer, Zone: carrierZone(), Signaling: tlsSig, Media: srtpAudio(SuiteAEADAES128GCM), CurrentSRTP: true},
			wantVerdict: VerdictAllowed, wantRule: RuleAllowed, wantSRTP: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.in)
			if d.Verdict != tt.wantVerdict || d.Rule != tt.wantRule || d.Status != tt.wantStatus {
				t.Fatalf("got %s %s %d (%s), want %s %s %d", d.Verdict, d.Rule, d.Status, d.Reason,
					tt.wantVerdict, tt.wantRule, tt.wantStatus)
			}
			if d.Reason == "" {
				t.Error("decision has no reason")
			}
			if d.Zone == "" {
				t.Error("decision names no zone")
			}
			if got := d.SRTP(); got != tt.wantSRTP {
				t.Errorf("SRTP() = %v, want %v", got, tt.wantSRTP)
			}
			if tt.wantOnward != nil {
				if d.Onward == nil {
					t.Fatal("no onward plan")
				}
				if d.Onward.SRTP != tt.wantOnward.SRTP || d.Onward.BestEffort != tt.wantOnward.BestEffort ||
					!slices.Equal(d.Onward.Suites, tt.wantOnward.Suites) {
					t.Errorf("onward %+v, want %+v", *d.Onward, *tt.wantOnward)
				}
			}
			if tt.wantControl != "" && !slices.Contains(d.Controls, tt.wantControl) {
				t.Errorf("controls %v lack %s", d.Controls, tt.wantControl)
			}
			if d.Verdict == VerdictRejected && d.Proceed() {
				t.Error("a rejection proceeds")
			}
		})
	}
}

// The answerer picks by the zone's preference, not the offer's order.
func TestOfferPicksZonePreference(t *testing.T) {
	d := Evaluate(Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Onward: pbxZone(),
		Media: srtpAudio("NULL_HMAC_SHA1_80", SuiteAESCM128HMACSHA1_80, SuiteAEADAES128GCM)})
	if !d.Proceed() || len(d.Streams) != 1 {
		t.Fatalf("%+v", d)
	}
	if s := d.Streams[0]; s.Crypto != 2 || s.Suite != SuiteAEADAES128GCM {
		t.Errorf("chose line %d %s, want line 2 AEAD_AES_128_GCM", s.Crypto, s.Suite)
	}
}

// Streams that are not RTP (T.38) or disabled are refused one by one.
func TestOfferNonRTPStreams(t *testing.T) {
	m := plainAudio()
	m.Streams = append(m.Streams, StreamFacts{Media: "image", Proto: "udptl", Port: 4002}, StreamFacts{Media: "video", Proto: "RTP/AVP", Port: 0})
	d := Evaluate(Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: m, Onward: carrierZone(), OnwardTransport: TransportTLS})
	if !d.Proceed() || len(d.Streams) != 3 || !d.Streams[0].Active || d.Streams[1].Active || d.Streams[2].Active {
		t.Fatalf("%+v", d.Streams)
	}
	// RTP over TCP, an unregistered profile, T.38: declined; an offer of
	// nothing else gets 488, in a zone that allows plain RTP too.
	for _, proto := range []string{"udptl", "TCP/RTP/AVP", "RTP/FOO", "rtp/avp", "TCP/TLS/RTP/SAVP"} {
		only := MediaFacts{Present: true, Streams: []StreamFacts{{Media: "audio", Proto: proto, Port: 4002}}}
		d := Evaluate(Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: only, Onward: carrierZone(), OnwardTransport: TransportTLS})
		if d.Rule != RuleNoUsableStream || d.Status != StatusNotAcceptableHere {
			t.Errorf("%s-only offer: %s %d", proto, d.Rule, d.Status)
		}
	}
}

func TestPlan(t *testing.T) {
	if p, ok := Plan(carrierZone(), TransportTLS); !ok || !p.SRTP || p.BestEffort {
		t.Errorf("require+sdes: %+v %v", p, ok)
	}
	allow := carrierZone()
	allow.SRTP = RequirementAllow
	if p, ok := Plan(allow, TransportTLS); !ok || !p.BestEffort || p.SRTP {
		t.Errorf("allow+sdes: %+v %v", p, ok)
	}
	if p, ok := Plan(pbxZone(), TransportUDP); !ok || p.Secure() {
		t.Errorf("allow without sdes: %+v %v", p, ok)
	}
	if p, ok := Plan(dtlsZone(), TransportTLS); !ok || !p.SRTP || !p.DTLS {
		t.Errorf("require, dtls listed first: %+v %v", p, ok)
	}
	dtlsAllow := dtlsZone()
	dtlsAllow.SRTP, dtlsAllow.KeyExchange = RequirementAllow, []KeyExchange{KeyExchangeDTLS}
	if p, ok := Plan(dtlsAllow, TransportTLS); !ok || p.Secure() || p.DTLS {
		t.Errorf("allow with dtls only offers plain RTP: %+v %v", p, ok)
	}
	if ps := Plans(dtlsZone(), TransportTLS); len(ps) != 2 || !ps[0].DTLS || ps[1].DTLS || !ps[1].SRTP {
		t.Errorf("dtls then sdes: %+v", ps)
	}
	if next, ok := NextPlan(dtlsZone(), TransportTLS, Plans(dtlsZone(), TransportTLS)[0]); !ok || next.DTLS || !next.SRTP {
		t.Errorf("after DTLS-SRTP: %+v %v", next, ok)
	}
	if _, ok := NextPlan(dtlsZone(), TransportTLS, Plans(dtlsZone(), TransportTLS)[1]); ok {
		t.Error("a plan after the last one")
	}
	if _, ok := NextPlan(carrierZone(), TransportTLS, Plans(carrierZone(), TransportTLS)[0]); ok {
		t.Error("a zone with one key exchange has no fallback")
	}
	noKex := carrierZone()
	noKex.KeyExchange = []KeyExchange{}
	if _, ok := Plan(noKex, TransportTLS); ok {
		t.Error("require with no key exchange planned as ok")
	}
	// An onward zone that cannot be secured refuses the call.
	d := Evaluate(Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: noKex, OnwardTransport: TransportTLS})
	if d.Rule != RuleOnwardUnsecurable || d.Proceed() {
		t.Errorf("unsecurable onward: %+v", d)
	}
}

func TestLegFindings(t *testing.T) {
	secure := LegOutcome{Signaling: tlsSig, SRTP: true, Suite: SuiteAEADAES256GCM, KeyExchange: KeyExchangeSDES,
		SourceAdmitted: true, MediaFlowed: true}
	status := func(fs []Finding, c Control) FindingStatus {
		for _, f := range fs {
			if f.Control == c {
				return f.Status
			}
		}
		return ""
	}
	fs := LegFindings(carrierZone(), secure)
	for _, c := range []Control{ControlAccess, ControlAuthentication, ControlTransmission, ControlEncryption, ControlTransitIntegrity} {
		if status(fs, c) != StatusSatisfied {
			t.Errorf("secure leg %s = %s", c, status(fs, c))
		}
	}
	plain := LegOutcome{Signaling: udpSig, SourceAdmitted: true, MediaFlowed: true}
	fs = LegFindings(pbxZone(), plain)
	if status(fs, ControlEncryption) != StatusNotRequired || status(fs, ControlTransitIntegrity) != StatusNotRequired {
		t.Errorf("internal plain leg: %+v", fs)
	}
	// A plain leg in a zone that requires SRTP (observe mode) is a violation.
	fs = LegFindings(observe(carrierZone()), LegOutcome{Signaling: tlsSig, SourceAdmitted: true, MediaFlowed: true})
	if status(fs, ControlEncryption) != StatusViolated {
		t.Errorf("observed plain leg on a require zone: %s", status(fs, ControlEncryption))
	}
	// A carrier parapet could not connect to: nothing sent, nothing judged
	// (and above all no "violated" for a TLS leg that never existed).
	fs = LegFindings(carrierZone(), LegOutcome{Signaling: SignalingFacts{Transport: TransportTLS}, Originated: true, NotConnected: true})
	if len(fs) != 3 || status(fs, ControlAuthentication) != StatusNotApplicable || status(fs, ControlTransmission) != StatusNotApplicable ||
		status(fs, ControlEncryption) != StatusNotApplicable {
		t.Errorf("unconnected leg: %+v", fs)
	}
	// A rejected call carried no media: only signaling is judged.
	fs = LegFindings(carrierZone(), LegOutcome{Signaling: tlsSig, SourceAdmitted: true})
	if status(fs, ControlEncryption) != StatusSatisfied || status(fs, ControlTransitIntegrity) != "" {
		t.Errorf("no-media leg: %+v", fs)
	}
	for _, f := range fs {
		if f.Detail == "" || !strings.HasPrefix(string(f.Control), "164.") {
			t.Errorf("finding %+v", f)
		}
	}
}

func TestParseRefusesWeakValues(t *testing.T) {
	if _, err := ParseSuite("NULL_HMAC_SHA1_80"); err == nil || !strings.Contains(err.Error(), "never allowed") {
		t.Errorf("NULL suite: %v", err)
	}
	if v, err := ParseTLSVersion("1.1"); err != nil || v >= MinTLSFloor {
		t.Errorf("1.1 parses to %v %v (configs refuses it against MinTLSFloor)", v, err)
	}
	for _, s := range []string{"off", "allow", "require"} {
		r, err := ParseRequirement(s)
		if err != nil || r.String() != s {
			t.Errorf("%s: %v %v", s, r, err)
		}
	}
}

func TestDecisionJSON(t *testing.T) {
	d := Evaluate(Input{Stage: StageOffer, Zone: carrierZone(), Signaling: tlsSig, Media: plainAudio(), Onward: pbxZone()})
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"stage":"offer"`) || !strings.Contains(string(b), `"rule":"media.srtp-required"`) {
		t.Errorf("json %s", b)
	}
	var back Decision
	if err := json.Unmarshal(b, &back); err != nil || back.Stage != StageOffer {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestAdmitsSource(t *testing.T) {
	z := &Zone{Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	for ip, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "11.0.0.1": false, "2001:db8::5": true, "2001:db9::5": false} {
		if got := z.AdmitsSource(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v", ip, got)
		}
	}
}

// mixedZone has TLS and clear listeners, requires SRTP and allows both key
// exchanges, as configs builds a zone without key_exchange.
func mixedZone() *Zone {
	z := carrierZone()
	z.Name, z.Signaling = "mixed", RequirementAllow
	z.KeyExchange = []KeyExchange{KeyExchangeSDES, KeyExchangeDTLS}
	return z
}

// SDES is taken and offered only on a leg whose SIP is TLS; DTLS-SRTP is
// taken wherever SRTP may run, by default.
func TestKeyExchangePerLeg(t *testing.T) {
	sdesAndFingerprint := srtpAudio(SuiteAEADAES128GCM)
	sdesAndFingerprint.Streams[0].DTLS = true
	bestEffort := srtpAudio(SuiteAEADAES128GCM)
	bestEffort.Streams[0].Proto = "RTP/AVP"
	allowMixed := mixedZone()
	allowMixed.SRTP = RequirementAllow
	sdesOnly := mixedZone()
	sdesOnly.KeyExchange = []KeyExchange{KeyExchangeSDES}
	sdesAnswer := MediaFacts{Present: true, Streams: []StreamFacts{{Media: "audio", Proto: "RTP/SAVP", Port: 4000,
		Crypto: []CryptoFacts{{Tag: 1, Suite: SuiteAEADAES256GCM, Offered: true}}}}}
	tests := []struct {
		name     string
		in       Input
		rule     string
		status   int
		srtp     bool
		dtls     bool
		onward   *OfferPlan // at StageOffer, when the call proceeds
		noOnward bool
	}{
		{name: "SDES offer over UDP on a mixed zone: 488, no key taken",
			in:   Input{Stage: StageOffer, Zone: mixedZone(), Signaling: udpSig, Media: srtpAudio(SuiteAEADAES128GCM), Onward: pbxZone()},
			rule: RuleSDESClear, status: 488},
		{name: "SDES offer over UDP on an allow zone: 488",
			in:   Input{Stage: StageOffer, Zone: allowMixed, Signaling: udpSig, Media: srtpAudio(SuiteAEADAES128GCM), Onward: pbxZone()},
			rule: RuleSDESClear, status: 488},
		{name: "SDES offer over TCP: 488",
			in: Input{Stage: StageOffer, Zone: mixedZone(), Signaling: SignalingFacts{Transport: TransportTCP},
				Media: srtpAudio(SuiteAEADAES128GCM), Onward: pbxZone()},
			rule: RuleSDESClear, status: 488},
		{name: "SDES offer over TLS on a mixed zone: taken",
			in:   Input{Stage: StageOffer, Zone: mixedZone(), Signaling: tlsSig, Media: srtpAudio(SuiteAEADAES128GCM), Onward: pbxZone()},
			rule: RuleAllowed, srtp: true, onward: &OfferPlan{}},
		{name: "SRTP offer over UDP with SDES and a fingerprint: DTLS-SRTP instead",
			in:   Input{Stage: StageOffer, Zone: mixedZone(), Signaling: udpSig, Media: sdesAndFingerprint, Onward: pbxZone()},
			rule: RuleAllowed, srtp: true, dtls: true, onward: &OfferPlan{}},
		{name: "best-effort SDES (RTP/AVP) over UDP on an allow zone: taken as plain RTP",
			in:   Input{Stage: StageOffer, Zone: allowMixed, Signaling: udpSig, Media: bestEffort, Onward: pbxZone()},
			rule: RuleAllowed, onward: &OfferPlan{}},
		{name: "DTLS-SRTP offer on a plain allow zone, default key exchanges: taken",
			in:   Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: dtlsAudio(""), Onward: pbxZone()},
			rule: RuleAllowed, srtp: true, dtls: true, onward: &OfferPlan{}},
		{name: "DTLS-SRTP offer on a TLS zone, default key exchanges: taken",
			in:   Input{Stage: StageOffer, Zone: mixedZone(), Signaling: tlsSig, Media: dtlsAudio(""), Onward: pbxZone()},
			rule: RuleAllowed, srtp: true, dtls: true, onward: &OfferPlan{}},
		{name: "onward leg over UDP into a require zone: DTLS-SRTP offered, never SDES",
			in:   Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: mixedZone(), OnwardTransport: TransportUDP},
			rule: RuleUpgrade, onward: &OfferPlan{SRTP: true, DTLS: true, Suites: DefaultSuites}},
		{name: "onward leg over TLS into the same zone: SDES first",
			in:   Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: mixedZone(), OnwardTransport: TransportTLS},
			rule: RuleUpgrade, onward: &OfferPlan{SRTP: true, Suites: DefaultSuites}},
		{name: "onward leg over UDP into an allow zone: plain RTP, no best-effort SDES",
			in:   Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: allowMixed, OnwardTransport: TransportUDP},
			rule: RuleAllowed, onward: &OfferPlan{}},
		{name: "onward leg over UDP into a require zone that lists only sdes: 488",
			in:   Input{Stage: StageOffer, Zone: pbxZone(), Signaling: udpSig, Media: plainAudio(), Onward: sdesOnly, OnwardTransport: TransportUDP},
			rule: RuleOnwardUnsecurable, status: 488, noOnward: true},
		{name: "answer with SDES keys over UDP: 488",
			in:   Input{Stage: StageAnswer, Zone: mixedZone(), Signaling: udpSig, Media: sdesAnswer},
			rule: RuleSDESClear, status: 488},
		{name: "answer with SDES keys over TLS: taken",
			in:   Input{Stage: StageAnswer, Zone: mixedZone(), Signaling: tlsSig, Media: sdesAnswer},
			rule: RuleAllowed, srtp: true},
		{name: "re-offer with SDES over UDP: 488",
			in: Input{Stage: StageReoffer, Zone: mixedZone(), Signaling: udpSig, Media: srtpAudio(SuiteAEADAES128GCM),
				CurrentSRTP: true},
			rule: RuleSDESClear, status: 488},
		{name: "SDES offer over UDP, observe mode: still refused (never send keys in clear)",
			in:   Input{Stage: StageOffer, Zone: observe(mixedZone()), Signaling: udpSig, Media: srtpAudio(SuiteAEADAES128GCM), Onward: pbxZone()},
			rule: RuleSDESClear, status: 488},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.in)
			if d.Rule != tt.rule || d.Status != tt.status {
				t.Fatalf("got %s %s %d (%s), want %s %d", d.Verdict, d.Rule, d.Status, d.Reason, tt.rule, tt.status)
			}
			if tt.status != 0 {
				if d.Proceed() {
					t.Error("refusal proceeds")
				}
				return
			}
			if got := d.SRTP(); got != tt.srtp {
				t.Errorf("SRTP() = %v, want %v", got, tt.srtp)
			}
			if len(d.Streams) > 0 && d.Streams[0].DTLS != tt.dtls {
				t.Errorf("DTLS = %v, want %v", d.Streams[0].DTLS, tt.dtls)
			}
			if tt.onward != nil {
				if d.Onward == nil {
					t.Fatal("no onward plan")
				}
				if got := *d.Onward; got.SRTP != tt.onward.SRTP || got.DTLS != tt.onward.DTLS ||
					got.BestEffort != tt.onward.BestEffort || !slices.Equal(got.Suites, tt.onward.Suites) {
					t.Errorf("onward %+v, want %+v", got, *tt.onward)
				}
			}
		})
	}
	// Whatever a zone lists, no plan on a clear leg carries SDES keys.
	for _, tr := range []Transport{TransportUDP, TransportTCP} {
		for _, z := range []*Zone{mixedZone(), allowMixed, sdesOnly, pbxZone(), carrierZone()} {
			for _, p := range Plans(z, tr) {
				if p.Secure() && !p.DTLS {
					t.Errorf("zone %s over %s: plan %+v would send SDES keys in clear", z.Name, tr, p)
				}
			}
		}
	}
}
