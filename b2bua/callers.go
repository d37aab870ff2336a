package b2bua

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// Calls from registered users (docs/config.md, zone › registrar ›
// callers). In a zone whose users register through parapet, a call is
// taken, by default, only over a flow with a live binding (the same TCP or
// TLS connection the user registered on, or over UDP the same address at
// the same listener) and only from an address of record registered on it,
// as a registrar's registered() check and an SBC's access realm do: a
// phone the zone admits cannot call as another user, nor call without
// registering. policy judges it (policy.RuleNotRegistered); the flow the
// call came over is named in leg a's record.

// connection is the TCP or TLS connection fl's user is on now, nil over
// UDP or when it is closed.
func (fl *flow) connection() sip.Connection {
	if fl.transport == policy.TransportUDP {
		return nil
	}
	return fl.zone.pooled(strings.ToLower(fl.transport.String()), fl.remote)
}

// registeredOn returns copies of the flows with a live binding in zone z
// that a request over transport t from remote came over: over UDP those
// of that address; over TCP and TLS those registered on conn, the very
// connection the request came over. A request over a flow shows it alive.
func (b *bindings) registeredOn(z *zone, t policy.Transport, remote string, conn sip.Connection) []*flow {
	if t != policy.TransportUDP && conn == nil {
		return nil
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*flow
	for _, fl := range b.byToken {
		if fl.zone != z || !fl.granted || now.After(fl.expires) || fl.transport != t || fl.remote != remote ||
			(t != policy.TransportUDP && fl.conn != conn) {
			continue
		}
		b.heardLocked(fl)
		cp := *fl
		cp.contact = *fl.contact.Clone()
		out = append(out, &cp)
	}
	return out
}

// callerFacts are the facts policy judges a call from zone z by when z's
// users register through parapet and it takes calls only from them
// (nil otherwise, and for a carrier's call admitted by a trunk's line
// token), and the flow whose address of record the call's From names
// (nil when none).
func (c *Call) callerFacts(req *sip.Request) (*policy.CallerFacts, *flow) {
	z := c.a.zone
	reg := z.cfg.Registrar
	if reg == nil || reg.Callers != topology.CallersRegistered || c.a.trunk != "" {
		// A call to a trunk's registered Contact is vouched for by its
		// line token (trunks.go), not by a user's registration.
		return nil, nil
	}
	f := &policy.CallerFacts{}
	if from := req.From(); from != nil {
		f.From = from.Address.User + "@" + from.Address.Host
	}
	t := c.a.transport
	var conn sip.Connection
	if t != policy.TransportUDP {
		conn = z.pooled(strings.ToLower(t.String()), req.Source())
	}
	var match *flow
	for _, fl := range c.env.binds.registeredOn(z, t, req.Source(), conn) {
		f.Registered = append(f.Registered, fl.aor)
		if match == nil && policy.SameAOR(f.From, fl.aor) {
			match = fl
		}
	}
	return f, match
}

// emergencyCaller is d, the admission decision of the call, but for an
// emergency call refused because its caller is not registered on the
// connection it came over: that refusal is recorded as would_reject, and
// the call goes on (emergency.go).
func (c *Call) emergencyCaller(d policy.Decision) policy.Decision {
	if !c.emergency || d.Rule != policy.RuleNotRegistered || d.Verdict != policy.VerdictRejected {
		return d
	}
	d.Verdict = policy.VerdictWouldReject
	c.overrides = append(c.overrides, "the caller is not registered through parapet on the connection it came over")
	return d
}
