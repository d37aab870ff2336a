package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// The call benchmarks measure the signaling cost of one call through the
// real b2bua in this process: a simulated PBX (UDP, plain RTP) calls
// through parapet to a simulated carrier (TLS 1.3, SDES-SRTP, one pooled
// connection), the caller hangs up, and the op ends when the call's record
// is fsync'd in a real compliance log on disk. Run with and without the
// live-call journal, which adds a begin entry (not waited for), an update
// before the 200 (waited for: one fsync on the call path, shared by the
// calls that answer at the same time) and an end entry after the record.
// Keep -benchtime small (200x): every op is a real call.

// callLab is parapet with its peers and its log.
type callLab struct {
	pbx, carrier *sim.Peer
	srv          *b2bua.Server
	writer       *compliance.Writer
	journal      *compliance.Journal
	uri          string
	records      atomic.Int64 // call records in the log
	recorded     chan struct{}
}

// countingSink appends to the log and counts call records.
type countingSink struct{ l *callLab }

func (s countingSink) Append(r *compliance.Record) error {
	if err := s.l.writer.Append(r); err != nil {
		return err
	}
	if r.Call != nil {
		s.l.records.Add(1)
		select {
		case s.l.recorded <- struct{}{}:
		default:
		}
	}
	return nil
}

var quietOnce sync.Once

func newCallLab(b *testing.B, journal bool) *callLab { return newCallLabWith(b, journal, nil) }

// newCallLabWith is newCallLab with edit applied to the server's
// configuration before it starts. The zones' only peer is 127.0.0.1, where
// the simulated peers are: other loopback addresses are outsiders.
func newCallLabWith(b *testing.B, journal bool, edit func(*b2bua.Config)) *callLab {
	b.Helper()
	dir := b.TempDir()
	loop := netip.MustParseAddr("127.0.0.1")
	quiet := slog.New(slog.DiscardHandler)
	// sipgo's connection reference warnings, from the peers' side too.
	quietOnce.Do(func() { b2bua.SetProcessLogger(quiet) })
	pki, err := certs.EnsureLab(filepath.Join(dir, "certs"))
	if err != nil {
		b.Fatal(err)
	}
	peerTLS, err := certs.NewZone(certs.Options{Zone: "sim", MinVersion: tls.VersionTLS12, CertFile: pki.PeerCertFile,
		KeyFile: pki.PeerKeyFile, CAFile: pki.CAFile, VerifyPeer: true, ClientAuth: "request"})
	if err != nil {
		b.Fatal(err)
	}
	l := &callLab{recorded: make(chan struct{}, 1)}
	if l.carrier, err = sim.New(sim.Config{Name: "carrier", Transport: "tls", Listen: netip.AddrPortFrom(loop, 0),
		ServerTLS: peerTLS.ServerConfig(), ClientTLS: peerTLS.ClientConfig(), Logger: quiet}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.carrier.Close)
	if l.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, 0), Logger: quiet}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.pbx.Close)
	go func() { // the carrier answers; its sessions end with the caller's BYE
		for range l.carrier.Incoming() {
		}
	}()

	state := filepath.Join(dir, "state")
	opts := compliance.WriterOptions{Version: "bench"}
	if journal {
		if l.journal, err = compliance.OpenJournal(filepath.Join(state, compliance.JournalFile), compliance.JournalOptions{}); err != nil {
			b.Fatal(err)
		}
		opts.Journal = l.journal
	}
	if l.writer, err = compliance.OpenWriter(filepath.Join(state, "compliance.jsonl"), opts); err != nil {
		b.Fatal(err)
	}
	zoneTLS, err := certs.NewZone(certs.Options{Zone: "carrier", MinVersion: tls.VersionTLS12, VerifyPeer: true,
		ClientAuth: "request", Lab: pki})
	if err != nil {
		b.Fatal(err)
	}
	loopNet := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg := b2bua.Config{
		Zones: []topology.Zone{
			{Policy: policy.Zone{Name: "pbx", Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
				SRTP: policy.RequirementAllow, Suites: policy.DefaultSuites, Peers: loopNet},
				Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)}}},
			{Policy: policy.Zone{Name: "carrier", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
				VerifyPeer: true, ClientAuth: policy.ClientAuthRequest, SRTP: policy.RequirementRequire,
				KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES}, Suites: policy.DefaultSuites, Peers: loopNet},
				Listen: []topology.Listener{{Transport: policy.TransportTLS, Addr: netip.AddrPortFrom(loop, 0)}}},
		},
		TLS: map[string]b2bua.ZoneTLS{"carrier": {Server: zoneTLS.ServerConfig(), Client: zoneTLS.ClientConfig()}},
		Routes: []topology.Route{{Name: "outbound", From: "pbx", To: "carrier",
			Target: topology.Target{Host: "127.0.0.1", Port: int(l.carrier.Addr().Port()), Transport: policy.TransportTLS, Secure: true}}},
		Media:         topology.Media{Address: loop, PortMin: 46000, PortMax: 47999, Timeout: time.Minute},
		PolicyHash:    "sha256:bench",
		Sink:          countingSink{l},
		Pseudonymizer: compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef")),
		Logger:        quiet,
	}
	if l.journal != nil {
		cfg.Journal = l.journal
	}
	if edit != nil {
		edit(&cfg)
	}
	if l.srv, err = b2bua.New(cfg); err != nil {
		b.Fatal(err)
	}
	if err := l.srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.srv.Shutdown(ctx)
		l.writer.Close()
		if l.journal != nil {
			l.journal.Close()
		}
	})
	l.uri = fmt.Sprintf("sip:+15551230000@%s", l.srv.Addrs("pbx")[policy.TransportUDP])
	return l
}

// call places one call and hangs it up.
func (l *callLab) call(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := l.pbx.Call(ctx, l.uri, sim.CallOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Hangup(ctx); err != nil {
		b.Fatal(err)
	}
}

// waitRecords waits until n call records are in the log.
func (l *callLab) waitRecords(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for l.records.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d call records in the log", l.records.Load(), n)
		}
		select {
		case <-l.recorded:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reportCall adds calls/s, the CPU time per call (the whole process:
// parapet and both simulated peers, so differences are parapet's) and the
// journal's fsyncs per call.
func (l *callLab) report(b *testing.B, cpu time.Duration, syncs uint64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if l.journal != nil {
		b.ReportMetric(float64(l.journal.Syncs()-syncs)/float64(b.N), "fsyncs/call")
	}
}

// syncs is the journal's fsync count so far.
func (l *callLab) syncs() uint64 {
	if l.journal == nil {
		return 0
	}
	return l.journal.Syncs()
}

func journalModes(b *testing.B, f func(b *testing.B, journal bool)) {
	for _, j := range []bool{false, true} {
		name := "journal=off"
		if j {
			name = "journal=on"
		}
		b.Run(name, func(b *testing.B) { f(b, j) })
	}
}

// BenchmarkCallSetupTeardown is one call at a time: INVITE, 200, ACK, BYE,
// and the record in the log. ns/op is a call's whole signaling latency.
func BenchmarkCallSetupTeardown(b *testing.B) {
	journalModes(b, func(b *testing.B, journal bool) {
		l := newCallLab(b, journal)
		l.call(b) // the TLS connection to the carrier is pooled from here
		l.waitRecords(b, 1)
		b.ReportAllocs()
		b.ResetTimer()
		cpu, syncs := processCPU(b), l.syncs()
		for i := range b.N {
			l.call(b)
			l.waitRecords(b, int64(i)+2)
		}
		b.StopTimer()
		l.report(b, processCPU(b)-cpu, syncs)
	})
}

// BenchmarkCallSetupTeardownParallel is 8 callers at once (4 per CPU on 2
// CPUs): what group commit is for. ns/op is per call, wall time.
func BenchmarkCallSetupTeardownParallel(b *testing.B) {
	journalModes(b, func(b *testing.B, journal bool) {
		l := newCallLab(b, journal)
		l.call(b)
		l.waitRecords(b, 1)
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		cpu, syncs := processCPU(b), l.syncs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.call(b)
			}
		})
		l.waitRecords(b, int64(b.N)+1)
		b.StopTimer()
		l.report(b, processCPU(b)-cpu, syncs)
	})
}

// BenchmarkFsync is the floor under the journal's cost: one 3 KB append
// (about a journal entry) and its fsync, on the disk of the temporary
// directory, as the machine's load allows at the time.
func BenchmarkFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "fsync"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := make([]byte, 3000)
	for range b.N {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
