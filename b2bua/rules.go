package b2bua

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// rules is the part of the configuration Reload may change, as one
// immutable snapshot: each zone's policy and offer profile, the routes, the
// media timeout, and the hash that names them. A call takes the snapshot in
// force when its INVITE arrives and is judged by it to its end, re-INVITEs
// included; its record names that snapshot's hash.
type rules struct {
	hash         string
	routes       []Route
	zones        map[string]*zoneRules
	mediaTimeout time.Duration
	holdTimeout  time.Duration
	// vocab is parapet's own words that free text in records keeps as
	// they are: the zone and route names.
	vocab []string
}

type zoneRules struct {
	pol      policy.Zone
	feedback Feedback
}

func newRules(cfg *Config) *rules {
	r := &rules{hash: cfg.PolicyHash, routes: slices.Clone(cfg.Routes), zones: map[string]*zoneRules{},
		mediaTimeout: cfg.Media.Timeout}
	if r.mediaTimeout <= 0 {
		r.mediaTimeout = 30 * time.Second
	}
	r.holdTimeout = cfg.Media.HoldTimeout
	if r.holdTimeout <= 0 {
		r.holdTimeout = time.Hour
	}
	for _, z := range cfg.Zones {
		r.zones[z.Policy.Name] = &zoneRules{pol: z.Policy, feedback: z.Feedback}
		r.vocab = append(r.vocab, z.Policy.Name)
	}
	for _, rt := range cfg.Routes {
		r.vocab = append(r.vocab, rt.Name)
	}
	return r
}

// zone returns zone name's policy.
func (r *rules) zone(name string) *policy.Zone { return &r.zones[name].pol }

// route finds the first route from zone from whose match fits user.
func (r *rules) route(from, user string) *Route {
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
	case FeedbackOn:
		return true
	case FeedbackOff:
		return false
	default: // FeedbackMirror: follow the other leg's offer
	}
	return offered
}

// Reload replaces the zones' policies, the routes and the media timeouts
// with cfg's. Calls already up keep the rules they started with; new calls
// and connections get the new ones. What is bound or allocated at Start —
// zones and their listeners, advertised names, TLS configurations, the
// media address and port range, the sink — cannot change: a cfg that
// changes any of it is refused, and nothing changes.
func (s *Server) Reload(cfg Config) error {
	if err := s.CheckReload(cfg); err != nil {
		return err
	}
	s.rules.Store(newRules(&cfg))
	return nil
}

// CheckReload reports whether Reload would take cfg, without applying it:
// its error is Reload's.
func (s *Server) CheckReload(cfg Config) error {
	old := s.cfg
	if len(cfg.Zones) != len(old.Zones) {
		return errors.New("b2bua: reload: zones added or removed; restart parapet to apply")
	}
	for i, z := range cfg.Zones {
		o := old.Zones[i]
		switch {
		case z.Policy.Name != o.Policy.Name:
			return fmt.Errorf("b2bua: reload: zone %q renamed or moved; restart parapet to apply", o.Policy.Name)
		case !slices.Equal(z.Listen, o.Listen):
			return fmt.Errorf("b2bua: reload: zone %q listeners changed; restart parapet to apply", z.Policy.Name)
		case z.Advertise != o.Advertise:
			return fmt.Errorf("b2bua: reload: zone %q advertise changed; restart parapet to apply", z.Policy.Name)
		}
	}
	m, om := cfg.Media, old.Media
	if m.Address != om.Address || m.Advertise != om.Advertise || m.PortMin != om.PortMin || m.PortMax != om.PortMax {
		return errors.New("b2bua: reload: media address or ports changed; restart parapet to apply")
	}
	for _, r := range cfg.Routes {
		if s.byName[r.From] == nil || s.byName[r.To] == nil {
			return fmt.Errorf("b2bua: reload: route %q names an unknown zone", r.Name)
		}
	}
	return nil
}

// PolicyHash is the hash of the rules new calls are judged by.
func (s *Server) PolicyHash() string { return s.rules.Load().hash }
