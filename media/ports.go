package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ErrNoPorts is returned when every port pair of the pool is taken.
var ErrNoPorts = errors.New("no free media port pair")

// PortPool hands out RTP/RTCP socket pairs (even port for RTP, the next odd
// port for RTCP, RFC 3550 section 11) bound on one address within a range.
// It rotates through the range so a port just released is not reused at
// once, which keeps late packets of an ended call away from a new one.
type PortPool struct {
	addr     netip.Addr
	min, max int // min even; pairs are (p, p+1) with p+1 <= max

	mu    sync.Mutex
	next  int
	inUse map[int]bool
}

// NewPortPool creates a pool over [min, max] on addr.
func NewPortPool(addr netip.Addr, min, max int) (*PortPool, error) {
	if !addr.IsValid() {
		return nil, errors.New("media port pool: no address")
	}
	if min%2 == 1 {
		min++
	}
	if min < 1024 || max > 65535 || max-min < 3 {
		return nil, fmt.Errorf("media port pool: bad range %d-%d", min, max)
	}
	return &PortPool{addr: addr, min: min, max: max, next: min, inUse: map[int]bool{}}, nil
}

// Pairs is the number of port pairs in the pool.
func (p *PortPool) Pairs() int { return (p.max - p.min + 1) / 2 }

// InUse is the number of pairs currently held.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inUse)
}

// pair binds the next free even/odd pair. Ports taken by other processes
// are skipped.
func (p *PortPool) pair() (rtp, rtcp *net.UDPConn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.Pairs()
	for range n {
		port := p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		if p.inUse[port] {
			continue
		}
		a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, uint16(port))))
		if err != nil {
			continue
		}
		b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, uint16(port+1))))
		if err != nil {
			a.Close()
			continue
		}
		p.inUse[port] = true
		return a, b, nil
	}
	return nil, nil, ErrNoPorts
}

func (p *PortPool) release(port int) {
	p.mu.Lock()
	delete(p.inUse, port)
	p.mu.Unlock()
}
