package configs

import (
	"strings"
	"testing"
)

// A route registers in its to zone from a listener of the registrar's
// transport (the Contact the carrier sends the trunk's calls to): a zone
// without one is an error, not a registration whose calls never arrive.
func TestRegisterNeedsListenerOfItsTransport(t *testing.T) {
	for _, tc := range []struct {
		name, listen, registrar string
		want                    string // an error, or "" to load
	}{
		{"udp registrar, udp listener", `["udp://127.0.0.1:5060"]`, `"sip:192.0.2.1"`, ""},
		{"tcp registrar, udp listener only", `["udp://127.0.0.1:5060"]`, `"sip:192.0.2.1;transport=tcp"`,
			`route "out" registers over tcp, but zone "carrier" has no tcp listener`},
		{"udp registrar, tcp listener only", `["tcp://127.0.0.1:5060"]`, `"sip:192.0.2.1"`,
			`route "out" registers over udp, but zone "carrier" has no udp listener`},
		{"tls registrar, mixed listeners", `["udp://127.0.0.1:5060", "tls://127.0.0.1:5061"]`, `"sips:192.0.2.1"`, ""},
		{"udp registrar in a TLS-only zone: one error", `["tls://127.0.0.1:5061"]`, `"sip:192.0.2.1"`,
			`route "out" registers in TLS-only zone "carrier" over udp`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `
zone "pbx" {
  listen = ["udp://127.0.0.1:5070"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ` + tc.listen + `
  peers  = ["192.0.2.0/24"]
  media { srtp = "allow" }
}
route "out" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:192.0.2.1"
  register {
    aor       = "sip:clinic@carrier.example"
    registrar = ` + tc.registrar + `
  }
}
media { address = "127.0.0.1" }
`
			cfg, diags := LoadBytes("t.hcl", []byte(src), LoadOptions{BaseDir: t.TempDir()})
			if tc.want == "" {
				if cfg == nil {
					t.Fatalf("not loaded:\n%s", diags)
				}
				return
			}
			if cfg != nil || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("want error %q, got loaded=%v:\n%s", tc.want, cfg != nil, diags)
			}
			if n := strings.Count(diags.Error(), "error:"); n != 1 {
				t.Errorf("%d errors, want 1:\n%s", n, diags)
			}
		})
	}
}
