package b2bua

import (
	"slices"
	"testing"
)

// Identity header values: split at the commas between values, parsed as
// name-addr or addr-spec, sip, sips or tel only, at most one of each kind
// (RFC 3325 section 9.1).
func TestAssertedIdentities(t *testing.T) {
	for _, c := range []struct {
		name, value string
		users       []string
	}{
		{"one", `<sip:+15551110000@pbx>`, []string{"+15551110000"}},
		{"display with comma", `"Desk, Front" <sip:100@pbx>, <tel:+15551110000;ext=1>`, []string{"100", "+15551110000"}},
		{"addr-spec", `sip:alice@pbx.example`, []string{"alice"}},
		{"second sip ignored", `<sip:1@a>, <sips:2@b>, <tel:3>, <tel:4>`, []string{"1", "3"}},
		{"other schemes", `<mailto:a@b>, <http://x>, <urn:service:sos>`, nil},
		{"garbage", `<<>>, "unterminated, <sip:@>`, nil},
		{"tel with space", `<tel:+1 555>`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var users []string
			for _, n := range assertedIdentities(splitValues(c.value)) {
				users = append(users, n.user())
			}
			if !slices.Equal(users, c.users) {
				t.Errorf("users %q, want %q", users, c.users)
			}
		})
	}
}

// What goes toward leg B: by the B zone's trust, and for an emergency
// call the asserted identity whatever the trust.
func TestIdentityToward(t *testing.T) {
	from := identity{asserted: assertedIdentities([]string{"<sip:1@a>"}), diversion: []string{"<sip:2@a>"}}
	for _, c := range []struct {
		name               string
		trusted, emergency bool
		sent               int
		diversion          bool
		withheld           []string
	}{
		{"trusted", true, false, 1, true, nil},
		{"untrusted", false, false, 0, false, []string{"P-Asserted-Identity", "Diversion"}},
		{"untrusted emergency", false, true, 1, false, []string{"Diversion"}},
	} {
		id := from
		id.toward(c.trusted, c.emergency)
		if len(id.sentB) != c.sent || id.diversionB != c.diversion || !slices.Equal(id.withheldB, c.withheld) {
			t.Errorf("%s: sent %d diversion %v withheld %q", c.name, len(id.sentB), id.diversionB, id.withheldB)
		}
	}
}
