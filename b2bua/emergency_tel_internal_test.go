package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/topology"
)

// tel: URIs (RFC 3966) of an emergency number, in the Request-URI or in
// To, dial the emergency services, read alike by the gate (rawEmergency)
// and by dialledBy, which routes them as the number cleaned of its "+",
// separators and parameters. A tel: Request-URI of another number is no
// emergency call, whatever To says (admit answers 416).
func TestTelEmergencyDialled(t *testing.T) {
	e := topology.Emergency{Numbers: []string{"911", "933"}}
	cases := []struct {
		ruri, to  string
		emergency bool
		callee    string
		service   string
	}{
		{"tel:911", "<tel:911>", true, "911", ""},
		{"TEL:+9-1-1;phone-context=+1", "<tel:+9-1-1;phone-context=+1>", true, "911", ""},
		{"tel:933", "<urn:service:sos>", true, "933", "urn:service:sos"},
		{"sip:100@10.0.0.1", "<tel:933;phone-context=+1>;tag=x", true, "933", ""},
		{"sip:100@10.0.0.1", "tel:(9)11", true, "911", ""},
		{"tel:+15551230000", "<tel:911>", false, "", ""},
		{"tel:+15551230000", "<urn:service:sos>", false, "", ""},
		{"sip:100@10.0.0.1", "<tel:+15551230000>", false, "100", ""},
		{"tel:9111", "<tel:9111>", false, "", ""},
	}
	for _, tc := range cases {
		data := sosInvite(tc.ruri, tc.to)
		if got := rawEmergency(e, data); got != tc.emergency {
			t.Errorf("%s to %s: rawEmergency %v, want %v", tc.ruri, tc.to, got, tc.emergency)
		}
		msg, err := sip.ParseMessage(data)
		if err != nil {
			t.Fatalf("%s: %v", tc.ruri, err)
		}
		d := dialledBy(e, msg.(*sip.Request))
		if d.emergency != tc.emergency || d.emergency && (d.callee != tc.callee || d.service != tc.service) {
			t.Errorf("%s to %s: dialled %+v, want emergency %v callee %q service %q", tc.ruri, tc.to, d, tc.emergency, tc.callee, tc.service)
		}
		if rawEmergency(topology.Emergency{}, data) || dialledBy(topology.Emergency{}, msg.(*sip.Request)).emergency {
			t.Errorf("%s: emergency without emergency numbers", tc.ruri)
		}
	}
}

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
