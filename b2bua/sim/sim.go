// Package sim provides simulated SIP peers — a PBX phone on UDP with plain
// RTP, a carrier on TLS with SDES-SRTP or DTLS-SRTP — that exchange real
// packets with parapet over loopback. parapet's in-process end-to-end tests
// and the `parapet demo` command use it.
//
// sim deliberately does not use parapet's media package: it writes its SDP
// by hand, parses answers with pion/sdp, agrees DTLS-SRTP keys with
// pion/dtls and protects media with pion/srtp, so a test through sim checks
// parapet against an independent peer.
package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/pion/dtls/v3"
	"github.com/pion/sdp/v3"
)

// Config configures a simulated peer.
type Config struct {
	// Name is the peer's user part and log tag.
	Name string
	// Transport of the peer's listener and of the calls it places: udp, tcp or tls.
	Transport string
	// Listen is the SIP listener; port 0 picks one.
	Listen netip.AddrPort
	// ServerTLS is required for a tls listener; ClientTLS for dialling over TLS.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// MediaAddr is where the peer's RTP sockets bind.
	MediaAddr netip.Addr
	// Answer says how the peer answers incoming calls.
	Answer Answer
	Logger *slog.Logger
}

// Answer is how a peer answers an INVITE.
type Answer struct {
	// Status, when not 0 or 200, rejects the call with it.
	Status int
	// Plain answers RTP/AVP without crypto even when SRTP is offered (a
	// misbehaving callee).
	Plain bool
	// WrongTag answers with a crypto tag that was not offered (baresip's bug).
	WrongTag bool
	// Suite picks the offered suite to accept; "" takes the first offered.
	Suite string
	// Ring delays the answer after a 180.
	Ring time.Duration
	// MoreRinging, with Ring, sends this many more 180s, 5 ms apart, after
	// the first (a callee or carrier that keeps re-sending its ringing).
	MoreRinging int
	// Early sends 183 Session Progress with the SDP answer before ringing.
	Early bool
	// Digest, when set, challenges every INVITE (401) and accepts only
	// these credentials.
	Digest *Credentials
	// Offer is what the peer offers in its 2xx to an INVITE without SDP
	// (delayed offer); its answer must come in the ACK.
	Offer CallOptions
	// DTLSSetup is the peer's a=setup in its answer to a DTLS-SRTP offer
	// (UDP/TLS/RTP/SAVP with a=fingerprint): "active", the default (as
	// baresip), makes it the DTLS client; "passive" the server. When it is
	// empty and the offer says active or passive, the peer takes the other
	// role. With DTLS-SRTP, Suite restricts the SRTP protection profiles
	// the peer offers in the handshake to that one.
	DTLSSetup string
	// DTLSWrongFingerprint writes, in the answer, an a=fingerprint that is
	// not the peer's certificate's (the handshake must then fail).
	DTLSWrongFingerprint bool
	// RejectDTLS answers 488 to an offer of DTLS-SRTP (a peer that knows
	// only SDES).
	RejectDTLS bool
}

// Credentials for a digest challenge.
type Credentials struct{ Username, Password string }

// Peer is a running simulated SIP peer.
type Peer struct {
	cfg       Config
	log       *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	addr      netip.AddrPort
	ln        io
	incoming  chan *Session
	wire      wireTap
	invites   atomic.Int64 // initial INVITEs received
	cancelled atomic.Int64 // INVITEs that ended while ringing (CANCEL)
	cert      *dtlsCert    // for DTLS-SRTP; one per peer

	mu       sync.Mutex
	sessions map[string]*Session // by Call-ID
	acks     map[string][][]byte // bodies of the ACKs received, by Call-ID
	wg       sync.WaitGroup
	done     chan struct{}
}

type io interface{ Close() error }

// New creates a peer and binds its listener.
// Product is what the peer calls itself in its User-Agent and Server
// headers: "sim-<name>/1.0 (parapet test peer)".
func (p *Peer) Product() string { return "sim-" + p.cfg.Name + "/1.0 (parapet test peer)" }

func New(cfg Config) (*Peer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.MediaAddr.IsValid() {
		cfg.MediaAddr = cfg.Listen.Addr()
	}
	opts := []sipgo.UserAgentOption{sipgo.WithUserAgent(cfg.Name), sipgo.WithUserAgentHostname(cfg.Listen.Addr().String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(cfg.Logger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(cfg.Logger))}
	if cfg.ClientTLS != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(cfg.ClientTLS))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, err
	}
	p := &Peer{cfg: cfg, log: cfg.Logger.With("peer", cfg.Name), ua: ua, incoming: make(chan *Session, 16),
		sessions: map[string]*Session{}, acks: map[string][][]byte{}, done: make(chan struct{})}
	if p.cert, err = newDTLSCert(cfg.Name); err != nil {
		ua.Close()
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger)); err != nil {
		return nil, err
	}
	if p.cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(cfg.Logger)); err != nil {
		return nil, err
	}
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if cid := req.CallID(); cid != nil {
			p.mu.Lock()
			p.acks[string(*cid)] = append(p.acks[string(*cid)], req.Body())
			p.mu.Unlock()
		}
		if s := p.session(req); s != nil && s.uas != nil {
			s.takeAckAnswer(req)
			s.uas.ReadAck(req, tx)
		}
	})
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		s := p.session(req)
		if s == nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		if s.uas != nil {
			s.uas.ReadBye(req, tx)
		} else if s.uac != nil {
			s.uac.ReadBye(req, tx)
		}
	})
	p.srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		if s := p.session(req); s != nil {
			s.infos.Add(1)
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := p.bind(); err != nil {
		ua.Close()
		return nil, err
	}
	return p, nil
}

func (p *Peer) bind() error {
	switch p.cfg.Transport {
	case "udp":
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(p.cfg.Listen))
		if err != nil {
			return err
		}
		p.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
		p.ln = c
		p.serve(func() error { return p.srv.ServeUDP(c) })
		for range 200 { // wait until sipgo pooled the socket (requests are sent from it)
			if pc, err := p.ua.TransportLayer().GetConnection("udp", p.addr.String()); err == nil && pc != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	case "tcp", "tls":
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(p.cfg.Listen))
		if err != nil {
			return err
		}
		p.addr = l.Addr().(*net.TCPAddr).AddrPort()
		p.ln = l
		if p.cfg.Transport == "tcp" {
			p.serve(func() error { return p.srv.ServeTCP(l) })
			break
		}
		if p.cfg.ServerTLS == nil {
			l.Close()
			return errors.New("sim: tls listener without ServerTLS")
		}
		tl := tls.NewListener(&tapListener{Listener: l, tap: &p.wire}, p.cfg.ServerTLS)
		p.serve(func() error { return p.srv.ServeTLS(tl) })
	default:
		return fmt.Errorf("sim: unknown transport %q", p.cfg.Transport)
	}
	return nil
}

func (p *Peer) serve(f func() error) {
	p.wg.Add(1)
	go func() { defer p.wg.Done(); f() }()
}

// Addr is the peer's SIP listener address.
func (p *Peer) Addr() netip.AddrPort { return p.addr }

// Invites counts the initial INVITEs the peer received (answered or not).
func (p *Peer) Invites() int64 { return p.invites.Load() }

// Incoming delivers sessions of calls the peer answered.
func (p *Peer) Incoming() <-chan *Session { return p.incoming }

// Cancelled returns how many INVITEs ended while ringing (Answer.Ring),
// before they were answered.
func (p *Peer) Cancelled() int64 { return p.cancelled.Load() }

// Wire reports what the peer's TLS listener received on the wire, before
// decryption: bytes, TLS records, and whether anything looked like
// cleartext SIP.
func (p *Peer) Wire() WireStats { return p.wire.stats() }

// Close hangs up nothing; it stops the listener and the user agent. It is
// idempotent.
func (p *Peer) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.mu.Lock()
	sessions := make([]*Session, 0, len(p.sessions))
	for _, s := range p.sessions {
		sessions = append(sessions, s)
	}
	p.mu.Unlock()
	for _, s := range sessions {
		s.closeMedia()
	}
	p.ln.Close()
	p.ua.Close()
	p.wg.Wait()
}

// AckBodies returns the bodies of the ACKs the peer received in the call
// with callID, in arrival order.
func (p *Peer) AckBodies(callID string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.acks[callID]...)
}

func (p *Peer) session(req *sip.Request) *Session {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions[string(*cid)]
}

func (p *Peer) contact() sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: p.cfg.Name, Host: p.addr.Addr().String(), Port: int(p.addr.Port())}
	if p.cfg.Transport != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", p.cfg.Transport)
	}
	return sip.ContactHeader{Address: u}
}

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
	// Feedback offers the RTCP feedback profile (RTP/AVPF or RTP/SAVPF).
	Feedback bool
	// Delayed sends the INVITE without SDP: the callee offers in its 2xx
	// and this peer answers in the ACK.
	Delayed bool
	// Rel100 requires reliable provisional responses (Require: 100rel) and
	// acknowledges each with a PRACK (RFC 3262).
	Rel100 bool
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
	fh := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: p.addr.Addr().String()}, Params: sip.NewParams()}
	fh.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(fh)
	req.AppendHeader(sip.NewHeader("User-Agent", p.Product()))
	if o.Rel100 {
		req.AppendHeader(sip.NewHeader("Require", "100rel"))
		req.AppendHeader(sip.NewHeader("Supported", "100rel"))
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
	if err := uac.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() {
			s.mu.Lock()
			s.provisional = append(s.provisional, res.String())
			s.mu.Unlock()
			if rseq := res.GetHeader("RSeq"); o.Rel100 && rseq != nil {
				return s.prack(ctx, uac, res, rseq.Value())
			}
		}
		return nil
	}}); err != nil {
		p.untrack(s)
		s.closeMedia()
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			return nil, &Rejected{Status: dr.Res.StatusCode, Reason: dr.Res.Reason, Warning: headerValue(dr.Res, "Warning")}
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
	if err := s.takeRemote(uac.InviteResponse.Body(), lines, false); err != nil {
		uac.Ack(ctx)
		uac.Bye(ctx)
		p.untrack(s)
		s.closeMedia()
		return nil, err
	}
	if err := uac.Ack(ctx); err != nil {
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
	Status  int
	Reason  string
	Warning string
}

func (r *Rejected) Error() string {
	return fmt.Sprintf("call rejected: %d %s (%s)", r.Status, r.Reason, r.Warning)
}

func (p *Peer) track(s *Session) {
	p.mu.Lock()
	p.sessions[s.callID] = s
	p.mu.Unlock()
}

func (p *Peer) untrack(s *Session) {
	p.mu.Lock()
	delete(p.sessions, s.callID)
	p.mu.Unlock()
}

func (p *Peer) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// re-INVITE: answer with the current SDP, new version.
		s := p.session(req)
		if s == nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
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
	if ans.RejectDTLS && strings.Contains(string(req.Body()), "UDP/TLS/RTP/SAVP") {
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
		uas.WriteResponse(res)
		s.start() // early media: the media (and a DTLS-SRTP handshake) starts now
	}
	if ans.Ring > 0 {
		uas.Respond(180, "Ringing", nil)
		for range ans.MoreRinging {
			time.Sleep(5 * time.Millisecond)
			uas.Respond(180, "Ringing", nil)
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

// authorized checks an INVITE's digest credentials (RFC 3261 section 22,
// RFC 2617 without qop); it answers 401 with a fresh challenge when they
// are missing and 403 when they are wrong.
func (p *Peer) authorized(req *sip.Request, tx sip.ServerTransaction, want *Credentials) bool {
	h := req.GetHeader("Authorization")
	if h == nil {
		var nb [8]byte
		rand.Read(nb[:])
		chal := &digest.Challenge{Realm: simRealm, Nonce: fmt.Sprintf("%x", nb), Algorithm: "MD5"}
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		tx.Respond(res)
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err == nil && cred.Username == want.Username && cred.Realm == simRealm {
		exp, derr := digest.Digest(&digest.Challenge{Realm: simRealm, Nonce: cred.Nonce, Algorithm: cred.Algorithm},
			digest.Options{Method: "INVITE", URI: cred.URI, Username: want.Username, Password: want.Password,
				Cnonce: cred.Cnonce, Count: cred.Nc})
		if derr == nil && exp.Response == cred.Response {
			return true
		}
	}
	tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
	return false
}

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
	version     int // o= version of this peer's last re-offer

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
	req := sip.NewRequest(sip.INVITE, s.target())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(s.offerVersion(lines, setup, version))
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, s.target())
		if s.uac != nil {
			s.uac.WriteRequest(ack)
		} else {
			s.uas.WriteRequest(ack)
		}
		if len(res.Body()) > 0 {
			if err := s.takeRemote(res.Body(), lines, false); err != nil {
				return res.StatusCode, err
			}
		}
	}
	return res.StatusCode, nil
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

// offerVersion writes an offer: SDES with lines, or DTLS-SRTP with
// a=setup:dtlsSetup when that is not empty.
func (s *Session) offerVersion(lines []sdesLine, dtlsSetup string, version int) []byte {
	s.mu.Lock()
	s.offered = lines
	s.offeredDTLS = dtlsSetup != ""
	wrong := s.wrongFP
	s.mu.Unlock()
	proto := "RTP/AVP"
	var dt *dtlsAttrs
	switch {
	case dtlsSetup != "":
		proto = "UDP/TLS/RTP/SAVP"
		dt = &dtlsAttrs{setup: dtlsSetup, fingerprint: s.p.cert.fingerprint(wrong), mux: true}
	case len(lines) > 0:
		proto = "RTP/SAVP"
	}
	if s.feedback {
		proto += "F"
	}
	return s.sdp(proto, lines, dt, version)
}

// dtlsAttrs are the DTLS-SRTP attributes of an SDP the peer writes.
type dtlsAttrs struct {
	setup, fingerprint string
	mux                bool
}

func (s *Session) sdp(proto string, lines []sdesLine, dt *dtlsAttrs, version int) []byte {
	addr := s.p.cfg.MediaAddr.String()
	var b strings.Builder
	af := "IP4"
	if s.p.cfg.MediaAddr.Is6() {
		af = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=%s 4242 %d IN %s %s\r\ns=sim\r\nc=IN %s %s\r\nt=0 0\r\n", s.p.cfg.Name, version, af, addr, af, addr)
	s.mu.Lock()
	dir := s.direction
	s.mu.Unlock()
	if dir == "" {
		dir = "sendrecv"
	}
	fmt.Fprintf(&b, "m=audio %d %s 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=%s\r\n", s.port, proto, dir)
	for _, l := range lines {
		fmt.Fprintf(&b, "a=crypto:%d %s inline:%s", l.tag, l.suite, base64.StdEncoding.EncodeToString(l.key))
		if l.params != "" {
			b.WriteString(" " + l.params)
		}
		b.WriteString("\r\n")
	}
	if dt != nil {
		fmt.Fprintf(&b, "a=setup:%s\r\na=fingerprint:%s\r\n", dt.setup, dt.fingerprint)
		if dt.mux {
			b.WriteString("a=rtcp-mux\r\n")
		}
	}
	return []byte(b.String())
}

// answerBody is the peer's answer to the last offer it took.
func (s *Session) answerBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtls != nil {
		dt := &dtlsAttrs{setup: s.dtls.setup, mux: s.dtls.mux,
			fingerprint: s.p.cert.fingerprint(s.wrongFP || s.p.cfg.Answer.DTLSWrongFingerprint)}
		return s.sdpLocked(s.proto, nil, dt)
	}
	if s.send == nil {
		return s.sdpLocked("RTP/AVP", nil, nil)
	}
	l := *s.send
	if s.p.cfg.Answer.WrongTag {
		l.tag += 40
	}
	return s.sdpLocked(s.proto, []sdesLine{l}, nil)
}

func (s *Session) sdpLocked(proto string, lines []sdesLine, dt *dtlsAttrs) []byte {
	s.mu.Unlock()
	defer s.mu.Lock()
	return s.sdp(proto, lines, dt, 1)
}

// takeRemote reads the other side's SDP. As answerer (offer=true) it picks a
// crypto line and makes its own key; as offerer it checks the answer's line
// against what it offered.
func (s *Session) takeRemote(body []byte, offered []sdesLine, offer bool) error {
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil {
		return fmt.Errorf("sim: bad SDP: %w", err)
	}
	var m *sdp.MediaDescription
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			m = md
			break
		}
	}
	if m == nil {
		return errors.New("sim: no active audio stream")
	}
	conn := d.ConnectionInformation
	if m.ConnectionInformation != nil {
		conn = m.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return errors.New("sim: no connection address")
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return err
	}
	var lines []sdesLine
	for _, a := range m.Attributes {
		if a.Key == "crypto" {
			l, err := parseCrypto(a.Value)
			if err != nil {
				return err
			}
			lines = append(lines, l)
		}
	}
	proto := strings.Join(m.MediaName.Protos, "/")
	dt, err := readDTLS(&d, m)
	if err != nil {
		return err
	}
	isDTLS := strings.HasPrefix(proto, "UDP/TLS/") && dt.present
	s.mu.Lock()
	defer s.mu.Unlock()
	remote := netip.AddrPortFrom(ip, uint16(m.MediaName.Port.Value))
	if s.dtls != nil {
		// The association goes on only if nothing it depends on changed.
		return s.keepDTLSLocked(offer, isDTLS, proto, dt, remote)
	}
	s.remote = remote
	s.proto = proto
	if offer && isDTLS && !s.p.cfg.Answer.Plain {
		// RFC 5763 section 5: the answerer picks its role.
		setup := s.p.cfg.Answer.DTLSSetup
		if setup == "" {
			setup = "active"
			if dt.setup == "active" {
				setup = "passive"
			}
		}
		var suites []string
		if s.p.cfg.Answer.Suite != "" {
			suites = []string{s.p.cfg.Answer.Suite}
		}
		s.send, s.recv = nil, nil
		s.dtls = newDTLSState(setup, dt.fps, dt.mux, suites)
		return nil
	}
	if !offer && s.offeredDTLS {
		if !isDTLS {
			return fmt.Errorf("sim: offered DTLS-SRTP, the answer is %s without a=fingerprint", proto)
		}
		var setup string
		switch dt.setup {
		case "active":
			setup = "passive"
		case "passive":
			setup = "active"
		default:
			return fmt.Errorf("sim: a=setup:%s in the answer to a DTLS-SRTP offer", dt.setup)
		}
		s.send, s.recv = nil, nil
		s.dtls = newDTLSState(setup, dt.fps, dt.mux, s.dtlsSuites)
		return nil
	}
	if !offer && dt.present {
		return errors.New("sim: the answer has a=fingerprint but DTLS-SRTP was not offered")
	}
	if offer {
		s.send, s.recv = nil, nil
		if s.p.cfg.Answer.Plain || len(lines) == 0 {
			s.proto = strings.Replace(strings.TrimPrefix(s.proto, "UDP/TLS/"), "RTP/SAVP", "RTP/AVP", 1)
			return nil
		}
		pick := lines[0]
		if want := s.p.cfg.Answer.Suite; want != "" {
			found := false
			for _, l := range lines {
				if l.suite == want {
					pick, found = l, true
					break
				}
			}
			if !found {
				return fmt.Errorf("sim: suite %s not offered", want)
			}
		}
		k, err := newKey(pick.suite)
		if err != nil {
			return err
		}
		recv := pick
		s.recv = &recv
		s.send = &sdesLine{tag: pick.tag, suite: pick.suite, key: k}
		return nil
	}
	// As offerer: the answer's line must be one we offered.
	if len(offered) == 0 {
		if len(lines) > 0 {
			return errors.New("sim: answer has crypto but none was offered")
		}
		s.send, s.recv = nil, nil
		return nil
	}
	if len(lines) != 1 {
		return fmt.Errorf("sim: answer has %d crypto lines, want 1", len(lines))
	}
	for _, o := range offered {
		if o.tag == lines[0].tag && o.suite == lines[0].suite {
			send, recv := o, lines[0]
			s.send, s.recv = &send, &recv
			return nil
		}
	}
	return fmt.Errorf("sim: answer chose tag %d %s, not offered", lines[0].tag, lines[0].suite)
}

// keepDTLSLocked takes a new offer or answer on a session keyed by
// DTLS-SRTP: the sim keeps one association per session, so the SDP must
// keep it (RFC 5763 section 5: same fingerprint, same address, roles
// unchanged); anything else is refused. Caller holds s.mu.
func (s *Session) keepDTLSLocked(offer, isDTLS bool, proto string, dt sdpDTLS, remote netip.AddrPort) error {
	d := s.dtls
	switch {
	case !isDTLS:
		return fmt.Errorf("sim: %s without a=fingerprint on a DTLS-SRTP session", proto)
	case !sameFingerprints(dt.fps, d.remote):
		return errors.New("sim: a new DTLS-SRTP fingerprint mid-call (new association not supported)")
	case remote != s.remote:
		return fmt.Errorf("sim: DTLS-SRTP peer moved from %s to %s mid-call", s.remote, remote)
	case dt.setup == d.setup, dt.setup == "holdconn":
		return fmt.Errorf("sim: a=setup:%s conflicts with this peer's %s", dt.setup, d.setup)
	case !offer && dt.setup != "active" && dt.setup != "passive":
		return fmt.Errorf("sim: a=setup:%s in an answer", dt.setup)
	}
	s.proto = proto
	return nil
}

type sdesLine struct {
	tag    int
	suite  string
	key    []byte
	params string
}

func keyLen(suite string) (int, error) {
	switch suite {
	case "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32":
		return 30, nil
	case "AEAD_AES_128_GCM":
		return 28, nil
	case "AEAD_AES_256_GCM":
		return 44, nil
	}
	return 0, fmt.Errorf("sim: unknown suite %s", suite)
}

func newKey(suite string) ([]byte, error) {
	n, err := keyLen(suite)
	if err != nil {
		return nil, err
	}
	k := make([]byte, n)
	_, err = rand.Read(k)
	return k, err
}

func parseCrypto(v string) (sdesLine, error) {
	f := strings.Fields(v)
	if len(f) < 3 || !strings.HasPrefix(f[2], "inline:") {
		return sdesLine{}, fmt.Errorf("sim: bad crypto line")
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil {
		return sdesLine{}, err
	}
	b64, _, _ := strings.Cut(strings.TrimPrefix(f[2], "inline:"), "|")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return sdesLine{}, err
		}
	}
	return sdesLine{tag: tag, suite: f[1], key: key}, nil
}
