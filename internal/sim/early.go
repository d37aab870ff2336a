package sim

// The early dialog (RFC 3262, RFC 3311): a callee's reliable 183 and the
// PRACK it waits for, and a caller's UPDATE with a new offer before the
// call is answered.

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// EarlyUpdate has a caller (CallOptions.EarlyUpdate) send, once it has
// PRACKed a reliable provisional response with SDP (its offer answered),
// an UPDATE with a new offer in the early dialog (RFC 3311 section 5.1):
// the same codecs with fresh SDES keys, or plain RTP/AVP when Plain. An
// accepted one's keys are those the call then runs with. A callee
// (Answer.EarlyUpdate) sends one too, once its reliable 183 is PRACKed
// (calleeUpdate).
type EarlyUpdate struct {
	Plain bool
	// Direction, when set, is the offer's a= direction (sendonly, say:
	// a change the other side must take), for this offer only.
	Direction string
	// After, when set, holds a callee's UPDATE (Answer.EarlyUpdate) until
	// it is closed: the caller's side of the early dialog is then ready.
	After <-chan struct{}
	// Keys, on a callee's UPDATE (Answer.EarlyUpdate), offers RTP/SAVP
	// with fresh SDES keys instead of its plain RTP.
	Keys bool
	// Done, when set, is told the UPDATE's final status (0 if it got none).
	Done func(status int)
}

// earlyUpdate sends the caller's early UPDATE after the reliable
// provisional response res, and returns the crypto lines the call now
// offers: the UPDATE's when it was accepted, else lines.
func (s *Session) earlyUpdate(ctx context.Context, uac *sipgo.DialogClientSession, res *sip.Response, lines []sdesLine,
	o *EarlyUpdate) ([]sdesLine, error) {
	var next []sdesLine
	if !o.Plain {
		for _, l := range lines {
			k, err := newKey(l.suite)
			if err != nil {
				return lines, err
			}
			next = append(next, sdesLine{tag: l.tag, suite: l.suite, key: k, params: l.params})
		}
	}
	target := uac.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	ures, version, err := s.earlyOffer(ctx, uac.Do, target, next, o)
	if err != nil {
		return lines, err
	}
	if !ures.IsSuccess() {
		s.offerVersion(lines, "", version) // the session stays as it was
		return lines, nil
	}
	return next, nil
}

// earlyOffer sends an UPDATE with a new offer (SDES with lines, else
// plain RTP/AVP; o.Direction for this offer only) to target in an early
// dialog through do, tells o.Done its final status, and returns its
// final response and the offer's o= version.
func (s *Session) earlyOffer(ctx context.Context, do func(context.Context, *sip.Request) (*sip.Response, error),
	target sip.Uri, lines []sdesLine, o *EarlyUpdate) (*sip.Response, int, error) {
	s.mu.Lock()
	s.version = max(s.version+1, 2)
	version, dir := s.version, s.direction
	s.direction = o.Direction
	s.mu.Unlock()
	req := sip.NewRequest(sip.UPDATE, *target.Clone())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(s.offerVersion(lines, "", version))
	s.mu.Lock()
	s.direction = dir
	s.mu.Unlock()
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ures, err := do(uctx, req)
	status := 0
	if err == nil {
		status = ures.StatusCode
	}
	if o.Done != nil {
		o.Done(status)
	}
	if err != nil {
		return nil, version, fmt.Errorf("sim: early UPDATE: %w", err)
	}
	return ures, version, nil
}

// calleeUpdate has the callee, its reliable 183 PRACKed, send its own
// early UPDATE (Answer.EarlyUpdate) to the caller's Contact: its session
// as it is with a new o= version (o.Direction, when set, for this offer
// only), or, with o.Keys, fresh SDES keys. An accepted offer's answer is
// taken; a refused one leaves the session as it was.
func (s *Session) calleeUpdate(uas *sipgo.DialogServerSession, o *EarlyUpdate) error {
	var lines []sdesLine
	if o.Keys {
		const suite = "AES_CM_128_HMAC_SHA1_80"
		k, err := newKey(suite)
		if err != nil {
			return err
		}
		lines = []sdesLine{{tag: 1, suite: suite, key: k}}
	}
	if o.After != nil {
		select {
		case <-o.After:
		case <-uas.Context().Done():
			return uas.Context().Err()
		case <-time.After(10 * time.Second):
			return fmt.Errorf("sim: the callee's early UPDATE was never let go")
		}
	}
	target := uas.InviteRequest.Recipient
	if ct := uas.InviteRequest.Contact(); ct != nil {
		target = ct.Address
	}
	ures, version, err := s.earlyOffer(uas.Context(), uas.Do, target, lines, o)
	if err != nil {
		return err
	}
	if !ures.IsSuccess() {
		s.offerVersion(nil, "", version) // the session stays as it was
		return nil
	}
	if err := s.takeRemote(ures.Body(), lines, false); err != nil {
		return fmt.Errorf("sim: answer to the callee's early UPDATE: %w", err)
	}
	return nil
}

// reliable183 sends the callee's 183 with its answer reliably (RFC 3262:
// Require: 100rel, an RSeq, Allow with UPDATE) and waits for the PRACK;
// then sends its early UPDATE when the peer has one (Answer.EarlyUpdate).
func (s *Session) reliable183(uas *sipgo.DialogServerSession, res *sip.Response) error {
	s.mu.Lock()
	s.prackWait = make(chan struct{})
	wait := s.prackWait
	s.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", "1"))
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, PRACK, UPDATE, INFO"))
	if err := uas.WriteResponse(res); err != nil {
		return err
	}
	select {
	case <-wait:
		if o := s.p.cfg.Answer.EarlyUpdate; o != nil {
			return s.calleeUpdate(uas, o)
		}
		return nil
	case <-uas.Context().Done():
		return uas.Context().Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("sim: no PRACK for the reliable 183")
	}
}

// onPrack acknowledges a callee's reliable 183.
func (p *Peer) onPrack(req *sip.Request, tx sip.ServerTransaction) {
	p.count(req)
	s := p.session(req)
	if s == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	s.mu.Lock()
	if s.prackWait != nil {
		close(s.prackWait)
		s.prackWait = nil
	}
	s.mu.Unlock()
	s.pracks.Add(1)
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// onUpdate answers an UPDATE: with SDP, a new offer taken as a
// re-INVITE's (the answer in the 200); without, a session refresh.
func (p *Peer) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	p.count(req)
	s := p.session(req)
	if s == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if len(req.Body()) == 0 {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	s.updates.Add(1)
	if err := s.takeRemote(req.Body(), nil, true); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", s.answerBody())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ct := p.contact()
	res.AppendHeader(&ct)
	tx.Respond(res)
}

// Updates is how many UPDATEs with an offer this session received.
func (s *Session) Updates() int64 { return s.updates.Load() }

// ack acknowledges the 2xx to uac's INVITE. sipgo v1.7.2 gives an ACK the
// CSeq of the dialog's last request (emiago/sipgo#355), a PRACK's or an
// early UPDATE's where RFC 3261 section 13.2.2.4 wants the INVITE's: the
// peer then writes the right ACK itself first, and sipgo's (which the
// other side absorbs) only to confirm the dialog on sipgo's side.
func (s *Session) ack(ctx context.Context, uac *sipgo.DialogClientSession) error {
	inv, res := uac.InviteRequest, uac.InviteResponse
	if uac.CSEQ() != inv.CSeq().SeqNo {
		target := inv.Recipient
		if ct := res.Contact(); ct != nil {
			target = ct.Address
		}
		ack := sip.NewRequest(sip.ACK, *target.Clone())
		ack.AppendHeader(sip.HeaderClone(inv.From()))
		ack.AppendHeader(sip.HeaderClone(res.To()))
		ack.AppendHeader(sip.HeaderClone(inv.CallID()))
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
		mf := sip.MaxForwardsHeader(70)
		ack.AppendHeader(&mf)
		ack.SetTransport(inv.Transport())
		ack.Laddr = inv.Laddr
		ack.SetBody(nil)
		if err := s.p.cli.WriteRequest(ack); err != nil {
			return fmt.Errorf("sim: ACK: %w", err)
		}
	}
	return uac.Ack(ctx)
}
