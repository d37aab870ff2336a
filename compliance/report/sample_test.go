package report

import (
	"strings"
	"time"
)

// Values of the sample report that tests look for in every rendering.
const (
	sampleHashA   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sampleHashB   = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	sampleCapHash = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	sampleUA      = "Yealink SIP-T46S 66.85.0.5"
	sampleHostile = "<script>alert(1)</script>"
)

// sampleReport is a rich report: every list filled, one tampered source,
// one capture section, hostile and non-Latin strings where records could
// carry them.
func sampleReport() *Report {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	ptr := func(t time.Time) *time.Time { return &t }
	since, until := at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")
	gen := at("2026-12-07T10:00:00Z")
	ex := func(src string, seq uint64, reason string) Example {
		return Example{
			Source: src, Seq: seq, Time: at("2026-11-14T09:30:00Z"), Zone: "carrier", Remote: "203.0.113.7:5061",
			Caller: "p:3f2a9c1d", Callee: "p:77b0e1aa", CallID: "c:" + sampleHashB[:32], Reason: reason,
		}
	}
	refs := []Reference{{ID: "RFC 8996", Title: "Deprecating TLS 1.0 and TLS 1.1"}, {ID: "NIST SP 800-52r2", Title: "Guidelines for TLS implementations"}}
	control := func(id, title, status string) ControlResult {
		return ControlResult{
			ID: id, Title: title, Status: status,
			Requirement: "Implement technical security measures to guard against unauthorized access.",
			Basis:       "Per leg: SIP over TLS 1.2 or later and media over SRTP.",
			Summary:     "Judged from the period's legs and the log's own chain.",
			Evidence:    []string{"1,204 external legs, 1,190 over TLS 1.2 or later", "chain verified from seq 1 to 5,120"},
			Findings:    []Count{{"satisfied", 1190}, {"violated", 14}, {"not_required", 30}},
			References:  refs,
		}
	}
	return &Report{
		ReportVersion: Version,
		Kind:          KindLog,
		Generated:     gen,
		Generator:     "parapet 0.9.0",
		Period:        Period{Since: ptr(since), Until: ptr(until), First: ptr(at("2026-11-01T00:02:11Z")), Last: ptr(at("2026-11-30T23:58:40Z"))},
		Sources: []Source{
			{
				Name: "sbc-a/compliance.log", Files: []string{"sbc-a/compliance.log.1", "sbc-a/compliance.log"}, Records: 5120, Calls: 4980,
				Verification: &Verification{
					Intact: true, Records: 5120, FirstSeq: 1, LastSeq: 5120, LastHash: sampleHashA, HeadChecked: true,
					Signatures: SignaturesVerified, KeyID: "k-2026", Checkpoints: 52, SignedSeq: 5100, UnsignedRecords: 20,
					Recovered: 1, UncleanStops: 1, Unobserved: 2, Starts: 3, Reloads: 2, ReloadsRefused: 1,
					PolicyHashes: []string{"a1b2c3d4e5f60718", "0f1e2d3c4b5a6978"},
				},
			},
			{
				Name: "sbc-b/compliance.log", Files: []string{"sbc-b/compliance.log"}, Records: 880, Calls: 870,
				Verification: &Verification{
					Intact: false, Problem: "compliance.log:412: hash: line does not hash to its recorded hash", ProblemKind: "hash",
					Records: 411, FirstSeq: 1, LastSeq: 411, LastHash: sampleHashB, ContinuesFrom: "sbc-b/compliance.log.3",
					Signatures: SignaturesFailed, Checkpoints: 4, UnsignedRecords: 469, Truncated: "compliance.log:881",
					Starts: 1, PolicyHashes: []string{"a1b2c3d4e5f60718"},
				},
				Notes: []string{"the chain continues a file that was not given"},
			},
		},
		Calls: CallStats{
			Total:         5850,
			ByDisposition: []Count{{"answered", 5200}, {"rejected", 410}, {"cancelled", 180}, {"failed", 50}, {"timeout", 9}, {"unobserved", 1}},
			ByZone: []ZoneCalls{
				{Zone: "carrier", Calls: 3100, ByDisposition: []Count{{"answered", 2900}, {"rejected", 200}}},
				{Zone: "clinic-lan", Calls: 2750, ByDisposition: []Count{{"answered", 2300}, {"rejected", 210}, {"cancelled", 240}}},
			},
		},
		Legs: LegStats{
			External: 3100, TLS12: 3050, ExternalWithMedia: 2900, SRTP: 2890, Both: 2880,
			ByZone: []ZoneLegs{
				{Zone: "carrier", External: true, Legs: 3100, TLS12: 3050, WithMedia: 2900, SRTP: 2890},
				{Zone: "clinic-lan", External: false, Legs: 2750, TLS12: 400, WithMedia: 2300, SRTP: 300},
			},
		},
		Negotiated: Negotiated{
			Transports:   []Count{{"tls", 3450}, {"udp", 2400}},
			TLSVersions:  []Count{{"TLS 1.3", 2900}, {"TLS 1.2", 550}, {"TLS 1.1", 12}},
			CipherSuites: []Count{{"TLS_AES_128_GCM_SHA256", 2900}, {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 550}},
			Profiles:     []Count{{"RTP/SAVP", 2890}, {"RTP/AVP", 2610}},
			SRTPSuites:   []Count{{"AES_CM_128_HMAC_SHA1_80", 2600}, {"AEAD_AES_128_GCM", 290}, {"AES_CM_128_HMAC_SHA1_32", 3}},
			KeyExchanges: []Count{{"sdes", 2700}, {"dtls-srtp", 190}},
			Codecs:       []Count{{"PCMU", 3000}, {"G722", 1800}, {"opus", 700}},
		},
		CertsOmitted: 4,
		Certs: []Cert{
			{Subject: "CN=sip.carrier.example,O=Carrier Ltd", Issuer: "CN=Carrier CA", SHA256: sampleHashA, NotAfter: at("2027-06-01T00:00:00Z"),
				DaysToExpiry: 176, Verified: true, Zones: []string{"carrier"}, Seen: 3050, LastSeen: at("2026-11-30T23:50:00Z")},
			{Subject: "CN=gw.clinic.example", Issuer: "CN=Clinic Internal CA", SHA256: sampleHashB, NotAfter: at("2026-12-20T00:00:00Z"),
				DaysToExpiry: 12, Verified: true, Zones: []string{"clinic-lan"}, Seen: 400, LastSeen: at("2026-11-29T10:00:00Z")},
			{Subject: "CN=old-pbx.clinic.example " + sampleHostile, SHA256: sampleCapHash, NotAfter: at("2026-11-01T00:00:00Z"),
				DaysToExpiry: -36, Verified: false, VerifyError: "x509: certificate has expired", Zones: []string{"clinic-lan"}, Seen: 7, LastSeen: at("2026-11-03T08:00:00Z")},
		},
		Decisions: Decisions{
			Rejected: []RuleCount{
				{Rule: "tls.min_version", Count: 12, Status: 488, Controls: []string{"164.312(e)(1)", "164.312(e)(2)(ii)"}, Examples: []Example{ex("sbc-a", 1021, "offered at most TLS 1.1")}},
				{Rule: "media.downgrade", Count: 2, Status: 488, Controls: []string{"164.312(e)(2)(ii)"}, Examples: []Example{ex("sbc-a", 2210, "re-offer dropped SRTP")}},
			},
			Upgraded:    []RuleCount{{Rule: "media.srtp_upgrade", Count: 140, Controls: []string{"164.312(e)(2)(ii)"}, Examples: []Example{ex("sbc-b", 77, "answered plain RTP leg with SRTP")}}},
			WouldReject: []RuleCount{{Rule: "media.require_srtp", Count: 9, Status: 488, Controls: []string{"164.312(e)(2)(ii)"}, Examples: []Example{ex("sbc-b", 140, "observe mode: plain RTP from "+sampleHostile)}}},
			Downgrades:  2,
		},
		Connections: []EventCount{
			{Event: "tls_handshake_failed", Count: 31, Folded: 1200, Examples: []Example{ex("sbc-a", 300, "protocol version: client offered TLS 1.0")}},
			{Event: "certificate_refused", Count: 4, Folded: 0, Examples: []Example{ex("sbc-a", 410, "no certificate presented")}},
		},
		Attacks: MediaAttacks{AuthFailures: 1520, Replays: 33, WrongSource: 4, Unprotected: 0, Calls: 3,
			Examples: []Example{ex("sbc-a", 4000, "1,500 packets failed SRTP authentication")}},
		Controls: []ControlResult{
			control("164.312(a)(1)", "Access control", StatusSatisfied),
			control("164.312(b)", "Audit controls", StatusNeedsAttention),
			control("164.312(c)(1)", "Integrity", StatusNeedsAttention),
			control("164.312(d)", "Person or entity authentication", StatusSatisfied),
			control("164.312(e)(1)", "Transmission security", StatusNeedsAttention),
			control("164.312(e)(2)(i)", "Integrity controls", StatusSatisfied),
			control("164.312(e)(2)(ii)", "Encryption", StatusNeedsAttention),
			control("164.514", "De-identification of the metadata kept", StatusNotApplicable),
		},
		Inventory: Inventory{
			Peers: []Peer{
				{Address: "192.0.2.44", Zones: []string{"clinic-lan"}, UserAgent: "baresip v1.1.0 (x86_64/linux)", FirstSeen: at("2026-11-02T08:00:00Z"),
					LastSeen: at("2026-11-30T17:00:00Z"), Seen: 12,
					Issues: []Issue{{Kind: WeakTLSVersion, Offered: "at most TLS 1.1", Count: 12, Refused: 12}},
					Action: "upgrade the firmware to one that offers TLS 1.2, or replace the device"},
				{Address: "192.0.2.51", Zones: []string{"clinic-lan", "carrier"}, CertSubject: "CN=phone-51.clinic.example", UserAgent: sampleUA,
					FirstSeen: at("2026-11-01T07:12:00Z"), LastSeen: at("2026-11-30T16:40:00Z"), Seen: 240,
					Issues: []Issue{{Kind: WeakPlainRTP, Offered: "RTP/AVP", Count: 240, Refused: 0}, {Kind: WeakSuite, Offered: "AES_CM_128_HMAC_SHA1_32", Count: 3, Refused: 3}},
					Action: "enable SRTP on the phone (Yealink: account > advanced > RTP encryption)"},
				{Address: "2001:db8::7", Zones: []string{"carrier"}, UserAgent: "Ünïcødé phone ☎ — „quoted“ " + strings.Repeat("x", 90), FirstSeen: at("2026-11-10T00:00:00Z"),
					LastSeen: at("2026-11-10T00:05:00Z"), Seen: 1,
					Issues: []Issue{{Kind: WeakNoCert, Offered: "no certificate", Count: 1, Refused: 1}, {Kind: WeakNoTLS, Offered: "UDP", Count: 1, Refused: 1}, {Kind: WeakBadCert, Offered: "self-signed", Count: 1, Refused: 1}},
					Action: "move to a zone that requires TLS\x1b[31m"},
			},
			Omitted: 5,
		},
		Capture: &Capture{
			Packets: 182340, Undecoded: 12, Dialogs: 3,
			Handshakes: []Handshake{
				{Client: "192.0.2.44:50122", Server: "198.51.100.5:5061", ClientMaxVersion: "TLS 1.1", Alert: "protocol_version"},
				{Client: "192.0.2.51:40100", Server: "198.51.100.5:5061", ClientMaxVersion: "TLS 1.3", Version: "TLS 1.2",
					CipherSuite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", SNI: "sip.carrier.example",
					Certs: []Cert{{Subject: "CN=sip.carrier.example", Issuer: "CN=Carrier CA", SHA256: sampleHashA, NotAfter: at("2027-06-01T00:00:00Z"), DaysToExpiry: 176, Zones: []string{"carrier"}, LastSeen: gen, Seen: 1}}},
			},
			Flows: []Flow{
				{Src: "192.0.2.51:10000", Dst: "198.51.100.5:20000", Class: FlowRTP, By: "sdp", PacketClass: FlowRTP, Packets: 9000, Bytes: 1548000, SSRC: 0xdeadbeef, PayloadType: 0, CallID: "c:" + sampleHashA[:32]},
				{Src: "198.51.100.5:20000", Dst: "192.0.2.51:10000", Class: FlowSRTP, By: "packets", PacketClass: FlowSRTP, Packets: 8990, Bytes: 1690000, SSRC: 0x1234, PayloadType: 9},
				{Src: "[2001:db8::7]:30000", Dst: "[2001:db8::1]:30002", Class: FlowUnknown, By: "packets", PacketClass: FlowUnknown, Packets: 3, Bytes: 480, SSRC: 7, PayloadType: 111},
			},
			Omitted: 2,
		},
	}
}

// emptyReport is a report of a period with nothing in it, as a builder
// leaves it: nil lists, no verification, no capture.
func emptyReport() *Report {
	return &Report{
		ReportVersion: Version,
		Kind:          KindCapture,
		Generated:     time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		Generator:     "parapet 0.9.0",
	}
}
