package b2bua

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// zone is one zone's SIP stack.
type zone struct {
	responder
	cfg  topology.Zone
	tls  ZoneTLS
	name string
	ua   *sipgo.UserAgent
	// pins are the addresses chosen for TLS targets' names (pin.go).
	pins   *pins
	srv    *sipgo.Server
	cli    *sipgo.Client
	states *connStates
	// bound is the first bound listener address per transport.
	bound map[policy.Transport]netip.AddrPort
	// udp are the zone's UDP sockets by local address, for the gate's
	// stateless responses.
	udp map[string]*net.UDPConn
	// limited are the zone's TCP and TLS listeners, with their counts.
	limited []*limitListener
	closers []io.Closer
	serve   []func() error
}

func (s *Server) newZone(zc topology.Zone, zt ZoneTLS) (*zone, error) {
	z := &zone{responder: responder{userAgent: zc.UserAgent, log: s.log}, cfg: zc, tls: zt, name: zc.Policy.Name, states: newConnStates(), bound: map[policy.Transport]netip.AddrPort{},
		udp: map[string]*net.UDPConn{}}
	sipLog := slog.New(&redactHandler{h: s.log.Handler(), parseErrors: &s.stats.parseErrors}).With("zone", z.name)
	host := zc.Advertise
	if host == "" && len(zc.Listen) > 0 {
		host = zc.Listen[0].Addr.Addr().String()
	}
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(cmp.Or(zc.UserAgent, "parapet")), // sipgo's default From, which parapet never leaves it to write
		sipgo.WithUserAgentHostname(uriHost(host)),
		// From and To parsed as RFC 3261 has them (syntax.go).
		sipgo.WithUserAgentParser(sip.NewParser(sip.WithHeadersParsers(headerParsers()))),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog),
			sip.WithTransportLayerReadFilter(s.gate(z))),
		// Not sip.WithTransactionLayerTerminateOnConnClose: in sipgo
		// v1.7.x it can run the state machine of a client transaction that
		// is registered but not yet initialised (a connection closed right
		// after its TLS handshake), which panics on a goroutine no recover
		// reaches. Without it, a transaction on a closed connection ends by
		// its timer (Timer B: 32 s), as RFC 3261 has it.
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog),
			// A response matching no transaction (a late retransmission, or
			// one sent to parapet unasked) is dropped (RFC 3261 section
			// 18.1.2); sipgo's default says so at INFO, once each, through
			// its own logger, quoting the reason phrase unredacted.
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				sipLog.Debug("response matching no transaction dropped", "status", r.StatusCode, "source", r.Source())
			})),
	}
	if zt.Client != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(zt.Client))
	}
	z.pins = newPins()
	opts = append(opts, sipgo.WithUserAgentDNSResolver(z.pins.resolver()))
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

// targetRequest is a request of method toward t, its Request-URI
// addressing user at the target (sips: for a secure target, a transport
// parameter for a clear TCP or TLS one), sent over the target's transport.
// It returns the request and the scheme its other URIs take.
func targetRequest(method sip.RequestMethod, t topology.Target, user string) (*sip.Request, string) {
	scheme := "sip"
	if t.Secure {
		scheme = "sips"
	}
	ruri := sip.Uri{Scheme: scheme, User: user, Host: uriHost(t.Host), Port: t.Port}
	if !t.Secure && t.Transport != policy.TransportUDP {
		ruri.UriParams = sip.NewParams()
		ruri.UriParams.Add("transport", t.Transport.String())
	}
	req := sip.NewRequest(method, ruri)
	req.SetTransport(strings.ToUpper(t.Transport.String()))
	return req, scheme
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

// waitPooled waits (briefly) until sipgo knows the UDP listener at addr.
func waitPooled(ua *sipgo.UserAgent, addr string) {
	for range 200 {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Server) bind(z *zone, l topology.Listener) error {
	switch l.Transport {
	case policy.TransportUDP:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(l.Addr))
		if err != nil {
			return err
		}
		z.note(l.Transport, c.LocalAddr().(*net.UDPAddr).AddrPort())
		z.closers = append(z.closers, c)
		z.udp[c.LocalAddr().String()] = c
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
		if z.tls.Server == nil {
			return errors.New("no TLS configuration for a tls listener")
		}
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(l.Addr))
		if err != nil {
			return err
		}
		z.note(l.Transport, ln.Addr().(*net.TCPAddr).AddrPort())
		tl := &tlsListener{Listener: s.limit(z, l.Transport, ln), cfg: z.tls.Server, states: z.states,
			report: func(r handshakeResult) { s.onHandshake(z, r) }}
		z.closers = append(z.closers, ln)
		z.serve = append(z.serve, func() error { return z.srv.ServeTLS(tl) })
	default:
		return fmt.Errorf("unknown transport %s", l.Transport)
	}
	return nil
}

// limit wraps a TCP or TLS listener of zone z in the connection budgets
// of the rules in force. A refused peer is a (folded) connection_limit
// event; a refused outsider is counted in the zone's outsider tally only,
// so that any number of strangers costs a bounded number of records.
func (s *Server) limit(z *zone, t policy.Transport, ln net.Listener) net.Listener {
	sig := policy.SignalingFacts{Transport: t}
	rules := func(ip netip.Addr) connRules {
		r := s.rules.Load()
		zr := r.zones[z.name]
		return connRules{peer: zr.pol.AdmitsSource(ip), drop: zr.outsiders == topology.RefusalDrop, budget: budgetOf(r.limits)}
	}
	refuse := func(ip netip.Addr, remote string, peer bool, why connRefusal) {
		s.stats.connRefused.Add(1)
		if !peer {
			s.tallyOutsider(z, ip, "", fateConnection)
			return
		}
		s.connEvent(z, compliance.EventConnectionLimit, sig, remote, func(e *compliance.ConnEvent) {
			e.Local = ln.Addr().String()
			e.Error = why.String()
		})
	}
	ll := newLimitListener(ln, rules, refuse, func(err error) {
		if n, ok := s.events.allow("accept|"+ln.Addr().String(), time.Now()); ok {
			s.log.Warn("accepting connections failed; retrying", "zone", z.name, "listener", ln.Addr().String(),
				"error", err, "folded", n)
		}
	})
	z.limited = append(z.limited, ll)
	return ll
}

func (z *zone) note(t policy.Transport, a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if _, ok := z.bound[t]; !ok {
		z.bound[t] = a
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
