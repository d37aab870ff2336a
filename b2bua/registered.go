package b2bua

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// registeredRoute is the route of a call to a user registered through
// parapet: the registrar sent it with parapet's Path URI as its top
// Route, whose user part is the flow's token. It returns a nil route for
// any other call, and ok false when it answered A: the flow is unknown or
// has expired (404), or the flow is gone (430, RFC 5626 section 5.3: its
// connection closed, or, over UDP, its pings unanswered; parapet opens no
// new connection toward the user).
func (c *Call) registeredRoute(req *sip.Request, tx sip.ServerTransaction) (*routeRules, *flow, bool) {
	rh := req.Route()
	if rh == nil || !strings.HasPrefix(rh.Address.User, flowPrefix) {
		return nil, nil, true
	}
	fl := c.env.binds.lookup(rh.Address.User)
	if fl == nil || fl.zone.cfg.Registrar == nil || fl.zone.cfg.Registrar.Zone != c.a.zone.name {
		c.reject(tx, req, 404, reasonPhrase(404), compliance.DispositionRejected,
			"the call names a registration flow that parapet does not know or that has expired")
		return nil, nil, false
	}
	if cn := fl.connection(); fl.transport != policy.TransportUDP && (cn == nil || cn != fl.conn) {
		// Closed, or another connection from the same address and port:
		// not the one the user registered on.
		c.reject(tx, req, 430, reasonPhrase(430), compliance.DispositionFailed,
			"the connection the user registered on is closed (RFC 5626 flow failed)")
		return nil, nil, false
	}
	if fl.failed {
		c.reject(tx, req, 430, reasonPhrase(430), compliance.DispositionFailed,
			"the user registered over UDP stopped answering keep-alive pings (RFC 5626 flow failed)")
		return nil, nil, false
	}
	host, port := fl.remote, 0
	if h, p, err := net.SplitHostPort(fl.remote); err == nil {
		host = h
		port, _ = strconv.Atoi(p)
	}
	return &routeRules{Route: topology.Route{Name: "registered:" + fl.zone.name, From: c.a.zone.name, To: fl.zone.name,
		Target: topology.Target{URI: "registered flow " + fl.token, Secure: strings.EqualFold(fl.contact.Scheme, "sips"),
			Host: host, Port: port, Transport: fl.transport}}}, fl, true
}

// toFlow ties leg B to the registration flow fl (nil: none): the
// connection's local address and, over TLS, the handshake the user made
// when it connected, are leg B's.
func (c *Call) toFlow(fl *flow) {
	if fl == nil {
		return
	}
	b := c.b
	b.flow = fl
	b.local = fl.local
	if ap, err := netip.ParseAddrPort(fl.remote); err == nil {
		b.sig.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if fl.transport == policy.TransportTLS {
		b.sig.TLS = tlsFacts(fl.zone.states.get(fl.remote), b.pol.VerifyPeer)
	}
}

// aimAtFlow addresses leg B's INVITE, req, to the registered user over its
// flow: the Request-URI is the contact it registered, To its address of
// record, and the request goes to the address the user registered from,
// over the connection it registered on (sipgo reuses the pooled connection
// to that address).
func (b *leg) aimAtFlow(req *sip.Request) {
	fl := b.flow
	if fl == nil {
		return
	}
	req.Recipient = *fl.contact.Clone()
	if to := req.To(); to != nil {
		if user, host, ok := strings.Cut(fl.aor, "@"); ok {
			to.Address = sip.Uri{Scheme: to.Address.Scheme, User: user, Host: host}
		}
	}
	req.SetDestination(fl.remote)
	if fl.transport == policy.TransportUDP {
		if ap, err := netip.ParseAddrPort(fl.local); err == nil {
			req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
		}
	}
}

// flowSender sends every request of a leg to a registered user over the
// user's flow (RFC 5626 section 5.3), whatever the user's Contact names
// (behind a NAT, an address parapet cannot reach): to the address the user
// registered from and, over UDP, from the socket the REGISTER came to. It
// is the leg's sipgo client's TxRequester, as legSender is.
type flowSender struct {
	z  *zone
	fl *flow
}

// Request sends req over the flow.
func (s *flowSender) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	// The flow's transport, whatever the Contact (which sipgo built the
	// request toward) says.
	tr := strings.ToUpper(s.fl.transport.String())
	req.SetTransport(tr)
	if via := req.Via(); via != nil {
		via.Transport = tr
	}
	req.SetDestination(s.fl.remote)
	if s.fl.transport == policy.TransportUDP {
		if ap, err := netip.ParseAddrPort(s.fl.local); err == nil {
			req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
		}
	}
	if req.IsAck() {
		return nil, s.z.ua.TransportLayer().WriteMsg(req)
	}
	return s.z.ua.TransactionLayer().Request(ctx, req)
}
