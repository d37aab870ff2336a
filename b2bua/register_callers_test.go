package b2bua_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// callFrom places a call from phone u, over transport tr, to the PBX
// through parapet's staff listener, From user@sim.Realm (the address of
// record the registrar's users register).
func (l *flowsLab) callFrom(t *testing.T, u *sim.Peer, tr policy.Transport, dial, user string) (*sim.Session, error) {
	t.Helper()
	target := fmt.Sprintf("sip:%s@%s;transport=%s", dial, l.staff[tr], tr)
	return u.Call(ctxT(t), target, sim.CallOptions{From: user, FromHost: sim.Realm})
}

// In a zone whose users register through parapet (callers "registered",
// the default), a registered user's call over the flow it registered on,
// From its address of record, is taken, and leg a's record names the
// flow, over UDP and over TCP.
func TestRegisteredUserCalls(t *testing.T) {
	for _, tr := range []policy.Transport{policy.TransportUDP, policy.TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			l := newFlowsLab(t)
			u := l.user(t, tr.String(), false)
			l.register(t, u, tr)
			regs := registrations(l.sink)
			if len(regs) != 1 {
				t.Fatalf("%d registration records, want 1", len(regs))
			}
			caller, err := l.callFrom(t, u, tr, "200", "staff")
			if err != nil {
				t.Fatalf("registered user's call: %v", err)
			}
			callee := incoming(t, l.pbx)
			exchange(t, caller, callee)
			if err := caller.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			c := l.sink.waitCalls(t, 1)[0]
			a := leg(c, compliance.RoleA)
			if c.Disposition != compliance.DispositionAnswered || a == nil {
				t.Fatalf("call: %s legs %+v", c.Disposition, c.Legs)
			}
			if a.Flow == "" || a.Flow != regs[0].Registration.Flow {
				t.Errorf("leg a flow %q, want the registration's %q", a.Flow, regs[0].Registration.Flow)
			}
			if d := c.Decisions[0]; d.Rule != policy.RuleAllowed || !strings.Contains(d.Reason, "registered on this connection") {
				t.Errorf("admission decision %+v", d)
			}
		})
	}
}

// Calls the registration does not vouch for get 403 with a Warning saying
// why, and a rejected record whose decision is signaling.not-registered:
// a phone of the zone that never registered, a registered user calling as
// another user, and a user registered over one connection (or UDP
// address) calling over another.
func TestUnregisteredCallersRefused(t *testing.T) {
	cases := []struct {
		name     string
		tr       policy.Transport
		register bool // the caller registers first
		other    bool // a second phone registers; the caller does not
		from     string
		warning  string
	}{
		{name: "never registered", tr: policy.TransportUDP, from: "staff", warning: "no user is registered"},
		{name: "forged From", tr: policy.TransportUDP, register: true, from: "chief", warning: "From is not an address of record"},
		{name: "forged From over TCP", tr: policy.TransportTCP, register: true, from: "chief", warning: "From is not an address of record"},
		{name: "registered on another connection", tr: policy.TransportTCP, other: true, from: "staff", warning: "no user is registered"},
		{name: "registered from another address", tr: policy.TransportUDP, other: true, from: "staff", warning: "no user is registered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newFlowsLab(t)
			u := l.user(t, tc.tr.String(), false)
			if tc.register {
				l.register(t, u, tc.tr)
			}
			if tc.other {
				l.register(t, l.user(t, tc.tr.String(), false), tc.tr)
			}
			_, err := l.callFrom(t, u, tc.tr, "200", tc.from)
			rej := wantRejected(t, err, 403)
			if !strings.Contains(rej.Warning, tc.warning) {
				t.Errorf("Warning %q, want it to say %q", rej.Warning, tc.warning)
			}
			if n := l.pbx.Received("INVITE", "UDP"); n != 0 {
				t.Errorf("the PBX got %d INVITEs", n)
			}
			c := l.sink.waitCalls(t, 1)[0]
			d := decision(c, policy.RuleNotRegistered)
			if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 403 || d == nil ||
				d.Verdict != policy.VerdictRejected || d.Status != 403 || !strings.Contains(d.Reason, tc.warning) {
				t.Fatalf("record: %s %d %+v", c.Disposition, c.SIPStatus, c.Decisions)
			}
			if a := leg(c, compliance.RoleA); a == nil || a.Flow != "" {
				t.Errorf("leg a %+v names a flow", a)
			}
		})
	}
}

// An emergency call from a phone that never registered is never refused
// for it: the refusal is recorded as would_reject and the call goes on.
func TestUnregisteredEmergencyCall(t *testing.T) {
	l := newFlowsLab(t, func(c *b2bua.Config) { c.Emergency = topology.Emergency{Numbers: []string{"911"}} })
	u := l.user(t, "udp", false)
	caller, err := l.callFrom(t, u, policy.TransportUDP, "911", "staff")
	if err != nil {
		t.Fatalf("emergency call from an unregistered phone: %v", err)
	}
	callee := incoming(t, l.pbx)
	exchange(t, caller, callee)
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	d, e := decision(c, policy.RuleNotRegistered), decision(c, policy.RuleEmergency)
	if c.Disposition != compliance.DispositionAnswered || !c.Emergency || d == nil || d.Verdict != policy.VerdictWouldReject ||
		e == nil || !strings.Contains(e.Reason, "not registered") {
		t.Errorf("record: %s emergency %v decisions %+v", c.Disposition, c.Emergency, c.Decisions)
	}
}

// callers = "any" takes calls from any of the zone's peers, registered or
// not, as before the check.
func TestAnyCallers(t *testing.T) {
	l := newFlowsLab(t, func(c *b2bua.Config) { c.Zones[1].Registrar.Callers = topology.CallersAny })
	u := l.user(t, "udp", false)
	caller, err := l.callFrom(t, u, policy.TransportUDP, "200", "chief")
	if err != nil {
		t.Fatalf("call with callers any: %v", err)
	}
	callee := incoming(t, l.pbx)
	exchange(t, caller, callee)
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || decision(c, policy.RuleNotRegistered) != nil {
		t.Errorf("record: %s %+v", c.Disposition, c.Decisions)
	}
}

// Over TLS, a softphone registered through parapet calls over the very
// connection it registered on (sipgo reuses it): taken, leg a naming the
// flow and carrying the connection's TLS facts.
func TestRegisteredUserCallsOverTLS(t *testing.T) {
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	l := newLab(t, labOptions{usersRegistrar: &topology.Registrar{Zone: "pbx",
		Target: topology.Target{Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()), Transport: policy.TransportUDP}}})
	ctx := ctxT(t)
	proxy := fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS)
	if res, err := l.carrier.Register(ctx, proxy, sim.Realm, 300, sim.Credentials{Username: "carrier", Password: "s3cret"}); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	target := fmt.Sprintf("sip:200@%s;transport=tls", l.carrierTLS)
	caller, err := l.carrier.Call(ctx, target, sim.CallOptions{SRTP: true, FromHost: sim.Realm})
	if err != nil {
		t.Fatalf("registered user's call over TLS: %v", err)
	}
	callee := incoming(t, l.pbx)
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if w := l.carrier.Wire(); w.Conns != 0 {
		t.Errorf("parapet opened %d connections toward the user", w.Conns)
	}
	c := l.sink.waitCalls(t, 1)[0]
	a, regs := leg(c, compliance.RoleA), registrations(l.sink)
	if c.Disposition != compliance.DispositionAnswered || a == nil || len(regs) != 1 {
		t.Fatalf("call %s legs %+v, %d registrations", c.Disposition, c.Legs, len(regs))
	}
	if a.Flow != regs[0].Registration.Flow || a.TLS == nil || a.Remote != regs[0].Remote {
		t.Errorf("leg a %+v, registration %+v", a, regs[0])
	}
}

// A carrier's call to a trunk's registered Contact, admitted by its line
// token, needs no user's registration, in a zone whose users register
// through parapet too.
func TestTrunkCallNeedsNoUserRegistration(t *testing.T) {
	t.Cleanup(b2bua.ShortenRegisterRetry(200 * time.Millisecond))
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	l := newLab(t, labOptions{
		username: "clinic", password: trunkPassword,
		register:  &topology.Register{AOR: "sip:clinic@carrier.sim", Expires: time.Hour},
		registrar: &sim.Registrar{Credentials: sim.Credentials{Username: "clinic", Password: trunkPassword}, Grant: time.Minute},
		carrierZone: func(z *policy.Zone) {
			z.Peers = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		},
		usersRegistrar: &topology.Registrar{Zone: "pbx",
			Target: topology.Target{Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()), Transport: policy.TransportUDP}},
	})
	waitFor(t, 10*time.Second, "the trunk to register", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkRegistered
	})
	contact, ok := l.carrier.Binding()
	if !ok {
		t.Fatal("the registrar holds no binding")
	}
	ctx := ctxT(t)
	in, err := l.carrier.Call(ctx, contact, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatalf("call in over the trunk: %v", err)
	}
	pbx := incoming(t, l.pbx)
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "the carrier's BYE", pbx)
	c := l.sink.waitCalls(t, 1)[0]
	if a := leg(c, compliance.RoleA); c.Disposition != compliance.DispositionAnswered || a == nil || a.Trunk != "outbound" ||
		decision(c, policy.RuleNotRegistered) != nil {
		t.Errorf("record: %s legs %+v decisions %+v", c.Disposition, c.Legs, c.Decisions)
	}
}
