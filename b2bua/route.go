package b2bua

import (
	"fmt"
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// routeCall is a call's second phase: the first route of the caller's zone
// that matches the number called (Call.callee), a slot on it when it has a
// call limit, and leg B toward its target. It answers A (404, 503) when the call ends
// here.
func (c *Call) routeCall(req *sip.Request, tx sip.ServerTransaction) bool {
	route, fl, ok := c.registeredRoute(req, tx)
	if !ok {
		return false
	}
	if route == nil {
		// The number dialled: an emergency call by URN, or by To only,
		// is routed as its emergency number (sos.go).
		route = c.rules.route(c.a.zone.name, c.callee)
	}
	if route == nil {
		c.reject(tx, req, 404, reasonPhrase(404), compliance.DispositionRejected,
			fmt.Sprintf("no route from zone %q for this number", c.a.zone.name))
		return false
	}
	c.route = route
	limits := c.callLimits(route)
	// A peer's emergency call goes beyond a call limit; a stranger's, let
	// in by an observing zone, does not (it could fill the site with
	// ringing calls).
	if full := c.env.reg.takeSlots(limits, c.emergency && !c.outsider); full != nil {
		c.callLimited(req, tx, full)
		return false
	}
	c.limits = limits
	c.b = &leg{call: c, role: compliance.RoleB, side: media.SideB, zone: c.env.zones[route.To], pol: c.rules.zone(route.To),
		transport: route.Target.Transport, secure: route.Target.Secure}
	c.target = route.Target
	c.b.sig = policy.SignalingFacts{Transport: route.Target.Transport}
	c.mu.Lock()
	c.identity.toward(c.rules.zones[route.To].trusted, c.emergency)
	c.mu.Unlock()
	c.toFlow(fl)
	c.log = c.log.With("route", route.Name)
	c.takeEmergency()
	return true
}

// callLimits are the limits a call on route counts against: the site's,
// the caller's zone's and the route's (RFC 3261 section 21.5.4: beyond
// any, 503 with Retry-After).
func (c *Call) callLimits(route *routeRules) []callLimit {
	zone := c.a.zone.name
	return []callLimit{
		{key: "site", max: c.rules.limits.MaxCalls, rule: policy.RuleSiteCallLimit,
			what: fmt.Sprintf("parapet is carrying its maximum of %d calls", c.rules.limits.MaxCalls)},
		{key: "zone|" + zone, max: c.rules.zones[zone].maxCalls, rule: policy.RuleZoneCallLimit,
			what: fmt.Sprintf("zone %q is carrying its maximum of %d calls", zone, c.rules.zones[zone].maxCalls)},
		{key: "route|" + route.Name, max: route.MaxCalls, rule: policy.RuleRouteCallLimit,
			what: fmt.Sprintf("route %q is carrying its maximum of %d calls", route.Name, route.MaxCalls)},
	}
}

// callLimited refuses a call beyond a call limit: 503 with Retry-After,
// and a decision the record keeps. The Warning says only that lines are
// busy, not which limit or how many.
func (c *Call) callLimited(req *sip.Request, tx sip.ServerTransaction, full *callLimit) {
	d := policy.Decision{Stage: policy.StageAdmission, Zone: c.a.zone.name, Verdict: policy.VerdictRejected,
		Rule: full.rule, Status: 503, Reason: full.what}
	c.decide(d)
	c.setOutcome(compliance.DispositionRejected, 503, d.Reason)
	c.env.stats.callLimited.Add(1)
	res := sip.NewResponseFromRequest(req, 503, reasonPhrase(503), nil)
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(c.rules.limits.RetryAfter.Seconds())))))
	res.AppendHeader(sip.NewHeader("Warning", warningValue("all lines busy: a call limit is reached")))
	c.a.zone.commonHeaders(res)
	c.sent(503, c.a.zone.send(tx, res))
}
