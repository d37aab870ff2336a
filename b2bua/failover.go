package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// defaultAttemptTimeout is how long parapet waits for a first response
// from one of a route's several targets before it tries the next, when the
// route sets no attempt_timeout.
const defaultAttemptTimeout = 4 * time.Second

// multiTarget reports whether the call's route lists several targets:
// only then are its attempts bounded by attempt_timeout and recorded.
func (c *Call) multiTarget() bool { return len(c.route.Targets) > 0 }

// attemptTimeout is the bound on one target's first response, or 0 for a
// route with a single target (which waits out Timer B as ever).
func (c *Call) attemptTimeout() time.Duration {
	if !c.multiTarget() {
		return 0
	}
	if c.route.AttemptTimeout > 0 {
		return c.route.AttemptTimeout
	}
	return defaultAttemptTimeout
}

// hop is one place leg B may be sent: a target, at one of the addresses
// its name resolved to.
type hop struct {
	target topology.Target
	// addr is where the target's name resolved to; zero for an IP
	// literal or a route with one target (sipgo reads the host itself).
	addr netip.AddrPort
	// err says why the target's name did not resolve.
	err error
}

// hops is where the call may send leg B, in order: each target of
// targetOrder at each address its name resolves to (RFC 3263).
func (c *Call) hops() []hop {
	targets := c.targetOrder()
	if !c.multiTarget() {
		return []hop{{target: targets[0]}}
	}
	var out []hop
	for _, t := range targets {
		if _, err := netip.ParseAddr(t.Host); err == nil {
			out = append(out, hop{target: t})
			continue
		}
		addrs, err := c.resolve(t)
		if err != nil {
			out = append(out, hop{target: t, err: fmt.Errorf("resolving %s: %w", t.Host, err)})
			continue
		}
		for _, a := range addrs {
			out = append(out, hop{target: t, addr: a})
		}
	}
	return out
}

// resolve finds the addresses of t, a name, with the route's resolver.
func (c *Call) resolve(t topology.Target) ([]netip.AddrPort, error) {
	if c.route.dns == nil {
		return nil, errors.New(c.route.dnsErr)
	}
	ctx, cancel := context.WithTimeout(c.a.uas.Context(), 2*dnsTimeout)
	defer cancel()
	return c.route.dns.resolve(ctx, t)
}

// targetOrder is the order in which the call tries its route's targets:
// priority order, without those health pings marked down, unless every
// one is down (then all of them, as a last resort). The skipped ones are
// recorded as attempts.
func (c *Call) targetOrder() []topology.Target {
	all := c.route.AllTargets()
	var up, down []topology.Target
	for _, t := range all {
		if c.env.health.isDown(c.route.Name, t.URI) {
			down = append(down, t)
			continue
		}
		up = append(up, t)
	}
	if len(up) == 0 {
		return all
	}
	for _, t := range down {
		c.addAttempt(compliance.Attempt{Target: t.URI, Transport: t.Transport.String(), Outcome: compliance.AttemptSkippedDown})
	}
	return up
}

// setHop makes h where leg B's next INVITE goes.
func (c *Call) setHop(h hop) {
	c.mu.Lock()
	c.target, c.dest = h.target, h.addr
	c.mu.Unlock()
}

// unresolved notes a target whose name did not resolve: the next is
// tried, or, when it was the last, A is answered.
func (c *Call) unresolved(h hop, last bool) {
	c.addAttempt(compliance.Attempt{Target: h.target.URI, Transport: h.target.Transport.String(),
		Outcome: compliance.AttemptUnresolved})
	msg := recordText(h.err.Error(), c.rules.vocab, c.caller, c.callee)
	if !last {
		c.log.Info("target failed: trying the next", "target", h.target.URI, "outcome", compliance.AttemptUnresolved, "error", msg)
		return
	}
	c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, "callee side unreachable: "+msg,
		"the callee side is unreachable")
}

// addAttempt notes one attempt of leg B, for a route with several targets.
func (c *Call) addAttempt(a compliance.Attempt) {
	if !c.multiTarget() {
		return
	}
	c.mu.Lock()
	c.attempts = append(c.attempts, a)
	c.mu.Unlock()
}

// endAttempt notes how the INVITE to the current target ended.
func (c *Call) endAttempt(outcome string, status int) {
	if !c.multiTarget() {
		return
	}
	c.mu.Lock()
	addr := c.b.remote
	if addr == "" && c.b.conn != nil {
		if ra, ok := c.b.conn.(interface{ RemoteAddr() net.Addr }); ok {
			addr = ra.RemoteAddr().String()
		}
	}
	if addr == "" {
		addr = c.targetAddr()
	}
	a := compliance.Attempt{Target: c.target.URI, Address: addr, Transport: c.b.transport.String(),
		Outcome: outcome, Status: status}
	c.attempts = append(c.attempts, a)
	c.mu.Unlock()
}

// failOver reports whether err, leg B's failure on the current target,
// lets the next target be tried (RFC 3263 section 4.3: a 503, a timeout,
// a transport or TLS failure), and notes the attempt. early says the
// caller was already told of progress (18x) from this target: the call
// then stays with it; last that no target is left.
func (c *Call) failOver(err error, early, last bool) bool {
	c.mu.Lock()
	handshook := c.b.sig.TLS != nil
	c.mu.Unlock()
	kind, res := classify(err, c.b.transport == policy.TransportTLS, handshook)
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	var outcome string
	switch kind {
	case failAnswered, failCredentials, failRedirected:
		outcome = compliance.AttemptRejected
		if status == 503 {
			outcome = compliance.AttemptUnavailable
		}
	case failTLS:
		outcome = compliance.AttemptTLSFailed
	case failTimeout:
		outcome = compliance.AttemptTimeout
	default:
		outcome = compliance.AttemptUnreachable
	}
	c.endAttempt(outcome, status)
	if !c.multiTarget() || early || last || outcome == compliance.AttemptRejected {
		return false
	}
	if kind == failTLS {
		c.tlsToBEvent(err, recordText(err.Error(), c.rules.vocab, c.caller, c.callee))
	}
	c.log.Info("target failed: trying the next", "target", c.target.URI, "outcome", outcome, "status", status)
	return true
}

// targetAddr is the current target's host and port (the transport's
// default port when it names none).
func (c *Call) targetAddr() string {
	if c.dest.IsValid() {
		return c.dest.String()
	}
	return targetAddr(c.target.Host, c.target.Port, c.target.Transport)
}

// attempt is how one INVITE to B ended: answered (ok), refused with a
// plan to try next, or failed so that the next target may be tried.
type attempt struct {
	next     *policy.OfferPlan
	ok       bool
	failover bool
}

// failB settles leg B's failure on the current target: the next target is
// tried (failover) unless this is the last or the failure ends the search;
// then A is answered.
func (c *Call) failB(err error, early, last bool) attempt {
	if c.failOver(err, early, last) {
		return attempt{failover: true}
	}
	c.bFailed(err)
	return attempt{}
}

// gaveUp settles an attempt parapet gave up on: a target that sent no
// response within attempt_timeout, or whose connection closed, makes way
// for the next; otherwise A is answered.
func (c *Call) gaveUp(why giveUp, r ringing, plan *policy.OfferPlan, last bool) attempt {
	if r.err == nil {
		// B's 2xx crossed the CANCEL (or came when no CANCEL could be
		// sent yet): the dialog it made is ended with ACK then BYE
		// (RFC 3261 sections 9.1 and 15).
		c.dropB(plan == nil)
	}
	switch why {
	case giveUpNoResponse:
		c.endAttempt(compliance.AttemptTimeout, 0)
	case giveUpConnLost:
		c.endAttempt(compliance.AttemptUnreachable, 0)
	default:
		c.endAttempt(compliance.AttemptAbandoned, 0)
	}
	if (why == giveUpNoResponse || why == giveUpConnLost) && !last && !r.early && r.lastCode == 0 {
		c.log.Info("target failed: trying the next", "target", c.target.URI, "why", int(why))
		return attempt{failover: true}
	}
	c.gaveUpOnB(why, r)
	return attempt{}
}

// setDestination sends req to dest, where t's name resolved to (nothing
// to do when dest is zero). Over TLS the destination stays the name, at
// dest's port, so that the certificate is verified against the name in
// the URI (RFC 5922 section 4), and the zone's resolver is pinned to
// dest's address (see pinDestination).
func setDestination(req *sip.Request, t topology.Target, dest netip.AddrPort) {
	switch {
	case !dest.IsValid():
	case t.Transport == policy.TransportTLS:
		req.SetDestination(hostPort(t.Host, dest.Port()))
	default:
		req.SetDestination(dest.String())
	}
}

// pinDestination pins the zone's resolver to dest for a TLS target's name.
func (c *Call) pinDestination(ctx context.Context) context.Context {
	if !c.dest.IsValid() || c.target.Transport != policy.TransportTLS {
		return ctx
	}
	return c.b.zone.pins.pin(ctx, c.target.Host, c.dest.Addr())
}
