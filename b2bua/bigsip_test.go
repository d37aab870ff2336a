package b2bua_test

import (
	"context"
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
)

// largeSDP is how many extra formats the peers of these tests list in
// their SDP: enough for an INVITE from parapet of about 2,000 bytes.
const largeSDP = 14

// An INVITE of about 2,000 bytes from the carrier, toward the PBX, a UDP
// target that also listens on TCP: parapet sends it over TCP (RFC 3261
// section 18.1.1), its Via and Contact say so, the dialog stays on TCP
// (ACK, BYE), and the call completes with media.
func TestLargeInviteGoesOverTCP(t *testing.T) {
	l := newLab(t, labOptions{pbxAlsoTCP: true, extraFormats: largeSDP})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	inv := callee.Dialog()
	t.Logf("INVITE at the PBX: %d bytes over %s", len(inv), callee.Transport())
	if len(inv) < 2000 {
		t.Fatalf("the INVITE at the PBX is %d bytes; the test wants at least 2,000", len(inv))
	}
	if got := callee.Transport(); got != "TCP" {
		t.Errorf("the large INVITE reached the PBX over %s, want TCP", got)
	}
	if n := l.pbx.Received("INVITE", "UDP"); n != 0 {
		t.Errorf("%d INVITEs reached the PBX's UDP socket", n)
	}
	if via := hv(inv, "Via"); !strings.HasPrefix(via, "SIP/2.0/TCP ") {
		t.Errorf("top Via %q, want SIP/2.0/TCP", via)
	}
	if ct := hv(inv, "Contact"); !strings.Contains(ct, "transport=tcp") || !strings.Contains(ct, l.srv.Addrs("pbx")[policy.TransportTCP].String()) {
		t.Errorf("Contact %q, want parapet's TCP listener", ct)
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the PBX", callee)
	c := l.sink.waitCalls(t, 1)[0]
	wantRecord(t, c, compliance.DispositionAnswered, 200, "bye from a")
	if b := leg(c, compliance.RoleB); b == nil || b.Transport != "tcp" {
		t.Errorf("leg b: %+v, want transport tcp", b)
	}
	for _, m := range []string{"ACK", "BYE"} {
		if tcp, udp := l.pbx.Received(m, "TCP"), l.pbx.Received(m, "UDP"); tcp == 0 || udp != 0 {
			t.Errorf("%s at the PBX: %d over TCP, %d over UDP; the dialog is on TCP", m, tcp, udp)
		}
	}
}

// The same INVITE toward a UDP target that does not listen on TCP: the
// TCP connection is refused, and parapet sends the INVITE over UDP anyway
// (IP fragments it); the call completes, all of it on UDP.
func TestLargeInviteToUDPOnlyTarget(t *testing.T) {
	l := newLab(t, labOptions{extraFormats: largeSDP})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	inv := callee.Dialog()
	if len(inv) < 2000 || callee.Transport() != "UDP" {
		t.Fatalf("INVITE at the PBX: %d bytes over %s, want at least 2,000 over UDP", len(inv), callee.Transport())
	}
	if via, ct := hv(inv, "Via"), hv(inv, "Contact"); !strings.HasPrefix(via, "SIP/2.0/UDP ") || strings.Contains(ct, "transport=") {
		t.Errorf("Via %q, Contact %q: want UDP", via, ct)
	}
	exchange(t, caller, callee)
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", caller)
	c := l.sink.waitCalls(t, 1)[0]
	wantRecord(t, c, compliance.DispositionAnswered, 200, "bye from b")
	if b := leg(c, compliance.RoleB); b == nil || b.Transport != "udp" {
		t.Errorf("leg b: %+v, want transport udp", b)
	}
}

// A caller on UDP offering a large SDP, answered by a callee that lists as
// many formats: parapet's 200 to the caller, well over 1,300 bytes, goes
// back over UDP as the INVITE came (RFC 3261 section 18.2.2), and reaches
// it.
func TestLarge200ReachesCallerOverUDP(t *testing.T) {
	l := newLab(t, labOptions{extraFormats: largeSDP})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	if res := caller.Dialog(); len(res) < 1500 || caller.Transport() != "UDP" {
		t.Fatalf("parapet's 200 at the caller: %d bytes over %s, want over 1,500 over UDP", len(res), caller.Transport())
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", callee)
	wantRecord(t, l.sink.waitCalls(t, 1)[0], compliance.DispositionAnswered, 200, "bye from a")
}

// A request inside a dialog that went over UDP tries TCP when it is large:
// with a delayed offer the INVITE to the PBX is small (no SDP) and goes
// over UDP, the PBX offers in its 200, and parapet's ACK, which carries
// the caller's answer listing every format, goes over TCP. The BYE, small
// again, goes over UDP.
func TestLargeRequestInUDPDialogGoesOverTCP(t *testing.T) {
	l := newLab(t, labOptions{pbxAlsoTCP: true, extraFormats: largeSDP})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	if callee.Transport() != "UDP" {
		t.Fatalf("the offerless INVITE went over %s, want UDP", callee.Transport())
	}
	waitFor(t, 5*time.Second, "the ACK at the PBX", func() bool { return l.pbx.Received("ACK", "TCP") > 0 })
	if n := l.pbx.Received("ACK", "UDP"); n != 0 {
		t.Errorf("%d ACKs over UDP", n)
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the PBX", callee)
	if n := l.pbx.Received("BYE", "UDP"); n != 1 {
		t.Errorf("%d BYEs over UDP, want 1", n)
	}
	if b := leg(l.sink.waitCalls(t, 1)[0], compliance.RoleB); b == nil || b.Transport != "udp" {
		t.Errorf("leg b: %+v, want transport udp (the dialog's)", b)
	}
}

// A caller whose INVITE came over TCP, and whose connection is gone before
// parapet could answer it, cannot be sent anything: the response parapet
// relays (a 180) or sends (its 200) fails. The record says what could not
// be sent and that no status reached the caller; it never says the caller
// cancelled (it did not), nor that a 200 went out. The callee is
// cancelled, or gets its ACK and BYE.
func TestCallerGoneIsNotRecordedCancelled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // B's response relayed while the caller is still there (0: none)
		after  int // B's response once the caller is gone
		reason string
	}{
		{"while ringing", 0, 180, "a response to the caller could not be sent: the connection is closed"},
		{"on the answer", 180, 200, "the 200 could not be sent to the caller: the connection is closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newRawLab(t)
			conn, bInv := tcpCaller(t, l)
			if tc.before != 0 {
				l.b.send(bInv.from, reply(bInv.text, tc.before, "Ringing", "btag", l.b.addr(), ""))
				readUntil(t, conn, fmt.Sprintf("SIP/2.0 %d ", tc.before))
			}
			// The caller is done: parapet, once it reads the end of the
			// stream, closes the connection, and the caller reads to the end.
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			readUntil(t, conn, "")
			body := ""
			if tc.after == 200 {
				body = plainSDP(5000, 1)
			}
			l.b.send(bInv.from, reply(bInv.text, tc.after, "Whatever", "btag", l.b.addr(), body))
			if tc.after == 200 {
				l.b.must("ACK for B's 200", isReq("ACK"))
				bye := l.b.must("BYE to B", isReq("BYE"))
				l.b.send(bye.from, reply(bye.text, 200, "OK", "", "", ""))
			} else {
				cancel := l.b.must("CANCEL to B", isReq("CANCEL"))
				l.b.send(cancel.from, reply(cancel.text, 200, "OK", "", "", ""))
				l.b.send(bInv.from, reply(bInv.text, 487, "Request Terminated", "btag", "", ""))
			}
			c := l.record()
			wantRecord(t, c, compliance.DispositionFailed, 0, tc.reason)
			if c.Answer != nil {
				t.Errorf("the record says the call was answered at %v", c.Answer)
			}
		})
	}
}

// tcpCaller connects to parapet's TCP listener in the raw lab's zone a,
// sends an INVITE and returns the connection once B has the INVITE.
func tcpCaller(t *testing.T, l *rawLab) (net.Conn, *rawMsg) {
	t.Helper()
	to := l.srv.Addrs("a")[policy.TransportTCP].String()
	conn, err := net.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	inv := invite(conn.LocalAddr().String(), to, "gone@tcp", "application/sdp", plainSDP(4000, 1))
	if _, err := conn.Write([]byte(strings.Replace(inv, "SIP/2.0/UDP", "SIP/2.0/TCP", 1))); err != nil {
		t.Fatal(err)
	}
	return conn, l.b.must("INVITE at B", isReq("INVITE"))
}

// readUntil reads conn until what was received contains want, or to the
// end of the stream when want is "", failing the test after 5 s.
func readUntil(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for want == "" || !strings.Contains(string(got), want) {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		switch {
		case errors.Is(err, io.EOF) && want == "":
			return
		case err != nil:
			t.Fatalf("reading from parapet (want %q): %v; got %q", want, err, got)
		}
	}
}

// A caller that cancels a call whose large INVITE went to the PBX over TCP:
// parapet's CANCEL, built from that INVITE (its transport, its top Via),
// reaches the PBX, which stops ringing, and the record says cancelled.
func TestLargeInviteOverTCPCancelled(t *testing.T) {
	l := newLab(t, labOptions{pbxAlsoTCP: true, extraFormats: largeSDP, pbxAnswer: sim.Answer{Ring: 10 * time.Second}})
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the INVITE at the PBX over TCP", func() bool { return l.pbx.Received("INVITE", "TCP") == 1 })
	cancel() // the carrier gives up while the PBX rings
	if err := <-errc; err == nil {
		t.Fatal("a cancelled call was answered")
	}
	waitFor(t, 5*time.Second, "the PBX's INVITE to be cancelled", func() bool { return l.pbx.Cancelled() == 1 })
	wantRecord(t, l.sink.waitCalls(t, 1)[0], compliance.DispositionCancelled, 487, "cancelled by caller")
}
