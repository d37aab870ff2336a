package configs

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// The emergency block's services map: keyed by the service's URN, its
// numbers cleaned and checked against numbers, and in the policy hash
// only when set.
func TestEmergencyServices(t *testing.T) {
	block := func(services string) string {
		return pbxZone + pbxRoute + mediaSrc + "emergency {\n  numbers = [\"112\", \"110\"]\n" + services + "}\n"
	}
	for _, tc := range []struct {
		name, src string
		want      map[string]string
		errs      []string // summaries of the errors, in order
	}{
		{name: "none", src: block("")},
		{name: "empty", src: block("  services = {}\n")},
		{name: "mapped", src: block(`  services = { "sos.police" = "+110", "SOS.Fire" = "112", "sos" = "1-1-2" }` + "\n"),
			want: map[string]string{"urn:service:sos.police": "110", "urn:service:sos.fire": "112", "urn:service:sos": "112"}},
		{name: "not a service", src: block(`  services = { "police" = "110", "sos." = "110", "urn:service:sos.police" = "110" }` + "\n"),
			errs: []string{"invalid emergency service", "invalid emergency service", "invalid emergency service"}},
		{name: "not in numbers", src: block(`  services = { "sos.police" = "117" }` + "\n"),
			errs: []string{"emergency service number not in numbers"}},
		{name: "twice", src: block(`  services = { "sos.police" = "110", "SOS.POLICE" = "112" }` + "\n"),
			errs: []string{"duplicate emergency service"}},
		{name: "not a map of strings", src: block(`  services = ["sos.police"]` + "\n"),
			errs: []string{"unsuitable value type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("t.hcl", []byte(tc.src), LoadOptions{FileExists: allFilesExist, LookupEnv: noEnv})
			var errs []string
			for _, d := range diags {
				if d.Severity == SeverityError {
					errs = append(errs, d.Summary)
				}
			}
			if !slices.Equal(errs, tc.errs) {
				t.Fatalf("errors %q, want %q", errs, tc.errs)
			}
			if len(tc.errs) > 0 {
				return
			}
			if !maps.Equal(cfg.Emergency.Services, tc.want) {
				t.Errorf("services %v, want %v", cfg.Emergency.Services, tc.want)
			}
			p, err := cfg.Policy(Trust{})
			if err != nil {
				t.Fatal(err)
			}
			canon := string(p.Canonical)
			if strings.Contains(canon, "emergency_services") != (len(tc.want) > 0) {
				t.Errorf("canonical policy %s", canon)
			}
			if len(tc.want) > 0 && !strings.Contains(canon, `"emergency_services":{"urn:service:sos":"112","urn:service:sos.fire":"112","urn:service:sos.police":"110"}`) {
				t.Errorf("canonical policy %s: services not in key order", canon)
			}
		})
	}
}
