package b2bua

import (
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
