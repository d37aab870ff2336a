package b2bua

import (
	"net"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// The gate's own cost per datagram, without sockets: what every request
// from a peer pays before sipgo sees it (the peer check), and what a
// stranger's request costs when it is over budget (no parse) or dropped
// after its parse.
func BenchmarkGate(b *testing.B) {
	cfg := &Config{Zones: []topology.Zone{{Policy: policy.Zone{Name: "pbx", Mode: policy.ModeEnforce,
		Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("2001:db8::/32")}}, Outsiders: topology.RefusalDrop}}}
	s := &Server{reg: newRegistry(), outsiders: newOutsiderTallies(), events: newEventFolder(0)}
	s.rules.Store(newRules(cfg))
	z := &zone{name: "pbx", udp: map[string]*net.UDPConn{}}
	gate := s.gate(z)
	data := []byte(strangerOptions)
	local := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5060}
	for _, c := range []struct {
		name   string
		from   string
		budget topology.Limits
	}{
		{"peer", "192.168.1.20", topology.DefaultLimits},
		{"stranger-over-budget", "203.0.113.9", topology.Limits{OutsiderRate: 1e-9, SourceRate: 1e-9, PrefixRate: 1e-9}},
		{"stranger-dropped", "203.0.113.9", topology.Limits{OutsiderRate: 1e9, SourceRate: 1e9, PrefixRate: 1e9}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s.budget.Store(newOutsiderBudget(c.budget))
			props := sip.TransportReadProps{Transport: "udp", LocalAddr: local,
				RemoteAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(c.from), 5060))}
			b.ReportAllocs()
			for b.Loop() {
				gate(props, data)
			}
		})
	}
}

// BenchmarkOutsiderBudget is the three token buckets a stranger's request
// is charged to.
func BenchmarkOutsiderBudget(b *testing.B) {
	bud := newOutsiderBudget(topology.Limits{OutsiderRate: 1e9, SourceRate: 1e9, PrefixRate: 1e9})
	a := netip.MustParseAddr("203.0.113.9")
	b.ReportAllocs()
	for b.Loop() {
		bud.allow(a)
	}
}
