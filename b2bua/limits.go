package b2bua

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Bounds on what TCP and TLS clients can hold open on a listener. A source
// outside the zone's peers can only ever be answered 403, so it gets a few
// short-lived connections; everything else shares the listener's cap. Idle
// connections from peers are kept: a carrier may send nothing on its TLS
// connection for the whole of a long call and then its BYE.
const (
	maxConnsPerListener = 4096
	maxConnsNonPeer     = 4
	nonPeerLifetime     = 30 * time.Second
)

// limitListener applies those bounds below TLS, and keeps serving through
// accept errors such as running out of file descriptors (sipgo stops a
// listener for good on the first error Accept returns).
type limitListener struct {
	net.Listener
	max      int           // connections open at once
	lifetime time.Duration // of a connection from outside the peers
	admits   func(netip.Addr) bool
	refuse   func(remote, why string)
	acceptFn func(err error) // told about an accept error before the back-off

	mu      sync.Mutex
	open    int
	nonPeer map[netip.Addr]int
}

func newLimitListener(ln net.Listener, admits func(netip.Addr) bool, refuse func(remote, why string), onErr func(error)) *limitListener {
	return &limitListener{Listener: ln, max: maxConnsPerListener, lifetime: nonPeerLifetime, admits: admits, refuse: refuse,
		acceptFn: onErr, nonPeer: map[netip.Addr]int{}}
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
	peer := l.admits(ip)
	why := ""
	l.mu.Lock()
	switch {
	case l.open >= l.max:
		why = "listener connection limit reached"
	case !peer && l.nonPeer[ip] >= maxConnsNonPeer:
		why = "connection limit for sources outside the zone's peers reached"
	default:
		l.open++
		if !peer {
			l.nonPeer[ip]++
		}
	}
	l.mu.Unlock()
	if why != "" {
		remote := c.RemoteAddr().String()
		c.Close()
		l.refuse(remote, why)
		return nil
	}
	if !peer {
		c.SetDeadline(time.Now().Add(l.lifetime))
	}
	lc := &limitedConn{Conn: c}
	lc.release = func() {
		l.mu.Lock()
		l.open--
		if !peer {
			if l.nonPeer[ip]--; l.nonPeer[ip] <= 0 {
				delete(l.nonPeer, ip)
			}
		}
		l.mu.Unlock()
	}
	return lc
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
