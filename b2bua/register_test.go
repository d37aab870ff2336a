package b2bua_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// registrations are the registration records written so far.
func registrations(m *memSink) []*compliance.ConnEvent {
	var out []*compliance.ConnEvent
	for _, e := range m.conns() {
		if e.Event == compliance.EventRegistration {
			out = append(out, e)
		}
	}
	return out
}

// A user in the carrier zone (a remote softphone over TLS) registers
// through parapet to the PBX side's registrar, which challenges it; the PBX
// then calls it through parapet, and the INVITE reaches it over the very
// connection it registered on, with SDES-SRTP on that leg.
func TestRegisteredUserReachedOverItsConnection(t *testing.T) {
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	l := newLab(t, labOptions{usersRegistrar: &topology.Registrar{Zone: "pbx",
		Target: topology.Target{URI: "sip:" + reg.Addr.String(), Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()),
			Transport: policy.TransportUDP}}})
	ctx := ctxT(t)
	proxy := fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS)
	res, err := l.carrier.Register(ctx, proxy, sim.Realm, 300, sim.Credentials{Username: "carrier", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if ct := res.Contact(); ct == nil || ct.Params.GetOr("expires", "") != "60" {
		t.Errorf("200 to the phone has Contact %v, want the registrar's with expires=60", res.Contact())
	}
	contact, path := reg.Binding("carrier")
	if contact == "" || !strings.Contains(path, "sip:flow-") || !strings.Contains(path, ";lr") {
		t.Fatalf("registrar's binding: contact %q path %q", contact, path)
	}
	if want := l.pbxUDP.String(); !strings.Contains(path, want) {
		t.Errorf("Path %q does not name parapet's PBX-side listener %s", path, want)
	}
	if req := reg.Requires(); len(req) == 0 || req[0] != "path" {
		t.Errorf("REGISTERs taken had Require %q, want path", req)
	}
	regs := registrations(l.sink)
	if len(regs) != 1 {
		t.Fatalf("%d registration records, want 1", len(regs))
	}
	r := regs[0]
	if r.Zone != "carrier" || r.Transport != "tls" || r.Local != l.carrierTLS.String() || r.Registration == nil ||
		r.Registration.Expires != 60 || r.Registration.TLS == nil || r.Registration.TLS.PeerCert == nil ||
		!strings.HasPrefix(r.Registration.AOR, "hmac-sha256:") || !strings.Contains(r.Registration.UserAgent, "sim-carrier") {
		t.Errorf("registration record: %+v %+v", r, r.Registration)
	}

	// The same registration again (a refresh): no new record.
	if res, err := l.carrier.Register(ctx, proxy, sim.Realm, 300, sim.Credentials{Username: "carrier", Password: "s3cret"}); err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh: %v %v", res, err)
	}
	if n := len(registrations(l.sink)); n != 1 {
		t.Errorf("%d registration records after a refresh with the same facts, want 1", n)
	}

	// The PBX calls the registered contact, routed by the Path.
	caller, err := l.pbx.Call(ctx, contact, sim.CallOptions{Route: path})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if ok, _ := callee.SRTP(); !ok {
		t.Error("the registered user's leg has no SRTP")
	}
	exchange(t, caller, callee)
	if w := l.carrier.Wire(); w.Conns != 0 {
		t.Errorf("parapet opened %d connections toward the registered user; want none (the registration's)", w.Conns)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the registered user", callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.Route != "registered:carrier" {
		t.Errorf("call: %s route %q", c.Disposition, c.Route)
	}
	b := leg(c, compliance.RoleB)
	if b == nil {
		t.Fatalf("legs: %+v", c.Legs)
	}
	if b.Flow != r.Registration.Flow || b.Local != r.Local || b.Remote != r.Remote || b.Transport != "tls" ||
		b.TLS == nil || b.Media == nil || b.Media.KeyExchange != "sdes" {
		t.Errorf("leg b: %+v tls %+v media %+v; registration %+v", b, b.TLS, b.Media, r)
	}

	// The phone unregisters (Expires: 0): recorded, with expires 0, and
	// the PBX's next call to it finds no flow.
	if res, err := l.carrier.Register(ctx, proxy, sim.Realm, 0, sim.Credentials{Username: "carrier", Password: "s3cret"}); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	regs = registrations(l.sink)
	if len(regs) != 2 || regs[1].Registration.Flow != r.Registration.Flow || regs[1].Registration.Expires != 0 ||
		regs[1].Registration.AOR != r.Registration.AOR {
		t.Errorf("after unregistering, registration records %d, last %+v; want a second with expires 0", len(regs), regs[len(regs)-1].Registration)
	}
	if _, err := l.pbx.Call(ctx, contact, sim.CallOptions{Route: path}); err == nil {
		t.Error("a call to an unregistered user's flow was taken")
	}
}

// A registrar without Path support refuses Require: path; the phone gets
// 502 and nothing is bound.
func TestRegistrarWithoutPath(t *testing.T) {
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	reg.RefusePath()
	l := newLab(t, labOptions{usersRegistrar: &topology.Registrar{Zone: "pbx",
		Target: topology.Target{Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()), Transport: policy.TransportUDP}}})
	res, err := l.carrier.Register(ctxT(t), fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS), sim.Realm, 300,
		sim.Credentials{Username: "carrier", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 502 {
		t.Errorf("REGISTER: %d, want 502", res.StatusCode)
	}
	if n := len(registrations(l.sink)); n != 0 {
		t.Errorf("%d registration records, want none", n)
	}
}

// Without a registrar, REGISTER gets 405 as before.
func TestRegisterWithoutRegistrar(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.carrier.Register(ctx, fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS), sim.Realm, 300, sim.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 405 {
		t.Errorf("REGISTER: %d, want 405", res.StatusCode)
	}
}

// Keep-alives (RFC 5626 section 4.4.1): a CRLFCRLF ping over TLS or TCP
// gets a CRLF pong; over UDP a CRLF keep-alive is taken silently, counted
// as no parse error, and an OPTIONS ping gets 200.
func TestKeepAlives(t *testing.T) {
	l := newLab(t, labOptions{})
	tc, err := tls.Dial("tcp", l.carrierTLS.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tcp, err := net.Dial("tcp", l.srv.Addrs("pbx")[policy.TransportTCP].String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for name, c := range map[string]net.Conn{"tls": tc, "tcp": tcp} {
		for i := range 2 { // the connection stays open for the next
			if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
				t.Fatalf("%s ping %d: %v", name, i, err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 16)
			n, err := io.ReadAtLeast(c, buf, 2)
			if err != nil || string(buf[:n]) != "\r\n" {
				t.Errorf("%s ping %d: pong %q (%v), want CRLF", name, i, buf[:n], err)
			}
		}
	}
	u, err := net.Dial("udp", l.pbxUDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	before := l.srv.Stats().ParseErrors
	for _, ka := range []string{"\r\n\r\n", "\r\n"} {
		if _, err := u.Write([]byte(ka)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := l.pbx.Options(ctxT(t), fmt.Sprintf("sip:%s", l.pbxUDP))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS over UDP: %v %v", res, err)
	}
	if n := l.srv.Stats().ParseErrors; n != before {
		t.Errorf("UDP keep-alives counted as %d parse errors", n-before)
	}
}

// A call to a registered user whose connection has closed gets 430 Flow
// Failed (RFC 5626 section 5.3): parapet opens no new connection toward
// the user. An unregistered (removed) binding's flow is unknown: 404.
func TestRegisteredFlowGone(t *testing.T) {
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	l := newLab(t, labOptions{usersRegistrar: &topology.Registrar{Zone: "pbx",
		Target: topology.Target{Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()), Transport: policy.TransportUDP}}})
	ctx := ctxT(t)
	proxy := fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS)
	creds := sim.Credentials{Username: "carrier", Password: "s3cret"}
	if res, err := l.carrier.Register(ctx, proxy, sim.Realm, 300, creds); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	contact, path := reg.Binding("carrier")
	l.carrier.Close()
	waitFor(t, 5*time.Second, "the registration's connection to close", func() bool {
		open, _ := l.srv.HeldConns("carrier")
		return open == 0
	})
	_, err := l.pbx.Call(ctx, contact, sim.CallOptions{Route: path})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 430 {
		t.Fatalf("call over a closed flow: %v, want 430", err)
	}
	if c := l.sink.waitCalls(t, 1)[0]; c.SIPStatus != 430 || c.Route != "" {
		t.Errorf("record: %d route %q %q", c.SIPStatus, c.Route, c.EndReason)
	}
	bad := strings.Replace(path, "flow-", "flow-0", 1)
	_, err = l.pbx.Call(ctx, contact, sim.CallOptions{Route: bad})
	if !errors.As(err, &rej) || rej.Status != 404 {
		t.Fatalf("call naming an unknown flow: %v, want 404", err)
	}
}
