package b2bua

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// statusText is the reason phrase parapet writes for each status it sends
// (RFC 3261 section 21). A callee's own phrase is never relayed: it is free
// text from outside, which may name the number or the person called.
var statusText = map[int]string{
	180: "Ringing",
	183: "Session Progress",
	200: "OK",
	202: "Accepted",
	401: "Unauthorized",
	407: "Proxy Authentication Required",
	423: "Interval Too Brief",
	400: "Bad Request",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	406: "Not Acceptable",
	408: "Request Timeout",
	415: "Unsupported Media Type",
	416: "Unsupported URI Scheme",
	420: "Bad Extension",
	430: "Flow Failed",
	480: "Temporarily Unavailable",
	481: "Call/Transaction Does Not Exist",
	483: "Too Many Hops",
	486: "Busy Here",
	487: "Request Terminated",
	488: "Not Acceptable Here",
	491: "Request Pending",
	500: "Server Internal Error",
	501: "Not Implemented",
	502: "Bad Gateway",
	503: "Service Unavailable",
	505: "Version Not Supported",
	603: "Decline",
}

// reasonPhrase is statusText's phrase for code, or "Error".
func reasonPhrase(code int) string {
	if s, ok := statusText[code]; ok {
		return s
	}
	return "Error"
}

// failure is why leg B could not be set up, as classify tells it from the
// error.
type failure int

const (
	// failAnswered: the callee side answered with a final error.
	failAnswered failure = iota
	// failCredentials: it refused parapet's credentials (401/407 again).
	failCredentials
	// failRedirected: it redirected (3xx), which parapet does not follow.
	failRedirected
	// failTLS: the TLS handshake toward it failed.
	failTLS
	// failTimeout: it never answered.
	failTimeout
	// failNotSent: the INVITE could not be written (or re-written) on
	// its connection: sipgo's transport error.
	failNotSent
	// failUnreachable: no connection could be made.
	failUnreachable
)

// classify tells why leg B failed from the error sipgo returned, by the
// errors' types (never their text): a SIP response, a TLS or X.509 error,
// a timeout, or the rest. overTLS says whether the leg runs over TLS, and
// handshook whether a TLS session was established on it: on a TLS leg, a
// failure after the TCP connection was made and before any session is the
// handshake's (duringHandshake), whatever crypto/tls called it (some of
// its errors carry no type, "tls: server selected unsupported protocol
// version" among them).
func classify(err error, overTLS, handshook bool) (failure, *sip.Response) {
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) && dr.Res != nil {
		code := dr.Res.StatusCode
		switch {
		case code == 401 || code == 407:
			return failCredentials, dr.Res
		case code >= 300 && code < 400:
			return failRedirected, dr.Res
		}
		return failAnswered, dr.Res
	}
	if tlsError(err) || overTLS && !handshook && duringHandshake(err) {
		return failTLS, nil
	}
	if errors.Is(err, sip.ErrTransactionTransport) {
		return failNotSent, nil
	}
	if errors.Is(err, sip.ErrTransactionTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return failTimeout, nil
	}
	return failUnreachable, nil
}

// duringHandshake reports whether a failure on a TLS leg with no session
// yet came after the TCP connection was made, so from the handshake: not
// a failure to resolve the target or to connect, and not a failure to
// write on a connection (sipgo's transport error, which comes after a
// handshake). A handshake that stalls until the leg's deadline is the
// handshake's too.
func duringHandshake(err error) bool {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns), dialError(err), errors.Is(err, sip.ErrTransactionTransport),
		errors.Is(err, sip.ErrTransactionTimeout), errors.Is(err, net.ErrClosed):
		return false
	}
	return true
}

// tlsError reports whether err comes from a TLS handshake: a certificate
// that did not verify, a TLS alert sent or received, a record that is not
// TLS.
func tlsError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		rh   tls.RecordHeaderError
		ae   tls.AlertError
		ua   x509.UnknownAuthorityError
		ci   x509.CertificateInvalidError
		he   x509.HostnameError
		op   *net.OpError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &rh), errors.As(err, &ae),
		errors.As(err, &ua), errors.As(err, &ci), errors.As(err, &he):
		return true
	case errors.As(err, &op):
		// crypto/tls reports alerts as net.OpErrors with these operations.
		return op.Op == "remote error" || op.Op == "local error"
	}
	return false
}

// dialError reports whether err is a failure to open the connection
// itself (refused, unreachable, no route).
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bFailed maps a failure to reach or set up B to a response to A and the
// call's outcome.
func (c *Call) bFailed(err error) {
	c.mu.Lock()
	handshook := c.b.sig.TLS != nil
	c.mu.Unlock()
	kind, res := classify(err, c.b.transport == policy.TransportTLS, handshook)
	msg := recordText(err.Error(), c.rules.vocab, c.caller, c.callee)
	switch kind {
	case failCredentials:
		if c.passesChallenge(res) {
			c.relayChallenge(res)
			return
		}
		why := c.credentialsRefused(res.StatusCode)
		c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, why, why)
	case failRedirected:
		why := fmt.Sprintf("callee side redirected (%d); redirects are not followed", res.StatusCode)
		c.respondA(480, reasonPhrase(480), compliance.DispositionFailed, why, why)
	case failAnswered:
		// Not the callee's own reason phrase (statusText).
		c.respondA(res.StatusCode, reasonPhrase(res.StatusCode), compliance.DispositionFailed,
			fmt.Sprintf("callee side answered %d", res.StatusCode), "")
	case failTLS:
		c.tlsToBFailed(err, msg)
	case failTimeout:
		c.respondA(408, reasonPhrase(408), compliance.DispositionFailed, "callee side did not answer: "+msg,
			"the callee side did not answer")
	case failNotSent:
		why := recordText(sendError(err), c.rules.vocab, c.caller, c.callee)
		c.respondA(503, reasonPhrase(503), compliance.DispositionFailed,
			"the INVITE to the callee side could not be sent: "+why, "the callee side is unreachable")
	default:
		c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, "callee side unreachable: "+msg,
			"the callee side is unreachable")
	}
}

// credentialsRefused says why a 401 or 407 to leg B's INVITE ended the
// call: the route's credentials were refused, or the route has none (a
// B2BUA answers challenges itself; the caller never sees them).
func (c *Call) credentialsRefused(code int) string {
	if c.route.Username == "" || c.route.Password == "" {
		return fmt.Sprintf("callee side asked for credentials (%d), and route %q has none to answer with (no auth block, or its password unset)", code, c.route.Name)
	}
	return fmt.Sprintf("callee side refused parapet's credentials (%d)", code)
}

// tlsToBFailed records a failed TLS handshake toward B (a decision, a
// tls_client_failed event with the certificate offered) and answers A.
func (c *Call) tlsToBFailed(err error, msg string) {
	c.decide(c.tlsToBEvent(err, msg))
	c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, "TLS to callee side failed: "+msg,
		"TLS to the callee side failed")
}

// tlsToBEvent records a failed TLS handshake toward the current target
// (a tls_client_failed event with the certificate offered) and returns
// policy's decision on it.
func (c *Call) tlsToBEvent(err error, msg string) policy.Decision {
	b := c.b
	d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: b.pol,
		Handshake: policy.HandshakeFacts{Error: msg}})
	c.env.stats.tlsRefused.Add(1)
	c.env.events.connEvent(b.zone, compliance.EventTLSClientFailed, b.sig, c.targetAddr(), func(e *compliance.ConnEvent) {
		e.Error = msg
		e.Decision = &d
		if cert := certFromError(err); cert != nil {
			e.PeerCert = certInfo(certFacts(cert))
		}
	})
	return d
}

// callerGone settles the outcome of a call whose caller's INVITE
// transaction ended before parapet's final response. Either the caller
// cancelled (sipgo answered its INVITE 487), or a response to the caller
// could not be sent, which ends the transaction: then no status reached
// the caller (0), and nothing more can.
func (c *Call) callerGone() {
	err := c.aTx.Err()
	if errors.Is(err, sip.ErrTransactionCanceled) || errors.Is(context.Cause(c.a.uas.Context()), sip.ErrTransactionCanceled) {
		c.setOutcome(compliance.DispositionCancelled, 487, "cancelled by caller")
		return
	}
	why := "the caller's INVITE transaction ended before parapet answered it"
	switch {
	case errors.Is(err, sip.ErrTransactionTransport):
		why = "a response to the caller could not be sent: " + sendError(err)
	case err != nil:
		why += ": " + err.Error()
	}
	c.setOutcome(compliance.DispositionFailed, 0, why)
}

// unsent amends the outcome of a call whose final response to the caller,
// with status code, could not be sent: the record must not say a status
// was sent (sip_status 0), and says why. The disposition (parapet's
// refusal, the callee's failure) stands.
func (c *Call) unsent(code int, err error) {
	c.log.Warn("final response to the caller not sent", "status", code, "error", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != code {
		return // the outcome was settled otherwise first
	}
	why := fmt.Sprintf("the %d could not be sent to the caller (%s): %s", code, sendError(err), c.endReason)
	c.status, c.endReason = 0, recordText(why, c.rules.vocab, c.caller, c.callee)
}
