package b2bua

import (
	"errors"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// respondA sends a final error to A once its dialog exists. why goes into
// the record; warn, the Warning header A sees, must never carry anything of
// the other leg's topology (addresses, hosts): only what A may know.
func (c *Call) respondA(code int, reason string, disposition compliance.Disposition, why, warn string) {
	c.setOutcome(disposition, code, why)
	res := sip.NewResponseFromRequest(c.a.uas.InviteRequest, code, reason, nil)
	c.a.zone.commonHeaders(res)
	if warn != "" && code != 487 {
		res.AppendHeader(sip.NewHeader("Warning", warningValue(warn)))
	}
	// Straight to the transaction, which retransmits the response and
	// absorbs the ACK itself; the dialog's WriteResponse would block this
	// call until that ACK (up to Timer H) even when parapet is stopping.
	c.sent(code, c.aTx.Respond(res))
}

// answerA sends A parapet's 2xx with sdp and waits for A's ACK, which it
// returns (nil if A never sent one). It reports whether the call was
// established; if not, it has set the outcome and torn the call down.
func (c *Call) answerA(sdp []byte) (*sip.Request, bool) {
	a := c.a
	ok := sip.NewSDPResponseFromRequest(a.uas.InviteRequest, sdp)
	c.a.zone.commonHeaders(ok)
	if b := c.b; b != nil && b.uac != nil {
		c.relayCalleeIdentity(b.uac.InviteResponse, ok)
	}
	c.grantTimer(a, a.uas.InviteRequest, ok)
	if !c.journalAnswer() {
		return nil, false
	}
	c.established.Store(true)
	c.relay.Watch() // media.timeout counts from the answer, not while ringing
	// sipgo retransmits the 2xx until the ACK comes, for up to 64*T1; a
	// hangup (shutdown, media timeout) must not wait that long.
	acked := make(chan error, 1)
	sending := time.Now()
	go func() {
		// A panic in sending the 2xx still settles A and says so on acked,
		// which byeOnLateAck and the call wait for.
		err := errors.New("internal error sending the 2xx")
		defer func() {
			if p := recover(); p != nil {
				logPanic(c.log, "answering a", p)
			}
			close(a.settled)
			acked <- err
		}()
		err = a.uas.WriteResponse(ok)
	}()
	select {
	case err := <-acked:
		if err != nil {
			c.notAcked(err, time.Since(sending) < sip.T1)
			return nil, false
		}
	case <-c.ended:
		c.endedBeforeAck(acked)
		return nil, false
	}
	select {
	case ack := <-a.firstAck:
		return ack, true
	default:
		return nil, true // sipgo stopped waiting for the ACK (64*T1)
	}
}

// journalAnswer puts the answered call on disk before the caller learns it
// is answered: a crash from then on leaves its record (unobserved). When
// the journal cannot be written, the call is refused: B gets BYE, A 503.
func (c *Call) journalAnswer() bool {
	c.mu.Lock()
	c.answered = time.Now()
	c.mu.Unlock()
	err := c.journal(true)
	if err == nil {
		return true
	}
	if c.emergency {
		// Answered all the same: its record waits in the recorder if the
		// log fails too (emergency.go).
		c.log.Error("live-call journal not written; emergency call answered all the same", "error", err)
		return true
	}
	c.log.Error("live-call journal not written; call refused", "error", err)
	c.mu.Lock()
	c.answered = time.Time{}
	c.mu.Unlock()
	_ = c.journal(false) // not answered after all: what a crash from here would leave
	c.byeB()
	c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, "live-call journal unavailable: "+err.Error(),
		"internal error")
	return false
}

// notAcked ends a call whose 2xx to A was not acknowledged. early says
// sending ended within T1, before sipgo's first retransmission: a
// transport error then is the first send's, and the caller never got the
// 2xx (its retransmissions fail alike, after at least one went out).
func (c *Call) notAcked(err error, early bool) {
	switch {
	case early && errors.Is(err, sip.ErrTransactionTransport):
		c.mu.Lock()
		c.answered = time.Time{}
		c.mu.Unlock()
		c.setOutcome(compliance.DispositionFailed, 0, "the 200 could not be sent to the caller: "+sendError(err))
		c.teardownLegs(false)
		return
	case errors.Is(err, sip.ErrTransactionCanceled):
		// The caller's CANCEL reached its INVITE transaction just before
		// parapet's 2xx, which was not sent: A got 487 and has no dialog;
		// B, which answered, gets BYE.
		c.mu.Lock()
		c.answered = time.Time{}
		c.mu.Unlock()
		c.setOutcome(compliance.DispositionCancelled, 487, "cancelled by caller")
		c.teardownLegs(false)
		return
	case c.a.uas.LoadState() == sip.DialogStateEnded:
		// The caller's BYE was handled before its ACK: the call was
		// answered and is already over.
		c.setOutcome(compliance.DispositionAnswered, 200, "bye from a")
	default:
		c.log.Warn("a did not confirm the answer", "error", err)
		c.setOutcome(compliance.DispositionFailed, 200, "no ACK from caller: "+err.Error())
	}
	c.teardown()
}

// endedBeforeAck ends a call hung up before A's ACK: B gets its BYE at
// once. A's dialog is WriteResponse's until it returns, so that is waited
// for (bounded) before A's BYE; a late ACK is byeOnLateAck's.
func (c *Call) endedBeforeAck(acked <-chan error) {
	c.setOutcome(c.hangDisp, 200, c.hangReason+" (before the caller's ACK)")
	c.teardownLegs(false) // B at once: its call is over whatever A does
	select {
	case err := <-acked:
		if answered(err) {
			c.teardownLegs(true) // now A, whose dialog is settled
		}
	case <-time.After(teardownTimeout):
		c.lateAck = acked // the record need not wait for it
	}
}

// provisionalA relays a provisional response to A: reliably when A's
// INVITE required it (RFC 3262).
func (c *Call) provisionalA(res *sip.Response) error {
	if c.a.rel != nil {
		return c.sendReliable(res)
	}
	return c.a.uas.WriteResponse(res)
}

// respondEnded answers A when the call was hung up before B answered.
func (c *Call) respondEnded() {
	if c.hangDisp == compliance.DispositionShutdown {
		c.respondA(503, "Service Unavailable", compliance.DispositionShutdown, "parapet is shutting down", "parapet is shutting down")
		return
	}
	if c.hangStatus != 0 {
		c.respondA(c.hangStatus, reasonPhrase(c.hangStatus), c.hangDisp, c.hangReason, c.hangWarn)
		return
	}
	c.respondA(500, "Server Internal Error", c.hangDisp, c.hangReason, "call ended")
}

// answerFromB ACKs B's 2xx, judges its answer (the callee may not answer
// without SDP unless it sent early media), and answers A.
func (c *Call) answerFromB(uac *sipgo.DialogClientSession, early bool) bool {
	c.writeAck(uac, nil)
	// An early UPDATE exchange under way (onEarlyUpdate) ends first: one
	// offer/answer exchange at a time.
	c.reinvite.Lock()
	answer, ok := c.finalAnswer(uac.InviteResponse, early)
	c.reinvite.Unlock()
	if !ok {
		return false
	}
	if _, ok := c.answerA(answer); !ok {
		return false
	}
	c.log.Info("call answered")
	return true
}

// finalAnswer judges the SDP of B's 2xx, res, and builds parapet's answer
// to A from B's session. After a complete early offer/answer (B's answer
// PRACKed, perhaps changed by an early UPDATE since), an SDP with the o=
// version of B's latest or an older one is no new answer (RFC 3264
// section 8) and is not taken again. On failure A is answered and B gets
// BYE.
func (c *Call) finalAnswer(res *sip.Response, early bool) ([]byte, bool) {
	a, b := c.a, c.b
	switch {
	case len(res.Body()) > 0 && !c.repeatsEarly(b, res.Body()):
		d := c.takeAnswer(b, res.Body())
		if !d.Proceed() {
			c.byeB()
			c.respondA(d.Status, reasonPhrase(d.Status), compliance.DispositionRejected, d.Reason, d.Reason)
			return nil, false
		}
	case len(res.Body()) == 0 && !early:
		c.byeB()
		d := malformed(policy.StageAnswer, b.pol, 488, "callee answered without SDP")
		c.decide(d)
		c.respondA(488, reasonPhrase(488), compliance.DispositionFailed, d.Reason, d.Reason)
		return nil, false
	}
	c.mu.Lock()
	var answer []byte
	var err error
	if n := c.negLocked(a); a.early.done && n.RemoteIsAnswer() {
		// A's offer was answered in a reliable provisional response and
		// parapet's own early UPDATE (the callee's offer, bridged) was the
		// last exchange on A's leg: there is no offer left to answer, and
		// the 2xx repeats parapet's latest SDP to A, no new one.
		answer = n.Local()
	} else {
		answer, err = c.answerTo(a, c.negLocked(b).Remote())
	}
	c.mu.Unlock()
	if err != nil {
		c.byeB()
		c.respondA(500, reasonPhrase(500), compliance.DispositionFailed, "build answer: "+err.Error(), "internal error")
		return nil, false
	}
	return answer, true
}

// repeatsEarly reports whether body, B's SDP in its 2xx, repeats (or
// predates) the session of l's complete early offer/answer.
func (c *Call) repeatsEarly(l *leg, body []byte) bool {
	d, err := media.ParseSDP(body)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.negLocked(l).Remote()
	return l.early.done && prev != nil && d.OriginSession == prev.OriginSession && d.OriginVersion <= prev.OriginVersion
}
