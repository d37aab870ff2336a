package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// auditLog runs real phones through parapet so that its log holds an
// upgraded call, an observe-mode call that policy would refuse, a call
// refused with 488 and a TLS 1.1 handshake refused, and returns the log and
// the public key that signs it.
//
// Zones: pbx (UDP, SRTP allowed), carrier (TLS, SRTP required) and branch
// (UDP, SRTP required, observe mode). alice and carol are PBX phones (UDP,
// plain RTP), bob a carrier-side phone (TLS, SDES-SRTP mandatory).
func auditLog(t *testing.T) (logPath, pubPath string) {
	t.Helper()
	requirePeers(t, "baresip")
	base := portBlock(t)
	dir := t.TempDir()
	pki, err := certs.EnsureLab(filepath.Join(dir, "state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	p := startParapetConfig(t, dir, pki, fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%[1]d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ["tls://127.0.0.1:%[2]d"]
  peers  = ["127.0.0.0/8"]
  tls {
    ca_file     = "${state_dir}/certs/lab-ca.pem"
    client_auth = "request"
  }
  media {
    srtp         = "require"
    key_exchange = ["sdes"]
  }
}
zone "branch" {
  listen = ["udp://127.0.0.1:%[3]d"]
  peers  = ["127.0.0.0/8"]
  mode   = "observe"
  media { srtp = "require" }
}
route "outbound" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:127.0.0.1:%[4]d"
}
route "branch" {
  from   = "branch"
  to     = "pbx"
  target = "sip:127.0.0.1:%[8]d"
}
route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:127.0.0.1:%[5]d"
}
media {
  address = "127.0.0.1"
  ports   = "%[6]d-%[7]d"
  timeout = "10s"
}
`, base+60, base+61, base+62, base+11, base, base+70, base+99, base+63))
	alice, bob := baresipPair(t, base, pki.PeerBundleFile,
		peers.BaresipConfig{Transport: "udp"}, peers.BaresipConfig{Transport: "tls", MediaEnc: "srtp-mand"})

	// Upgraded: plain RTP from the PBX phone, SRTP to the carrier side.
	if err := call(t, alice, bob, fmt.Sprintf("sip:bob@127.0.0.1:%d", base+60)); err != nil {
		t.Fatalf("upgraded call: %v", err)
	}
	// Observe mode: the branch requires SRTP, alice offers plain RTP; the
	// call goes on (to carol, another PBX phone) and is recorded as
	// would_reject.
	carol := peers.StartBaresip(t, peers.BaresipConfig{Name: "carol", SIPPort: base + 63, CtrlPort: base + 65, RTPLo: base + 66, RTPHi: base + 69,
		Transport: "udp", Tone: 660, TLSBundle: pki.PeerBundleFile})
	if err := call(t, alice, carol, fmt.Sprintf("sip:carol@127.0.0.1:%d", base+62)); err != nil {
		t.Fatalf("observe-mode call: %v", err)
	}
	// Refused TLS: a phone limited to TLS 1.1.
	legacy := writeOpenSSLConf(t, "MinProtocol = TLSv1\nMaxProtocol = TLSv1.1\nCipherString = DEFAULT@SECLEVEL=0\n")
	old := peers.StartBaresip(t, peers.BaresipConfig{Name: "old", SIPPort: base + 3, CtrlPort: base + 5, RTPLo: base + 30, RTPHi: base + 34,
		Transport: "tls", MediaEnc: "srtp-mand", Tone: 440, TLSBundle: pki.PeerBundleFile, OpenSSLConf: legacy})
	old.Command("dial", fmt.Sprintf("sip:alice@127.0.0.1:%d", base+61))
	if ev, err := old.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED"); err != nil || ev["type"] != "CALL_CLOSED" {
		t.Fatalf("TLS 1.1 phone: %v %v, want the call closed", ev, err)
	}
	// Rejected: plain RTP offered into the carrier zone, which requires SRTP.
	plain := peers.StartBaresip(t, peers.BaresipConfig{Name: "dave", SIPPort: base + 6, CtrlPort: base + 8, RTPLo: base + 35, RTPHi: base + 39,
		Transport: "tls", Tone: 440, TLSBundle: pki.PeerBundleFile})
	plain.Command("dial", fmt.Sprintf("sip:alice@127.0.0.1:%d", base+61))
	if ev, err := plain.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED"); err != nil || !strings.Contains(fmt.Sprint(ev["param"]), "488") {
		t.Fatalf("plain-RTP phone over TLS: %v %v, want 488", ev, err)
	}
	p.records(t) // stops parapet and verifies the chain
	return p.logPath, filepath.Join(dir, "state", "signing.pub")
}

// The auditor's pack from a real log: all four formats, each naming the
// controls with their status; the JSON valid against its schema; the
// inventory listing the TLS 1.1 phone and the plain-RTP one; and a tampered
// copy of the log reported as such.
func TestAuditorPackFromARealLog(t *testing.T) {
	requirePeers(t, "pdftoppm", "pdftotext")
	logPath, pub := auditLog(t)
	out := t.TempDir()
	if dir := os.Getenv("PARAPET_REPORT_DIR"); dir != "" {
		out = dir // keep the reports to look at
	}
	for _, f := range []string{"text", "json", "html", "pdf"} {
		code, _, stderr := runCmd("report", "-log", logPath, "-key", pub, "-format", f, "-o", filepath.Join(out, "report."+f))
		if code != 0 {
			t.Fatalf("report -format %s: exit %d: %s", f, code, stderr)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// JSON: valid against the schema, and the numbers of what happened.
	js := read("report.json")
	validateReport(t, js)
	var r report.Report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	disp := map[string]int{}
	for _, c := range r.Calls.ByDisposition {
		disp[c.Name] = c.Count
	}
	if disp["answered"] != 2 || disp["rejected"] != 1 {
		t.Errorf("calls by disposition %v, want 2 answered and 1 rejected", disp)
	}
	rules := func(rcs []report.RuleCount) string {
		var s []string
		for _, rc := range rcs {
			s = append(s, fmt.Sprintf("%s=%d", rc.Rule, rc.Count))
		}
		return strings.Join(s, " ")
	}
	if got := rules(r.Decisions.Upgraded); !strings.Contains(got, "media.upgrade=1") {
		t.Errorf("upgraded: %s", got)
	}
	if got := rules(r.Decisions.WouldReject); !strings.Contains(got, "media.srtp-required=1") {
		t.Errorf("would reject: %s", got)
	}
	if got := rules(r.Decisions.Rejected); !strings.Contains(got, "media.srtp-required=1") {
		t.Errorf("rejected: %s", got)
	}
	var refused int
	for _, ec := range r.Connections {
		if ec.Event == string(compliance.EventTLSRefused) {
			refused = ec.Count
		}
	}
	if refused != 1 {
		t.Errorf("TLS refusals %d, want 1: %+v", refused, r.Connections)
	}
	v := r.Sources[0].Verification
	if !v.Intact || v.Signatures != report.SignaturesVerified || len(v.LastHash) != 64 {
		t.Errorf("verification %+v", v)
	}
	statusOf := map[string]string{}
	for _, c := range r.Controls {
		statusOf[c.ID] = c.Status
	}
	for id, want := range map[string]string{
		"164.312(b)": report.StatusSatisfied, "164.312(c)(1)": report.StatusSatisfied,
		// The observe-mode branch leg carried plain RTP where SRTP is required.
		"164.312(e)(1)": report.StatusNeedsAttention, "164.312(e)(2)(ii)": report.StatusNeedsAttention,
	} {
		if statusOf[id] != want {
			t.Errorf("%s: %s, want %s", id, statusOf[id], want)
		}
	}

	// The inventory: the TLS 1.1 phone by its address and the highest
	// version it offered, the plain-RTP phone by its User-Agent.
	var tls11, plainRTP bool
	for _, p := range r.Inventory.Peers {
		for _, is := range p.Issues {
			if is.Kind == report.WeakTLSVersion && p.Address == "127.0.0.1" && is.Offered == "at most TLS1.1" && is.Refused == 1 {
				tls11 = true
			}
			if is.Kind == report.WeakPlainRTP && strings.HasPrefix(p.UserAgent, "baresip") && is.Offered == "RTP/AVP" {
				plainRTP = true
			}
		}
	}
	if !tls11 || !plainRTP {
		t.Errorf("inventory (TLS 1.1 phone listed: %v, plain-RTP phone listed: %v): %+v", tls11, plainRTP, r.Inventory)
	}
	// The same from the configuration alone: its log and its signing.pub.
	config := filepath.Join(filepath.Dir(filepath.Dir(logPath)), "parapet.hcl")
	code, byConfig, stderr := runCmd("report", "-c", config, "-format", "json")
	var rc report.Report
	if code != 0 || json.Unmarshal([]byte(byConfig), &rc) != nil || rc.Calls.Total != r.Calls.Total ||
		rc.Sources[0].Verification.Signatures != report.SignaturesVerified {
		t.Errorf("report -c: exit %d %s; %d calls, signatures %+v", code, stderr, rc.Calls.Total, rc.Sources)
	}
	code, inv, stderr := runCmd("inventory", "-log", logPath)
	if code != 0 || !strings.Contains(inv, "at most TLS1.1") || !regexp.MustCompile(`device\s+baresip`).MatchString(inv) {
		t.Errorf("parapet inventory: exit %d %s\n%s", code, stderr, inv)
	}

	// Text and HTML name each control with its status; the HTML has charts.
	txt := read("report.text")
	html := read("report.html")
	for _, c := range r.Controls {
		word := strings.ToUpper(strings.ReplaceAll(c.Status, "_", " "))
		if !regexp.MustCompile(regexp.QuoteMeta(c.ID) + `[^\n]*` + word).MatchString(txt) {
			t.Errorf("text report does not give %s as %s", c.ID, word)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(c.ID) + `(?s:.){0,400}?` + word).MatchString(html) {
			t.Errorf("HTML report does not give %s as %s", c.ID, word)
		}
	}
	if !strings.Contains(html, "<svg") || strings.Contains(html, "http://") && !strings.Contains(html, "http://www.w3.org/2000/svg") {
		t.Errorf("HTML report: no inline SVG chart, or a reference to the network")
	}
	if !strings.Contains(txt, v.LastHash) || !strings.Contains(html, v.LastHash) {
		t.Errorf("the reports do not name the last hash %s that ties them to the log", v.LastHash)
	}

	// PDF: pages render, and its text names each control with its status.
	pdf := filepath.Join(out, "report.pdf")
	if b, err := exec.Command("pdftoppm", "-r", "30", "-png", pdf, filepath.Join(out, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, b)
	}
	pages, _ := filepath.Glob(filepath.Join(out, "page*.png"))
	if len(pages) < 2 {
		t.Errorf("%d PDF pages rendered, want the whole report", len(pages))
	}
	ptxt, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	flat := strings.Join(strings.Fields(string(ptxt)), " ")
	for _, c := range r.Controls {
		word := strings.ToUpper(strings.ReplaceAll(c.Status, "_", " "))
		if !regexp.MustCompile(regexp.QuoteMeta(c.ID) + `.{0,300}?` + word).MatchString(flat) {
			t.Errorf("PDF text does not give %s as %s", c.ID, word)
		}
	}

	// A tampered copy: one call's disposition rewritten.
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(b, []byte(`"disposition":"rejected"`), []byte(`"disposition":"answered"`), 1)
	if bytes.Equal(bad, b) {
		t.Fatal("no rejected call in the log to tamper with")
	}
	tampered := filepath.Join(t.TempDir(), "compliance.jsonl")
	if err := os.WriteFile(tampered, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd("report", "-log", tampered, "-key", pub, "-format", "json")
	if code != 1 || !strings.Contains(stderr, "TAMPERED") {
		t.Errorf("report of a tampered log: exit %d, stderr %q; want 1 and TAMPERED", code, stderr)
	}
	var tr report.Report
	if err := json.Unmarshal([]byte(stdout), &tr); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, c := range tr.Controls {
		if (c.ID == "164.312(b)" || c.ID == "164.312(c)(1)") && (c.Status != report.StatusNeedsAttention || !strings.Contains(c.Summary, "altered")) {
			t.Errorf("tampered log: %s %s: %s", c.ID, c.Status, c.Summary)
		}
	}
}

// validateReport checks a JSON report against the schema the package ships.
func validateReport(t *testing.T, doc string) {
	t.Helper()
	schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(report.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(report.SchemaID, schema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(report.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("the report does not validate against its schema: %v", err)
	}
}
