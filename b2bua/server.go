package b2bua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// Server is parapet's B2BUA: one sipgo user agent per zone, and the calls
// between them.
type Server struct {
	cfg    Config
	log    *slog.Logger
	zones  []*zone
	byName map[string]*zone
	pool   *media.PortPool
	rec    *recorder
	events *eventFolder // folds floods of refusals, in records and logs alike
	stats  stats
	// dtls is parapet's certificate for DTLS-SRTP, one per process; peers
	// check it against the fingerprint in parapet's SDP.
	dtls *media.DTLSCertificate
	// rules are the policies, routes and media timeout new calls get.
	rules atomic.Pointer[rules]

	// reg books the live calls, their legs, route slots and goroutines.
	reg *registry
	// startMu guards started against a second Start.
	startMu sync.Mutex

	// evMu orders connection events against the final drain at shutdown:
	// an event being recorded holds it shared, Shutdown exclusively, so an
	// event is either in the drain or, after it (evDone), written alone.
	evMu     sync.RWMutex
	evDone   bool
	stopping chan struct{} // closed when Shutdown starts
	stopOnce sync.Once
	serveWG  sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
	started  bool
}

// zone is one zone's SIP stack.
type zone struct {
	cfg    Zone
	name   string
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	cli    *sipgo.Client
	states *connStates
	// bound is the first bound listener address per transport.
	bound   map[policy.Transport]netip.AddrPort
	closers []io.Closer
	serve   []func() error
}

// SetProcessLogger routes the few messages sipgo logs through its
// package-wide default logger (connection reference counting, and whole
// messages if its SIP debugging were ever switched on) through parapet's
// redacting handler. It sets a process global: call it once, at start,
// before any Server exists.
func SetProcessLogger(l *slog.Logger) {
	sip.SetDefaultLogger(slog.New(&redactHandler{h: l.Handler()}))
}

// New validates cfg and builds the server. Nothing is bound until Start.
func New(cfg Config) (*Server, error) {
	if cfg.Sink == nil {
		return nil, errors.New("b2bua: no compliance sink")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "parapet"
	}
	if cfg.Media.Timeout <= 0 {
		cfg.Media.Timeout = 30 * time.Second
	}
	pool, err := media.NewPortPool(cfg.Media.Address, cfg.Media.PortMin, cfg.Media.PortMax)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		byName:   map[string]*zone{},
		pool:     pool,
		reg:      newRegistry(),
		stopping: make(chan struct{}),
	}
	if s.dtls, err = media.NewDTLSCertificate(); err != nil {
		return nil, fmt.Errorf("b2bua: DTLS-SRTP certificate: %w", err)
	}
	s.rules.Store(newRules(&cfg))
	s.rec = newRecorder(cfg.Sink, s.log, &s.stats)
	s.rec.journal = cfg.Journal
	s.events = newEventFolder(10 * time.Second)
	for i := range cfg.Zones {
		zc := cfg.Zones[i]
		if _, dup := s.byName[zc.Policy.Name]; dup {
			return nil, fmt.Errorf("b2bua: duplicate zone %q", zc.Policy.Name)
		}
		z, err := s.newZone(zc)
		if err != nil {
			return nil, err
		}
		s.zones = append(s.zones, z)
		s.byName[z.name] = z
	}
	for _, r := range cfg.Routes {
		if s.byName[r.From] == nil || s.byName[r.To] == nil {
			return nil, fmt.Errorf("b2bua: route %q names an unknown zone", r.Name)
		}
	}
	return s, nil
}

func (s *Server) newZone(zc Zone) (*zone, error) {
	z := &zone{cfg: zc, name: zc.Policy.Name, states: newConnStates(), bound: map[policy.Transport]netip.AddrPort{}}
	sipLog := slog.New(&redactHandler{h: s.log.Handler(), parseErrors: &s.stats.parseErrors}).With("zone", z.name)
	host := zc.Advertise
	if host == "" && len(zc.Listen) > 0 {
		host = zc.Listen[0].Addr.Addr().String()
	}
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(s.cfg.UserAgent),
		sipgo.WithUserAgentHostname(uriHost(host)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		// Not sip.WithTransactionLayerTerminateOnConnClose: in sipgo
		// v1.7.x it can run the state machine of a client transaction that
		// is registered but not yet initialised (a connection closed right
		// after its TLS handshake), which panics on a goroutine no recover
		// reaches. Without it, a transaction on a closed connection ends by
		// its timer (Timer B: 32 s), as RFC 3261 has it.
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
	}
	if zc.ClientTLS != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(zc.ClientTLS))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", z.name, err)
	}
	z.ua = ua
	if z.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("zone %q: %w", z.name, err)
	}
	copts := []sipgo.ClientOption{sipgo.WithClientLogger(sipLog)}
	if zc.Advertise != "" {
		copts = append(copts, sipgo.WithClientHostname(zc.Advertise))
	}
	if z.cli, err = sipgo.NewClient(ua, copts...); err != nil {
		return nil, fmt.Errorf("zone %q: %w", z.name, err)
	}
	s.register(z)
	return z, nil
}

// host is what parapet writes as its host in this zone's headers.
func (z *zone) host(t policy.Transport) string {
	if z.cfg.Advertise != "" {
		return uriHost(z.cfg.Advertise)
	}
	if a, ok := z.bound[t]; ok {
		return uriHost(a.Addr().String())
	}
	for _, a := range z.bound {
		return uriHost(a.Addr().String())
	}
	return "127.0.0.1"
}

// uriHost writes a host as SIP URIs and Via headers need it: an IPv6
// literal in brackets (RFC 3261 section 25.1, IPv6reference).
func uriHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() && !a.Is4In6() {
		return "[" + a.String() + "]"
	}
	return h
}

// contact is parapet's Contact on a leg of this zone over transport t.
func (z *zone) contact(t policy.Transport, secure bool) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", Host: z.host(t)}
	if secure {
		u.Scheme = "sips"
	}
	if a, ok := z.bound[t]; ok {
		u.Port = int(a.Port())
	}
	if t != policy.TransportUDP && !secure {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.String())
	}
	return sip.ContactHeader{Address: u}
}

// Start binds every listener of every zone and starts serving. A bind error
// is returned before anything is served.
func (s *Server) Start(ctx context.Context) error {
	s.startMu.Lock()
	if s.started {
		s.startMu.Unlock()
		return errors.New("b2bua: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.startMu.Unlock()

	for _, z := range s.zones {
		for _, l := range z.cfg.Listen {
			if err := s.bind(z, l); err != nil {
				s.closeListeners()
				return fmt.Errorf("zone %q: listen %s: %w", z.name, l, err)
			}
		}
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		t := time.NewTicker(s.events.every)
		defer t.Stop()
		var refresh <-chan time.Time
		if s.cfg.Journal != nil {
			every := s.cfg.JournalRefresh
			if every <= 0 {
				every = DefaultJournalRefresh
			}
			rt := time.NewTicker(every)
			defer rt.Stop()
			refresh = rt.C
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				s.drainEvents(false)
			case <-refresh:
				s.refreshJournal()
			}
		}
	}()
	for _, z := range s.zones {
		for _, serve := range z.serve {
			s.serveWG.Add(1)
			go func() {
				defer s.serveWG.Done()
				if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
					s.log.Error("sip listener stopped", "zone", z.name, "error", err)
				}
			}()
		}
		// sipgo registers a UDP listener in its connection pool from the
		// serving goroutine; requests sent from that socket need it there.
		if a, ok := z.bound[policy.TransportUDP]; ok {
			waitPooled(z.ua, a.String())
		}
	}
	return nil
}

// waitPooled waits (briefly) until sipgo knows the UDP listener at addr.
func waitPooled(ua *sipgo.UserAgent, addr string) {
	for range 200 {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Server) bind(z *zone, l Listener) error {
	switch l.Transport {
	case policy.TransportUDP:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(l.Addr))
		if err != nil {
			return err
		}
		z.note(l.Transport, c.LocalAddr().(*net.UDPAddr).AddrPort())
		z.closers = append(z.closers, c)
		z.serve = append(z.serve, func() error { return z.srv.ServeUDP(c) })
	case policy.TransportTCP:
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(l.Addr))
		if err != nil {
			return err
		}
		z.note(l.Transport, ln.Addr().(*net.TCPAddr).AddrPort())
		z.closers = append(z.closers, ln)
		ll := s.limit(z, l.Transport, ln)
		z.serve = append(z.serve, func() error { return z.srv.ServeTCP(ll) })
	case policy.TransportTLS:
		if z.cfg.ServerTLS == nil {
			return errors.New("no TLS configuration for a tls listener")
		}
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(l.Addr))
		if err != nil {
			return err
		}
		z.note(l.Transport, ln.Addr().(*net.TCPAddr).AddrPort())
		tl := &tlsListener{Listener: s.limit(z, l.Transport, ln), cfg: z.cfg.ServerTLS, states: z.states,
			report: func(r handshakeResult) { s.onHandshake(z, r) }}
		z.closers = append(z.closers, ln)
		z.serve = append(z.serve, func() error { return z.srv.ServeTLS(tl) })
	default:
		return fmt.Errorf("unknown transport %s", l.Transport)
	}
	return nil
}

// limit wraps a TCP or TLS listener of zone z in its connection limits;
// refused connections become (rate-limited) connection events.
func (s *Server) limit(z *zone, t policy.Transport, ln net.Listener) net.Listener {
	sig := policy.SignalingFacts{Transport: t}
	return newLimitListener(ln, func(ip netip.Addr) bool { return s.rules.Load().zone(z.name).AdmitsSource(ip) },
		func(remote, why string) {
			s.stats.connRefused.Add(1)
			s.connEvent(z, compliance.EventConnectionLimit, sig, remote, func(e *compliance.ConnEvent) {
				e.Local = ln.Addr().String()
				e.Error = why
			})
		},
		func(err error) {
			if n, ok := s.events.allow("accept|"+ln.Addr().String(), time.Now()); ok {
				s.log.Warn("accepting connections failed; retrying", "zone", z.name, "listener", ln.Addr().String(),
					"error", err, "folded", n)
			}
		})
}

func (z *zone) note(t policy.Transport, a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if _, ok := z.bound[t]; !ok {
		z.bound[t] = a
	}
}

// Addrs returns the bound listener addresses of a zone, by transport.
func (s *Server) Addrs(zoneName string) map[policy.Transport]netip.AddrPort {
	z := s.byName[zoneName]
	if z == nil {
		return nil
	}
	out := map[policy.Transport]netip.AddrPort{}
	for k, v := range z.bound {
		out[k] = v
	}
	return out
}

// Ready reports whether the server accepts calls: started, not draining,
// and the compliance log writable.
func (s *Server) Ready() bool {
	return s.started && !s.isStopping() && s.rec.healthy() && s.journalHealthy()
}

// Shutdown stops taking calls, ends live calls with BYE (CANCEL or 503 for
// those not yet answered), waits for their records, then closes listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	for _, c := range s.reg.live(nil) {
		c.hangup(compliance.DispositionShutdown, "shutdown")
	}
	done := make(chan struct{})
	go func() { s.reg.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %d calls still ending: %w", s.reg.count(), ctx.Err())
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.closeListeners()
	s.serveWG.Wait()
	for _, z := range s.zones {
		z.ua.Close()
	}
	s.evMu.Lock()
	s.evDone = true
	s.drainEvents(true)
	s.evMu.Unlock()
	s.rec.flush()
	return err
}

// isStopping reports whether Shutdown has begun: no new calls are taken.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

func (s *Server) closeListeners() {
	for _, z := range s.zones {
		for _, c := range z.closers {
			c.Close()
		}
		z.closers = nil
	}
}

// register installs the request handlers of a zone. Every handler runs
// under safe: a bug in handling one request must not take down the process
// and every call in it.
func (s *Server) register(z *zone) {
	on := func(m sip.RequestMethod, h sipgo.RequestHandler) { z.srv.OnRequest(m, s.safe(h)) }
	on(sip.INVITE, func(req *sip.Request, tx sip.ServerTransaction) {
		if to := req.To(); to != nil && to.Params.Has("tag") {
			s.inDialog(z, req, tx)
			return
		}
		s.handleInvite(z, req, tx)
	})
	on(sip.ACK, func(req *sip.Request, tx sip.ServerTransaction) { s.inDialog(z, req, tx) })
	on(sip.PRACK, func(req *sip.Request, tx sip.ServerTransaction) {
		if to := req.To(); to != nil && to.Params.Has("tag") {
			s.inDialog(z, req, tx)
			return
		}
		if s.admit(z, req, tx) {
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		}
	})
	on(sip.BYE, func(req *sip.Request, tx sip.ServerTransaction) { s.inDialog(z, req, tx) })
	on(sip.INFO, func(req *sip.Request, tx sip.ServerTransaction) { s.inDialog(z, req, tx) })
	on(sip.CANCEL, func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL matching a live INVITE transaction is answered by sipgo's
		// transaction layer; one that reaches us matched nothing.
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
	})
	on(sip.OPTIONS, func(req *sip.Request, tx sip.ServerTransaction) {
		if to := req.To(); to != nil && to.Params.Has("tag") {
			s.inDialog(z, req, tx)
			return
		}
		if !s.admit(z, req, tx) {
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		s.commonHeaders(res)
		s.send(tx, res)
	})
	for _, m := range []sip.RequestMethod{sip.REGISTER, sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY,
		sip.REFER, sip.UPDATE, sip.PUBLISH} {
		on(m, func(req *sip.Request, tx sip.ServerTransaction) {
			if to := req.To(); to != nil && to.Params.Has("tag") {
				s.respond(tx, req, 501, "Not Implemented", "")
				return
			}
			if !s.admit(z, req, tx) {
				return
			}
			s.respond(tx, req, 405, "Method Not Allowed", "")
		})
	}
}

// safe recovers a panicking handler: the request gets 500, the process
// and its other calls go on, and the panic is logged. It first refuses
// requests that lack what every SIP request must carry.
func (s *Server) safe(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("request handler panicked", "method", string(req.Method), "panic", fmt.Sprint(p))
				if !req.IsAck() {
					s.respond(tx, req, 500, "Server Internal Error", "")
				}
			}
		}()
		if code, why := malformedRequest(req); code != 0 {
			s.stats.parseErrors.Add(1)
			if !req.IsAck() {
				s.respond(tx, req, code, reasonPhrase(code), why)
			}
			return
		}
		h(req, tx)
	}
}

// malformedRequest checks what RFC 3261 section 8.1.1 requires of every
// request, which sipgo's parser lets through: the version, the To, From,
// Call-ID and CSeq headers, and a CSeq naming the request's method. It
// returns the status to answer with, or 0.
func malformedRequest(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "only SIP/2.0 is supported"
	}
	var missing []string
	if req.To() == nil {
		missing = append(missing, "To")
	}
	if req.From() == nil {
		missing = append(missing, "From")
	}
	if req.CallID() == nil || string(*req.CallID()) == "" {
		missing = append(missing, "Call-ID")
	}
	cs := req.CSeq()
	if cs == nil {
		missing = append(missing, "CSeq")
	}
	if len(missing) > 0 {
		return 400, "missing " + strings.Join(missing, ", ")
	}
	if cs.MethodName != req.Method {
		return 400, fmt.Sprintf("CSeq method %s does not match the request's %s", cs.MethodName, req.Method)
	}
	return 0, ""
}

// allowMethods is what parapet handles. UPDATE is left out on purpose: a
// session-timer refresher (RFC 4028) then uses re-INVITE, which parapet
// answers; PRACK is handled toward a caller that requires 100rel.
const allowMethods = "INVITE, ACK, CANCEL, BYE, PRACK, INFO, OPTIONS"

func (s *Server) commonHeaders(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
}

// respond sends a final response built from req. warning, when set, becomes
// a Warning header (RFC 3261 section 20.43) so the peer's engineer sees why.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason, warning string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0" // sipgo echoes the request's, even in a 505
	s.commonHeaders(res)
	if warning != "" {
		res.AppendHeader(sip.NewHeader("Warning", warningValue(warning)))
	}
	s.send(tx, res)
}

func (s *Server) send(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "status", res.StatusCode, "error", err)
	}
}

// warningValue formats a Warning header: 399 is the miscellaneous warning.
func warningValue(text string) string {
	text = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return '\''
		}
		return r
	}, text)
	if len(text) > 200 {
		text = text[:200]
	}
	return fmt.Sprintf(`399 parapet "%s"`, text)
}

// signaling describes how req reached parapet; pol is the zone's policy.
func (z *zone) signaling(req *sip.Request, pol *policy.Zone) policy.SignalingFacts {
	f := policy.SignalingFacts{}
	f.Transport, _ = policy.ParseTransport(req.Transport())
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		f.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if f.Transport == policy.TransportTLS {
		f.TLS = tlsFacts(z.states.get(req.Source()), pol.VerifyPeer)
	}
	return f
}

// admit applies the admission policy to a request outside any call. It
// answers 403 and records an event when the source is refused.
func (s *Server) admit(z *zone, req *sip.Request, tx sip.ServerTransaction) bool {
	pol := s.rules.Load().zone(z.name)
	sig := z.signaling(req, pol)
	d := policy.Evaluate(policy.Input{Stage: policy.StageAdmission, Zone: pol, Signaling: sig,
		Admitted: pol.AdmitsSource(sig.Source.Addr())})
	if d.Proceed() {
		return true
	}
	s.respond(tx, req, d.Status, "Forbidden", d.Reason)
	s.connEvent(z, compliance.EventSourceRefused, sig, req.Source(), func(e *compliance.ConnEvent) {
		e.Method = string(req.Method)
		e.SIPStatus = d.Status
		e.Decision = &d
	})
	return false
}

// inDialog routes a request with a To tag to the leg it belongs to.
func (s *Server) inDialog(z *zone, req *sip.Request, tx sip.ServerTransaction) {
	l := s.reg.lookup(req)
	if l == nil {
		if req.IsAck() {
			return // a stray ACK gets no response (RFC 3261 section 17.2.3)
		}
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	l.call.inDialog(l, req, tx)
}

func (s *Server) onHandshake(z *zone, r handshakeResult) {
	if r.Err == nil {
		s.stats.tlsHandshakes.Add(1)
		return
	}
	// Held from the count on: a refusal counted is in the records too.
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.stats.tlsRefused.Add(1)
	d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: s.rules.Load().zone(z.name),
		Handshake: policy.HandshakeFacts{ClientMaxVersion: r.ClientMax, Error: r.Err.Error()}})
	sig := policy.SignalingFacts{Transport: policy.TransportTLS}
	s.log.Info("tls handshake refused", "zone", z.name, "remote", r.Remote,
		"client_max", r.ClientMax.String(), "sni", r.SNI, "error", r.Err)
	s.connEventLocked(z, compliance.EventTLSRefused, sig, r.Remote, func(e *compliance.ConnEvent) {
		e.Local = r.Local
		e.ClientMaxVersion = r.ClientMax.String()
		e.SNI = r.SNI
		e.Error = r.Err.Error()
		e.Decision = &d
		if c := certFromError(r.Err); c != nil {
			ci := certInfo(certFacts(c))
			e.PeerCert = ci
		}
	})
}

// recordRefusedInvite reports whether an INVITE refused because its source
// is outside the zone's peers gets a call record: the first from a source
// in each interval does.
func (s *Server) recordRefusedInvite(a *leg) bool {
	_, ok := s.events.allow(a.zone.name+"|invite-refused|"+a.sig.Source.Addr().String(), time.Now())
	return ok
}

// connEvent writes a connection-event record, folding floods of alike
// events into one record per interval (see eventFolder).
func (s *Server) connEvent(z *zone, event string, sig policy.SignalingFacts, remote string, fill func(*compliance.ConnEvent)) {
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.connEventLocked(z, event, sig, remote, fill)
}

// connEventLocked is connEvent with evMu held (shared).
func (s *Server) connEventLocked(z *zone, event string, sig policy.SignalingFacts, remote string, fill func(*compliance.ConnEvent)) {
	e := &compliance.ConnEvent{Event: event, Zone: z.name, Transport: sig.Transport.String(),
		Remote: remote, PolicyHash: s.rules.Load().hash}
	fill(e)
	e.Error = recordText(e.Error, nil)
	// After the final drain nothing would write a folded count: no folding.
	if !s.evDone {
		if e = s.events.fold(e, time.Now()); e == nil {
			return
		}
	}
	s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
}

// drainEvents writes the folded-event counts of kinds that went quiet
// (all of them when all is set, at shutdown).
func (s *Server) drainEvents(all bool) {
	for _, e := range s.events.drain(time.Now(), all) {
		s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
	}
}

// Stats is a snapshot of the server's counters for metrics.
type Stats struct {
	CallsActive   int
	Calls         map[string]uint64 // by disposition
	TLSHandshakes uint64
	TLSRefused    uint64
	// ConnsRefused counts TCP/TLS connections closed at accept by the
	// connection limits.
	ConnsRefused uint64
	// ParseErrors counts datagrams and stream reads that were not SIP
	// (dropped; a stream connection is closed).
	ParseErrors     uint64
	Records         uint64
	RecordFailures  uint64
	RecordBacklog   int
	MediaPortsInUse int
	MediaPorts      int
	// Media totals over every call since the start, live calls included
	// (each counter only grows): packets accepted from peers, and packets
	// dropped by reason (see media.Counters).
	PacketsRelayed uint64
	AuthFailures   uint64
	Replays        uint64
	WrongSource    uint64
	Malformed      uint64
	Unprotected    uint64
	STUN           uint64
	DTLS           uint64
}

type stats struct {
	tlsHandshakes, tlsRefused atomic.Uint64
	records, recordFailures   atomic.Uint64
	connRefused               atomic.Uint64
	parseErrors               atomic.Uint64
	mu                        sync.Mutex
	calls                     map[string]uint64
}

func (st *stats) call(disposition string) {
	st.mu.Lock()
	if st.calls == nil {
		st.calls = map[string]uint64{}
	}
	st.calls[disposition]++
	st.mu.Unlock()
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	m, active := s.reg.media()
	st := Stats{
		CallsActive:     active,
		Calls:           map[string]uint64{},
		TLSHandshakes:   s.stats.tlsHandshakes.Load(),
		TLSRefused:      s.stats.tlsRefused.Load(),
		ConnsRefused:    s.stats.connRefused.Load(),
		ParseErrors:     s.stats.parseErrors.Load(),
		Records:         s.stats.records.Load(),
		RecordFailures:  s.stats.recordFailures.Load(),
		RecordBacklog:   s.rec.backlog(),
		MediaPortsInUse: s.pool.InUse() * 2,
		MediaPorts:      s.pool.Pairs() * 2,
		PacketsRelayed:  m.PacketsIn,
		AuthFailures:    m.AuthFailures,
		Replays:         m.Replays,
		WrongSource:     m.WrongSource,
		Malformed:       m.Malformed,
		Unprotected:     m.Unprotected,
		STUN:            m.STUN,
		DTLS:            m.DTLS,
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.calls {
		st.Calls[k] = v
	}
	s.stats.mu.Unlock()
	return st
}
