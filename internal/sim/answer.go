package sim

// The calls a peer answers (UAS): re-INVITEs, digest challenges, rejection,
// early media, ringing and the 2xx with its answer or delayed offer.

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func (p *Peer) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// re-INVITE: answer with the current SDP, new version.
		s := p.session(req)
		if s == nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		if !p.authorizedInDialog(req, tx) {
			return
		}
		s.reinvites.Add(1)
		if len(req.Body()) > 0 {
			if err := s.takeRemote(req.Body(), nil, true); err != nil {
				tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
				return
			}
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", s.answerBody())
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ct := p.contact()
		res.AppendHeader(&ct)
		tx.Respond(res)
		return
	}
	ans := p.cfg.Answer
	if ans.Digest != nil && !p.authorized(req, tx, ans.Digest) {
		return
	}
	p.invites.Add(1)
	if ans.Status != 0 && ans.Status != 200 {
		tx.Respond(sip.NewResponseFromRequest(req, ans.Status, "Rejected by sim", nil))
		return
	}
	if ans.RejectDTLS && strings.Contains(string(req.Body()), "UDP/TLS/RTP/SAVP") ||
		ans.RejectSRTP && strings.Contains(string(req.Body()), "RTP/SAVP") {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	s, err := p.newSession(false)
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	s.callID = string(*req.CallID())
	delayed := len(req.Body()) == 0
	var body []byte
	if delayed {
		// Offer in the 2xx; the answer comes in the ACK (takeAckAnswer).
		lines, offer, err := s.makeOffer(ans.Offer)
		if err != nil {
			s.closeMedia()
			tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			return
		}
		body = offer
		s.mu.Lock()
		s.awaitAnswer, s.delayed = lines, true
		s.mu.Unlock()
	} else if err := s.takeRemote(req.Body(), nil, true); err != nil {
		s.closeMedia()
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	dua := &sipgo.DialogUA{Client: p.cli, ContactHDR: p.contact()}
	uas, err := dua.ReadInvite(req, tx)
	if err != nil {
		s.closeMedia()
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	s.uas = uas
	p.track(s)
	if ans.Early && !delayed {
		res := sip.NewResponseFromRequest(uas.InviteRequest, 183, "Session Progress", s.answerBody())
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(sip.NewHeader("Server", p.Product()))
		appendHeaders(res, ans.Headers)
		if ans.Rel100 && strings.Contains(headerValue(req, "Supported"), "100rel") {
			if err := s.reliable183(uas, res); err != nil {
				p.log.Debug("reliable 183", "error", err)
			}
		} else {
			uas.WriteResponse(res)
		}
		s.start() // early media: the media (and a DTLS-SRTP handshake) starts now
	}
	if ans.Hold != nil {
		select {
		case <-ans.Hold:
		case <-uas.Context().Done():
			p.cancelled.Add(1)
			p.untrack(s)
			s.closeMedia()
			return
		}
	}
	if ans.Ring > 0 {
		uas.Respond(180, "Ringing", nil, cloneHeaders(ans.Headers)...)
		for range ans.MoreRinging {
			time.Sleep(5 * time.Millisecond)
			uas.Respond(180, "Ringing", nil, cloneHeaders(ans.Headers)...)
		}
		select {
		case <-time.After(ans.Ring):
		case <-uas.Context().Done():
			p.cancelled.Add(1)
			p.untrack(s)
			s.closeMedia()
			return
		}
	}
	if !delayed {
		body = s.answerBody()
	}
	res := sip.NewSDPResponseFromRequest(uas.InviteRequest, body)
	res.AppendHeader(sip.NewHeader("Server", p.Product()))
	appendHeaders(res, ans.Headers)
	if ans.SessionExpires > 0 {
		res.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", ans.SessionExpires)))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	switch err := uas.WriteResponse(res); {
	case err != nil:
		// Answered but not confirmed (the caller's side hung up at once):
		// still hand the session over, so its end can be observed.
		p.untrack(s)
		s.closeMedia()
	case !s.answered():
		// The ACK carried no usable answer: no media; the dialog stays
		// tracked so the BYE that should follow can end it.
		s.closeMedia()
	default:
		s.start()
	}
	select {
	case p.incoming <- s:
	default:
	}
}

const simRealm = "carrier.sim"

// authorizedInDialog checks the credentials of a request inside a dialog
// when the peer challenges those too (Answer.DigestInDialog).
func (p *Peer) authorizedInDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	ans := p.cfg.Answer
	return ans.Digest == nil || !ans.DigestInDialog || p.authorized(req, tx, ans.Digest)
}

// authorized checks a request's digest credentials (RFC 3261 section 22,
// RFC 2617 without qop); it answers 401 with a fresh challenge when they
// are missing and 403 when they are wrong.
func (p *Peer) authorized(req *sip.Request, tx sip.ServerTransaction, want *Credentials) bool {
	code, chalHdr, credHdr := 401, "WWW-Authenticate", "Authorization"
	if p.cfg.Answer.DigestProxy {
		code, chalHdr, credHdr = 407, "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := req.GetHeader(credHdr)
	if h == nil {
		var nb [8]byte
		rand.Read(nb[:])
		chal := &digest.Challenge{Realm: simRealm, Nonce: fmt.Sprintf("%x", nb), Algorithm: "MD5"}
		res := sip.NewResponseFromRequest(req, code, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader(chalHdr, chal.String()))
		tx.Respond(res)
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err == nil && cred.Username == want.Username && cred.Realm == simRealm {
		exp, derr := digest.Digest(&digest.Challenge{Realm: simRealm, Nonce: cred.Nonce, Algorithm: cred.Algorithm},
			digest.Options{Method: string(req.Method), URI: cred.URI, Username: want.Username, Password: want.Password,
				Cnonce: cred.Cnonce, Count: cred.Nc})
		if derr == nil && exp.Response == cred.Response {
			return true
		}
	}
	tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
	return false
}

// cloneHeaders copies hs, for a message of its own.
func cloneHeaders(hs []sip.Header) []sip.Header {
	out := make([]sip.Header, len(hs))
	for i, h := range hs {
		out[i] = sip.HeaderClone(h)
	}
	return out
}

// appendHeaders adds copies of hs to res.
func appendHeaders(res *sip.Response, hs []sip.Header) {
	for _, h := range cloneHeaders(hs) {
		res.AppendHeader(h)
	}
}
