package b2bua

import (
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// admit is a call's first phase: is parapet taking calls (not stopping,
// its log and journal writable), does the zone admit the request's source
// and signaling, and is the INVITE one parapet can act on (a Contact, no
// extension it does not support, Max-Forwards left)? It returns the
// INVITE's Max-Forwards, or false when the call ends here.
func (c *Call) admit(req *sip.Request, tx sip.ServerTransaction) (maxForwards int, ok bool) {
	if !c.serving(req, tx) || !c.admitSource(req, tx) {
		return 0, false
	}
	// Protocol checks (RFC 3261 sections 8.2.2, 8.2.3 and 16.3).
	if scheme, ok := servedScheme(req.Recipient); !ok && !c.emergency {
		// An emergency service URN, or a tel: URI of an emergency number,
		// is served (sos.go).
		c.reject(tx, req, 416, reasonPhrase(416), compliance.DispositionRejected, "Request-URI scheme "+scheme+" is not served")
		return 0, false
	}
	if req.Contact() == nil {
		d := malformed(policy.StageAdmission, c.a.pol, 400, "INVITE without Contact")
		c.decide(d)
		c.rejectDecision(tx, req, d)
		return 0, false
	}
	if !c.admitReplaces(req, tx) || !c.requireSupported(req, tx) || !c.timerAdmits(req, tx) {
		return 0, false
	}
	if !acceptsSDP(req) {
		// Its answer would carry SDP, which the caller says it cannot take
		// (RFC 3261 section 21.4.7).
		c.reject(tx, req, 406, reasonPhrase(406), compliance.DispositionRejected, "Accept rules out application/sdp")
		return 0, false
	}
	maxForwards = 70
	if h := req.MaxForwards(); h != nil {
		maxForwards = int(h.Val())
	}
	if maxForwards <= 0 {
		// RFC 3261 section 16.3: a request with Max-Forwards 0 goes no
		// further; one with 1 goes on with 0 (the callee may still answer).
		c.reject(tx, req, 483, reasonPhrase(483), compliance.DispositionRejected, "Max-Forwards exhausted")
		return 0, false
	}
	return maxForwards, true
}

// serving refuses a call while parapet is stopping or cannot account for
// it: a call is taken only when its record and journal entries can be
// written.
func (c *Call) serving(req *sip.Request, tx sip.ServerTransaction) bool {
	s := c.env
	switch {
	case s.isStopping():
		c.reject(tx, req, 503, reasonPhrase(503), compliance.DispositionShutdown, "parapet is shutting down")
	case c.emergency:
		// Taken whatever the log and the journal: its record waits in the
		// recorder's backlog until the log can be written.
		if !s.journalHealthy() {
			c.overrides = append(c.overrides, "the live-call journal could not be written")
		}
		if !s.rec.healthy() {
			c.overrides = append(c.overrides, "the compliance log could not be written")
		}
		return true
	case !s.journalHealthy():
		c.reject(tx, req, 503, reasonPhrase(503), compliance.DispositionFailed, "live-call journal unavailable: calls refused until it can be written")
	case !s.rec.healthy():
		c.reject(tx, req, 503, reasonPhrase(503), compliance.DispositionFailed, "compliance log unavailable: calls refused until records can be written")
	default:
		return true
	}
	return false
}

// admitSource judges the request's source and signaling against the zone
// (policy's admission stage).
func (c *Call) admitSource(req *sip.Request, tx sip.ServerTransaction) bool {
	s, a := c.env, c.a
	caller, fl := c.callerFacts(req)
	d := policy.Evaluate(policy.Input{Stage: policy.StageAdmission, Zone: a.pol, Signaling: a.sig, Admitted: a.admitted,
		Caller: caller})
	d = c.emergencyCaller(d)
	if d.Proceed() {
		c.decide(d)
		c.outsider = d.Rule == policy.RuleSourceNotAllowed
		a.flow = fl
		return true
	}
	if d.Rule == policy.RuleSourceNotAllowed {
		// A stranger's INVITE is no call: it is counted in the zone's
		// outsider tally, not recorded alone, so that no number of
		// outside hosts can flood the compliance log.
		c.folded = true
		s.events.refuseOutsider(a.zone, req, tx)
		return false
	}
	c.decide(d)
	c.setOutcome(compliance.DispositionRejected, d.Status, d.Reason)
	c.sent(d.Status, a.zone.respond(tx, req, d.Status, reasonPhrase(d.Status), warningFor(d)))
	return false
}

// warningFor is the Warning text of an admission refusal: its reason, but
// nothing at all for a request from outside the zone's peers, which would
// tell a stranger the zone's name and how its peers are chosen. The record
// keeps the reason.
func warningFor(d policy.Decision) string {
	if d.Rule == policy.RuleSourceNotAllowed {
		return ""
	}
	return d.Reason
}

// requireSupported answers 420 to an INVITE that requires an extension
// parapet does not support; 100rel (RFC 3262) and timer (RFC 4028) it
// does.
func (c *Call) requireSupported(req *sip.Request, tx sip.ServerTransaction) bool {
	if slices.Contains(requireTags(req, "Require"), "100rel") {
		c.a.rel = newRel100()
	}
	unsupported := unsupportedTags(req)
	if len(unsupported) == 0 {
		return true
	}
	list := strings.Join(unsupported, ", ")
	c.setOutcome(compliance.DispositionRejected, 420, "unsupported extension "+list)
	c.sent(420, c.a.zone.badExtension(tx, req, list))
	return false
}

// unsupportedTags are the option tags req requires that parapet does not
// support (all but 100rel, RFC 3262, and timer, RFC 4028): of parapet as the request's end
// (Require) and of parapet in its path (Proxy-Require: parapet stands at
// the edge as a proxy would, and RFC 3261 section 16.3 has a proxy refuse
// what it does not support), each once.
func unsupportedTags(req *sip.Request) []string {
	var out []string
	for _, tag := range append(requireTags(req, "Require"), requireTags(req, "Proxy-Require")...) {
		if tag != "100rel" && tag != "timer" && !slices.Contains(out, tag) {
			out = append(out, tag)
		}
	}
	return out
}
