package b2bua_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// trunkLab is a PBX phone calling out through parapet on a route with
// several targets: simulated carriers, or ports where nothing listens.
type trunkLab struct {
	sink   *memSink
	srv    *b2bua.Server
	pbx    *sim.Peer
	pbxUDP netip.AddrPort
}

// newCarrier starts a simulated carrier over transport answering ans.
func newCarrier(t *testing.T, name, transport string, ans sim.Answer) *sim.Peer {
	t.Helper()
	p, err := sim.New(sim.Config{Name: name, Transport: transport, Listen: netip.AddrPortFrom(loop, 0),
		Answer: ans, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// deadPort is a loopback port of network where nothing listens.
func deadPort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
}

func target(transport policy.Transport, port int) topology.Target {
	uri := fmt.Sprintf("sip:127.0.0.1:%d", port)
	if transport != policy.TransportUDP {
		uri += ";transport=" + transport.String()
	}
	return topology.Target{URI: uri, Host: "127.0.0.1", Port: port, Transport: transport}
}

func newTrunkLab(t *testing.T, route topology.Route) *trunkLab {
	t.Helper()
	l := &trunkLab{sink: &memSink{}}
	lo := netip.MustParsePrefix("127.0.0.0/8")
	zone := func(name string) topology.Zone {
		return topology.Zone{
			Policy: policy.Zone{Name: name, Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
				SRTP: policy.RequirementOff, Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
			Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)},
				{Transport: policy.TransportTCP, Addr: netip.AddrPortFrom(loop, 0)}},
		}
	}
	route.Name, route.From, route.To = "trunk", "pbx", "carrier"
	route.Target = route.Targets[0]
	var err error
	l.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, 0), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.pbx.Close)
	l.srv = startServer(t, b2bua.Config{
		Zones:      []topology.Zone{zone("pbx"), zone("carrier")},
		Routes:     []topology.Route{route},
		Media:      topology.Media{Address: loop, PortMin: 46000, PortMax: 46999, Timeout: 20 * time.Second},
		PolicyHash: "sha256:test",
		Sink:       l.sink,
		Logger:     discard(),
	})
	l.pbxUDP = l.srv.Addrs("pbx")[policy.TransportUDP]
	return l
}

func (l *trunkLab) call(t *testing.T) (*sim.Session, error) {
	t.Helper()
	return l.pbx.Call(ctxT(t), fmt.Sprintf("sip:+15551230000@%s", l.pbxUDP), sim.CallOptions{})
}

// wantAttempts checks leg B's attempts: their targets and outcomes, in
// order, with the statuses given (0: none).
func wantAttempts(t *testing.T, c *compliance.Call, want ...compliance.Attempt) {
	t.Helper()
	b := leg(c, compliance.RoleB)
	if b == nil {
		t.Fatalf("no leg b in %+v", c.Legs)
	}
	if len(b.Attempts) != len(want) {
		t.Fatalf("attempts %+v, want %d", b.Attempts, len(want))
	}
	for i, w := range want {
		g := b.Attempts[i]
		if g.Target != w.Target || g.Outcome != w.Outcome || g.Status != w.Status || g.Transport != w.Transport {
			t.Errorf("attempt %d: %+v, want %+v", i, g, w)
		}
		if w.Outcome != compliance.AttemptSkippedDown && w.Outcome != compliance.AttemptUnresolved && g.Address == "" {
			t.Errorf("attempt %d names no address", i)
		}
	}
}

// With the first target answering 503, refusing the connection or not
// answering at all, the call completes on the second, and the record shows
// both attempts (RFC 3263 section 4.3).
func TestFailoverToSecondTarget(t *testing.T) {
	tests := []struct {
		name      string
		transport policy.Transport
		first     func(t *testing.T) int // the first target's port
		outcome   string
		status    int
	}{
		{"503", policy.TransportUDP, func(t *testing.T) int {
			return int(newCarrier(t, "busy", "udp", sim.Answer{Status: 503}).Addr().Port())
		}, compliance.AttemptUnavailable, 503},
		{"udp silent", policy.TransportUDP, func(t *testing.T) int { return deadPort(t, "udp") },
			compliance.AttemptTimeout, 0},
		{"tcp refused", policy.TransportTCP, func(t *testing.T) int { return deadPort(t, "tcp") },
			compliance.AttemptUnreachable, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			second := newCarrier(t, "second", tc.transport.String(), sim.Answer{})
			t1, t2 := target(tc.transport, tc.first(t)), target(tc.transport, int(second.Addr().Port()))
			l := newTrunkLab(t, topology.Route{Targets: []topology.Target{t1, t2}, AttemptTimeout: time.Second})
			caller, err := l.call(t)
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, second)
			if err := caller.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, "BYE to the second target", callee)
			c := l.sink.waitCalls(t, 1)[0]
			if c.Disposition != compliance.DispositionAnswered || c.SIPStatus != 200 {
				t.Errorf("disposition %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
			}
			wantAttempts(t, c,
				compliance.Attempt{Target: t1.URI, Transport: tc.transport.String(), Outcome: tc.outcome, Status: tc.status},
				compliance.Attempt{Target: t2.URI, Transport: tc.transport.String(), Outcome: compliance.AttemptAnswered, Status: 200})
			if b := leg(c, compliance.RoleB); b.Remote != second.Addr().String() {
				t.Errorf("leg b remote %q, want the second target %s", b.Remote, second.Addr())
			}
		})
	}
}

// A final response other than 503 is the callee's answer: the search ends
// and the caller gets it; the second target never sees the call.
func TestFailoverStopsOnBusy(t *testing.T) {
	first := newCarrier(t, "first", "udp", sim.Answer{Status: 486})
	second := newCarrier(t, "second", "udp", sim.Answer{})
	t1, t2 := target(policy.TransportUDP, int(first.Addr().Port())), target(policy.TransportUDP, int(second.Addr().Port()))
	l := newTrunkLab(t, topology.Route{Targets: []topology.Target{t1, t2}})
	_, err := l.call(t)
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 486 {
		t.Fatalf("call: %v, want 486", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	wantAttempts(t, c, compliance.Attempt{Target: t1.URI, Transport: "udp", Outcome: compliance.AttemptRejected, Status: 486})
	if n := second.Invites(); n != 0 {
		t.Errorf("the second target got %d INVITEs", n)
	}
}

// When no target answers at all, the caller gets 408 once the last one's
// attempt_timeout ran out, not Timer B's 32 s later.
func TestFailoverAllSilent(t *testing.T) {
	t1, t2 := target(policy.TransportUDP, deadPort(t, "udp")), target(policy.TransportUDP, deadPort(t, "udp"))
	l := newTrunkLab(t, topology.Route{Targets: []topology.Target{t1, t2}, AttemptTimeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := l.call(t)
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 408 {
		t.Fatalf("call: %v, want 408", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("408 after %v", d)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.EndReason != "callee side sent no response within 500ms (attempt_timeout)" {
		t.Errorf("disposition %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	wantAttempts(t, c,
		compliance.Attempt{Target: t1.URI, Transport: "udp", Outcome: compliance.AttemptTimeout},
		compliance.Attempt{Target: t2.URI, Transport: "udp", Outcome: compliance.AttemptTimeout})
}

// When every target fails, the caller gets the last one's failure and the
// record lists them all.
func TestFailoverAllFail(t *testing.T) {
	a := newCarrier(t, "a", "udp", sim.Answer{Status: 503})
	b := newCarrier(t, "b", "udp", sim.Answer{Status: 503})
	t1, t2 := target(policy.TransportUDP, int(a.Addr().Port())), target(policy.TransportUDP, int(b.Addr().Port()))
	l := newTrunkLab(t, topology.Route{Targets: []topology.Target{t1, t2}})
	_, err := l.call(t)
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 503 {
		t.Fatalf("call: %v, want 503", err)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.SIPStatus != 503 {
		t.Errorf("disposition %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
	wantAttempts(t, c,
		compliance.Attempt{Target: t1.URI, Transport: "udp", Outcome: compliance.AttemptUnavailable, Status: 503},
		compliance.Attempt{Target: t2.URI, Transport: "udp", Outcome: compliance.AttemptUnavailable, Status: 503})
}

// OPTIONS pings mark a target that does not answer down: calls skip it
// (the record says so) and go straight to the next; the live one is up.
func TestPingsSkipDeadTarget(t *testing.T) {
	second := newCarrier(t, "second", "tcp", sim.Answer{})
	t1, t2 := target(policy.TransportTCP, deadPort(t, "tcp")), target(policy.TransportTCP, int(second.Addr().Port()))
	l := newTrunkLab(t, topology.Route{Targets: []topology.Target{t1, t2}, HealthInterval: 200 * time.Millisecond})
	want := []b2bua.TargetHealth{{Route: "trunk", Target: t1.URI, Up: false}, {Route: "trunk", Target: t2.URI, Up: true}}
	waitFor(t, 10*time.Second, "pings to settle both targets", func() bool {
		got := l.srv.Stats().Targets
		return len(got) == 2 && got[0] == want[0] && got[1] == want[1] || len(got) == 2 && got[0] == want[1] && got[1] == want[0]
	})
	caller, err := l.call(t)
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, second)
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the live target", callee)
	c := l.sink.waitCalls(t, 1)[0]
	wantAttempts(t, c,
		compliance.Attempt{Target: t1.URI, Transport: "tcp", Outcome: compliance.AttemptSkippedDown},
		compliance.Attempt{Target: t2.URI, Transport: "tcp", Outcome: compliance.AttemptAnswered, Status: 200})

	// The first target comes back: the next ping marks it up, and calls
	// go to it again.
	first, err := sim.New(sim.Config{Name: "first", Transport: "tcp", Listen: netip.AddrPortFrom(loop, uint16(t1.Port)),
		Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)
	waitFor(t, 10*time.Second, "the first target to be up again", func() bool {
		for _, h := range l.srv.Stats().Targets {
			if h.Target == t1.URI {
				return h.Up
			}
		}
		return false
	})
	caller, err = l.call(t)
	if err != nil {
		t.Fatal(err)
	}
	callee = incoming(t, first)
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the first target", callee)
	c = l.sink.waitCalls(t, 2)[1]
	wantAttempts(t, c, compliance.Attempt{Target: t1.URI, Transport: "tcp", Outcome: compliance.AttemptAnswered, Status: 200})
}
