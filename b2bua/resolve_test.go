package b2bua_test

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// dnsServer is an authoritative DNS server on a loopback UDP port, with
// the records a test gives it.
type dnsServer struct {
	addr    string
	mu      sync.Mutex
	records map[string][]dns.RR // by "name/type"
	asked   []string
}

func startDNS(t *testing.T, zone ...string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), records: map[string][]dns.RR{}}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatal(err)
		}
		k := strings.ToLower(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype]
		d.records[k] = append(d.records[k], rr)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			res := new(dns.Msg)
			res.SetReply(q)
			res.Authoritative = true
			qq := q.Question[0]
			k := strings.ToLower(qq.Name) + "/" + dns.TypeToString[qq.Qtype]
			d.mu.Lock()
			d.asked = append(d.asked, k)
			res.Answer = d.records[k]
			d.mu.Unlock()
			_ = w.WriteMsg(res)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return d
}

func (d *dnsServer) wasAsked(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.asked {
		if a == k {
			return true
		}
	}
	return false
}

// A route target named by DNS is resolved as RFC 3263 has it: NAPTR to
// the SRV records of the transport, SRV by priority, A: the call goes to
// the priority-10 SRV target, and to the priority-20 one when the first
// answers 503; the record names the addresses.
func TestSRVTargets(t *testing.T) {
	for _, firstStatus := range []int{0, 503} {
		t.Run(map[int]string{0: "priority", 503: "503"}[firstStatus], func(t *testing.T) {
			primary := newCarrier(t, "primary", "udp", sim.Answer{Status: firstStatus})
			backup := newCarrier(t, "backup", "udp", sim.Answer{})
			d := startDNS(t,
				`trunk.test. 60 IN NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.trunk.test.`,
				`trunk.test. 60 IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.sbcs.trunk.test.`,
				// Listed backup first: the priority orders them.
				"_sip._udp.sbcs.trunk.test. 60 IN SRV 20 10 "+port(backup)+" b.trunk.test.",
				"_sip._udp.sbcs.trunk.test. 60 IN SRV 10 10 "+port(primary)+" a.trunk.test.",
				"a.trunk.test. 60 IN A 127.0.0.1",
				"b.trunk.test. 60 IN A 127.0.0.1")
			name := topology.Target{URI: "sip:trunk.test", Host: "trunk.test", Transport: policy.TransportUDP}
			l := newTrunkLab(t, topology.Route{Targets: []topology.Target{name}, Resolver: d.addr})
			caller, err := l.call(t)
			if err != nil {
				t.Fatal(err)
			}
			want := primary
			if firstStatus != 0 {
				want = backup
			}
			callee := incoming(t, want)
			if err := caller.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, "BYE", callee)
			c := l.sink.waitCalls(t, 1)[0]
			b := leg(c, compliance.RoleB)
			var got []string
			for _, a := range b.Attempts {
				got = append(got, a.Address+" "+a.Outcome)
			}
			wantAttempts := []string{primary.Addr().String() + " answered"}
			if firstStatus != 0 {
				wantAttempts = []string{primary.Addr().String() + " unavailable", backup.Addr().String() + " answered"}
			}
			if strings.Join(got, ", ") != strings.Join(wantAttempts, ", ") {
				t.Errorf("attempts %q, want %q", got, wantAttempts)
			}
			if !d.wasAsked("trunk.test./NAPTR") || d.wasAsked("_sip._tcp.trunk.test./SRV") {
				t.Errorf("DNS queries %q: want NAPTR, then only the UDP service's SRV", d.asked)
			}
		})
	}
}

// Over TLS the certificate is verified against the name in the target,
// not the SRV target's (RFC 5922 section 4): a carrier whose certificate
// names trunk.test is reached through SRV as trunk.test; a target whose
// name the certificate lacks fails its handshake, and the call goes on
// to the next.
func TestSRVTargetsVerifyTheDomain(t *testing.T) {
	var d *dnsServer
	l := newLab(t, labOptions{labHosts: []string{"trunk.test"}, outbound: func(r *topology.Route, l *lab) {
		d = startDNS(t,
			"_sips._tcp.other.test. 60 IN SRV 10 10 "+port(l.carrier)+" sbc.carrier.test.",
			"_sips._tcp.trunk.test. 60 IN SRV 10 10 "+port(l.carrier)+" sbc.carrier.test.",
			"sbc.carrier.test. 60 IN A 127.0.0.1")
		other := topology.Target{URI: "sips:other.test", Host: "other.test", Transport: policy.TransportTLS, Secure: true}
		trunk := topology.Target{URI: "sips:trunk.test", Host: "trunk.test", Transport: policy.TransportTLS, Secure: true}
		r.Targets, r.Target, r.Resolver = []topology.Target{other, trunk}, other, d.addr
	}})
	caller, callee := l.connect(t, ctxT(t))
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", callee)
	c := l.sink.waitCalls(t, 1)[0]
	b := leg(c, compliance.RoleB)
	if len(b.Attempts) != 2 || b.Attempts[0].Outcome != compliance.AttemptTLSFailed || b.Attempts[1].Outcome != compliance.AttemptAnswered {
		t.Fatalf("attempts %+v, want tls_failed then answered", b.Attempts)
	}
	if b.TLS == nil || b.TLS.ServerName != "trunk.test" {
		t.Errorf("leg b TLS %+v, want server_name trunk.test", b.TLS)
	}
	if !d.wasAsked("_sips._tcp.trunk.test./SRV") {
		t.Errorf("DNS queries %q", d.asked)
	}
}

func port(p *sim.Peer) string { return strings.TrimPrefix(p.Addr().String(), "127.0.0.1:") }

// A target whose name resolves to nothing is recorded unresolved and the
// next is tried.
func TestUnresolvedTarget(t *testing.T) {
	d := startDNS(t)
	second := newCarrier(t, "second", "udp", sim.Answer{})
	nowhere := topology.Target{URI: "sip:nowhere.test", Host: "nowhere.test", Transport: policy.TransportUDP}
	t2 := target(policy.TransportUDP, int(second.Addr().Port()))
	l := newTrunkLab(t, topology.Route{Targets: []topology.Target{nowhere, t2}, Resolver: d.addr})
	caller, err := l.call(t)
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, second)
	if err := caller.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE", callee)
	c := l.sink.waitCalls(t, 1)[0]
	wantAttempts(t, c,
		compliance.Attempt{Target: nowhere.URI, Transport: "udp", Outcome: compliance.AttemptUnresolved},
		compliance.Attempt{Target: t2.URI, Transport: "udp", Outcome: compliance.AttemptAnswered, Status: 200})
}
