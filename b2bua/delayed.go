package b2bua

import (
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// Delayed offer (RFC 3261 section 13.2.1, RFC 3264): A's INVITE carries no
// SDP, so B's INVITE carries none either. B offers in its 2xx; parapet
// judges that offer against B's zone, offers to A in its own 2xx (planned
// for A's zone, as for any leg parapet offers on), judges A's answer from
// A's ACK, and answers B in the ACK it owes B. Until that ACK is sent,
// every way out of the call first ACKs B with an answer declining every
// stream (settleB), so that B's dialog can be ended with a BYE.

// answerDelayed completes a call after B's 2xx to an offerless INVITE. It
// reports whether the call was established.
func (c *Call) answerDelayed() bool {
	a, b := c.a, c.b
	d, offer, ok := c.takeCalleeOffer()
	if !ok {
		return false
	}
	if err := c.acceptOffer(b, offer, d); err != nil {
		c.byeB()
		c.mediaFailed(err)
		return false
	}
	c.mu.Lock()
	out, err := c.offerTo(a, c.negLocked(b).Remote(), *d.Onward, d.Streams)
	c.mu.Unlock()
	if err != nil {
		c.byeB()
		c.respondA(500, reasonPhrase(500), compliance.DispositionFailed, "build offer: "+err.Error(), "internal error")
		return false
	}
	ack, ok := c.answerA(out)
	if !ok {
		return false // answerA tore the call down, B included
	}
	if ad := c.callerAnswer(ack); !ad.Proceed() {
		disposition := compliance.DispositionRejected
		if ad.Rule == policy.RuleMalformed {
			disposition = compliance.DispositionFailed
		}
		c.setOutcome(disposition, 200, "caller's answer refused: "+ad.Reason)
		c.teardown()
		return false
	}
	c.mu.Lock()
	answer, err := c.answerTo(b, c.negLocked(a).Remote())
	c.mu.Unlock()
	if err != nil {
		c.setOutcome(compliance.DispositionFailed, 200, "build answer: "+err.Error())
		c.teardown()
		return false
	}
	c.ackB(answer)
	c.log.Info("call answered", "offer", "delayed")
	return true
}

// takeCalleeOffer reads and judges the offer in B's 2xx to an offerless
// INVITE (policy's offer stage, with A as the onward leg). The ACK to B
// must carry the answer: it is pending from here. When the offer is
// missing, malformed or refused, B gets BYE and A the decision's status.
func (c *Call) takeCalleeOffer() (policy.Decision, *media.Description, bool) {
	a, b := c.a, c.b
	res := b.uac.InviteResponse
	var offer *media.Description
	var perr error
	if len(res.Body()) > 0 && isSDP(res.ContentType()) {
		offer, perr = media.ParseSDP(res.Body())
	}
	c.mu.Lock()
	b.ackPending, b.pendingOffer = true, offer
	c.mu.Unlock()
	fail := func(d policy.Decision, disposition compliance.Disposition) (policy.Decision, *media.Description, bool) {
		c.decide(d)
		c.byeB()
		c.respondA(d.Status, reasonPhrase(d.Status), disposition, d.Reason, d.Reason)
		return d, nil, false
	}
	switch {
	case perr != nil:
		return fail(malformed(policy.StageOffer, b.pol, 488, "malformed SDP in the callee's offer: %v", perr),
			compliance.DispositionFailed)
	case offer == nil:
		return fail(malformed(policy.StageOffer, b.pol, 488, "the callee answered an offerless INVITE without an offer"),
			compliance.DispositionFailed)
	}
	d := policy.Evaluate(policy.Input{Stage: policy.StageOffer, Zone: b.pol, Signaling: b.sig,
		Media: c.mediaFacts(offer, nil), Onward: a.pol, OnwardTransport: a.transport})
	if !d.Proceed() {
		return fail(d, compliance.DispositionRejected)
	}
	c.decide(d)
	return d, offer, true
}

// callerAnswer judges A's answer to parapet's offer, from its ACK (nil when
// the ACK never came).
func (c *Call) callerAnswer(ack *sip.Request) policy.Decision {
	a := c.a
	var ad policy.Decision
	switch {
	case ack == nil:
		ad = malformed(policy.StageAnswer, a.pol, 488, "the caller never acknowledged parapet's offer")
		c.decide(ad)
	case len(ack.Body()) == 0 || !isSDP(ack.ContentType()):
		ad = malformed(policy.StageAnswer, a.pol, 488, "the caller's ACK carried no answer to parapet's offer")
		c.decide(ad)
	default:
		ad = c.takeAnswer(a, ack.Body())
	}
	return ad
}

// settleB sends the ACK still owed to B's 2xx, if any, with an answer
// that declines every stream of B's offer (RFC 3264 section 6), or with no
// body when that offer could not be read.
func (c *Call) settleB() {
	c.mu.Lock()
	b := c.b
	if b == nil || !b.ackPending {
		c.mu.Unlock()
		return
	}
	var body []byte
	if o := b.pendingOffer; o != nil {
		if sdp, err := c.negLocked(b).Decline(o); err == nil {
			body = sdp
		}
	}
	c.mu.Unlock()
	c.ackB(body)
}

// ackB sends the ACK owed to B's 2xx with body as the answer.
func (c *Call) ackB(body []byte) {
	c.mu.Lock()
	b := c.b
	pending := b.ackPending
	b.ackPending = false
	c.mu.Unlock()
	if !pending {
		return
	}
	ack := sip.NewRequest(sip.ACK, b.target())
	if body != nil {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(body)
	}
	ack.Laddr = b.uac.InviteRequest.Laddr
	c.writeAck(b.uac, ack)
}
