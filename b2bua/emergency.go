package b2bua

import (
	"strings"

	"github.com/parapet-sbc/parapet/policy"
)

// Emergency calls (docs/config.md, emergency). A call to one of the
// emergency numbers is taken although the compliance log or the live-call
// journal cannot be written (its record waits in the recorder's backlog
// like any other, and is written once the log recovers) and although a
// call limit is reached (it is counted against the limit all the same). Its
// media is offered as the zones' policies say, and a refusal policy would
// make is recorded as would_reject: the call goes on. What still refuses
// it: a source outside the zone's peers (anyone could dial 911 through an
// open relay), signaling the zone does not admit, a shutdown under way
// (a 503 sends the caller's PBX to its other route at once), no route, and
// media parapet cannot relay at all (no usable stream, no acceptable
// crypto).

// emergencyOverride is the text of the call's call.emergency decision:
// what the call was taken in spite of (the overrides so far).
func (c *Call) emergencyOverride(overrides []string) policy.Decision {
	reason := "emergency number: the call is never refused for a call limit or an unwritable log, and media policy refusals are recorded as would_reject"
	if len(overrides) > 0 {
		reason += "; taken although " + strings.Join(overrides, " and ")
	}
	return policy.Decision{Stage: policy.StageAdmission, Zone: c.a.zone.name, Verdict: policy.VerdictAllowed,
		Rule: policy.RuleEmergency, Reason: reason}
}

// observing is z as an emergency call is judged by after admission: in
// observe mode, so that a media refusal is recorded as would_reject and
// the call goes on. What parapet offers onward is unchanged (the plan of
// an enforcing zone and an observing one are the same).
func observing(z *policy.Zone) *policy.Zone {
	o := *z
	o.Mode = policy.ModeObserve
	return &o
}

// takeEmergency readies an emergency call for its media phases, once
// routed: both legs judged in observe mode, and the call.emergency
// decision.
func (c *Call) takeEmergency() {
	if !c.emergency {
		return
	}
	c.a.pol, c.b.pol = observing(c.a.pol), observing(c.b.pol)
	var limited []policy.Decision
	for _, l := range c.limits {
		if l.exceeded {
			limited = append(limited, policy.Decision{Stage: policy.StageAdmission, Zone: c.a.zone.name,
				Verdict: policy.VerdictWouldReject, Rule: l.rule, Status: 503, Reason: l.what})
		}
	}
	if len(limited) > 0 {
		c.overrides = append(c.overrides, "a call limit was reached")
	}
	c.decide(c.emergencyOverride(c.overrides))
	for _, d := range limited {
		c.decide(d)
	}
	c.env.stats.emergency.Add(1)
	c.log.Warn("emergency call", "overrides", len(c.overrides))
}
