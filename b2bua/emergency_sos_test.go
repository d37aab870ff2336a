package b2bua_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// A call that names the emergency services by URN (RFC 5031) or an
// emergency number by tel: URI (RFC 3966), in its Request-URI or in To, is
// an emergency call routed and sent onward as an emergency number on
// sips:, and its record names the service (none for a tel: number); a URN
// that is no emergency service, a tel: Request-URI of another number, or
// either where the site has no emergency numbers, gets 416 as before, and
// is not recorded as an emergency call.
func TestEmergencyServiceURN(t *testing.T) {
	cases := []struct {
		name       string
		ruri, to   string // to: "" is the Request-URI's (sipgo's default)
		emergency  []string
		status     int    // a refusal, or 0
		wantURI    string // the carrier's Request-URI user
		wantRecord string // the record's emergency_service
		via        string // in the call.emergency reason
	}{
		{name: "sos in the Request-URI", ruri: "urn:service:sos", emergency: []string{"911", "933"},
			wantURI: "911", wantRecord: "urn:service:sos", via: "urn:service:sos in the Request-URI"},
		{name: "sub-service, any case", ruri: "URN:Service:SOS.Police", emergency: []string{"112", "911"},
			wantURI: "112", wantRecord: "urn:service:sos.police", via: "urn:service:sos.police in the Request-URI"},
		{name: "sos in To only", ruri: "sip:100@PARAPET", to: "<urn:service:sos.fire>", emergency: []string{"911"},
			wantURI: "911", wantRecord: "urn:service:sos.fire", via: "urn:service:sos.fire in To"},
		{name: "number in To only", ruri: "sip:100@PARAPET", to: "<sip:+933@PARAPET>", emergency: []string{"911", "933"},
			wantURI: "933", via: "an emergency number in To"},
		{name: "number and sos in To", ruri: "sip:911@PARAPET", to: "<urn:service:sos>", emergency: []string{"911"},
			wantURI: "911", wantRecord: "urn:service:sos", via: "an emergency number in the Request-URI"},
		{name: "other service URN", ruri: "urn:service:counseling", emergency: []string{"911"}, status: 416},
		{name: "not sos", ruri: "urn:service:sosx", emergency: []string{"911"}, status: 416},
		{name: "no emergency block", ruri: "urn:service:sos", status: 416},
		{name: "tel in the Request-URI", ruri: "tel:911", emergency: []string{"911", "933"},
			wantURI: "911", via: "an emergency number in a tel: Request-URI"},
		{name: "tel with separators and context", ruri: "tel:+9-3-3;phone-context=+1", emergency: []string{"911", "933"},
			wantURI: "933", via: "an emergency number in a tel: Request-URI"},
		{name: "tel in To only", ruri: "sip:100@PARAPET", to: "<tel:112>", emergency: []string{"911", "112"},
			wantURI: "112", via: "an emergency number in To"},
		{name: "tel of another number", ruri: "tel:+15551230000", to: "<tel:911>", emergency: []string{"911"}, status: 416},
		{name: "tel, no emergency block", ruri: "tel:911", status: 416},
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
					t.Errorf("a refused call recorded as an emergency call")
				}
				return
			}
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
			if c.Callee == "" {
				t.Error("the record has no callee")
			}
			if c.EmergencyService != tc.wantRecord {
				t.Errorf("emergency_service %q, want %q", c.EmergencyService, tc.wantRecord)
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

// An emergency call to a trunk that cannot do SRTP, in a carrier zone that
// requires it, is offered SRTP first (policy as far as the trunk supports
// it), then plain RTP when the trunk refuses every SRTP offer: the call
// completes, recorded would_reject. Another call is refused as before.
func TestEmergencyTrunkWithoutSRTP(t *testing.T) {
	l := newLab(t, labOptions{emergency: []string{"911"}, carrierAnswer: sim.Answer{RejectSRTP: true},
		carrierZone: func(z *policy.Zone) {
			z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}
		}})
	ctx := ctxT(t)
	_, err := l.callOut(ctx, sim.CallOptions{})
	wantRejected(t, err, 488)
	caller, err := l.pbx.Call(ctx, fmt.Sprintf("sip:911@%s", l.pbxUDP), sim.CallOptions{})
	if err != nil {
		t.Fatalf("emergency call to a trunk without SRTP: %v", err)
	}
	callee := incoming(t, l.carrier)
	if srtp, _ := callee.SRTP(); srtp {
		t.Error("the carrier leg is SRTP, though the trunk refused it")
	}
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := emergencyRecord(t, l, 2)
	d := decision(c, policy.RuleSRTPRequired)
	if d == nil || d.Verdict != policy.VerdictWouldReject || d.Stage != policy.StageOffer ||
		!strings.Contains(d.Reason, "refused every SRTP offer") {
		t.Errorf("plain RTP decision %+v", d)
	}
	if d := decision(c, policy.RuleKeyExchangeFallback); d == nil || d.Verdict != policy.VerdictAllowed {
		t.Errorf("SDES to DTLS fallback %+v", d)
	}
	if d := decision(c, policy.RuleAnswerSRTPRequired); d == nil || d.Verdict != policy.VerdictWouldReject {
		t.Errorf("answer decision %+v", d)
	}
	b := leg(c, compliance.RoleB)
	if b == nil || b.Media == nil || b.Media.SRTPSuite != "" {
		t.Errorf("carrier leg media %+v", b)
	}
}

// In a zone in observe mode whose outsider budgets are spent, an
// outsider's emergency call still completes, on the emergency budget, and
// its record says both what it was and that the zone's peers do not list
// its source; the same outsider's other INVITE is dropped as before.
func TestEmergencyOutsiderBeyondBudget(t *testing.T) {
	lim := topology.DefaultLimits
	lim.OutsiderRate, lim.SourceRate, lim.PrefixRate = 1e-9, 1e-9, 1e-9 // a burst of one, never refilled
	l := newLab(t, labOptions{emergency: []string{"911"}, pbxMode: policy.ModeObserve, limits: lim,
		pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	u := newUDPPeer(t, l.pbxUDP.String())
	if !u.pingAnswered(l.pbxUDP.String(), "SIP/2.0 ") {
		t.Fatal("the outsider's first request (the budgets' burst) got no answer")
	}
	if _, err := u.c.WriteToUDP([]byte(rawInvite(l.pbxUDP.String(), u.local(), "beyond-budget")), u.to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5e9, "the INVITE beyond the budgets to be dropped", func() bool {
		return l.srv.Stats().Outsiders["over_budget"] == 1
	})
	ctx := ctxT(t)
	caller, err := l.pbx.Call(ctx, "urn:service:sos", sim.CallOptions{Route: fmt.Sprintf("<sip:%s;lr>", l.pbxUDP)})
	if err != nil {
		t.Fatalf("an outsider's emergency call beyond the outsider budgets: %v", err)
	}
	exchange(t, caller, incoming(t, l.carrier))
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	c := emergencyRecord(t, l, 1)
	if d := decision(c, policy.RuleSourceNotAllowed); d == nil || d.Verdict != policy.VerdictWouldReject {
		t.Errorf("source decision %+v", d)
	}
	if n := l.srv.Stats().Outsiders["over_budget"]; n != 1 {
		t.Errorf("over_budget %d: the emergency call's requests were counted against the outsiders", n)
	}
}
