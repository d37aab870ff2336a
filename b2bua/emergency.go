package b2bua

import (
	"fmt"
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
	reason := "emergency call (" + c.dialled.via + "): the call is never refused for a call limit or an unwritable log, and media policy refusals are recorded as would_reject"
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

// nextPlan is the offer to make B after it refused one made with cur
// (488): the zone's next key exchange (policy.NextPlan) or, for an
// emergency call whose callee refused every SRTP offer policy allows, plain
// RTP. The encryption policy is followed as far as the callee supports it,
// and the call is never refused for the rest (fallbackDecision records
// would_reject).
func (c *Call) nextPlan(cur policy.OfferPlan) (policy.OfferPlan, bool) {
	if next, ok := policy.NextPlan(c.b.pol, c.b.transport, cur); ok {
		return next, true
	}
	if c.emergency && cur.Secure() {
		return policy.OfferPlan{}, true
	}
	return policy.OfferPlan{}, false
}

// fallbackDecision is the decision for offering B next after it refused
// cur with 488: allowed between key exchanges, would_reject for an
// emergency call's plain RTP into a zone that requires SRTP.
func (c *Call) fallbackDecision(cur, next policy.OfferPlan) policy.Decision {
	d := policy.Decision{Stage: policy.StageOffer, Zone: c.b.zone.name, Verdict: policy.VerdictAllowed,
		Rule:   policy.RuleKeyExchangeFallback,
		Reason: fmt.Sprintf("the callee refused the %s offer with 488; offering %s", keyExchangeName(cur), keyExchangeName(next))}
	if !next.Secure() && c.b.pol.SRTP == policy.RequirementRequire {
		d.Verdict, d.Rule, d.Status = policy.VerdictWouldReject, policy.RuleSRTPRequired, 488
		d.Reason = fmt.Sprintf("zone %q requires SRTP, and the callee refused every SRTP offer (%s last) with 488: emergency call offered plain RTP",
			c.b.zone.name, keyExchangeName(cur))
	}
	return d
}
