package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
)

var checkHashRE = regexp.MustCompile(`policy (sha256:[0-9a-f]{64})\)`)

// checkHash runs `parapet check` with args and returns the policy hash it
// prints.
func checkHash(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(append([]string{"check"}, args...)...)
	m := checkHashRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("check %q: exit %d, no policy hash in %q (stderr %q)", args, code, out, errOut)
	}
	return m[1]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// pemFingerprints returns the SHA-256 (hex) of every certificate in a PEM
// file.
func pemFingerprints(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, certs.Fingerprint(c))
		}
	}
}

// trustSite writes a configuration with a TLS zone whose certificate, key
// and CA bundle are copies of the given files, under dir/certs, and returns
// the configuration's path.
func trustSite(t *testing.T, dir, stateDir, caFile, certFile, keyFile string) string {
	t.Helper()
	copyFile(t, caFile, filepath.Join(dir, "certs", "ca.pem"))
	copyFile(t, certFile, filepath.Join(dir, "certs", "sbc.pem"))
	copyFile(t, keyFile, filepath.Join(dir, "certs", "sbc.key"))
	conf := filepath.Join(dir, "parapet.hcl")
	src := fmt.Sprintf(`
state_dir = %q
zone "pbx" {
  listen = ["udp://127.0.0.1:25060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ["tls://127.0.0.1:25061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file   = "certs/sbc.pem"
    key_file    = "certs/sbc.key"
    ca_file     = "certs/ca.pem"
    client_auth = "require"
  }
  media { srtp = "require" }
}
route "out" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:127.0.0.1:25062"
}
media { address = "127.0.0.1" }
compliance { log = "${state_dir}/logs/compliance.jsonl" }
`, stateDir)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// The policy hash pins the trust material, not where it is kept: another
// CA bundle or another certificate of parapet's changes it; the same files
// in another directory, with another state directory, do not.
func TestPolicyHashPinsTrust(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.WriteSelfSigned("sbc.example", filepath.Join(dir, "a"), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.WriteSelfSigned("sbc.example", filepath.Join(dir, "b"), false)
	if err != nil {
		t.Fatal(err)
	}
	conf := trustSite(t, filepath.Join(dir, "site"), "state", a[0], a[2], a[3])
	h := checkHash(t, "-c", conf)

	moved := trustSite(t, filepath.Join(dir, "elsewhere", "etc"), "/var/lib/other-state", a[0], a[2], a[3])
	if got := checkHash(t, "-c", moved); got != h {
		t.Errorf("the same files in another directory, with another state_dir: %s, want %s", got, h)
	}

	ca := filepath.Join(dir, "site", "certs", "ca.pem")
	copyFile(t, b[0], ca)
	otherCA := checkHash(t, "-c", conf)
	if otherCA == h {
		t.Error("another CA bundle in the same file left the hash unchanged")
	}
	copyFile(t, a[0], ca)
	if got := checkHash(t, "-c", conf); got != h {
		t.Errorf("the first CA bundle back: %s, want %s", got, h)
	}

	copyFile(t, b[2], filepath.Join(dir, "site", "certs", "sbc.pem"))
	copyFile(t, b[3], filepath.Join(dir, "site", "certs", "sbc.key"))
	otherCert := checkHash(t, "-c", conf)
	if otherCert == h || otherCert == otherCA {
		t.Error("another server certificate left the hash unchanged")
	}
}

// `check -print` shows what the hash covers: fingerprints, never paths, and
// the hash is the SHA-256 of its compact form.
func TestCheckPrintsCanonicalPolicy(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.WriteSelfSigned("sbc.example", filepath.Join(dir, "a"), false)
	if err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(dir, "site")
	conf := trustSite(t, site, "state", a[0], a[2], a[3])
	code, out, errOut := runCmd("check", "-print", "-c", conf)
	if code != 0 {
		t.Fatalf("check -print: exit %d %q %q", code, out, errOut)
	}
	body, last, _ := strings.Cut(strings.TrimSuffix(out, "\n"), "\n}\n")
	body += "\n}"
	m := checkHashRE.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("check -print: no hash after the JSON:\n%s", out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(body)); err != nil {
		t.Fatalf("check -print: not JSON: %v\n%s", err, body)
	}
	sum := sha256.Sum256(compact.Bytes())
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != m[1] {
		t.Errorf("hash %s, but the printed policy hashes to %s", m[1], got)
	}
	if h := checkHash(t, "-c", conf); h != m[1] {
		t.Errorf("check -print says %s, check says %s", m[1], h)
	}
	for _, want := range append(pemFingerprints(t, a[0]), pemFingerprints(t, a[2])...) {
		if !strings.Contains(body, want) {
			t.Errorf("the canonical policy lacks fingerprint %s:\n%s", want, body)
		}
	}
	for _, banned := range []string{dir, ".pem", ".key", "state", "compliance.jsonl", "BEGIN"} {
		if strings.Contains(body, banned) {
			t.Errorf("the canonical policy holds %q:\n%s", banned, body)
		}
	}
}

// The embedded default names the lab CA under the working directory: the
// same lab PKI seen from two directories hashes alike, and check creates
// nothing: before the lab PKI exists it says the hash is not known yet.
func TestCheckEmbeddedDefaultHash(t *testing.T) {
	one, two := t.TempDir(), t.TempDir()
	t.Chdir(one)
	code, out, errOut := runCmd("check")
	if code != 0 || checkHashRE.MatchString(out) || !strings.Contains(out, "not known") {
		t.Errorf("check before the lab PKI exists: exit %d %q %q; want OK and no hash", code, out, errOut)
	}
	if code, out, _ := runCmd("check", "-print"); code == 0 || strings.Contains(out, "sha256:") {
		t.Errorf("check -print before the lab PKI exists: exit %d %q; want a failure and no hash", code, out)
	}
	if _, err := os.Stat(filepath.Join(one, "parapet-state")); err == nil {
		t.Fatal("check created the state directory")
	}

	pki, err := certs.EnsureLab(filepath.Join(one, "parapet-state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pki.CAFile, pki.CAKeyFile, pki.CertFile, pki.KeyFile, pki.PeerCertFile, pki.PeerKeyFile, pki.PeerBundleFile} {
		copyFile(t, f, filepath.Join(two, "parapet-state", "certs", filepath.Base(f)))
	}
	h1 := checkHash(t)
	t.Chdir(two)
	if h2 := checkHash(t); h2 != h1 {
		t.Errorf("the embedded default with the same lab PKI: %s in one directory, %s in another", h1, h2)
	}
}

// logEvent is a log record as this test reads it (by JSON name, so that it
// says what is in the file).
type logEvent struct {
	Seq uint64 `json:"seq"`
	Log *struct {
		Event          string `json:"event"`
		Detail         string `json:"detail"`
		Config         string `json:"config"`
		PolicyHash     string `json:"policy_hash"`
		PrevPolicyHash string `json:"prev_policy_hash"`
	} `json:"log"`
	Call *struct {
		PolicyHash string `json:"policy_hash"`
	} `json:"call"`
}

func readLogEvents(t *testing.T, path string) []logEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// The opened event names the configuration and the policy hash; SIGHUP
// after a new server certificate or a CA bundle with a CA withdrawn
// records `reloaded` with both hashes and new calls carry the new one; a
// reload that cannot take effect (a CA added, a broken certificate, a
// broken file) records `reload_refused` and the old hash stays in force.
func TestRunRecordsTrustReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	base := portBlock(t)
	certDir := filepath.Join(dir, "state", "certs")
	carrier, pbx := simPeers(t, certDir, base+1, base+2)
	lab := filepath.Join(certDir, "lab-ca.pem")
	other, err := certs.WriteSelfSigned("other.example", filepath.Join(dir, "other"), false)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := certs.WriteSelfSigned("newer.example", filepath.Join(dir, "newer"), false)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "trust.pem")
	writeBundle := func(files ...string) {
		t.Helper()
		var b []byte
		for _, f := range files {
			c, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, c...)
		}
		if err := os.WriteFile(bundle, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeBundle(lab, other[0])
	conf := simSite(t, dir, base, `cert_file = "state/certs/parapet.pem"
    key_file  = "state/certs/parapet.key"
    ca_file   = "trust.pem"`, "")
	h0 := checkHash(t, "-c", conf)

	p := runParapet(t, "-c", conf, "-log-format", "json")
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	calls := 0
	call := func() {
		t.Helper()
		calls++
		caller, callee := placeCall(ctx, t, pbx, carrier, fmt.Sprintf("sip:+15551230000@127.0.0.1:%d", base+60))
		if err := caller.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-callee.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the carrier leg got no BYE")
		}
		// The record is written once the call's end is settled: wait for
		// it, so that the log's order is the test's.
		n := 0
		if !poll(10*time.Second, func() bool {
			b, _ := os.ReadFile(logPath)
			n = bytes.Count(b, []byte(`"type":"call"`))
			return n == calls
		}) {
			t.Fatalf("%d call records, want %d", n, calls)
		}
	}
	hup := func(wait string) {
		t.Helper()
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog(t, wait)
	}
	call()

	// A new server certificate from the same CA.
	if _, err := certs.EnsureLab(certDir, "sbc2.example"); err != nil {
		t.Fatal(err)
	}
	h1 := checkHash(t, "-c", conf)
	hup("configuration reloaded")
	call()

	// The CA bundle without the other CA: trust withdrawn at once.
	writeBundle(lab)
	h2 := checkHash(t, "-c", conf)
	hup("configuration reloaded")
	call()

	// A CA that was not trusted at start cannot be added without a restart.
	writeBundle(lab, newer[0])
	hup("configuration reload refused")
	writeBundle(lab)
	// A broken certificate, then a file with an error: refused.
	good, _ := os.ReadFile(filepath.Join(certDir, "parapet.pem"))
	os.WriteFile(filepath.Join(certDir, "parapet.pem"), []byte("not a certificate\n"), 0o600)
	hup("configuration reload refused")
	os.WriteFile(filepath.Join(certDir, "parapet.pem"), good, 0o600)
	os.WriteFile(conf, []byte("zone \"pbx\" { bogus = 1 }\n"), 0o600)
	hup("configuration reload failed")
	call()

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v", err)
	}
	if res, err := compliance.Verify([]string{logPath}, compliance.VerifyOptions{Head: true}); err != nil || !res.OK() {
		t.Fatalf("log: %v %+v", err, res)
	}

	if h0 == h1 || h1 == h2 || h0 == h2 {
		t.Fatalf("hashes %s, %s, %s: want three different ones", h0, h1, h2)
	}
	var got []string
	for _, e := range readLogEvents(t, logPath) {
		switch {
		case e.Call != nil:
			got = append(got, "call "+e.Call.PolicyHash)
		case e.Log != nil && e.Log.Event != string(compliance.LogCheckpoint):
			s := e.Log.Event + " " + e.Log.PrevPolicyHash + " " + e.Log.PolicyHash + " " + e.Log.Config
			got = append(got, strings.TrimSpace(strings.Join(strings.Fields(s), " ")))
			if e.Log.Event == "reloaded" && e.Log.Detail != fmt.Sprintf("policy %s -> %s from %s", e.Log.PrevPolicyHash, e.Log.PolicyHash, conf) {
				t.Errorf("reloaded detail %q", e.Log.Detail)
			}
			if e.Log.Event == "reload_refused" && (e.Log.Detail == "" || strings.Contains(e.Log.Detail, "\n") || len(e.Log.Detail) > 300 ||
				strings.Contains(e.Log.Detail, "BEGIN")) {
				t.Errorf("reload_refused detail %q", e.Log.Detail)
			}
		}
	}
	want := []string{
		"opened " + h0 + " " + conf,
		"call " + h0,
		"reloaded " + h0 + " " + h1 + " " + conf,
		"call " + h1,
		"reloaded " + h1 + " " + h2 + " " + conf,
		"call " + h2,
		"reload_refused " + h2 + " " + h2 + " " + conf,
		"reload_refused " + h2 + " " + h2 + " " + conf,
		"reload_refused " + h2 + " " + h2 + " " + conf,
		"call " + h2,
		"closed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n\tc  d", 300); got != "a b c d" {
		t.Errorf("oneLine = %q", got)
	}
	long := strings.Repeat("é", 400)
	got := oneLine(long, maxRefusedDetail)
	if len(got) > maxRefusedDetail || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("oneLine of a long text: %d bytes %q", len(got), got)
	}
}
