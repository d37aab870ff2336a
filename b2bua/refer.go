package b2bua

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// Transfer (REFER, RFC 3515). A peer of the call asks parapet to
// put the Refer-To target in its place: parapet invites the target into
// the referrer's own zone, offering media from the referrer's side of the
// relay with fresh keys, and on the target's 2xx moves that side of the
// relay to it and ends the referrer's leg. The other leg sees nothing:
// parapet terminates media on both sides. An attended transfer (a
// Refer-To with Replaces, RFC 3891) goes the same way, the new leg's
// INVITE carrying the Replaces (replaces.go says which ones); every new
// leg's INVITE carries a Referred-By (RFC 3892).

// referral is where a REFER asks the call to go.
type referral struct {
	uri       sip.Uri // the Refer-To URI, without headers
	dest      netip.AddrPort
	transport policy.Transport
	secure    bool
	// replaces is the dialog the new leg replaces at the target
	// (attended transfer, RFC 3891); nil for a blind transfer.
	replaces *replacesID
	// referredBy is the new leg's Referred-By (RFC 3892), and
	// referrer its user part (recorded).
	referredBy, referrer string
	// translated is the role of the leg of another call through
	// parapet (otherCall) that the REFER's Replaces named; replaces then
	// names that call's leg otherLeg, toward the target.
	translated, otherCall, otherLeg string
}

// kind is the transfer's kind, as recorded.
func (t referral) kind() compliance.TransferKind {
	if t.replaces != nil {
		return compliance.TransferAttended
	}
	return compliance.TransferBlind
}

// onRefer judges a REFER from leg x's peer: refused (403) unless x's zone
// allows transfer and the target is one of its peers, else accepted (202)
// and carried out on its own goroutine.
func (c *Call) onRefer(x *leg, req *sip.Request, tx sip.ServerTransaction) {
	if !c.checkCSeq(x, req, tx) {
		return
	}
	refuse := func(status int, why string) {
		c.decide(policy.Decision{Stage: policy.StageTransfer, Zone: x.zone.name, Verdict: policy.VerdictRejected,
			Rule: policy.RuleTransfer, Status: status, Reason: why})
		c.noteTransfer(x, referFacts(req, compliance.Transfer{Outcome: compliance.TransferRefused, Status: status}))
		x.zone.respond(tx, req, status, reasonPhrase(status), why)
	}
	zr := c.rules.zones[x.zone.name]
	if zr == nil || !zr.transfer {
		refuse(403, fmt.Sprintf("zone %q does not allow transfer", x.zone.name))
		return
	}
	if !c.established.Load() || c.isEnded() {
		refuse(403, "transfer of a call that is not established")
		return
	}
	t, status, why := referTarget(req, x)
	if status != 0 {
		refuse(status, why)
		return
	}
	// One offer/answer at a time on the call (RFC 3261 section 14.1): a
	// re-INVITE meanwhile gets 491, as does a REFER during one.
	if !c.reinvite.TryLock() {
		x.zone.respond(tx, req, 491, reasonPhrase(491), "")
		return
	}
	if !c.countTransfer() {
		c.reinvite.Unlock()
		refuse(403, "transfer of a call that is not established")
		return
	}
	t.referredBy, t.referrer = c.referredBy(x, req)
	why = fmt.Sprintf("transfer to a peer of zone %q accepted", x.zone.name)
	switch {
	case t.translated != "":
		why = fmt.Sprintf("attended transfer to a peer of zone %q accepted: its Replaces names leg %s of call %s, replaced by that call's leg %s toward the target",
			x.zone.name, t.translated, t.otherCall, t.otherLeg)
	case t.replaces != nil:
		why = fmt.Sprintf("attended transfer to a peer of zone %q accepted: its Replaces names a dialog parapet does not hold, passed as given",
			x.zone.name)
	}
	c.decide(policy.Decision{Stage: policy.StageTransfer, Zone: x.zone.name, Verdict: policy.VerdictAllowed,
		Rule: policy.RuleTransfer, Reason: why})
	res := sip.NewResponseFromRequest(req, 202, "Accepted", nil)
	x.zone.commonHeaders(res)
	x.zone.send(tx, res)
	id := req.CSeq().SeqNo
	c.env.reg.wg.Add(1)
	c.goSafe("transfer", func() {
		defer c.env.reg.wg.Done()
		defer c.transferring.Done()
		defer c.reinvite.Unlock()
		c.transfer(x, t, id)
	})
}

// countTransfer counts a transfer under way (Call.transferring), whose
// outcome the call's record waits for, unless the call has ended: then
// the record may be written already, and it returns false. talk sets
// transfersClosed under c.mu before it waits for the transfers, so a
// transfer counted here is one it waits for.
func (c *Call) countTransfer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isEnded() || c.transfersClosed {
		return false
	}
	c.transferring.Add(1)
	return true
}

// referTarget reads the REFER's Refer-To: a sip or sips URI, without
// Replaces, whose host is an IP address inside x's zone's peers (a REFER
// never has parapet call outside the zone). It returns the status of a
// refusal, with its reason, or 0.
func referTarget(req *sip.Request, x *leg) (referral, int, string) {
	h := req.GetHeader("Refer-To")
	if h == nil {
		return referral{}, 400, "REFER without Refer-To"
	}
	u, err := referToURI(h.Value())
	if err != nil {
		return referral{}, 400, "Refer-To does not parse"
	}
	replaces, attended, status, why := referReplaces(&u)
	if status != 0 {
		return referral{}, status, why
	}
	if m, ok := u.UriParams.Get("method"); ok && !strings.EqualFold(m, "INVITE") {
		return referral{}, 403, "Refer-To asks for a method other than INVITE"
	}
	if attended {
		if held := x.call.env.reg.holds(replaces); held != nil {
			return translateReplaces(x, held)
		}
	}
	t := referral{transport: policy.TransportUDP}
	if attended {
		t.replaces = &replaces
	}
	switch strings.ToLower(u.Scheme) {
	case "sips":
		t.secure, t.transport = true, policy.TransportTLS
	case "sip":
	default:
		return referral{}, 403, "Refer-To is not a sip or sips URI"
	}
	if tp, ok := u.UriParams.Get("transport"); ok && !t.secure {
		switch strings.ToLower(tp) {
		case "udp":
		case "tcp":
			t.transport = policy.TransportTCP
		case "tls":
			t.transport = policy.TransportTLS
		default:
			return referral{}, 403, "Refer-To names an unknown transport"
		}
	}
	addr, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return referral{}, 403, "Refer-To host is not an IP address of the zone's peers"
	}
	addr = addr.Unmap()
	if !x.pol.AdmitsSource(addr) {
		return referral{}, 403, "Refer-To target is outside the zone's peers"
	}
	port := uint16(u.Port)
	if port == 0 {
		port = defaultPort(t.transport)
	}
	t.dest = netip.AddrPortFrom(addr, port)
	u.Headers = nil
	t.uri = u
	return t, 0, ""
}

// referToURI reads a Refer-To value's URI. Written without angle
// brackets, a URI's parameters are the header's (RFC 3261 section 20), so
// "sip:host;transport=tls" strictly names host over UDP with a header
// parameter transport. A phone that writes it so means the URI's
// transport (a header parameter transport means nothing in a Refer-To),
// and read strictly its target would be refused by a TLS-only zone, so
// parapet reads it as the URI's: only transport, and only when the URI
// has none of its own; other header parameters are dropped.
func referToURI(v string) (sip.Uri, error) {
	var u sip.Uri
	var hp sip.HeaderParams
	if _, err := sip.ParseAddressValue(v, &u, &hp); err != nil {
		return sip.Uri{}, err
	}
	if strings.Contains(v, "<") || u.UriParams.Has("transport") {
		return u, nil
	}
	for _, kv := range hp {
		if strings.EqualFold(kv.K, "transport") {
			if u.UriParams == nil {
				u.UriParams = sip.NewParams()
			}
			u.UriParams.Add("transport", kv.V)
			break
		}
	}
	return u, nil
}

// transfer carries out an accepted REFER from leg x's peer: NOTIFY 100,
// the new leg, and on its answer the swap, NOTIFY 200 and BYE to x; on a
// failure NOTIFY with the final status, and the call as it was.
func (c *Call) transfer(x *leg, t referral, id uint32) {
	c.notifyRefer(x, id, "SIP/2.0 100 Trying", false)
	nl, status := c.dialTransfer(x, t)
	if nl != nil && !c.swapLeg(x, nl, t.note(compliance.Transfer{Outcome: compliance.TransferDone, Status: 200, Leg: string(nl.role)})) {
		// The call ended as the target answered: it joins no call.
		c.byeTransfer(nl.uac)
		nl, status = nil, 487
	}
	if nl == nil {
		c.noteTransfer(x, t.note(compliance.Transfer{Outcome: compliance.TransferFailed, Status: status}))
		if !c.isEnded() { // else the referrer has its BYE
			c.notifyRefer(x, id, fmt.Sprintf("SIP/2.0 %d %s", status, reasonPhrase(status)), true)
		}
		return
	}
	c.notifyRefer(x, id, "SIP/2.0 200 OK", true)
	c.byeDeparted(x)
}

// byeDeparted ends leg x, which a transfer replaced, with BYE.
func (c *Call) byeDeparted(x *leg) {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if d := x.dialog(); d != nil && d.LoadState() != sip.DialogStateEnded {
		var err error
		if x.uas != nil {
			err = x.uas.Bye(ctx)
		} else {
			err = x.uac.Bye(ctx)
		}
		if err != nil {
			c.log.Debug("bye to the transferred leg", "error", err)
		}
	}
}

// notifyRefer sends the referrer a NOTIFY of the refer subscription
// (RFC 3515 section 2.4.4) with frag as its message/sipfrag body; final
// ends the subscription.
func (c *Call) notifyRefer(x *leg, id uint32, frag string, final bool) {
	req := sip.NewRequest(sip.NOTIFY, x.target())
	req.AppendHeader(sip.NewHeader("Event", fmt.Sprintf("refer;id=%d", id)))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(frag + "\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), inDialogTimeout)
	defer cancel()
	if _, err := x.do(ctx, req); err != nil {
		c.log.Debug("notify to the referrer", "error", err)
	}
}

// swapLeg puts nl in x's place: the call's leg on x's side from now on.
// x stays booked (departed) until the call forgets it, so that its peer's
// BYE is answered without ending the call, and tr is noted. It returns
// false, and swaps nothing, when the call has ended.
func (c *Call) swapLeg(x, nl *leg, tr compliance.Transfer) bool {
	c.mu.Lock()
	if c.isEnded() {
		c.mu.Unlock()
		return false
	}
	if x == c.a {
		c.a = nl
	} else {
		c.b = nl
	}
	c.departed = append(c.departed, x)
	c.noteTransferLocked(x, tr)
	c.mu.Unlock()
	// Taking the registry's lock publishes the swap to the goroutines
	// that look legs up there.
	c.env.reg.addLeg(nl)
	select {
	case c.swapped <- struct{}{}:
	default:
	}
	// The replaced leg's session timer watch ends; talk starts the new
	// leg's.
	x.mu.Lock()
	kick := x.timerKick
	x.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	return true
}

// departedLeg reports whether l is a leg a transfer replaced.
func (c *Call) departedLeg(l *leg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l != c.a && l != c.b
}

// onDeparted answers a request on a leg a transfer replaced: its BYE gets
// 200 and ends that dialog only; anything else 481.
func (c *Call) onDeparted(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	switch {
	case req.IsAck():
	case req.Method == sip.BYE && l.uas != nil:
		_ = l.uas.ReadBye(req, tx)
	case req.Method == sip.BYE && l.uac != nil:
		_ = l.uac.ReadBye(req, tx)
	default:
		l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
	}
}

// noteTransfer records a transfer asked by leg x's peer.
func (c *Call) noteTransfer(x *leg, t compliance.Transfer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noteTransferLocked(x, t)
}

// noteTransferLocked is noteTransfer; caller holds c.mu.
func (c *Call) noteTransferLocked(x *leg, t compliance.Transfer) {
	t.Time = time.Now().UTC()
	t.By = x.role
	c.transfers = append(c.transfers, t)
}

// note completes tr with what the record says of the referral: its
// target, kind and Referred-By.
func (t referral) note(tr compliance.Transfer) compliance.Transfer {
	tr.Target, tr.Kind, tr.ReferredBy = t.uri.User, t.kind(), t.referrer
	return tr
}

// referFacts completes tr, a refused REFER's entry, with what can be read
// of the REFER: the Refer-To's user part and kind (none when it has no
// Refer-To or it does not parse), the Referred-By's user part.
func referFacts(req *sip.Request, tr compliance.Transfer) compliance.Transfer {
	tr.ReferredBy = referredUser(req)
	h := req.GetHeader("Refer-To")
	if h == nil {
		return tr
	}
	u, err := referToURI(h.Value())
	if err != nil {
		return tr
	}
	tr.Target, tr.Kind = u.User, compliance.TransferBlind
	if u.Headers != nil && u.Headers.Has("Replaces") {
		tr.Kind = compliance.TransferAttended
	}
	return tr
}

// referredUser is the user part of req's Referred-By, "" when it has none
// or it does not parse.
func referredUser(req *sip.Request) string {
	h := req.GetHeader("Referred-By")
	if h == nil {
		return ""
	}
	var u sip.Uri
	if _, err := sip.ParseAddressValue(h.Value(), &u, nil); err != nil {
		return ""
	}
	return u.User
}
