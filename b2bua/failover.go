package b2bua

import (
	"net"
	"strconv"
	"time"

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

// setTarget makes t the target of leg B's next INVITE.
func (c *Call) setTarget(t topology.Target) {
	c.mu.Lock()
	c.target = t
	c.mu.Unlock()
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
	t := c.target
	port := t.Port
	if port == 0 {
		port = 5060
		if t.Transport == policy.TransportTLS {
			port = 5061
		}
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(port))
}
