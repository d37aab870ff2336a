package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// startParapetCallers runs parapet as startParapetRegistrar does (a "pbx"
// zone on UDP at base+60, a "staff" zone on TLS at base+61 whose users
// register through parapet to reg, callers "registered" by default), its
// route "out" from staff to the PBX phone at pbx.
func startParapetCallers(t *testing.T, base int, reg, pbx netip.AddrPort) *parapetUnderTest {
	t.Helper()
	return startParapetStaff(t, base, staffTLS(base+61), reg, pbx)
}

// startCallersLab starts a registrar where bob (password "bobs-secret")
// registers, a simulated PBX phone on UDP at base+7, and parapet between
// them (startParapetCallers).
func startCallersLab(t *testing.T, base int) (*sim.PathRegistrar, *sim.Peer, *parapetUnderTest) {
	t.Helper()
	reg := sim.NewPathRegistrar(t, "bob", "bobs-secret")
	pbx, err := sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(base+7)),
		MediaAddr: netip.MustParseAddr("127.0.0.1"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pbx.Close)
	return reg, pbx, startParapetCallers(t, base, reg.Addr, pbx.Addr())
}

// A baresip softphone registered over TLS through parapet calls out: its
// INVITE comes over the connection it registered on, From its address of
// record, so the zone's default (callers "registered") takes it, and leg
// a's record names the registration's flow.
func TestBaresipRegisteredCallsOut(t *testing.T) {
	requirePeers(t, "baresip")
	base := portBlock(t)
	reg, pbx, p := startCallersLab(t, base)
	bob := peers.StartBaresip(t, peers.BaresipConfig{Name: "bob", SIPPort: base + 10, CtrlPort: base + 12,
		RTPLo: base + 40, RTPHi: base + 59, Tone: 880, Transport: "tls", MediaEnc: "srtp-mand",
		TLSBundle: p.pki.PeerBundleFile,
		Register: &peers.BaresipRegistration{Domain: sim.Realm, Password: "bobs-secret", Interval: 600,
			Proxy: fmt.Sprintf("sip:127.0.0.1:%d;transport=tls", base+61)}})
	if !poll(15*time.Second, func() bool { c, _ := reg.Binding("bob"); return c != "" }) {
		t.Fatal("baresip never registered")
	}
	if err := bob.Command("dial", "sip:200@"+sim.Realm); err != nil {
		t.Fatal(err)
	}
	ev, err := bob.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED")
	if err != nil || ev["type"] != "CALL_ESTABLISHED" {
		t.Fatalf("baresip's call: %v %v", ev, err)
	}
	select {
	case <-pbx.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("the PBX never got the call")
	}
	if err := bob.Command("hangup", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		t.Fatal(err)
	}
	registeredCaller(t, p)
}

// linphone registered over TLS through parapet calls out too: over the
// connection it registered on, From its address of record; taken, leg a
// naming the flow.
func TestLinphoneRegisteredCallsOut(t *testing.T) {
	requirePeers(t, "linphonec")
	base := portBlock(t)
	reg, pbx, p := startCallersLab(t, base)
	lin := startLinphone(t, linphoneConf{tlsPort: base + 3, rtpLo: base + 20, rtpHi: base + 39, caFile: p.pki.CAFile,
		certFile: p.pki.PeerCertFile, keyFile: p.pki.PeerKeyFile, menc: "srtp"})
	if err := lin.waitLog(10*time.Second, `Creating listening point .*transport=TLS`); err != nil {
		t.Fatal(err)
	}
	lin.send("soundcard use files")
	lin.send(fmt.Sprintf("register sip:bob@%s sip:localhost:%d;transport=tls bobs-secret", sim.Realm, base+61))
	if !poll(15*time.Second, func() bool { c, _ := reg.Binding("bob"); return c != "" }) {
		t.Fatal("linphone never registered")
	}
	// linphonec's register sets no outbound proxy: the call names
	// parapet's listener, as the REGISTER did (belle-sip reuses the channel).
	lin.send(fmt.Sprintf("call sip:200@localhost:%d;transport=tls", base+61))
	select {
	case <-pbx.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("the PBX never got linphone's call")
	}
	if _, err := lin.wait(5*time.Second, `(?i)call \d+ .*connected`); err != nil {
		t.Error(err)
	}
	lin.send("terminate")
	if _, err := lin.wait(5*time.Second, `(?i)call \d+ .*(ended|terminated)`); err != nil {
		t.Error(err)
	}
	registeredCaller(t, p)
}

// registeredCaller checks the records of a registered phone's call out:
// one answered call whose leg a names the registration's flow, over TLS.
func registeredCaller(t *testing.T, p *parapetUnderTest) {
	t.Helper()
	var flow string
	var calls []*compliance.Call
	for _, r := range p.records(t) {
		if r.Conn != nil && r.Conn.Event == compliance.EventRegistration && r.Conn.Registration != nil {
			flow = r.Conn.Registration.Flow
		}
		if r.Call != nil {
			calls = append(calls, r.Call)
		}
	}
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered || flow == "" {
		t.Fatalf("call records %+v, registration flow %q", calls, flow)
	}
	var a *compliance.Leg
	for i := range calls[0].Legs {
		if calls[0].Legs[i].Role == compliance.RoleA {
			a = &calls[0].Legs[i]
		}
	}
	if a == nil || a.Flow != flow || a.TLS == nil {
		t.Errorf("leg a %+v: want the registration's flow %s", a, flow)
	}
}
