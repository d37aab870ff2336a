package b2bua

import (
	"fmt"
	"slices"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// An INVITE with Replaces naming a leg of a call through parapet (RFC 3891
// section 3): a transferor inside a zone sent its REFER to the transfer
// target rather than to parapet, naming its own dialog with parapet, and
// the target now asks to take that dialog's place. parapet lets it when
// the leg is one parapet answered or a transfer placed on the call's A
// side, in the same zone as the INVITE, whose transfer setting allows it,
// and the call is answered: the INVITE becomes the call's new leg on that
// side (answered from that side of the relay with fresh keys, judged by
// the zone's media policy like a first offer), and the replaced leg gets
// BYE. The call's record lists it as a transfer of kind replaced.
//
// A leg on the B side (one parapet dialled, toward the callee) is not
// replaced: 501. Such a leg is parapet's client dialog on the call's
// route, and the call's end treats it so: teardown BYEs B only through
// its client dialog (byeBOnce, which answers the route's digest challenge
// with the route's credentials), the record closes B's client dialog, and
// the callee's identity and delayed offer are read from B's 2xx. A server
// dialog in B's place would need each of those to learn a second kind of
// B leg, or a peer left with a call parapet never ends; and the route's
// trunk, credentials and limits were chosen for the party parapet dialled,
// not for whoever asks to take its place.

// replaceByInvite lets req, the INVITE of call n (admitted from a peer of
// its zone), replace leg held of call y. It returns the status and reason
// of a refusal, recorded on n, or 0 once the INVITE is y's: answered, or
// failed past its dialog (500), which ends y with the failure recorded.
func (y *Call) replaceByInvite(held *leg, n *Call, id replacesID, req *sip.Request, tx sip.ServerTransaction) (int, string) {
	zr := y.rules.zones[held.zone.name]
	switch {
	case held.zone.name != n.a.zone.name:
		return 403, "Replaces names a leg of a call in another zone"
	case zr == nil || !zr.transfer:
		return 403, fmt.Sprintf("Replaces names a leg of a call in zone %q, which does not allow transfer", held.zone.name)
	case held.side != media.SideA:
		return 501, "Replaces names a leg parapet originated toward the callee: replacing it from outside is not supported"
	case !y.established.Load() || y.isEnded() || y.departedLeg(held):
		return 481, "Replaces names a leg of a call that is not answered or has ended"
	case id.earlyOnly:
		return 486, "Replaces is early-only and names an answered call (RFC 3891 section 3)"
	case len(req.Body()) == 0 || !isSDP(req.ContentType()):
		return 488, "an INVITE with Replaces must carry an SDP offer"
	}
	offer, err := media.ParseSDP(req.Body())
	if err != nil {
		return 400, "malformed SDP: " + err.Error()
	}
	if !y.reinvite.TryLock() {
		return 491, "an offer/answer is under way on the call"
	}
	defer y.reinvite.Unlock()
	nl := y.replacingLeg(held, n.a)
	d, status, why := y.judgeReplacing(nl, offer)
	if status != 0 {
		if d.Rule != "" {
			n.decide(d) // the refusal's own rule, in the INVITE's record
		}
		return status, why
	}
	return y.answerReplacing(held, nl, req, tx, offer, d)
}

// replacingLeg is the leg an INVITE with Replaces brings into held's
// place: on held's side, in its zone, with what n's leg A learnt of the
// INVITE (its transport, addresses, TLS, User-Agent).
func (y *Call) replacingLeg(held, na *leg) *leg {
	return &leg{call: y, role: y.nextRole(held), side: held.side, zone: held.zone, pol: held.pol,
		transport: na.transport, secure: na.secure, sig: na.sig, admitted: na.admitted, attempted: true,
		local: na.local, remote: na.remote, callID: na.callID, userAgent: na.userAgent, dua: na.dua,
		firstAck: make(chan *sip.Request, 1), settled: make(chan struct{}), timerKick: make(chan struct{}, 1),
		newPeer: true}
}

// judgeReplacing judges the replacing INVITE's offer as a first offer on
// leg nl: by the zone's media policy, and against the call's media (the
// same streams, each with the formats the other leg runs, which the relay
// passes as they are). It returns policy's decision and, when the offer
// is refused, the refusal's status and reason.
func (y *Call) judgeReplacing(nl *leg, offer *media.Description) (policy.Decision, int, string) {
	y.mu.Lock()
	other := y.b // nl replaces a leg on side A
	src := y.negLocked(other).Remote()
	facts := y.mediaFacts(offer, nil)
	y.mu.Unlock()
	if src == nil || len(src.Streams) != len(offer.Streams) {
		return policy.Decision{}, 488, "the offer's streams are not the call's"
	}
	for i, st := range src.Streams {
		for _, f := range st.Formats {
			if !slices.Contains(offer.Streams[i].Formats, f) {
				return policy.Decision{}, 488, fmt.Sprintf("the offer lacks format %s that the call runs on stream %d", f, i)
			}
		}
	}
	d := policy.Evaluate(policy.Input{Stage: policy.StageOffer, Zone: nl.pol, Signaling: nl.sig, Media: facts,
		Onward: other.pol, OnwardTransport: other.transport})
	if !d.Proceed() {
		return d, d.Status, "the offer is refused: " + d.Reason
	}
	return d, 0, ""
}

// answerReplacing makes the replacing INVITE's dialog, takes its offer
// (the relay's side moves to its peer), puts nl in held's place, answers
// with that side of the relay and fresh keys, and ends held (BYE). It
// returns the status and reason of a failure to make the dialog or of a
// call that ended meanwhile, or 0: a failure past it ends the call (its
// side of the relay has moved).
func (y *Call) answerReplacing(held, nl *leg, req *sip.Request, tx sip.ServerTransaction, offer *media.Description,
	d policy.Decision) (int, string) {
	fail := func(why string) {
		nl.zone.respond(tx, req, 500, reasonPhrase(500), "")
		y.hangup(compliance.DispositionFailed, "replacing leg "+string(held.role)+": "+why)
	}
	uas, err := nl.dua.ReadInvite(req, tx)
	if err != nil {
		return 500, "dialog: " + err.Error()
	}
	y.decide(d)
	nl.uas = uas
	nl.setRemote(req.From().Params.GetOr("tag", ""), &req.CSeq().SeqNo)
	nl.key = dialogKey{callID: nl.callID, tag: uas.InviteRequest.To().Params.GetOr("tag", "")}
	// The offer hands held's side of the relay to nl: held's media record
	// stops here, and the side's packets from held's peer are no longer
	// its (newPeer).
	y.handOverMedia(held, nl)
	if err := y.acceptOffer(nl, offer, d); err != nil {
		y.keepMedia(held) // the offer was not taken: held keeps its side
		fail("media: " + err.Error())
		return 0, ""
	}
	y.mu.Lock()
	answer, err := y.answerTo(nl, y.negLocked(y.b).Remote())
	y.mu.Unlock()
	if err != nil {
		fail("build answer: " + err.Error())
		return 0, ""
	}
	if !y.swapLeg(held, nl, compliance.Transfer{Kind: compliance.TransferReplaced, Outcome: compliance.TransferDone, Status: 200,
		Leg: string(nl.role), Target: req.From().Address.User, ReferredBy: referredUser(req)}) {
		// The call ended meanwhile: there is no dialog left to replace.
		// held's media record stays as it stood when its side moved.
		return 481, "Replaces names a leg of a call that has ended"
	}
	res := sip.NewSDPResponseFromRequest(uas.InviteRequest, answer)
	nl.zone.commonHeaders(res)
	y.grantTimer(nl, req, res)
	err = uas.WriteResponse(res) // until the ACK (onAck), or 64*T1
	close(nl.settled)
	if err != nil {
		y.hangup(compliance.DispositionFailed, "the 2xx to a replacing INVITE could not be sent: "+err.Error())
		return 0, ""
	}
	y.journalUpdate()
	y.byeDeparted(held)
	return 0, ""
}
