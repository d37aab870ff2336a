package b2bua

import (
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// routeCall is a call's second phase: the first route of the caller's zone
// that matches the number called, a slot on it when it has a call limit,
// and leg B toward its target. It answers A (404, 503) when the call ends
// here.
func (c *Call) routeCall(req *sip.Request, tx sip.ServerTransaction) bool {
	route := c.rules.route(c.a.zone.name, req.Recipient.User)
	if route == nil {
		c.reject(tx, req, 404, reasonPhrase(404), compliance.DispositionRejected,
			fmt.Sprintf("no route from zone %q for this number", c.a.zone.name))
		return false
	}
	c.route = route
	if route.MaxCalls > 0 {
		if !c.env.reg.takeSlot(route.Name, route.MaxCalls) {
			c.routeFull(req, tx, route)
			return false
		}
		c.routeSlot = route.Name
	}
	c.b = &leg{call: c, role: compliance.RoleB, side: media.SideB, zone: c.env.zones[route.To], pol: c.rules.zone(route.To),
		transport: route.Target.Transport, secure: route.Target.Secure}
	c.b.sig = policy.SignalingFacts{Transport: route.Target.Transport}
	c.log = c.log.With("route", route.Name)
	return true
}

// routeFull refuses a call on a route carrying its maximum: 503 with
// Retry-After, and a decision the record keeps.
func (c *Call) routeFull(req *sip.Request, tx sip.ServerTransaction, route *routeRules) {
	d := policy.Decision{Stage: policy.StageAdmission, Zone: c.a.zone.name, Verdict: policy.VerdictRejected,
		Rule: policy.RuleRouteCallLimit, Status: 503,
		Reason: fmt.Sprintf("route %q is carrying its maximum of %d calls", route.Name, route.MaxCalls)}
	c.decide(d)
	c.setOutcome(compliance.DispositionRejected, 503, d.Reason)
	res := sip.NewResponseFromRequest(req, 503, reasonPhrase(503), nil)
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	res.AppendHeader(sip.NewHeader("Warning", warningValue("all lines busy: the route's call limit is reached")))
	c.env.commonHeaders(res)
	c.env.send(tx, res)
}
