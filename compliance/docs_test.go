package compliance

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/example-call.json{,l} from the example record")

const (
	docsPath    = "../docs/records.md"
	examplePath = "testdata/example-call.json"
)

// exampleCall is the record shown in docs/records.md: an outbound call from
// the PBX (UDP, plain RTP) upgraded to TLS 1.3 and SRTP toward the carrier.
// Decisions and findings are written out (as policy produces them) so that
// the documented example changes only when the schema does.
func exampleCall() *Record {
	p := NewPseudonymizer(testKey())
	start := time.Date(2026, 3, 14, 9, 26, 53, 412000000, time.UTC)
	answer := start.Add(3*time.Second + 870*time.Millisecond)
	end := answer.Add(192*time.Second + 305*time.Millisecond)
	media := []policy.Control{policy.ControlTransmission, policy.ControlEncryption}
	duration := end.Sub(answer).Milliseconds()
	return &Record{Type: TypeCall, Time: end.Add(2 * time.Millisecond), Call: &Call{
		ID: "c-01HQ7Z3K8M2V", Route: "outbound",
		Caller: p.Token("+1 (555) 010-0142"), Callee: p.Token("+1 555 010 9999"), Pseudonymized: true,
		Start: start, Answer: &answer, End: end, DurationMS: &duration,
		Disposition: DispositionAnswered, SIPStatus: 200, EndReason: "bye from a",
		PolicyHash: "sha256:4b7f0c2d9e8a1f3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
		Legs: []Leg{
			{Role: RoleA, Zone: "pbx", Transport: "udp", Local: "10.20.0.2:5060", Remote: "10.20.1.15:5060",
				UserAgent: "Asterisk PBX 18.20.2", CallID: p.CallID("6d0e9b2c41f37a58@10.20.1.15"),
				Media: &LegMedia{Profile: "RTP/AVP", Codec: "PCMU/8000", KeyExchange: "none", Streams: 1,
					PacketsIn: 9810, PacketsOut: 9802, BytesIn: 1687320, BytesOut: 1685944},
				Controls: []policy.Finding{
					{Control: policy.ControlAccess, Status: policy.StatusSatisfied, Detail: `source 10.20.1.15 within zone "pbx" peers`},
					{Control: policy.ControlAuthentication, Status: policy.StatusNotRequired, Detail: "no TLS: peer identified by source address only"},
					{Control: policy.ControlTransmission, Status: policy.StatusNotRequired, Detail: "SIP over udp, media plain RTP"},
					{Control: policy.ControlEncryption, Status: policy.StatusNotRequired, Detail: "SIP over udp, media plain RTP"},
					{Control: policy.ControlTransitIntegrity, Status: policy.StatusNotRequired, Detail: "plain RTP: media not integrity-protected"},
				}},
			{Role: RoleB, Zone: "carrier", Transport: "tls", Local: "198.51.100.7:40312", Remote: "203.0.113.10:5061",
				UserAgent: "Carrier Example SBC 7.4", CallID: p.CallID("3f9a1c0e7b2d4a65b8c1d0e2@parapet"),
				TLS: &TLSInfo{Version: "TLS1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ServerName: "trunk.carrier.example",
					PeerCert: &CertInfo{Subject: "CN=trunk.carrier.example,O=Carrier Example Inc", Issuer: "CN=Example Trust RSA CA 2025,O=Example Trust",
						SANs:   []string{"trunk.carrier.example"},
						SHA256: "9f2c4e0b7a51d3c8e6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7", NotAfter: time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC), Verified: true,
						AnchorSHA256: "5b1e7c9d0a2f4e6b8c1d3a5f7e9b0c2d4f6a8e0b1c3d5f7a9e2b4c6d8f0a1e3b"}},
				Media: &LegMedia{Profile: "RTP/SAVP", Codec: "PCMU/8000", KeyExchange: "sdes", SRTPSuite: "AEAD_AES_256_GCM", RTCPMux: true, Streams: 1,
					PacketsIn: 9802, PacketsOut: 9810, BytesIn: 1842776, BytesOut: 1844280, AuthFailures: 2},
				Controls: []policy.Finding{
					{Control: policy.ControlAuthentication, Status: policy.StatusSatisfied, Detail: `peer certificate "CN=trunk.carrier.example,O=Carrier Example Inc" verified`},
					{Control: policy.ControlTransmission, Status: policy.StatusSatisfied, Detail: "SIP over TLS1.3 TLS_AES_128_GCM_SHA256, media SRTP AEAD_AES_256_GCM (sdes)"},
					{Control: policy.ControlEncryption, Status: policy.StatusSatisfied, Detail: "SIP over TLS1.3 TLS_AES_128_GCM_SHA256, media SRTP AEAD_AES_256_GCM (sdes)"},
					{Control: policy.ControlTransitIntegrity, Status: policy.StatusSatisfied, Detail: "every packet authenticated with AEAD_AES_256_GCM; dropped: 2 failing authentication, 0 replayed, 0 unprotected"},
				}},
		},
		Decisions: []policy.Decision{
			{Stage: policy.StageAdmission, Zone: "pbx", Verdict: policy.VerdictAllowed, Rule: policy.RuleAllowed, Reason: "source admitted; SIP over udp"},
			{Stage: policy.StageOffer, Zone: "pbx", Verdict: policy.VerdictUpgraded, Rule: policy.RuleUpgrade,
				Reason: `plain RTP from zone "pbx" upgraded to SRTP toward zone "carrier"`, Controls: media},
			{Stage: policy.StageAnswer, Zone: "carrier", Verdict: policy.VerdictAllowed, Rule: policy.RuleAllowed, Reason: "answer accepted"},
		},
	}}
}

// exampleLog writes the example log: opened, the example call, closed.
func exampleLog(t *testing.T) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	c := &clock{t: time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC), step: 0}
	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(exampleCall()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return splitLines(readFile(t, path))
}

// TestDocsExample keeps the example in docs/records.md real: it is the
// example record as the Writer writes it, pretty-printed. Run with -update
// to regenerate testdata/example-call.json, then paste it into the docs.
func TestDocsExample(t *testing.T) {
	lines := exampleLog(t)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bytes.TrimSuffix(lines[1], []byte("\n")), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(examplePath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(examplePath, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(examplePath, ".json")+".jsonl", bytes.Join(lines, nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if log := readFile(t, strings.TrimSuffix(examplePath, ".json")+".jsonl"); !bytes.Equal(log, bytes.Join(lines, nil)) {
		t.Fatalf("testdata/example-call.jsonl is out of date; run go test ./compliance -run TestDocsExample -update")
	}
	golden := readFile(t, examplePath)
	if !bytes.Equal(golden, pretty.Bytes()) {
		t.Fatalf("%s is out of date; run go test ./compliance -run TestDocsExample -update\n got:\n%s", examplePath, pretty.Bytes())
	}
	docs := string(readFile(t, docsPath))
	if !strings.Contains(docs, string(golden)) {
		t.Fatalf("%s does not contain the example record of %s", docsPath, examplePath)
	}
	// The compact first line (the opened event) is quoted for the hash
	// walk-through.
	if !strings.Contains(docs, string(lines[0])) {
		t.Fatalf("%s does not quote the example log's first line:\n%s", docsPath, lines[0])
	}
}

// TestDocsCoverSchema checks that docs/records.md names every JSON field of
// the record, every rule and every control.
func TestDocsCoverSchema(t *testing.T) {
	docs := string(readFile(t, docsPath))
	for _, v := range []any{Record{}, Call{}, Leg{}, TLSInfo{}, CertInfo{}, LegMedia{}, ConnEvent{}, Registration{}, LogEvent{}, policy.Decision{}, policy.Finding{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(docs, "`"+name+"`") {
				t.Errorf("%s.%s: field `%s` is not documented", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
	for _, c := range policy.Controls {
		if !strings.Contains(docs, string(c)) || !strings.Contains(docs, c.Title()) {
			t.Errorf("control %s (%s) is not documented", c, c.Title())
		}
	}
	for _, s := range []string{
		string(DispositionAnswered), string(DispositionRejected), string(DispositionCancelled), string(DispositionFailed),
		string(DispositionTimeout), string(DispositionShutdown), string(DispositionUnobserved),
		string(EventTLSRefused), string(EventTLSClientFailed), string(EventSourceRefused), string(EventConnectionLimit), string(EventRegistration),
		string(LogOpened), string(LogRecovered), string(LogRotated), string(LogCheckpoint), string(LogReloaded), string(LogClosed),
		string(LogUncleanStop), JournalFile, string(LogReloadRefused),
		ProblemAltered, ProblemMissing, ProblemReordered, ProblemMalformed, ProblemTruncated, ProblemHead, ProblemChainStart,
		ProblemSignature, ProblemUnsigned,
		string(policy.VerdictAllowed), string(policy.VerdictUpgraded), string(policy.VerdictRejected), string(policy.VerdictWouldReject),
		string(policy.StatusSatisfied), string(policy.StatusViolated), string(policy.StatusNotRequired),
		string(policy.StatusNotApplicable),
	} {
		if !strings.Contains(docs, "`"+s+"`") {
			t.Errorf("`%s` is not documented", s)
		}
	}
	for stage := policy.StageHandshake; stage <= policy.StageReoffer; stage++ {
		if !strings.Contains(docs, "`"+stage.String()+"`") {
			t.Errorf("stage `%s` is not documented", stage)
		}
	}
	if own := b2buaRules(t); len(own) > 0 {
		t.Errorf("b2bua names rules of its own %q: every rule is a policy constant", own)
	}
	for _, rule := range policyRules(t) {
		if !strings.Contains(docs, "`"+rule+"`") {
			t.Errorf("rule `%s` is not documented", rule)
		}
	}
}

// b2buaRules reads the rules the b2bua package would name by itself: its
// Rule* constants and the string literals it gives a Rule field. There
// should be none: b2bua decides some rules itself (request.malformed,
// route.call-limit), but names them by policy's constants.
func b2buaRules(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../b2bua/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var rules []string
	str := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			rules = append(rules, s)
		}
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if strings.HasPrefix(name.Name, "Rule") && i < len(n.Values) {
						str(n.Values[i])
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Rule" {
					str(n.Value)
				}
			}
			return true
		})
	}
	return rules
}

// policyRules reads the Rule* constants from the policy package's source.
func policyRules(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../policy/evaluate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Rule") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					rules = append(rules, s)
				}
			}
		}
		return false
	})
	if len(rules) < 10 {
		t.Fatalf("found only %d rules in policy/evaluate.go", len(rules))
	}
	return rules
}
