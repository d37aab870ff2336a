package b2bua

import (
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
)

// Identity headers and the RFC 3325 trust domain (docs/config.md, zone
// trusted). parapet's trust domain is its trusted zones. It believes the
// P-Asserted-Identity and Diversion (RFC 5806) of a request from a trusted
// zone only; from an untrusted zone they are removed, never passed on, and
// a P-Preferred-Identity is not turned into an asserted identity (parapet
// authenticates the peer's host, not the user, so it has nothing to assert
// the identity with). A P-Preferred-Identity is never passed on. Toward a
// trusted zone, the asserted identities and Diversion are passed; toward an
// untrusted zone both are removed, whatever Privacy says (RFC 3325 section
// 5 lets a PAI leave the trust domain when no privacy is asked for; parapet
// does not: a clinic's identities stay inside). Privacy (RFC 3323) is
// passed on as the caller sent it (its known values), so that a trusted
// next hop withholds the identity at its own edge (Privacy: id). An
// emergency call keeps its callback number: its asserted identities go to
// the emergency route's zone trusted or not, Privacy or not (a PSAP gets
// the caller's number whatever the caller asked), and From always carries
// the caller's number.

// identity is what a call's identity headers were on leg A and became on
// leg B: header values as they are sent (never logged, and in records only
// pseudonymised).
type identity struct {
	// asserted are the P-Asserted-Identity values believed from leg A.
	asserted []nameAddr
	// diversion are the Diversion header values believed from leg A, as
	// received.
	diversion []string
	// privacy are the Privacy values leg A asked for (known ones,
	// lowercase).
	privacy []string
	// withheldA names the identity headers of leg A's INVITE that were not
	// believed; withheldB those believed but not passed on to leg B.
	withheldA, withheldB []string
	// sentB are the asserted identities passed on to leg B.
	sentB []nameAddr
	// diversionB: the Diversion values go to leg B.
	diversionB bool
	// callee is the identity of the callee's responses (identity_response.go).
	callee calleeIdentity
}

// nameAddr is an identity header's address: its display name and URI.
type nameAddr struct {
	display string
	uri     sip.Uri
}

// user is the identity the address names, as records pseudonymise it: a
// sip or sips URI's user, a tel URI's number (without its parameters).
func (n nameAddr) user() string {
	if n.uri.Scheme == "tel" {
		num, _, _ := strings.Cut(n.uri.Raw(), ";")
		return num
	}
	return n.uri.User
}

// privacyValues are the Privacy header's values (RFC 3323, RFC 3325,
// RFC 7044); others are dropped.
var privacyValues = []string{"none", "header", "session", "user", "id", "critical", "history"}

// maxIdentities bounds the identity values of each kind taken from a
// request (RFC 3325 allows two asserted identities: one sip or sips URI
// and one tel URI).
const maxIdentities = 2

// identityFrom reads the identity headers of leg A's INVITE, from a zone
// trusted or not.
func identityFrom(req *sip.Request, trusted bool) identity {
	var id identity
	for _, h := range req.GetHeaders("Privacy") {
		for _, v := range strings.Split(h.Value(), ";") {
			v = strings.ToLower(strings.TrimSpace(v))
			if slices.Contains(privacyValues, v) && !slices.Contains(id.privacy, v) {
				id.privacy = append(id.privacy, v)
			}
		}
	}
	if len(req.GetHeaders("P-Preferred-Identity")) > 0 {
		id.withheldA = append(id.withheldA, "P-Preferred-Identity")
	}
	pai := identityValues(req, "P-Asserted-Identity")
	if len(pai) > 0 && !trusted {
		id.withheldA = append(id.withheldA, "P-Asserted-Identity")
	}
	if trusted {
		id.asserted = assertedIdentities(pai)
	}
	div := identityValues(req, "Diversion")
	switch {
	case len(div) > 0 && !trusted:
		id.withheldA = append(id.withheldA, "Diversion")
	case trusted:
		for _, v := range div {
			if _, ok := parseNameAddr(v); ok && len(id.diversion) < maxIdentities*4 {
				id.diversion = append(id.diversion, v)
			}
		}
	}
	return id
}

// assertedIdentities are the usable P-Asserted-Identity values: sip, sips
// or tel URIs, at most one sip or sips and one tel (RFC 3325 section 9.1).
func assertedIdentities(values []string) []nameAddr {
	var out []nameAddr
	var sipSeen, telSeen bool
	for _, v := range values {
		n, ok := parseNameAddr(v)
		if !ok || n.user() == "" {
			continue
		}
		seen := &sipSeen
		if n.uri.Scheme == "tel" {
			seen = &telSeen
		}
		if *seen {
			continue
		}
		*seen = true
		out = append(out, n)
	}
	return out
}

// toward decides what of id goes to leg B, in a zone trusted or not, on a
// call to an emergency number or not.
func (id *identity) toward(trusted, emergency bool) {
	id.sentB, id.diversionB, id.withheldB = nil, false, nil
	if trusted || emergency {
		id.sentB = id.asserted
	} else if len(id.asserted) > 0 {
		id.withheldB = append(id.withheldB, "P-Asserted-Identity")
	}
	if trusted {
		id.diversionB = len(id.diversion) > 0
	} else if len(id.diversion) > 0 {
		id.withheldB = append(id.withheldB, "Diversion")
	}
}

// writeIdentity adds to leg B's INVITE, req, the identity headers id lets
// through: the asserted identities with the host of leg B's From (the
// caller's own host is not shown beyond parapet, as for From), the
// Diversion values as received, and Privacy.
func (id *identity) writeIdentity(req *sip.Request, scheme, host string) {
	for _, n := range id.sentB {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", paiValue(n, scheme, host)))
	}
	if id.diversionB {
		for _, v := range id.diversion {
			req.AppendHeader(sip.NewHeader("Diversion", v))
		}
	}
	if len(id.privacy) > 0 {
		req.AppendHeader(sip.NewHeader("Privacy", strings.Join(id.privacy, ";")))
	}
}

// quoteDisplay writes a display name as a quoted string.
func quoteDisplay(s string) string {
	s = strings.Trim(s, `"`)
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
	return `"` + s + `"`
}

// parseNameAddr parses an identity header value: a name-addr or addr-spec
// whose URI is sip, sips or tel.
func parseNameAddr(v string) (nameAddr, bool) {
	var n nameAddr
	params := sip.NewParams()
	display, err := sip.ParseAddressValue(strings.TrimSpace(v), &n.uri, &params)
	if err != nil {
		return nameAddr{}, false
	}
	switch n.uri.Scheme {
	case "sip", "sips":
		if n.uri.Host == "" {
			return nameAddr{}, false
		}
	case "tel":
		if raw := n.uri.Raw(); raw == "" || strings.ContainsAny(raw, " \t<>\",") {
			return nameAddr{}, false
		}
	default:
		return nameAddr{}, false
	}
	n.display = strings.Trim(display, `"`)
	return n, true
}

// identityValues are the values of m's headers named name (a request's
// or a response's), each header
// split at the commas between its values (outside quotes and angle
// brackets).
func identityValues(m interface{ GetHeaders(string) []sip.Header }, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, splitValues(h.Value())...)
	}
	return out
}

// splitValues splits a header value at the commas that separate its
// values.
func splitValues(s string) []string {
	var out []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle = true
		case c == '>' && !quoted:
			angle = false
		case c == ',' && !quoted && !angle:
			if v := strings.TrimSpace(s[start:i]); v != "" {
				out = append(out, v)
			}
			start = i + 1
		}
	}
	if v := strings.TrimSpace(s[start:]); v != "" {
		out = append(out, v)
	}
	return out
}

// identityRecord notes in out, leg l's record, its identity headers: on
// leg A the asserted identities believed, the Privacy asked for and the
// headers not believed; on leg B, and on a leg a transfer put in its
// place (its INVITE carried the same, transferInvite), the asserted
// identities sent and the headers not passed on. A leg a transfer put in
// leg A's place carried none of the caller's. Identities are pseudonymised
// like the caller. Caller holds c.mu.
func (c *Call) identityRecord(l *leg, out *compliance.Leg) {
	id := &c.identity
	var ids []nameAddr
	var withheld []string
	switch {
	case l.role == compliance.RoleA:
		ids, withheld = id.asserted, id.withheldA
		if len(id.privacy) > 0 {
			out.Privacy = strings.Join(id.privacy, ";")
		}
	case l.side == media.SideB:
		ids, withheld = id.sentB, id.withheldB
	}
	for _, n := range ids {
		v := n.user()
		if p := c.env.pseudo; p != nil {
			v = p.Token(v)
		}
		out.AssertedIdentities = append(out.AssertedIdentities, v)
	}
	out.WithheldHeaders = slices.Clone(withheld)
	var calleeWithheld bool
	out.CalleeIdentities, calleeWithheld = c.calleeRecord(l)
	if calleeWithheld {
		out.WithheldHeaders = append(out.WithheldHeaders, withheldResponsePAI)
	}
}

// withheldResponsePAI names, in a leg's withheld_headers, a callee's
// P-Asserted-Identity that did not cross (identity_response.go).
const withheldResponsePAI = "P-Asserted-Identity (response)"
