package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// startParapetPlainRegistrar runs parapet with a "pbx" zone on UDP
// (base+60) and a "staff" zone on UDP and TCP (both base+61, plain RTP
// allowed) whose users register through parapet to the registrar at reg.
func startParapetPlainRegistrar(t *testing.T, base int, reg netip.AddrPort) *parapetUnderTest {
	t.Helper()
	return startParapetStaff(t, base, fmt.Sprintf(`listen = ["udp://127.0.0.1:%[1]d", "tcp://127.0.0.1:%[1]d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }`, base+61), reg, reg)
}

// A baresip softphone registers over UDP, then over TCP, asking for
// outbound (RFC 5626), through parapet to a registrar on the PBX side
// (which challenges it); the PBX then calls it: the call reaches baresip
// over its flow (over UDP at the address it registered from, from
// parapet's listener it registered to; over TCP on its connection), audio
// flows both ways, and the records say which flow it took (its transport,
// no TLS facts). Over UDP its STUN keep-alives are answered.
func TestBaresipRegistersOverUDPAndTCP(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) { baresipRegistersPlain(t, tr) })
	}
}

func baresipRegistersPlain(t *testing.T, transport string) {
	requirePeers(t, "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	reg := sim.NewPathRegistrar(t, "bob", "bobs-secret")
	reg.SetFlowTimer(1) // baresip's keep-alives (STUN over UDP) every second or so
	p := startParapetPlainRegistrar(t, base, reg.Addr)
	cap := startCapture(t, base)
	bob := peers.StartBaresip(t, peers.BaresipConfig{Name: "bob", SIPPort: base + 10, CtrlPort: base + 12,
		RTPLo: base + 40, RTPHi: base + 59, Tone: 880, Transport: transport,
		Register: &peers.BaresipRegistration{Domain: sim.Realm, Password: "bobs-secret", Interval: 600, Outbound: true,
			Proxy: fmt.Sprintf("sip:127.0.0.1:%d;transport=%s", base+61, transport)}})
	contact, path := bobBinding(t, reg, "flow-", ";ob")

	baresipTakesCall(t, bob, callRegistered(t, base, contact, path))
	cap.Stop()
	if transport == "udp" {
		checkSTUNKeepAlives(t, cap, base+10, base+61)
	}
	recs := p.records(t)
	var regs []*compliance.ConnEvent
	for _, r := range recs {
		if r.Conn != nil && r.Conn.Event == compliance.EventRegistration {
			regs = append(regs, r.Conn)
		}
	}
	phone, local := fmt.Sprintf("127.0.0.1:%d", base+10), fmt.Sprintf("127.0.0.1:%d", base+61)
	if len(regs) != 1 || regs[0].Registration == nil {
		t.Fatalf("registration records: %+v", regs)
	}
	rg := regs[0]
	if transport == "tcp" {
		phone = rg.Remote // the connection baresip opened, from a port of its system's choice
	}
	if rg.Transport != transport || rg.Remote != phone || rg.Local != local || rg.Registration.TLS != nil ||
		!strings.Contains(rg.Registration.UserAgent, "baresip") {
		t.Errorf("registration record %+v %+v", rg, rg.Registration)
	}
	calls := onlyCalls(recs)
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered || calls[0].Route != "registered:staff" {
		t.Fatalf("call records %+v", calls)
	}
	_, b := wantLegs(t, calls[0])
	if b.Flow != rg.Registration.Flow || b.Transport != transport || b.Remote != phone || b.Local != local || b.TLS != nil {
		t.Errorf("leg b %+v; registration %+v", b, rg)
	}
}

// checkSTUNKeepAlives checks on the wire that baresip's outbound
// keep-alives over UDP to parapet (phone to staff), STUN Binding requests
// (RFC 5626 section 4.4.1), were each answered with a Binding success
// response. (Over TCP baresip sent no CRLF ping within the test; TCP and
// TLS pongs are b2bua's TestKeepAlives.)
func checkSTUNKeepAlives(t *testing.T, cap *capture, phone, staff int) {
	t.Helper()
	const cookie = "udp.payload[4:4] == 21:12:a4:42"
	reqs := cap.tshark(t, "-Y", fmt.Sprintf("udp.srcport == %d && udp.dstport == %d && udp.payload[0:2] == 00:01 && %s", phone, staff, cookie))
	resps := cap.tshark(t, "-Y", fmt.Sprintf("udp.srcport == %d && udp.dstport == %d && udp.payload[0:2] == 01:01 && %s", staff, phone, cookie))
	if len(reqs) == 0 || len(resps) < len(reqs) {
		t.Errorf("STUN keep-alives: %d Binding requests, %d responses", len(reqs), len(resps))
	}
	t.Logf("%d of %d STUN keep-alives answered", len(resps), len(reqs))
}
