package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

func allFilesExist(string) bool { return true }

func noEnv(string) (string, bool) { return "", false }

func loadLab(t *testing.T, baseDir string) (*Config, Diagnostics) {
	t.Helper()
	name, src := LabDefault()
	return LoadBytes(name, src, LoadOptions{BaseDir: baseDir, FileExists: allFilesExist, LookupEnv: noEnv})
}

func TestLabDefault(t *testing.T) {
	cfg, diags := loadLab(t, "/srv/lab")
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("lab default has errors:\n%s", diags.Error())
	}
	// The only warning is the lab certificate, at the carrier's tls block.
	if got := diags.Warnings(); len(got) != 1 || got[0].Summary != "self-signed lab certificate; not for production" ||
		got[0].File != LabName || got[0].Line == 0 {
		t.Errorf("warnings = %v", got)
	}
	if cfg.Source != LabName {
		t.Errorf("Source = %q", cfg.Source)
	}
	if cfg.StateDir != "/srv/lab/parapet-state" {
		t.Errorf("StateDir = %q", cfg.StateDir)
	}

	pbx, carrier := cfg.Zone("pbx"), cfg.Zone("carrier")
	if pbx == nil || carrier == nil || len(cfg.Zones) != 2 || cfg.Zone("nope") != nil {
		t.Fatalf("zones = %v", cfg.Zones)
	}
	lp := []string{}
	for _, l := range pbx.Listen {
		lp = append(lp, l.String())
	}
	if !slices.Equal(lp, []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}) {
		t.Errorf("pbx listen = %v", lp)
	}
	if p := pbx.Policy; p.Signaling != policy.RequirementOff || p.SRTP != policy.RequirementAllow ||
		!slices.Equal(p.KeyExchange, []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}) ||
		p.Mode != policy.ModeEnforce || pbx.TLS != nil ||
		!p.AdmitsSource(netip.MustParseAddr("127.0.0.9")) || !p.AdmitsSource(netip.MustParseAddr("::1")) ||
		p.AdmitsSource(netip.MustParseAddr("192.0.2.1")) {
		t.Errorf("pbx policy = %+v", p)
	}
	p := carrier.Policy
	if p.Signaling != policy.RequirementRequire || p.SRTP != policy.RequirementRequire ||
		!slices.Equal(p.KeyExchange, []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}) ||
		!slices.Equal(p.Suites, policy.DefaultSuites) || p.MinTLS != policy.VersionTLS12 ||
		!p.VerifyPeer || p.ClientAuth != policy.ClientAuthRequest {
		t.Errorf("carrier policy = %+v", p)
	}
	if tl := carrier.TLS; tl == nil || !tl.Lab() || tl.CAFile != "/srv/lab/parapet-state/certs/lab-ca.pem" ||
		tl.MinVersion != policy.VersionTLS12 || !tl.VerifyPeer {
		t.Errorf("carrier tls = %+v", carrier.TLS)
	}
	if plan, ok := policy.Plan(&carrier.Policy, policy.TransportTLS); !ok || !plan.SRTP {
		t.Errorf("policy.Plan(carrier) = %+v, %v; want SRTP", plan, ok)
	}

	if len(cfg.Routes) != 2 {
		t.Fatalf("routes = %v", cfg.Routes)
	}
	out, in := cfg.Routes[0], cfg.Routes[1]
	if !slices.Equal(cfg.Emergency.Numbers, []string{"911", "933"}) || !out.Match.MatchString("911") {
		t.Errorf("emergency numbers %q, routed by outbound: %v", cfg.Emergency.Numbers, out.Match)
	}
	if out.Name != "outbound" || out.From != "pbx" || out.To != "carrier" || out.Match == nil ||
		!out.Match.MatchString("+15551234567") || out.Match.MatchString("alice") ||
		out.Target != (topology.Target{URI: "sips:127.0.0.1:5062", Secure: true, Host: "127.0.0.1", Port: 5062, Transport: policy.TransportTLS}) ||
		out.Auth != nil {
		t.Errorf("outbound = %+v", out)
	}
	if in.Name != "inbound" || in.From != "carrier" || in.To != "pbx" || in.Match != nil ||
		in.Target != (topology.Target{URI: "sip:127.0.0.1:5070", Host: "127.0.0.1", Port: 5070, Transport: policy.TransportUDP}) {
		t.Errorf("inbound = %+v", in)
	}
	wantMedia := topology.Media{Address: netip.MustParseAddr("127.0.0.1"), PortMin: 20000, PortMax: 29999, Timeout: 30 * time.Second, HoldTimeout: time.Hour}
	if cfg.Media != wantMedia {
		t.Errorf("media = %+v", cfg.Media)
	}
	if cfg.Compliance != (Compliance{Log: "/srv/lab/parapet-state/compliance.jsonl", Pseudonymize: true}) {
		t.Errorf("compliance = %+v", cfg.Compliance)
	}
	if cfg.Admin.Listen != "127.0.0.1:9090" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
}

// A ca_file naming the lab CA in the state directory may be missing: run
// creates it (NeedsLabCA). Any other missing file is still an error.
func TestLabCAMayBeMissing(t *testing.T) {
	none := func(string) bool { return false }
	name, src := LabDefault()
	cfg, diags := LoadBytes(name, src, LoadOptions{BaseDir: "/srv/lab", FileExists: none, LookupEnv: noEnv})
	if diags.HasErrors() || cfg == nil || !cfg.NeedsLabCA {
		t.Fatalf("lab default with no lab CA yet: %v\n%s", cfg, diags.Error())
	}
	if cfg, _ := loadLab(t, "/srv/lab"); cfg.NeedsLabCA {
		t.Error("NeedsLabCA set although the lab CA exists")
	}
	other := strings.Replace(string(src), "${state_dir}/certs/lab-ca.pem", "${state_dir}/certs/carrier-ca.pem", 1)
	if _, diags := LoadBytes(name, []byte(other), LoadOptions{BaseDir: "/srv/lab", FileExists: none, LookupEnv: noEnv}); !diags.HasErrors() {
		t.Error("a missing ca_file that is not the lab CA was accepted")
	}
}

func TestLabDefaultReturnsACopy(t *testing.T) {
	_, a := LabDefault()
	a[0] = 'X'
	if _, b := LabDefault(); b[0] == 'X' {
		t.Error("LabDefault returned the embedded bytes themselves")
	}
}

func TestExamples(t *testing.T) {
	env := func(k string) (string, bool) { return "x", k == "CARRIER_PASSWORD" }
	for _, tc := range []struct {
		file  string
		zones []string
	}{
		{"trunk-edge.hcl", []string{"pbx", "carrier"}},
		{"clinic-zero-trust.hcl", []string{"staff", "telehealth", "pbx"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, diags := Load(filepath.Join("examples", tc.file), LoadOptions{FileExists: allFilesExist, LookupEnv: env})
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("errors:\n%s", diags.Error())
			}
			// The examples show good practice: not even a warning.
			if len(diags) != 0 {
				t.Errorf("warnings:\n%s", diags.Error())
			}
			var names []string
			for _, z := range cfg.Zones {
				names = append(names, z.Policy.Name)
			}
			if !slices.Equal(names, tc.zones) {
				t.Errorf("zones = %v, want %v", names, tc.zones)
			}
		})
	}
	t.Run("clinic-zero-trust every zone TLS and SRTP", func(t *testing.T) {
		cfg, _ := Load("examples/clinic-zero-trust.hcl", LoadOptions{FileExists: allFilesExist, LookupEnv: env})
		for _, z := range cfg.Zones {
			if z.Policy.Signaling != policy.RequirementRequire || z.Policy.SRTP != policy.RequirementRequire || z.TLS.Lab() {
				t.Errorf("zone %s: %+v", z.Policy.Name, z.Policy)
			}
		}
		for _, r := range cfg.Routes {
			if r.Target.Transport != policy.TransportTLS {
				t.Errorf("route %s: %s", r.Name, r.Target.URI)
			}
		}
	})
	t.Run("trunk-edge without the password", func(t *testing.T) {
		cfg, diags := Load("examples/trunk-edge.hcl", LoadOptions{FileExists: allFilesExist, LookupEnv: noEnv})
		// One warning per route that authenticates: emergency and outbound.
		if cfg == nil || len(diags) != 2 {
			t.Errorf("diags = %v", diags)
		}
		for _, d := range diags {
			if d.Severity != SeverityWarning || !strings.Contains(d.Detail, "digest challenges from the target will fail") {
				t.Errorf("diag = %v", d)
			}
		}
	})
}

// Building blocks for small configurations.
const (
	pbxZone = `zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
`
	carrierZone = `zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
}
`
	pbxRoute = `route "r" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:5070"
}
`
	mediaSrc = "media { address = \"127.0.0.1\" }\n"
)

// mixedZone is a zone with a UDP and a TLS listener and the given media
// block; mixedRoute routes from pbx to it over UDP.
func mixedZone(media string) string {
	return `zone "mixed" {
  listen = ["udp://127.0.0.1:5080", "tls://127.0.0.1:5081"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
  ` + media + `
}
`
}

const mixedRoute = `route "m" {
  from   = "pbx"
  to     = "mixed"
  target = "sip:127.0.0.1:5090"
}
`

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // warning summaries, in position order
	}{
		{"clean", pbxZone + carrierZone + pbxRoute + mediaSrc, nil},
		{"observe mode",
			strings.Replace(pbxZone, "peers", "mode = \"observe\"\n  peers", 1) + pbxRoute + mediaSrc,
			[]string{`zone "pbx" is in observe mode`}},
		{"sdes allowed without TLS",
			strings.Replace(pbxZone, `media { srtp = "allow" }`, "media {\n    srtp = \"allow\"\n    key_exchange = [\"sdes\"]\n  }", 1) + mediaSrc,
			[]string{
				"SDES is never used on zone pbx: it has no TLS listener",
				"no routes: every INVITE will get 404",
			}},
		{"dtls on a TLS zone",
			strings.Replace(carrierZone, "  tls {", "  media { key_exchange = [\"dtls\", \"sdes\"] }\n  tls {", 1) + pbxZone + pbxRoute + mediaSrc,
			nil},
		{"dtls required on a zone without TLS",
			carrierZone + strings.Replace(pbxZone, `srtp = "allow"`, `key_exchange = ["dtls"]`, 1) + pbxRoute + mediaSrc,
			[]string{"DTLS-SRTP fingerprints would cross in clear: zone pbx has no TLS listener"}},
		{"lab certificate",
			`zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
}
` + pbxZone + pbxRoute + mediaSrc,
			[]string{"self-signed lab certificate; not for production"}},
		{"verify_peer off",
			strings.Replace(carrierZone, "key_file  = \"c.key\"", "key_file  = \"c.key\"\n    verify_peer = false", 1) + pbxZone + pbxRoute + mediaSrc,
			[]string{"peer certificates are not verified"}},
		{"srtp optional on TLS zone",
			strings.Replace(carrierZone, "  tls {", "  media { srtp = \"allow\" }\n  tls {", 1) + pbxZone + pbxRoute + mediaSrc,
			[]string{"SRTP is optional on a TLS zone"}},
		{"32-bit tag",
			strings.Replace(carrierZone, "  tls {", "  media { suites = [\"AES_CM_128_HMAC_SHA1_80\", \"AES_CM_128_HMAC_SHA1_32\"] }\n  tls {", 1) + pbxZone + pbxRoute + mediaSrc,
			[]string{"32-bit authentication tag"}},
		{"sdes toward an allow zone over udp",
			mixedZone(`media { srtp = "allow" }`) + mixedRoute + pbxZone + mediaSrc,
			[]string{"SRTP is optional on a TLS zone", "zone mixed mixes clear and TLS listeners with SDES allowed"}},
		{"sdes listed toward an allow zone over udp",
			mixedZone("media {\n    srtp         = \"allow\"\n    key_exchange = [\"sdes\"]\n  }") + mixedRoute + pbxZone + mediaSrc,
			[]string{"SRTP is optional on a TLS zone", "zone mixed mixes clear and TLS listeners with SDES allowed",
				`route "m" offers plain RTP toward zone mixed: SDES is not sent over udp`}},
		{"mixed zone requiring SRTP",
			mixedZone("") + pbxZone + pbxRoute + mediaSrc,
			[]string{"zone mixed mixes clear and TLS listeners with SDES allowed"}},
		{"srtp required by default on a zone without TLS",
			strings.Replace(pbxZone, `media { srtp = "allow" }`, "", 1) + pbxRoute + mediaSrc,
			[]string{"zone pbx takes only DTLS-SRTP calls: it requires SRTP and has no TLS listener"}},
		{"password variable unset",
			strings.Replace(pbxRoute, "target", "auth {\n    username     = \"u\"\n    password_env = \"NOT_SET_ANYWHERE\"\n  }\n  target", 1) + pbxZone + mediaSrc,
			[]string{"environment variable NOT_SET_ANYWHERE is not set"}},
		{"pseudonymize off",
			pbxZone + pbxRoute + mediaSrc + "compliance {\n  pseudonymize = false\n}\n",
			[]string{"caller and callee identifiers are stored in clear"}},
		{"no routes", pbxZone + mediaSrc, []string{"no routes: every INVITE will get 404"}},
		{"attempt_timeout with a single target",
			strings.Replace(pbxRoute, "target", "attempt_timeout = \"2s\"\n  target", 1) + pbxZone + mediaSrc,
			[]string{"attempt_timeout without targets"}},
		{"no peers",
			strings.Replace(pbxZone, `["127.0.0.0/8"]`, "[]", 1) + pbxRoute + mediaSrc,
			[]string{`zone "pbx" admits no peers`}},
		{"unspecified media address",
			pbxZone + pbxRoute + "media { address = \"0.0.0.0\" }\n",
			[]string{"unspecified media address without advertise"}},
		{"unspecified listener",
			strings.Replace(pbxZone, "127.0.0.1:5060", "0.0.0.0:5060", 1) + pbxRoute + mediaSrc,
			[]string{"unspecified listener address without advertise"}},
		{"ciphers with TLS 1.3",
			strings.Replace(carrierZone, "key_file  = \"c.key\"", "key_file  = \"c.key\"\n    min_version = \"1.3\"\n    ciphers = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]", 1) + pbxZone + pbxRoute + mediaSrc,
			[]string{"ciphers have no effect with min_version 1.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("w.hcl", []byte(tc.src), testOpts())
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("errors:\n%s\nsource:\n%s", diags.Errors().Error(), tc.src)
			}
			var got []string
			for _, d := range diags.Warnings() {
				if d.Line == 0 || d.File != "w.hcl" {
					t.Errorf("warning without position: %s", d)
				}
				got = append(got, d.Summary)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("warnings = %q, want %q", got, want)
			}
		})
	}
}

func TestPolicyHash(t *testing.T) {
	name, src := LabDefault()
	policyOf := func(src string, opts LoadOptions, trust func(*Config) Trust) Policy {
		t.Helper()
		cfg, diags := LoadBytes(name, []byte(src), opts)
		if cfg == nil {
			t.Fatalf("errors:\n%s", diags.Error())
		}
		pol, err := cfg.Policy(trust(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	load := func(src string, opts LoadOptions) string {
		t.Helper()
		return policyOf(src, opts, fakeTrust).Hash
	}
	opts := LoadOptions{BaseDir: "/srv/lab", FileExists: allFilesExist, LookupEnv: noEnv}
	pol := policyOf(string(src), opts, fakeTrust)
	h := pol.Hash
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("hash %q", h)
	}
	if sum := sha256.Sum256(pol.Canonical); h != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("hash %s is not the SHA-256 of the canonical form", h)
	}
	if again := load(string(src), opts); again != h {
		t.Errorf("same input, different hash: %s vs %s", h, again)
	}

	// Comments, layout and writing a default explicitly do not change the
	// effective configuration.
	same := strings.ReplaceAll(string(src), "  ", "    ")
	same = strings.Replace(same, "# parapet lab default", "# another comment", 1)
	same = strings.Replace(same, `zone "pbx" {`, "zone \"pbx\" {\n  mode = \"enforce\"", 1)
	if got := load(same, opts); got != h {
		t.Errorf("layout-only change altered the hash")
	}
	// The Source name is not part of the hash.
	if cfg, _ := LoadBytes("other.hcl", src, opts); cfg == nil {
		t.Fatal("other.hcl does not load")
	} else if p, _ := cfg.Policy(fakeTrust(cfg)); p.Hash != h {
		t.Errorf("file name altered the hash")
	}
	// Nor is where the files are: the same configuration and trust material
	// from another directory, with another state directory, log, rotation,
	// admin address, or media address and ports, hashes alike.
	elsewhere := opts
	elsewhere.BaseDir = "/home/someone/checkout"
	if got := load(string(src), elsewhere); got != h {
		t.Errorf("another base directory altered the hash")
	}
	for _, tc := range []struct{ old, new string }{
		{`zone "pbx" {`, "state_dir = \"/var/lib/elsewhere\"\nzone \"pbx\" {"},
		{`log          = "${state_dir}/compliance.jsonl"`, `log          = "/var/log/parapet/c.jsonl"` + "\n  rotate_size = \"10MB\""},
		{`listen = "127.0.0.1:9090"`, `listen = "127.0.0.1:9191"`},
		{`address = "127.0.0.1"`, "address = \"127.0.0.2\"\n  advertise = \"192.0.2.1\""},
		{`ports   = "20000-29999"`, `ports   = "40000-40999"`},
		{`peers  = ["127.0.0.0/8", "::1/128"]
  # No cert_file`, "peers  = [\"127.0.0.0/8\", \"::1/128\"]\n  advertise = \"sbc.example\"\n  # No cert_file"},
		{`ca_file     = "${state_dir}/certs/lab-ca.pem"`, `ca_file     = "/etc/ssl/lab-ca.pem"`},
	} {
		changed := strings.Replace(string(src), tc.old, tc.new, 1)
		if changed == string(src) {
			t.Fatalf("%q not found in lab.hcl", tc.old)
		}
		if got := load(changed, opts); got != h {
			t.Errorf("%s -> %s: hash changed, but it is not policy", tc.old, tc.new)
		}
	}

	// Every policy field change shows.
	for _, tc := range []struct{ old, new string }{
		{`min_version = "1.2"`, `min_version = "1.3"`},
		{`client_auth = "request"`, `client_auth = "require"`},
		{`verify_peer = true`, `verify_peer = false`},
		{`srtp         = "require"`, `srtp         = "allow"`},
		{`"AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"`, `"AEAD_AES_128_GCM", "AEAD_AES_256_GCM", "AES_CM_128_HMAC_SHA1_80"`},
		{`key_exchange = ["sdes", "dtls"]`, `key_exchange = ["dtls", "sdes"]`},
		{`peers  = ["127.0.0.0/8", "::1/128"]`, `peers  = ["127.0.0.0/8"]`},
		{`media { srtp = "allow" }`, `media { srtp = "off" }`},
		{`media { srtp = "allow" }`, `media {` + "\n    srtp = \"allow\"\n    rtcp_feedback = \"on\"\n  }"},
		{`listen = ["tls://127.0.0.1:5061"]`, `listen = ["tls://127.0.0.1:5061", "tcp://127.0.0.1:5063"]`},
		{`zone "carrier" {`, "zone \"carrier\" {\n  mode = \"observe\""},
		{`client_auth = "request"`, "client_auth = \"request\"\n    server_name = \"carrier.example\""},
		{`min_version = "1.2"`, "min_version = \"1.2\"\n    ciphers = [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]"},
		{`{3,15}`, `{3,16}`},
		{`target = "sips:127.0.0.1:5062"`, `target = "sips:127.0.0.1:5063"`},
		{`target = "sips:127.0.0.1:5062"`, "target = \"sips:127.0.0.1:5062\"\n  max_calls = 5"},
		{`target = "sips:127.0.0.1:5062"`, "target = \"sips:127.0.0.1:5062\"\n  auth_passthrough = false"},
		{`timeout = "30s"`, `timeout = "31s"`},
		{`timeout = "30s"`, "timeout = \"30s\"\n  hold_timeout = \"2h\""},
		{`pseudonymize = true`, `pseudonymize = false`},
	} {
		changed := strings.Replace(string(src), tc.old, tc.new, 1)
		if changed == string(src) {
			t.Fatalf("%q not found in lab.hcl", tc.old)
		}
		if got := load(changed, opts); got == h {
			t.Errorf("%s -> %s: hash unchanged", tc.old, tc.new)
		}
	}

	// The trust material shows: another certificate, another CA, one CA
	// more or less, the system roots; the order of a bundle does not.
	withTrust := func(edit func(zt *ZoneTrust)) string {
		t.Helper()
		return policyOf(string(src), opts, func(c *Config) Trust {
			tr := fakeTrust(c)
			zt := tr["carrier"]
			edit(&zt)
			tr["carrier"] = zt
			return tr
		}).Hash
	}
	other := strings.Repeat("ab", 32)
	for name, edit := range map[string]func(*ZoneTrust){
		"another certificate": func(zt *ZoneTrust) { zt.Cert = other },
		"another CA":          func(zt *ZoneTrust) { zt.CAs = []string{other} },
		"one CA more":         func(zt *ZoneTrust) { zt.CAs = append(zt.CAs, other) },
		"system roots":        func(zt *ZoneTrust) { zt.CAs = nil },
	} {
		if got := withTrust(edit); got == h {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	two := withTrust(func(zt *ZoneTrust) { zt.CAs = append(zt.CAs, other) })
	if got := withTrust(func(zt *ZoneTrust) { zt.CAs = append([]string{other}, append(zt.CAs, other)...) }); got != two {
		t.Errorf("the order or repetition of a CA bundle altered the hash")
	}
	if strings.Contains(string(pol.Canonical), "/srv/lab") || !strings.Contains(string(pol.Canonical), fakeTrust(mustLoadLab(t, src, opts))["carrier"].Cert) {
		t.Errorf("the canonical form holds a path, or lacks the certificate fingerprint:\n%s", pol.Canonical)
	}

	// Password values never enter the hash; their variable names do.
	withAuth := strings.Replace(string(src), `target = "sips:127.0.0.1:5062"`,
		"target = \"sips:127.0.0.1:5062\"\n  auth {\n    username     = \"u\"\n    password_env = \"PW\"\n  }", 1)
	envA := opts
	envA.LookupEnv = func(string) (string, bool) { return "secret-a", true }
	envB := opts
	envB.LookupEnv = func(string) (string, bool) { return "secret-b", true }
	ha := load(withAuth, envA)
	if hb := load(withAuth, envB); ha != hb || ha == h {
		t.Errorf("password value leaks into the hash, or auth is not hashed")
	}
	if hc := load(strings.Replace(withAuth, `"PW"`, `"PW2"`, 1), envA); hc == ha {
		t.Errorf("password_env name not hashed")
	}
	if hu := load(strings.Replace(withAuth, `"u"`, `"v"`, 1), envA); hu == ha {
		t.Errorf("auth username not hashed")
	}
}

func mustLoadLab(t *testing.T, src []byte, opts LoadOptions) *Config {
	t.Helper()
	cfg, diags := LoadBytes(LabName, src, opts)
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	return cfg
}

// Policy needs the trust material of every TLS zone, as fingerprints, and
// of no other zone.
func TestPolicyTrustErrors(t *testing.T) {
	_, src := LabDefault()
	cfg := mustLoadLab(t, src, LoadOptions{BaseDir: "/srv/lab", FileExists: allFilesExist, LookupEnv: noEnv})
	good := fakeTrust(cfg)
	for name, tr := range map[string]Trust{
		"missing zone":         {},
		"path as certificate":  {"carrier": {Cert: "/srv/lab/parapet-state/certs/parapet.pem", CAs: good["carrier"].CAs}},
		"upper-case hex":       {"carrier": {Cert: strings.ToUpper(good["carrier"].Cert)}},
		"bad CA":               {"carrier": {Cert: good["carrier"].Cert, CAs: []string{"lab-ca.pem"}}},
		"zone without TLS":     {"carrier": good["carrier"], "pbx": good["carrier"]},
		"zone that is unknown": {"carrier": good["carrier"], "nowhere": good["carrier"]},
	} {
		if p, err := cfg.Policy(tr); err == nil {
			t.Errorf("%s: policy %s, want an error", name, p.Hash)
		}
	}
}

func TestLoadDefaultsBaseDirToFileDir(t *testing.T) {
	cfg, diags := Load("testdata/good/minimal.hcl", LoadOptions{})
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	abs, err := filepath.Abs("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(abs, "parapet-state"); cfg.StateDir != want {
		t.Errorf("StateDir = %q, want %q", cfg.StateDir, want)
	}
	if want := filepath.Join(abs, "parapet-state", "compliance.jsonl"); cfg.Compliance.Log != want {
		t.Errorf("Compliance.Log = %q, want %q", cfg.Compliance.Log, want)
	}
}

func TestLoadBytesEmptyBaseDirIsWorkingDir(t *testing.T) {
	src := pbxZone + pbxRoute + mediaSrc + "compliance { log = \"${config_dir}/c.jsonl\" }\n"
	cfg, diags := LoadBytes("x.hcl", []byte(src), LoadOptions{})
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	if cfg.StateDir != "parapet-state" || cfg.Compliance.Log != "c.jsonl" {
		t.Errorf("StateDir = %q, Log = %q", cfg.StateDir, cfg.Compliance.Log)
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load("testdata/does-not-exist.hcl", LoadOptions{})
	if cfg != nil || len(diags) != 1 || !diags.HasErrors() || diags[0].File != "testdata/does-not-exist.hcl" {
		t.Fatalf("cfg = %v, diags = %v", cfg, diags)
	}
	if err := diags.Err(); err == nil || !strings.Contains(err.Error(), "cannot read configuration") {
		t.Errorf("Err() = %v", err)
	}
}

func TestFileExistsDefaultUsesFileSystem(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"c.pem", "c.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := carrierZone + pbxZone + pbxRoute + mediaSrc
	if cfg, diags := LoadBytes("x.hcl", []byte(src), LoadOptions{BaseDir: dir}); cfg == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	} else if tl := cfg.Zone("carrier").TLS; tl.CertFile != filepath.Join(dir, "c.pem") || tl.Lab() {
		t.Errorf("tls = %+v", tl)
	}
	_, diags := LoadBytes("x.hcl", []byte(src), LoadOptions{BaseDir: t.TempDir()})
	if n := len(diags.Errors()); n != 2 {
		t.Errorf("want 2 file-not-found errors, got:\n%s", diags.Error())
	}
}

func TestDiagnosticString(t *testing.T) {
	for _, tc := range []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{Severity: SeverityError, Summary: "s", Detail: "d\n  more", File: "f.hcl", Line: 3, Column: 7},
			"f.hcl:3:7: error: s: d more"},
		{Diagnostic{Severity: SeverityWarning, Summary: "s", File: "f.hcl", Line: 1, Column: 1},
			"f.hcl:1:1: warning: s"},
		{Diagnostic{Severity: SeverityError, Summary: "s", Detail: "d", File: "f.hcl"}, "f.hcl: error: s: d"},
		{Diagnostic{Severity: SeverityError, Summary: "s"}, "error: s"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
	ds := Diagnostics{
		{Severity: SeverityWarning, Summary: "w"},
		{Severity: SeverityError, Summary: "e"},
	}
	if !ds.HasErrors() || len(ds.Errors()) != 1 || len(ds.Warnings()) != 1 || ds.Error() != "warning: w\nerror: e" {
		t.Errorf("Diagnostics helpers: %v", ds)
	}
	if ds.Warnings().HasErrors() || ds.Warnings().Err() != nil {
		t.Error("warnings alone must not make an error")
	}
}

func TestFormat(t *testing.T) {
	src := "zone \"pbx\" {\n\tlisten = [\"udp://127.0.0.1:5060\"]\n\tpeers  = [\"127.0.0.0/8\"]\n\tmode   = \"audit\"\n\tmedia { srtp = \"allow\" }\n}\n" + pbxRoute + mediaSrc
	_, diags := LoadBytes("f.hcl", []byte(src), testOpts())
	if len(diags) != 1 {
		t.Fatalf("diags = %v", diags)
	}
	d := diags[0]
	if d.Line != 4 || d.Column != 11 || d.Snippet != "\tmode   = \"audit\"" {
		t.Errorf("position %d:%d snippet %q", d.Line, d.Column, d.Snippet)
	}
	var b bytes.Buffer
	diags.Format(&b)
	want := `error: invalid mode
  on f.hcl line 4, column 11:
  4 | 	mode   = "audit"
    | 	         ^^^^^^^
  Unknown mode "audit" (want enforce or observe).

`
	if b.String() != want {
		t.Errorf("Format:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestListenerString(t *testing.T) {
	for _, s := range []string{"udp://127.0.0.1:5060", "tcp://10.1.2.3:5080", "tls://[::1]:5061", "tls://[2001:db8::5]:5061"} {
		l, err := parseListener(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if l.String() != s {
			t.Errorf("String() = %q, want %q", l.String(), s)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want topology.Target
	}{
		{"sip:pbx.example", topology.Target{Host: "pbx.example", Transport: policy.TransportUDP}},
		{"sip:pbx.example.:5080", topology.Target{Host: "pbx.example.", Port: 5080, Transport: policy.TransportUDP}},
		{"SIP:10.0.0.1;transport=TCP", topology.Target{Host: "10.0.0.1", Transport: policy.TransportTCP}},
		{"sip:10.0.0.1:5061;transport=tls", topology.Target{Host: "10.0.0.1", Port: 5061, Transport: policy.TransportTLS}},
		{"sips:trunk.example", topology.Target{Secure: true, Host: "trunk.example", Transport: policy.TransportTLS}},
		{"sips:[2001:db8::1]:5061;transport=tls", topology.Target{Secure: true, Host: "2001:db8::1", Port: 5061, Transport: policy.TransportTLS}},
		{"sip:[::1]", topology.Target{Host: "::1", Transport: policy.TransportUDP}},
	} {
		got, err := parseTarget(tc.in)
		tc.want.URI = tc.in
		if err != nil || got != tc.want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "pbx.example", "sip:", "sip:a@b", "sips:b;transport=tcp", "sip:b;transport=sctp", "sip:b;transport=udp;transport=udp",
		"sip:b?x=y", "sip:b:0", "sip:b:x", "sip:[::1", "sip:[10.0.0.1]", "sip:1.2.3.999", "sip:-bad.example", "sip::5060",
		"sip:[fe80::1%eth0]",
	} {
		if got, err := parseTarget(in); err == nil {
			t.Errorf("parseTarget(%q) = %+v, want error", in, got)
		}
	}
}

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"20000-29999", 20000, 29999, true},
		{"20001-29999", 20002, 29999, true}, // LO rounded up to even
		{"1024-1027", 1024, 1027, true},
		{"1025-1028", 0, 0, false}, // 1026-1028: three ports
		{"1023-2000", 0, 0, false},
		{"2000-65536", 0, 0, false},
		{"3000-3000", 0, 0, false},
		{"3000", 0, 0, false},
		{"a-b", 0, 0, false},
	} {
		lo, hi, err := parsePorts(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("parsePorts(%q) = %d, %d, %v", tc.in, lo, hi, err)
		}
	}
}

func TestParsePeer(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8": "10.0.0.0/8", "10.1.2.3": "10.1.2.3/32", "::1": "::1/128",
		"2001:db8::/32": "2001:db8::/32", "::ffff:10.0.0.1": "10.0.0.1/32", "0.0.0.0/0": "0.0.0.0/0",
	} {
		if p, err := parsePeer(in); err != nil || p.String() != want {
			t.Errorf("parsePeer(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"10.0.0.1/8", "host.example", "10.0.0.0/33", "fe80::1%eth0", ""} {
		if _, err := parsePeer(in); err == nil {
			t.Errorf("parsePeer(%q): want error", in)
		}
	}
}

// TestImports keeps the package dependency rule: configs imports
// nothing of parapet's but the pure packages, policy and topology.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/parapet-sbc/parapet/") &&
				p != "github.com/parapet-sbc/parapet/policy" && p != "github.com/parapet-sbc/parapet/topology" {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

func TestRotateSize(t *testing.T) {
	for src, want := range map[string]int64{
		`"64MiB"`: 64 << 20, `"1GB"`: 1e9, `"65536"`: 65536, `"0"`: 0, `"100 KB"`: 100e3,
	} {
		cfg, diags := LoadBytes("t.hcl", []byte(pbxZone+pbxRoute+mediaSrc+"compliance {\n  rotate_size = "+src+"\n}\n"), LoadOptions{BaseDir: "/x"})
		if diags.HasErrors() {
			t.Errorf("%s: %v", src, diags)
			continue
		}
		if cfg.Compliance.RotateBytes != want {
			t.Errorf("%s: %d, want %d", src, cfg.Compliance.RotateBytes, want)
		}
	}
	for _, bad := range []string{`"1KB"`, `"12 parsecs"`, `"-5MB"`, `"MiB"`} {
		_, diags := LoadBytes("t.hcl", []byte(pbxZone+pbxRoute+mediaSrc+"compliance {\n  rotate_size = "+bad+"\n}\n"), LoadOptions{BaseDir: "/x"})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "rotate_size") {
			t.Errorf("%s accepted: %v", bad, diags)
		}
	}
}

// A zone that sets no key_exchange accepts every key exchange that is safe
// on a leg, whatever its listeners: policy leaves SDES out on clear legs.
func TestDefaultKeyExchange(t *testing.T) {
	cfg, diags := LoadBytes("k.hcl", []byte(carrierZone+pbxZone+pbxRoute+mediaSrc), testOpts())
	if diags.HasErrors() {
		t.Fatal(diags.Errors().Error())
	}
	want := []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}
	for _, name := range []string{"carrier", "pbx"} {
		if got := cfg.Zone(name).Policy.KeyExchange; !slices.Equal(got, want) {
			t.Errorf("zone %s key_exchange %v, want %v", name, got, want)
		}
	}
	if got := cfg.Zone("pbx").Policy.KeyExchangesOn(policy.TransportUDP); !slices.Equal(got, want[1:]) {
		t.Errorf("pbx over udp: %v, want dtls only", got)
	}
}
