package b2bua

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// register installs the request handlers of a zone. Every handler runs
// under safe: a bug in handling one request must not take down the process
// and every call in it.
func (s *Server) register(z *zone) {
	on := func(m sip.RequestMethod, h sipgo.RequestHandler) { z.srv.OnRequest(m, s.safe(z, h)) }
	// dialogOr routes a request with a To tag to the dialog it names, and
	// hands the others to outside.
	dialogOr := func(outside sipgo.RequestHandler) sipgo.RequestHandler {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			if to := req.To(); to != nil && to.Params.Has("tag") {
				s.inDialog(z, req, tx)
				return
			}
			outside(req, tx)
		}
	}
	// admitThen answers code to a request from the zone's peers; others
	// are refused as outsiders are.
	admitThen := func(code int) sipgo.RequestHandler {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			if s.admit(z, req, tx) {
				z.respond(tx, req, code, reasonPhrase(code), "")
			}
		}
	}
	inDialog := func(req *sip.Request, tx sip.ServerTransaction) { s.inDialog(z, req, tx) }
	on(sip.INVITE, dialogOr(func(req *sip.Request, tx sip.ServerTransaction) { s.handleInvite(z, req, tx) }))
	on(sip.ACK, inDialog)
	on(sip.BYE, inDialog)
	on(sip.INFO, inDialog)
	// UPDATE and PRACK belong to a dialog (RFC 3311 section 5.2, RFC 3262);
	// REFER is a transfer inside a call, and nothing outside one.
	on(sip.UPDATE, dialogOr(admitThen(481)))
	on(sip.PRACK, dialogOr(admitThen(481)))
	on(sip.REFER, dialogOr(admitThen(405)))
	on(sip.CANCEL, func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL matching a live INVITE transaction is answered by sipgo's
		// transaction layer; one that reaches us matched nothing.
		z.respond(tx, req, 481, reasonPhrase(481), "")
	})
	on(sip.OPTIONS, dialogOr(func(req *sip.Request, tx sip.ServerTransaction) {
		if !s.admit(z, req, tx) || !s.inspect(z, req, tx) {
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		z.commonHeaders(res)
		z.send(tx, res)
	}))
	on(sip.REGISTER, func(req *sip.Request, tx sip.ServerTransaction) { s.relayRegister(z, req, tx) })
	// A method parapet does not know: the source is judged first (a
	// stranger is refused as any outsider is, and tallied), then 405 with
	// the Allow header (RFC 3261 section 8.2.1). sipgo's own default
	// answers 405 to anyone, without Allow, and records nothing.
	z.srv.OnNoRoute(s.safe(z, admitThen(405)))
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.PUBLISH} {
		on(m, func(req *sip.Request, tx sip.ServerTransaction) {
			if to := req.To(); to != nil && to.Params.Has("tag") {
				z.respond(tx, req, 501, reasonPhrase(501), "")
				return
			}
			admitThen(405)(req, tx)
		})
	}
}

// safe recovers a panicking handler: the request gets 500, the process
// and its other calls go on, and the panic is logged. It first refuses a
// request that is not well-formed SIP/2.0 (refuseMalformed).
func (s *Server) safe(z *zone, h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("request handler panicked", "method", string(req.Method), "panic", fmt.Sprint(p))
				if !req.IsAck() {
					z.respond(tx, req, 500, "Server Internal Error", "")
				}
			}
		}()
		if code, why := malformedRequest(req); code != 0 {
			s.refuseMalformed(z, req, tx, code, why)
			return
		}
		h(req, tx)
	}
}

// refuseMalformed answers a malformed request with code (400, or 505 for
// another SIP version), after the zone's peer check: a stranger gets
// admit's 403 and record whatever it sends, and learns nothing of
// parapet's parser. Requests inside a dialog are judged so too here: a
// malformed one is refused either way. An ACK gets nothing (RFC 3261
// section 17.2.3).
func (s *Server) refuseMalformed(z *zone, req *sip.Request, tx sip.ServerTransaction, code int, why string) {
	s.stats.parseErrors.Add(1)
	if req.IsAck() || !s.admit(z, req, tx) {
		return
	}
	z.respond(tx, req, code, reasonPhrase(code), why)
}

// inspect is RFC 3261 section 8.2.2's header inspection of a request
// outside any dialog whose method parapet takes: 416 for a Request-URI
// of a scheme parapet does not serve, 420 for an extension it does not
// support, whether Require asks it of parapet as the request's end or
// Proxy-Require of parapet in the path. It reports whether the request
// passed.
func (s *Server) inspect(z *zone, req *sip.Request, tx sip.ServerTransaction) bool {
	if scheme, ok := servedScheme(req.Recipient); !ok {
		z.respond(tx, req, 416, reasonPhrase(416), "Request-URI scheme "+scheme+" is not served")
		return false
	}
	if tags := unsupportedTags(req); len(tags) > 0 {
		z.badExtension(tx, req, strings.Join(tags, ", "))
		return false
	}
	return true
}

// allowMethods is what parapet handles: UPDATE (RFC 3311) as a session
// refresh or a new offer; PRACK toward a caller that requires 100rel;
// REFER inside a call (a blind transfer, or 403 where the zone refuses
// transfers: phones offer transfer only to a peer that allows REFER).
const allowMethods = "INVITE, ACK, CANCEL, BYE, PRACK, UPDATE, REFER, INFO, OPTIONS"

// supportedTags are the extensions parapet supports: reliable provisional
// responses (RFC 3262) and session timers (RFC 4028).
const supportedTags = "100rel, timer"

// warningValue formats a Warning header: 399 is the miscellaneous warning.
func warningValue(text string) string {
	text = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return '\''
		}
		return r
	}, text)
	if len(text) > 200 {
		text = text[:200]
	}
	return fmt.Sprintf(`399 parapet "%s"`, text)
}

// admit applies the admission policy to a request outside any call. A
// request from outside the zone's peers is refused as outsiders are
// (refuseOutsider); one refused for how it came (its transport) gets the
// decision's status and a connection event.
func (s *Server) admit(z *zone, req *sip.Request, tx sip.ServerTransaction) bool {
	pol := s.rules.Load().zone(z.name)
	sig := z.signaling(req, pol)
	_, line := s.trunks.admitsLine(z.name, &req.Recipient) // a carrier's OPTIONS to the registered Contact
	d := policy.Evaluate(policy.Input{Stage: policy.StageAdmission, Zone: pol, Signaling: sig,
		Admitted: pol.AdmitsSource(sig.Source.Addr()) || line})
	switch {
	case d.Proceed():
		return true
	case d.Rule == policy.RuleSourceNotAllowed:
		s.refuseOutsider(z, req, tx)
		return false
	}
	z.respond(tx, req, d.Status, reasonPhrase(d.Status), warningFor(d))
	s.connEvent(z, compliance.EventSourceRefused, sig, req.Source(), func(e *compliance.ConnEvent) {
		e.Method = string(req.Method)
		e.SIPStatus = d.Status
		e.Decision = &d
	})
	return false
}

// refuseOutsider answers a request from outside zone z's peers that came
// through sipgo (over TCP or TLS, on a connection the listener's budgets
// admitted): 403 within the outsider budgets, unless the zone drops
// outsiders or scanners, and nothing beyond them. It is counted in the
// zone's outsider tally, not recorded alone. The 403 carries no Warning: a
// stranger learns neither the zone's name nor how its peers are chosen.
func (s *Server) refuseOutsider(z *zone, req *sip.Request, tx sip.ServerTransaction) {
	src := netip.Addr{}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		src = ap.Addr().Unmap()
	}
	method := string(req.Method)
	if !slices.Contains(knownMethods, method) {
		method = "other"
	}
	s.evMu.RLock() // until counted: see drainEvents
	defer s.evMu.RUnlock()
	if !s.budget.Load().allow(src) {
		s.tallyOutsiderLocked(z, src, method, fateOverBudget)
		return
	}
	scanner := isScanner(req)
	fate := fateRefused
	switch {
	case s.rules.Load().zones[z.name].drops(scanner), req.IsAck():
		fate = fateDropped
	default:
		if err := z.send(tx, statelessForbidden(req)); err != nil {
			fate = fateDropped // the 403 never left: the request got nothing
		}
	}
	if scanner {
		fate = fateScanner
	}
	s.tallyOutsiderLocked(z, src, method, fate)
}

// inDialog routes a request with a To tag to the leg it belongs to.
func (s *Server) inDialog(z *zone, req *sip.Request, tx sip.ServerTransaction) {
	l := s.reg.lookup(req)
	if l == nil {
		if req.IsAck() {
			return // a stray ACK gets no response (RFC 3261 section 17.2.3)
		}
		z.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	l.call.inDialog(l, req, tx)
}
