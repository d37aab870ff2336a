package b2bua

import (
	"context"
	"slices"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// onUpdate handles an UPDATE (RFC 3311) from leg l's peer, in the early
// or the confirmed dialog. With SDP in the confirmed dialog it is a new
// offer, judged by policy and bridged to the other leg exactly as a
// re-INVITE's (onReinvite), answered in its 2xx. Without SDP it is a
// session refresh (RFC 4028), answered here on l's leg alone: the other
// leg keeps its own session timer. With SDP in the early dialog, see
// onEarlyUpdate.
func (c *Call) onUpdate(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	offer := len(req.Body()) > 0
	if offer && c.established.Load() {
		c.onReinvite(l, req, tx)
		return
	}
	if !c.checkCSeq(l, req, tx) || c.refuseShortInterval(l, req, tx) {
		return
	}
	if offer {
		c.onEarlyUpdate(l, req, tx)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	l.zone.commonHeaders(res)
	ct := l.dua.ContactHDR
	res.AppendHeader(&ct)
	if c.established.Load() {
		c.grantTimer(l, req, res)
	}
	l.zone.send(tx, res)
}

// earlyDialog is what a leg's early dialog can carry (RFC 3311 section
// 5.1): done once its early offer/answer is complete, the answer in a
// reliable provisional response that was PRACKed (RFC 3262); update when
// its peer allows UPDATE; target, on leg B, the Contact of B's reliable
// provisional response (the early dialog's remote target). Guarded by
// Call.mu.
type earlyDialog struct {
	done, update bool
	target       *sip.Uri
}

// onEarlyUpdate handles an UPDATE with a new offer in leg l's early
// dialog, before the call is answered. parapet decides as for a
// re-INVITE, in this order:
//
//   - another offer/answer exchange of the call under way (parapet's own
//     UPDATE on a leg, say): 491 (glare, RFC 3311 section 5.2);
//   - l's early offer/answer not complete (its answer not yet in a PRACKed
//     reliable provisional response, RFC 3262): 500 with Retry-After, the
//     INVITE's offer is still pending (section 5.2);
//   - the offer judged by policy at the re-offer stage (recorded like a
//     re-INVITE's): refused, its status (488) and the call goes on as it
//     was; allowed, carried as follows, or not at all (then the decision
//     is not recorded: nothing changed);
//   - the other leg's early dialog can carry an offer (complete early
//     offer/answer, its peer allows UPDATE): bridged there as an UPDATE
//     with parapet's offer, and its answer judged, as bridgeReoffer does;
//   - else, when the offer changes nothing the other side needs to know
//     (same m= lines, formats, profiles and directions; a new address,
//     port or keys): answered by parapet alone, which terminates media on
//     each leg, with the relay's side of l moved to the new parameters;
//   - else 500 with Retry-After: the change must wait for the answer, when
//     the confirmed dialogs carry it.
func (c *Call) onEarlyUpdate(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	if !c.reinvite.TryLock() {
		l.zone.respond(tx, req, 491, reasonPhrase(491), "")
		return
	}
	defer c.reinvite.Unlock()
	other := c.other(l)
	c.mu.Lock()
	mine, theirs := l.early, other.early
	c.mu.Unlock()
	if !mine.done {
		c.retryLater(l, req, tx, "no new offer before the call is answered")
		return
	}
	offer, d, currentSRTP, ok := c.judgeReoffer(l, req, tx)
	if !ok {
		return
	}
	bridge := theirs.done && theirs.update
	if d.Proceed() && !bridge && !c.legLocal(l, offer) {
		// Nothing changes: no decision to record.
		c.retryLater(l, req, tx, "the change needs the other side, which cannot take it before the call is answered")
		return
	}
	c.decide(d)
	if !d.Proceed() {
		l.zone.respond(tx, req, d.Status, reasonPhrase(d.Status), d.Reason)
		return
	}
	if d.Verdict == policy.VerdictWouldReject || !d.SRTP() && currentSRTP {
		c.log.Warn("early re-offer changes media protection", "leg", l.role, "verdict", string(d.Verdict), "rule", d.Rule)
	}
	if bridge {
		c.bridgeReoffer(l, other, offer, d, req, tx, func(o *leg, sdp []byte) (*sip.Response, error) {
			return c.sendEarlyUpdate(o, theirs.target, sdp)
		})
		return
	}
	c.answerAlone(l, other, offer, d, req, tx)
}

// retryLater answers an early UPDATE's offer 500 with Retry-After (RFC
// 3311 section 5.2), saying why in a Warning.
func (c *Call) retryLater(l *leg, req *sip.Request, tx sip.ServerTransaction, why string) {
	res := sip.NewResponseFromRequest(req, 500, reasonPhrase(500), nil)
	l.zone.commonHeaders(res)
	res.AppendHeader(sip.NewHeader("Retry-After", "1"))
	res.AppendHeader(sip.NewHeader("Warning", warningValue(why)))
	l.zone.send(tx, res)
}

// legLocal reports whether offer, from l's peer, changes only what
// concerns l's leg: the same m= lines as its last SDP, each with the same
// media, profile, formats, codecs, direction and rtcp-mux, and the same
// streams enabled. Its address, ports and keys may change.
func (c *Call) legLocal(l *leg, offer *media.Description) bool {
	c.mu.Lock()
	prev := c.negLocked(l).Remote()
	c.mu.Unlock()
	if prev == nil || len(prev.Streams) != len(offer.Streams) {
		return false
	}
	dir := func(s string) string {
		if s == "" {
			return "sendrecv"
		}
		return s
	}
	for i, p := range prev.Streams {
		n := offer.Streams[i]
		if p.Media != n.Media || p.Proto != n.Proto || (p.Port == 0) != (n.Port == 0) || p.RTCPMux != n.RTCPMux ||
			dir(p.Direction) != dir(n.Direction) || !slices.Equal(p.Formats, n.Formats) || !slices.Equal(p.Codecs, n.Codecs) ||
			p.Addr.IsUnspecified() != n.Addr.IsUnspecified() {
			return false
		}
	}
	return true
}

// answerAlone takes an early offer from l's peer that changes only l's
// leg and answers it without the other leg: the answer describes the
// other leg's session as before (its answer, or else l's own formats,
// which that leg's peer already agreed to).
func (c *Call) answerAlone(l, other *leg, offer *media.Description, d policy.Decision, req *sip.Request, tx sip.ServerTransaction) {
	if err := c.acceptOffer(l, offer, d); err != nil {
		l.zone.respond(tx, req, 500, reasonPhrase(500), "media: "+err.Error())
		return
	}
	c.mu.Lock()
	src := c.negLocked(other).Remote()
	if !c.negLocked(other).RemoteIsAnswer() {
		src = offer
	}
	answer, err := c.answerTo(l, src)
	c.mu.Unlock()
	if err != nil {
		l.zone.respond(tx, req, 500, reasonPhrase(500), "build answer: "+err.Error())
		return
	}
	c.journalUpdate() // the media changed; not waited for
	c.answerReinvite(l, req, tx, answer)
}

// sendEarlyUpdate sends an UPDATE with an offer in leg l's early dialog
// (to target, B's Contact, on leg B) and waits for its final response.
// sipgo builds it from the dialog's latest response (InviteResponse), which
// on leg B the goroutine waiting for B's answer replaces when B sends
// another provisional response meanwhile: sipgo offers no lock for it (a
// known limit; the early offer/answer that allowed the UPDATE, under
// Call.mu, orders the response it was taken from before this read).
func (c *Call) sendEarlyUpdate(l *leg, target *sip.Uri, sdp []byte) (*sip.Response, error) {
	to := l.target()
	if target != nil {
		to = *target.Clone()
	}
	req := sip.NewRequest(sip.UPDATE, to)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	req.SetBody(sdp)
	ctx, cancel := context.WithTimeout(context.Background(), inDialogTimeout)
	defer cancel()
	return c.doIn(ctx, l, req)
}

// sendReinvite sends a re-INVITE with an offer on leg l, waits for its final
// response and ACKs a 2xx.
func (c *Call) sendReinvite(l *leg, sdp []byte) (*sip.Response, error) {
	return c.sendReinviteCtx(context.Background(), l, sdp)
}

// sendReinviteCtx is sendReinvite, given up when ctx is done.
func (c *Call) sendReinviteCtx(ctx context.Context, l *leg, sdp []byte) (*sip.Response, error) {
	req := sip.NewRequest(sip.INVITE, l.target())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	c.timerRequest(l, req)
	req.SetBody(sdp)
	ctx, cancel := context.WithTimeout(ctx, inDialogTimeout)
	defer cancel()
	res, err := c.doIn(ctx, l, req)
	if err != nil {
		return nil, err
	}
	if res.IsSuccess() {
		c.timerResponse(l, res)
		ack := sip.NewRequest(sip.ACK, l.target())
		// The ACK carries the INVITE's credentials (RFC 3261 section
		// 13.2.2.4).
		for _, name := range []string{"Authorization", "Proxy-Authorization"} {
			if h := req.GetHeader(name); h != nil {
				ack.AppendHeader(sip.NewHeader(name, h.Value()))
			}
		}
		if err := l.write(ack); err != nil {
			c.log.Warn("ack for re-INVITE", "leg", l.role, "error", err)
		}
	}
	return res, nil
}

// supportedB is the Supported header of parapet's INVITE to B: session
// timers, and reliable provisional responses when the caller supports
// them (parapet then PRACKs B's, see prackB).
func (c *Call) supportedB() string {
	if c.callerRel100() {
		return "100rel, timer"
	}
	return "timer"
}

// callerRel100 reports whether A's INVITE supports or requires 100rel.
func (c *Call) callerRel100() bool {
	inv := c.a.uas.InviteRequest
	return hasTag(inv, "Supported", "100rel") || hasTag(inv, "Require", "100rel")
}

// earlyTarget is the remote target of B's early dialog: the Contact of
// its reliable provisional response res (nil without one).
func earlyTarget(res *sip.Response) *sip.Uri {
	if ct := res.Contact(); ct != nil {
		return ct.Address.Clone()
	}
	return nil
}
