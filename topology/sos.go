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

// ServiceNumber is the number a call to an emergency service URN is
// routed as and sent onward as: the first of Numbers (a carrier takes
// digits, not URNs), or "" when there are none.
func (e Emergency) ServiceNumber() string {
	if len(e.Numbers) == 0 {
		return ""
	}
	return e.Numbers[0]
}
