package b2bua

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// takeOffer is a call's third phase: the caller's SDP offer (if any) is
// read and judged by policy against both zones (which also plans the
// onward leg), A's dialog is made, and the relay is set up with the
// offer's streams. It returns policy's offer decision, or false when the
// call ends here (415, 400, the decision's status, 500).
func (c *Call) takeOffer(req *sip.Request, tx sip.ServerTransaction) (policy.Decision, bool) {
	a := c.a
	offer, ok := c.readOffer(req, tx)
	if !ok {
		return policy.Decision{}, false
	}
	d := policy.Evaluate(policy.Input{Stage: policy.StageOffer, Zone: a.pol, Signaling: a.sig,
		Media: c.mediaFacts(offer, nil), Onward: c.b.pol, OnwardTransport: c.b.transport})
	c.decide(d)
	if !d.Proceed() {
		c.rejectDecision(tx, req, d)
		return d, false
	}
	uas, err := a.dua.ReadInvite(req, tx)
	if err != nil {
		c.reject(tx, req, 500, reasonPhrase(500), compliance.DispositionFailed, "dialog: "+err.Error())
		return d, false
	}
	a.uas = uas
	fromTag, _ := req.From().Params.Get("tag")
	a.setRemote(fromTag, &req.CSeq().SeqNo)
	tag, _ := uas.InviteRequest.To().Params.Get("tag")
	a.key = dialogKey{callID: string(*req.CallID()), tag: tag}
	c.env.reg.addLeg(a)

	c.relay = c.newRelay()
	c.meter.Store(c.relay)
	if offer != nil {
		if err := c.acceptOffer(a, offer, d); err != nil {
			c.mediaFailed(err)
			return d, false
		}
	}
	return d, true
}

// readOffer parses the INVITE's body, if any: it must be SDP (else 415)
// and parse (else 400). A nil offer means a delayed offer.
func (c *Call) readOffer(req *sip.Request, tx sip.ServerTransaction) (*media.Description, bool) {
	body := req.Body()
	if len(body) == 0 {
		return nil, true
	}
	if !isSDP(req.ContentType()) {
		d := malformed(policy.StageOffer, c.a.pol, 415, "body is not application/sdp")
		c.decide(d)
		c.setOutcome(compliance.DispositionRejected, 415, d.Reason)
		res := sip.NewResponseFromRequest(req, 415, reasonPhrase(415), nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		res.AppendHeader(sip.NewHeader("Warning", warningValue(d.Reason)))
		c.a.zone.commonHeaders(res)
		c.sent(415, c.a.zone.send(tx, res))
		return nil, false
	}
	offer, err := media.ParseSDP(body)
	if err != nil {
		d := malformed(policy.StageOffer, c.a.pol, 400, "malformed SDP: %v", err)
		c.decide(d)
		c.rejectDecision(tx, req, d)
		return nil, false
	}
	return offer, true
}

// newRelay is the call's media relay: it ends the call when media stops
// (the media timeout, or the hold timeout on hold) or a DTLS-SRTP
// handshake fails, and tells the journal when keys are agreed.
func (c *Call) newRelay() *media.Relay {
	s := c.env
	return media.NewRelay(s.pool, media.RelayConfig{Timeout: c.rules.mediaTimeout, HoldTimeout: c.rules.holdTimeout, Logger: c.log,
		OnIdle: func(limit time.Duration, onHold bool) {
			why := "no media for " + limit.String()
			if onHold {
				why += " (on hold)"
			}
			c.hangup(compliance.DispositionTimeout, why)
		},
		DTLS: s.dtls,
		OnKeyingFailed: func(side media.Side, err error) {
			c.hangupWith(compliance.DispositionFailed, fmt.Sprintf("DTLS-SRTP handshake with leg %s failed: %v", side, err),
				488, "DTLS-SRTP key agreement failed")
		},
		// The journal learns the suite once agreed (off the handshake's
		// goroutine, which the call's locks must never wait on).
		OnKeyed: func(media.Side) {
			if s.journal != nil {
				c.goSafe("journal update", c.journalUpdate)
			}
		}})
}
