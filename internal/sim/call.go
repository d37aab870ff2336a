package sim

// The calls a peer places (UAC): the INVITE, its offer or a delayed offer,
// provisional responses and PRACK (RFC 3262), the answer and the ACK.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// CallOptions says what a peer offers when it calls.
type CallOptions struct {
	// SRTP offers RTP/SAVP with one a=crypto line per suite.
	SRTP   bool
	Suites []string
	// DTLS offers DTLS-SRTP instead: UDP/TLS/RTP/SAVP with a=setup:actpass,
	// the peer's a=fingerprint and a=rtcp-mux, no a=crypto. Suites, when
	// set, are then the SRTP protection profiles offered in the handshake
	// (by default AEAD_AES_256_GCM, AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80).
	DTLS bool
	// DTLSWrongFingerprint writes an a=fingerprint that is not the peer's
	// certificate's.
	DTLSWrongFingerprint bool
	// Unsafe adds a session parameter to every crypto line (e.g. UNENCRYPTED_SRTP).
	Unsafe string
	// From is the caller user part (default the peer's name).
	From string
	// FromHost is the From URI's host (default the peer's address): a
	// registered user calls as its address of record, user@domain.
	FromHost string
	// Feedback offers the RTCP feedback profile (RTP/AVPF or RTP/SAVPF).
	Feedback bool
	// Delayed sends the INVITE without SDP: the callee offers in its 2xx
	// and this peer answers in the ACK.
	Delayed bool
	// Rel100 requires reliable provisional responses (Require: 100rel) and
	// acknowledges each with a PRACK (RFC 3262).
	Rel100 bool
	// Headers are added to the INVITE as they are (P-Asserted-Identity,
	// Privacy...).
	Headers []sip.Header
	// SessionExpires, when set, asks for a session timer (RFC 4028) of
	// that many seconds with this peer as the refresher (it then calls
	// Refresh itself).
	SessionExpires int
	// Route, when set, is the INVITE's Route header (a PBX calling a user
	// registered through a proxy, RFC 3327): the INVITE goes there.
	Route string
	// EarlyUpdate, with Rel100, sends an UPDATE with a new offer in the
	// early dialog (early.go).
	EarlyUpdate *EarlyUpdate
	// OnPrack, when set, is called each time a PRACK of this peer's (with
	// Rel100) was answered 200.
	OnPrack func()
	// Credentials, when set, answer a 401 or 407 to the INVITE once, as
	// a phone does: the same Call-ID and From tag, the next CSeq.
	Credentials *Credentials
}

// Call places a call to target (e.g. "sip:+15551230000@127.0.0.1:5060") and
// waits for the answer. A non-2xx final response is returned as *Rejected.
func (p *Peer) Call(ctx context.Context, target string, o CallOptions) (*Session, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, err
	}
	s, err := p.newSession(o.SRTP)
	if err != nil {
		return nil, err
	}
	lines, body, err := s.makeOffer(o)
	if err != nil {
		s.closeMedia()
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	from := o.From
	if from == "" {
		from = p.cfg.Name
	}
	fromHost := o.FromHost
	if fromHost == "" {
		fromHost = p.addr.Addr().String()
	}
	fh := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: fromHost}, Params: sip.NewParams()}
	fh.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(fh)
	req.AppendHeader(sip.NewHeader("User-Agent", p.Product()))
	for _, h := range o.Headers {
		req.AppendHeader(h)
	}
	if o.Rel100 {
		req.AppendHeader(sip.NewHeader("Require", "100rel"))
		req.AppendHeader(sip.NewHeader("Supported", "100rel"))
	}
	if o.SessionExpires > 0 {
		req.AppendHeader(sip.NewHeader("Supported", "timer"))
		req.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", o.SessionExpires)))
	}
	if o.Route != "" {
		req.AppendHeader(sip.NewHeader("Route", o.Route))
	}
	if !o.Delayed {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	if p.cfg.Transport == "udp" {
		req.Laddr = sip.Addr{IP: p.addr.Addr().AsSlice(), Port: int(p.addr.Port())}
	}
	dua := &sipgo.DialogUA{Client: p.cli, ContactHDR: p.contact()}
	uac, err := dua.WriteInvite(ctx, req)
	if err != nil {
		s.closeMedia()
		return nil, err
	}
	s.uac = uac
	s.callID = string(*req.CallID())
	p.track(s)
	var user, password string
	if o.Credentials != nil {
		user, password = o.Credentials.Username, o.Credentials.Password
	}
	if err := uac.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: password, OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() {
			s.mu.Lock()
			s.provisional = append(s.provisional, res.String())
			s.mu.Unlock()
			if rseq := res.GetHeader("RSeq"); o.Rel100 && rseq != nil {
				err := s.prack(ctx, uac, res, rseq.Value())
				if err == nil && o.OnPrack != nil {
					o.OnPrack()
				}
				if err != nil || o.EarlyUpdate == nil || len(res.Body()) == 0 {
					return err
				}
				eu := o.EarlyUpdate
				o.EarlyUpdate = nil // once
				lines, err = s.earlyUpdate(ctx, uac, res, lines, eu)
				return err
			}
		}
		return nil
	}}); err != nil {
		p.untrack(s)
		s.closeMedia()
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			return nil, &Rejected{Status: dr.Res.StatusCode, Reason: dr.Res.Reason, Warning: headerValue(dr.Res, "Warning"),
				RetryAfter: headerValue(dr.Res, "Retry-After")}
		}
		return nil, err
	}
	if o.Delayed {
		// The 2xx carries the offer; the ACK carries our answer.
		if err := s.takeRemote(uac.InviteResponse.Body(), nil, true); err != nil {
			uac.Ack(ctx)
			uac.Bye(ctx)
			p.untrack(s)
			s.closeMedia()
			return nil, err
		}
		target := uac.InviteRequest.Recipient
		if ct := uac.InviteResponse.Contact(); ct != nil {
			target = ct.Address
		}
		ack := sip.NewRequest(sip.ACK, *target.Clone())
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(s.answerBody())
		ack.Laddr = req.Laddr
		if err := uac.WriteAck(ctx, ack); err != nil {
			return nil, err
		}
		s.start()
		return s, nil
	}
	// After an UPDATE from the callee in the early dialog (its offer taken,
	// answered in the 200), the SDP of the 2xx is no new answer: the
	// session is that exchange's (RFC 3311 section 5.1).
	if s.Updates() > 0 {
		if err := s.ack(ctx, uac); err != nil {
			return nil, err
		}
		s.start()
		return s, nil
	}
	if err := s.takeRemote(uac.InviteResponse.Body(), lines, false); err != nil {
		uac.Ack(ctx)
		uac.Bye(ctx)
		p.untrack(s)
		s.closeMedia()
		return nil, err
	}
	if err := s.ack(ctx, uac); err != nil {
		return nil, err
	}
	s.start()
	return s, nil
}

func headerValue(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// Rejected is a call refused with a final status.
type Rejected struct {
	Status     int
	Reason     string
	Warning    string
	RetryAfter string // the Retry-After header, if any
}

func (r *Rejected) Error() string {
	return fmt.Sprintf("call rejected: %d %s (%s)", r.Status, r.Reason, r.Warning)
}

// prack acknowledges a reliable provisional response (RFC 3262 section 7.2).
func (s *Session) prack(ctx context.Context, uac *sipgo.DialogClientSession, res *sip.Response, rseq string) error {
	target := uac.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	req := sip.NewRequest(sip.PRACK, *target.Clone())
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%s %d INVITE", strings.TrimSpace(rseq), uac.InviteRequest.CSeq().SeqNo)))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pres, err := uac.Do(pctx, req)
	if err != nil {
		return fmt.Errorf("sim: PRACK: %w", err)
	}
	if pres.StatusCode != 200 {
		return fmt.Errorf("sim: PRACK answered %d", pres.StatusCode)
	}
	s.pracks.Add(1)
	return nil
}
