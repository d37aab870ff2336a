package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/topology"
)

// With an emergency services map, a service URN, in the Request-URI or
// in To, is routed as the number mapped to it or to its nearest listed
// parent, else as the first emergency number, and the reason says which.
func TestServiceURNMapped(t *testing.T) {
	e := topology.Emergency{Numbers: []string{"112", "110"}, Services: map[string]string{"urn:service:sos.police": "110"}}
	cases := []struct {
		ruri, to string
		callee   string
		via      string
	}{
		{"urn:service:sos.police", "<urn:service:sos.police>", "110",
			"urn:service:sos.police in the Request-URI, routed as the number emergency services maps urn:service:sos.police to"},
		{"urn:service:sos.police.marine", "<urn:service:sos>", "110",
			"routed as the number emergency services maps urn:service:sos.police to"},
		{"urn:service:sos.fire", "<urn:service:sos.fire>", "112", "routed as the first emergency number"},
		{"sip:100@10.0.0.1", "<urn:service:sos.police>", "110", "urn:service:sos.police in To, routed as the number emergency services maps urn:service:sos.police to"},
		{"sip:112@10.0.0.1", "<urn:service:sos.police>", "112", "an emergency number in the Request-URI"},
	}
	for _, tc := range cases {
		msg, err := sip.ParseMessage(sosInvite(tc.ruri, tc.to))
		if err != nil {
			t.Fatalf("%s: %v", tc.ruri, err)
		}
		d := dialledBy(e, msg.(*sip.Request))
		if !d.emergency || d.callee != tc.callee || !strings.Contains(d.via, tc.via) {
			t.Errorf("%s to %s: dialled %+v, want callee %s, %q in the reason", tc.ruri, tc.to, d, tc.callee, tc.via)
		}
	}
}
