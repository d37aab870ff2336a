package b2bua

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// transferLeg makes the leg that a transfer from leg x's peer places
// toward t: in x's zone, on x's side of the relay, its role x's with the
// transfer's number ("a2" for the first transfer of leg A).
func (c *Call) transferLeg(x *leg, t referral) *leg {
	nl := &leg{call: c, role: c.nextRole(x), side: x.side, zone: x.zone, pol: x.pol,
		transport: t.transport, secure: t.secure, attempted: true, admitted: true, timerKick: make(chan struct{}, 1),
		newPeer: true}
	nl.sig = policy.SignalingFacts{Transport: t.transport, Source: t.dest}
	nl.remote = t.dest.String()
	return nl
}

// nextRole is the role of the next leg put in x's place: x's role's
// letter with the number of legs that side has had ("a2" for the first
// that replaces leg A).
func (c *Call) nextRole(x *leg) compliance.Role {
	c.mu.Lock()
	n := 2
	for _, d := range c.departed {
		if d.side == x.side {
			n++
		}
	}
	c.mu.Unlock()
	base := strings.TrimRight(string(x.role), "0123456789")
	return compliance.Role(fmt.Sprintf("%s%d", base, n))
}

// dialTransfer invites the referral's target and, on its 2xx, ACKs it and
// takes its answer (which moves x's side of the relay to it). It returns
// the answered leg, or nil and the final status the referrer is told.
func (c *Call) dialTransfer(x *leg, t referral) (*leg, int) {
	nl := c.transferLeg(x, t)
	plan, ok := policy.Plan(x.pol, t.transport)
	if !ok {
		c.decide(policy.Decision{Stage: policy.StageTransfer, Zone: x.zone.name, Verdict: policy.VerdictRejected,
			Rule: policy.RuleTransfer, Status: 488,
			Reason: fmt.Sprintf("zone %q's media policy cannot be met over %s", x.zone.name, t.transport)})
		return nil, 488
	}
	body, err := c.transferOffer(x, nl, plan)
	if err != nil {
		c.log.Warn("transfer offer", "error", err)
		return nil, 500
	}
	req := c.transferInvite(x, nl, t, body)
	nl.dua = &sipgo.DialogUA{Client: x.zone.cli, ContactHDR: x.zone.contact(t.transport, t.secure), RewriteContact: true}
	c.mu.Lock()
	nl.callID = string(*req.CallID())
	c.mu.Unlock()
	nl.key = dialogKey{callID: nl.callID, tag: req.From().Params.GetOr("tag", "")}

	ctx, cancel := context.WithTimeout(context.Background(), ringTimeout())
	defer cancel()
	go func() {
		select {
		case <-c.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	uac, err := nl.dua.WriteInvite(ctx, req)
	if err != nil {
		c.log.Info("transfer invite not sent", "error", err)
		return nil, 503
	}
	nl.uac = uac
	if err := waitAnswer(ctx, uac, sipgo.AnswerOptions{}); err != nil {
		uac.Close()
		if s := statusOf(err); s != 0 {
			return nil, s
		}
		if c.isEnded() {
			return nil, 487 // cancelled: the call ended while the target rang
		}
		return nil, 408
	}
	// The target's answer hands x's side of the relay to nl: x's media
	// record stops here, unless the answer is refused.
	c.handOverMedia(x, nl)
	answered, status := c.answeredTransfer(nl, uac)
	if answered == nil {
		c.keepMedia(x)
	}
	return answered, status
}

// answeredTransfer notes what the new leg's 2xx came over, judges its
// answer and ACKs it: a refused answer ends the new leg (BYE) and leaves
// the call as it was.
func (c *Call) answeredTransfer(nl *leg, uac *sipgo.DialogClientSession) (*leg, int) {
	res := uac.InviteResponse
	tag, _ := res.To().Params.Get("tag")
	nl.setRemote(tag, nil)
	c.timerResponse(nl, res)
	c.mu.Lock()
	c.noteDeviceLocked(nl, res)
	c.notePeerLocked(nl, res)
	if a, ok := nl.zone.bound[nl.transport]; ok && nl.local == "" {
		nl.local = a.String()
	}
	c.mu.Unlock()
	// The answer is taken before the ACK: the target starts its media
	// once it has the ACK, and the relay side must run its keys by then,
	// not the replaced peer's (which its first packets would fail).
	status := c.takeTransferAnswer(nl, res)
	if err := uac.Ack(context.Background()); err != nil {
		c.log.Warn("ack to the transfer target failed", "error", err)
	}
	if status != 200 {
		c.byeTransfer(uac)
		return nil, status
	}
	return nl, 200
}

// takeTransferAnswer judges and applies the SDP answer in the target's
// 2xx: 200, or the status the referrer is told.
func (c *Call) takeTransferAnswer(nl *leg, res *sip.Response) int {
	if len(res.Body()) == 0 {
		c.decide(malformed(policy.StageAnswer, nl.pol, 488, "the transfer target answered without SDP"))
		return 488
	}
	if d := c.takeAnswer(nl, res.Body()); !d.Proceed() {
		return d.Status
	}
	return 200
}

func (c *Call) byeTransfer(uac *sipgo.DialogClientSession) {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if err := uac.Bye(ctx); err != nil {
		c.log.Debug("bye to the transfer target", "error", err)
	}
	uac.Close()
}

// transferOffer is parapet's offer on the new leg: the other leg's SDP,
// from x's side of the relay, with fresh keys under plan.
func (c *Call) transferOffer(x, nl *leg, plan policy.OfferPlan) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	other := c.other(x)
	on := c.negLocked(other)
	src := on.Remote()
	if src == nil {
		return nil, fmt.Errorf("the other leg has no SDP")
	}
	choices := make([]policy.StreamChoice, len(src.Streams))
	for i := range choices {
		choices[i].Active = on.Stream(i).Active
	}
	return c.offerTo(nl, src, plan, choices)
}

// transferInvite is the new leg's INVITE: parapet's own Call-ID and tags,
// From the party on the other leg (the one the target will talk to), To
// the Refer-To URI, the referral's Referred-By, the caller's identity
// headers when it takes leg B's place and, for an attended transfer, its
// Replaces (Require: replaces).
func (c *Call) transferInvite(x, nl *leg, t referral, body []byte) *sip.Request {
	ruri := *t.uri.Clone()
	req := sip.NewRequest(sip.INVITE, ruri)
	req.SetTransport(strings.ToUpper(t.transport.String()))
	scheme := "sip"
	if t.secure {
		scheme = "sips"
	}
	party := c.caller
	if x.side == media.SideA {
		party = c.callee
	}
	from := sip.FromHeader{Address: sip.Uri{Scheme: scheme, User: party, Host: nl.zone.host(t.transport)}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := sip.ToHeader{Address: *t.uri.Clone()}
	callID := sip.CallIDHeader(newID() + "@parapet")
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(&mf)
	if ua := nl.zone.userAgent; ua != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", ua))
	}
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	if t.replaces != nil {
		req.AppendHeader(sip.NewHeader("Replaces", t.replaces.String()))
		req.AppendHeader(sip.NewHeader("Require", "replaces"))
	}
	if t.referredBy != "" {
		req.AppendHeader(sip.NewHeader("Referred-By", t.referredBy))
	}
	if x.side == media.SideB {
		// The new leg takes leg B's place in leg B's zone, with the
		// caller's number in From: the caller's identity goes as it went
		// to leg B, its Privacy above all (the zone withholds the number
		// at its own edge).
		c.identity.writeIdentity(req, scheme, nl.zone.host(t.transport))
	}
	c.timerRequest(nl, req)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	if ap, ok := nl.zone.bound[policy.TransportUDP]; ok && t.transport == policy.TransportUDP {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	req.SetDestination(t.dest.String())
	return req
}
