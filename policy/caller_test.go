package policy

import "testing"

// A call from a zone whose callers must be registered: allowed when its
// From is an address of record registered on its connection; else 403
// signaling.not-registered (would_reject in observe mode). Without caller
// facts nothing is checked; a refusal for the source or the transport
// comes first.
func TestRegisteredCaller(t *testing.T) {
	reg := func(from string, aors ...string) *CallerFacts { return &CallerFacts{From: from, Registered: aors} }
	cases := []struct {
		name     string
		zone     *Zone
		sig      SignalingFacts
		admitted bool
		caller   *CallerFacts
		verdict  Verdict
		rule     string
	}{
		{"no check", pbxZone(), udpSig, true, nil, VerdictAllowed, RuleAllowed},
		{"registered", pbxZone(), udpSig, true, reg("alice@pbx.example", "bob@pbx.example", "alice@pbx.example"), VerdictAllowed, RuleAllowed},
		{"host in another case", pbxZone(), udpSig, true, reg("alice@PBX.Example", "alice@pbx.example"), VerdictAllowed, RuleAllowed},
		{"user in another case", pbxZone(), udpSig, true, reg("Alice@pbx.example", "alice@pbx.example"), VerdictRejected, RuleNotRegistered},
		{"none registered", pbxZone(), udpSig, true, reg("alice@pbx.example"), VerdictRejected, RuleNotRegistered},
		{"forged From", pbxZone(), udpSig, true, reg("chief@pbx.example", "alice@pbx.example"), VerdictRejected, RuleNotRegistered},
		{"observe", observe(pbxZone()), udpSig, true, reg("chief@pbx.example"), VerdictWouldReject, RuleNotRegistered},
		{"over TLS", carrierZone(), tlsSig, true, reg("alice@pbx.example", "alice@pbx.example"), VerdictAllowed, RuleAllowed},
		{"stranger first", pbxZone(), udpSig, false, reg("alice@pbx.example"), VerdictRejected, RuleSourceNotAllowed},
		{"TLS required first", carrierZone(), udpSig, true, reg("alice@pbx.example"), VerdictRejected, RuleTLSRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(Input{Stage: StageAdmission, Zone: tc.zone, Signaling: tc.sig, Admitted: tc.admitted, Caller: tc.caller})
			if d.Verdict != tc.verdict || d.Rule != tc.rule {
				t.Fatalf("decision %+v, want %s %s", d, tc.verdict, tc.rule)
			}
			if d.Rule == RuleNotRegistered && (d.Status != StatusForbidden || len(d.Controls) == 0) {
				t.Errorf("refusal %+v: want 403 and the access control", d)
			}
		})
	}
}
