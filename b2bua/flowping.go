package b2bua

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
)

// Users registered over UDP are pinged with OPTIONS every udp_keepalive
// (docs/config.md, zone › registrar): the ping keeps the user's NAT
// binding open, and its answer tells parapet the flow is alive. A UDP
// flow has no connection whose end says it is gone; two pings in a row
// unanswered do, and calls to it then get 430 Flow Failed at once (RFC 5626
// section 5.3) until the user is heard from again (an answered ping, a
// keep-alive, a REGISTER).

// flowMissedMax is how many pings in a row a UDP flow may leave
// unanswered before it is taken as failed: one may be lost.
const flowMissedMax = 2

// flowPingTick is how often the pinger looks for flows due a ping.
const flowPingTick = 250 * time.Millisecond

// startPingers starts the server's OPTIONS pingers: of routes' targets
// (health.go) and, when a zone pings its users registered over UDP, of
// their flows.
func (s *Server) startPingers() {
	s.serveWG.Add(1)
	s.goSafe("target pings", func() {
		defer s.serveWG.Done()
		s.pingTargets()
	})
	if s.pingsFlows() {
		s.serveWG.Add(1)
		s.goSafe("flow pings", func() {
			defer s.serveWG.Done()
			s.pingFlows()
		})
	}
}

// pingsFlows reports whether a zone's users registered over UDP are to be
// pinged (its registrar has a udp_keepalive).
func (s *Server) pingsFlows() bool {
	for _, z := range s.zones {
		if r := z.cfg.Registrar; r != nil && r.UDPKeepAlive > 0 {
			return true
		}
	}
	return false
}

// pingFlows pings each UDP flow due a ping, until the server stops.
func (s *Server) pingFlows() {
	s.every(flowPingTick, "flow pings", func(now time.Time) {
		for _, p := range s.binds.duePings(now) {
			s.serveWG.Add(1)
			s.goSafe("flow ping", func() {
				defer s.serveWG.Done()
				s.binds.pinged(p.fl, p.fl.zone.pingFlow(s.ctx, p.fl, p.contact))
			})
		}
	})
}

// flowPing is a ping booked for fl, to contact: the flow's contact as it
// was then (a REGISTER that refreshes the flow while the ping is under way
// changes the flow's, under the bindings' lock).
type flowPing struct {
	fl      *flow
	contact sip.Uri
}

// duePings books a ping for each granted UDP flow due one (its zone's
// registrar has a udp_keepalive, and that long has passed since its last
// ping), and returns them.
func (b *bindings) duePings(now time.Time) []flowPing {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []flowPing
	for _, fl := range slices.Concat(slices.Collect(maps.Values(b.byUDP))...) {
		every := fl.zone.cfg.Registrar.UDPKeepAlive
		if every <= 0 || fl.pinging || now.After(fl.expires) {
			continue
		}
		if fl.lastPing.IsZero() {
			fl.lastPing = now // the REGISTER was heard just now
			continue
		}
		if now.Sub(fl.lastPing) < every {
			continue
		}
		fl.pinging, fl.lastPing = true, now
		out = append(out, flowPing{fl: fl, contact: *fl.contact.Clone()})
	}
	return out
}

// pinged notes the answer (or not) to a ping of fl, and logs a change:
// the flow failed, or is back.
func (b *bindings) pinged(fl *flow, answered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fl.pinging = false
	if answered {
		b.heardLocked(fl)
		return
	}
	fl.missed++
	if fl.missed >= flowMissedMax && !fl.failed {
		fl.failed = true
		b.log.Warn("registered user unreachable: calls to it get 430 until it is heard from", "zone", fl.zone.name,
			"flow", fl.token, "remote", fl.remote, "pings_unanswered", fl.missed)
	}
}

// heardLocked notes that fl's user was heard from (an answered ping, a
// keep-alive, a REGISTER): its flow is alive. Caller holds b.mu.
func (b *bindings) heardLocked(fl *flow) {
	if fl.failed {
		b.log.Info("registered user reachable again", "zone", fl.zone.name, "flow", fl.token, "remote", fl.remote)
	}
	fl.missed, fl.failed = 0, false
}

// pingFlow sends one OPTIONS to the user of fl, a UDP flow, over the flow:
// to contact (the one it registered), at the address it registered from,
// from the socket it registered to. Any response means the flow is alive.
// It reads only fields of fl that no refresh changes.
func (z *zone) pingFlow(ctx context.Context, fl *flow, contact sip.Uri) bool {
	req := sip.NewRequest(sip.OPTIONS, *contact.Clone())
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "parapet", Host: z.host(policy.TransportUDP)}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	to := sip.ToHeader{Address: *contact.Clone()}
	if user, host, ok := strings.Cut(fl.aor, "@"); ok {
		to.Address = sip.Uri{Scheme: "sip", User: user, Host: host}
	}
	req.AppendHeader(&to)
	if z.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", z.userAgent))
	}
	req.SetTransport("UDP")
	req.SetDestination(fl.remote)
	if ap, err := netip.ParseAddrPort(fl.local); err == nil {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	every := z.cfg.Registrar.UDPKeepAlive
	ctx, cancel := context.WithTimeout(ctx, min(every, pingTimeout))
	defer cancel()
	_, err := z.cli.Do(ctx, req)
	return err == nil
}
