package b2bua

import (
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
)

// The callee's identity in responses (RFC 3325 section 9.1: a UAS may
// assert the callee's identity with a P-Asserted-Identity in its 18x and
// 2xx). parapet builds its own responses to the caller, so nothing of B's
// crosses unless said here. The trust rules are the requests': B's
// P-Asserted-Identity is believed only from a trusted zone, and passed to
// the caller only in a trusted zone, with the host of parapet's side
// toward the caller (the callee's own host is not shown beyond parapet).
// Whatever B's Privacy says, an identity never leaves the trust domain;
// inside it, B's Privacy (its known values) goes with it, so that a
// trusted next hop withholds the identity at its own edge (Privacy: id,
// RFC 3325 section 7). An untrusted callee's identity headers, and its
// Privacy with them, are dropped.

// calleeIdentity is what the callee's responses asserted and what of it
// reached the caller (the last relayed response that had a
// P-Asserted-Identity says). Guarded by Call.mu.
type calleeIdentity struct {
	// believed are the P-Asserted-Identity values believed from B;
	// sent those written into parapet's response to A.
	believed, sent []nameAddr
	// privacy are the Privacy values of B's response (known ones).
	privacy []string
	// withheldB: B's response had a P-Asserted-Identity not believed
	// (an untrusted zone); withheldA: one believed and not passed on
	// (toward an untrusted zone).
	withheldB, withheldA bool
}

// relayCalleeIdentity reads the identity headers of B's response from and
// writes into to, parapet's response to A, what the trust rules let
// through.
func (c *Call) relayCalleeIdentity(from, to *sip.Response) {
	if from == nil || to == nil {
		return
	}
	trustedB := c.rules.zones[c.b.zone.name].trusted
	trustedA := c.rules.zones[c.a.zone.name].trusted
	pai := identityValues(from, "P-Asserted-Identity")
	var id calleeIdentity
	switch {
	case len(pai) > 0 && !trustedB:
		id.withheldB = true
	case trustedB:
		id.believed = assertedIdentities(pai)
		id.privacy = privacyOf(from)
	}
	if trustedA {
		id.sent = id.believed
	} else {
		id.withheldA = len(id.believed) > 0
	}
	scheme := "sip"
	if c.a.secure {
		scheme = "sips"
	}
	host := c.a.zone.host(c.a.transport)
	for _, n := range id.sent {
		to.AppendHeader(sip.NewHeader("P-Asserted-Identity", paiValue(n, scheme, host)))
	}
	if trustedA && len(id.privacy) > 0 {
		to.AppendHeader(sip.NewHeader("Privacy", strings.Join(id.privacy, ";")))
	}
	if len(pai) == 0 {
		return // the record keeps what an earlier response asserted
	}
	c.mu.Lock()
	c.identity.callee = id
	c.mu.Unlock()
}

// paiValue writes an asserted identity as parapet sends it: a sip or sips
// URI's user at host (scheme), a tel URI as it is, with its display name.
func paiValue(n nameAddr, scheme, host string) string {
	u := n.uri
	if u.Scheme != "tel" {
		u = sip.Uri{Scheme: scheme, User: n.uri.User, Host: host}
	}
	v := "<" + u.String() + ">"
	if n.display != "" {
		v = quoteDisplay(n.display) + " " + v
	}
	return v
}

// privacyOf are the known Privacy values of m (lowercase, once each).
func privacyOf(m interface{ GetHeaders(string) []sip.Header }) []string {
	var out []string
	for _, h := range m.GetHeaders("Privacy") {
		for _, v := range strings.Split(h.Value(), ";") {
			v = strings.ToLower(strings.TrimSpace(v))
			if slices.Contains(privacyValues, v) && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// calleeRecord lists, for leg l's record, the callee's asserted
// identities (believed on leg b, passed on on leg a), pseudonymised like
// the callee, and whether a P-Asserted-Identity of the callee's did not
// cross. The callee's responses are those to the call's first INVITE,
// before any transfer: legs a and b by role (after a transfer on side b,
// c.b is the new leg), none on a leg a transfer placed. Caller holds c.mu.
func (c *Call) calleeRecord(l *leg) (ids []string, withheld bool) {
	id := &c.identity.callee
	var list []nameAddr
	switch l.role {
	case compliance.RoleA:
		list, withheld = id.sent, id.withheldA
	case compliance.RoleB:
		list, withheld = id.believed, id.withheldB
	}
	for _, n := range list {
		v := n.user()
		if p := c.env.pseudo; p != nil {
			v = p.Token(v)
		}
		ids = append(ids, v)
	}
	return ids, withheld
}
