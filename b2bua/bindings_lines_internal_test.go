package b2bua

import (
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// A phone with two lines registers both addresses of record from one UDP
// socket: each line is a flow of its own, both are pinged, a keep-alive
// from the socket shows both alive, and the first line's removal leaves
// the second's keep-alives answered.
func TestTwoLinesOneSocket(t *testing.T) {
	z := &zone{name: "staff", cfg: topology.Zone{Registrar: &topology.Registrar{UDPKeepAlive: time.Second}}}
	b := newBindings(slog.New(slog.DiscardHandler))
	start := time.Now()
	line := func(token, user string) *flow {
		fl := &flow{token: token, key: token, zone: z, transport: policy.TransportUDP, remote: "192.0.2.1:5060",
			granted: true, expires: start.Add(time.Hour), lastPing: start,
			contact: sip.Uri{Scheme: "sip", User: user, Host: "10.0.0.1"}}
		b.byToken[token], b.byKey[token] = fl, fl
		b.byUDP["staff|"+fl.remote] = append(b.byUDP["staff|"+fl.remote], fl)
		return fl
	}
	one, two := line("flow-1", "201"), line("flow-2", "202")
	if due := b.duePings(start.Add(2 * time.Second)); len(due) != 2 {
		t.Fatalf("%d pings due, want one per line", len(due))
	}
	b.pinged(one, false)
	b.pinged(two, false)
	if !b.udpFlow("staff", "192.0.2.1:5060") {
		t.Fatal("a keep-alive from the phone's socket is not answered")
	}
	b.mu.Lock()
	b.forgetLocked(one)
	b.mu.Unlock()
	if !b.udpFlow("staff", "192.0.2.1:5060") {
		t.Error("the second line's keep-alives go unanswered once the first is removed")
	}
	b.mu.Lock()
	b.forgetLocked(two)
	b.mu.Unlock()
	if b.udpFlow("staff", "192.0.2.1:5060") {
		t.Error("keep-alives answered with no line registered")
	}
}

// A REGISTER with Contact: * removes every binding of the address of
// record at the registrar, so parapet forgets every flow of it, an
// outbound instance's over another connection among them; a REGISTER
// without Contact (a query) forgets none.
func TestRegisterWildcardAndQuery(t *testing.T) {
	z := &zone{name: "staff", cfg: topology.Zone{Registrar: &topology.Registrar{}}}
	b := newBindings(slog.New(slog.DiscardHandler))
	start := time.Now()
	add := func(token, key, aor string) *flow {
		fl := &flow{token: token, key: key, zone: z, transport: policy.TransportTCP, remote: "192.0.2.1:40000",
			aor: aor, granted: true, expires: start.Add(time.Hour)}
		b.byToken[token], b.byKey[key] = fl, fl
		return fl
	}
	plain := add("flow-1", "staff|tcp|192.0.2.1:40000|201@clinic", "201@clinic")
	add("flow-2", "staff|201@clinic|<urn:uuid:1>|1", "201@clinic")
	add("flow-3", "staff|tcp|192.0.2.1:40000|202@clinic", "202@clinic")
	register := func(ct *sip.ContactHeader) (*sip.Request, *sip.Response) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "clinic"})
		if ct != nil {
			req.AppendHeader(ct)
			req.AppendHeader(sip.NewHeader("Expires", "0"))
		}
		return req, sip.NewResponseFromRequest(req, 200, "OK", nil)
	}
	req, res := register(nil)
	b.granted(nil, plain, req, res)
	if len(b.byToken) != 3 {
		t.Fatalf("a query left %d flows, want the 3 there were", len(b.byToken))
	}
	req, res = register(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	b.granted(nil, plain, req, res)
	if len(b.byToken) != 1 || b.byToken["flow-3"] == nil {
		t.Errorf("after Contact: * for 201@clinic, flows %v; want only 202@clinic's", keys(b.byToken))
	}
}

func keys(m map[string]*flow) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// An expiry that does not parse is none given, not a removal: a REGISTER
// with Expires: abc keeps its binding for as long as the registrar grants.
func TestGrantedExpiryUnparsable(t *testing.T) {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "clinic"})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "201", Host: "10.0.0.1"}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Expires", "abc"))
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if n := grantedExpiry(req, res); n != 3600 {
		t.Errorf("granted %d s, want the default 3600 (not a removal)", n)
	}
	res.AppendHeader(sip.NewHeader("Expires", "600"))
	if n := grantedExpiry(req, res); n != 600 {
		t.Errorf("granted %d s, want the registrar's 600", n)
	}
}
