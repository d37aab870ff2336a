package b2bua

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// Attended transfer (Replaces, RFC 3891) and Referred-By (RFC 3892).
//
// Dialog ids are hop by hop through a B2BUA: a dialog parapet holds is
// known by one id on each of its legs, and no peer on one side ever sees
// the ids of the other. So parapet never forwards a Replaces that names
// one of its own dialogs.
//
// In a REFER (Refer-To: <sip:target?Replaces=...>), the Replaces names a
// dialog the target has with someone. When that dialog is not one parapet
// holds (a consultation call between two phones inside the PBX), parapet
// passes its id as given (call-id, to-tag, from-tag, early-only; other
// parameters dropped) in the new leg's INVITE, with Require: replaces so
// that a target that cannot replace refuses (420) rather than ring as a
// new call. When it names a leg of another call through parapet (the
// referrer's consultation call went through parapet), parapet translates
// (translateReplaces): the target is the peer of that call's other leg,
// and the Replaces names that other leg's dialog as its peer knows it.
// That call must be answered and its other leg in the referrer's zone,
// toward one of its peers: else the REFER is refused (501, or 403), since
// a REFER never has parapet call out of the referrer's zone, and joining
// two calls inside parapet is not supported.
//
// An INVITE carrying Replaces from a peer is never routed on, with or
// without its Replaces: 481 when it names no dialog parapet holds (no
// dialog on the far side can have that id), 400 when it does not parse.
// When it names a leg parapet holds, the INVITE replaces that leg
// (replacesin.go says when), or is refused: 403, 481, 486, 488 or 501.

// replacesID is the dialog a Replaces header names (RFC 3891 section 6.1).
type replacesID struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

// String is the header's value: the id as given, with the parameters
// RFC 3891 defines.
func (r replacesID) String() string {
	s := r.callID + ";to-tag=" + r.toTag + ";from-tag=" + r.fromTag
	if r.earlyOnly {
		s += ";early-only"
	}
	return s
}

// parseReplaces reads a Replaces header value: a Call-ID, then to-tag and
// from-tag (both required, once each) and perhaps early-only; other
// generic parameters are allowed and dropped.
func parseReplaces(v string) (replacesID, error) {
	parts := strings.Split(strings.TrimSpace(v), ";")
	r := replacesID{callID: strings.TrimSpace(parts[0])}
	if !validCallID(r.callID) {
		return replacesID{}, errors.New("no valid Call-ID in Replaces")
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		name, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		if !isTokenString(name) || (hasVal && !isTokenString(val)) {
			return replacesID{}, fmt.Errorf("malformed Replaces parameter %q", p)
		}
		if seen[name] {
			return replacesID{}, fmt.Errorf("repeated Replaces parameter %s", name)
		}
		seen[name] = true
		switch name {
		case "to-tag":
			r.toTag = val
		case "from-tag":
			r.fromTag = val
		case "early-only":
			r.earlyOnly = true
		}
	}
	if r.toTag == "" || r.fromTag == "" {
		return replacesID{}, errors.New("to-tag or from-tag missing from Replaces")
	}
	return r, nil
}

// isTokenString reports whether s is a non-empty RFC 3261 token.
func isTokenString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isToken(s[i]) {
			return false
		}
	}
	return true
}

// validCallID reports whether s is an RFC 3261 callid: word ["@" word].
func validCallID(s string) bool {
	local, host, at := strings.Cut(s, "@")
	return isWord(local) && (!at || isWord(host))
}

// isWord reports whether s is a non-empty RFC 3261 word.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isToken(s[i]) && strings.IndexByte("()<>:\\\"/[]?{}", s[i]) < 0 {
			return false
		}
	}
	return true
}

// referReplaces reads the Replaces of a Refer-To URI's headers, escaped
// as URI headers are (RFC 3261 section 19.1.1): ok false when it has
// none, else the id or the refusal's status and reason.
func referReplaces(u *sip.Uri) (r replacesID, ok bool, status int, why string) {
	if u.Headers == nil {
		return replacesID{}, false, 0, ""
	}
	raw, has := u.Headers.Get("Replaces")
	if !has {
		return replacesID{}, false, 0, ""
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return replacesID{}, true, 400, "Refer-To's Replaces is not escaped properly"
	}
	if r, err = parseReplaces(v); err != nil {
		return replacesID{}, true, 400, "Refer-To: " + err.Error()
	}
	return r, true, 0, ""
}

// holds returns the leg of a call through parapet that the dialog id r
// names, or nil: all three of its ids must match (RFC 3891 section 3),
// parapet's tag being its to-tag or its from-tag, whichever side the
// sender is on, and the peer's the other.
func (r *registry) holds(id replacesID) *leg {
	r.mu.Lock()
	byTo := r.legs[dialogKey{callID: id.callID, tag: id.toTag}]
	byFrom := r.legs[dialogKey{callID: id.callID, tag: id.fromTag}]
	r.mu.Unlock()
	if byTo != nil && byTo.peerTag() == id.fromTag {
		return byTo
	}
	if byFrom != nil && byFrom.peerTag() == id.toTag {
		return byFrom
	}
	return nil
}

// peerTag is the tag of l's peer in its dialog ("" while unknown).
func (l *leg) peerTag() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remoteTag
}

// admitReplaces refuses an INVITE that carries Replaces (see above): it
// returns false when it did, with the refusal recorded as a call.transfer
// decision.
func (c *Call) admitReplaces(req *sip.Request, tx sip.ServerTransaction) bool {
	hs := req.GetHeaders("Replaces")
	if len(hs) == 0 {
		return true
	}
	status, why := 400, "more than one Replaces header (RFC 3891 section 3)"
	if len(hs) == 1 {
		id, err := parseReplaces(hs[0].Value())
		held := (*leg)(nil)
		if err == nil {
			held = c.env.reg.holds(id)
		}
		switch {
		case err != nil:
			why = err.Error()
		case held == nil:
			status, why = 481, "Replaces names no dialog parapet holds (dialog ids do not cross parapet)"
		default:
			if status, why = held.call.replaceByInvite(held, c, id, req, tx); status == 0 {
				c.folded = true // the INVITE is now the other call's, and in its record
				return false
			}
		}
	}
	d := policy.Decision{Stage: policy.StageAdmission, Zone: c.a.zone.name, Verdict: policy.VerdictRejected,
		Rule: policy.RuleTransfer, Status: status, Reason: why}
	c.decide(d)
	c.reject(tx, req, status, reasonPhrase(status), compliance.DispositionRejected, why)
	return false
}

// referredBy is the Referred-By (RFC 3892) of the new leg's INVITE: the
// REFER's, reduced to its address (a cid parameter would point at a body
// parapet does not carry), or else the referrer's identity, the party on
// leg x at its peer's host. It returns the header value and its user part.
func (c *Call) referredBy(x *leg, req *sip.Request) (string, string) {
	if h := req.GetHeader("Referred-By"); h != nil {
		var u sip.Uri
		if _, err := sip.ParseAddressValue(h.Value(), &u, nil); err == nil &&
			(strings.EqualFold(u.Scheme, "sip") || strings.EqualFold(u.Scheme, "sips")) {
			u.Headers = nil
			return "<" + u.String() + ">", u.User
		}
	}
	party := c.callee
	if x.side == media.SideA {
		party = c.caller
	}
	t := x.target()
	u := sip.Uri{Scheme: t.Scheme, User: party, Host: t.Host, Port: t.Port}
	if u.Scheme == "" {
		u.Scheme = "sip"
	}
	return "<" + u.String() + ">", party
}

// translateReplaces is the referral of a REFER from leg x's peer whose
// Replaces names held, a leg of a call through parapet (the referrer's
// consultation call, say, between two phones of the zone through
// parapet): the target is the peer of that call's other leg, and the
// Replaces names that other leg's dialog as its peer knows it (the tags as
// in a request from parapet: to-tag the peer's, from-tag parapet's). That
// call must be answered and its other leg in x's zone, toward one of its
// peers; else the REFER is refused (501).
func translateReplaces(x, held *leg) (referral, int, string) {
	y := held.call
	if y == x.call {
		return referral{}, 501, "Refer-To's Replaces names a leg of the call the REFER came in"
	}
	if !y.established.Load() || y.isEnded() || y.departedLeg(held) {
		return referral{}, 501, "Refer-To's Replaces names a leg of a call through parapet that is not answered or has ended"
	}
	y.mu.Lock()
	o := y.other(held)
	var t referral
	var dest netip.AddrPort
	if o != nil {
		t = referral{transport: o.transport, secure: o.secure, replaces: &replacesID{callID: o.callID, fromTag: o.key.tag},
			translated: string(held.role), otherCall: y.id, otherLeg: string(o.role)}
		dest = o.sig.Source
	}
	y.mu.Unlock()
	if o == nil || o.zone.name != x.zone.name {
		return referral{}, 501, "Refer-To's Replaces names a call through parapet whose other leg is outside the zone: joining two calls is not supported"
	}
	ruri := o.target()
	if a, err := netip.ParseAddr(strings.Trim(ruri.Host, "[]")); err == nil && ruri.Port != 0 {
		dest = netip.AddrPortFrom(a.Unmap(), uint16(ruri.Port))
	}
	if !dest.IsValid() || !x.pol.AdmitsSource(dest.Addr()) {
		return referral{}, 403, "Refer-To's Replaces names a call through parapet whose other leg is not toward the zone's peers"
	}
	o.mu.Lock()
	t.replaces.toTag = o.remoteTag
	o.mu.Unlock()
	if t.replaces.toTag == "" || t.replaces.callID == "" {
		return referral{}, 501, "Refer-To's Replaces names a call through parapet whose other dialog is not established"
	}
	ruri.Headers = nil
	t.uri, t.dest = ruri, dest
	return t, 0, ""
}
