package b2bua

import (
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// flowPrefix starts every flow token, so that a Route naming parapet with
// one is told from other users' URIs.
const flowPrefix = "flow-"

// flow is a user's registration through parapet: the connection (zone,
// transport, remote and local address) a REGISTER came over, for one
// address of record, and the binding the registrar granted on it. Its
// token is in the Path parapet gave the registrar, so the registrar's
// calls to the user name it.
type flow struct {
	token string
	// key is zone|transport|remote|aor, or, for a user agent that asks
	// for outbound (RFC 5626: a Contact with +sip.instance and reg-id),
	// zone|aor|instance|reg-id: the binding is the instance's flow for
	// that reg-id, whichever connection it last registered over.
	key string
	// outbound: the REGISTER asked for outbound; parapet's Path URI then
	// carries the ob parameter (RFC 5626 section 5.1).
	outbound  bool
	zone      *zone
	transport policy.Transport
	remote    string // the phone's address, as the connection has it
	local     string // parapet's
	// conn is the TCP or TLS connection the last granted REGISTER came
	// over (nil over UDP): a call from the user must come over this very
	// one (callers.go).
	conn    sip.Connection
	aor     string // user@host of the To URI
	contact sip.Uri
	// expires is when the binding the registrar granted runs out; until
	// a 2xx grants one, when the flow is forgotten unless one does.
	expires time.Time
	granted bool
	// recorded is the security facts of the last registration record.
	recorded *compliance.Registration
	// A UDP flow's pings (flowping.go): when the last was sent, whether
	// one is under way, how many in a row went unanswered, and whether
	// that makes the flow failed.
	lastPing time.Time
	pinging  bool
	missed   int
	failed   bool
}

// bindings is the table of flows, by token and by what identifies one.
type bindings struct {
	log     *slog.Logger
	mu      sync.Mutex
	byToken map[string]*flow
	byKey   map[string]*flow
	// byUDP holds the granted flows over UDP, by zone|remote: the
	// addresses whose keep-alives parapet answers (keepalive.go). A phone
	// with several lines registers each address of record from one
	// socket: one flow each, alive or not together.
	byUDP map[string][]*flow
}

func newBindings(log *slog.Logger) *bindings {
	return &bindings{log: log, byToken: map[string]*flow{}, byKey: map[string]*flow{}, byUDP: map[string][]*flow{}}
}

// flowKey is what identifies the flow req, a REGISTER from zone z over a
// connection described by sig, belongs to (see flow.key), and whether it
// asks for outbound of parapet: only as its first hop (one Via, the user
// agent's, RFC 5626 section 5.1); behind another proxy the flow is that
// proxy's connection.
func flowKey(z *zone, req *sip.Request, sig policy.SignalingFacts, aor string) (string, bool) {
	if ct := req.Contact(); ct != nil && !ct.Address.Wildcard && len(req.GetHeaders("Via")) == 1 {
		inst, _ := ct.Params.Get("+sip.instance")
		regID, _ := ct.Params.Get("reg-id")
		if inst != "" && regID != "" {
			return strings.Join([]string{z.name, aor, inst, regID}, "|"), true
		}
	}
	return strings.Join([]string{z.name, sig.Transport.String(), req.Source(), aor}, "|"), false
}

// flowFor returns the flow req came over (the same token for every
// REGISTER of one address of record over one connection, or of one
// outbound instance and reg-id), made if new. An outbound instance that
// registers over another connection gets a new flow with its binding's
// token, which replaces the old one once the registrar grants it.
func (b *bindings) flowFor(z *zone, req *sip.Request, sig policy.SignalingFacts) *flow {
	aor := ""
	if to := req.To(); to != nil {
		aor = to.Address.User + "@" + to.Address.Host
	}
	key, outbound := flowKey(z, req, sig, aor)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(time.Now())
	old, ok := b.byKey[key]
	if ok && old.transport == sig.Transport && old.remote == req.Source() {
		return old
	}
	fl := &flow{token: flowPrefix + newID(), key: key, outbound: outbound, zone: z, transport: sig.Transport,
		remote: req.Source(), aor: aor, expires: time.Now().Add(2 * relayTimeout)}
	if conn := z.pooled(strings.ToLower(sig.Transport.String()), req.Source()); conn != nil {
		if la := conn.LocalAddr(); la != nil {
			fl.local = la.String()
		}
	}
	if fl.local == "" && req.Destination() != "" {
		fl.local = req.Destination()
	}
	if ok {
		fl.token = old.token
		return fl
	}
	b.byKey[key] = fl
	b.byToken[fl.token] = fl
	return fl
}

// sweepLocked forgets flows whose binding ran out, and those no 2xx
// granted one within twice relayTimeout (a REGISTER challenged, whose
// answer never came). Caller holds b.mu.
func (b *bindings) sweepLocked(now time.Time) {
	for _, fl := range b.byKey {
		if now.After(fl.expires) {
			b.forgetLocked(fl)
		}
	}
}

// granted keeps what the registrar's 2xx, res, granted the flow's contact:
// its expiry, or its removal. A new binding, or one whose security facts
// changed, is recorded.
func (b *bindings) granted(s *Server, fl *flow, req *sip.Request, res *sip.Response) {
	ct := req.Contact()
	secs := grantedExpiry(req, res)
	b.mu.Lock()
	if ct == nil {
		// A query (RFC 3261 section 10.2.3): the bindings are as they were.
		b.mu.Unlock()
		return
	}
	if secs <= 0 {
		gone := b.removedLocked(fl, ct.Address.Wildcard)
		b.mu.Unlock()
		for _, g := range gone {
			s.recordRegistration(g, g.recorded, 0)
		}
		return
	}
	fl.contact = *ct.Address.Clone()
	fl.expires = time.Now().Add(time.Duration(secs) * time.Second)
	fl.granted = true
	fl.lastPing = time.Now()
	fl.conn = fl.connection()
	b.heardLocked(fl)
	if old := b.byToken[fl.token]; old != nil && old != fl {
		b.forgetLocked(old) // the outbound instance's flow moved
	}
	b.byToken[fl.token] = fl // again, if swept while the registrar took its time
	b.byKey[fl.key] = fl
	if fl.transport == policy.TransportUDP {
		if u := fl.zone.name + "|" + fl.remote; !slices.Contains(b.byUDP[u], fl) {
			b.byUDP[u] = append(b.byUDP[u], fl)
		}
	}
	reg := s.registrationFacts(fl, req, secs)
	changed := fl.recorded == nil || !sameFacts(fl.recorded, reg)
	if changed {
		fl.recorded = reg
	}
	b.mu.Unlock()
	if changed {
		s.recordRegistration(fl, reg, secs)
	}
}

// removedLocked forgets fl, whose binding the registrar removed, and with
// wildcard (Contact: *, which removes every binding of the address of
// record, RFC 3261 section 10.2.2) the address of record's other flows,
// an outbound instance's over another connection among them. It returns
// those that were recorded registered, for their removal to be recorded.
// Caller holds b.mu.
func (b *bindings) removedLocked(fl *flow, wildcard bool) []*flow {
	gone := []*flow{fl}
	if old := b.byToken[fl.token]; old != nil && old != fl {
		gone = append(gone, old)
	}
	if wildcard {
		for _, o := range b.byToken {
			if o.zone == fl.zone && o.aor == fl.aor && !slices.Contains(gone, o) {
				gone = append(gone, o)
			}
		}
	}
	var recorded []*flow
	for _, g := range gone {
		b.forgetLocked(g)
		if g.recorded != nil {
			recorded = append(recorded, g)
		}
	}
	return recorded
}

// forgetLocked drops a flow. Caller holds b.mu.
func (b *bindings) forgetLocked(fl *flow) {
	delete(b.byToken, fl.token)
	if k := b.byKey[fl.key]; k != nil && k.token == fl.token {
		delete(b.byKey, fl.key)
	}
	u := fl.zone.name + "|" + fl.remote
	if rest := slices.DeleteFunc(slices.Clone(b.byUDP[u]), func(o *flow) bool { return o == fl }); len(rest) > 0 {
		b.byUDP[u] = rest
	} else {
		delete(b.byUDP, u)
	}
}

// udpFlow reports whether remote has a granted binding over UDP in zone,
// and shows each of its live flows alive: a keep-alive from remote is
// every line's its phone registered from that socket.
func (b *bindings) udpFlow(zone, remote string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now, live := time.Now(), false
	for _, fl := range b.byUDP[zone+"|"+remote] {
		if now.After(fl.expires) {
			continue
		}
		b.heardLocked(fl)
		live = true
	}
	return live
}

// lookup returns a copy of the live binding of token (a refresh may
// change the original while a call uses it), or nil.
func (b *bindings) lookup(token string) *flow {
	b.mu.Lock()
	defer b.mu.Unlock()
	fl := b.byToken[token]
	if fl == nil || !fl.granted || time.Now().After(fl.expires) {
		return nil
	}
	cp := *fl
	cp.contact = *fl.contact.Clone()
	return &cp
}

// grantedExpiry is the expiry in seconds the registrar's 2xx grants the
// contact req registered: the expires parameter of the matching Contact in
// res, else res's Expires header, else the one req asked for; 0 when the
// request removed it (Expires: 0, or Contact: *).
func grantedExpiry(req *sip.Request, res *sip.Response) int {
	ct := req.Contact()
	if ct == nil || ct.Address.Wildcard {
		return 0
	}
	asked := -1 // an expiry that does not parse is none asked (not 0: a removal)
	if v, ok := ct.Params.Get("expires"); ok {
		asked = atoiOr(v, -1)
	} else if h := req.GetHeader("Expires"); h != nil {
		asked = atoiOr(strings.TrimSpace(h.Value()), -1)
	}
	if asked == 0 {
		return 0
	}
	for _, h := range res.GetHeaders("Contact") {
		rc, ok := h.(*sip.ContactHeader)
		if !ok || !sameContact(rc.Address, ct.Address) {
			continue
		}
		if v, ok := rc.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return n
		}
	}
	if asked > 0 {
		return asked
	}
	return 3600
}

// sameContact compares two contact URIs as a registrar would for a
// binding: scheme, user, host and port.
func sameContact(a, b sip.Uri) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && a.User == b.User && strings.EqualFold(a.Host, b.Host) && a.Port == b.Port
}

// registrationFacts is the registration record's content for fl.
func (s *Server) registrationFacts(fl *flow, req *sip.Request, secs int) *compliance.Registration {
	reg := &compliance.Registration{Flow: fl.token, AOR: fl.aor, Registrar: fl.zone.cfg.Registrar.Target.URI, Expires: secs}
	if p := s.env.pseudo; p != nil {
		reg.AOR = p.Token(fl.aor)
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		reg.UserAgent = recordText(h.Value(), nil)
	}
	if fl.transport == policy.TransportTLS {
		pol := s.rules.Load().zone(fl.zone.name)
		reg.TLS = tlsInfo(tlsFacts(fl.zone.states.get(fl.remote), pol.VerifyPeer))
	}
	return reg
}

// sameFacts reports whether two registrations have the same security facts
// (TLS, User-Agent): the expiry granted each time is no change.
func sameFacts(a, b *compliance.Registration) bool {
	return a.UserAgent == b.UserAgent && reflect.DeepEqual(a.TLS, b.TLS)
}

// recordRegistration writes a registration record for fl: its facts reg
// with the expiry granted, 0 when the binding was removed.
func (s *Server) recordRegistration(fl *flow, reg *compliance.Registration, expires int) {
	cp := *reg
	cp.Expires = expires
	reg = &cp
	if expires > 0 {
		s.log.Info("user registered", "zone", fl.zone.name, "flow", fl.token, "transport", fl.transport.String(), "remote", fl.remote)
	} else {
		s.log.Info("user unregistered", "zone", fl.zone.name, "flow", fl.token, "transport", fl.transport.String(), "remote", fl.remote)
	}
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	e := &compliance.ConnEvent{Event: compliance.EventRegistration, Zone: fl.zone.name, Transport: fl.transport.String(),
		Local: fl.local, Remote: fl.remote, PolicyHash: s.rules.Load().hash, Registration: reg}
	s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
}

// atoiOr is s as a decimal number, or or when it is none.
func atoiOr(s string, or int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return or
}
