package b2bua

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// rules is the part of the configuration Reload may change, as one
// immutable snapshot: each zone's policy and offer profile, the routes, the
// media timeout, and the hash that names them. A call takes the snapshot in
// force when its INVITE arrives and is judged by it to its end, re-INVITEs
// included; its record names that snapshot's hash.
type rules struct {
	hash         string
	routes       []routeRules
	zones        map[string]*zoneRules
	mediaTimeout time.Duration
	holdTimeout  time.Duration
	// limits are the site's budgets (connections and requests alike).
	limits topology.Limits
	// emergency lists the emergency numbers.
	emergency topology.Emergency
	// vocab is parapet's own words that free text in records keeps as
	// they are: the zone and route names.
	vocab []string
}

// zoneRules is a zone's part of the rules.
type zoneRules struct {
	pol       policy.Zone
	feedback  topology.Feedback
	outsiders topology.Refusal
	scanners  topology.Refusal
	maxCalls  int
	// trusted: the zone is inside parapet's trust domain (RFC 3325).
	trusted bool
	// transfer: the zone's peers may transfer their calls (REFER).
	transfer bool
	// sessionExpires and minSE are the zone's session timer (RFC 4028),
	// defaults filled in.
	sessionExpires, minSE time.Duration
}

// drops reports whether the zone answers nothing to a request from outside
// its peers (scanner: one that carries a scanner's signature).
func (z *zoneRules) drops(scanner bool) bool {
	if scanner && z.scanners == topology.RefusalDrop {
		return true
	}
	return z.outsiders == topology.RefusalDrop
}

// routeRules is a route as the rules hold it: as configured, with the
// digest credentials it answers challenges with (the password read from
// the environment when the rules were made).
type routeRules struct {
	topology.Route
	Username, Password string
	// dns resolves the names of a route with several targets (RFC 3263);
	// dnsErr says why it could not be made.
	dns    *resolver
	dnsErr string
}

// newRules makes the snapshot of cfg's rules, reading the routes'
// passwords from the environment (cfg.Getenv).
func newRules(cfg *Config) *rules {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	r := &rules{hash: cfg.PolicyHash, limits: cfg.Limits, zones: map[string]*zoneRules{}, mediaTimeout: cfg.Media.Timeout,
		emergency: topology.Emergency{Numbers: slices.Clone(cfg.Emergency.Numbers), Services: maps.Clone(cfg.Emergency.Services)}}
	if r.limits == (topology.Limits{}) {
		r.limits = topology.DefaultLimits
	}
	if r.mediaTimeout <= 0 {
		r.mediaTimeout = 30 * time.Second
	}
	r.holdTimeout = cfg.Media.HoldTimeout
	if r.holdTimeout <= 0 {
		r.holdTimeout = time.Hour
	}
	for _, z := range cfg.Zones {
		r.zones[z.Policy.Name] = &zoneRules{pol: z.Policy, feedback: z.Feedback, maxCalls: z.MaxCalls, trusted: z.Trusted,
			transfer:  z.Transfer,
			outsiders: cmp.Or(z.Outsiders, topology.RefusalRefuse), scanners: cmp.Or(z.Scanners, topology.RefusalDrop),
			minSE: cmp.Or(z.MinSE, topology.DefaultMinSE)}
		r.zones[z.Policy.Name].sessionExpires = max(cmp.Or(z.SessionExpires, topology.DefaultSessionExpires), r.zones[z.Policy.Name].minSE)
		r.vocab = append(r.vocab, z.Policy.Name)
	}
	for _, rt := range cfg.Routes {
		rr := routeRules{Route: rt}
		if rt.Auth != nil {
			rr.Username = rt.Auth.Username
			if rt.Auth.PasswordFile != "" {
				rr.Password = readPassword(rt.Auth.PasswordFile)
			} else {
				rr.Password = getenv(rt.Auth.PasswordEnv)
			}
		}
		if len(rt.Targets) > 0 {
			var err error
			if rr.dns, err = newResolver(rt.Resolver); err != nil {
				rr.dnsErr = err.Error()
			}
		}
		r.routes = append(r.routes, rr)
		r.vocab = append(r.vocab, rt.Name)
	}
	return r
}

// readPassword reads a route's password file: its first line, without the
// line ending; "" when it cannot be read (a challenge then fails, and a
// registration says so).
func readPassword(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r")
}

// same reports whether new calls and connections would get the same rules
// from o as from r: each zone's policy, offer profile and refusal of
// outsiders, the routes (credentials included), the media timeouts and
// the limits. The hash is not compared.
func (r *rules) same(o *rules) bool {
	if r.mediaTimeout != o.mediaTimeout || r.holdTimeout != o.holdTimeout || r.limits != o.limits ||
		!slices.Equal(r.emergency.Numbers, o.emergency.Numbers) ||
		len(r.zones) != len(o.zones) || len(r.routes) != len(o.routes) {
		return false
	}
	for name, z := range r.zones {
		oz := o.zones[name]
		if oz == nil || !reflect.DeepEqual(z.pol, oz.pol) || z.feedback != oz.feedback ||
			z.outsiders != oz.outsiders || z.scanners != oz.scanners || z.maxCalls != oz.maxCalls || z.trusted != oz.trusted || z.transfer != oz.transfer ||
			z.sessionExpires != oz.sessionExpires || z.minSE != oz.minSE {
			return false
		}
	}
	for i := range r.routes {
		if !r.routes[i].same(&o.routes[i]) {
			return false
		}
	}
	return true
}

// same reports whether two routes match, send and authenticate alike; a
// match is compared by its expression.
func (rt *routeRules) same(o *routeRules) bool {
	a, b := *rt, *o
	if (a.Match == nil) != (b.Match == nil) || (a.Match != nil && a.Match.String() != b.Match.String()) {
		return false
	}
	a.Match, b.Match = nil, nil
	return reflect.DeepEqual(a, b)
}

// zone returns zone name's policy.
func (r *rules) zone(name string) *policy.Zone { return &r.zones[name].pol }

// route finds the first route from zone from whose match fits user.
func (r *rules) route(from, user string) *routeRules {
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.From == from && (rt.Match == nil || rt.Match.MatchString(user)) {
			return rt
		}
	}
	return nil
}

// feedback reports whether parapet's offer into zone name uses an RTCP
// feedback profile, given whether the other leg's offer did.
func (r *rules) feedback(name string, offered bool) bool {
	switch r.zones[name].feedback {
	case topology.FeedbackOn:
		return true
	case topology.FeedbackOff:
		return false
	default: // FeedbackMirror: follow the other leg's offer
	}
	return offered
}

// Reload replaces the zones' policies and refusal of outsiders, the
// routes, the media timeouts and the limits with cfg's. Calls already up
// keep the rules they started with, connections already open stay; new
// calls and connections get the new rules. What is bound or allocated at
// Start — zones and their listeners, advertised names, TLS settings, the
// media address and port range — cannot change: a cfg that changes any of
// it is refused with an error naming the setting, and nothing changes. The
// TLS material (Config.TLS) and the sink given to New stay; certificates
// are reloaded by whoever built the TLS configurations.
func (s *Server) Reload(cfg Config) error {
	if err := s.reloadable(&cfg); err != nil {
		return err
	}
	next := newRules(&cfg)
	if next.limits != s.rules.Load().limits {
		s.budget.Store(newOutsiderBudget(next.limits))
	}
	s.rules.Store(next)
	s.startMu.Lock()
	started := s.started && !s.isStopping()
	s.startMu.Unlock()
	if started {
		s.syncTrunks(next)
	}
	return nil
}

// CheckReload reports, without applying cfg, whether Reload would take it
// (err is Reload's) and whether it would change anything: the policy hash
// or any rule new calls get.
func (s *Server) CheckReload(cfg Config) (changed bool, err error) {
	if err := s.reloadable(&cfg); err != nil {
		return false, err
	}
	cur, next := s.rules.Load(), newRules(&cfg)
	return cur.hash != next.hash || !cur.same(next), nil
}

// reloadable returns why Reload cannot take cfg, or nil.
func (s *Server) reloadable(cfg *Config) error {
	if err := restartNeeded(&s.cfg, cfg); err != nil {
		return fmt.Errorf("b2bua: reload: %w", err)
	}
	if err := checkRoutes(cfg); err != nil {
		return fmt.Errorf("b2bua: reload: %w", err)
	}
	return nil
}

// errRestart marks the settings only a restart applies.
var errRestart = errors.New("restart needed")

// restartNeeded names the first setting that differs between old and cfg
// and is bound at Start, or returns nil.
func restartNeeded(old, cfg *Config) error {
	if len(cfg.Zones) != len(old.Zones) {
		return fmt.Errorf("zones added or removed (%d, was %d): %w", len(cfg.Zones), len(old.Zones), errRestart)
	}
	for i := range cfg.Zones {
		if err := zoneRestartNeeded(&old.Zones[i], &cfg.Zones[i]); err != nil {
			return err
		}
	}
	m, om := cfg.Media, old.Media
	var field string
	switch {
	case m.Address != om.Address:
		field = "address"
	case m.Advertise != om.Advertise:
		field = "advertise"
	case m.PortMin != om.PortMin || m.PortMax != om.PortMax:
		field = "ports"
	default:
		return nil
	}
	return fmt.Errorf("media: %s changed: %w", field, errRestart)
}

// zoneRestartNeeded names the first setting of zone z, as it was (o), that
// only a restart can change, or returns nil.
func zoneRestartNeeded(o, z *topology.Zone) error {
	var field string
	switch {
	case z.Policy.Name != o.Policy.Name:
		return fmt.Errorf("zone %q renamed or moved (now %q): %w", o.Policy.Name, z.Policy.Name, errRestart)
	case !slices.Equal(z.Listen, o.Listen):
		field = "listen"
	case z.Advertise != o.Advertise:
		field = "advertise"
	case z.UserAgent != o.UserAgent:
		field = "user_agent"
	case !reflect.DeepEqual(z.TLS, o.TLS):
		field = "tls"
	case !reflect.DeepEqual(z.Registrar, o.Registrar):
		// The zone's bindings and pinger were set up with it.
		field = "registrar"
	default:
		return nil
	}
	return fmt.Errorf("zone %q: %s changed: %w", z.Policy.Name, field, errRestart)
}

// checkRoutes returns an error for a route that names a zone cfg does not
// have.
func checkRoutes(cfg *Config) error {
	for _, r := range cfg.Routes {
		for _, name := range []string{r.From, r.To} {
			if !slices.ContainsFunc(cfg.Zones, func(z topology.Zone) bool { return z.Policy.Name == name }) {
				return fmt.Errorf("route %q names an unknown zone %q", r.Name, name)
			}
		}
	}
	return nil
}

// PolicyHash is the hash of the rules new calls are judged by.
func (s *Server) PolicyHash() string { return s.rules.Load().hash }
