package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// The zones of the known log: phones and the carrier require everything,
// the LAN allows plain RTP, a branch office only observes.
var (
	zCarrier = &policy.Zone{Name: "carrier", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12, VerifyPeer: true,
		SRTP: policy.RequirementRequire, Mode: policy.ModeEnforce}
	zPhones = &policy.Zone{Name: "phones", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
		SRTP: policy.RequirementRequire, Mode: policy.ModeEnforce}
	zLAN    = &policy.Zone{Name: "lan", Signaling: policy.RequirementOff, SRTP: policy.RequirementAllow, Mode: policy.ModeEnforce}
	zBranch = &policy.Zone{Name: "branch", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
		SRTP: policy.RequirementRequire, Mode: policy.ModeObserve}
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// leg builds a leg whose findings are what policy.LegFindings says of it.
func leg(role compliance.Role, z *policy.Zone, remote string, tlsVer policy.TLSVersion, srtp string, flowed bool, ua string) compliance.Leg {
	o := policy.LegOutcome{Signaling: policy.SignalingFacts{Transport: policy.TransportUDP, Source: ap(remote)},
		SourceAdmitted: true, Originated: role == compliance.RoleB, MediaFlowed: flowed}
	l := compliance.Leg{Role: role, Zone: z.Name, Transport: "udp", Remote: remote, UserAgent: ua,
		CallID: "hmac-sha256:0123456789abcdef0123456789abcdef"}
	if tlsVer != 0 {
		o.Signaling.Transport = policy.TransportTLS
		cert := &policy.CertFacts{Subject: "CN=" + z.Name + ".peer.example", Verified: true}
		o.Signaling.TLS = &policy.TLSFacts{Version: tlsVer, CipherSuite: "TLS_AES_128_GCM_SHA256", PeerCert: cert}
		l.Transport = "tls"
		l.TLS = &compliance.TLSInfo{Version: tlsVer.String(), CipherSuite: "TLS_AES_128_GCM_SHA256",
			PeerCert: &compliance.CertInfo{Subject: cert.Subject, Issuer: "CN=Clinic CA", SHA256: "sha-" + z.Name,
				NotAfter: t0.Add(20 * 24 * time.Hour), Verified: true}}
	}
	m := &compliance.LegMedia{Profile: "RTP/AVP", KeyExchange: "none", Codec: "PCMU/8000", Streams: 1}
	if srtp != "" {
		o.SRTP, o.Suite, o.KeyExchange = true, policy.Suite(srtp), policy.KeyExchangeSDES
		m.Profile, m.KeyExchange, m.SRTPSuite = "RTP/SAVP", "sdes", srtp
	}
	if flowed {
		m.PacketsIn, m.PacketsOut = 500, 500
	}
	l.Media = m
	l.Controls = policy.LegFindings(z, o)
	return l
}

func call(disp compliance.Disposition, status int, legs []compliance.Leg, ds ...policy.Decision) *compliance.Record {
	return &compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: "c", Caller: "hmac-sha256:aa", Callee: "hmac-sha256:bb",
		Pseudonymized: true, Start: t0, End: t0, Disposition: disp, SIPStatus: status, Legs: legs, Decisions: ds}}
}

func decision(z *policy.Zone, v policy.Verdict, rule string, status int, reason string, ctl ...policy.Control) policy.Decision {
	return policy.Decision{Stage: policy.StageOffer, Zone: z.Name, Verdict: v, Rule: rule, Status: status, Reason: reason, Controls: ctl}
}

// knownRecords is the known log: what each record adds is in its comment.
func knownRecords() []*compliance.Record {
	const yealink = "Yealink SIP-T46S 66.84.0.15"
	recs := []*compliance.Record{
		// 1. answered, TLS 1.3 + SRTP on both external legs.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zPhones, "192.0.2.10:5061", policy.VersionTLS13, "AES_CM_128_HMAC_SHA1_80", true, "baresip v1.0.0"),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AEAD_AES_128_GCM", true, "Carrier SBC"),
		}),
		// 2. answered and upgraded: a LAN phone in plain RTP, SRTP to the carrier.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zLAN, "10.0.0.21:5060", 0, "", true, yealink),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_80", true, "Carrier SBC"),
		}, decision(zLAN, policy.VerdictUpgraded, policy.RuleUpgrade, 0, "plain RTP in, SRTP out", policy.ControlEncryption)),
		// 3. the same phone again, a day later.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zLAN, "10.0.0.21:5060", 0, "", true, yealink),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_80", true, "Carrier SBC"),
		}, decision(zLAN, policy.VerdictUpgraded, policy.RuleUpgrade, 0, "plain RTP in, SRTP out", policy.ControlEncryption)),
		// 4. rejected: a phone offered plain RTP in a zone requiring SRTP.
		call(compliance.DispositionRejected, 488, []compliance.Leg{
			leg("a", zPhones, "192.0.2.44:5061", policy.VersionTLS12, "", false, "OldPhone 2.1"),
		}, decision(zPhones, policy.VerdictRejected, policy.RuleSRTPRequired, 488, "offer has no SRTP", policy.ControlTransmission, policy.ControlEncryption)),
		// 5. observe mode: SIP over UDP and plain RTP in the branch, would reject.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zBranch, "198.51.100.5:5060", 0, "", true, "Polycom VVX 5.9"),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_80", true, "Carrier SBC"),
		}, decision(zBranch, policy.VerdictWouldReject, policy.RuleTLSRequired, 403, "SIP over udp", policy.ControlTransmission)),
		// 6. a 32-bit tag suite, and media attacks on the carrier leg.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zPhones, "192.0.2.50:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_32", true, "Grandstream GXP2170 1.0.11"),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_80", true, "Carrier SBC"),
		}),
		// 7. a downgrade attempt refused mid-call.
		call(compliance.DispositionAnswered, 200, []compliance.Leg{
			leg("a", zPhones, "192.0.2.10:5061", policy.VersionTLS13, "AES_CM_128_HMAC_SHA1_80", true, "baresip v1.0.0"),
			leg("b", zCarrier, "203.0.113.10:5061", policy.VersionTLS12, "AES_CM_128_HMAC_SHA1_80", true, "Carrier SBC"),
		}, decision(zPhones, policy.VerdictRejected, policy.RuleDowngrade, 488, "re-INVITE drops SRTP")),
	}
	recs[5].Call.Legs[1].Media.AuthFailures = 5
	recs[5].Call.Legs[1].Media.Replays = 2
	recs = append(recs,
		// 8. a TLS 1.1 client refused at the handshake.
		&compliance.Record{Type: compliance.TypeConnection, Conn: &compliance.ConnEvent{Event: compliance.EventTLSRefused,
			Zone: "phones", Transport: "tls", Remote: "192.0.2.77:40112", ClientMaxVersion: "TLS1.1",
			Error: "tls: client offered only unsupported versions: [302 301]"}},
		// 9. a stranger, folded.
		&compliance.Record{Type: compliance.TypeConnection, Conn: &compliance.ConnEvent{Event: compliance.EventSourceRefused,
			Zone: "carrier", Transport: "udp", Remote: "100.64.9.9:5060", Method: "INVITE", SIPStatus: 403, Suppressed: 4}},
	)
	for i, r := range recs {
		r.Time = t0.Add(time.Duration(i) * time.Hour)
		if r.Call != nil {
			r.Call.Start, r.Call.End = r.Time, r.Time.Add(time.Minute)
		}
	}
	return recs
}

// writeKnownLog writes the known log with the real Writer, signed, and
// returns its path and the public key.
func writeKnownLog(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	now := t0.Add(-time.Minute)
	w, err := compliance.OpenWriter(path, compliance.WriterOptions{Version: "test", PolicyHash: "sha256:feed", Signer: priv,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range knownRecords() {
		now = r.Time
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, pub
}

func status(t *testing.T, r *Report, id policy.Control) ControlResult {
	t.Helper()
	for _, c := range r.Controls {
		if c.ID == string(id) {
			return c
		}
	}
	t.Fatalf("no control %s in the report", id)
	return ControlResult{}
}

func countOf(cs []Count, name string) int {
	for _, c := range cs {
		if c.Name == name {
			return c.Count
		}
	}
	return 0
}

func TestReportNumbersOnAKnownLog(t *testing.T) {
	path, pub := writeKnownLog(t)
	r, err := FromLogs([]string{path}, LogOptions{Options: Options{Now: t0.Add(10 * 24 * time.Hour), Generator: "parapet test"},
		Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls.Total != 7 || countOf(r.Calls.ByDisposition, "answered") != 6 || countOf(r.Calls.ByDisposition, "rejected") != 1 {
		t.Errorf("calls %+v, want 7: 6 answered, 1 rejected", r.Calls)
	}
	// External legs: phones (4 legs), carrier (6), branch (1, observe);
	// the LAN allows plain RTP, so its legs are not external. The
	// rejected call's leg carried no media; the branch leg ran in clear.
	l := r.Legs
	if l.External != 11 || l.TLS12 != 10 || l.ExternalWithMedia != 10 || l.SRTP != 9 || l.Both != 10 {
		t.Errorf("legs %+v, want 11 external: 10 with TLS 1.2+, 9 of 10 with media in SRTP, 10 fully protected (the refused leg carried no media)", l)
	}
	for _, z := range l.ByZone {
		if want := z.Zone != "lan"; z.External != want {
			t.Errorf("zone %s external=%v, want %v", z.Zone, z.External, want)
		}
	}
	if n := countOf(r.Negotiated.TLSVersions, "TLS1.2"); n != 8 {
		t.Errorf("TLS1.2 legs %d, want 8: %+v", n, r.Negotiated.TLSVersions)
	}
	if n := countOf(r.Negotiated.SRTPSuites, "AES_CM_128_HMAC_SHA1_32"); n != 1 {
		t.Errorf("32-bit suite seen %d times, want 1", n)
	}
	if len(r.Decisions.Rejected) != 2 || len(r.Decisions.Upgraded) != 1 || r.Decisions.Upgraded[0].Count != 2 ||
		len(r.Decisions.WouldReject) != 1 || r.Decisions.Downgrades != 1 {
		t.Errorf("decisions %+v", r.Decisions)
	}
	if ex := r.Decisions.Upgraded[0].Examples; len(ex) != 2 || ex[0].Remote != "10.0.0.21:5060" || ex[0].Caller != "hmac-sha256:aa" {
		t.Errorf("upgrade examples %+v", ex)
	}
	if a := r.Attacks; a.AuthFailures != 5 || a.Replays != 2 || a.Calls != 1 {
		t.Errorf("attacks %+v", a)
	}
	if len(r.Connections) != 2 {
		t.Errorf("connection events %+v", r.Connections)
	}
	for _, ec := range r.Connections {
		if ec.Event == string(compliance.EventSourceRefused) && ec.Folded != 4 {
			t.Errorf("folded %d, want 4", ec.Folded)
		}
	}
	// Certificates: soonest expiry first, days counted from Now.
	if len(r.Certs) != 2 || r.Certs[0].DaysToExpiry != 10 {
		t.Errorf("certs %+v", r.Certs)
	}

	v := r.Sources[0].Verification
	if v == nil || !v.Intact || v.Signatures != SignaturesVerified || v.LastHash == "" || v.Starts != 1 {
		t.Fatalf("verification %+v", v)
	}
	want := map[policy.Control]string{
		policy.ControlAccess:           StatusSatisfied,
		policy.ControlAudit:            StatusSatisfied,
		policy.ControlIntegrity:        StatusSatisfied,
		policy.ControlAuthentication:   StatusNeedsAttention, // the observe-mode branch leg had no TLS
		policy.ControlTransmission:     StatusNeedsAttention, // the observe-mode branch leg
		policy.ControlTransitIntegrity: StatusNeedsAttention,
		policy.ControlEncryption:       StatusNeedsAttention,
		policy.ControlDeidentification: StatusSatisfied,
	}
	for c, st := range want {
		if got := status(t, r, c); got.Status != st {
			t.Errorf("%s: %s (%s), want %s; evidence %q", c, got.Status, got.Summary, st, got.Evidence)
		}
	}
	if cr := status(t, r, policy.ControlTransmission); !slices.ContainsFunc(cr.Evidence, func(s string) bool {
		return strings.Contains(s, "1 TLS handshake below 1.2 refused")
	}) {
		t.Errorf("(e)(1) evidence lacks the refused TLS 1.1 handshake: %q", cr.Evidence)
	}

	// The inventory: the TLS 1.1 client with its address and what it
	// offered, the plain-RTP phones with their user agents, the 32-bit
	// suite; never the well-behaved peers.
	byAddr := map[string]Peer{}
	for _, p := range r.Inventory.Peers {
		byAddr[p.Address] = p
	}
	checks := []struct{ addr, kind, offered, ua string }{
		{"192.0.2.77", WeakTLSVersion, "at most TLS1.1", ""},
		{"10.0.0.21", WeakPlainRTP, "RTP/AVP", "Yealink SIP-T46S 66.84.0.15"},
		{"192.0.2.44", WeakPlainRTP, "RTP/AVP", "OldPhone 2.1"},
		{"198.51.100.5", WeakNoTLS, "SIP over udp", "Polycom VVX 5.9"},
		{"192.0.2.50", WeakSuite, "AES_CM_128_HMAC_SHA1_32", "Grandstream GXP2170 1.0.11"},
	}
	for _, c := range checks {
		p, ok := byAddr[c.addr]
		if !ok {
			t.Errorf("inventory lacks %s", c.addr)
			continue
		}
		if p.UserAgent != c.ua || p.Action == "" || !slices.ContainsFunc(p.Issues, func(is Issue) bool { return is.Kind == c.kind && is.Offered == c.offered }) {
			t.Errorf("inventory %s: %+v, want %s offering %q from %q", c.addr, p, c.kind, c.offered, c.ua)
		}
	}
	if p := byAddr["10.0.0.21"]; p.Seen != 2 || !p.FirstSeen.Equal(t0.Add(time.Hour)) || !p.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("Yealink seen %d times %v..%v, want 2 from 10:00 to 11:00", p.Seen, p.FirstSeen, p.LastSeen)
	}
	if p := byAddr["192.0.2.44"]; p.Issues[0].Refused != 1 {
		t.Errorf("the refused plain-RTP offer is not counted as refused: %+v", p.Issues)
	}
	for _, good := range []string{"192.0.2.10", "203.0.113.10", "100.64.9.9"} {
		if _, ok := byAddr[good]; ok {
			t.Errorf("inventory lists %s, which offered nothing weak", good)
		}
	}
	if r.Inventory.Peers[0].Address != "192.0.2.77" {
		t.Errorf("the TLS 1.1 client is not first (worst first): %s", r.Inventory.Peers[0].Address)
	}
}

func TestReportPeriod(t *testing.T) {
	path, _ := writeKnownLog(t)
	r, err := FromLogs([]string{path}, LogOptions{Options: Options{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls.Total != 2 || r.Decisions.Upgraded[0].Count != 2 {
		t.Errorf("period 10:00-12:00 holds calls 2 and 3 only: %+v", r.Calls)
	}
	if !r.Period.First.Equal(t0.Add(time.Hour)) || !r.Period.Last.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("period %+v", r.Period)
	}
	// Without a key, the hash chain alone cannot satisfy (c)(1).
	if cr := status(t, r, policy.ControlIntegrity); cr.Status != StatusNeedsAttention || r.Sources[0].Verification.Signatures != SignaturesNotChecked {
		t.Errorf("(c)(1) without a key: %+v", cr)
	}
	if cr := status(t, r, policy.ControlAudit); cr.Status != StatusSatisfied {
		t.Errorf("(b): %+v", cr)
	}
}

func TestReportOfATamperedLog(t *testing.T) {
	path, pub := writeKnownLog(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Turn the rejected call into an answered one: the line no longer
	// matches its hash.
	tampered := bytes.Replace(b, []byte(`"disposition":"rejected","sip_status":488`), []byte(`"disposition":"answered","sip_status":200`), 1)
	if bytes.Equal(tampered, b) {
		t.Fatal("the known log has no rejected call to tamper with")
	}
	if err := os.WriteFile(path, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := FromLogs([]string{path}, LogOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Sources[0].Verification
	if v.Intact || v.ProblemKind != compliance.ProblemAltered || !strings.Contains(v.Problem, "compliance.jsonl:") {
		t.Fatalf("verification of a tampered log: %+v", v)
	}
	for _, c := range []policy.Control{policy.ControlAudit, policy.ControlIntegrity} {
		cr := status(t, r, c)
		if cr.Status != StatusNeedsAttention || !strings.Contains(cr.Summary, "altered") {
			t.Errorf("%s of a tampered log: %s: %s", c, cr.Status, cr.Summary)
		}
	}
	// The altered line is left out of the numbers, and the source says so.
	if r.Calls.Total != 6 || len(r.Sources[0].Notes) == 0 {
		t.Errorf("calls %d (want 6: the altered one left out), notes %q", r.Calls.Total, r.Sources[0].Notes)
	}
}

// Two instances' logs, one rotated, given in any order: grouped into two
// chains, each verified on its own.
func TestReportGroupsInstancesAndRotation(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int, rotate int64) string {
		path := filepath.Join(dir, name, "compliance.jsonl")
		now := t0
		w, err := compliance.OpenWriter(path, compliance.WriterOptions{Version: "test", RotateBytes: rotate,
			Now: func() time.Time { now = now.Add(time.Second); return now }})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := w.Append(knownRecords()[i%7]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := write("a", 12, 8<<10)
	bPath := write("b", 3, 0)
	chainA, err := compliance.ChainFiles(a)
	if err != nil || len(chainA) < 2 {
		t.Fatalf("instance a did not rotate: %v %v", chainA, err)
	}
	given := append([]string{bPath}, chainA...)
	slices.Reverse(given)
	chains, err := GroupChains(given)
	if err != nil {
		t.Fatal(err)
	}
	if len(chains) != 2 || !slices.Equal(chains[0], chainA) && !slices.Equal(chains[1], chainA) {
		t.Fatalf("chains %q, want a's files in order %q and b's", chains, chainA)
	}
	r, err := FromLogs(given, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sources) != 2 || r.Calls.Total != 15 {
		t.Fatalf("sources %d, calls %d; want 2 sources, 15 calls", len(r.Sources), r.Calls.Total)
	}
	for _, s := range r.Sources {
		if !s.Verification.Intact {
			t.Errorf("%s: %+v", s.Name, s.Verification)
		}
	}
}

// A key that did not sign the log fails it, as parapet verify does: someone
// who rewrote the log could have signed it with a key of their own.
func TestReportWithAnotherKey(t *testing.T) {
	path, _ := writeKnownLog(t)
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := FromLogs([]string{path}, LogOptions{Keys: []ed25519.PublicKey{other}})
	if err != nil {
		t.Fatal(err)
	}
	v, s := r.Sources[0].Verification, r.Sources[0]
	if v.Intact || v.ProblemKind != compliance.ProblemSignature || v.Signatures != SignaturesFailed ||
		!slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "not among the keys given") }) {
		t.Errorf("verification with another key: %+v, notes %q", v, s.Notes)
	}
	if cr := status(t, r, policy.ControlIntegrity); cr.Status != StatusNeedsAttention {
		t.Errorf("(c)(1) with another key: %+v", cr)
	}
}

// A tampered log checked with the right key: the signatures do not cover
// it (the walk stopped before them), never "no checkpoint".
func TestReportTamperedSignatures(t *testing.T) {
	path, pub := writeKnownLog(t)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`Carrier SBC`), []byte(`Carrier SBX`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := FromLogs([]string{path}, LogOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Sources[0].Verification; v.Intact || v.Signatures != SignaturesFailed {
		t.Errorf("tampered, with the key: %+v", v)
	}
}

// An empty log file holds no evidence: (b) needs attention. A file that
// is not a log at all is an error, not a tampered log.
func TestReportEmptyAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "compliance.jsonl")
	os.WriteFile(empty, nil, 0o600)
	r, err := FromLogs([]string{empty}, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cr := status(t, r, policy.ControlAudit); cr.Status != StatusNeedsAttention || !strings.Contains(cr.Summary, "no record") {
		t.Errorf("(b) of an empty log: %+v", cr)
	}
	foreign := filepath.Join(dir, "notes.txt")
	os.WriteFile(foreign, []byte("# meeting notes\nnothing here is a record\n"), 0o600)
	if _, err := FromLogs([]string{foreign}, LogOptions{}); err == nil || !strings.Contains(err.Error(), "is not a compliance log") {
		t.Errorf("a file that is not a log: %v", err)
	}
}
