package b2bua_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// The connection flood of issue 10 (defect 2), sized for a small shared
// machine: 1,000 outside addresses against a listener of 256 connections
// of which outsiders may hold 128.
const (
	floodSources = 1000
	floodCalls   = 5
)

var floodLimits = topology.Limits{Connections: 256, OutsiderConnections: 128, ConnectionsPerSource: 2, ConnectionsPerPrefix: 32}

// floodSource is the i-th outside address: 127.20.x.y, ten /24s of a
// hundred addresses (all of 127.0.0.0/8 is local on Linux).
func floodSource(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 20, byte(i / 100), byte(i%100 + 1)})
}

// flood opens and holds connections on a TLS listener from many outside
// addresses, one at a time per address, and opens another whenever one is
// closed or refused. A third of the sources complete TLS and hold the
// connection, a third connect and say nothing, a third offer only TLS 1.0
// (refused at the handshake).
type flood struct {
	attempts, failed, held, handshakes atomic.Int64
	cancel                             context.CancelFunc
	wg                                 sync.WaitGroup
}

func startFlood(t *testing.T, target netip.AddrPort, sources int, cfg *tls.Config) *flood {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &flood{cancel: cancel}
	for i := range sources {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 10))
			for ctx.Err() == nil {
				if !f.connect(ctx, floodSource(i), target, i%3, cfg) {
					// Refused: try again soon, as an attacker would, but
					// not so fast as to eat the machine's cores.
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(150+rng.IntN(100)) * time.Millisecond):
					}
				}
			}
		}()
	}
	t.Cleanup(f.stop)
	return f
}

// connect makes one connection of the kind given and holds it until it is
// closed; it reports whether it was ever held.
func (f *flood) connect(ctx context.Context, src netip.Addr, target netip.AddrPort, kind int, cfg *tls.Config) bool {
	f.attempts.Add(1)
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 5 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		f.failed.Add(1)
		return false
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var c net.Conn = raw
	switch kind {
	case 0: // TLS, then silence
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			f.failed.Add(1)
			return false
		}
		f.handshakes.Add(1)
		c = tc
	case 1: // silence: a refused connection is reset at once
		raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := raw.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			f.failed.Add(1)
			return false
		}
		raw.SetReadDeadline(time.Time{})
	default: // TLS 1.0 only: parapet refuses the handshake
		old := cfg.Clone()
		old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		tls.Client(raw, old).HandshakeContext(ctx)
		f.failed.Add(1)
		return false
	}
	f.held.Add(1)
	defer f.held.Add(-1)
	for {
		if _, err := c.Read(make([]byte, 512)); err != nil {
			return true
		}
	}
}

func (f *flood) stop() {
	f.cancel()
	f.wg.Wait()
}

// raiseNoFile makes sure the process may open n files, raising its soft
// limit toward the hard one if it must.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cur >= n {
		return
	}
	if r.Max < n {
		t.Fatalf("the flood needs %d file descriptors; the hard limit is %d (raise it: ulimit -Hn)", n, r.Max)
	}
	old := r
	r.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// newCarrierPeer is another carrier, from 127.0.0.1 like the lab's, with
// its own TLS connection to parapet.
func newCarrierPeer(t *testing.T, l *lab, name string) *sim.Peer {
	t.Helper()
	z, err := certs.NewZone(certs.Options{Zone: "sim-" + name, MinVersion: tls.VersionTLS12,
		CertFile: l.pki.PeerCertFile, KeyFile: l.pki.PeerKeyFile, CAFile: l.pki.CAFile, VerifyPeer: true, ClientAuth: "request"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sim.New(sim.Config{Name: name, Transport: "tls", Listen: netip.AddrPortFrom(loop, 0),
		ServerTLS: z.ServerConfig(), ClientTLS: z.ClientConfig(), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// floodClientTLS is what the flood's TLS clients use: the lab CA, no
// client certificate.
func floodClientTLS(t *testing.T, l *lab) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(l.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no lab CA certificate")
	}
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Issue 10, defect 2: outsiders once locked the carrier out of TLS by
// filling the listener. A thousand outside addresses now open and hold
// connections on the carrier zone's TLS listener, and reopen them as they
// are refused or closed; they fill the outsiders' share and no more, and
// every call the carrier places meanwhile, each on a new TLS connection,
// is answered. Their refusals are counted in the zone's tally, not
// recorded one by one.
func TestConnectionFloodLeavesTheCarrierRoom(t *testing.T) {
	raiseNoFile(t, 2*floodSources+1024)
	carrierOnly := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	l := newLab(t, labOptions{limits: floodLimits, carrierZone: func(z *policy.Zone) { z.Peers = carrierOnly }})
	ctx := ctxT(t)

	start := time.Now()
	f := startFlood(t, l.carrierTLS, floodSources, floodClientTLS(t, l))
	waitFor(t, 15*time.Second, "the flood to fill the outsiders' share", func() bool {
		_, out := l.srv.HeldConns("carrier")
		return out == floodLimits.OutsiderConnections && l.srv.Stats().Outsiders["connection"] > 0
	})
	saturated := time.Since(start)

	var setups []time.Duration
	for i := range floodCalls {
		carrier := newCarrierPeer(t, l, fmt.Sprintf("carrier%d", i))
		// Each call while the flood goes on (another round of attempts
		// from every source since the last) and holds the outsiders'
		// whole share.
		next := f.attempts.Load() + floodSources
		waitFor(t, 15*time.Second, "another round of the flood with the outsiders' share full", func() bool {
			_, out := l.srv.HeldConns("carrier")
			return f.attempts.Load() >= next && out == floodLimits.OutsiderConnections
		})
		t0 := time.Now()
		caller, err := carrier.Call(ctx, fmt.Sprintf("sip:+15557650000@%s;transport=tls", l.carrierTLS), sim.CallOptions{SRTP: true})
		if err != nil {
			t.Fatalf("carrier call %d during the flood: %v", i, err)
		}
		setups = append(setups, time.Since(t0))
		incoming(t, l.pbx)
		if err := caller.Hangup(ctx); err != nil {
			t.Fatalf("carrier call %d: hangup: %v", i, err)
		}
	}
	calls := l.sink.waitCalls(t, floodCalls)
	st := l.srv.Stats()
	f.stop()
	elapsed := time.Since(start)
	for _, c := range calls {
		if c.Disposition != compliance.DispositionAnswered {
			t.Errorf("carrier call: %s %d", c.Disposition, c.SIPStatus)
		}
	}
	t.Logf("flood: %d sources, %d connections attempted in %v (%d refused or failed, %d TLS handshakes completed); "+
		"outsiders' share full after %v; parapet refused %d at accept, %d TLS handshakes from outsiders; carrier call setup %v",
		floodSources, f.attempts.Load(), elapsed.Round(time.Millisecond), f.failed.Load(), f.handshakes.Load(),
		saturated.Round(time.Millisecond), st.Outsiders["connection"], st.Outsiders["tls_refused"], setups)
	if st.Outsiders["tls_refused"] == 0 {
		t.Errorf("stats %+v: no refused handshake from the outsiders counted", st)
	}

	checkFloodRecords(t, l, elapsed)
}

// checkFloodRecords shuts the lab's server down and checks that the log
// grew by the calls and the carrier zone's outsider tallies (one per 10 s
// period and one at shutdown), whatever the number of strangers, and that
// the tallies count every refusal the stats do.
func checkFloodRecords(t *testing.T, l *lab, elapsed time.Duration) {
	t.Helper()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	// A handshake cut by the shutdown may fail a moment after it: counted
	// then, and tallied at once, in a record of its own.
	var tally compliance.OutsiderTally
	var st b2bua.Stats
	periods := 0
	poll(3*time.Second, func() bool {
		tally, periods = sumTallies(t, l)
		st = l.srv.Stats()
		return tally.Connections == st.Outsiders["connection"] && tally.TLSRefused == st.Outsiders["tls_refused"]
	})
	if most := int(elapsed/(10*time.Second)) + 2; periods == 0 || periods > most {
		t.Errorf("%d outsiders records in %v, want 1 to %d", periods, elapsed, most)
	}
	// Every refusal was an outsider's, counted in the totals and the
	// tallies alike.
	if tally.Connections != st.Outsiders["connection"] || tally.TLSRefused != st.Outsiders["tls_refused"] ||
		st.ConnsRefused != tally.Connections || st.TLSRefused != tally.TLSRefused {
		t.Errorf("the tallies count %d connections and %d handshakes refused; the stats %d and %d of outsiders, %d and %d in all",
			tally.Connections, tally.TLSRefused, st.Outsiders["connection"], st.Outsiders["tls_refused"], st.ConnsRefused, st.TLSRefused)
	}
	if n := l.sink.count(); n != floodCalls+periods {
		t.Errorf("%d records, want the %d calls and the %d tallies", n, floodCalls, periods)
	}
}

// A zone with outsiders = "drop" closes an outsider's connection as it is
// accepted: no handshake, not a byte (not even a TLS alert). Switched on
// by a reload, it applies to the next connection; peers are served as
// before.
func TestDroppedOutsidersGetNoTLS(t *testing.T) {
	carrierOnly := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	l := newLab(t, labOptions{carrierZone: func(z *policy.Zone) { z.Peers = carrierOnly }})
	cfg := floodClientTLS(t, l)
	outsider := netip.MustParseAddr("127.0.0.2")
	// handshake tries TLS from outsider and returns how many bytes
	// parapet sent back.
	handshake := func() (int64, error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(outsider, 0))}
		raw, err := d.Dial("tcp", l.carrierTLS.String())
		if err != nil {
			return 0, err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(5 * time.Second))
		cc := &countingConn{Conn: raw}
		err = tls.Client(cc, cfg).Handshake()
		return cc.n.Load(), err
	}
	if n, err := handshake(); err != nil || n == 0 {
		t.Fatalf("zone refusing outsiders: handshake %v after %d bytes, want it done (their requests get 403)", err, n)
	}

	next := l.cfg
	next.Zones = slices.Clone(next.Zones)
	next.Zones[1].Outsiders = topology.RefusalDrop
	if err := l.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	n, err := handshake()
	if err == nil || n != 0 {
		t.Errorf("zone dropping outsiders: handshake %v after %d bytes from parapet, want it cut with none", err, n)
	}
	if st := l.srv.Stats(); st.Outsiders["connection"] != 1 || st.ConnsRefused != 1 {
		t.Errorf("Outsiders[connection] = %d, ConnsRefused = %d; want 1 and 1", st.Outsiders["connection"], st.ConnsRefused)
	}
	caller, err := l.callIn(ctxT(t), sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatalf("carrier call with outsiders dropped: %v", err)
	}
	incoming(t, l.pbx)
	caller.Hangup(ctxT(t))
}

// sumTallies sums the carrier zone's outsider tallies in l's log, and
// counts them; any other connection record is an error.
func sumTallies(t *testing.T, l *lab) (compliance.OutsiderTally, int) {
	t.Helper()
	var tally compliance.OutsiderTally
	periods := 0
	for _, e := range l.sink.conns() {
		if e.Event != compliance.EventOutsiders || e.Zone != "carrier" {
			t.Errorf("a %s record from %s in zone %s: outsiders go to the tally", e.Event, e.Remote, e.Zone)
			continue
		}
		periods++
		tally.Connections += e.Tally.Connections
		tally.TLSRefused += e.Tally.TLSRefused
	}
	return tally, periods
}

// count is how many records the sink holds.
func (m *memSink) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// countingConn counts the bytes read from it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}
