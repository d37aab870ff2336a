package b2bua

import (
	"context"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// dialog returns the sipgo dialog state shared by both session kinds.
func (l *leg) dialog() *sipgo.Dialog {
	if l.uas != nil {
		return &l.uas.Dialog
	}
	if l.uac != nil {
		return &l.uac.Dialog
	}
	return nil
}

// target is the peer's remote target (its Contact) for requests parapet
// sends in the dialog.
func (l *leg) target() sip.Uri {
	if l.uas != nil {
		if ct := l.uas.InviteRequest.Contact(); ct != nil {
			return *ct.Address.Clone()
		}
		return l.uas.InviteRequest.Recipient
	}
	if res := l.uac.InviteResponse; res != nil {
		if ct := res.Contact(); ct != nil {
			return *ct.Address.Clone()
		}
	}
	return l.uac.InviteRequest.Recipient
}

// do sends a request inside the leg's dialog and waits for the final response.
func (l *leg) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if l.uas != nil {
		return l.uas.Do(ctx, req)
	}
	return l.uac.Do(ctx, req)
}

func (l *leg) write(req *sip.Request) error {
	if l.uas != nil {
		return l.uas.WriteRequest(req)
	}
	return l.uac.WriteRequest(req)
}

// inDialog handles a request that belongs to leg l.
func (c *Call) inDialog(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	// The To tag and Call-ID found the leg; the From tag must be the peer's
	// own (the remote tag of the dialog ID, RFC 3261 section 12.2.2).
	if !l.fromPeer(req) {
		if !req.IsAck() {
			l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "From tag does not match the dialog")
		}
		return
	}
	if c.departedLeg(l) {
		c.onDeparted(l, req, tx)
		return
	}
	switch req.Method {
	case sip.REFER:
		c.onRefer(l, req, tx)
	case sip.ACK:
		c.onAck(l, req, tx)
	case sip.BYE:
		c.onBye(l, req, tx)
	case sip.INVITE:
		c.onReinvite(l, req, tx)
	case sip.INFO:
		c.relayRequest(l, req, tx)
	case sip.PRACK:
		c.onPrack(l, req, tx)
	case sip.UPDATE:
		c.onUpdate(l, req, tx)
	case sip.OPTIONS:
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		l.zone.commonHeaders(res)
		l.zone.send(tx, res)
	default:
		l.zone.respond(tx, req, 501, "Not Implemented", "")
	}
}

func (c *Call) onAck(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	cs := req.CSeq()
	if cs == nil {
		return
	}
	if l.uas != nil && cs.SeqNo == l.uas.InviteRequest.CSeq().SeqNo {
		// A's ACK to parapet's 2xx for its INVITE. It may come after a
		// later request of A's (a re-INVITE sent right behind it, each
		// handled on its own goroutine): sipgo's ReadAck compares it with
		// the dialog's remote CSeq, which checkCSeq therefore leaves at the
		// INVITE's.
		select {
		case l.firstAck <- req: // the first copy; retransmissions are dropped
		default:
		}
		if l.uas.LoadState() != sip.DialogStateEnded {
			if err := l.uas.ReadAck(req, tx); err != nil {
				c.log.Debug("ack from a", "error", err)
			}
		}
		return
	}
	// An ACK to parapet's 2xx for a re-INVITE.
	l.mu.Lock()
	ch := l.ackWait[cs.SeqNo]
	l.mu.Unlock()
	if ch != nil {
		select {
		case ch <- req:
		default:
		}
	}
}

func (c *Call) onBye(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	if !c.checkCSeq(l, req, tx) {
		return
	}
	if l == c.a && !c.established.Load() {
		// The caller ends its early dialog (RFC 3261 section 15): its BYE
		// gets 200 and its INVITE, still pending, 487; the callee is
		// cancelled. (sipgo's ReadBye would end the INVITE transaction
		// without a final response.)
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		l.zone.commonHeaders(res)
		l.zone.send(tx, res)
		c.respondA(487, "Request Terminated", compliance.DispositionCancelled, "bye from a before answer", "")
		c.hangupWith(compliance.DispositionCancelled, "bye from a before answer", 487, "")
		return
	}
	if !c.established.Load() {
		// A BYE on an early dialog ends the call as well.
		c.hangup(compliance.DispositionFailed, "bye from "+string(l.role)+" before answer")
	}
	var err error
	switch {
	case l.uas != nil:
		err = l.uas.ReadBye(req, tx)
	case l.uac != nil:
		err = l.uac.ReadBye(req, tx)
	default:
		l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	if err != nil {
		c.log.Debug("bye", "leg", l.role, "error", err)
		l.zone.respond(tx, req, 500, "Server Internal Error", err.Error())
		return
	}
	if l == c.b && c.established.Load() {
		// The callee hung up. The caller may not have acknowledged
		// parapet's 2xx yet: answerA, still waiting for that ACK, must
		// hear of it too.
		c.setOutcome(compliance.DispositionAnswered, 200, "bye from b")
		c.hangup(compliance.DispositionAnswered, "bye from b")
	}
}

// checkCSeq applies the dialog's CSeq rules (RFC 3261 section 12.2.2): a
// request from l's peer must have a higher CSeq than the last one it sent
// (than its INVITE's, on leg A); else it is answered 500. parapet keeps
// this number itself rather than in sipgo's dialog, whose ReadAck
// compares the caller's first ACK with it.
func (c *Call) checkCSeq(l *leg, req *sip.Request, tx sip.ServerTransaction) bool {
	if l.dialog() == nil {
		l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return false
	}
	seq := req.CSeq().SeqNo
	l.mu.Lock()
	ok := !l.seqKnown || seq > l.remoteSeq
	if ok {
		l.remoteSeq, l.seqKnown = seq, true
	}
	l.mu.Unlock()
	if !ok {
		l.zone.respond(tx, req, 500, "Server Internal Error", "CSeq out of order")
		return false
	}
	return true
}

// ready waits until parapet may send a request in leg l's dialog: on leg
// A, until sipgo is done with parapet's 2xx (see leg.settled). It reports
// false if the call ended first.
func (c *Call) ready(l *leg) bool {
	if l.settled == nil {
		return true
	}
	select {
	case <-l.settled:
		return true
	case <-c.ended:
		return false
	case <-time.After(64 * sip.T1):
		return false
	}
}

// fromPeer reports whether req's From tag is the tag of l's peer, when
// parapet knows it.
func (l *leg) fromPeer(req *sip.Request) bool {
	l.mu.Lock()
	tag := l.remoteTag
	l.mu.Unlock()
	if tag == "" {
		return true
	}
	got := ""
	if f := req.From(); f != nil {
		got, _ = f.Params.Get("tag")
	}
	return got == tag
}

// setRemote notes the peer's tag and, when seq is set, the CSeq of its
// last request.
func (l *leg) setRemote(tag string, seq *uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remoteTag = tag
	if seq != nil {
		l.remoteSeq, l.seqKnown = *seq, true
	}
}

// relayRequest bridges an in-dialog request (INFO) to the other leg and its
// final response back. Headers other than the body's are not copied: each
// leg keeps its own topology.
func (c *Call) relayRequest(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	// A transfer may swap a leg meanwhile (swapLeg, under c.mu; this runs
	// outside the call's offer/answer lock): l replaced since inDialog
	// looked has no other leg.
	c.mu.Lock()
	other := c.other(l)
	if l != c.a && l != c.b {
		other = nil
	}
	c.mu.Unlock()
	if !c.established.Load() || other == nil || other.dialog() == nil {
		l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	if !c.checkCSeq(l, req, tx) {
		return
	}
	if !c.ready(other) {
		l.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	out := sip.NewRequest(req.Method, other.target())
	if ct := req.ContentType(); ct != nil {
		out.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	if h := req.GetHeader("Info-Package"); h != nil {
		out.AppendHeader(sip.NewHeader("Info-Package", h.Value()))
	}
	out.SetBody(req.Body())
	ctx, cancel := context.WithTimeout(context.Background(), inDialogTimeout)
	defer cancel()
	res, err := c.doIn(ctx, other, out)
	if err != nil {
		l.zone.respond(tx, req, 408, "Request Timeout", "no response from the other leg")
		return
	}
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	l.zone.commonHeaders(back)
	l.zone.send(tx, back)
}

// onReinvite handles an INVITE inside a dialog: a new offer from l's peer.
// It is judged by policy like a first offer; a refused re-offer gets 488
// and the call keeps its media. An accepted one is bridged to the other
// leg as a re-INVITE, and the other leg's answer is judged too.
func (c *Call) onReinvite(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	if !c.established.Load() || !c.reinvite.TryLock() {
		l.zone.respond(tx, req, 491, reasonPhrase(491), "")
		return
	}
	// Given back before a refusal is sent, so that a peer's next offer,
	// sent as soon as it has the refusal, does not meet a 491.
	unlock := sync.OnceFunc(c.reinvite.Unlock)
	defer unlock()
	if !c.checkCSeq(l, req, tx) || c.refuseShortInterval(l, req, tx) {
		return
	}
	other := c.other(l)
	if !c.ready(other) {
		l.zone.respond(tx, req, 481, reasonPhrase(481), "")
		return
	}
	offer, d, currentSRTP, ok := c.judgeReoffer(l, req, tx)
	if !ok {
		return
	}
	c.decide(d)
	if !d.Proceed() {
		unlock()
		l.zone.respond(tx, req, d.Status, reasonPhrase(d.Status), d.Reason)
		return
	}
	if d.Verdict == policy.VerdictWouldReject || !d.SRTP() && currentSRTP {
		c.log.Warn("re-offer changes media protection", "leg", l.role, "verdict", string(d.Verdict), "rule", d.Rule)
	}
	c.bridgeReoffer(l, other, offer, d, req, tx, c.sendReinvite)
}

// judgeReoffer reads the re-offer on leg l (readReoffer) and evaluates it
// against l's zone policy: the offer, the decision, whether the leg runs
// SRTP now, and ok false if it was answered already.
func (c *Call) judgeReoffer(l *leg, req *sip.Request, tx sip.ServerTransaction) (offer *media.Description, d policy.Decision, currentSRTP, ok bool) {
	offer, currentSRTP, ok = c.readReoffer(l, req, tx)
	if !ok {
		return nil, d, false, false
	}
	d = policy.Evaluate(policy.Input{Stage: policy.StageReoffer, Zone: l.pol, Signaling: l.sig,
		Media: c.mediaFacts(offer, nil), CurrentSRTP: currentSRTP})
	return offer, d, currentSRTP, true
}

// readReoffer reads the offer of a re-INVITE on leg l and whether the leg
// runs SRTP now. An offerless re-INVITE (a session refresh) and a re-offer
// with the o= version of the last one (nothing changed, RFC 3264 section
// 8) are answered here with parapet's current SDP; a body that is not SDP
// or does not parse gets 415 or 400, and an offer that drops m= lines 488
// (section 8): ok is then false.
func (c *Call) readReoffer(l *leg, req *sip.Request, tx sip.ServerTransaction) (offer *media.Description, currentSRTP, ok bool) {
	c.mu.Lock()
	n := c.negLocked(l)
	sdp := n.Local()
	currentSRTP = n.SRTP()
	c.mu.Unlock()
	body := req.Body()
	if len(body) == 0 {
		// The answer comes in the ACK; our media does not change.
		c.answerReinvite(l, req, tx, sdp)
		return nil, false, false
	}
	if !isSDP(req.ContentType()) {
		l.zone.respond(tx, req, 415, reasonPhrase(415), "body is not application/sdp")
		return nil, false, false
	}
	offer, err := media.ParseSDP(body)
	if err != nil {
		d := malformed(policy.StageReoffer, l.pol, 400, "malformed SDP in re-offer: %v", err)
		c.decide(d)
		l.zone.respond(tx, req, 400, reasonPhrase(400), d.Reason)
		return nil, false, false
	}
	c.mu.Lock()
	same, cerr := n.SameOffer(offer), n.CheckOffer(offer)
	c.mu.Unlock()
	switch {
	case same:
		c.answerReinvite(l, req, tx, sdp)
		return nil, false, false
	case cerr != nil:
		// RFC 3264 section 8: m= lines are never removed.
		d := malformed(policy.StageReoffer, l.pol, 488, "re-offer: %v", cerr)
		c.decide(d)
		l.zone.respond(tx, req, 488, reasonPhrase(488), d.Reason)
		return nil, false, false
	}
	return offer, currentSRTP, true
}

// bridgeReoffer carries a re-offer policy allowed from leg l to the other
// leg: offered there first (with that leg's current keys) by send (a
// re-INVITE, or an UPDATE in an early dialog), and taken on l only once
// the other leg accepted it. An answer policy refuses ends the call (the
// other leg now runs media policy does not allow).
func (c *Call) bridgeReoffer(l, other *leg, offer *media.Description, d policy.Decision, req *sip.Request, tx sip.ServerTransaction,
	send func(*leg, []byte) (*sip.Response, error)) {
	plan, _ := policy.Plan(other.pol, other.transport)
	if err := c.ensureStreams(d.Streams); err != nil {
		l.zone.respond(tx, req, 500, reasonPhrase(500), "media: "+err.Error())
		return
	}
	c.mu.Lock()
	out, err := c.offerTo(other, offer, plan, d.Streams)
	c.mu.Unlock()
	if err != nil {
		l.zone.respond(tx, req, 500, reasonPhrase(500), "build offer: "+err.Error())
		return
	}
	res, err := send(other, out)
	if err != nil || !res.IsSuccess() {
		c.abandonOffer(other) // the other leg keeps its media (RFC 3264 section 8)
	}
	if err != nil {
		l.zone.respond(tx, req, 408, reasonPhrase(408), "the other leg did not answer the re-offer")
		return
	}
	if !res.IsSuccess() {
		// parapet's phrase, not the other side's (statusText).
		l.zone.respond(tx, req, res.StatusCode, reasonPhrase(res.StatusCode), "the other leg refused the re-offer")
		return
	}
	ad := c.takeAnswer(other, res.Body())
	if ad.Proceed() {
		if err := c.acceptOffer(l, offer, d); err != nil {
			ad = malformed(policy.StageReoffer, l.pol, 500, "media: %v", err)
		}
	}
	if !ad.Proceed() {
		l.zone.respond(tx, req, ad.Status, reasonPhrase(ad.Status), ad.Reason)
		c.hangup(compliance.DispositionRejected, "re-offer answer refused: "+ad.Reason)
		return
	}
	c.mu.Lock()
	answer, err := c.answerTo(l, c.negLocked(other).Remote())
	c.mu.Unlock()
	if err != nil {
		l.zone.respond(tx, req, 500, reasonPhrase(500), "build answer: "+err.Error())
		return
	}
	c.journalUpdate() // the media changed; not waited for
	c.answerReinvite(l, req, tx, answer)
}

// answerReinvite sends a 2xx with SDP to a re-INVITE and retransmits it
// until the ACK arrives (RFC 3261 section 13.3.1.4; the TU's job); an
// UPDATE's 2xx is answered once (a non-INVITE transaction). Either renews
// the leg's session timer once the call is answered.
func (c *Call) answerReinvite(l *leg, req *sip.Request, tx sip.ServerTransaction, sdp []byte) {
	res := sip.NewSDPResponseFromRequest(req, sdp)
	l.zone.commonHeaders(res)
	ct := l.dua.ContactHDR
	res.AppendHeader(&ct)
	if c.established.Load() {
		c.grantTimer(l, req, res)
	}
	if req.Method == sip.UPDATE {
		l.zone.send(tx, res)
		return
	}
	seq := req.CSeq().SeqNo
	ack := make(chan *sip.Request, 1)
	l.mu.Lock()
	if l.ackWait == nil {
		l.ackWait = map[uint32]chan *sip.Request{}
	}
	l.ackWait[seq] = ack
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.ackWait, seq)
		l.mu.Unlock()
	}()
	if err := tx.Respond(res); err != nil {
		return
	}
	if l.transport != policy.TransportUDP {
		// Reliable transports do not retransmit; still wait for the ACK.
		select {
		case <-ack:
		case <-time.After(64 * sip.T1):
		}
		return
	}
	wait := sip.T1
	deadline := time.After(64 * sip.T1)
	for {
		select {
		case <-ack:
			return
		case <-deadline:
			c.log.Warn("no ACK for re-INVITE answer", "leg", l.role)
			return
		case <-time.After(wait):
			// The INVITE server transaction ends with its 2xx (RFC 3261
			// section 17.2.1); retransmissions go straight to the transport.
			if err := l.zone.srv.WriteResponse(res); err != nil {
				c.log.Debug("2xx retransmission", "error", err)
			}
			wait = min(2*wait, sip.T2)
		}
	}
}
