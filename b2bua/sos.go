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
// Request-URI with the URN, or an emergency number, in To only. A phone
// may also dial by tel: URI (RFC 3966), tel:911, in the Request-URI or in
// To. Where the site has an emergency block, each of these is an
// emergency call, and it is routed and sent onward as an emergency number
// on sip: (or sips:): the Request-URI's own when it dials one, the To's
// when it names one, else the number the emergency services map gives
// the URN's service, or the first of the emergency numbers
// (topology.Emergency.ServiceNumber): a carrier takes digits, not URNs. A
// tel: URI's number is sent onward cleaned (topology.DialString: no "+",
// no visual separators, no parameters), as the emergency numbers are
// written. A call any part of which names the emergency services
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
// e. A Request-URI of another URN, a tel: URI of another number, or of a
// scheme parapet does not serve, is no emergency call, whatever its To
// says (admit answers 416, as without an emergency block).
func dialledBy(e topology.Emergency, req *sip.Request) dialled {
	d := dialled{callee: req.Recipient.User}
	if len(e.Numbers) == 0 {
		return d
	}
	if strings.EqualFold(req.Recipient.Scheme, "urn") {
		if s, ok := topology.SOSService(req.Recipient.String()); ok {
			n, mapped := e.ServiceNumber(s)
			return dialled{callee: n, emergency: true, service: s, via: s + " in the Request-URI, routed as " + routedAs(mapped)}
		}
		return d
	}
	toService, toNumber := toEmergency(e, req)
	if n, ok := telNumber(req.Recipient); ok {
		if !e.Match(n) {
			return d
		}
		return dialled{callee: topology.DialString(n), emergency: true, service: toService,
			via: "an emergency number in a tel: Request-URI (RFC 3966), sent onward as that number on sip:"}
	}
	if _, ok := servedScheme(req.Recipient); !ok {
		return d
	}
	switch {
	case e.Match(d.callee):
		return dialled{callee: d.callee, emergency: true, service: toService, via: "an emergency number in the Request-URI"}
	case toService != "":
		n, mapped := e.ServiceNumber(toService)
		return dialled{callee: n, emergency: true, service: toService,
			via: toService + " in To, routed as " + routedAs(mapped) + " (the Request-URI named no emergency service)"}
	case toNumber != "":
		return dialled{callee: toNumber, emergency: true,
			via: "an emergency number in To, routed as that number (the Request-URI named no emergency service)"}
	}
	return d
}

// routedAs says, for the record, how a service URN was routed: mapped is
// the service whose entry in the emergency services chose its number (""
// for the first emergency number). The number itself is the record's
// callee, and record texts never repeat the callee.
func routedAs(mapped string) string {
	if mapped == "" {
		return "the first emergency number"
	}
	return "the number emergency services maps " + mapped + " to"
}

// toEmergency reads req's To: the emergency service URN it names, or the
// emergency number (cleaned, topology.DialString) its SIP or tel: URI
// dials.
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
	case "tel":
		if n, _ := telNumber(to.Address); e.Match(n) {
			number = topology.DialString(n)
		}
	}
	return service, number
}

// telNumber returns the number of u when it is a tel: URI (RFC 3966
// section 3): its scheme-specific part, which sipgo keeps uninterpreted,
// up to the first parameter (phone-context, isub, ext...).
func telNumber(u sip.Uri) (string, bool) {
	if !strings.EqualFold(u.Scheme, "tel") {
		return "", false
	}
	n, _, _ := strings.Cut(u.Raw(), ";")
	return n, true
}
