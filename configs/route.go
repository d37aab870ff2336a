package configs

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// routeBlock is the HCL form of a route block.
type routeBlock struct {
	From            string         `hcl:"from"`
	To              string         `hcl:"to"`
	Match           *string        `hcl:"match,optional"`
	Target          *string        `hcl:"target,optional"`
	Targets         *[]string      `hcl:"targets,optional"`
	AttemptTimeout  *string        `hcl:"attempt_timeout,optional"`
	OptionsInterval *string        `hcl:"options_interval,optional"`
	Resolver        *string        `hcl:"resolver,optional"`
	MaxCalls        *int           `hcl:"max_calls,optional"`
	AuthPassthrough *bool          `hcl:"auth_passthrough,optional"`
	Auth            *authBlock     `hcl:"auth,block"`
	Register        *registerBlock `hcl:"register,block"`
}

// authBlock is the HCL form of a route's auth block.
type authBlock struct {
	Username     string    `hcl:"username"`
	PasswordEnv  *string   `hcl:"password_env,optional"`
	PasswordFile *string   `hcl:"password_file,optional"`
	Body         hcl.Body  `hcl:",body"`
	DefRange     hcl.Range `hcl:",def_range"`
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// route converts a route block; it returns nil only when the block is
// unusable as a route at all.
func (l *loader) route(b *hcl.Block) *topology.Route {
	name := b.Labels[0]
	var rb routeBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &rb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	rt := &topology.Route{Name: name}

	if !zoneNameRE.MatchString(name) {
		l.errorf(b.LabelRanges[0], "invalid route name",
			"Route name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-'.", name)
	}

	var to *zoneDecl
	for _, attr := range []string{"from", "to"} {
		if !s.ok(attr) {
			continue
		}
		zn := rb.From
		if attr == "to" {
			zn = rb.To
		}
		zd, ok := l.zoneByName[zn]
		if !ok {
			l.errorf(s.value(attr), fmt.Sprintf("unknown zone %q", zn),
				"Route %q names zone %q in %s, but no zone of that name is declared.%s", name, zn, attr, suggest(zn, l.zoneNames()))
			continue
		}
		if attr == "from" {
			rt.From = zn
		} else {
			rt.To, to = zn, zd
		}
	}

	if rb.MaxCalls != nil && s.ok("max_calls") {
		if *rb.MaxCalls < 1 {
			l.errorf(s.value("max_calls"), "invalid max_calls",
				"max_calls = %d: the number of calls the route may carry at once must be at least 1; omit it for no limit.", *rb.MaxCalls)
		} else {
			rt.MaxCalls = *rb.MaxCalls
		}
	}

	if rb.Match != nil && s.ok("match") {
		re, err := regexp.Compile(*rb.Match)
		if err != nil {
			l.errorf(s.value("match"), "invalid match", "match is an RE2 regular expression on the Request-URI user part: %s.", err)
		} else {
			rt.Match = re
		}
	}

	targetOK, at := l.targets(rt, s, &rb, b.DefRange)
	l.failover(rt, s, &rb)

	if rb.Auth != nil {
		rt.Auth = l.auth(name, rb.Auth, diags)
	}
	l.authPassthrough(rt, s, &rb)
	if rb.Register != nil {
		rt.Register = l.register(rt, rb.Register, diags, targetOK)
	}

	if to != nil && to.ok && targetOK {
		l.routeChecks(rt, to, at)
	}
	if g := rt.Register; g != nil && to != nil && to.ok && g.Registrar.Host != "" {
		l.registerChecks(name, g, to, rb.Register.DefRange)
	}
	return rt
}

// registerChecks compares a route's registration with the zone it
// registers in: a TLS-only zone needs a TLS registrar, and the zone needs
// a listener of the registrar's transport, where the Contact parapet
// registers points (the carrier's calls for the trunk come to it).
func (l *loader) registerChecks(route string, g *topology.Register, to *zoneDecl, at hcl.Range) {
	z, t := to.zone.Policy.Name, g.Registrar.Transport
	if to.zone.Policy.Signaling == policy.RequirementRequire && t != policy.TransportTLS {
		l.errorf(at, fmt.Sprintf("route %q registers in TLS-only zone %q over %s", route, z, t),
			"Every listener of zone %q is TLS, so its signaling requires TLS, but the registrar %q uses %s. Use a sips: registrar or add ;transport=tls.", z, g.Registrar.URI, t)
		return
	}
	for _, ln := range to.zone.Listen {
		if ln.Transport == t {
			return
		}
	}
	l.errorf(at, fmt.Sprintf("route %q registers over %s, but zone %q has no %s listener", route, t, z, t),
		"The Contact parapet registers for route %q is its %s listener in zone %q, where the carrier sends the trunk's calls, and the zone has none: add a %s:// listener to the zone, or register over a transport it listens on (the registrar's ;transport=).", route, t, z, t)
}

// targets reads a route's target, or its targets in priority order
// (exactly one of the two). It reports whether they are usable and the
// range that cross-checks point at.
func (l *loader) targets(rt *topology.Route, s *scope, rb *routeBlock, def hcl.Range) (bool, hcl.Range) {
	switch {
	case s.has("target") && s.has("targets"):
		l.errorf(s.value("targets"), "both target and targets",
			"Route %q sets target and targets: write one target, or the list of targets in priority order, not both.", rt.Name)
		return false, def
	case s.has("target"):
		if !s.ok("target") || rb.Target == nil {
			return false, def
		}
		t, err := parseTarget(*rb.Target)
		if err != nil {
			l.errorf(s.value("target"), "invalid target", "Target %q: %s.", *rb.Target, err)
			return false, def
		}
		rt.Target = t
		return true, s.value("target")
	case s.has("targets"):
		if !s.ok("targets") || rb.Targets == nil {
			return false, def
		}
		return l.targetList(rt, s, *rb.Targets), s.value("targets")
	}
	l.errorf(def, "missing target", "Route %q needs target (one URI) or targets (a list in priority order).", rt.Name)
	return false, def
}

// targetList parses a route's list of targets, which share one scheme
// and transport: the offer parapet makes depends on the transport, and a
// failover must not change what the zone's policy was judged against.
func (l *loader) targetList(rt *topology.Route, s *scope, uris []string) bool {
	if len(uris) == 0 {
		l.errorf(s.value("targets"), "empty targets", "Route %q lists no targets.", rt.Name)
		return false
	}
	ok := true
	seen := map[string]bool{}
	for i, u := range uris {
		t, err := parseTarget(u)
		switch {
		case err != nil:
			l.errorf(s.elem("targets", i), "invalid target", "Target %q: %s.", u, err)
			ok = false
			continue
		case seen[u]:
			l.errorf(s.elem("targets", i), "duplicate target", "Route %q lists %q twice.", rt.Name, u)
			ok = false
			continue
		case len(rt.Targets) > 0 && (t.Secure != rt.Targets[0].Secure || t.Transport != rt.Targets[0].Transport):
			l.errorf(s.elem("targets", i), "targets differ in transport",
				"Route %q: target %q uses %s, but %q uses %s: all targets of a route share one scheme and transport (make another route for the other).",
				rt.Name, u, schemeTransport(t), rt.Targets[0].URI, schemeTransport(rt.Targets[0]))
			ok = false
			continue
		}
		seen[u] = true
		rt.Targets = append(rt.Targets, t)
	}
	if !ok {
		rt.Targets = nil
		return false
	}
	rt.Target = rt.Targets[0]
	return true
}

func schemeTransport(t topology.Target) string {
	if t.Secure {
		return "sips: over " + t.Transport.String()
	}
	return "sip: over " + t.Transport.String()
}

// failover reads a route's attempt_timeout, options_interval and
// resolver, which only a route with targets uses.
func (l *loader) failover(rt *topology.Route, s *scope, rb *routeBlock) {
	if s.has("target") {
		for _, name := range []string{"attempt_timeout", "options_interval", "resolver"} {
			if s.has(name) {
				l.warnf(s.value(name), name+" without targets",
					"Route %q has a single target: %s applies only to a route with targets (a list), and is ignored.", rt.Name, name)
			}
		}
	}
	if d, ok := l.duration(s, "attempt_timeout", rb.AttemptTimeout, `"4s" or "1500ms"`, 500*time.Millisecond,
		"wait at least 500ms for a target's first response."); ok {
		if d > 32*time.Second {
			l.errorf(s.value("attempt_timeout"), "attempt_timeout too long",
				"attempt_timeout = %q: at most 32s (Timer B of RFC 3261 ends every attempt then anyway).", *rb.AttemptTimeout)
		} else {
			rt.AttemptTimeout = d
		}
	}
	if rb.Resolver != nil && s.ok("resolver") {
		if ap, err := netip.ParseAddrPort(*rb.Resolver); err != nil {
			l.errorf(s.value("resolver"), "invalid resolver",
				"resolver = %q: the DNS server's IP address and port, such as \"127.0.0.1:53\" or \"[::1]:53\".", *rb.Resolver)
		} else {
			rt.Resolver = ap.String()
		}
	}
	if d, ok := l.duration(s, "options_interval", rb.OptionsInterval, `"30s" or "1m"`, time.Second,
		"send OPTIONS at most once a second."); ok {
		rt.HealthInterval = d
	}
}

func (l *loader) zoneNames() []string {
	names := make([]string, 0, len(l.zoneByName))
	for n := range l.zoneByName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// authPassthrough reads auth_passthrough: on by default for a route
// without auth (a voice engineer expects a PBX's challenge to reach the
// phone that can answer it), and an error set to true with auth (the route
// answers challenges itself: one or the other).
func (l *loader) authPassthrough(rt *topology.Route, s *scope, rb *routeBlock) {
	on := rb.Auth == nil
	if rb.AuthPassthrough != nil && s.ok("auth_passthrough") {
		if *rb.AuthPassthrough && rb.Auth != nil {
			l.errorf(s.value("auth_passthrough"), "auth_passthrough with auth",
				"Route %q answers digest challenges with its auth block, so it relays none to the caller: remove auth_passthrough, or the auth block.", rt.Name)
		}
		on = on && *rb.AuthPassthrough
	}
	rt.AuthPassthrough = on
}

// passwordEnv checks password_env and warns when the variable is unset.
func (l *loader) passwordEnv(route string, s *scope, name string, a *topology.Auth) {
	switch v, set := l.lookupEnv(name); {
	case !envNameRE.MatchString(name):
		l.errorf(s.value("password_env"), "invalid password_env",
			"password_env names the environment variable holding the password (such as CARRIER_PASSWORD); %q is not a valid variable name.", name)
	case !set || v == "":
		l.warnf(s.value("password_env"), fmt.Sprintf("environment variable %s is not set", name),
			"Route %q answers digest challenges with the password in %s; without it, digest challenges from the target will fail.", route, name)
		a.PasswordEnv = name
	default:
		a.PasswordEnv = name
	}
}

func (l *loader) auth(route string, ab *authBlock, diags hcl.Diagnostics) *topology.Auth {
	s := newScope(ab.Body, ab.DefRange, diags)
	a := &topology.Auth{}
	if s.ok("username") {
		if ab.Username == "" {
			l.errorf(s.value("username"), "empty username", "The digest username of route %q must not be empty.", route)
		}
		a.Username = ab.Username
	}
	switch env, file := ab.PasswordEnv != nil && s.ok("password_env"), ab.PasswordFile != nil && s.ok("password_file"); {
	case env && file:
		l.errorf(s.value("password_file"), "password_env and password_file both set",
			"Route %q takes its digest password from one place: keep password_env or password_file.", route)
	case env:
		l.passwordEnv(route, s, *ab.PasswordEnv, a)
	case file:
		a.PasswordFile = l.secretFile(s, "password_file", *ab.PasswordFile)
	case !s.has("password_env") && !s.has("password_file"):
		l.errorf(ab.DefRange, "missing password_env or password_file",
			"The auth block of route %q needs password_env (an environment variable) or password_file (a file readable by its owner only); the password itself is never written in the configuration.", route)
	}
	return a
}

// routeChecks compares a route's target with the zone it leads into: the
// B leg must meet that zone's signaling requirement, and its media
// requirement with a key exchange usable over the target's transport (SDES
// keys are never sent over a clear one).
func (l *loader) routeChecks(rt *topology.Route, to *zoneDecl, at hcl.Range) {
	z := &to.zone.Policy
	t := rt.Target.Transport
	if t == policy.TransportTLS {
		return
	}
	fix := "Use a sips: target or add ;transport=tls."
	if z.Signaling == policy.RequirementRequire {
		l.errorf(at, fmt.Sprintf("route %q reaches TLS-only zone %q over %s", rt.Name, z.Name, t),
			"Every listener of zone %q is TLS, so its signaling requires TLS, but the target %q uses %s. %s", z.Name, rt.Target.URI, t, fix)
		return
	}
	if z.SRTP == policy.RequirementOff || !slices.Contains(z.KeyExchange, policy.KeyExchangeSDES) {
		return
	}
	if _, ok := policy.Plan(z, t); !ok {
		l.errorf(at, fmt.Sprintf("route %q cannot meet zone %q's SRTP requirement over %s", rt.Name, z.Name, t),
			"Zone %q requires SRTP and allows only SDES, whose keys parapet never sends over %s signaling, so every call on route %q would get 488. %s Or add dtls to the zone's key_exchange.", z.Name, t, rt.Name, fix)
		return
	}
	if _, listed := to.kxElem[policy.KeyExchangeSDES]; listed && z.SRTP == policy.RequirementAllow {
		l.warnf(at, fmt.Sprintf("route %q offers plain RTP toward zone %s: SDES is not sent over %s", rt.Name, z.Name, t),
			"Zone %q allows SRTP with SDES, but SDES keys are carried in the SDP, which route %q sends over %s: parapet offers plain RTP on this route instead. %s", z.Name, rt.Name, t, fix)
	}
}

// parseTarget parses sip:HOST[:PORT][;transport=udp|tcp|tls] or
// sips:HOST[:PORT][;transport=tls].
func parseTarget(s string) (topology.Target, error) {
	t := topology.Target{URI: s}
	scheme, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return topology.Target{}, errors.New("want sip:HOST[:PORT][;transport=udp|tcp|tls] or sips:HOST[:PORT]")
	case strings.EqualFold(scheme, "sip"):
		t.Transport = policy.TransportUDP
	case strings.EqualFold(scheme, "sips"):
		t.Secure, t.Transport = true, policy.TransportTLS
	default:
		return topology.Target{}, fmt.Errorf("unknown scheme %q (want sip or sips)", scheme)
	}
	if strings.HasPrefix(rest, "//") {
		return topology.Target{}, fmt.Errorf("write %s:HOST, not %s://HOST", scheme, scheme)
	}
	if strings.ContainsAny(rest, "?") {
		return topology.Target{}, errors.New("URI headers (?...) are not allowed")
	}
	hostport, params, _ := strings.Cut(rest, ";")
	if strings.Contains(hostport, "@") {
		return topology.Target{}, errors.New("the target must not have a user part: the Request-URI user is kept")
	}
	if params != "" {
		transportSet := false
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			if !strings.EqualFold(k, "transport") {
				return topology.Target{}, fmt.Errorf("unsupported URI parameter %q (only transport is allowed)", k)
			}
			if transportSet {
				return topology.Target{}, errors.New("transport is given twice")
			}
			transportSet = true
			tr, err := policy.ParseTransport(v)
			if err != nil {
				return topology.Target{}, err
			}
			if t.Secure && tr != policy.TransportTLS {
				return topology.Target{}, fmt.Errorf("a sips: target always uses TLS; transport=%s contradicts it", v)
			}
			t.Transport = tr
		}
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return topology.Target{}, err
	}
	if err := checkHost(host); err != nil {
		return topology.Target{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() != "" {
		return topology.Target{}, errors.New("an IPv6 zone (%...) is not allowed in a target")
	}
	t.Host, t.Port = host, port
	return t, nil
}

// splitHostPort splits HOST, HOST:PORT, [IPv6] or [IPv6]:PORT. The port is
// 0 when absent.
func splitHostPort(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("missing host")
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ] after IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", 0, fmt.Errorf("invalid IPv6 address %q", host)
		}
		if rest == "" {
			return host, 0, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", 0, fmt.Errorf("unexpected %q after IPv6 address", rest)
		}
		p, err := parsePort(rest[1:])
		return host, p, err
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, 0, nil
	case 1:
		h, ps, _ := strings.Cut(s, ":")
		if h == "" {
			return "", 0, errors.New("missing host")
		}
		p, err := parsePort(ps)
		return h, p, err
	}
	return "", 0, errors.New("write an IPv6 address in brackets, as [2001:db8::1]:5061")
}
