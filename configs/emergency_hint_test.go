package configs

import (
	"regexp"
	"strings"
	"testing"
)

// The warning about an unrouted emergency number suggests a match for that
// number, written as the HCL string to paste, and the suggestion, read back
// as HCL does, matches the number with and without a leading +.
func TestUnroutedEmergencyHint(t *testing.T) {
	route := strings.Replace(pbxRoute, `to     = "pbx"`, `to     = "pbx"
  match  = "^[0-9]{7,15}$"`, 1)
	for _, tc := range []struct{ number, hint string }{
		{"112", `match = "^\\+?112$"`},
		{"*99", `match = "^\\+?\\*99$"`},
	} {
		t.Run(tc.number, func(t *testing.T) {
			src := pbxZone + route + mediaSrc + `emergency { numbers = ["` + tc.number + `"] }`
			_, diags := LoadBytes("t.hcl", []byte(src), LoadOptions{FileExists: allFilesExist, LookupEnv: noEnv})
			if !strings.Contains(diags.Error(), tc.hint) {
				t.Fatalf("want the hint %s in:\n%s", tc.hint, diags)
			}
			// HCL halves the backslashes of the quoted string.
			quoted := strings.TrimSuffix(strings.TrimPrefix(tc.hint, `match = "`), `"`)
			re := regexp.MustCompile(strings.ReplaceAll(quoted, `\\`, `\`))
			if !re.MatchString(tc.number) || !re.MatchString("+"+tc.number) || re.MatchString("9"+tc.number) {
				t.Errorf("%s does not match exactly %s and +%s", re, tc.number, tc.number)
			}
		})
	}
}
