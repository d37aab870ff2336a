package configs

import (
	"slices"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/topology"
)

// The emergency block and a zone's trusted setting: read, cleaned,
// checked, and in the policy hash only when set.
func TestEmergencyAndTrusted(t *testing.T) {
	trustedPBX := strings.Replace(pbxZone, `peers  = ["127.0.0.0/8"]`, `peers  = ["127.0.0.0/8"]
  trusted = true`, 1)
	for _, tc := range []struct {
		name, src string
		numbers   []string
		trusted   bool
		errs      []string // summaries of the errors, in order
		warn      string   // the summary of the one warning, if any
	}{
		{name: "none", src: pbxZone + pbxRoute + mediaSrc},
		{name: "numbers cleaned", src: trustedPBX + pbxRoute + mediaSrc +
			`emergency { numbers = ["911", "+933", "1-1-2", "911"] }`, numbers: []string{"911", "933", "112"}, trusted: true},
		{name: "not digits", src: pbxZone + pbxRoute + mediaSrc + `emergency { numbers = ["sos"] }`,
			errs: []string{"invalid emergency number"}},
		{name: "empty", src: pbxZone + pbxRoute + mediaSrc + `emergency { numbers = [] }`,
			errs: []string{"no emergency numbers"}},
		{name: "twice", src: pbxZone + pbxRoute + mediaSrc + "emergency { numbers = [\"911\"] }\nemergency { numbers = [\"112\"] }\n",
			errs: []string{"duplicate emergency block"}},
		{name: "unrouted", src: pbxZone + strings.Replace(pbxRoute, `to     = "pbx"`, `to     = "pbx"
  match  = "^[0-9]{7,15}$"`, 1) + mediaSrc + `emergency { numbers = ["911"] }`,
			numbers: []string{"911"}, warn: `emergency number "911" has no route`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("t.hcl", []byte(tc.src), LoadOptions{FileExists: allFilesExist, LookupEnv: noEnv})
			var errs []string
			var warns []string
			for _, d := range diags {
				if d.Severity == SeverityError {
					errs = append(errs, d.Summary)
				} else {
					warns = append(warns, d.Summary)
				}
			}
			if !slices.Equal(errs, tc.errs) {
				t.Fatalf("errors %q, want %q", errs, tc.errs)
			}
			if tc.warn != "" && !slices.Equal(warns, []string{tc.warn}) || tc.warn == "" && len(warns) > 0 {
				t.Errorf("warnings %q, want %q", warns, tc.warn)
			}
			if len(tc.errs) > 0 {
				return
			}
			if !slices.Equal(cfg.Emergency.Numbers, tc.numbers) || cfg.Zones[0].Trusted != tc.trusted {
				t.Errorf("numbers %q trusted %v", cfg.Emergency.Numbers, cfg.Zones[0].Trusted)
			}
			p, err := cfg.Policy(Trust{})
			if err != nil {
				t.Fatal(err)
			}
			canon := string(p.Canonical)
			if strings.Contains(canon, "emergency_numbers") != (len(tc.numbers) > 0) ||
				strings.Contains(canon, `"trusted"`) != tc.trusted {
				t.Errorf("canonical policy %s", canon)
			}
		})
	}
}

// Emergency.Match compares dial strings as callers write them.
func TestEmergencyMatch(t *testing.T) {
	e := topology.Emergency{Numbers: []string{"911", "112"}}
	for user, want := range map[string]bool{
		"911": true, "+911": true, "9-1-1": true, "911;phone-context=+1": true, "(112)": true,
		"9110": false, "": false, "+15551230000": false, "alice": false,
	} {
		if e.Match(user) != want {
			t.Errorf("Match(%q) = %v", user, !want)
		}
	}
	if (topology.Emergency{}).Match("911") {
		t.Error("no numbers matched 911")
	}
}
