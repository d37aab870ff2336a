package configs

import (
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/topology"
)

// udp_keepalive: 25 s by default, "0s" for none, at least 5 s otherwise.
func TestRegistrarUDPKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		want        time.Duration
		err         string
	}{
		{"default", "", topology.DefaultUDPKeepAlive, ""},
		{"set", `udp_keepalive = "40s"`, 40 * time.Second, ""},
		{"off", `udp_keepalive = "0s"`, 0, ""},
		{"too short", `udp_keepalive = "1s"`, 0, "udp_keepalive too short"},
		{"not a duration", `udp_keepalive = "often"`, 0, "invalid udp_keepalive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadRegistrar(t, tc.field, tc.err)
			if cfg == nil {
				return
			}
			if got := cfg.Zone("staff").Registrar.UDPKeepAlive; got != tc.want {
				t.Errorf("udp_keepalive %s, want %s", got, tc.want)
			}
		})
	}
}

// loadRegistrar loads a config whose staff zone has a registrar block with
// field added. With wantErr it checks the load fails saying so and returns
// nil; else it returns the config.
func loadRegistrar(t *testing.T, field, wantErr string) *Config {
	t.Helper()
	block := "registrar {\n zone = \"pbx\"\n target = \"sip:10.0.0.5\"\n " + field + "\n}"
	cfg, diags := LoadBytes("t.hcl", []byte(pbxZone+registrarZone(block)+pbxRoute+mediaSrc), testOpts())
	if wantErr != "" {
		if cfg != nil || !strings.Contains(diags.Error(), wantErr) {
			t.Fatalf("want error %q, got:\n%s", wantErr, diags.Error())
		}
		return nil
	}
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	return cfg
}
