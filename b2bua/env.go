package b2bua

import (
	"log/slog"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// env is what a call needs of the server, and all it gets: never the
// server itself (its listeners, its lifecycle, its locks). The server
// builds one in New and every call shares it.
type env struct {
	reg   *registry
	rec   *recorder
	stats *stats
	pool  *media.PortPool
	// dtls is parapet's certificate for DTLS-SRTP.
	dtls *media.DTLSCertificate
	// zones are the zones by name, for the zone a route leads to.
	zones map[string]*zone
	// advertise is the media address parapet's SDP names instead of the
	// one it binds (zero: the bound one); mediaAddr is the address of its
	// o= lines: advertise, or the media address.
	advertise, mediaAddr netip.Addr
	// pseudo hashes Call-IDs in records (nil: written in clear).
	pseudo  *compliance.Pseudonymizer
	journal Journal
	// stopping is closed when the server starts shutting down.
	stopping <-chan struct{}
	// events records connection events and folds floods of them.
	events eventRecorder
	// trunks are the routes' registrations: a request carrying one's
	// line token is admitted as arriving on that trunk.
	trunks *trunkSet
	// health is what OPTIONS pings found of the routes' targets.
	health *health
	// binds are the users registered through parapet, for calls to them.
	binds *bindings
	// challenges are the digest challenges relayed to callers, whose
	// answers may go to the zone that challenged (authrelay.go).
	challenges *challengeBook
}

// eventRecorder is the server's book of connection events, as calls use
// it: a refused TLS handshake toward a callee, and the refusal of an
// INVITE from outside a zone's peers (answered and tallied, see
// Server.refuseOutsider).
type eventRecorder interface {
	connEvent(z *zone, event compliance.ConnEventKind, sig policy.SignalingFacts, remote string, fill func(*compliance.ConnEvent))
	refuseOutsider(z *zone, req *sip.Request, tx sip.ServerTransaction)
}

// isStopping reports whether the server has begun shutting down.
func (e *env) isStopping() bool {
	select {
	case <-e.stopping:
		return true
	default:
		return false
	}
}

// journalHealthy reports whether calls can be journaled (true without a
// journal).
func (e *env) journalHealthy() bool { return e.journal == nil || e.journal.Err() == nil }

// responder writes parapet's responses in one zone: its headers on each
// (Server only when the zone names parapet), and a send failure logged and
// returned (most callers can do nothing more: the transaction is gone; a
// call's final response says so in its record).
type responder struct {
	userAgent string
	log       *slog.Logger
}

func (r responder) commonHeaders(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	res.AppendHeader(sip.NewHeader("Supported", supportedTags))
	if r.userAgent != "" {
		res.AppendHeader(sip.NewHeader("Server", r.userAgent))
	}
}

func (r responder) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason, warning string) error {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0" // sipgo echoes the request's, even in a 505
	copyAddresses(req, res)
	r.commonHeaders(res)
	if warning != "" {
		res.AppendHeader(sip.NewHeader("Warning", warningValue(warning)))
	}
	return r.send(tx, res)
}

func (r responder) send(tx sip.ServerTransaction, res *sip.Response) error {
	err := tx.Respond(res)
	if err != nil {
		r.log.Debug("respond failed", "status", res.StatusCode, "error", err)
	}
	return err
}

// badExtension answers 420 Bad Extension naming the option tags parapet
// does not support (RFC 3261 section 8.2.2.3).
func (r responder) badExtension(tx sip.ServerTransaction, req *sip.Request, list string) error {
	res := sip.NewResponseFromRequest(req, 420, reasonPhrase(420), nil)
	res.AppendHeader(sip.NewHeader("Unsupported", list))
	r.commonHeaders(res)
	return r.send(tx, res)
}
