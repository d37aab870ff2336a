package sim

// A Session is one call at a peer: its dialog, the state of its offer and
// answer, and the in-dialog requests (BYE, re-INVITE, INFO) it sends.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/dtls/v3"
)

// Session is one call at a peer and its media.
type Session struct {
	p      *Peer
	callID string
	uac    *sipgo.DialogClientSession
	uas    *sipgo.DialogServerSession

	conn *net.UDPConn
	port int

	mu          sync.Mutex
	remote      netip.AddrPort
	delayed     bool       // this callee offered in its 2xx
	awaitAnswer []sdesLine // the crypto lines of that offer, for the answer in the ACK
	answerErr   error      // what was wrong with the answer in the ACK
	proto       string     // the profile of the last SDP received
	direction   string     // a=... of the next SDP; "" is sendrecv
	feedback    bool       // offer AVPF/SAVPF
	send        *sdesLine  // the key this peer encrypts with
	recv        *sdesLine  // the key the other side encrypts with
	offered     []sdesLine
	version     int      // o= version of this peer's last re-offer
	notifies    []Notify // NOTIFYs of a refer subscription received

	// DTLS-SRTP (dtls.go). dtls is set once the SDP exchange settled on
	// DTLS-SRTP; send and recv are then nil until its handshake agreed keys.
	dtls        *dtlsState
	offeredDTLS bool     // this peer's last offer was DTLS-SRTP
	dtlsSuites  []string // the profiles that offer's handshake proposes
	wrongFP     bool     // that offer's a=fingerprint is not our certificate's
	dpc         *dtlsPacketConn
	dtlsConn    *dtls.Conn
	mediaCtx    context.Context
	mediaCancel context.CancelFunc

	stats       mediaStats
	provisional []string // provisional responses received, as written
	reinvites   atomic.Int64
	pracks      atomic.Int64
	infos       atomic.Int64
	updates     atomic.Int64  // UPDATEs with an offer received (early.go)
	prackWait   chan struct{} // closed by the PRACK of a reliable 183 (early.go)
	wg          sync.WaitGroup
	startOnce   sync.Once
	closed      atomic.Bool
}

func (p *Peer) newSession(srtp bool) (*Session, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.cfg.MediaAddr, 0)))
	if err != nil {
		return nil, err
	}
	s := &Session{p: p, conn: c, port: c.LocalAddr().(*net.UDPAddr).Port}
	s.dpc = newDTLSPacketConn(s)
	s.mediaCtx, s.mediaCancel = context.WithCancel(context.Background())
	return s, nil
}

// Profile is the transport profile (such as RTP/SAVP) of the last SDP this
// session received: the offer for a callee, the answer for a caller.
func (s *Session) Profile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proto
}

// takeAckAnswer takes the answer from the ACK to this callee's 2xx offer.
func (s *Session) takeAckAnswer(ack *sip.Request) {
	s.mu.Lock()
	lines, waiting := s.awaitAnswer, s.delayed && s.answerErr == nil && !s.remote.IsValid()
	s.mu.Unlock()
	if !waiting {
		return
	}
	err := errors.New("sim: ACK without an answer")
	if len(ack.Body()) > 0 {
		err = s.takeRemote(ack.Body(), lines, false)
	}
	if err != nil {
		s.mu.Lock()
		s.answerErr = err
		s.mu.Unlock()
	}
}

// answered reports whether the session has the other side's SDP (for a
// delayed-offer callee: a usable answer in the ACK).
func (s *Session) answered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answerErr == nil && s.remote.IsValid()
}

// AnswerError is what was wrong with the answer a delayed-offer callee got
// in the ACK, if anything.
func (s *Session) AnswerError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answerErr
}

// makeOffer builds the session's offer as o describes.
func (s *Session) makeOffer(o CallOptions) ([]sdesLine, []byte, error) {
	s.feedback = o.Feedback
	if o.DTLS {
		s.mu.Lock()
		s.dtlsSuites, s.wrongFP = o.Suites, o.DTLSWrongFingerprint
		s.mu.Unlock()
		return nil, s.offerVersion(nil, "actpass", 1), nil
	}
	var lines []sdesLine
	if o.SRTP {
		suites := o.Suites
		if len(suites) == 0 {
			suites = []string{"AES_CM_128_HMAC_SHA1_80"}
		}
		for i, su := range suites {
			k, err := newKey(su)
			if err != nil {
				return nil, nil, err
			}
			lines = append(lines, sdesLine{tag: i + 1, suite: su, key: k, params: o.Unsafe})
		}
	}
	return lines, s.offerVersion(lines, "", 1), nil
}

// CallID is the SIP Call-ID of the session at this peer.
func (s *Session) CallID() string { return s.callID }

// SRTP reports whether the session negotiated SRTP, and the suite. On a
// DTLS-SRTP session that is once the handshake agreed the keys, and the
// suite is the protection profile it selected.
func (s *Session) SRTP() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.send == nil {
		return false, ""
	}
	return true, s.send.suite
}

// Context ends when the call's dialog ends.
func (s *Session) Context() context.Context {
	if s.uac != nil {
		return s.uac.Context()
	}
	return s.uas.Context()
}

// Hangup sends BYE.
func (s *Session) Hangup(ctx context.Context) error {
	defer s.closeMedia()
	defer s.p.untrack(s)
	if s.uac != nil {
		return s.uac.Bye(ctx)
	}
	return s.uas.Bye(ctx)
}

// target is the other side's Contact, where in-dialog requests go.
func (s *Session) target() sip.Uri {
	if s.uac != nil {
		return s.uac.InviteResponse.Contact().Address
	}
	return s.uas.InviteRequest.Contact().Address
}

// do sends an in-dialog request and waits for its final response.
func (s *Session) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if s.uac != nil {
		return s.uac.Do(ctx, req)
	}
	return s.uas.Do(ctx, req)
}

// Reinvite sends a re-INVITE with a fresh offer. plain forces RTP/AVP
// without crypto (a downgrade attempt). On a DTLS-SRTP session the offer
// keeps the association: same fingerprint, and this peer's current role
// as its a=setup.
func (s *Session) Reinvite(ctx context.Context, plain bool) (int, error) {
	return s.reoffer(ctx, sip.INVITE, plain)
}

// Update is Reinvite with an UPDATE (RFC 3311): the offer in the UPDATE,
// the answer in its 2xx, no ACK.
func (s *Session) Update(ctx context.Context, plain bool) (int, error) {
	return s.reoffer(ctx, sip.UPDATE, plain)
}

// reoffer sends a new offer in a request of method (INVITE or UPDATE).
func (s *Session) reoffer(ctx context.Context, method sip.RequestMethod, plain bool) (int, error) {
	var lines []sdesLine
	setup := ""
	s.mu.Lock()
	// RFC 3264 section 8: each new offer has a higher o= version (the
	// initial offer has 1).
	if s.version < 2 {
		s.version = 2
	} else {
		s.version++
	}
	version := s.version
	switch {
	case plain:
	case s.dtls != nil:
		setup = s.dtls.setup
	case s.send != nil:
		lines = []sdesLine{*s.send}
	}
	s.mu.Unlock()
	req := sip.NewRequest(method, s.target())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(s.offerVersion(lines, setup, version))
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.IsSuccess() && method == sip.INVITE {
		ack := sip.NewRequest(sip.ACK, s.target())
		if s.uac != nil {
			s.uac.WriteRequest(ack)
		} else {
			s.uas.WriteRequest(ack)
		}
	}
	if res.IsSuccess() {
		if len(res.Body()) > 0 {
			if err := s.takeRemote(res.Body(), lines, false); err != nil {
				return res.StatusCode, err
			}
		}
	}
	return res.StatusCode, nil
}

// Refresh sends a session refresh (RFC 4028): an UPDATE without SDP
// asking for a session interval of se seconds, this peer refreshing. It
// returns the status and the response's Session-Expires.
func (s *Session) Refresh(ctx context.Context, se int) (int, string, error) {
	req := sip.NewRequest(sip.UPDATE, s.target())
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", se)))
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, "", err
	}
	return res.StatusCode, headerValue(res, "Session-Expires"), nil
}

// Info sends an INFO with a DTMF body (RFC 6086 style) and returns the status.
func (s *Session) Info(ctx context.Context, body string) (int, error) {
	req := sip.NewRequest(sip.INFO, s.target())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody([]byte(body))
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// Provisional returns the provisional responses the caller received.
func (s *Session) Provisional() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.provisional...)
}

// Dialog returns the messages that set up the session as this peer saw
// them: the INVITE it received (callee) or the final response it received
// (caller), as written on the wire.
func (s *Session) Dialog() string {
	if s.uas != nil {
		return s.uas.InviteRequest.String()
	}
	return s.uac.InviteResponse.String()
}

// Pracks counts the reliable provisional responses this session acknowledged.
func (s *Session) Pracks() int64 { return s.pracks.Load() }

// SetDirection sets the direction attribute (sendrecv, sendonly, recvonly,
// inactive) of the session's next SDP, such as a re-INVITE putting the call
// on hold.
func (s *Session) SetDirection(d string) {
	s.mu.Lock()
	s.direction = d
	s.mu.Unlock()
}

// Reinvites counts re-INVITEs this session received.
func (s *Session) Reinvites() int64 { return s.reinvites.Load() }

// Infos counts INFO requests this session received.
func (s *Session) Infos() int64 { return s.infos.Load() }

// Transport is how the session's INVITE travelled: the transport it
// arrived over (callee) or was sent over (caller): "UDP", "TCP" or "TLS".
func (s *Session) Transport() string {
	if s.uas != nil {
		return s.uas.InviteRequest.Transport()
	}
	return s.uac.InviteRequest.Transport()
}

// InviteURI is the Request-URI of the INVITE this peer answered; "" for
// a call this peer placed.
func (s *Session) InviteURI() string {
	if s.uas == nil {
		return ""
	}
	return s.uas.InviteRequest.Recipient.String()
}

// InviteHeader returns the values of the headers named name of the INVITE
// this peer answered (one entry per header, as received); nil for a call
// this peer placed.
func (s *Session) InviteHeader(name string) []string {
	if s.uas == nil {
		return nil
	}
	var out []string
	for _, h := range s.uas.InviteRequest.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// SentHeader returns the values of the headers named name of the INVITE
// this peer sent, as last sent (after answering a challenge, with its
// credentials); nil for a call this peer answered.
func (s *Session) SentHeader(name string) []string {
	if s.uac == nil {
		return nil
	}
	var out []string
	for _, h := range s.uac.InviteRequest.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}
