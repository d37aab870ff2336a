package b2bua

import (
	"github.com/emiago/sipgo/sip"
)

// onUpdate handles an UPDATE (RFC 3311) from leg l's peer, in the early
// or the confirmed dialog. With SDP in the confirmed dialog it is a new
// offer, judged by policy and bridged to the other leg exactly as a
// re-INVITE's (onReinvite), answered in its 2xx. Without SDP it is a
// session refresh (RFC 4028), answered here on l's leg alone: the other
// leg keeps its own session timer. In the early dialog parapet takes no
// new offer (the other leg has no dialog to carry it yet): 500 with
// Retry-After (RFC 3311 section 5.2).
func (c *Call) onUpdate(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	offer := len(req.Body()) > 0
	if offer && c.established.Load() {
		c.onReinvite(l, req, tx)
		return
	}
	if !c.checkCSeq(l, req, tx) || c.refuseShortInterval(l, req, tx) {
		return
	}
	if offer {
		res := sip.NewResponseFromRequest(req, 500, reasonPhrase(500), nil)
		l.zone.commonHeaders(res)
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		res.AppendHeader(sip.NewHeader("Warning", warningValue("no new offer before the call is answered")))
		l.zone.send(tx, res)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	l.zone.commonHeaders(res)
	ct := l.dua.ContactHDR
	res.AppendHeader(&ct)
	if c.established.Load() {
		c.grantTimer(l, req, res)
	}
	l.zone.send(tx, res)
}

// supportedB is the Supported header of parapet's INVITE to B: session
// timers, and reliable provisional responses when the caller supports
// them (parapet then PRACKs B's, see prackB).
func (c *Call) supportedB() string {
	if c.callerRel100() {
		return "100rel, timer"
	}
	return "timer"
}

// callerRel100 reports whether A's INVITE supports or requires 100rel.
func (c *Call) callerRel100() bool {
	inv := c.a.uas.InviteRequest
	return hasTag(inv, "Supported", "100rel") || hasTag(inv, "Require", "100rel")
}
