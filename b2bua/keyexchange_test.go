package b2bua_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// The per-leg key exchange rule: SDES keys are taken and offered only on a
// leg whose SIP is TLS, whatever the zone's listeners; DTLS-SRTP is taken
// by default wherever SRTP may run.

// mixedLab is parapet with a zone "mixed" that listens on UDP and TLS,
// requires SRTP and allows both key exchanges (as a zone without
// key_exchange does), and a route from it to a raw plain-RTP callee.
type mixedLab struct {
	sink *memSink
	a, b *rawPeer
	udp  *net.UDPAddr // parapet's UDP listener in zone mixed
}

func newMixedLab(t *testing.T) *mixedLab {
	t.Helper()
	pki, err := certs.EnsureLab(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	zt, err := certs.NewZone(certs.Options{Zone: "mixed", MinVersion: tls.VersionTLS12, VerifyPeer: true, Lab: pki})
	if err != nil {
		t.Fatal(err)
	}
	l := &mixedLab{sink: &memSink{}, a: newRawPeer(t), b: newRawPeer(t)}
	lo := netip.MustParsePrefix("127.0.0.0/8")
	cfg := b2bua.Config{
		Zones: []topology.Zone{
			{Policy: policy.Zone{Name: "mixed", Signaling: policy.RequirementAllow, MinTLS: policy.VersionTLS12, VerifyPeer: true,
				SRTP: policy.RequirementRequire, KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS},
				Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
				Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)},
					{Transport: policy.TransportTLS, Addr: netip.AddrPortFrom(loop, 0)}}},
			{Policy: policy.Zone{Name: "b", Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
				SRTP: policy.RequirementOff, Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
				Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)}}},
		},
		TLS: map[string]b2bua.ZoneTLS{"mixed": {Server: zt.ServerConfig(), Client: zt.ClientConfig()}},
		Routes: []topology.Route{{Name: "out", From: "mixed", To: "b",
			Target: topology.Target{Host: "127.0.0.1", Port: l.b.port(), Transport: policy.TransportUDP}}},
		Media:      topology.Media{Address: loop, PortMin: 46000, PortMax: 46999, Timeout: 20 * time.Second},
		PolicyHash: "sha256:test",
		Sink:       l.sink,
		Logger:     discard(),
	}
	srv := startServer(t, cfg)
	l.udp = net.UDPAddrFromAddrPort(srv.Addrs("mixed")[policy.TransportUDP])
	return l
}

// sdesSDP is an RTP/SAVP offer with one a=crypto line and, when
// fingerprint is set, an a=fingerprint too.
func sdesSDP(port int, fingerprint bool) string {
	s := fmt.Sprintf("v=0\r\no=raw 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0\r\n"+
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n", port)
	if fingerprint {
		s += "a=setup:actpass\r\na=fingerprint:sha-256 " +
			strings.TrimSuffix(strings.Repeat("AB:", 32), ":") + "\r\n"
	}
	return s
}

// An SDES offer over UDP into a zone that also listens on TLS gets 488:
// the offerer's key crossed in clear already, and parapet sends none back
// and nothing onward.
func TestSDESOverUDPRefused(t *testing.T) {
	l := newMixedLab(t)
	callID := fmt.Sprintf("sdes-udp-%d@raw", time.Now().UnixNano())
	l.a.send(l.udp, invite(l.a.addr(), l.udp.String(), callID, "application/sdp", sdesSDP(4000, false)))
	res := l.a.must("final response", isFinal("INVITE"))
	if !strings.HasPrefix(res.text, "SIP/2.0 488 ") {
		t.Fatalf("got %q, want 488", firstLine(res.text))
	}
	c := l.sink.waitCalls(t, 1)[0]
	d := decision(c, policy.RuleSDESClear)
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 || d == nil ||
		d.Verdict != policy.VerdictRejected || d.Stage != policy.StageOffer || d.Zone != "mixed" {
		t.Errorf("record: %s %d, decisions %+v", c.Disposition, c.SIPStatus, c.Decisions)
	}
	if a := leg(c, compliance.RoleA); a == nil || a.Transport != "udp" {
		t.Errorf("leg a: %+v", a)
	}
	// A window for anything parapet would still send.
	poll(300*time.Millisecond, func() bool { return l.b.count(func(string) bool { return true }) != 0 })
	if n := l.b.count(func(string) bool { return true }); n != 0 {
		t.Errorf("the callee side received %d messages; the call should have stopped at parapet", n)
	}
	l.a.mu.Lock()
	defer l.a.mu.Unlock()
	for _, m := range l.a.msgs {
		if strings.Contains(m.text, "a=crypto") || strings.Contains(m.text, "inline:") {
			t.Errorf("parapet sent SDES key material over UDP:\n%s", m.text)
		}
	}
}

// An SRTP offer over UDP that carries SDES keys and a DTLS fingerprint is
// answered with DTLS-SRTP, never with parapet's own SDES key.
func TestSDESOverUDPWithFingerprintTakesDTLS(t *testing.T) {
	l := newMixedLab(t)
	callID := fmt.Sprintf("sdes-fp-%d@raw", time.Now().UnixNano())
	l.a.send(l.udp, invite(l.a.addr(), l.udp.String(), callID, "application/sdp", sdesSDP(4000, true)))
	inv := l.b.must("INVITE at the callee", isReq("INVITE"))
	if strings.Contains(inv.text, "a=crypto") {
		t.Errorf("parapet offered SDES to a plain zone over UDP:\n%s", inv.text)
	}
	l.b.send(inv.from, reply(inv.text, 200, "OK", "btag", l.b.addr(), plainSDP(5000, 1)))
	res := l.a.must("final response", isFinal("INVITE"))
	if !strings.HasPrefix(res.text, "SIP/2.0 200 ") {
		t.Fatalf("got %q, want 200", firstLine(res.text))
	}
	for _, want := range []string{"a=fingerprint:sha-256 ", "a=setup:passive"} {
		if !strings.Contains(res.text, want) {
			t.Errorf("parapet's answer lacks %q:\n%s", want, res.text)
		}
	}
	if strings.Contains(res.text, "a=crypto") || strings.Contains(res.text, "inline:") {
		t.Errorf("parapet answered with an SDES key over UDP:\n%s", res.text)
	}
}

// A caller offering DTLS-SRTP is taken by default: on a plain zone that
// allows SRTP (key_exchange unset lists sdes and dtls, and SDES is left out
// over UDP by the per-leg rule). TestDTLSInbound covers a TLS zone.
func TestDTLSCallerOnPlainAllowZone(t *testing.T) {
	l := newLab(t, labOptions{pbxZone: func(z *policy.Zone) {
		z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}
	}})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatalf("a DTLS-SRTP caller on an allow zone: %v", err)
	}
	callee := incoming(t, l.carrier)
	if strings.Contains(caller.Dialog(), "a=crypto") {
		t.Errorf("parapet's answer over UDP carries SDES keys:\n%s", caller.Dialog())
	}
	waitDTLS(t, ctx, caller)
	exchangeDTLS(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", callee)
	c := l.sink.waitCalls(t, 1)[0]
	a := leg(c, compliance.RoleA)
	if c.Disposition != compliance.DispositionAnswered || a == nil || a.Media == nil ||
		a.Transport != "udp" || a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite == "" {
		t.Errorf("record: %s, leg a %+v", c.Disposition, a)
	}
}
