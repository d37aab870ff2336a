package b2bua_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// A peer's emergency call goes beyond a call limit; a stranger's, let in by
// a zone in observe mode, does not: 503 once the zone's calls are up, with
// a rejected record, so that strangers dialling 911 cannot fill the site
// with ringing calls.
func TestEmergencyOutsiderHeldToCallLimits(t *testing.T) {
	l := newLab(t, labOptions{emergency: []string{"911"}, pbxMode: policy.ModeObserve, pbxMaxCalls: 1,
		pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	ctx := ctxT(t)
	route := sim.CallOptions{Route: fmt.Sprintf("<sip:%s;lr>", l.pbxUDP)}
	first, err := l.pbx.Call(ctx, "urn:service:sos", route)
	if err != nil {
		t.Fatalf("an outsider's emergency call within the limit: %v", err)
	}
	carrier := incoming(t, l.carrier)
	_, err = l.pbx.Call(ctx, "urn:service:sos", route)
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 503 {
		t.Fatalf("an outsider's emergency call beyond the zone's limit: %v; want 503", err)
	}
	exchange(t, first, carrier)
	if err := first.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	recs := l.sink.waitCalls(t, 2)
	limited := 0
	for _, c := range recs {
		if !c.Emergency {
			t.Errorf("record %s %d: not marked emergency", c.Disposition, c.SIPStatus)
		}
		if d := decision(c, policy.RuleZoneCallLimit); d != nil {
			limited++
			if d.Verdict != policy.VerdictRejected || c.Disposition != compliance.DispositionRejected || c.SIPStatus != 503 {
				t.Errorf("limited call: %s %d, decision %+v", c.Disposition, c.SIPStatus, d)
			}
		}
	}
	if limited != 1 {
		t.Errorf("%d records with a zone.call-limit decision, want 1", limited)
	}
}
