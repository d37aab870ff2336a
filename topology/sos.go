package topology

import "strings"

// sosPrefix is the emergency service URN of RFC 5031 section 4.2, in the
// lower case SOSService compares in.
const sosPrefix = "urn:service:sos"

// SOSService reports whether uri is urn:service:sos or one of its
// sub-services (urn:service:sos.police, urn:service:sos.ambulance, RFC
// 5031 section 4.2), and returns it in lower case (URN comparison ignores
// case, section 3). Each label after "sos" must be letters, digits and
// "-" (at most 64 characters in all); anything else is no emergency
// service.
func SOSService(uri string) (string, bool) {
	u := strings.ToLower(strings.TrimSpace(uri))
	if len(u) > 64 || !strings.HasPrefix(u, sosPrefix) {
		return "", false
	}
	rest := u[len(sosPrefix):]
	if rest == "" {
		return u, true
	}
	if rest[0] != '.' {
		return "", false
	}
	for _, label := range strings.Split(rest[1:], ".") {
		if label == "" || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return "", false
		}
	}
	return u, true
}

// ServiceNumber returns the number a call to the emergency service URN
// service (in lower case, as SOSService returns it) is routed and sent
// onward as (a carrier takes digits, not URNs): the number Services maps
// it to, or else its nearest parent service's (urn:service:sos.police.x,
// then urn:service:sos.police, then urn:service:sos, RFC 5031 section
// 4.2), else the first of Numbers ("" when there are none). mapped is the
// service whose entry in Services chose the number, "" for the first of
// Numbers.
func (e Emergency) ServiceNumber(service string) (number, mapped string) {
	for s := service; len(s) >= len(sosPrefix); {
		if n, ok := e.Services[s]; ok {
			return n, s
		}
		i := strings.LastIndexByte(s, '.')
		if i < len(sosPrefix) {
			break
		}
		s = s[:i]
	}
	if len(e.Numbers) == 0 {
		return "", ""
	}
	return e.Numbers[0], ""
}
