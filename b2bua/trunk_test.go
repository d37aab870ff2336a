package b2bua_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// lockedLog is a log sink tests read while parapet writes it.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const trunkPassword = "s3cret-Trunk-pw"

// registeringLab is a lab whose outbound route registers with the carrier, a
// registrar that challenges with digest and grants grant.
func registeringLab(t *testing.T, password string, grant time.Duration, proxy bool, log *lockedLog) *lab {
	t.Helper()
	t.Cleanup(b2bua.ShortenRegisterRetry(200 * time.Millisecond))
	return newLab(t, labOptions{
		username: "clinic", password: password,
		register:  &topology.Register{AOR: "sip:clinic@carrier.sim", Expires: time.Hour},
		registrar: &sim.Registrar{Credentials: sim.Credentials{Username: "clinic", Password: trunkPassword}, Grant: grant, Proxy: proxy},
		// The carrier's calls come from outside the zone's peers: only
		// the line token of the registration admits them.
		carrierZone: func(z *policy.Zone) { z.Peers = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} },
		logger:      log.logger(),
	})
}

// A route to a trunk that requires registration registers after a 401
// challenge, refreshes before the grant runs out, carries a call out and
// a call in (admitted by its line token from outside the zone's peers),
// and unregisters at shutdown.
func TestTrunkRegistersRefreshesAndCarriesCalls(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		name := "401"
		if proxy {
			name = "407"
		}
		t.Run(name, func(t *testing.T) { trunkCalls(t, proxy) })
	}
}

func trunkCalls(t *testing.T, proxy bool) {
	log := &lockedLog{}
	l := registeringLab(t, trunkPassword, 3*time.Second, proxy, log)
	waitFor(t, 10*time.Second, "the trunk to register", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkRegistered
	})
	regs := l.carrier.Registers()
	if len(regs) < 2 || regs[0].Authorization || regs[0].Status != 401+6*btoi(proxy) || !regs[1].Authorization || regs[1].Status != 200 {
		t.Fatalf("want a challenged REGISTER then an authorised one, got %+v", regs)
	}
	if regs[1].Expires != 3600 || regs[1].Granted != 3 || !strings.Contains(regs[1].Contact, ";line=") {
		t.Fatalf("REGISTER asked %d s for %q, granted %d s", regs[1].Expires, regs[1].Contact, regs[1].Granted)
	}

	// The refresh comes before the 3 s grant runs out (at 85 %).
	var refresh sim.Register
	waitFor(t, 10*time.Second, "the registration to be refreshed", func() bool {
		for _, r := range l.carrier.Registers()[2:] {
			if r.Status == 200 {
				refresh = r
				return true
			}
		}
		return false
	})
	if gap := refresh.At.Sub(regs[1].At); gap < 2*time.Second || gap >= 3*time.Second {
		t.Fatalf("refreshed %v after the first grant of 3 s; want at 85 %%", gap)
	}

	// A call out over the trunk.
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "the caller's BYE", callee)

	// A call in, to the registered contact, from outside the peers.
	contact, ok := l.carrier.Binding()
	if !ok {
		t.Fatal("the registrar holds no binding")
	}
	in, err := l.carrier.Call(ctx, contact, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatalf("call in to %s: %v", contact, err)
	}
	pbx := incoming(t, l.pbx)
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "the carrier's BYE", pbx)
	for _, c := range l.sink.waitCalls(t, 2) {
		want := ""
		if c.Legs[0].Zone == "carrier" {
			want = "outbound"
		}
		if c.Legs[0].Trunk != want {
			t.Fatalf("leg a from zone %s: trunk %q, want %q", c.Legs[0].Zone, c.Legs[0].Trunk, want)
		}
	}

	// Shutdown unregisters.
	shutdown(t, l.srv)
	all := l.carrier.Registers()
	if last := all[len(all)-1]; last.Expires != 0 || last.Status != 200 {
		t.Fatalf("last REGISTER: %+v, want an unregistration", last)
	}
	if _, ok := l.carrier.Binding(); ok {
		t.Fatal("the binding survived shutdown")
	}
	if !strings.Contains(log.String(), "state=registered") || strings.Contains(log.String(), trunkPassword) {
		t.Fatalf("log:\n%s", log.String())
	}
	// Each change of state is recorded: registered (once, however many
	// refreshes), then unregistered.
	var states []string
	for _, e := range l.sink.conns() {
		if e.Event != compliance.EventTrunkRegistration {
			continue
		}
		states = append(states, e.State)
		if e.Route != "outbound" || e.Zone != "carrier" || e.Transport != "tls" || e.SIPStatus != 200 || e.Method != "REGISTER" ||
			e.TLS == nil || e.TLS.Version == "" || e.TLS.PeerCert == nil || e.Local == "" || e.Remote != l.carrier.Addr().String() {
			t.Errorf("trunk record %+v (tls %+v)", e, e.TLS)
		}
		if e.State == "registered" && e.Expires != 3 {
			t.Errorf("registered record: expires %d, want 3", e.Expires)
		}
	}
	if strings.Join(states, ",") != "registered,unregistered" {
		t.Errorf("trunk records: %v", states)
	}
	l.sink.noSecret(t, trunkPassword)
}

// noSecret fails the test when any record holds secret.
func (m *memSink) noSecret(t *testing.T, secret string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), secret) {
			t.Fatalf("a record holds the password: %s", b)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A wrong password leaves the trunk failed (metric and log line), retried
// with back-off, and the password is nowhere in the log.
func TestTrunkWrongPasswordFails(t *testing.T) {
	log := &lockedLog{}
	wrong := "not-the-" + trunkPassword
	l := registeringLab(t, wrong, 3*time.Second, false, log)
	waitFor(t, 10*time.Second, "the trunk to fail", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkFailed
	})
	waitFor(t, 10*time.Second, "a retry", func() bool { return len(l.carrier.Registers()) >= 4 })
	out := log.String()
	if !strings.Contains(out, "trunk registration state changed") || !strings.Contains(out, "state=failed") {
		t.Fatalf("no failed state in the log:\n%s", out)
	}
	if strings.Contains(out, wrong) || strings.Contains(out, trunkPassword) {
		t.Fatalf("a password in the log:\n%s", out)
	}
	if n := strings.Count(out, "state=failed"); n != 1 {
		t.Fatalf("the failed state logged %d times, want once (on the change)", n)
	}
	var failed []*compliance.ConnEvent
	for _, e := range l.sink.conns() {
		if e.Event == compliance.EventTrunkRegistration {
			failed = append(failed, e)
		}
	}
	if len(failed) != 1 || failed[0].State != "failed" || failed[0].SIPStatus != 403 || !strings.Contains(failed[0].Error, "403") {
		t.Fatalf("trunk records %+v, want one failed with 403", failed)
	}
	l.sink.noSecret(t, wrong)
	l.sink.noSecret(t, trunkPassword)
}

// shutdown shuts srv down now (the lab's cleanup does it again, a no-op).
func shutdown(t *testing.T, srv *b2bua.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// A carrier that challenges requests inside the dialog too: parapet
// answers a 401 to its re-INVITE, INFO and BYE on leg B once with the
// route's credentials.
func TestDigestInDialogTowardCarrier(t *testing.T) {
	creds := &sim.Credentials{Username: "clinic", Password: "s3cret"}
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Digest: creds, DigestInDialog: true}, username: "clinic", password: "s3cret"})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	if st, err := caller.Reinvite(ctx, false); err != nil || st != 200 {
		t.Fatalf("re-INVITE through a challenging carrier: %d %v", st, err)
	}
	if st, err := caller.Info(ctx, "Signal=5\r\nDuration=160\r\n"); err != nil || st != 200 {
		t.Fatalf("INFO through a challenging carrier: %d %v", st, err)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "parapet's authorised BYE", callee)
	for _, m := range []string{"INVITE", "INFO", "BYE"} {
		// INVITE: the first, challenged and authorised, and the
		// re-INVITE likewise.
		want := int64(2)
		if m == "INVITE" {
			want = 4
		}
		if n := l.carrier.Received(m, "TLS"); n != want {
			t.Errorf("carrier received %d %s, want %d (each challenged once)", n, m, want)
		}
	}
	if c := l.sink.waitCalls(t, 1)[0]; c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s", c.Disposition)
	}
}

// A registrar that wants longer registrations answers 423 with
// Min-Expires: parapet asks again for that lifetime.
func TestTrunkIntervalTooBrief(t *testing.T) {
	t.Cleanup(b2bua.ShortenRegisterRetry(200 * time.Millisecond))
	l := newLab(t, labOptions{
		username: "clinic", password: trunkPassword,
		register: &topology.Register{AOR: "sip:clinic@carrier.sim", Expires: time.Hour},
		registrar: &sim.Registrar{Credentials: sim.Credentials{Username: "clinic", Password: trunkPassword},
			Grant: 3 * time.Hour, MinExpires: 2 * time.Hour},
	})
	waitFor(t, 10*time.Second, "the trunk to register", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkRegistered
	})
	var got []string
	for _, r := range l.carrier.Registers() {
		got = append(got, fmt.Sprintf("%d:%d", r.Expires, r.Status))
	}
	// Asked 1 h: challenged, then 423; asked 2 h: challenged, then granted.
	if want := "3600:401,3600:423,7200:401,7200:200"; strings.Join(got, ",") != want {
		t.Fatalf("REGISTERs (expires:status) %v, want %s", got, want)
	}
}

// A reload that takes the registration away unregisters the trunk; one
// that brings it back registers again, with the same Contact.
func TestTrunkReload(t *testing.T) {
	log := &lockedLog{}
	l := registeringLab(t, trunkPassword, time.Hour, false, log)
	waitFor(t, 10*time.Second, "the trunk to register", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkRegistered
	})
	first, _ := l.carrier.Binding()

	// A change that does not touch the registration leaves it be.
	cfg := l.cfg
	cfg.Routes = slices.Clone(cfg.Routes)
	cfg.Routes[0].MaxCalls = 5
	n := len(l.carrier.Registers())
	if err := l.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if poll(300*time.Millisecond, func() bool { return len(l.carrier.Registers()) != n }) {
		t.Fatal("a reload that changed max_calls registered the trunk anew")
	}

	reg := cfg.Routes[0].Register
	cfg.Routes[0].Register = nil
	if err := l.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.carrier.Binding(); ok {
		t.Fatal("the binding survived a reload without the register block")
	}
	if _, ok := l.srv.Stats().Trunks["outbound"]; ok {
		t.Fatal("a route that no longer registers still has a registration state")
	}

	cfg.Routes[0].Register = reg
	if err := l.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the trunk to register again", func() bool {
		return l.srv.Stats().Trunks["outbound"] == b2bua.TrunkRegistered
	})
	if again, _ := l.carrier.Binding(); again != first {
		t.Fatalf("registered %q after the reload, %q before", again, first)
	}
}
