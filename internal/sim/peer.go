// Package sim provides simulated SIP peers — a PBX phone on UDP with plain
// RTP, a carrier on TLS with SDES-SRTP or DTLS-SRTP — that exchange real
// packets with parapet over loopback. parapet's in-process end-to-end tests,
// the `parapet demo` command and the call benchmarks use it.
//
// sim deliberately does not use parapet's media package: it writes its SDP
// by hand, parses answers with pion/sdp, agrees DTLS-SRTP keys with
// pion/dtls and protects media with pion/srtp, so a test through sim checks
// parapet against an independent peer.
package sim

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
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
	// AlsoTCP makes a udp peer listen on TCP too, on the same port (a
	// target that allows TCP, RFC 3261 section 18.1.1). Its calls and its
	// Contact stay on UDP.
	AlsoTCP bool
	// Registrar, when set, makes the peer a registrar (registrar.go).
	Registrar *Registrar
	// ExtraFormats adds this many dynamic payload formats (96 up), each
	// with an a=rtpmap and a long a=fmtp, to every SDP the peer writes:
	// about 95 bytes each, for messages over the 1,300 bytes UDP takes
	// without fragmenting (a phone listing many codecs). Media still flows
	// as PCMU.
	ExtraFormats int
}

// Answer is how a peer answers an INVITE.
type Answer struct {
	// Status, when not 0 or 200, rejects the call with it.
	Status int
	// SessionExpires, when set, answers with a session timer (RFC 4028)
	// of that many seconds refreshed by the caller (refresher=uac); the
	// peer answers the caller's refreshes (re-INVITEs) as any re-INVITE.
	SessionExpires int
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
	// Rel100, with Early, sends that 183 reliably when the INVITE
	// supports 100rel (RFC 3262) and waits for its PRACK; the peer then
	// answers UPDATEs in the early dialog (early.go).
	Rel100 bool
	// Hold, when set, holds the 2xx until it is closed (or the call is
	// cancelled): the early dialog lasts as long as a test needs.
	Hold <-chan struct{}
	// EarlyUpdate, with Early and Rel100, has the callee send an UPDATE
	// with a new offer in its early dialog once its reliable 183 is
	// PRACKed (early.go, calleeUpdate), before Hold and ringing.
	EarlyUpdate *EarlyUpdate
	// Headers are added as they are to the peer's 18x and 2xx
	// (P-Asserted-Identity, Privacy: the callee's identity, RFC 3325
	// section 9.1).
	Headers []sip.Header
	// Digest, when set, challenges every INVITE (401) and accepts only
	// these credentials.
	Digest *Credentials
	// DigestInDialog, with Digest, challenges the requests inside the
	// dialog too (re-INVITE, INFO, BYE).
	DigestInDialog bool
	// DigestProxy, with Digest, challenges with 407 and
	// Proxy-Authenticate (and reads Proxy-Authorization) instead of 401.
	DigestProxy bool
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
	// RejectSRTP answers 488 to any offer of SRTP (RTP/SAVP, RTP/SAVPF,
	// UDP/TLS/RTP/SAVP): a trunk that carries plain RTP only.
	RejectSRTP bool
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
	tcpLn     io // the TCP listener of a udp peer (AlsoTCP)
	incoming  chan *Session
	wire      wireTap
	invites   atomic.Int64 // initial INVITEs received
	cancelled atomic.Int64 // INVITEs that ended while ringing (CANCEL)
	cert      *dtlsCert    // for DTLS-SRTP; one per peer
	reg       *registrar   // nil unless Config.Registrar

	mu       sync.Mutex
	sessions map[string]*Session // by Call-ID
	acks     map[string][][]byte // bodies of the ACKs received, by Call-ID
	received map[string]int64    // requests received, by "METHOD/TRANSPORT"
	wg       sync.WaitGroup
	done     chan struct{}
}

type io interface{ Close() error }

// Product is what the peer calls itself in its User-Agent and Server
// headers: "sim-<name>/1.0 (parapet test peer)".
func (p *Peer) Product() string { return "sim-" + p.cfg.Name + "/1.0 (parapet test peer)" }

// New creates a peer and binds its listener.
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
		sessions: map[string]*Session{}, acks: map[string][][]byte{}, received: map[string]int64{},
		done: make(chan struct{})}
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
	p.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.count(req)
		p.onInvite(req, tx)
	})
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		p.count(req)
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
		p.count(req)
		if !p.authorizedInDialog(req, tx) {
			return
		}
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
	p.srv.OnNotify(p.onNotify)
	p.srv.OnPrack(p.onPrack)
	p.srv.OnUpdate(p.onUpdate)
	p.srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		p.count(req)
		if !p.authorizedInDialog(req, tx) {
			return
		}
		if s := p.session(req); s != nil {
			s.infos.Add(1)
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if cfg.Registrar != nil {
		p.reg = &registrar{cfg: *cfg.Registrar, nonces: map[string]bool{}}
		p.srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			p.count(req)
			p.onRegister(req, tx)
		})
	}
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
		c, l, err := p.listenUDP()
		if err != nil {
			return err
		}
		p.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
		p.ln = c
		p.serve(func() error { return p.srv.ServeUDP(c) })
		if l != nil {
			p.tcpLn = l
			p.serve(func() error { return p.srv.ServeTCP(l) })
		}
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

// listenUDP binds a udp peer's socket and, with AlsoTCP, a TCP listener
// on the same port: when the port is the system's choice and taken on
// TCP, it tries another (a few times).
func (p *Peer) listenUDP() (*net.UDPConn, *net.TCPListener, error) {
	for try := 0; ; try++ {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(p.cfg.Listen))
		if err != nil || !p.cfg.AlsoTCP {
			return c, nil, err
		}
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort()))
		if err == nil {
			return c, l, nil
		}
		c.Close()
		if p.cfg.Listen.Port() != 0 || try == 20 {
			return nil, nil, err
		}
	}
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
	if p.tcpLn != nil {
		p.tcpLn.Close()
	}
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

// Received counts the requests of method the peer received over
// transport ("UDP", "TCP", "TLS"), retransmissions included.
func (p *Peer) Received(method, transport string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[method+"/"+transport]
}

func (p *Peer) count(req *sip.Request) {
	p.mu.Lock()
	p.received[string(req.Method)+"/"+req.Transport()]++
	p.mu.Unlock()
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
