package b2bua_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// With an emergency services map, a call to urn:service:sos.police goes
// to the carrier as the police's number, a sub-service of it as the same,
// and another service as the first emergency number; the record names the
// service and the decision says how it was routed.
func TestEmergencyServicesMapped(t *testing.T) {
	cases := []struct {
		name, ruri, to string
		wantURI, via   string
	}{
		{name: "mapped", ruri: "urn:service:sos.police", wantURI: "110",
			via: "routed as the number emergency services maps urn:service:sos.police to"},
		{name: "parent mapped", ruri: "urn:service:sos.police.marine", wantURI: "110",
			via: "routed as the number emergency services maps urn:service:sos.police to"},
		{name: "in To", ruri: "sip:100@PARAPET", to: "<urn:service:sos.police>", wantURI: "110",
			via: "urn:service:sos.police in To, routed as the number emergency services maps urn:service:sos.police to"},
		{name: "not mapped", ruri: "urn:service:sos.fire", wantURI: "112", via: "routed as the first emergency number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, labOptions{emergency: []string{"112", "110"},
				emergencyMap: map[string]string{"urn:service:sos.police": "110"}})
			ctx := ctxT(t)
			o := sim.CallOptions{Route: fmt.Sprintf("<sip:%s;lr>", l.pbxUDP)}
			if tc.to != "" {
				o.Headers = []sip.Header{sip.NewHeader("To", tc.to)}
			}
			caller, err := l.pbx.Call(ctx, strings.ReplaceAll(tc.ruri, "PARAPET", l.pbxUDP.String()), o)
			if err != nil {
				t.Fatalf("emergency call: %v", err)
			}
			callee := incoming(t, l.carrier)
			if u := callee.InviteURI(); !strings.HasPrefix(u, "sips:"+tc.wantURI+"@") {
				t.Errorf("carrier's Request-URI %q, want the number %s", u, tc.wantURI)
			}
			exchange(t, caller, callee)
			if err := caller.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			c := emergencyRecord(t, l, 1)
			if !strings.HasPrefix(c.EmergencyService, "urn:service:sos.") {
				t.Errorf("emergency_service %q", c.EmergencyService)
			}
			if d := decision(c, policy.RuleEmergency); d == nil || !strings.Contains(d.Reason, tc.via) {
				t.Errorf("call.emergency decision %+v, want %q in its reason", d, tc.via)
			}
		})
	}
}
