package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// startParapetRegistrar runs parapet with a "pbx" zone on UDP (base+60,
// plain RTP allowed) and a "staff" zone on TLS (base+61, SRTP required)
// whose users register through parapet to the registrar at reg.
func startParapetRegistrar(t *testing.T, base int, reg netip.AddrPort) *parapetUnderTest {
	t.Helper()
	return startParapetCallers(t, base, reg, reg)
}

// staffTLS is the listener, TLS and media lines of a "staff" zone on TLS
// at port (lab certificates asked of clients, SRTP required).
func staffTLS(port int) string {
	return fmt.Sprintf(`listen = ["tls://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  tls {
    ca_file     = "${state_dir}/certs/lab-ca.pem"
    client_auth = "request"
  }
  media { srtp = "require" }`, port)
}

// startParapetStaff runs parapet with a "pbx" zone on UDP (base+60,
// plain RTP allowed) and a "staff" zone of the given lines whose users
// register through parapet to the registrar at reg, and a route "out"
// from staff to out.
func startParapetStaff(t *testing.T, base int, staff string, reg, out netip.AddrPort) *parapetUnderTest {
	t.Helper()
	dir := t.TempDir()
	pki, err := certs.EnsureLab(filepath.Join(dir, "state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "staff" {
  %s
  registrar {
    zone   = "pbx"
    target = "sip:%s"
  }
}
route "out" {
  from   = "staff"
  to     = "pbx"
  target = "sip:%s"
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
  timeout = "10s"
}
`, base+60, staff, reg, out, base+70, base+99)
	return startParapetConfig(t, dir, pki, conf)
}

// A baresip softphone registers over TLS through parapet to a registrar on
// the PBX side (which challenges it with 401); the PBX then calls it: the
// call reaches baresip over the TLS connection it registered on (no
// connection is opened toward it: no SYN to its TLS port on the wire, and
// leg b's local address is parapet's listener), with SDES-SRTP, and the
// record says which registration flow it took.
func TestBaresipRegistersAndIsCalled(t *testing.T) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	reg := sim.NewPathRegistrar(t, "bob", "bobs-secret")
	p := startParapetRegistrar(t, base, reg.Addr)
	cap := startCapture(t, base)
	bob := peers.StartBaresip(t, peers.BaresipConfig{Name: "bob", SIPPort: base + 10, CtrlPort: base + 12,
		RTPLo: base + 40, RTPHi: base + 59, Tone: 880, Transport: "tls", MediaEnc: "srtp-mand",
		TLSBundle: p.pki.PeerBundleFile,
		Register: &peers.BaresipRegistration{Domain: sim.Realm, Password: "bobs-secret", Interval: 600,
			Proxy: fmt.Sprintf("sip:127.0.0.1:%d;transport=tls", base+61)}})
	// baresip registers as it starts, before its control connection is
	// up to tell: the registrar's binding says it.
	contact, path := bobBinding(t, reg, "flow-")

	baresipTakesCall(t, bob, callRegistered(t, base, contact, path))
	cap.Stop()
	rg, leg := registeredCallRecords(t, p, cap, base, base+11)
	if !strings.Contains(rg.Registration.UserAgent, "baresip") {
		t.Errorf("registration record's user agent %q", rg.Registration.UserAgent)
	}
	if leg.Media.KeyExchange != "sdes" {
		t.Errorf("leg b media %+v", leg.Media)
	}
}

// callRegistered has a simulated PBX phone (UDP, plain RTP, at base+7)
// call contact with the registrar's Path as its Route, as a PBX calls a
// user registered through a proxy; the call must be answered.
func callRegistered(t *testing.T, base int, contact, path string) *sim.Session {
	t.Helper()
	pbx, err := sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(base+7)),
		MediaAddr: netip.MustParseAddr("127.0.0.1"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pbx.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, err := pbx.Call(ctx, contact, sim.CallOptions{Route: path})
	if err != nil {
		t.Fatalf("call to the registered user: %v", err)
	}
	return caller
}

// bobBinding waits for bob's binding at reg and returns it; its path
// must contain each of want.
func bobBinding(t *testing.T, reg *sim.PathRegistrar, want ...string) (contact, path string) {
	t.Helper()
	poll(15*time.Second, func() bool { contact, path = reg.Binding("bob"); return contact != "" })
	ok := contact != ""
	for _, w := range want {
		ok = ok && strings.Contains(path, w)
	}
	if !ok {
		t.Fatalf("registrar's binding: contact %q path %q", contact, path)
	}
	return contact, path
}

// baresipTakesCall waits for baresip to take caller's call, then talks
// and hangs up, and waits for baresip to see it end.
func baresipTakesCall(t *testing.T, bob *peers.Baresip, caller *sim.Session) {
	t.Helper()
	if _, err := bob.WaitEvent(5*time.Second, "CALL_ESTABLISHED"); err != nil {
		t.Fatal(err)
	}
	talkAndHangUp(t, caller)
	if _, err := bob.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		t.Fatal(err)
	}
}

// talkAndHangUp sends callSeconds of RTP from the PBX side, checks that
// the registered phone's audio came back, and hangs up.
func talkAndHangUp(t *testing.T, caller *sim.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := caller.Send(ctx, 1000, callSeconds*50, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := caller.Stats(); st.Received < callSeconds*50*8/10 {
		t.Errorf("the PBX side heard %d packets from the registered phone", st.Received)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// registeredCallRecords checks the wire and the records of a call to a
// phone registered over TLS whose own TLS port is phoneTLS: no TCP
// connection was opened toward that port, one registration record, one
// answered call whose leg b went over the registration's flow (parapet's
// listener at base+61) with SRTP.
func registeredCallRecords(t *testing.T, p *parapetUnderTest, cap *capture, base, phoneTLS int) (*compliance.ConnEvent, *compliance.Leg) {
	t.Helper()
	syns := cap.tshark(t, "-Y", fmt.Sprintf("tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==%d", phoneTLS),
		"-T", "fields", "-e", "tcp.srcport")
	if len(syns) != 0 {
		t.Errorf("%d TCP connections opened toward the phone's TLS port; want none", len(syns))
	}
	recs := p.records(t)
	var regs []*compliance.ConnEvent
	for _, r := range recs {
		if r.Conn != nil && r.Conn.Event == compliance.EventRegistration {
			regs = append(regs, r.Conn)
		}
	}
	if len(regs) != 1 || regs[0].Registration == nil || regs[0].Registration.TLS == nil {
		t.Fatalf("registration records: %+v", regs)
	}
	rg := regs[0]
	if rg.Transport != "tls" || rg.Local != fmt.Sprintf("127.0.0.1:%d", base+61) {
		t.Errorf("registration record %+v", rg)
	}
	t.Logf("registration: %s %q over %s, TLS %s", rg.Remote, rg.Registration.UserAgent, rg.Transport, rg.Registration.TLS.Version)
	calls := onlyCalls(recs)
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered || calls[0].Route != "registered:staff" {
		t.Fatalf("call records %+v", calls)
	}
	_, b := wantLegs(t, calls[0])
	if b.Flow != rg.Registration.Flow || b.Local != rg.Local || b.Remote != rg.Remote || b.Transport != "tls" ||
		b.TLS == nil || b.TLS.Version != rg.Registration.TLS.Version || b.Media.SRTPSuite == "" {
		t.Errorf("leg b %+v media %+v; registration %+v", b, b.Media, rg)
	}
	return rg, b
}

// linphone, whose stack accepts no inbound TLS connection, registers over
// TLS through parapet and is called: it can be reached only over the
// connection it opened, and is.
func TestLinphoneRegistersAndIsCalled(t *testing.T) {
	requirePeers(t, "linphonec", "dumpcap", "tshark")
	base := portBlock(t)
	reg := sim.NewPathRegistrar(t, "bob", "bobs-secret")
	p := startParapetRegistrar(t, base, reg.Addr)
	cap := startCapture(t, base)
	lin := startLinphone(t, linphoneConf{tlsPort: base + 3, rtpLo: base + 20, rtpHi: base + 39, caFile: p.pki.CAFile,
		certFile: p.pki.PeerCertFile, keyFile: p.pki.PeerKeyFile, menc: "srtp"})
	if err := lin.waitLog(10*time.Second, `Creating listening point .*transport=TLS`); err != nil {
		t.Fatal(err)
	}
	tone, heard := filepath.Join(lin.dir, "tone.wav"), filepath.Join(lin.dir, "heard.wav")
	writeTone(t, tone, 440, 30)
	lin.send("soundcard use files")
	lin.send("play " + tone)
	lin.send("record " + heard)
	lin.send("autoanswer enable")
	lin.send(fmt.Sprintf("register sip:bob@%s sip:localhost:%d;transport=tls bobs-secret", sim.Realm, base+61))
	contact, path := bobBinding(t, reg, "flow-")
	caller := callRegistered(t, base, contact, path)
	if _, err := lin.wait(5*time.Second, `(?i)call \d+ .*connected`); err != nil {
		t.Error(err)
	}
	talkAndHangUp(t, caller)
	if _, err := lin.wait(5*time.Second, `(?i)call \d+ .*(ended|terminated)`); err != nil {
		t.Error(err)
	}
	cap.Stop()
	if loud, samples, err := wavLoud(heard); err != nil || !loud {
		t.Errorf("linphone heard nothing (%d samples, %v)", samples, err)
	}
	rg, b := registeredCallRecords(t, p, cap, base, base+3)
	if !strings.Contains(strings.ToLower(rg.Registration.UserAgent), "linphone") || rg.Registration.TLS.Version != "TLS1.2" {
		t.Errorf("registration record %+v %+v", rg.Registration, rg.Registration.TLS)
	}
	if b.Media.KeyExchange != "sdes" {
		t.Errorf("leg b media %+v", b.Media)
	}
}
