package b2bua_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// testPseudo is the lab's pseudonymizer (newLab's key).
var testPseudo = compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))

// identityHeaders are what a PBX sends: two asserted identities (a SIP
// URI naming its own host, a tel URI), a preferred one, a Diversion and
// Privacy.
func identityHeaders(privacy string) []sip.Header {
	h := []sip.Header{
		sip.NewHeader("P-Asserted-Identity", `"Front Desk" <sip:+15551110000@pbx.clinic.internal>, <tel:+15551110000>`),
		sip.NewHeader("P-Preferred-Identity", "<sip:+15552220000@pbx.clinic.internal>"),
		sip.NewHeader("Diversion", "<sip:+15553330000@pbx.clinic.internal>;reason=unconditional"),
	}
	if privacy != "" {
		h = append(h, sip.NewHeader("Privacy", privacy))
	}
	return h
}

// RFC 3325 trust domain: PAI and Diversion pass from a trusted zone to a
// trusted zone only; a PAI from an untrusted zone is never believed; PPI
// never passes; Privacy goes along; records carry the identities
// pseudonymised.
func TestIdentityTrustDomain(t *testing.T) {
	token := testPseudo.Token("+15551110000")
	for _, c := range []struct {
		name                 string
		pbx, carrier         bool
		privacy              string
		wantPAI, wantDiv     bool
		withheldA, withheldB []string
	}{
		{"trusted to trusted", true, true, "", true, true, []string{"P-Preferred-Identity"}, nil},
		{"trusted to trusted, privacy id", true, true, "id", true, true, []string{"P-Preferred-Identity"}, nil},
		{"trusted to untrusted", true, false, "", false, false, []string{"P-Preferred-Identity"},
			[]string{"P-Asserted-Identity", "Diversion"}},
		{"trusted to untrusted, privacy id", true, false, "id", false, false, []string{"P-Preferred-Identity"},
			[]string{"P-Asserted-Identity", "Diversion"}},
		{"forged from untrusted", false, true, "", false, false,
			[]string{"P-Preferred-Identity", "P-Asserted-Identity", "Diversion"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, labOptions{pbxTrusted: c.pbx, carrierTrusted: c.carrier})
			ctx := ctxT(t)
			caller, err := l.callOut(ctx, sim.CallOptions{Headers: identityHeaders(c.privacy)})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, l.carrier)
			pai := callee.InviteHeader("P-Asserted-Identity")
			if c.wantPAI {
				host := l.carrierTLS.Addr().String()
				want := []string{`"Front Desk" <sips:+15551110000@` + host + `>`, "<tel:+15551110000>"}
				if !slices.Equal(pai, want) {
					t.Errorf("P-Asserted-Identity at the carrier %q, want %q", pai, want)
				}
			} else if len(pai) > 0 {
				t.Errorf("P-Asserted-Identity reached the carrier: %q", pai)
			}
			if ppi := callee.InviteHeader("P-Preferred-Identity"); len(ppi) > 0 {
				t.Errorf("P-Preferred-Identity reached the carrier: %q", ppi)
			}
			if div := callee.InviteHeader("Diversion"); c.wantDiv != (len(div) == 1) {
				t.Errorf("Diversion at the carrier: %q", div)
			}
			if p := callee.InviteHeader("Privacy"); c.privacy != "" && !slices.Equal(p, []string{c.privacy}) {
				t.Errorf("Privacy at the carrier: %q, want %q", p, c.privacy)
			}
			caller.Hangup(ctx)
			rec := l.sink.waitCalls(t, 1)[0]
			a, b := rec.Legs[0], rec.Legs[1]
			wantA := []string{token, token}
			if !c.pbx {
				wantA = nil
			}
			wantB := wantA
			if !c.wantPAI {
				wantB = nil
			}
			if !slices.Equal(a.AssertedIdentities, wantA) || !slices.Equal(b.AssertedIdentities, wantB) {
				t.Errorf("asserted identities a %q b %q, want %q %q", a.AssertedIdentities, b.AssertedIdentities, wantA, wantB)
			}
			if !slices.Equal(a.WithheldHeaders, c.withheldA) || !slices.Equal(b.WithheldHeaders, c.withheldB) {
				t.Errorf("withheld a %q b %q, want %q %q", a.WithheldHeaders, b.WithheldHeaders, c.withheldA, c.withheldB)
			}
			if a.Privacy != c.privacy {
				t.Errorf("privacy %q", a.Privacy)
			}
			line, _ := json.Marshal(rec)
			if strings.Contains(string(line), "5551110000") || strings.Contains(string(line), "clinic.internal") {
				t.Errorf("the record names an identity in clear: %s", line)
			}
		})
	}
}

// An emergency call completes while the compliance log cannot be written
// (other calls get 503), keeps its callback number toward an untrusted
// zone even with Privacy: id, and its record, written once the log
// recovers, says emergency.
func TestEmergencyCallWithLogFailing(t *testing.T) {
	l := newLab(t, labOptions{pbxTrusted: true, emergency: []string{"911", "933"}})
	l.sink.mu.Lock()
	l.sink.fail = errors.New("disk full")
	l.sink.mu.Unlock()
	ctx := ctxT(t)
	// A first call's record cannot be written: parapet then refuses calls.
	first, _ := l.connect(t, ctx)
	first.Hangup(ctx)
	waitFor(t, 5e9, "the first call's record to be held", func() bool { return l.srv.Stats().RecordBacklog == 1 })
	_, err := l.callOut(ctx, sim.CallOptions{})
	wantRejected(t, err, 503)
	waitFor(t, 5e9, "the refused call's record to be held", func() bool { return l.srv.Stats().RecordBacklog == 2 })

	caller, err := l.pbx.Call(ctx, fmt.Sprintf("sip:911@%s", l.pbxUDP), sim.CallOptions{Headers: identityHeaders("id")})
	if err != nil {
		t.Fatalf("emergency call with the log failing: %v", err)
	}
	callee := incoming(t, l.carrier)
	if pai := callee.InviteHeader("P-Asserted-Identity"); len(pai) != 2 {
		t.Errorf("callback number at the untrusted carrier: %q", pai)
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5e9, "the emergency call's record to be held", func() bool { return l.srv.Stats().RecordBacklog == 3 })
	l.sink.mu.Lock()
	l.sink.fail = nil
	l.sink.mu.Unlock()
	if !l.srv.Ready() {
		t.Fatal("not ready after the log recovered")
	}
	calls := l.sink.waitCalls(t, 3)
	c := calls[2]
	if !c.Emergency || c.Disposition != compliance.DispositionAnswered || calls[0].Emergency || calls[1].Emergency {
		t.Fatalf("records: emergency %v %v %v, %s", calls[0].Emergency, calls[1].Emergency, c.Emergency, c.Disposition)
	}
	d := decision(c, policy.RuleEmergency)
	if d == nil || !strings.Contains(d.Reason, "compliance log could not be written") {
		t.Errorf("emergency decision %+v", d)
	}
	if n := l.srv.Stats().EmergencyCalls; n != 1 {
		t.Errorf("EmergencyCalls = %d", n)
	}
	if b := c.Legs[1]; len(b.AssertedIdentities) != 2 || len(b.WithheldHeaders) != 1 {
		t.Errorf("leg b identities %q withheld %q", b.AssertedIdentities, b.WithheldHeaders)
	}
}

// An emergency call completes beyond a full call limit (counted, and
// recorded as would_reject), and one whose media an enforcing zone would
// refuse completes with the refusal recorded as would_reject.
func TestEmergencyCallLimitAndPolicy(t *testing.T) {
	t.Run("call limit", func(t *testing.T) {
		l := newLab(t, labOptions{outboundMax: 1, emergency: []string{"911"}})
		ctx := ctxT(t)
		first, _ := l.connect(t, ctx)
		_, err := l.callOut(ctx, sim.CallOptions{})
		wantRejected(t, err, 503)
		caller, err := l.pbx.Call(ctx, fmt.Sprintf("sip:+911@%s", l.pbxUDP), sim.CallOptions{})
		if err != nil {
			t.Fatalf("emergency call beyond the route's limit: %v", err)
		}
		exchange(t, caller, incoming(t, l.carrier))
		caller.Hangup(ctx)
		first.Hangup(ctx)
		c := emergencyRecord(t, l, 3)
		if d := decision(c, policy.RuleRouteCallLimit); d == nil || d.Verdict != policy.VerdictWouldReject {
			t.Errorf("call limit decision %+v", d)
		}
	})
	t.Run("media policy", func(t *testing.T) {
		l := newLab(t, labOptions{emergency: []string{"911"},
			pbxZone: func(z *policy.Zone) { z.SRTP = policy.RequirementRequire }})
		ctx := ctxT(t)
		_, err := l.callOut(ctx, sim.CallOptions{})
		wantRejected(t, err, 488)
		caller, err := l.pbx.Call(ctx, fmt.Sprintf("sip:911@%s", l.pbxUDP), sim.CallOptions{})
		if err != nil {
			t.Fatalf("emergency call with plain RTP into an SRTP-required zone: %v", err)
		}
		exchange(t, caller, incoming(t, l.carrier))
		caller.Hangup(ctx)
		c := emergencyRecord(t, l, 2)
		if d := decision(c, policy.RuleSRTPRequired); d == nil || d.Verdict != policy.VerdictWouldReject {
			t.Errorf("media decision %+v", d)
		}
		if m := c.Legs[1].Media; m == nil || m.SRTPSuite == "" {
			t.Errorf("the carrier leg is not SRTP: %+v", m)
		}
	})
}

// emergencyRecord waits for n call records and returns the one that says
// emergency.
func emergencyRecord(t *testing.T, l *lab, n int) *compliance.Call {
	t.Helper()
	for _, c := range l.sink.waitCalls(t, n) {
		if c.Emergency {
			if c.Disposition != compliance.DispositionAnswered || decision(c, policy.RuleEmergency) == nil {
				t.Errorf("emergency record %s %+v", c.Disposition, c.Decisions)
			}
			return c
		}
	}
	t.Fatal("no record says emergency")
	return nil
}
