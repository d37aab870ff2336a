package configs

import (
	"cmp"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/policy"
)

func registrarZone(block string) string {
	return `zone "staff" {
  listen = ["tls://127.0.0.1:5071"]
  peers  = ["0.0.0.0/0", "::/0"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
` + block + `
}
`
}

func TestRegistrar(t *testing.T) {
	pbxTCP := strings.Replace(pbxZone, `listen = ["udp://127.0.0.1:5060"]`, `listen = ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"]`, 1)
	for _, tc := range []struct {
		name, block, err string
		pbx              string // the pbx zone, when not pbxTCP
	}{
		{"pbx side", "registrar {\n zone = \"pbx\"\n target = \"sip:10.0.0.5:5060;transport=tcp\"\n}", "", ""},
		{"pbx side without a listener of the target's transport", "registrar {\n zone = \"pbx\"\n target = \"sip:10.0.0.5:5060;transport=tcp\"\n}",
			`registrar over tcp, but zone "pbx" has no tcp listener`, pbxZone},
		{"unknown zone", "registrar {\n zone = \"pbxx\"\n target = \"sip:10.0.0.5\"\n}", `unknown zone "pbxx"`, ""},
		{"own zone", "registrar {\n zone = \"staff\"\n target = \"sip:10.0.0.5\"\n}", "registrar in the users' own zone", ""},
		{"bad target", "registrar {\n zone = \"pbx\"\n target = \"http://x\"\n}", "invalid registrar target", ""},
		{"no target", "registrar {\n zone = \"pbx\"\n}", `"target" is required`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := cmp.Or(tc.pbx, pbxTCP)
			cfg, diags := LoadBytes("t.hcl", []byte(pbx+registrarZone(tc.block)+pbxRoute+mediaSrc), testOpts())
			if tc.err != "" {
				if cfg != nil || !strings.Contains(diags.Error(), tc.err) {
					t.Fatalf("want error %q, got:\n%s", tc.err, diags.Error())
				}
				return
			}
			if cfg == nil {
				t.Fatalf("errors:\n%s", diags.Error())
			}
			r := cfg.Zone("staff").Registrar
			if r == nil || r.Zone != "pbx" || r.Target.Host != "10.0.0.5" || r.Target.Port != 5060 ||
				r.Target.Transport != policy.TransportTCP {
				t.Errorf("registrar %+v", r)
			}
			if cfg.Zone("pbx").Registrar != nil {
				t.Error("the pbx zone got a registrar")
			}
		})
	}
}
