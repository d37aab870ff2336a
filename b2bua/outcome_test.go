package b2bua

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
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
		{"write failed after a handshake", fmt.Errorf("%w: conn write err=%w", sip.ErrTransactionTransport, net.ErrClosed), true, false, failUnreachable},
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

func TestReasonPhrases(t *testing.T) {
	for code, want := range map[int]string{488: "Not Acceptable Here", 503: "Service Unavailable", 299: "Error", 699: "Error"} {
		if got := reasonPhrase(code); got != want {
			t.Errorf("reasonPhrase(%d) = %q, want %q", code, got, want)
		}
	}
}
