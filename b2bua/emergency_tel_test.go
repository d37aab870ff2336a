package b2bua_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// A phone that dials the emergency services by tel: URI (RFC 3966), in
// its Request-URI or in To, places an emergency call: routed and sent
// onward to the carrier as that number on sips:, recorded emergency with
// no service URN. A tel: Request-URI of another number, or any tel:
// Request-URI where the site has no emergency numbers, gets 416 as before.
func TestEmergencyTelURI(t *testing.T) {
	cases := []struct {
		name      string
		ruri, to  string // to: "" is the Request-URI's (sipgo's default)
		emergency []string
		status    int    // a refusal, or 0
		wantURI   string // the carrier's Request-URI user
		via       string // in the call.emergency reason
	}{
		{name: "tel in the Request-URI", ruri: "tel:911", emergency: []string{"911", "933"},
			wantURI: "911", via: "an emergency number in a tel: Request-URI"},
		{name: "tel with separators and context", ruri: "tel:+9-3-3;phone-context=+1", emergency: []string{"911", "933"},
			wantURI: "933", via: "an emergency number in a tel: Request-URI"},
		{name: "tel in To only", ruri: "sip:100@PARAPET", to: "<tel:112>", emergency: []string{"911", "112"},
			wantURI: "112", via: "an emergency number in To"},
		{name: "other number", ruri: "tel:+15551230000", to: "<tel:911>", emergency: []string{"911"}, status: 416},
		{name: "no emergency block", ruri: "tel:911", status: 416},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, labOptions{emergency: tc.emergency})
			ctx := ctxT(t)
			o := sim.CallOptions{Route: fmt.Sprintf("<sip:%s;lr>", l.pbxUDP)}
			if tc.to != "" {
				o.Headers = []sip.Header{sip.NewHeader("To", strings.ReplaceAll(tc.to, "PARAPET", l.pbxUDP.String()))}
			}
			caller, err := l.pbx.Call(ctx, strings.ReplaceAll(tc.ruri, "PARAPET", l.pbxUDP.String()), o)
			if tc.status != 0 {
				wantRejected(t, err, tc.status)
				if c := l.sink.waitCalls(t, 1)[0]; c.Emergency {
					t.Errorf("a refused tel: call recorded as an emergency call")
				}
				return
			}
			if err != nil {
				t.Fatalf("emergency call: %v", err)
			}
			callee := incoming(t, l.carrier)
			if u := callee.InviteURI(); !strings.HasPrefix(u, "sips:"+tc.wantURI+"@") {
				t.Errorf("carrier's Request-URI %q, want the number %s on sips:", u, tc.wantURI)
			}
			exchange(t, caller, callee)
			if err := caller.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			c := emergencyRecord(t, l, 1)
			if c.EmergencyService != "" {
				t.Errorf("emergency_service %q for a number dialled by tel:", c.EmergencyService)
			}
			if c.Callee == "" {
				t.Error("the record has no callee")
			}
			if d := decision(c, policy.RuleEmergency); d == nil || !strings.Contains(d.Reason, tc.via) {
				t.Errorf("call.emergency decision %+v, want %q in its reason", d, tc.via)
			}
			if n := l.srv.Stats().EmergencyCalls; n != 1 {
				t.Errorf("EmergencyCalls = %d", n)
			}
		})
	}
}
