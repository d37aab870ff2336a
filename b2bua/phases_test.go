package b2bua

import (
	"log/slog"
	"net/netip"
	"regexp"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// noEvents is the event book of a phase test: it counts what it is told.
type noEvents struct {
	events    []compliance.ConnEventKind
	outsiders int // requests refused as the server refuses outsiders
}

func (n *noEvents) connEvent(_ *zone, event compliance.ConnEventKind, _ policy.SignalingFacts, _ string, _ func(*compliance.ConnEvent)) {
	n.events = append(n.events, event)
}

func (n *noEvents) refuseOutsider(_ *zone, req *sip.Request, tx sip.ServerTransaction) {
	n.outsiders++
	if err := tx.Respond(statelessForbidden(req)); err != nil {
		panic(err)
	}
}

type nopSink struct{}

func (nopSink) Append(*compliance.Record) error { return nil }

// phaseCall is a call on a request from src into zone pbx (enforce, peers
// 10.0.0.0/8), with a route "out" to zone carrier for numbers starting with
// +1 (at most one call at a time), and no socket anywhere.
func phaseCall(t *testing.T, src string, req *sip.Request, stopping bool) (*Call, *noEvents, *siptest.ServerTxRecorder) {
	t.Helper()
	cfg := &Config{
		Zones: []topology.Zone{
			{Policy: policy.Zone{Name: "pbx", Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Mode: policy.ModeEnforce}},
			{Policy: policy.Zone{Name: "carrier", Signaling: policy.RequirementRequire, SRTP: policy.RequirementRequire}},
		},
		Routes: []topology.Route{{Name: "out", From: "pbx", To: "carrier", MaxCalls: 1,
			Match: mustMatch(t, `^\+1`), Target: topology.Target{Host: "192.0.2.9", Transport: policy.TransportTLS, Secure: true}}},
	}
	log := slog.New(slog.DiscardHandler)
	ev := &noEvents{}
	st := &stats{}
	stop := make(chan struct{})
	if stopping {
		close(stop)
	}
	r := responder{userAgent: "parapet-test", log: log}
	e := &env{reg: newRegistry(), rec: newRecorder(nopSink{}, log, st), stats: st, stopping: stop, events: ev,
		zones: map[string]*zone{"pbx": {responder: r, name: "pbx"}, "carrier": {responder: r, name: "carrier"}}}
	rules := newRules(cfg)
	c := &Call{env: e, id: "test", log: log, rules: rules, ended: make(chan struct{}), callee: req.Recipient.User}
	ap := netip.MustParseAddrPort(src)
	c.a = &leg{call: c, role: compliance.RoleA, zone: e.zones["pbx"], pol: rules.zone("pbx"),
		sig: policy.SignalingFacts{Transport: policy.TransportUDP, Source: ap}}
	c.a.admitted = c.a.pol.AdmitsSource(ap.Addr())
	tx := siptest.NewServerTxRecorder(req)
	return c, ev, tx
}

func mustMatch(t *testing.T, expr string) *regexp.Regexp {
	t.Helper()
	return regexp.MustCompile(expr)
}

// invite is an INVITE to user from a phone, with the headers given on top
// of the mandatory ones (RFC 3261 section 8.1.1).
func invite(user string, headers ...sip.Header) *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: user, Host: "10.0.0.1"})
	from := &sip.FromHeader{Address: sip.Uri{User: "alice", Host: "10.0.0.7"}, Params: sip.NewParams()}
	from.Params.Add("tag", "a1")
	cid := sip.CallIDHeader("phase-test")
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.7", Port: 5060,
		Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: user, Host: "10.0.0.1"}})
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	return req
}

// telInvite is an INVITE whose Request-URI is a tel: URI.
func telInvite(headers ...sip.Header) *sip.Request {
	req := invite("+15550100", headers...)
	if err := sip.ParseUri("tel:+15550100", &req.Recipient); err != nil {
		panic(err)
	}
	return req
}

func contact() sip.Header {
	return &sip.ContactHeader{Address: sip.Uri{User: "alice", Host: "10.0.0.7", Port: 5060}}
}

// The admission phase, by the RFC 3261 rules it applies, without a socket:
// what A is answered, and the call's outcome.
func TestAdmitPhase(t *testing.T) {
	mf := func(n int) sip.Header { h := sip.MaxForwardsHeader(n); return &h }
	for _, c := range []struct {
		name     string
		src      string
		req      *sip.Request
		stopping bool
		ok       bool
		status   int
		disp     compliance.Disposition
		header   string // a header the response must carry
	}{
		{name: "a peer's INVITE is admitted", src: "10.0.0.7:5060", req: invite("+15550100", contact()), ok: true},
		{name: "8.2.2: no Contact is a bad request", src: "10.0.0.7:5060", req: invite("+15550100"), status: 400,
			disp: compliance.DispositionRejected},
		{name: "8.2.2.3: an unknown required extension gets 420", src: "10.0.0.7:5060",
			req: invite("+15550100", contact(), sip.NewHeader("Require", "100rel, foo")), status: 420,
			disp: compliance.DispositionRejected, header: "Unsupported"},
		{name: "8.2.2.3: an unknown extension required of proxies gets 420 too", src: "10.0.0.7:5060",
			req: invite("+15550100", contact(), sip.NewHeader("Proxy-Require", "foo")), status: 420,
			disp: compliance.DispositionRejected, header: "Unsupported"},
		{name: "8.2.2.1: a Request-URI of a scheme not served gets 416", src: "10.0.0.7:5060",
			req: telInvite(contact()), status: 416, disp: compliance.DispositionRejected},
		{name: "21.4.7: an Accept without SDP gets 406", src: "10.0.0.7:5060",
			req: invite("+15550100", contact(), sip.NewHeader("Accept", "text/plain")), status: 406,
			disp: compliance.DispositionRejected},
		{name: "RFC 3262: 100rel required is supported", src: "10.0.0.7:5060",
			req: invite("+15550100", contact(), sip.NewHeader("Require", "100rel")), ok: true},
		{name: "16.3: Max-Forwards 0 goes no further", src: "10.0.0.7:5060", req: invite("+15550100", contact(), mf(0)),
			status: 483, disp: compliance.DispositionRejected},
		{name: "Max-Forwards 1 goes on", src: "10.0.0.7:5060", req: invite("+15550100", contact(), mf(1)), ok: true},
		{name: "a stranger is refused and tallied, not recorded as a call", src: "192.0.2.66:5060",
			req: invite("+15550100", contact()), status: 403},
		{name: "a stopping server takes no call", src: "10.0.0.7:5060", req: invite("+15550100", contact()), stopping: true,
			status: 503, disp: compliance.DispositionShutdown},
	} {
		t.Run(c.name, func(t *testing.T) {
			call, ev, tx := phaseCall(t, c.src, c.req, c.stopping)
			_, ok := call.admit(c.req, tx)
			if ok != c.ok {
				t.Fatalf("admitted %v, want %v (responses %v)", ok, c.ok, tx.Result())
			}
			res := tx.Result()
			if c.ok {
				if len(res) != 0 {
					t.Errorf("an admitted call was answered %v", res)
				}
				return
			}
			if len(res) != 1 || res[0].StatusCode != c.status {
				t.Fatalf("responses %v, want one %d", res, c.status)
			}
			if c.header != "" && res[0].GetHeader(c.header) == nil {
				t.Errorf("%d without %s", c.status, c.header)
			}
			// A stranger learns nothing of the zone (its name, how its
			// peers are chosen); the record keeps the reason.
			if w := res[0].GetHeader("Warning"); c.status == 403 && w != nil {
				t.Errorf("a stranger's 403 says %q", w.Value())
			}
			if call.disposition != c.disp {
				t.Errorf("disposition %q, want %q", call.disposition, c.disp)
			}
			stranger := c.status == 403
			if call.folded != stranger || (ev.outsiders == 1) != stranger || len(ev.events) != 0 {
				t.Errorf("folded %v, outsiders %d, events %v; want a stranger (%v) tallied alone", call.folded,
					ev.outsiders, ev.events, stranger)
			}
		})
	}
}

// The routing phase: the first route of the zone whose match fits, and a
// route's call limit (RFC 3261 section 21.5.4: 503 with Retry-After).
func TestRoutePhase(t *testing.T) {
	req := invite("+15550100", contact())
	first, _, tx := phaseCall(t, "10.0.0.7:5060", req, false)
	if !first.routeCall(req, tx) || first.route.Name != "out" || first.b == nil || first.b.zone.name != "carrier" ||
		first.b.transport != policy.TransportTLS || len(tx.Result()) != 0 {
		t.Fatalf("a routable call: route %v, leg b %+v, responses %v", first.route, first.b, tx.Result())
	}
	// A second call on the same route (one registry) finds it full.
	second, _, tx2 := phaseCall(t, "10.0.0.7:5060", req, false)
	second.env = first.env
	if second.routeCall(req, tx2) {
		t.Fatal("a second call on a route limited to one was routed")
	}
	res := tx2.Result()
	if len(res) != 1 || res[0].StatusCode != 503 || res[0].GetHeader("Retry-After") == nil ||
		second.disposition != compliance.DispositionRejected || len(second.decisions) != 1 ||
		second.decisions[0].Rule != policy.RuleRouteCallLimit {
		t.Errorf("a full route: %v, disposition %q, decisions %+v", res, second.disposition, second.decisions)
	}
	first.env.reg.releaseSlots(first.limits)
	if !second.routeCall(req, siptest.NewServerTxRecorder(req)) {
		t.Error("the route's slot, once given back, is not taken")
	}

	unrouted := invite("4711", contact())
	other, _, tx3 := phaseCall(t, "10.0.0.7:5060", unrouted, false)
	if other.routeCall(unrouted, tx3) {
		t.Fatal("a number no route matches was routed")
	}
	if res := tx3.Result(); len(res) != 1 || res[0].StatusCode != 404 {
		t.Errorf("no route: %v, want 404", res)
	}
}
