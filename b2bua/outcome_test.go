package b2bua

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
)

// classify reads an error's types, never its text: each case wraps the
// error as sipgo does on its way up.
func TestClassify(t *testing.T) {
	response := func(code int) error {
		return fmt.Errorf("invite: %w", &sipgo.ErrDialogResponse{Res: sip.NewResponse(code, "whatever the callee says")})
	}
	viaSipgo := func(err error) error {
		return fmt.Errorf("client transcation failed to request connection: %w", fmt.Errorf("TLS handshake error: %w", err))
	}
	for _, c := range []struct {
		name      string
		err       error
		overTLS   bool
		handshook bool
		want      failure
	}{
		{"busy", response(486), true, true, failAnswered},
		{"not found", response(404), false, false, failAnswered},
		{"challenge again", response(407), true, true, failCredentials},
		{"unauthorized again", response(401), false, false, failCredentials},
		{"redirect", response(302), false, false, failRedirected},
		{"untrusted certificate", viaSipgo(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true, false, failTLS},
		{"hostname mismatch", viaSipgo(x509.HostnameError{Host: "carrier"}), true, false, failTLS},
		{"not TLS at all", viaSipgo(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), true, false, failTLS},
		{"alert received", viaSipgo(&net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}), true, false, failTLS},
		// crypto/tls gives some failures no type: on a TLS leg that got a
		// TCP connection and no session, they are the handshake's.
		{"untyped handshake failure", viaSipgo(errors.New("tls: server selected unsupported protocol version 301")), true, false, failTLS},
		{"the same error after a session", errors.New("tls: something"), true, true, failUnreachable},
		{"connection refused on TLS", fmt.Errorf("dial TCP error: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true, false, failUnreachable},
		{"no such host on TLS", fmt.Errorf("client transcation failed to request connection: %w",
			&net.DNSError{Err: "no such host", Name: "no-such-host.invalid", IsNotFound: true}), true, false, failUnreachable},
		{"write failed after a handshake", fmt.Errorf("%w: conn write err=%w", sip.ErrTransactionTransport, net.ErrClosed), true, false, failNotSent},
		{"datagram refused", fmt.Errorf("fail to write request on init: %w. %w",
			&net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", syscall.EMSGSIZE)}, sip.ErrTransactionTransport), false, false, failNotSent},
		{"handshake stalled until the deadline", viaSipgo(context.DeadlineExceeded), true, false, failTLS},
		{"connect timed out", fmt.Errorf("dial TCP error: %w", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}), true, false, failTimeout},
		{"connection refused on UDP", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false, false, failUnreachable},
		{"no answer", fmt.Errorf("invite: %w", sip.ErrTransactionTimeout), false, false, failTimeout},
		{"deadline", fmt.Errorf("invite: %w", context.DeadlineExceeded), true, true, failTimeout},
		{"anything else", errors.New("transport udp is not supported"), false, false, failUnreachable},
	} {
		if got, _ := classify(c.err, c.overTLS, c.handshook); got != c.want {
			t.Errorf("%s: classify(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}

// sendError keeps what a record needs of a send failure: the system
// call's error, or that the connection was closed.
func TestSendError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("fail to write request on init req=\"INVITE sip:x@192.0.2.1 SIP/2.0\": udp conn 127.0.0.1:5060 err. %w. %w",
			&net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", syscall.EMSGSIZE)}, sip.ErrTransactionTransport),
			"sendto: message too long"},
		{fmt.Errorf("conn write err=%w. %w", net.ErrClosed, sip.ErrTransactionTransport), "the connection is closed"},
		{errors.New("something else"), "something else"},
	} {
		if got := sendError(c.err); got != c.want {
			t.Errorf("sendError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// sendingTx is a server transaction whose responses fail with err (or go
// out, when it is nil).
type sendingTx struct {
	sip.ServerTransaction
	err error
}

func (tx sendingTx) Respond(*sip.Response) error { return tx.err }

// A refusal that could not be sent is not recorded as sent: the record
// keeps parapet's decision and its reason, says no status reached the
// caller (0), and why.
func TestRefusalNotSent(t *testing.T) {
	msg, err := sip.ParseMessage([]byte("INVITE sip:+15551230000@127.0.0.1:5060 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKunsent\r\nMax-Forwards: 70\r\n" +
		"From: <sip:pbx@127.0.0.1>;tag=a\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: unsent@test\r\n" +
		"CSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	unreachable := fmt.Errorf("fail to pass response: %w. %w",
		&net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", syscall.ENETUNREACH)}, sip.ErrTransactionTransport)
	for _, c := range []struct {
		name       string
		err        error
		wantStatus int
		wantReason string
	}{
		{"sent", nil, 404, `no route from zone "a" for this number`},
		{"not sent", unreachable, 0,
			`the 404 could not be sent to the caller (sendto: network is unreachable): no route from zone "a" for this number`},
	} {
		log := slog.New(slog.DiscardHandler)
		z := &zone{responder: responder{log: log, userAgent: "parapet-test"}, name: "a"}
		call := &Call{env: &env{}, a: &leg{zone: z}, rules: &rules{vocab: []string{"a"}}, log: log}
		call.reject(sendingTx{err: c.err}, msg.(*sip.Request), 404, reasonPhrase(404), compliance.DispositionRejected,
			`no route from zone "a" for this number`)
		if call.disposition != compliance.DispositionRejected || call.status != c.wantStatus || call.endReason != c.wantReason {
			t.Errorf("%s: outcome %s %d %q, want rejected %d %q", c.name, call.disposition, call.status, call.endReason,
				c.wantStatus, c.wantReason)
		}
	}
}

func TestReasonPhrases(t *testing.T) {
	for code, want := range map[int]string{488: "Not Acceptable Here", 503: "Service Unavailable", 299: "Error", 699: "Error"} {
		if got := reasonPhrase(code); got != want {
			t.Errorf("reasonPhrase(%d) = %q, want %q", code, got, want)
		}
	}
}
