package b2bua

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// pins let parapet send a request to a TLS target by its domain name (so
// that sipgo verifies the certificate against that name, RFC 5922, and
// sends it as SNI) at an address parapet chose itself (RFC 3263: an SRV
// target's). sipgo resolves a destination's host with the zone's
// net.Resolver; the zone's resolver asks pins first: a name pinned in the
// request's context, else the address last pinned for that name. Other
// names go to the system's DNS servers as before.
type pins struct {
	mu     sync.Mutex
	byName map[string]netip.Addr
}

type pinKey struct{}

// pinned is a name pinned to an address in a context.
type pinned struct {
	name string
	addr netip.Addr
}

func newPins() *pins { return &pins{byName: map[string]netip.Addr{}} }

// pin makes name resolve to addr, for requests sent with the context it
// returns and, until another pin of name, for the others.
func (p *pins) pin(ctx context.Context, name string, addr netip.Addr) context.Context {
	name = canonName(name)
	p.mu.Lock()
	p.byName[name] = addr
	p.mu.Unlock()
	return context.WithValue(ctx, pinKey{}, pinned{name: name, addr: addr})
}

// lookup is the address pinned for name, in ctx first.
func (p *pins) lookup(ctx context.Context, name string) (netip.Addr, bool) {
	name = canonName(name)
	if v, ok := ctx.Value(pinKey{}).(pinned); ok && v.name == name {
		return v.addr, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.byName[name]
	return a, ok
}

func canonName(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }

// resolver is the zone's net.Resolver: each query it makes goes to pins'
// answerer, which answers pinned names and passes the rest on to the
// server the resolver chose.
func (p *pins) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, server string) (net.Conn, error) {
		mine, theirs := net.Pipe()
		go p.answer(ctx, theirs, network, server)
		return mine, nil
	}}
}

// answer serves one connection of the Go resolver (a stream: each message
// after its two-byte length).
func (p *pins) answer(ctx context.Context, conn net.Conn, network, server string) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * dnsTimeout))
	for {
		var n uint16
		if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(conn, buf); err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(buf); err != nil || len(q.Question) != 1 {
			return
		}
		res := p.reply(ctx, q, network, server)
		if res == nil {
			return
		}
		out, err := res.Pack()
		if err != nil {
			return
		}
		if err := binary.Write(conn, binary.BigEndian, uint16(len(out))); err != nil {
			return
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// reply answers q from the pins, or from server.
func (p *pins) reply(ctx context.Context, q *dns.Msg, network, server string) *dns.Msg {
	question := q.Question[0]
	if a, ok := p.lookup(ctx, question.Name); ok {
		res := new(dns.Msg)
		res.SetReply(q)
		hdr := dns.RR_Header{Name: question.Name, Class: dns.ClassINET, Rrtype: question.Qtype, Ttl: 0}
		switch {
		case question.Qtype == dns.TypeA && a.Is4():
			res.Answer = append(res.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case question.Qtype == dns.TypeAAAA && a.Is6():
			res.Answer = append(res.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
		return res
	}
	c := &dns.Client{Net: strings.TrimSuffix(strings.TrimSuffix(network, "4"), "6"), Timeout: dnsTimeout}
	res, _, err := c.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil
	}
	return res
}
