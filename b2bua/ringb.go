package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// ringB is a call's fourth phase: it originates leg B with the onward plan
// policy made, relays B's progress to A, and on B's 2xx answers A (through
// answerA). When the callee refuses the offer with 488 before any early
// media, it tries the zone's next key exchange (DTLS-SRTP then SDES, say):
// one attempt per plan, in a loop. plan is nil for a delayed offer (A's
// INVITE had no SDP): B is invited without one and its offer goes to A in
// the 2xx (answerDelayed). It returns true once A is answered; otherwise A
// got a final response and the outcome is set.
//
// A route with several targets tries them in order (targetOrder): when
// one fails so that the next may be tried (failOver), leg B starts again
// toward the next with the first plan.
func (c *Call) ringB(maxForwards int, plan *policy.OfferPlan, choices []policy.StreamChoice) bool {
	hops := c.hops()
	tried := false
	for i, h := range hops {
		last := i == len(hops)-1
		if h.err != nil {
			c.unresolved(h, last)
			continue
		}
		if tried {
			c.resetB()
		}
		tried = true
		c.setHop(h)
		ok, failed := c.ringTarget(maxForwards, plan, choices, last)
		if !failed {
			return ok
		}
	}
	return false // not reached: the last target's failure answers A
}

// ringTarget rings the current target, one INVITE per key exchange plan.
// failed says it failed so that the next target may be tried (never for
// the last, whose failure answers A).
func (c *Call) ringTarget(maxForwards int, plan *policy.OfferPlan, choices []policy.StreamChoice, last bool) (ok, failed bool) {
	for {
		res := c.attemptB(maxForwards, plan, choices, last)
		if res.next == nil {
			return res.ok, res.failover
		}
		c.decide(c.fallbackDecision(*plan, *res.next))
		c.resetB()
		plan = res.next
	}
}

// attemptB is one INVITE to B with one plan. It returns the plan to try
// next when the callee refused this one's offer and the zone has another.
func (c *Call) attemptB(maxForwards int, plan *policy.OfferPlan, choices []policy.StreamChoice, last bool) attempt {
	body, ok := c.offerBody(plan, choices)
	if !ok {
		return attempt{}
	}
	uac, err := c.dialB(c.inviteB(maxForwards, body))
	switch {
	case errors.Is(err, errSettled):
		return attempt{}
	case err != nil:
		return c.failB(err, false, last)
	}
	r := c.waitB(uac, plan)
	if why := r.givenUp(c); why != notGivenUp {
		return c.gaveUp(why, r, plan, last)
	}
	switch {
	case r.err == nil:
		c.endAttempt(compliance.AttemptAnswered, uac.InviteResponse.StatusCode)
	case plan != nil && statusOf(r.err) == 488 && !r.early:
		if next, ok := c.nextPlan(*plan); ok {
			c.endAttempt(compliance.AttemptRejected, 488)
			return attempt{next: &next}
		}
		return c.failB(r.err, r.early, last)
	case statusOf(r.err) == 422 && !r.early && c.raiseSE(r.err):
		// RFC 4028 section 7.4: the same call again, asking for the
		// callee's minimum.
		c.endAttempt(compliance.AttemptRejected, 422)
		c.resetB()
		return c.attemptB(maxForwards, plan, choices, last)
	default:
		return c.failB(r.err, r.early || r.lastCode != 0, last)
	}
	if plan == nil {
		return attempt{ok: c.answerDelayed()}
	}
	return attempt{ok: c.answerFromB(uac, r.early)}
}

// offerBody is parapet's SDP offer to B for plan (nil for a delayed offer:
// no body).
func (c *Call) offerBody(plan *policy.OfferPlan, choices []policy.StreamChoice) ([]byte, bool) {
	if plan == nil {
		return nil, true
	}
	c.mu.Lock()
	body, err := c.offerTo(c.b, c.negLocked(c.a).Remote(), *plan, choices)
	c.mu.Unlock()
	if err != nil {
		c.respondA(500, reasonPhrase(500), compliance.DispositionFailed, "build offer: "+err.Error(), "internal error")
		return nil, false
	}
	return body, true
}

// inviteB builds B's INVITE toward the route's target: parapet's own
// Call-ID and tags, the caller and callee as A gave them, the caller's
// display name, never A's other headers.
func (c *Call) inviteB(maxForwards int, body []byte) *sip.Request {
	t, b := c.target, c.b
	req, scheme := targetRequest(sip.INVITE, t, c.callee)
	from := sip.FromHeader{Address: sip.Uri{Scheme: scheme, User: c.caller, Host: b.zone.host(t.Transport)}, Params: sip.NewParams()}
	if f := c.a.uas.InviteRequest.From(); f != nil {
		from.DisplayName = f.DisplayName
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := sip.ToHeader{Address: sip.Uri{Scheme: scheme, User: c.callee, Host: uriHost(t.Host)}}
	callID := sip.CallIDHeader(newID() + "@parapet")
	mfh := sip.MaxForwardsHeader(maxForwards)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(&mfh)
	if ua := c.b.zone.userAgent; ua != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", ua))
	}
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	c.identity.writeIdentity(req, scheme, b.zone.host(t.Transport))
	req.AppendHeader(sip.NewHeader("Supported", c.supportedB()))
	c.timerRequest(b, req)
	passed := c.passCredentials(req)
	c.mu.Lock()
	b.callerCreds = passed
	c.mu.Unlock()
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	if ap, ok := b.zone.bound[policy.TransportUDP]; ok && t.Transport == policy.TransportUDP {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	setDestination(req, t, c.dest)
	b.aimAtFlow(req)
	return req
}

// prepareB readies B's INVITE, req, for sending and returns the transport
// it goes over: the target's or, toward a UDP target, TCP when the INVITE
// is large (inviteTransport). Leg B's dialog, its Contact (req's) and its
// client match.
func (c *Call) prepareB(req *sip.Request) policy.Transport {
	b, t := c.b, c.target
	b.dua = &sipgo.DialogUA{ContactHDR: b.zone.contact(t.Transport, t.Secure), RewriteContact: true}
	// As WriteInvite would, and counted in the INVITE's size: the dialog's
	// own header, which sipgo completes when the zone has no listener on
	// the transport (a Contact without a port).
	req.AppendHeader(&b.dua.ContactHDR)
	transport, tcpRefused := c.inviteTransport(req)
	if transport != t.Transport {
		b.dua.ContactHDR = b.zone.contact(transport, t.Secure)
	}
	b.dua.Client = c.clientB(transport, tcpRefused)
	return transport
}

// dialB sends B's INVITE, booking leg B under its dialog first. A failure
// to send is returned (failB settles it), unless the caller is gone or the
// call ended meanwhile, which is recorded (errSettled).
func (c *Call) dialB(req *sip.Request) (*sipgo.DialogClientSession, error) {
	a, b := c.a, c.b
	transport := c.prepareB(req)
	callID := string(*req.CallID())
	// Under c.mu: a journal snapshot reads them, and a DTLS-SRTP handshake
	// that completes meanwhile takes one from another goroutine (OnKeyed).
	c.mu.Lock()
	b.attempted = true
	b.callID = callID
	b.transport, b.sig.Transport = transport, transport
	c.mu.Unlock()
	b.key = dialogKey{callID: callID, tag: req.From().Params.GetOr("tag", "")}
	c.env.reg.addLeg(b)

	// sipgo's WriteInvite returns once the request is sent (or failed);
	// its context bounds the connection it may have to open.
	bctx, bcancel := context.WithTimeout(c.pinDestination(a.uas.Context()), ringTimeout())
	defer bcancel()
	go func() {
		select {
		case <-c.ended:
			bcancel()
		case <-bctx.Done():
		}
	}()
	uac, err := b.dua.WriteInvite(bctx, req)
	if err != nil {
		switch {
		case a.uas.Context().Err() != nil:
			c.endAttempt(compliance.AttemptAbandoned, 0)
			c.callerGone()
		case c.isEnded():
			c.endAttempt(compliance.AttemptAbandoned, 0)
			c.respondEnded()
		default:
			return nil, err
		}
		return nil, errSettled
	}
	b.uac = uac
	c.mu.Lock()
	c.noteConnLocked(c.b, strings.ToLower(transport.String()), uac.InviteRequest.Destination())
	c.mu.Unlock()
	// Routed and dialled: the call is live from here. Not waited for.
	_ = c.journal(false)
	return uac, nil
}

// errSettled: leg B's INVITE was not sent because the call is over (the
// caller gone, the call ended), and its outcome is recorded.
var errSettled = errors.New("the call ended before leg B's INVITE was sent")

// gaveUpOnB answers A for a call that ended while B rang.
func (c *Call) gaveUpOnB(why giveUp, r ringing) {
	switch why {
	case giveUpRefused:
		c.respondA(r.refused.Status, reasonPhrase(r.refused.Status), compliance.DispositionRejected, r.refused.Reason, r.refused.Reason)
	case giveUpCaller:
		c.callerGone()
	case giveUpEnded:
		c.respondEnded()
	case giveUpRingTimeout:
		why := fmt.Sprintf("callee side did not answer within %v", ringTimeout())
		c.respondA(408, reasonPhrase(408), compliance.DispositionFailed, why, "the callee side did not answer")
	case giveUpNoResponse:
		why := fmt.Sprintf("callee side sent no response within %v (attempt_timeout)", c.attemptTimeout())
		c.respondA(408, reasonPhrase(408), compliance.DispositionFailed, why, "the callee side did not answer")
	case giveUpConnLost:
		c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, errConnLost.Error(), errConnLost.Error())
	default:
		c.relayFailed(r.relayErr)
	}
}

// relayFailed answers A when relaying B's progress to it failed: a
// provisional response that could not be sent ended A's INVITE
// transaction (callerGone says so); anything else is parapet's own error.
func (c *Call) relayFailed(err error) {
	if errors.Is(err, sip.ErrTransactionTransport) {
		c.callerGone()
		return
	}
	if errors.Is(err, errNoPrack) {
		c.respondA(500, reasonPhrase(500), compliance.DispositionFailed, err.Error(), "no PRACK for a reliable provisional response")
		return
	}
	msg := recordText(err.Error(), c.rules.vocab, c.caller, c.callee)
	c.respondA(500, reasonPhrase(500), compliance.DispositionFailed,
		"relaying the callee side's progress to the caller failed: "+msg, "internal error")
}

// ringing is what waiting for B's final response found.
type ringing struct {
	out      *outgoing
	err      error            // WaitAnswer's: nil for a 2xx
	refused  *policy.Decision // policy refused B's early answer
	relayErr error            // relaying B's progress to A failed
	early    bool             // B's early answer was taken (183 with SDP)
	lastCode int              // of the last provisional without SDP relayed to A
	rseq     uint64           // RSeq of B's last reliable provisional response
	acked    bool             // the last provisional was reliable and B accepted parapet's PRACK
}

// givenUp says whether, and why, parapet gave up on B: whatever B answered,
// the caller may have cancelled (its INVITE got 487 from sipgo) or the
// call been hung up, perhaps as B answered.
func (r *ringing) givenUp(c *Call) giveUp {
	why := r.out.reason()
	if why == giveUpRefused {
		return why
	}
	switch {
	case c.a.uas.Context().Err() != nil:
		return giveUpCaller
	case c.isEnded():
		return giveUpEnded
	}
	return why
}

// waitB waits for B's final response to uac's INVITE, answering digest
// challenges with the route's credentials, relaying B's progress to A, and
// giving up on B (CANCEL) when the caller cancels, the call ends, B rings
// too long or its connection closes.
func (c *Call) waitB(uac *sipgo.DialogClientSession, plan *policy.OfferPlan) ringing {
	r := ringing{out: &outgoing{cli: c.b.zone.cli, done: make(chan struct{}), log: c.log}}
	wctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	r.out.stop = stop
	network, dest := strings.ToLower(c.b.transport.String()), uac.InviteRequest.Destination()
	// Leg A, read here: a transfer may replace it once the call is up,
	// while watchB is still on its way out.
	callerGone := c.a.uas.Context().Done()
	go func() {
		defer r.out.recoverPanic("watching leg B")
		c.watchB(r.out, callerGone, network, dest)
	}()
	r.err = waitAnswer(wctx, uac, sipgo.AnswerOptions{
		Username:   c.route.Username,
		Password:   c.route.Password,
		OnResponse: func(res *sip.Response) error { return c.onBResponse(&r, uac, plan, res) },
	})
	close(r.out.done)
	c.noteB(uac.InviteResponse)
	if r.err == nil {
		tag, _ := uac.InviteResponse.To().Params.Get("tag")
		c.b.setRemote(tag, nil)
		c.timerResponse(c.b, uac.InviteResponse)
	}
	return r
}

// watchB gives up on B when the caller cancels, the call ends, B rings for
// ringTimeout, or (TCP, TLS) B's connection closes: sipgo leaves an INVITE
// whose connection closed to its Timer B (32 s; see newZone), so parapet
// looks for the connection itself. network is leg B's transport as this
// attempt sends over it (the next attempt may choose another).
func (c *Call) watchB(out *outgoing, callerGone <-chan struct{}, network, dest string) {
	ring := time.NewTimer(ringTimeout())
	defer ring.Stop()
	var silence <-chan time.Time
	if d := c.attemptTimeout(); d > 0 {
		st := time.NewTimer(d)
		defer st.Stop()
		silence = st.C
	}
	var poll <-chan time.Time
	if network != "udp" {
		tk := time.NewTicker(connPoll)
		defer tk.Stop()
		poll = tk.C
	}
	for {
		select {
		case <-callerGone:
			out.giveUp(giveUpCaller)
		case <-c.ended:
			out.giveUp(giveUpEnded)
		case <-ring.C:
			out.giveUp(giveUpRingTimeout)
		case <-silence:
			if !out.silent() {
				silence = nil
				continue
			}
			// Nothing came back, not even 100 Trying: no CANCEL can be
			// sent (RFC 3261 section 9.1), and the next target waits.
			out.giveUp(giveUpNoResponse)
			out.stop(sipgo.WaitAnswerForceCancelErr)
		case <-poll:
			if !c.bConnLost(network, dest) {
				continue
			}
			out.giveUp(giveUpConnLost)
			out.stop(sipgo.WaitAnswerForceCancelErr) // no CANCEL: nothing could carry it
		case <-out.done:
		}
		return
	}
}

// onBResponse handles each response to B's INVITE as it comes: a final one
// ends the wait (no digest retry for a call given up); a provisional one is
// relayed to A: with SDP as 183 with parapet's answer to A (early media,
// judged like an answer), without as 180 or 183, once per change.
func (c *Call) onBResponse(r *ringing, uac *sipgo.DialogClientSession, plan *policy.OfferPlan, res *sip.Response) error {
	c.noteB(res)
	out := r.out
	out.heardFrom()
	if !res.IsProvisional() {
		out.final()
		if !res.IsSuccess() && out.reason() != notGivenUp {
			return errGaveUp
		}
		return nil
	}
	out.provisional(uac.InviteRequest)
	if out.reason() != notGivenUp || res.StatusCode == 100 || !c.prackB(r, uac, res) {
		return nil
	}
	var err error
	// With a delayed offer, SDP in an unreliable provisional is no offer
	// parapet can take (RFC 3261 section 13.2.1).
	if plan != nil && len(res.Body()) > 0 && isSDP(res.ContentType()) {
		err = c.earlyAnswer(r, res)
	} else {
		err = c.ringA(r, res)
	}
	if err != nil {
		r.relayErr = err
		out.giveUp(giveUpFailed)
	}
	return nil
}

// earlyAnswer takes B's answer in a provisional response and relays it to
// A in a 183 (early media).
func (c *Call) earlyAnswer(r *ringing, res *sip.Response) error {
	a, b := c.a, c.b
	d := c.takeAnswer(b, res.Body())
	if !d.Proceed() {
		r.refused = &d
		r.out.giveUp(giveUpRefused)
		return nil
	}
	r.early = true
	c.mu.Lock()
	if r.acked {
		// B's early offer/answer is complete (RFC 3311 section 5.1).
		b.early = earlyDialog{done: true, update: hasTag(res, "Allow", "UPDATE"), target: earlyTarget(res)}
	}
	answer, err := c.answerTo(a, c.negLocked(b).Remote())
	c.mu.Unlock()
	if err != nil {
		return err
	}
	res183 := sip.NewResponseFromRequest(a.uas.InviteRequest, 183, reasonPhrase(183), answer)
	res183.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.relayCalleeIdentity(res, res183)
	return c.provisionalA(res183)
}

// ringA relays B's progress without SDP, res, to A as 180 or 183: a
// callee re-sending its ringing tells the caller nothing new, so only
// when the status changes.
func (c *Call) ringA(r *ringing, res *sip.Response) error {
	code := res.StatusCode
	if code != 180 && code != 183 {
		code = 180
	}
	if code == r.lastCode {
		return nil
	}
	r.lastCode = code
	out := sip.NewResponseFromRequest(c.a.uas.InviteRequest, code, reasonPhrase(code), nil)
	c.relayCalleeIdentity(res, out)
	return c.provisionalA(out)
}
