package bench

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// The flood benchmarks measure what strangers cost parapet: INVITEs from
// addresses outside the zones' peers (127.1.x.y; the peers are 127.0.0.1),
// each from its own socket, over UDP to the real b2bua in this process.
//
// BenchmarkOutsiderFlood: an op is one stranger's INVITE absorbed (counted
// in the zone's outsiders tally): answered with a stateless 403 (budgets
// raised so every one is), dropped beyond the default budgets (nearly all
// are, at this rate), or dropped by `outsiders = "drop"` (budgets raised, so
// each is parsed and judged); and the floor, a bare socket that reads and discards
// the same datagrams. cpu-ns/op is the process's CPU per INVITE, sender
// included (it is in the floor too); req/s/core = 1e9 / cpu-ns/op.
//
// BenchmarkCallUnderFlood: one legitimate call at a time (as
// BenchmarkCallSetupTeardown) with no flood, and while 2,000 INVITEs a second
// from 1,024 strangers go to the same listener.

const floodSockets = 1024

// flooders are sockets on floodSockets outside addresses.
func flooders(b *testing.B) []*net.UDPConn {
	b.Helper()
	conns := make([]*net.UDPConn, 0, floodSockets)
	for i := range floodSockets {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 1, byte(i/200), byte(1+i%200))})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	return conns
}

// strangerInvite is INVITE n from c to target.
func strangerInvite(c *net.UDPConn, target string, n int) []byte {
	local, id := c.LocalAddr().String(), "flood-"+strconv.Itoa(n)
	return []byte(strings.Join([]string{
		"INVITE sip:+15550100@" + target + " SIP/2.0",
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id,
		"Max-Forwards: 70",
		"From: <sip:caller@" + local + ">;tag=" + id,
		"To: <sip:+15550100@" + target + ">",
		"Call-ID: " + id,
		"CSeq: 1 INVITE",
		"Contact: <sip:caller@" + local + ">",
		"Content-Length: 0", "", ""}, "\r\n"))
}

// sendWindowed sends n INVITEs round the flooders to target, with at most
// window not yet absorbed (absorbed reports how many are), so that no
// socket buffer overflows and every one is counted.
func sendWindowed(b *testing.B, conns []*net.UDPConn, target string, n int, absorbed func() int) {
	to, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		b.Fatal(err)
	}
	const window = 64 // small datagrams take ~2 KB each of a socket buffer (truesize)
	msgs := make([][]byte, len(conns))
	for i, c := range conns {
		msgs[i] = strangerInvite(c, target, i)
	}
	done := 0
	for sent := 0; sent < n; sent++ {
		for sent-done >= window {
			if done = absorbed(); sent-done >= window {
				time.Sleep(50 * time.Microsecond)
			}
		}
		i := sent % len(conns)
		if _, err := conns[i].WriteToUDP(msgs[i], to); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for absorbed() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d INVITEs absorbed", absorbed(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkOutsiderFlood(b *testing.B) {
	raised := topology.DefaultLimits
	raised.OutsiderRate, raised.PrefixRate, raised.SourceRate = 1e6, 1e6, 1e6
	for _, c := range []struct {
		name string
		edit func(*b2bua.Config)
	}{
		{"answered", func(c *b2bua.Config) { c.Limits = raised }},
		{"over-budget", nil},
		{"dropped", func(c *b2bua.Config) { c.Limits = raised; c.Zones[0].Outsiders = topology.RefusalDrop }},
	} {
		b.Run(c.name, func(b *testing.B) {
			l := newCallLabWith(b, false, c.edit)
			conns := flooders(b)
			target := l.srv.Addrs("pbx")[policy.TransportUDP].String()
			absorbed := func() int {
				n := 0
				for _, v := range l.srv.Stats().Outsiders {
					n += int(v)
				}
				return n
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			sendWindowed(b, conns, target, b.N, absorbed)
			b.StopTimer()
			reportFlood(b, processCPU(b)-cpu)
		})
	}
	b.Run("floor", func(b *testing.B) {
		sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer sink.Close()
		var mu sync.Mutex
		read := 0
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, _, err := sink.ReadFromUDP(buf); err != nil {
					return
				}
				mu.Lock()
				read++
				mu.Unlock()
			}
		}()
		conns := flooders(b)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := processCPU(b)
		sendWindowed(b, conns, sink.LocalAddr().String(), b.N, func() int { mu.Lock(); defer mu.Unlock(); return read })
		b.StopTimer()
		reportFlood(b, processCPU(b)-cpu)
	})
}

func reportFlood(b *testing.B, cpu time.Duration) {
	perOp := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	b.ReportMetric(1e9/perOp, "req/s/core")
}

// BenchmarkCallUnderFlood: a legitimate call's setup and teardown, alone
// and under a flood of 2,000 strangers' INVITEs a second.
func BenchmarkCallUnderFlood(b *testing.B) {
	for _, rate := range []int{0, 2000} {
		b.Run(fmt.Sprintf("flood=%d/s", rate), func(b *testing.B) {
			l := newCallLab(b, false)
			l.call(b)
			l.waitRecords(b, 1)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if rate > 0 {
				conns := flooders(b)
				target := l.srv.Addrs("pbx")[policy.TransportUDP].String()
				wg.Go(func() { floodAt(b, conns, target, rate, stop) })
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			for i := range b.N {
				l.call(b)
				l.waitRecords(b, int64(i)+2)
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			l.report(b, processCPU(b)-cpu, 0)
		})
	}
}

// floodAt sends INVITEs to target at rate per second until stop closes.
func floodAt(b *testing.B, conns []*net.UDPConn, target string, rate int, stop <-chan struct{}) {
	to, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		b.Error(err)
		return
	}
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		for due := int(time.Since(start).Seconds() * float64(rate)); sent < due; sent++ {
			c := conns[sent%len(conns)]
			if _, err := c.WriteToUDP(strangerInvite(c, target, sent), to); err != nil {
				b.Error(err)
				return
			}
		}
	}
}
