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

// flowsLab is parapet with a "pbx" zone (UDP and TCP, plain RTP) where a
// registrar lives, and a "staff" zone (UDP and TCP, plain RTP allowed)
// whose users register through parapet to it.
type flowsLab struct {
	sink  *memSink
	srv   *b2bua.Server
	reg   *sim.PathRegistrar
	pbx   *sim.Peer // calls the registered users, as the PBX does
	staff map[policy.Transport]netip.AddrPort
}

func newFlowsLab(t *testing.T, tweaks ...func(*b2bua.Config)) *flowsLab {
	t.Helper()
	l := &flowsLab{sink: &memSink{}, reg: sim.NewPathRegistrar(t, "staff", "s3cret")}
	var err error
	l.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, 0), Logger: discard(),
		ExtraFormats: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.pbx.Close)
	lo := netip.MustParsePrefix("127.0.0.0/8")
	zone := func(name string, reg *topology.Registrar) topology.Zone {
		return topology.Zone{Policy: policy.Zone{Name: name, Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
			SRTP: policy.RequirementAllow, Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
			Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)},
				{Transport: policy.TransportTCP, Addr: netip.AddrPortFrom(loop, 0)}},
			Registrar: reg}
	}
	ra := l.reg.Addr
	cfg := b2bua.Config{
		Zones: []topology.Zone{zone("pbx", nil), zone("staff", &topology.Registrar{Zone: "pbx",
			Target: topology.Target{URI: "sip:" + ra.String(), Host: ra.Addr().String(), Port: int(ra.Port()), Transport: policy.TransportUDP}})},
		Routes: []topology.Route{{Name: "out", From: "staff", To: "pbx",
			Target: topology.Target{Host: "127.0.0.1", Port: int(l.pbx.Addr().Port()), Transport: policy.TransportUDP}}},
		Media:         topology.Media{Address: loop, PortMin: 46000, PortMax: 46999, Timeout: 20 * time.Second},
		PolicyHash:    "sha256:test",
		Sink:          l.sink,
		Pseudonymizer: compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef")),
		Logger:        discard(),
	}
	for _, f := range tweaks {
		f(&cfg)
	}
	l.srv = startServer(t, cfg)
	l.staff = l.srv.Addrs("staff")
	return l
}

// user starts a simulated staff phone (named "staff", the registrar's
// user) over transport t.
func (l *flowsLab) user(t *testing.T, transport string, alsoTCP bool) *sim.Peer {
	t.Helper()
	p, err := sim.New(sim.Config{Name: "staff", Transport: transport, Listen: netip.AddrPortFrom(loop, 0), Logger: discard(),
		AlsoTCP: alsoTCP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// register registers u through parapet's staff listener on transport t;
// it must get 200.
func (l *flowsLab) register(t *testing.T, u *sim.Peer, tr policy.Transport) {
	t.Helper()
	proxy := fmt.Sprintf("sip:%s;transport=%s", l.staff[tr], tr)
	res, err := u.Register(ctxT(t), proxy, sim.Realm, 300, sim.Credentials{Username: "staff", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over %s: %d %s", tr, res.StatusCode, res.Reason)
	}
}

// A simulated phone registers over UDP, then another over TCP, through
// parapet; the PBX calls each through the registrar's Path, and the call
// reaches the phone over its flow: over UDP at the address the REGISTER
// came from, from the listener it came to; over TCP on the very
// connection. Each registration is recorded once, with its transport and
// no TLS facts. A large INVITE (over 1,300 bytes) to the UDP flow stays on
// UDP though the phone listens on TCP too: only the flow reaches it.
func TestUsersRegisterOverUDPAndTCP(t *testing.T) {
	for _, tr := range []policy.Transport{policy.TransportUDP, policy.TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			l := newFlowsLab(t)
			u := l.user(t, tr.String(), tr == policy.TransportUDP)
			l.register(t, u, tr)
			contact, path := l.reg.Binding("staff")
			if contact == "" || !strings.Contains(path, "sip:flow-") {
				t.Fatalf("registrar's binding: contact %q path %q", contact, path)
			}
			regs := registrations(l.sink)
			if len(regs) != 1 {
				t.Fatalf("%d registration records, want 1", len(regs))
			}
			r := regs[0]
			if r.Zone != "staff" || r.Transport != tr.String() || r.Local != l.staff[tr].String() || r.Registration == nil ||
				r.Registration.TLS != nil || !strings.Contains(r.Registration.UserAgent, "sim-staff") {
				t.Errorf("registration record: %+v %+v", r, r.Registration)
			}
			if tr == policy.TransportUDP && r.Remote != u.Addr().String() {
				t.Errorf("registration remote %s, want the phone's %s", r.Remote, u.Addr())
			}
			l.register(t, u, tr) // a refresh: no new record
			if n := len(registrations(l.sink)); n != 1 {
				t.Errorf("%d registration records after a refresh, want 1", n)
			}

			caller, err := l.pbx.Call(ctxT(t), contact, sim.CallOptions{Route: path})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, u)
			exchange(t, caller, callee)
			if err := caller.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, "BYE to the registered user", callee)
			if n := u.Received("INVITE", strings.ToUpper(tr.String())); n != 1 {
				t.Errorf("the phone got %d INVITEs over %s, want 1", n, tr)
			}
			if n := u.Received("INVITE", "TCP"); tr == policy.TransportUDP && n != 0 {
				t.Errorf("the large INVITE to a UDP flow went over TCP (%d)", n)
			}
			c := l.sink.waitCalls(t, 1)[0]
			b := leg(c, compliance.RoleB)
			if c.Disposition != compliance.DispositionAnswered || c.Route != "registered:staff" || b == nil {
				t.Fatalf("call: %s route %q legs %+v", c.Disposition, c.Route, c.Legs)
			}
			if b.Flow != r.Registration.Flow || b.Local != r.Local || b.Remote != r.Remote || b.Transport != tr.String() || b.TLS != nil {
				t.Errorf("leg b: %+v; registration %+v", b, r)
			}
		})
	}
}
