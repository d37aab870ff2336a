package b2bua

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// dnsTimeout bounds one DNS query to one server.
const dnsTimeout = 2 * time.Second

// resolvConf is where the system's DNS servers are listed.
var resolvConf = "/etc/resolv.conf"

// errNoAddress: a name resolved to no address.
var errNoAddress = errors.New("no address")

// resolver finds the addresses of a route's targets as RFC 3263 has it:
// NAPTR, then SRV, then A and AAAA, asking its DNS servers.
type resolver struct {
	servers []string // host:port
}

// newResolver asks server ("host:port", "host" for port 53) or, when it
// is "", the servers of /etc/resolv.conf.
func newResolver(server string) (*resolver, error) {
	if server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			server = net.JoinHostPort(server, "53")
		}
		return &resolver{servers: []string{server}}, nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("dns servers: %w", err)
	}
	r := &resolver{}
	for _, s := range cc.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
	}
	return r, nil
}

// query asks the servers in turn for name's records of type qtype; a
// truncated answer is asked again over TCP. NXDOMAIN is no error: no
// records.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	var last error
	for _, s := range r.servers {
		in, err := r.exchange(ctx, m, s, "udp")
		if err == nil && in.Truncated {
			in, err = r.exchange(ctx, m, s, "tcp")
		}
		switch {
		case err != nil:
			last = err
		case in.Rcode == dns.RcodeSuccess || in.Rcode == dns.RcodeNameError:
			return in.Answer, nil
		default:
			last = fmt.Errorf("%s %s: %s", dns.TypeToString[qtype], name, dns.RcodeToString[in.Rcode])
		}
	}
	if last == nil {
		last = errors.New("no DNS server")
	}
	return nil, last
}

func (r *resolver) exchange(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: dnsTimeout}
	in, _, err := c.ExchangeContext(ctx, m, server)
	return in, err
}

// resolve is the addresses to try for t, in order (RFC 3263 section 4):
// an IP literal as it is; a name with a port, its A and AAAA addresses
// there; a name without one, the SRV records for t's transport (found
// through NAPTR when the URI names no transport, else _sips._tcp,
// _sip._tcp or _sip._udp) by priority and weight, each target's addresses
// at its port; without SRV records, the name's addresses at the
// transport's default port.
func (r *resolver) resolve(ctx context.Context, t topology.Target) ([]netip.AddrPort, error) {
	port := uint16(t.Port)
	if port == 0 {
		port = defaultPort(t.Transport)
	}
	if a, err := netip.ParseAddr(t.Host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), port)}, nil
	}
	if t.Port != 0 {
		return r.hostAddrs(ctx, t.Host, port)
	}
	srvs, err := r.srvs(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(srvs) == 0 {
		return r.hostAddrs(ctx, t.Host, port)
	}
	var out []netip.AddrPort
	var last error
	for _, s := range srvs {
		addrs, err := r.hostAddrs(ctx, s.Target, s.Port)
		if err != nil {
			last = err
			continue
		}
		out = append(out, addrs...)
	}
	if len(out) == 0 {
		return nil, cmp.Or(last, errNoAddress)
	}
	return out, nil
}

// srvs is the SRV records of t in the order to try them.
func (r *resolver) srvs(ctx context.Context, t topology.Target) ([]*dns.SRV, error) {
	names := []string{srvName(t)}
	if !strings.Contains(strings.ToLower(t.URI), "transport=") {
		n, err := r.naptr(ctx, t)
		if err != nil {
			return nil, err
		}
		if len(n) > 0 {
			names = n
		}
	}
	var out []*dns.SRV
	for _, name := range names {
		rrs, err := r.query(ctx, name, dns.TypeSRV)
		if err != nil {
			return nil, err
		}
		var srvs []*dns.SRV
		for _, rr := range rrs {
			if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
				srvs = append(srvs, s)
			}
		}
		out = append(out, orderSRV(srvs)...)
	}
	return out, nil
}

// naptr is the SRV names that t's host's NAPTR records give for t's
// transport (SIPS+D2T, SIP+D2T, SIP+D2U), in order and preference.
func (r *resolver) naptr(ctx context.Context, t topology.Target) ([]string, error) {
	rrs, err := r.query(ctx, t.Host, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	service := "SIP+D2U"
	switch {
	case t.Secure || t.Transport == policy.TransportTLS:
		service = "SIPS+D2T"
	case t.Transport == policy.TransportTCP:
		service = "SIP+D2T"
	}
	var ns []*dns.NAPTR
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NAPTR); ok && strings.EqualFold(n.Flags, "s") && strings.EqualFold(n.Service, service) {
			ns = append(ns, n)
		}
	}
	slices.SortStableFunc(ns, func(a, b *dns.NAPTR) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Preference, b.Preference))
	})
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Replacement)
	}
	return out, nil
}

// srvName is the SRV name of t's transport at t's host.
func srvName(t topology.Target) string {
	switch {
	case t.Secure || t.Transport == policy.TransportTLS:
		return "_sips._tcp." + t.Host
	case t.Transport == policy.TransportTCP:
		return "_sip._tcp." + t.Host
	}
	return "_sip._udp." + t.Host
}

// orderSRV orders SRV records by priority, lowest first, and within a
// priority by a weighted random draw (RFC 2782).
func orderSRV(srvs []*dns.SRV) []*dns.SRV {
	slices.SortStableFunc(srvs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]*dns.SRV, 0, len(srvs))
	for i := 0; i < len(srvs); {
		j := i
		for j < len(srvs) && srvs[j].Priority == srvs[i].Priority {
			j++
		}
		out = append(out, weighted(slices.Clone(srvs[i:j]))...)
		i = j
	}
	return out
}

// weighted draws records of one priority in turn, each with a chance in
// proportion to its weight (weight 0: a small chance, RFC 2782).
func weighted(group []*dns.SRV) []*dns.SRV {
	out := make([]*dns.SRV, 0, len(group))
	for len(group) > 0 {
		total := 0
		for _, s := range group {
			total += int(s.Weight) + 1
		}
		n := rand.IntN(total) //nolint:gosec // load sharing, not security
		k := 0
		for ; k < len(group)-1; k++ {
			n -= int(group[k].Weight) + 1
			if n < 0 {
				break
			}
		}
		out = append(out, group[k])
		group = slices.Delete(group, k, k+1)
	}
	return out
}

// hostAddrs is name's A then AAAA addresses at port.
func (r *resolver) hostAddrs(ctx context.Context, name string, port uint16) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, name, qt)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, netip.AddrPortFrom(a.Unmap(), port))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errNoAddress)
	}
	return out, nil
}

// defaultPort is transport's default SIP port.
func defaultPort(t policy.Transport) uint16 {
	if t == policy.TransportTLS {
		return 5061
	}
	return 5060
}

// hostPort joins host and port as a SIP destination.
func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
