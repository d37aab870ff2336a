package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// pingTimeout bounds one OPTIONS ping: a target that sends no response
// within it is down.
const pingTimeout = 4 * time.Second

// healthTick is how often the pinger looks for targets due a ping.
const healthTick = 100 * time.Millisecond

// health is what OPTIONS pings found of the routes' targets (those of
// routes with several targets and an options_interval): up or down, by
// route and target URI. A target never pinged is up.
type health struct {
	log *slog.Logger

	mu    sync.Mutex
	state map[healthKey]*targetHealth
}

type healthKey struct{ route, target string }

// targetHealth is one target's pings.
type targetHealth struct {
	down     bool
	known    bool      // a ping has settled up or down
	inFlight bool      // a ping is under way
	last     time.Time // when the last ping was sent
}

// TargetHealth is one route target's state as OPTIONS pings found it.
type TargetHealth struct {
	Route, Target string
	Up            bool
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, state: map[healthKey]*targetHealth{}}
}

// isDown reports whether pings marked route's target down.
func (h *health) isDown(route, target string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state[healthKey{route, target}]
	return st != nil && st.down
}

// due reports whether route's target is due a ping every interval, and if
// so books the ping.
func (h *health) due(route, target string, interval time.Duration, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{route, target}
	st := h.state[k]
	if st == nil {
		st = &targetHealth{}
		h.state[k] = st
	}
	if st.inFlight || (!st.last.IsZero() && now.Sub(st.last) < interval) {
		return false
	}
	st.inFlight, st.last = true, now
	return true
}

// settle notes a ping's result, logging a change of state (once per
// change: the server's log folds repeated lines as well).
func (h *health) settle(route, target string, up bool, why string) {
	h.mu.Lock()
	st := h.state[healthKey{route, target}]
	changed := st.known && st.down == up || !st.known && !up
	st.inFlight, st.known, st.down = false, true, !up
	h.mu.Unlock()
	switch {
	case !changed:
	case up:
		h.log.Info("target up", "route", route, "target", target)
	default:
		h.log.Warn("target down", "route", route, "target", target, "why", why)
	}
}

// snapshot is the state of every target pinged, in a stable order.
func (h *health) snapshot() []TargetHealth {
	h.mu.Lock()
	out := make([]TargetHealth, 0, len(h.state))
	for k, st := range h.state {
		if st.known {
			out = append(out, TargetHealth{Route: k.route, Target: k.target, Up: !st.down})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b TargetHealth) int {
		return strings.Compare(a.Route+"\x00"+a.Target, b.Route+"\x00"+b.Target)
	})
	return out
}

// pingTargets sends OPTIONS to every target of the routes in force that
// are due one, until the server stops. Routes a reload removed are no
// longer pinged.
func (s *Server) pingTargets() {
	s.every(healthTick, "target pings", s.pingDue)
}

// keep forgets the targets not in live (a reload removed them), so that
// no stale state is reported.
func (h *health) keep(live map[healthKey]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, st := range h.state {
		if !live[k] && !st.inFlight {
			delete(h.state, k)
		}
	}
}

// pingDue starts a ping to each target due one.
func (s *Server) pingDue(now time.Time) {
	routes := s.rules.Load().routes
	live := map[healthKey]bool{}
	defer s.env.health.keep(live)
	for i := range routes {
		rr := &routes[i]
		r := &rr.Route
		if len(r.Targets) == 0 || r.HealthInterval <= 0 {
			continue
		}
		z := s.byName[r.To]
		for _, t := range r.Targets {
			live[healthKey{r.Name, t.URI}] = true
			if !s.env.health.due(r.Name, t.URI, r.HealthInterval, now) {
				continue
			}
			s.serveWG.Add(1)
			s.goSafe("target ping", func() {
				defer s.serveWG.Done()
				up, why := z.pingTarget(s.ctx, rr, t)
				s.env.health.settle(r.Name, t.URI, up, why)
			})
		}
	}
}

// pingTarget pings t, a target of route rr, at the first address its name
// resolves to.
func (z *zone) pingTarget(ctx context.Context, rr *routeRules, t topology.Target) (up bool, why string) {
	var dest netip.AddrPort
	if _, err := netip.ParseAddr(t.Host); err != nil {
		if rr.dns == nil {
			return false, rr.dnsErr
		}
		rctx, cancel := context.WithTimeout(ctx, 2*dnsTimeout)
		addrs, err := rr.dns.resolve(rctx, t)
		cancel()
		if err != nil {
			return false, "resolving " + t.Host + ": " + err.Error()
		}
		dest = addrs[0]
		if t.Transport == policy.TransportTLS {
			ctx = z.pins.pin(ctx, t.Host, dest.Addr())
		}
	}
	return z.ping(ctx, t, dest)
}

// ping sends one OPTIONS to t (at dest, unless zero) from zone z: any
// response means t is up.
func (z *zone) ping(ctx context.Context, t topology.Target, dest netip.AddrPort) (up bool, why string) {
	req, scheme := targetRequest(sip.OPTIONS, t, "")
	ruri := req.Recipient
	from := sip.FromHeader{Address: sip.Uri{Scheme: scheme, User: "parapet", Host: z.host(t.Transport)}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: ruri})
	if z.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", z.userAgent))
	}
	if ap, ok := z.bound[policy.TransportUDP]; ok && t.Transport == policy.TransportUDP {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	setDestination(req, t, dest)
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := z.cli.Do(ctx, req); err != nil {
		return false, sendError(err)
	}
	return true, ""
}
