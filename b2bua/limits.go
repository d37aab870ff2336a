package b2bua

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/parapet-sbc/parapet/topology"
)

// nonPeerLifetime bounds a connection from outside the zone's peers,
// whatever it does: such a source can only ever be answered 403. Idle
// connections from peers are kept: a carrier may send nothing on its TLS
// connection for the whole of a long call and then its BYE.
const nonPeerLifetime = 30 * time.Second

// connBudget is a listener's share of topology.Limits: how many
// connections it holds at once, and how many of them sources outside the
// zone's peers may hold together, per address and per /24 or /64.
type connBudget struct {
	total, outsiders, perSource, perPrefix int
}

// budgetOf takes a listener's budget from the limits in force. A field
// left at 0 is its default (topology.DefaultLimits), and the outsiders'
// share is kept below the total, so that peers always have room.
func budgetOf(l topology.Limits) connBudget {
	d := topology.DefaultLimits
	b := connBudget{total: orDefault(l.Connections, d.Connections), outsiders: orDefault(l.OutsiderConnections, d.OutsiderConnections),
		perSource: orDefault(l.ConnectionsPerSource, d.ConnectionsPerSource), perPrefix: orDefault(l.ConnectionsPerPrefix, d.ConnectionsPerPrefix)}
	b.outsiders = min(b.outsiders, b.total-1)
	return b
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// connCounts is what a listener holds when a connection arrives: all its
// connections, the outsiders' together, and those of the arriving
// source's address and of its /24 or /64.
type connCounts struct {
	open, outsiders, source, prefix int
}

// connRefusal is why a connection is closed as it is accepted.
type connRefusal int

const (
	connFits            connRefusal = iota
	refusedFull                     // the listener holds its total
	refusedOutsiders                // outsiders hold their share
	refusedSource                   // this outside address holds its share
	refusedPrefix                   // this outside /24 or /64 holds its share
	refusedOutsiderDrop             // the zone drops outsiders
)

var refusalText = [...]string{
	connFits:            "",
	refusedFull:         "listener connection limit reached",
	refusedOutsiders:    "connection limit for sources outside the zone's peers reached",
	refusedSource:       "connection limit per source outside the zone's peers reached",
	refusedPrefix:       "connection limit per prefix outside the zone's peers reached",
	refusedOutsiderDrop: "the zone drops sources outside its peers",
}

// String says why, as a record's error text.
func (r connRefusal) String() string { return refusalText[r] }

// refusal says why a connection from a peer (peer set) or an outsider
// does not fit in budget b when the listener holds c, or connFits. Peers
// may take anything free of the total; outsiders hold at most their share,
// so the rest of the total is always the peers'.
func (b connBudget) refusal(peer bool, c connCounts) connRefusal {
	switch {
	case c.open >= b.total:
		return refusedFull
	case peer:
		return connFits
	case c.outsiders >= b.outsiders:
		return refusedOutsiders
	case c.source >= b.perSource:
		return refusedSource
	case c.prefix >= b.perPrefix:
		return refusedPrefix
	}
	return connFits
}

// connRules is what a listener's zone makes of a connecting source, by
// the rules in force when it connects.
type connRules struct {
	peer   bool // the source is one of the zone's peers
	drop   bool // the zone drops outsiders: close them at once
	budget connBudget
}

// limitListener applies the connection budgets below TLS, so that a
// refused connection costs no handshake and gets no byte, and keeps
// serving through accept errors such as running out of file descriptors
// (sipgo stops a listener for good on the first error Accept returns).
type limitListener struct {
	net.Listener
	lifetime time.Duration // of a connection from outside the peers
	rules    func(netip.Addr) connRules
	// refuse is told about each connection closed at accept.
	refuse   func(src netip.Addr, remote string, peer bool, why connRefusal)
	acceptFn func(err error) // told about an accept error before the back-off

	mu        sync.Mutex
	open      int
	outsiders int
	// Outsiders' connections by address and by prefix: at most
	// budget.outsiders entries each, as empty ones are deleted.
	bySource map[netip.Addr]int
	byPrefix map[netip.Prefix]int
}

func newLimitListener(ln net.Listener, rules func(netip.Addr) connRules,
	refuse func(src netip.Addr, remote string, peer bool, why connRefusal), onErr func(error)) *limitListener {
	return &limitListener{Listener: ln, lifetime: nonPeerLifetime, rules: rules, refuse: refuse, acceptFn: onErr,
		bySource: map[netip.Addr]int{}, byPrefix: map[netip.Prefix]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// EMFILE, ENFILE, ECONNABORTED...: back off and go on, as
			// net/http's server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.acceptFn(err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c in, or closes it and reports why.
func (l *limitListener) admit(c net.Conn) net.Conn {
	ip := netip.Addr{}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip = a.AddrPort().Addr().Unmap()
	}
	r := l.rules(ip)
	why := refusedOutsiderDrop
	if r.peer || !r.drop {
		why = l.take(ip, r)
	}
	if why != connFits {
		// Counted before the close: whoever sees the close finds it
		// counted.
		l.refuse(ip, c.RemoteAddr().String(), r.peer, why)
		if tc, ok := c.(*net.TCPConn); ok && !r.peer {
			// A reset, not a FIN: nothing for the stranger to read, and
			// no TIME_WAIT state kept here for each of a flood.
			tc.SetLinger(0)
		}
		c.Close()
		return nil
	}
	if !r.peer {
		c.SetDeadline(time.Now().Add(l.lifetime))
	}
	lc := &limitedConn{Conn: c}
	lc.release = func() { l.give(ip, r.peer) }
	return lc
}

// take counts a connection from ip in if the budget has room for it.
func (l *limitListener) take(ip netip.Addr, r connRules) connRefusal {
	pfx := prefixOf(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	why := r.budget.refusal(r.peer, connCounts{open: l.open, outsiders: l.outsiders, source: l.bySource[ip], prefix: l.byPrefix[pfx]})
	if why != connFits {
		return why
	}
	l.open++
	if !r.peer {
		l.outsiders++
		l.bySource[ip]++
		l.byPrefix[pfx]++
	}
	return connFits
}

// give counts a connection from ip out again.
func (l *limitListener) give(ip netip.Addr, peer bool) {
	pfx := prefixOf(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if peer {
		return
	}
	l.outsiders--
	if l.bySource[ip]--; l.bySource[ip] <= 0 {
		delete(l.bySource, ip)
	}
	if l.byPrefix[pfx]--; l.byPrefix[pfx] <= 0 {
		delete(l.byPrefix, pfx)
	}
}

// limitedConn gives its slot back when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
