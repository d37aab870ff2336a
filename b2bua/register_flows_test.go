package b2bua_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// flowsLab is parapet with a "pbx" zone (UDP and TCP, plain RTP) where a
// registrar lives, and a "staff" zone (UDP and TCP, plain RTP allowed)
// whose users register through parapet to it.
type flowsLab struct {
	sink  *memSink
	srv   *b2bua.Server
	reg   *sim.PathRegistrar
	pbx   *sim.Peer // calls the registered users, as the PBX does
	staff map[policy.Transport]netip.AddrPort
}

func newFlowsLab(t *testing.T, tweaks ...func(*b2bua.Config)) *flowsLab {
	t.Helper()
	l := &flowsLab{sink: &memSink{}, reg: sim.NewPathRegistrar(t, "staff", "s3cret")}
	var err error
	l.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, 0), Logger: discard(),
		ExtraFormats: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.pbx.Close)
	lo := netip.MustParsePrefix("127.0.0.0/8")
	zone := func(name string, reg *topology.Registrar) topology.Zone {
		return topology.Zone{Policy: policy.Zone{Name: name, Signaling: policy.RequirementOff, MinTLS: policy.VersionTLS12,
			SRTP: policy.RequirementAllow, Suites: policy.DefaultSuites, Peers: []netip.Prefix{lo}},
			Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.AddrPortFrom(loop, 0)},
				{Transport: policy.TransportTCP, Addr: netip.AddrPortFrom(loop, 0)}},
			Registrar: reg}
	}
	ra := l.reg.Addr
	cfg := b2bua.Config{
		Zones: []topology.Zone{zone("pbx", nil), zone("staff", &topology.Registrar{Zone: "pbx",
			Target: topology.Target{URI: "sip:" + ra.String(), Host: ra.Addr().String(), Port: int(ra.Port()), Transport: policy.TransportUDP}})},
		Routes: []topology.Route{{Name: "out", From: "staff", To: "pbx",
			Target: topology.Target{Host: "127.0.0.1", Port: int(l.pbx.Addr().Port()), Transport: policy.TransportUDP}}},
		Media:         topology.Media{Address: loop, PortMin: 46000, PortMax: 46999, Timeout: 20 * time.Second},
		PolicyHash:    "sha256:test",
		Sink:          l.sink,
		Pseudonymizer: compliance.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef")),
		Logger:        discard(),
	}
	for _, f := range tweaks {
		f(&cfg)
	}
	l.srv = startServer(t, cfg)
	l.staff = l.srv.Addrs("staff")
	return l
}

// user starts a simulated staff phone (named "staff", the registrar's
// user) over transport t.
func (l *flowsLab) user(t *testing.T, transport string, alsoTCP bool) *sim.Peer {
	t.Helper()
	p, err := sim.New(sim.Config{Name: "staff", Transport: transport, Listen: netip.AddrPortFrom(loop, 0), Logger: discard(),
		AlsoTCP: alsoTCP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// register registers u through parapet's staff listener on transport t;
// it must get 200.
func (l *flowsLab) register(t *testing.T, u *sim.Peer, tr policy.Transport) {
	t.Helper()
	proxy := fmt.Sprintf("sip:%s;transport=%s", l.staff[tr], tr)
	res, err := u.Register(ctxT(t), proxy, sim.Realm, 300, sim.Credentials{Username: "staff", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over %s: %d %s", tr, res.StatusCode, res.Reason)
	}
}

// A simulated phone registers over UDP, then another over TCP, through
// parapet; the PBX calls each through the registrar's Path, and the call
// reaches the phone over its flow: over UDP at the address the REGISTER
// came from, from the listener it came to; over TCP on the very
// connection. Each registration is recorded once, with its transport and
// no TLS facts. A large INVITE (over 1,300 bytes) to the UDP flow stays on
// UDP though the phone listens on TCP too: only the flow reaches it.
func TestUsersRegisterOverUDPAndTCP(t *testing.T) {
	for _, tr := range []policy.Transport{policy.TransportUDP, policy.TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			l := newFlowsLab(t)
			u := l.user(t, tr.String(), tr == policy.TransportUDP)
			l.register(t, u, tr)
			contact, path := l.reg.Binding("staff")
			if contact == "" || !strings.Contains(path, "sip:flow-") {
				t.Fatalf("registrar's binding: contact %q path %q", contact, path)
			}
			regs := registrations(l.sink)
			if len(regs) != 1 {
				t.Fatalf("%d registration records, want 1", len(regs))
			}
			r := regs[0]
			if r.Zone != "staff" || r.Transport != tr.String() || r.Local != l.staff[tr].String() || r.Registration == nil ||
				r.Registration.TLS != nil || !strings.Contains(r.Registration.UserAgent, "sim-staff") {
				t.Errorf("registration record: %+v %+v", r, r.Registration)
			}
			if tr == policy.TransportUDP && r.Remote != u.Addr().String() {
				t.Errorf("registration remote %s, want the phone's %s", r.Remote, u.Addr())
			}
			l.register(t, u, tr) // a refresh: no new record
			if n := len(registrations(l.sink)); n != 1 {
				t.Errorf("%d registration records after a refresh, want 1", n)
			}

			caller, err := l.pbx.Call(ctxT(t), contact, sim.CallOptions{Route: path})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, u)
			exchange(t, caller, callee)
			if err := caller.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, "BYE to the registered user", callee)
			if n := u.Received("INVITE", strings.ToUpper(tr.String())); n != 1 {
				t.Errorf("the phone got %d INVITEs over %s, want 1", n, tr)
			}
			if n := u.Received("INVITE", "TCP"); tr == policy.TransportUDP && n != 0 {
				t.Errorf("the large INVITE to a UDP flow went over TCP (%d)", n)
			}
			c := l.sink.waitCalls(t, 1)[0]
			b := leg(c, compliance.RoleB)
			if c.Disposition != compliance.DispositionAnswered || c.Route != "registered:staff" || b == nil {
				t.Fatalf("call: %s route %q legs %+v", c.Disposition, c.Route, c.Legs)
			}
			if b.Flow != r.Registration.Flow || b.Local != r.Local || b.Remote != r.Remote || b.Transport != tr.String() || b.TLS != nil {
				t.Errorf("leg b: %+v; registration %+v", b, r)
			}
			if tr == policy.TransportTCP { // its connection closed, the flow fails: 430 at once
				u.Close()
				waitFor(t, 5*time.Second, "the registration's connection to close", func() bool {
					open, _ := l.srv.HeldConns("staff")
					return open == 0
				})
				_, err := l.pbx.Call(ctxT(t), contact, sim.CallOptions{Route: path})
				var rej *sim.Rejected
				if !errors.As(err, &rej) || rej.Status != 430 {
					t.Errorf("call over a closed TCP flow: %v, want 430", err)
				}
			}
		})
	}
}

// natPhone is a phone behind a NAT, over UDP, played by hand: its Via and
// Contact name a private address (192.0.2.10:5060) that nobody can reach;
// only the socket it sends from, p, can be.
type natPhone struct {
	p        *rawPeer
	instance string // +sip.instance, with reg-id 1: it asks for outbound
	callID   string
	seq      int
}

const natAddr = "192.0.2.10:5060"

func newNATPhone(t *testing.T, instance string) *natPhone {
	return &natPhone{p: newRawPeer(t), instance: instance, callID: fmt.Sprintf("reg-%d@192.0.2.10", time.Now().UnixNano())}
}

// register sends a REGISTER to parapet at proxy, answers the registrar's
// 401, and returns the final response.
func (n *natPhone) register(t *testing.T, proxy netip.AddrPort) string {
	t.Helper()
	auth := ""
	for range 2 {
		n.seq++
		msg := fmt.Sprintf("REGISTER sip:%[1]s SIP/2.0\r\nVia: SIP/2.0/UDP %[2]s;branch=%[3]s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:staff@%[1]s>;tag=nat1\r\nTo: <sip:staff@%[1]s>\r\nCall-ID: %[4]s\r\nCSeq: %[5]d REGISTER\r\n"+
			"Contact: <sip:staff@%[2]s>;+sip.instance=\"<%[6]s>\";reg-id=1\r\nSupported: path, outbound\r\nExpires: 300\r\n"+
			"User-Agent: nat-phone/1.0\r\n%[7]sContent-Length: 0\r\n\r\n",
			sim.Realm, natAddr, n.p.branch(), n.callID, n.seq, n.instance, auth)
		n.p.send(net.UDPAddrFromAddrPort(proxy), msg)
		res := n.p.must("the REGISTER's final response", isFinal("REGISTER")).text
		if !strings.HasPrefix(res, "SIP/2.0 401 ") {
			return res
		}
		chal, err := digest.ParseChallenge(hv(res, "WWW-Authenticate"))
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + sim.Realm, Username: "staff", Password: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		auth = "Authorization: " + cred.String() + "\r\n"
	}
	t.Fatal("the registrar challenged the answer to its challenge")
	return ""
}

// answer takes parapet's INVITE at the phone's socket, answers 200 with
// plain RTP and a Contact naming the private address, and takes the ACK.
func (n *natPhone) answer(t *testing.T) *rawMsg {
	t.Helper()
	inv := n.p.must("the INVITE to the registered phone", isReq("INVITE"))
	n.p.send(inv.from, reply(inv.text, 200, "OK", "natcallee", natAddr, plainSDP(40000, 1)))
	n.p.must("the ACK", isReq("ACK"))
	return inv
}

// A phone behind a NAT registers over UDP asking for outbound (RFC 5626):
// parapet's Path says ob and the registrar's Require: outbound reaches the
// phone; parapet answers its keep-alives (CRLFCRLF and STUN) and no
// stranger's; a call to it goes to the socket it registered from, not to
// the private address its Contact names, and so does the BYE. The same
// instance registering again from another socket (its NAT rebound) keeps
// the binding's token, and the next call goes to the new socket.
func TestNATPhoneRegistersWithOutbound(t *testing.T) {
	l := newFlowsLab(t)
	ph := newNATPhone(t, "urn:uuid:00000000-0000-1000-8000-000000000001")
	res := ph.register(t, l.staff[policy.TransportUDP])
	if !strings.HasPrefix(res, "SIP/2.0 200 ") || hv(res, "Require") != "outbound" {
		t.Fatalf("REGISTER: %q", res)
	}
	contact, path := l.reg.Binding("staff")
	if !strings.Contains(path, ";ob") || !strings.Contains(path, "sip:flow-") {
		t.Fatalf("registrar's binding: contact %q path %q", contact, path)
	}
	checkKeepAlives(t, l, ph.p)

	call := func(to *rawPeer) *compliance.Call {
		t.Helper()
		before := len(l.sink.calls())
		type placed struct {
			s   *sim.Session
			err error
		}
		done := make(chan placed, 1)
		go func() {
			s, err := l.pbx.Call(ctxT(t), contact, sim.CallOptions{Route: path})
			done <- placed{s, err}
		}()
		(&natPhone{p: to}).answer(t)
		pl := <-done
		caller, err := pl.s, pl.err
		if err != nil {
			t.Fatal(err)
		}
		if err := caller.Hangup(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		bye := to.must("the BYE at the phone's socket", isReq("BYE"))
		to.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
		c := l.sink.waitCalls(t, before+1)[before]
		if c.Disposition != compliance.DispositionAnswered || c.Route != "registered:staff" {
			t.Errorf("call: %s route %q", c.Disposition, c.Route)
		}
		return c
	}
	c := call(ph.p)
	regs := registrations(l.sink)
	if b := leg(c, compliance.RoleB); len(regs) != 1 || b == nil || b.Remote != ph.p.addr() || b.Flow != regs[0].Registration.Flow {
		t.Fatalf("leg b %+v, registrations %+v", b, regs)
	}

	moved := &natPhone{p: newRawPeer(t), instance: ph.instance, callID: ph.callID, seq: ph.seq}
	if res := moved.register(t, l.staff[policy.TransportUDP]); !strings.HasPrefix(res, "SIP/2.0 200 ") {
		t.Fatalf("REGISTER from the new socket: %q", res)
	}
	if _, p2 := l.reg.Binding("staff"); p2 != path {
		t.Errorf("Path after the NAT rebound %q, want the binding's %q", p2, path)
	}
	regs = registrations(l.sink)
	if len(regs) != 2 || regs[1].Remote != moved.p.addr() || regs[1].Registration.Flow != regs[0].Registration.Flow {
		t.Fatalf("registration records after the rebound: %+v", regs)
	}
	// The old socket's binding is gone: its keep-alives get nothing now.
	for _, q := range []*rawPeer{ph.p, moved.p} {
		q.send(net.UDPAddrFromAddrPort(l.staff[policy.TransportUDP]), "\r\n\r\n")
	}
	moved.p.must("the CRLF pong at the new socket", func(m string) bool { return m == "\r\n" })
	if n := ph.p.count(func(m string) bool { return m == "\r\n" }); n != 1 {
		t.Errorf("the old socket got %d pongs, want the 1 from before the rebound", n)
	}
	if b := leg(call(moved.p), compliance.RoleB); b == nil || b.Remote != moved.p.addr() {
		t.Errorf("leg b after the rebound: %+v", b)
	}
}

// checkKeepAlives has the registered phone p and a stranger send
// keep-alives to parapet: p's CRLFCRLF gets a CRLF, its STUN Binding
// request a response naming p's address; the stranger's get nothing.
func checkKeepAlives(t *testing.T, l *flowsLab, p *rawPeer) {
	t.Helper()
	to := net.UDPAddrFromAddrPort(l.staff[policy.TransportUDP])
	stranger := newRawPeer(t)
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:2], 0x0001)
	binary.BigEndian.PutUint32(req[4:8], 0x2112A442)
	copy(req[8:], "parapet-txid")
	for _, q := range []*rawPeer{stranger, p} {
		q.send(to, "\r\n\r\n")
		q.send(to, string(req))
	}
	p.must("the CRLF pong", func(m string) bool { return m == "\r\n" })
	stun := p.must("the STUN Binding response", func(m string) bool { return strings.HasPrefix(m, "\x01\x01") })
	got := []byte(stun.text)
	if len(got) != 20+12+8 || string(got[8:20]) != "parapet-txid" {
		t.Fatalf("STUN response % x", got)
	}
	port := binary.BigEndian.Uint16(got[26:28]) ^ 0x2112
	ip := net.IPv4(got[28]^0x21, got[29]^0x12, got[30]^0xA4, got[31]^0x42)
	if want := p.c.LocalAddr().(*net.UDPAddr); !ip.Equal(want.IP) || int(port) != want.Port {
		t.Errorf("XOR-MAPPED-ADDRESS %s:%d, want %s", ip, port, want)
	}
	if n := stranger.count(func(string) bool { return true }); n != 0 {
		t.Errorf("a stranger's keep-alives got %d answers", n)
	}
}

// A user registered over UDP is pinged (OPTIONS, udp_keepalive) over its
// flow; once it leaves two pings in a row unanswered, a call to it gets
// 430 Flow Failed at once instead of ringing into nothing; a keep-alive
// from it revives the flow.
func TestUDPFlowFailsFast(t *testing.T) {
	l := newFlowsLab(t, func(c *b2bua.Config) { c.Zones[1].Registrar.UDPKeepAlive = 500 * time.Millisecond })
	ph := newNATPhone(t, "urn:uuid:00000000-0000-1000-8000-000000000002")
	if res := ph.register(t, l.staff[policy.TransportUDP]); !strings.HasPrefix(res, "SIP/2.0 200 ") {
		t.Fatalf("REGISTER: %q", res)
	}
	contact, path := l.reg.Binding("staff")
	regs := registrations(l.sink)
	if len(regs) != 1 {
		t.Fatalf("%d registration records", len(regs))
	}
	token := regs[0].Registration.Flow
	ping := ph.p.must("a ping", isReq("OPTIONS"))
	if !strings.HasPrefix(ping.text, "OPTIONS sip:staff@"+natAddr+" ") {
		t.Errorf("ping's Request-URI: %q", firstLine(ping.text))
	}
	ph.p.send(ping.from, reply(ping.text, 200, "OK", "nat", "", ""))
	if l.srv.FlowFailed(token) {
		t.Fatal("a flow that answers its pings is failed")
	}
	// The phone goes silent: the pings go unanswered.
	waitFor(t, 10*time.Second, "the flow to fail", func() bool { return l.srv.FlowFailed(token) })
	start := time.Now()
	_, err := l.pbx.Call(ctxT(t), contact, sim.CallOptions{Route: path})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 430 {
		t.Fatalf("call over a failed UDP flow: %v, want 430", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("430 took %s", d)
	}
	if c := l.sink.waitCalls(t, 1)[0]; c.SIPStatus != 430 || !strings.Contains(c.EndReason, "pings") {
		t.Errorf("record: %d %q", c.SIPStatus, c.EndReason)
	}
	if n := ph.p.count(isReq("INVITE")); n != 0 {
		t.Errorf("the silent phone got %d INVITEs", n)
	}
	ph.p.send(net.UDPAddrFromAddrPort(l.staff[policy.TransportUDP]), "\r\n\r\n")
	ph.p.must("the CRLF pong", func(m string) bool { return m == "\r\n" })
	if l.srv.FlowFailed(token) {
		t.Error("a keep-alive did not revive the flow")
	}
}

// A phone behind a NAT, registered, calls out, its Contact naming its
// private address (with ob, RFC 5626): the PBX side's BYE reaches it at
// the socket its INVITE came from, over the flow, not at the address its
// Contact names (parapet's dialogs send to the source of the peer's
// dialog-forming message, sipgo's RewriteContact).
func TestNATPhoneCallsOut(t *testing.T) {
	l := newFlowsLab(t)
	ph := newNATPhone(t, "urn:uuid:00000000-0000-1000-8000-000000000003")
	if res := ph.register(t, l.staff[policy.TransportUDP]); !strings.HasPrefix(res, "SIP/2.0 200 ") {
		t.Fatalf("REGISTER: %q", res)
	}
	ph.callID = "call-" + ph.callID
	to := net.UDPAddrFromAddrPort(l.staff[policy.TransportUDP])
	sdp := plainSDP(40002, 1)
	head := fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=%%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:staff@%s>;tag=natcaller\r\n"+
		"To: <sip:200@%[2]s>%%s\r\nCall-ID: %s\r\nCSeq: 1 %%s\r\n", natAddr, sim.Realm, ph.callID)
	ph.p.send(to, fmt.Sprintf("INVITE sip:200@%s SIP/2.0\r\n"+head+"Contact: <sip:staff@%s;ob>\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", to, ph.p.branch(), "", "INVITE", natAddr, len(sdp), sdp))
	callee := incoming(t, l.pbx)
	ok := ph.p.must("the 200 to the INVITE", isRes(200, "INVITE")).text
	ph.p.send(to, fmt.Sprintf("ACK %s SIP/2.0\r\n"+head+"Content-Length: 0\r\n\r\n", uriOf(hv(ok, "Contact")), ph.p.branch(),
		";tag="+tagOf(hv(ok, "To")), "ACK"))
	if err := callee.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	bye := ph.p.must("the BYE at the phone's socket", isReq("BYE"))
	ph.p.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
	c := l.sink.waitCalls(t, 1)[0]
	a := leg(c, compliance.RoleA)
	if c.Disposition != compliance.DispositionAnswered || a == nil || a.Remote != ph.p.addr() || a.Transport != "udp" || a.Flow == "" {
		t.Errorf("call %s %q, leg a %+v", c.Disposition, c.EndReason, a)
	}
}
