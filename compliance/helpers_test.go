package compliance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// clock is a deterministic clock advancing by step on every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(step time.Duration) *clock { return &clock{t: t0, step: step} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.step)
	return now
}

// testKey is a fixed pseudonymisation key for reproducible examples.
func testKey() []byte {
	k := sha256.Sum256([]byte("parapet test pseudonym key"))
	return k[:]
}

func pbxZone() *policy.Zone {
	return &policy.Zone{
		Name: "pbx", Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
		SRTP: policy.RequirementAllow, KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES},
		Suites: policy.DefaultSuites, Peers: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")},
	}
}

func carrierZone() *policy.Zone {
	return &policy.Zone{
		Name: "carrier", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
		VerifyPeer: true, ClientAuth: policy.ClientAuthRequire,
		SRTP: policy.RequirementRequire, KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS},
		Suites: policy.DefaultSuites, Peers: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
}

// sampleCall builds a realistic upgraded call: plain RTP from the PBX over
// UDP, SRTP over TLS 1.3 toward the carrier, with decisions and findings
// computed by the policy package itself.
func sampleCall(p *Pseudonymizer, i int) *Record {
	pbx, carrier := pbxZone(), carrierZone()
	start := t0.Add(time.Duration(i) * time.Minute)
	answer := start.Add(4 * time.Second)
	end := answer.Add(3*time.Minute + 12*time.Second)
	aSig := policy.SignalingFacts{Transport: policy.TransportUDP, Source: netip.MustParseAddrPort("10.20.1.15:5060")}
	bCert := &policy.CertFacts{Subject: "CN=trunk.carrier.example,O=Carrier Example Inc", SANs: []string{"trunk.carrier.example"},
		SHA256: "9f2c4e0b7a51d3c8e6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7", NotAfter: time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC), Verified: true}
	bSig := policy.SignalingFacts{Transport: policy.TransportTLS, Source: netip.MustParseAddrPort("203.0.113.10:5061"),
		TLS: &policy.TLSFacts{Version: policy.VersionTLS13, CipherSuite: "TLS_AES_128_GCM_SHA256", ServerName: "trunk.carrier.example", PeerCert: bCert}}
	offer := policy.MediaFacts{Present: true, Streams: []policy.StreamFacts{{Media: "audio", Proto: "RTP/AVP", Port: 40000}}}
	answerSDP := policy.MediaFacts{Present: true, Streams: []policy.StreamFacts{{Media: "audio", Proto: "RTP/SAVP", Port: 31000,
		Crypto: []policy.CryptoFacts{{Tag: 1, Suite: policy.SuiteAEADAES256GCM, Offered: true}}}}}
	decisions := []policy.Decision{
		policy.Evaluate(policy.Input{Stage: policy.StageAdmission, Zone: pbx, Signaling: aSig, Admitted: true}),
		policy.Evaluate(policy.Input{Stage: policy.StageOffer, Zone: pbx, Signaling: aSig, Media: offer, Onward: carrier}),
		policy.Evaluate(policy.Input{Stage: policy.StageAnswer, Zone: carrier, Signaling: bSig, Media: answerSDP}),
	}
	aFind := policy.LegFindings(pbx, policy.LegOutcome{Signaling: aSig, SourceAdmitted: true, MediaFlowed: true})
	bFind := policy.LegFindings(carrier, policy.LegOutcome{Signaling: bSig, SRTP: true, Suite: policy.SuiteAEADAES256GCM,
		KeyExchange: policy.KeyExchangeSDES, AuthFailures: 2, Originated: true, MediaFlowed: true})
	return &Record{Type: TypeCall, Call: &Call{
		ID: fmt.Sprintf("c-7f3e91d2-%04d", i), Route: "outbound",
		Caller: p.Token("+1 (555) 010-0142"), Callee: p.Token("+15550109999"), Pseudonymized: true,
		Start: start, Answer: &answer, End: end,
		Disposition: DispositionAnswered, SIPStatus: 200, EndReason: "bye from a",
		PolicyHash: "sha256:4b7f0c2d9e8a1f3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
		Legs: []Leg{
			{Role: RoleA, Zone: "pbx", Transport: "udp", Local: "10.20.0.2:5060", Remote: "10.20.1.15:5060",
				Media: &LegMedia{Profile: "RTP/AVP", KeyExchange: "none", Streams: 1,
					PacketsIn: 9610, PacketsOut: 9598, BytesIn: 1652920, BytesOut: 1650856},
				Controls: aFind},
			{Role: RoleB, Zone: "carrier", Transport: "tls", Local: "198.51.100.7:40312", Remote: "203.0.113.10:5061",
				TLS: &TLSInfo{Version: "TLS1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ServerName: "trunk.carrier.example",
					PeerCert: &CertInfo{Subject: bCert.Subject, SANs: bCert.SANs, SHA256: bCert.SHA256, NotAfter: bCert.NotAfter, Verified: true}},
				Media: &LegMedia{Profile: "RTP/SAVP", KeyExchange: "sdes", SRTPSuite: string(policy.SuiteAEADAES256GCM), RTCPMux: true, Streams: 1,
					PacketsIn: 9598, PacketsOut: 9610, BytesIn: 1804424, BytesOut: 1806680, AuthFailures: 2},
				Controls: bFind},
		},
		Decisions: decisions,
	}}
}

// sampleConn builds a TLS 1.1 refusal on the carrier listener.
func sampleConn(i int) *Record {
	d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: carrierZone(),
		Handshake: policy.HandshakeFacts{ClientMaxVersion: policy.VersionTLS11, Error: "tls: client offered only unsupported versions: [302 301]"}})
	return &Record{Type: TypeConnection, Conn: &ConnEvent{
		Event: EventTLSRefused, Zone: "carrier", Transport: "tls", Local: "198.51.100.7:5061",
		Remote:           netip.AddrPortFrom(netip.MustParseAddr("203.0.113.66"), uint16(40000+i)).String(),
		ClientMaxVersion: "TLS1.1", SNI: "sbc.clinic.example", Error: "tls: client offered only unsupported versions: [302 301]",
		Suppressed: uint64(i % 3), Decision: &d,
		PolicyHash: "sha256:4b7f0c2d9e8a1f3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
	}}
}

// sampleRecord alternates calls and connection events.
func sampleRecord(p *Pseudonymizer, i int) *Record {
	if i%3 == 2 {
		return sampleConn(i)
	}
	return sampleCall(p, i)
}

// writeLog writes n sample records to a new log under t.TempDir and closes
// it, returning the log's path.
func writeLog(t *testing.T, n int, opts WriterOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "compliance.jsonl")
	if opts.Now == nil {
		opts.Now = newClock(time.Second).Now
	}
	if opts.Version == "" {
		opts.Version = "v0.1.0-test"
	}
	w, err := OpenWriter(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range n {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// splitLines splits a log into lines, each keeping its '\n'.
func splitLines(b []byte) [][]byte {
	return bytes.SplitAfter(b, []byte{'\n'})[:bytes.Count(b, []byte{'\n'})]
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyBytes(t *testing.T, b []byte) *VerifyResult {
	t.Helper()
	res, err := VerifyReader("log", bytes.NewReader(b), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func problemString(p *Problem) string {
	if p == nil {
		return "<nil>"
	}
	return p.String()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// rechain rewrites the single-file log at path as someone without the
// signing key would: edit changes a record and says whether it stays (nil
// keeps every record as it is); then seq and prev are renumbered from the
// first record kept, every hash is recomputed, and the head file is
// rewritten to match. It returns the number of records written.
func rechain(t *testing.T, path string, edit func(*Record) bool) int {
	t.Helper()
	var out bytes.Buffer
	var seq uint64
	prev, n := "", 0
	for _, line := range splitLines(readFile(t, path)) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("rechain: %v", err)
		}
		if edit != nil && !edit(&r) {
			continue
		}
		if n == 0 {
			seq, prev = r.Seq, r.Prev
		} else {
			seq++
		}
		r.Seq, r.Prev = seq, prev
		b, h, err := encodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		prev = h
		n++
	}
	writeFile(t, path, out.Bytes())
	head, err := json.Marshal(headState{Seq: seq, Hash: prev, File: filepath.Base(path)})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, headPath(path), append(head, '\n'))
	return n
}

// isEvent reports whether r is the log event ev.
func isEvent(r *Record, ev LogEventKind) bool { return r.Log != nil && r.Log.Event == ev }

// events lists the log events of the log at path, "" for other records.
func events(t *testing.T, path string) []LogEventKind {
	t.Helper()
	var evs []LogEventKind
	for _, line := range splitLines(readFile(t, path)) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			continue // a sealed torn line
		}
		var ev LogEventKind
		if r.Log != nil {
			ev = r.Log.Event
		}
		evs = append(evs, ev)
	}
	return evs
}
