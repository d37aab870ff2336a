package b2bua_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

var loop = netip.MustParseAddr("127.0.0.1")

// memSink keeps records in memory and can be told to fail.
type memSink struct {
	mu   sync.Mutex
	recs []*compliance.Record
	fail error
}

func (m *memSink) Append(r *compliance.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	// Round-trip through JSON, as the log would: what is not serialisable
	// does not count.
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var cp compliance.Record
	if err := json.Unmarshal(b, &cp); err != nil {
		return err
	}
	m.recs = append(m.recs, &cp)
	return nil
}

func (m *memSink) calls() []*compliance.Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*compliance.Call
	for _, r := range m.recs {
		if r.Type == compliance.TypeCall {
			out = append(out, r.Call)
		}
	}
	return out
}

func (m *memSink) conns() []*compliance.ConnEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*compliance.ConnEvent
	for _, r := range m.recs {
		if r.Type == compliance.TypeConnection {
			out = append(out, r.Conn)
		}
	}
	return out
}

// outsiderTally ends the outsider tallies' period now and returns zone's
// tally (failing when there is none).
func (l *lab) outsiderTally(t *testing.T, zone string) *compliance.OutsiderTally {
	t.Helper()
	l.srv.FlushOutsiders()
	var tally *compliance.OutsiderTally
	for _, e := range l.sink.conns() {
		if e.Event == compliance.EventOutsiders && e.Zone == zone {
			tally = e.Tally
		}
	}
	if tally == nil {
		t.Fatalf("no outsiders record for zone %s", zone)
	}
	return tally
}

// waitCalls waits until n call records exist and returns them.
func (m *memSink) waitCalls(t *testing.T, n int) []*compliance.Call {
	t.Helper()
	var c []*compliance.Call
	if !poll(15*time.Second, func() bool { c = m.calls(); return len(c) >= n }) {
		t.Fatalf("want %d call records, have %d", n, len(c))
	}
	return c
}

type labOptions struct {
	carrierAnswer   sim.Answer
	pbxAnswer       sim.Answer
	carrierClient   *tls.Config // overrides the carrier's client TLS (to parapet)
	pbxPeers        []netip.Prefix
	pbxMode         policy.Mode
	pbxFeedback     topology.Feedback
	carrierFeedback topology.Feedback
	mediaTimeout    time.Duration
	holdTimeout     time.Duration
	carrierZone     func(*policy.Zone)
	pbxZone         func(*policy.Zone)
	outboundMatch   *regexp.Regexp
	parapetClient   func(*tls.Config) // tweak parapet's client TLS toward the carrier
	ipv6            bool              // everything on ::1 instead of 127.0.0.1
	carrierMTLS     bool              // the carrier requires a client certificate (mutual TLS)
	username        string            // digest credentials of the outbound route
	password        string
	outboundMax     int // max_calls of the outbound route
	journal         b2bua.Journal
	journalRefresh  time.Duration
	limits          topology.Limits // the site's budgets (zero: the defaults)
	pbxOutsiders    topology.Refusal
	pbxMaxCalls     int
	carrierOutside  topology.Refusal            // the carrier zone's outsiders setting
	pbxAlsoTCP      bool                        // the PBX listens on TCP too, on its UDP port
	extraFormats    int                         // sim.Config.ExtraFormats of both peers: large SDP
	inboundHost     string                      // the inbound route's target host instead of the PBX's
	pbxTrusted      bool                        // the PBX zone is in the trust domain (RFC 3325)
	transfer        bool                        // the PBX zone allows transfer (REFER)
	carrierTransfer bool                        // the carrier zone allows transfer (REFER)
	carrierTrusted  bool                        // the carrier zone is too
	emergency       []string                    // the emergency numbers
	emergencyMap    map[string]string           // the emergency services map (service URN to number)
	register        *topology.Register          // the outbound route registers (registrar: the carrier)
	registrar       *sim.Registrar              // the carrier is a registrar
	logger          *slog.Logger                // parapet's logger (default: discard)
	labHosts        []string                    // more names the lab certificates cover
	outbound        func(*topology.Route, *lab) // changes the outbound route
	sessionExpires  time.Duration               // both zones' session_expires, with a min_se of 1 s
	usersRegistrar  *topology.Registrar         // the carrier zone's registrar (its users register through parapet)
	inboundRelay    bool                        // the inbound route relays the PBX's digest challenges (auth_passthrough)
}

type lab struct {
	t       testing.TB
	dir     string
	pki     *certs.LabPKI
	sink    *memSink
	srv     *b2bua.Server
	cfg     b2bua.Config // what srv was built from
	pbx     *sim.Peer    // the PBX phone side (UDP, plain RTP)
	carrier *sim.Peer    // the carrier (TLS, SRTP)
	// parapet's listeners
	pbxUDP     netip.AddrPort
	carrierTLS netip.AddrPort
}

func discard() *slog.Logger {
	if os.Getenv("PARAPET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newLab(t testing.TB, o labOptions) *lab {
	t.Helper()
	dir := t.TempDir()
	pki, err := certs.EnsureLab(filepath.Join(dir, "certs"), o.labHosts...)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, dir: dir, pki: pki, sink: &memSink{}}
	loop, loopNet := loop, netip.MustParsePrefix("127.0.0.0/8")
	if o.ipv6 {
		loop, loopNet = netip.IPv6Loopback(), netip.MustParsePrefix("::1/128")
	}

	// The carrier presents the lab "peer" certificate and trusts the lab CA.
	carrierAuth := "request"
	if o.carrierMTLS {
		carrierAuth = "require"
	}
	carrierTLS, err := certs.NewZone(certs.Options{Zone: "sim-carrier", MinVersion: tls.VersionTLS12,
		CertFile: pki.PeerCertFile, KeyFile: pki.PeerKeyFile, CAFile: pki.CAFile, VerifyPeer: true, ClientAuth: carrierAuth})
	if err != nil {
		t.Fatal(err)
	}
	cc := carrierTLS.ClientConfig()
	if o.carrierClient != nil {
		cc = o.carrierClient
	}
	l.carrier, err = sim.New(sim.Config{Name: "carrier", Transport: "tls", Listen: netip.AddrPortFrom(loop, 0),
		ServerTLS: carrierTLS.ServerConfig(), ClientTLS: cc, Answer: o.carrierAnswer, Logger: discard(),
		ExtraFormats: o.extraFormats, Registrar: o.registrar})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.carrier.Close)
	l.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, 0),
		Answer: o.pbxAnswer, Logger: discard(), AlsoTCP: o.pbxAlsoTCP, ExtraFormats: o.extraFormats})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.pbx.Close)

	// parapet's carrier zone: lab certificate, lab CA, TLS 1.2+.
	zoneTLS, err := certs.NewZone(certs.Options{Zone: "carrier", MinVersion: tls.VersionTLS12, VerifyPeer: true,
		ClientAuth: "request", Lab: pki})
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := zoneTLS.ClientConfig()
	if o.parapetClient != nil {
		o.parapetClient(clientTLS)
	}
	pbxPeers := o.pbxPeers
	if pbxPeers == nil {
		pbxPeers = []netip.Prefix{loopNet}
	}
	carrierZone := policy.Zone{Name: "carrier", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
		VerifyPeer: true, ClientAuth: policy.ClientAuthRequest, SRTP: policy.RequirementRequire,
		KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES}, Suites: policy.DefaultSuites,
		Peers: []netip.Prefix{loopNet}}
	if o.carrierZone != nil {
		o.carrierZone(&carrierZone)
	}
	timeout := o.mediaTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	pbxZone := policy.Zone{Name: "pbx", Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
		SRTP: policy.RequirementAllow, Suites: policy.DefaultSuites, Peers: pbxPeers, Mode: o.pbxMode}
	if o.pbxZone != nil {
		o.pbxZone(&pbxZone)
	}
	// The outbound route's digest credentials, its password as if read
	// from the environment.
	inboundHost := loop.String()
	if o.inboundHost != "" {
		inboundHost = o.inboundHost
	}
	var auth *topology.Auth
	if o.username != "" || o.password != "" {
		auth = &topology.Auth{Username: o.username, PasswordEnv: "PARAPET_TEST_PASSWORD"}
	}
	cfg := b2bua.Config{
		Zones: []topology.Zone{
			{Policy: pbxZone,
				Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)},
					{Transport: policy.TransportTCP, Addr: netip.AddrPortFrom(loop, 0)}},
				Feedback: o.pbxFeedback, Outsiders: o.pbxOutsiders, MaxCalls: o.pbxMaxCalls, Trusted: o.pbxTrusted,
				Transfer: o.transfer},
			{Policy: carrierZone,
				Listen:    []topology.Listener{{Transport: policy.TransportTLS, Addr: netip.AddrPortFrom(loop, 0)}},
				Feedback:  o.carrierFeedback,
				Outsiders: o.carrierOutside,
				Trusted:   o.carrierTrusted,
				Registrar: o.usersRegistrar,
				Transfer:  o.carrierTransfer},
		},
		TLS: map[string]b2bua.ZoneTLS{"carrier": {Server: zoneTLS.ServerConfig(), Client: clientTLS}},
		Routes: []topology.Route{
			{Name: "outbound", From: "pbx", To: "carrier", Match: o.outboundMatch, Auth: auth,
				MaxCalls: o.outboundMax, Register: o.register,
				Target: topology.Target{Host: loop.String(), Port: int(l.carrier.Addr().Port()), Transport: policy.TransportTLS, Secure: true}},
			{Name: "inbound", From: "carrier", To: "pbx", AuthPassthrough: o.inboundRelay,
				Target: topology.Target{Host: inboundHost, Port: int(l.pbx.Addr().Port()), Transport: policy.TransportUDP}},
		},
		Getenv:         func(string) string { return o.password },
		Media:          topology.Media{Address: loop, PortMin: 30000, PortMax: 39999, Timeout: timeout, HoldTimeout: o.holdTimeout},
		Limits:         o.limits,
		Emergency:      topology.Emergency{Numbers: o.emergency, Services: o.emergencyMap},
		PolicyHash:     "sha256:test",
		Sink:           l.sink,
		Journal:        o.journal,
		JournalRefresh: o.journalRefresh,
		Pseudonymizer:  compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef")),
		Logger:         discard(),
	}
	if o.logger != nil {
		cfg.Logger = o.logger
	}
	if r := o.register; r != nil && r.Registrar.Host == "" {
		r.Registrar = cfg.Routes[0].Target
	}
	if o.outbound != nil {
		o.outbound(&cfg.Routes[0], l)
	}
	if o.sessionExpires > 0 {
		for i := range cfg.Zones {
			cfg.Zones[i].SessionExpires, cfg.Zones[i].MinSE = o.sessionExpires, time.Second
		}
	}
	l.cfg = cfg
	l.srv = startServer(t, cfg)
	l.pbxUDP = l.srv.Addrs("pbx")[policy.TransportUDP]
	l.carrierTLS = l.srv.Addrs("carrier")[policy.TransportTLS]
	return l
}

// callOut places a call from the PBX through parapet to the carrier.
func (l *lab) callOut(ctx context.Context, o sim.CallOptions) (*sim.Session, error) {
	return l.pbx.Call(ctx, fmt.Sprintf("sip:+15551230000@%s", l.pbxUDP), o)
}

// connect places an outbound call with a plain-RTP offer and returns both
// ends once the carrier has it.
func (l *lab) connect(t *testing.T, ctx context.Context) (caller, callee *sim.Session) {
	t.Helper()
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return caller, incoming(t, l.carrier)
}

// callIn places a call from the carrier through parapet to the PBX.
func (l *lab) callIn(ctx context.Context, o sim.CallOptions) (*sim.Session, error) {
	return l.carrier.Call(ctx, fmt.Sprintf("sip:+15557650000@%s;transport=tls", l.carrierTLS), o)
}

func incoming(t *testing.T, p *sim.Peer) *sim.Session {
	t.Helper()
	select {
	case s := <-p.Incoming():
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("callee never got the call")
	}
	return nil
}

// waitIdle waits (at most 10 s) until the server has no call, no media
// port in use, and at most two goroutines more than base.
func waitIdle(t *testing.T, l *lab, base int) {
	t.Helper()
	var st b2bua.Stats
	var n int
	if !poll(10*time.Second, func() bool {
		st, n = l.srv.Stats(), runtime.NumGoroutine()
		return st.CallsActive == 0 && st.MediaPortsInUse == 0 && n <= base+2
	}) {
		buf := make([]byte, 1<<20)
		t.Fatalf("after calls: %d active, %d media ports, %d goroutines (baseline %d)\n%s",
			st.CallsActive, st.MediaPortsInUse, n, base, buf[:runtime.Stack(buf, true)])
	}
}

// goroutineBaseline waits until a lab whose warm-up calls have ended is
// idle (no call, no media port) and its goroutine count has held still for
// 50 ms, and returns that count: what waitIdle compares against later.
func goroutineBaseline(t *testing.T, l *lab) int {
	t.Helper()
	waitFor(t, 10*time.Second, "the warm-up calls to free their calls and media ports", func() bool {
		st := l.srv.Stats()
		return st.CallsActive == 0 && st.MediaPortsInUse == 0
	})
	last, still := -1, 0
	waitFor(t, 10*time.Second, "the goroutine count to hold still", func() bool {
		if n := runtime.NumGoroutine(); n != last {
			last, still = n, 0
			return false
		}
		still++
		return still*int(pollEvery) >= int(50*time.Millisecond)
	})
	return last
}

// waitEnded waits (at most 10 s) until the dialog of every session has
// ended; why says what should have ended them.
func waitEnded(t *testing.T, why string, ss ...*sim.Session) {
	t.Helper()
	for _, s := range ss {
		select {
		case <-s.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: a dialog is still up", why)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startServer starts a parapet server on cfg, shut down when the test ends.
func startServer(t testing.TB, cfg b2bua.Config) *b2bua.Server {
	t.Helper()
	srv, err := b2bua.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}
