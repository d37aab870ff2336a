package b2bua

import (
	"bytes"
	"net/netip"

	"github.com/parapet-sbc/parapet/topology"
)

// A zone in observe mode lets outsiders' requests in within the outsider
// budgets. A flood from elsewhere may spend those, and an emergency call
// from an outsider (a phone the zone's peers do not list yet, in a zone
// being tried in observe mode) must not then be dropped with the flood:
// an INVITE that dials the emergency services draws, once the outsider
// budgets refuse it, on a budget of its own. That budget is small and
// fixed, because anyone can write INVITE 911: a flood of them spends it
// too, and gets no more than emergencyOutsiderLimits allow. A peer's
// emergency INVITE never draws on any budget (peers never do), and an
// enforcing zone refuses outsiders, emergency or not (docs/config.md,
// emergency).

// emergencyOutsiderLimits is the emergency INVITEs' budget: per source,
// per /24 or /64, and all together, per second.
var emergencyOutsiderLimits = topology.Limits{SourceRate: 1, PrefixRate: 2, OutsiderRate: 5}

// emergencyOutsider reports whether data, a request from the outsider
// src, is an INVITE that dials the emergency services and fits in the
// emergency budget (charged only then).
func (s *Server) emergencyOutsider(data []byte, src netip.Addr) bool {
	if methodOf(data) != "INVITE" || !rawEmergency(s.rules.Load().emergency, data) {
		return false
	}
	return s.sosBudget.allow(src)
}

// rawEmergency reports whether the raw request in data dials the
// emergency services under e, as dialledBy would judge it once parsed: its
// Request-URI, or its To, is urn:service:sos (or a sub-service) or a SIP
// or tel: URI of an emergency number. The gate asks it only of INVITEs the
// outsider budgets refused.
func rawEmergency(e topology.Emergency, data []byte) bool {
	if len(e.Numbers) == 0 {
		return false
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	_, after, _ := bytes.Cut(line, []byte(" "))
	uri, _, _ := bytes.Cut(after, []byte(" "))
	scheme, _, _ := bytes.Cut(uri, []byte(":"))
	if !bytes.EqualFold(scheme, []byte("sip")) && !bytes.EqualFold(scheme, []byte("sips")) {
		return rawDials(e, uri) // a URN or a tel: URI (another scheme is not served)
	}
	if rawDials(e, uri) {
		return true
	}
	to := headerValue(data, "to", "t")
	if i := bytes.IndexByte(to, '<'); i >= 0 {
		to, _, _ = bytes.Cut(to[i+1:], []byte(">"))
	} else {
		to, _, _ = bytes.Cut(to, []byte(";"))
	}
	return rawDials(e, bytes.TrimSpace(to))
}

// rawDials reports whether uri is an emergency service URN, a sip or
// sips URI whose user is an emergency number, or a tel: URI of one
// (topology.Emergency.Match ignores its parameters).
func rawDials(e topology.Emergency, uri []byte) bool {
	scheme, rest, ok := bytes.Cut(uri, []byte(":"))
	switch {
	case !ok:
		return false
	case bytes.EqualFold(scheme, []byte("urn")):
		_, sos := topology.SOSService(string(uri))
		return sos
	case bytes.EqualFold(scheme, []byte("sip")), bytes.EqualFold(scheme, []byte("sips")):
		user, _, found := bytes.Cut(rest, []byte("@"))
		return found && e.Match(string(user))
	case bytes.EqualFold(scheme, []byte("tel")):
		return e.Match(string(rest))
	}
	return false
}
