package b2bua

import (
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/topology"
)

// flakyListener fails its first Accept calls the way a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

// The budget arithmetic: peers may take anything free of the total,
// outsiders only their share, and each outside address and prefix its own.
func TestConnBudgetRefusal(t *testing.T) {
	b := connBudget{total: 10, outsiders: 4, perSource: 2, perPrefix: 3}
	for _, tc := range []struct {
		name string
		peer bool
		c    connCounts
		want connRefusal
	}{
		{"empty listener, peer", true, connCounts{}, connFits},
		{"empty listener, outsider", false, connCounts{}, connFits},
		{"peer beside a full outsider share", true, connCounts{open: 9, outsiders: 4}, connFits},
		{"peer at the total", true, connCounts{open: 10, outsiders: 4}, refusedFull},
		{"peer at the total, no outsider", true, connCounts{open: 10}, refusedFull},
		{"peer over the total (limits lowered)", true, connCounts{open: 12}, refusedFull},
		{"outsider with room", false, connCounts{open: 5, outsiders: 3, source: 1, prefix: 2}, connFits},
		{"outsider, share full", false, connCounts{open: 5, outsiders: 4}, refusedOutsiders},
		{"outsider, peers hold the rest", false, connCounts{open: 10, outsiders: 1}, refusedFull},
		{"outsider, source full", false, connCounts{open: 3, outsiders: 3, source: 2, prefix: 2}, refusedSource},
		{"outsider, prefix full", false, connCounts{open: 3, outsiders: 3, source: 1, prefix: 3}, refusedPrefix},
		{"outsider, all full: the total is said first", false, connCounts{open: 10, outsiders: 4, source: 2, prefix: 3}, refusedFull},
		{"outsider, share and source full: the share first", false, connCounts{open: 4, outsiders: 4, source: 2, prefix: 3}, refusedOutsiders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.refusal(tc.peer, tc.c); got != tc.want {
				t.Errorf("refusal(peer %v, %+v) = %q, want %q", tc.peer, tc.c, got, tc.want)
			}
		})
	}
}

// A listener's budget comes from the limits: fields left at 0 are the
// defaults, and outsiders never get the whole total.
func TestBudgetOf(t *testing.T) {
	d := topology.DefaultLimits
	for _, tc := range []struct {
		name string
		l    topology.Limits
		want connBudget
	}{
		{"defaults", topology.Limits{}, connBudget{d.Connections, d.OutsiderConnections, d.ConnectionsPerSource, d.ConnectionsPerPrefix}},
		{"set", topology.Limits{Connections: 256, OutsiderConnections: 128, ConnectionsPerSource: 2, ConnectionsPerPrefix: 16},
			connBudget{256, 128, 2, 16}},
		{"some set", topology.Limits{MaxCalls: 5, ConnectionsPerSource: 1}, connBudget{d.Connections, d.OutsiderConnections, 1, d.ConnectionsPerPrefix}},
		{"outsiders as many as the total", topology.Limits{Connections: 100, OutsiderConnections: 100, ConnectionsPerSource: 1, ConnectionsPerPrefix: 1},
			connBudget{100, 99, 1, 1}},
		{"outsiders' default above the total", topology.Limits{Connections: 10}, connBudget{10, 9, d.ConnectionsPerSource, d.ConnectionsPerPrefix}},
		{"a total of one is the peers'", topology.Limits{Connections: 1}, connBudget{1, 0, d.ConnectionsPerSource, d.ConnectionsPerPrefix}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := budgetOf(tc.l); got != tc.want {
				t.Errorf("budgetOf(%+v) = %+v, want %+v", tc.l, got, tc.want)
			}
		})
	}
}

// fakeConn is an accepted connection from remote, for driving admit
// without sockets.
type fakeConn struct {
	net.Conn
	remote *net.TCPAddr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr             { return c.remote }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) Close() error                     { c.closed = true; return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// budgetListener is a limitListener on budget b whose peers are the
// addresses in peers; it counts the refusals by reason.
func budgetListener(b connBudget, peers ...netip.Addr) (*limitListener, map[connRefusal]int) {
	refused := map[connRefusal]int{}
	l := newLimitListener(nil, func(ip netip.Addr) connRules {
		return connRules{peer: slices.Contains(peers, ip), budget: b}
	}, func(_ netip.Addr, _ string, _ bool, why connRefusal) { refused[why]++ }, func(error) {})
	return l, refused
}

func from(ip netip.Addr) *fakeConn {
	return &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 40000))}
}

// The failure of issue 10: a thousand outside addresses, each within its
// own budget, once filled the listener and locked the carrier out. Now
// they hold their share and no more, and the carrier gets all the rest.
func TestOutsidersNeverTakeThePeersShare(t *testing.T) {
	b := connBudget{total: 256, outsiders: 128, perSource: 4, perPrefix: 64}
	carrier := netip.MustParseAddr("198.51.100.7")
	l, refused := budgetListener(b, carrier)
	admitted := 0
	for i := range 1000 {
		for range 4 {
			if l.admit(from(netip.AddrFrom4([4]byte{203, byte(i / 100), byte(i % 100), 1}))) != nil {
				admitted++
			}
		}
	}
	if admitted != b.outsiders || refused[refusedOutsiders] != 4000-b.outsiders {
		t.Fatalf("outsiders hold %d connections (refusals %v), want their share of %d", admitted, refused, b.outsiders)
	}
	var peers []net.Conn
	for range b.total - b.outsiders {
		c := l.admit(from(carrier))
		if c == nil {
			t.Fatalf("the carrier was refused with %d connections open, of %d", len(peers)+b.outsiders, b.total)
		}
		peers = append(peers, c)
	}
	if l.admit(from(carrier)) != nil || refused[refusedFull] != 1 {
		t.Errorf("the carrier got beyond the total (refusals %v)", refused)
	}
	// With the peers holding all but the outsiders' share, a closed
	// outsider slot goes to the next outsider, and a peer's to a peer.
	peers[0].Close()
	if l.admit(from(netip.MustParseAddr("203.0.113.1"))) != nil {
		t.Error("an outsider took a slot a peer gave back, with the outsiders' share full")
	}
	if l.admit(from(carrier)) == nil {
		t.Error("the carrier did not get its slot back")
	}
}

// Whatever the order of opens and closes, from peers and from outsiders
// of IPv4 and IPv6 addresses and prefixes, the counts stay within the
// budgets, a refusal is always for a budget that is really full, and a
// peer is never refused while the listener has room.
func TestLimitListenerBudgetsHold(t *testing.T) {
	b := connBudget{total: 40, outsiders: 16, perSource: 3, perPrefix: 6}
	peer := netip.MustParseAddr("10.0.0.1")
	l, refused := budgetListener(b, peer)
	type held struct {
		c  net.Conn
		ip netip.Addr
	}
	var open []held
	count := func(match func(netip.Addr) bool) int {
		n := 0
		for _, h := range open {
			if match(h.ip) {
				n++
			}
		}
		return n
	}
	rng := rand.New(rand.NewPCG(10, 2))
	for step := range 20000 {
		if len(open) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(open))
			open[i].c.Close()
			open = slices.Delete(open, i, i+1)
			continue
		}
		ip := peer
		switch rng.IntN(4) {
		case 1, 2: // one of 40 addresses in 8 /24s
			ip = netip.AddrFrom4([4]byte{192, 0, byte(rng.IntN(8)), byte(rng.IntN(5))})
		case 3: // one of 40 addresses in 4 /64s
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(rng.IntN(4)), 15: byte(rng.IntN(10))})
		}
		outside := func(a netip.Addr) bool { return a != peer }
		c := connCounts{open: len(open), outsiders: count(outside), source: count(func(a netip.Addr) bool { return a == ip }),
			prefix: count(func(a netip.Addr) bool { return outside(a) && prefixOf(a) == prefixOf(ip) })}
		want := b.refusal(ip == peer, c)
		got := l.admit(from(ip))
		if (got == nil) != (want != connFits) {
			t.Fatalf("step %d: %s with %+v: admitted %v, want refusal %q", step, ip, c, got != nil, want)
		}
		if got != nil {
			open = append(open, held{got, ip})
		}
		if len(open) > b.total || count(outside) > b.outsiders || (ip == peer && got == nil && len(open) < b.total) {
			t.Fatalf("step %d: %d open, %d of them outsiders, over budget %+v", step, len(open), count(outside), b)
		}
	}
	for _, why := range []connRefusal{refusedFull, refusedOutsiders, refusedSource, refusedPrefix} {
		if refused[why] == 0 {
			t.Errorf("no refusal for %q in the run: %v", why, refused)
		}
	}
	for _, h := range open {
		h.c.Close()
		h.c.Close() // a second close gives nothing back twice
	}
	if l.open != 0 || l.outsiders != 0 || len(l.bySource) != 0 || len(l.byPrefix) != 0 {
		t.Errorf("all closed, the listener still counts %d open, %d outsiders, %d sources, %d prefixes",
			l.open, l.outsiders, len(l.bySource), len(l.byPrefix))
	}
}

// dialFrom opens a TCP connection to addr from the local address src; nil
// when it was reset as soon as it was made (a refusal can come that fast).
func dialFrom(t *testing.T, src netip.Addr, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type refusal struct {
		src  netip.Addr
		peer bool
		why  connRefusal
	}
	var mu sync.Mutex
	var refused []refusal
	var acceptErrs int
	peer := netip.MustParseAddr("127.0.0.9")
	drop := false
	b := connBudget{total: 6, outsiders: 4, perSource: 3, perPrefix: 100}
	ll := newLimitListener(&flakyListener{Listener: raw, fails: 3},
		func(ip netip.Addr) connRules {
			mu.Lock()
			defer mu.Unlock()
			return connRules{peer: ip == peer, drop: drop, budget: b}
		},
		func(src netip.Addr, _ string, peer bool, why connRefusal) {
			mu.Lock()
			refused = append(refused, refusal{src, peer, why})
			mu.Unlock()
		},
		func(error) { mu.Lock(); acceptErrs++; mu.Unlock() })
	ll.lifetime = 300 * time.Millisecond
	defer ll.Close()

	accepted := make(chan net.Conn, 16)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				done <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) net.Conn { return dialFrom(t, netip.MustParseAddr(src), raw.Addr().String()) }
	got := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
		}
		return nil
	}
	none := func() {
		t.Helper()
		select {
		case c := <-accepted:
			t.Fatalf("connection from %s accepted over the limit", c.RemoteAddr())
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Accept errors are survived; then an outside source gets its 3.
	var outside []net.Conn
	for range 3 {
		dial("127.0.0.1")
		outside = append(outside, got())
	}
	dial("127.0.0.1")
	none()
	mu.Lock()
	if acceptErrs != 3 {
		t.Errorf("%d accept errors reported, want 3", acceptErrs)
	}
	mu.Unlock()
	// Another outside source gets the last of the outsiders' share.
	dial("127.0.0.2")
	got()
	dial("127.0.0.2")
	none()

	// Their connections expire: a read on the server side times out.
	start := time.Now()
	if _, err := outside[0].Read(make([]byte, 1)); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("outsider's connection read: %v after %v, want a deadline error after ~300ms", err, time.Since(start))
	}
	// Closing one gives its slot back.
	outside[0].Close()
	dial("127.0.0.2")
	got()

	// Peers have the rest of the total: 2.
	dial(peer.String())
	got()
	dial(peer.String())
	got()
	dial(peer.String())
	none()

	// A zone that drops outsiders closes their connections at once, with
	// nothing written (a reset), however much room there is.
	mu.Lock()
	drop = true
	mu.Unlock()
	outside[1].Close()
	if c := dial("127.0.0.3"); c != nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 64)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a dropped outsider read %d bytes, %v; want nothing and the connection closed", n, err)
		}
	}
	none()

	want := []refusal{{netip.MustParseAddr("127.0.0.1"), false, refusedSource}, {netip.MustParseAddr("127.0.0.2"), false, refusedOutsiders},
		{peer, true, refusedFull}, {netip.MustParseAddr("127.0.0.3"), false, refusedOutsiderDrop}}
	mu.Lock()
	if !slices.Equal(refused, want) {
		t.Errorf("refusals %+v, want %+v", refused, want)
	}
	mu.Unlock()

	ll.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// A closed connection's TLS state stays known for a while, for requests it
// carried that are still being handled; a newer connection from the same
// address keeps its own state when the older one's grace runs out.
func TestConnStatesOutliveClose(t *testing.T) {
	s := newConnStates()
	var expire []func()
	s.after = func(f func()) { expire = append(expire, f) }
	older, newer := &tls.ConnectionState{Version: tls.VersionTLS12}, &tls.ConnectionState{Version: tls.VersionTLS13}

	s.put("192.0.2.1:5061", older)
	s.release("192.0.2.1:5061", older)
	if s.get("192.0.2.1:5061") != older {
		t.Fatal("the state was forgotten at the close")
	}
	s.put("192.0.2.1:5062", older)
	s.release("192.0.2.1:5062", older)
	s.put("192.0.2.1:5062", newer)
	if len(expire) != 2 {
		t.Fatalf("%d expiries scheduled, want 2", len(expire))
	}
	for _, f := range expire {
		f()
	}
	if s.get("192.0.2.1:5061") != nil {
		t.Error("the state outlived its grace")
	}
	if s.get("192.0.2.1:5062") != newer {
		t.Error("the older connection's release removed the newer one's state")
	}
}
