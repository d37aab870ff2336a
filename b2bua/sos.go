package b2bua

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/topology"
)

// Emergency service URNs (RFC 5031, docs/config.md, emergency). A phone
// may dial the emergency services by URN rather than by number (RFC 6881
// section 9.2): INVITE urn:service:sos (or a sub-service such as
// urn:service:sos.police), with the URN in To as well, or a SIP
// Request-URI with the URN, or an emergency number, in To only. Where the
// site has an emergency block, each of these is an emergency call, and it
// is routed and sent onward as an emergency number: the Request-URI's own
// when it dials one, the To's when it names one, else the first of the
// emergency numbers (topology.Emergency.ServiceNumber): a carrier takes
// digits, not URNs. A call any part of which names the emergency services
// goes to the emergency route, whatever else its Request-URI says: a
// mislabelled call that reaches the PSAP costs less than an emergency
// call that reaches an extension.

// dialled is how a call's INVITE dials: the number routes match (callee),
// and, for an emergency call, the service URN it named ("" when it dialled
// a number) and where parapet saw that it was one (for the record).
type dialled struct {
	callee    string
	emergency bool
	service   string
	via       string
}

// dialledBy reads req's Request-URI and To against the emergency numbers
// e. A Request-URI of another URN, or of a scheme parapet does not serve,
// is no emergency call (admit answers 416).
func dialledBy(e topology.Emergency, req *sip.Request) dialled {
	d := dialled{callee: req.Recipient.User}
	if len(e.Numbers) == 0 {
		return d
	}
	if strings.EqualFold(req.Recipient.Scheme, "urn") {
		if s, ok := topology.SOSService(req.Recipient.String()); ok {
			return dialled{callee: e.ServiceNumber(), emergency: true, service: s, via: s + " in the Request-URI, routed as the first emergency number"}
		}
		return d
	}
	if _, ok := servedScheme(req.Recipient); !ok {
		return d
	}
	toService, toNumber := toEmergency(e, req)
	switch {
	case e.Match(d.callee):
		return dialled{callee: d.callee, emergency: true, service: toService, via: "an emergency number in the Request-URI"}
	case toService != "":
		return dialled{callee: e.ServiceNumber(), emergency: true, service: toService,
			via: toService + " in To, routed as the first emergency number (the Request-URI named no emergency service)"}
	case toNumber != "":
		return dialled{callee: toNumber, emergency: true,
			via: "an emergency number in To, routed as that number (the Request-URI named no emergency service)"}
	}
	return d
}

// toEmergency reads req's To: the emergency service URN it names, or the
// emergency number (cleaned, topology.DialString) its SIP URI dials.
func toEmergency(e topology.Emergency, req *sip.Request) (service, number string) {
	to := req.To()
	if to == nil {
		return "", ""
	}
	switch strings.ToLower(to.Address.Scheme) {
	case "urn":
		service, _ = topology.SOSService(to.Address.String())
	case "sip", "sips", "":
		if e.Match(to.Address.User) {
			number = topology.DialString(to.Address.User)
		}
	}
	return service, number
}
