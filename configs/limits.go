package configs

import (
	"cmp"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/parapet-sbc/parapet/topology"
)

// defaultUserAgent is what parapet calls itself in Server and User-Agent
// headers when a zone does not say: no version, which would tell a
// stranger which vulnerabilities to try.
const defaultUserAgent = "parapet"

// limitsBlock is the HCL form of the limits block.
type limitsBlock struct {
	MaxCalls             *int     `hcl:"max_calls,optional"`
	RetryAfter           *string  `hcl:"retry_after,optional"`
	OutsiderRate         *float64 `hcl:"outsider_rate,optional"`
	SourceRate           *float64 `hcl:"source_rate,optional"`
	PrefixRate           *float64 `hcl:"prefix_rate,optional"`
	Connections          *int     `hcl:"connections,optional"`
	OutsiderConnections  *int     `hcl:"outsider_connections,optional"`
	ConnectionsPerSource *int     `hcl:"connections_per_source,optional"`
	ConnectionsPerPrefix *int     `hcl:"connections_per_prefix,optional"`
}

// zoneEdge reads what a zone does at its edge: how it refuses outsiders
// and scanners, its call limit and what it calls itself.
func (l *loader) zoneEdge(z *topology.Zone, zb *zoneBlock, s *scope) {
	if r, ok := l.refusal(s, "outsiders", zb.Outsiders); ok {
		z.Outsiders = r
	}
	if r, ok := l.refusal(s, "scanners", zb.Scanners); ok {
		z.Scanners = r
	}
	if n, ok := l.count(s, "max_calls", zb.MaxCalls, 0, "0 leaves only the global limit"); ok {
		z.MaxCalls = n
	}
	if zb.Trusted != nil && s.ok("trusted") {
		z.Trusted = *zb.Trusted
	}
	if zb.Transfer != nil && s.ok("transfer") {
		switch *zb.Transfer {
		case "allow":
			z.Transfer = true
		case "refuse":
		default:
			l.errorf(s.value("transfer"), "invalid transfer",
				`transfer = %q: "allow" (the zone's peers may transfer their calls with REFER) or "refuse" (the default).`, *zb.Transfer)
		}
	}
	if zb.UserAgent != nil && s.ok("user_agent") {
		ua := *zb.UserAgent
		if strings.ContainsFunc(ua, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(ua) > 128 {
			l.errorf(s.value("user_agent"), "invalid user_agent",
				`user_agent = %q must be one line of at most 128 characters; "" writes no Server or User-Agent header.`, ua)
			return
		}
		z.UserAgent = strings.TrimSpace(ua)
	}
	l.sessionTimer(z, zb, s)
}

// sessionTimer reads a zone's session timer (RFC 4028): min_se, at least
// 1 s and warned of below the 90 s RFC 4028 section 4 sets (a lab's
// short timers), and session_expires, at least min_se. Absent, they stay
// 0: the defaults (topology.DefaultSessionExpires and DefaultMinSE).
func (l *loader) sessionTimer(z *topology.Zone, zb *zoneBlock, s *scope) {
	if d, ok := l.duration(s, "min_se", zb.MinSE, `"90s" or "5m"`, time.Second,
		"a session interval is at least 1s."); ok {
		z.MinSE = d
		if d < topology.DefaultMinSE {
			l.warnf(s.value("min_se"), "min_se below 90s",
				"min_se = %q is below the 90s RFC 4028 section 4 sets: peers may refuse it, and calls refresh often. Meant for tests.", *zb.MinSE)
		}
	}
	floor := cmp.Or(z.MinSE, topology.DefaultMinSE)
	if d, ok := l.duration(s, "session_expires", zb.SessionExpires, `"30m" or "1h"`, floor,
		"the session interval parapet asks for must be at least min_se ("+floor.String()+")."); ok {
		z.SessionExpires = d
	}
}

// refusal reads a "refuse" or "drop" attribute.
func (l *loader) refusal(s *scope, name string, v *string) (topology.Refusal, bool) {
	if v == nil || !s.ok(name) {
		return "", false
	}
	switch r := topology.Refusal(*v); r {
	case topology.RefusalRefuse, topology.RefusalDrop:
		return r, true
	}
	l.errorf(s.value(name), "invalid "+name, `%s = %q: want "refuse" (one 403, kept no state) or "drop" (no answer).`, name, *v)
	return "", false
}

// count reads a whole-number attribute of at least min.
func (l *loader) count(s *scope, name string, v *int, min int, hint string) (int, bool) {
	if v == nil || !s.ok(name) {
		return 0, false
	}
	if *v < min {
		l.errorf(s.value(name), "invalid "+name, "%s = %d must be at least %d (%s).", name, *v, min, hint)
		return 0, false
	}
	return *v, true
}

// rate reads a requests-per-second attribute: positive and finite.
func (l *loader) rate(s *scope, name string, v *float64) (float64, bool) {
	if v == nil || !s.ok(name) {
		return 0, false
	}
	if !(*v > 0) || math.IsInf(*v, 0) || *v > 1e6 {
		l.errorf(s.value(name), "invalid "+name, "%s = %v must be a number of requests per second above 0 (and at most 1000000).", name, *v)
		return 0, false
	}
	return *v, true
}

// limits reads the limits block over the defaults.
func (l *loader) limits(b *hcl.Block) topology.Limits {
	var lb limitsBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &lb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	lim := topology.DefaultLimits
	if n, ok := l.count(s, "max_calls", lb.MaxCalls, 0, "0 is no limit"); ok {
		lim.MaxCalls = n
	}
	if d, ok := l.duration(s, "retry_after", lb.RetryAfter, `"10s" or "1m"`, time.Second,
		"Retry-After counts whole seconds, at least 1."); ok {
		if d > time.Hour || d%time.Second != 0 {
			l.errorf(s.value("retry_after"), "invalid retry_after", "retry_after = %q must be whole seconds, at most 1h.", *lb.RetryAfter)
		} else {
			lim.RetryAfter = d
		}
	}
	for _, r := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"outsider_rate", lb.OutsiderRate, &lim.OutsiderRate}, {"source_rate", lb.SourceRate, &lim.SourceRate},
		{"prefix_rate", lb.PrefixRate, &lim.PrefixRate}} {
		if v, ok := l.rate(s, r.name, r.v); ok {
			*r.dst = v
		}
	}
	for _, c := range []struct {
		name string
		v    *int
		dst  *int
	}{{"connections", lb.Connections, &lim.Connections}, {"outsider_connections", lb.OutsiderConnections, &lim.OutsiderConnections},
		{"connections_per_source", lb.ConnectionsPerSource, &lim.ConnectionsPerSource},
		{"connections_per_prefix", lb.ConnectionsPerPrefix, &lim.ConnectionsPerPrefix}} {
		if n, ok := l.count(s, c.name, c.v, 1, "connections"); ok {
			*c.dst = n
		}
	}
	l.limitsChecks(s, &lim)
	return lim
}

// limitsChecks holds the connection budgets to one another: outsiders may
// never take the whole listener.
func (l *loader) limitsChecks(s *scope, lim *topology.Limits) {
	if lim.OutsiderConnections >= lim.Connections {
		l.errorf(at(s.value("outsider_connections"), s.value("connections")), "outsiders could fill a listener",
			"outsider_connections = %d must be below connections = %d, so that peers always have room.",
			lim.OutsiderConnections, lim.Connections)
	}
	if lim.ConnectionsPerSource > lim.ConnectionsPerPrefix {
		l.warnf(s.value("connections_per_source"), "per-source above per-prefix",
			"connections_per_source = %d is above connections_per_prefix = %d, so the prefix limit applies first.",
			lim.ConnectionsPerSource, lim.ConnectionsPerPrefix)
	}
}
