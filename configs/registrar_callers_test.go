package configs

import (
	"testing"

	"github.com/parapet-sbc/parapet/topology"
)

// callers: "registered" by default, "any", nothing else; the setting is in
// the policy hash.
func TestRegistrarCallers(t *testing.T) {
	hashes := map[string]string{}
	for _, tc := range []struct {
		name, field string
		want        topology.Callers
		err         string
	}{
		{"default", "", topology.CallersRegistered, ""},
		{"registered", `callers = "registered"`, topology.CallersRegistered, ""},
		{"any", `callers = "any"`, topology.CallersAny, ""},
		{"other", `callers = "all"`, 0, "invalid callers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadRegistrar(t, tc.field, tc.err)
			if cfg == nil {
				return
			}
			if got := cfg.Zone("staff").Registrar.Callers; got != tc.want {
				t.Errorf("callers %s, want %s", got, tc.want)
			}
			pol, err := cfg.Policy(fakeTrust(cfg))
			if err != nil {
				t.Fatal(err)
			}
			hashes[tc.name] = pol.Hash
		})
	}
	if hashes["default"] != hashes["registered"] || hashes["default"] == hashes["any"] || hashes["any"] == "" {
		t.Errorf("policy hashes %v: want default = registered != any", hashes)
	}
}
