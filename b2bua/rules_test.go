package b2bua

import (
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// reloadBase is a two-zone configuration for the reload tables: each call
// returns a fresh copy, safe to edit.
func reloadBase() Config {
	return Config{
		PolicyHash: "sha256:a",
		Zones: []topology.Zone{
			{Policy: policy.Zone{Name: "pbx", SRTP: policy.RequirementAllow}, Feedback: topology.FeedbackMirror,
				Listen: []topology.Listener{{Transport: policy.TransportUDP, Addr: netip.MustParseAddrPort("127.0.0.1:5060")}}},
			{Policy: policy.Zone{Name: "carrier", SRTP: policy.RequirementRequire}, Advertise: "sbc.example",
				Listen: []topology.Listener{{Transport: policy.TransportTLS, Addr: netip.MustParseAddrPort("127.0.0.1:5061")}},
				TLS:    &topology.TLS{MinVersion: policy.VersionTLS12, VerifyPeer: true, CAFile: "/etc/parapet/ca.pem"}},
		},
		Routes: []topology.Route{{Name: "out", From: "pbx", To: "carrier", Match: regexp.MustCompile(`^\+?[0-9]+$`),
			Target: topology.Target{Host: "127.0.0.1"}, Auth: &topology.Auth{Username: "u", PasswordEnv: "ROUTE_PW"}}},
		Media: topology.Media{Address: netip.MustParseAddr("127.0.0.1"), PortMin: 30000, PortMax: 30999,
			Timeout: 30 * time.Second, HoldTimeout: time.Hour},
		Getenv: func(string) string { return "p" },
	}
}

// Reload refuses what Start bound and names the setting; it takes the
// rules, and a route into a zone it does not have is refused too.
func TestReloadNamesWhatNeedsARestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // the error; "" when Reload takes the change
	}{
		{"nothing", func(c *Config) {}, ""},
		{"policy", func(c *Config) { c.Zones[0].Policy.Peers = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, ""},
		{"feedback", func(c *Config) { c.Zones[1].Feedback = topology.FeedbackOff }, ""},
		{"routes", func(c *Config) { c.Routes = nil }, ""},
		{"timeouts", func(c *Config) { c.Media.Timeout, c.Media.HoldTimeout = time.Minute, time.Minute }, ""},
		{"limits", func(c *Config) { c.Limits = topology.Limits{Connections: 100, OutsiderConnections: 10} }, ""},
		{"outsiders", func(c *Config) { c.Zones[1].Outsiders = topology.RefusalDrop }, ""},
		{"zone removed", func(c *Config) { c.Zones = c.Zones[:1]; c.Routes = nil },
			"b2bua: reload: zones added or removed (1, was 2): restart needed"},
		{"zones swapped", func(c *Config) { c.Zones[0], c.Zones[1] = c.Zones[1], c.Zones[0] },
			`b2bua: reload: zone "pbx" renamed or moved (now "carrier"): restart needed`},
		{"listen", func(c *Config) { c.Zones[1].Listen[0].Addr = netip.MustParseAddrPort("127.0.0.1:5071") },
			`b2bua: reload: zone "carrier": listen changed: restart needed`},
		{"listener added", func(c *Config) {
			c.Zones[0].Listen = append(c.Zones[0].Listen, topology.Listener{Transport: policy.TransportTCP,
				Addr: netip.MustParseAddrPort("127.0.0.1:5060")})
		}, `b2bua: reload: zone "pbx": listen changed: restart needed`},
		{"advertise", func(c *Config) { c.Zones[1].Advertise = "sbc2.example" },
			`b2bua: reload: zone "carrier": advertise changed: restart needed`},
		{"tls", func(c *Config) { c.Zones[1].TLS.CAFile = "/etc/parapet/other.pem" },
			`b2bua: reload: zone "carrier": tls changed: restart needed`},
		{"tls removed", func(c *Config) { c.Zones[1].TLS = nil },
			`b2bua: reload: zone "carrier": tls changed: restart needed`},
		{"media address", func(c *Config) { c.Media.Address = netip.MustParseAddr("127.0.0.2") },
			"b2bua: reload: media: address changed: restart needed"},
		{"media advertise", func(c *Config) { c.Media.Advertise = netip.MustParseAddr("192.0.2.1") },
			"b2bua: reload: media: advertise changed: restart needed"},
		{"media ports", func(c *Config) { c.Media.PortMax = 31999 },
			"b2bua: reload: media: ports changed: restart needed"},
		{"unknown zone", func(c *Config) { c.Routes[0].To = "nowhere" },
			`b2bua: reload: route "out" names an unknown zone "nowhere"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: reloadBase()}
			s.rules.Store(newRules(&s.cfg))
			cfg := reloadBase()
			tc.edit(&cfg)
			_, checked := s.CheckReload(cfg)
			err := s.Reload(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Reload: %v, want it taken", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("Reload: %v, want %q", err, tc.want)
			case (checked == nil) != (err == nil) || (err != nil && checked.Error() != err.Error()):
				t.Errorf("CheckReload: %v, Reload: %v; want the same", checked, err)
			}
			if want := newRules(&cfg); err == nil && !s.rules.Load().same(want) {
				t.Error("Reload took the change, but the rules in force are not cfg's")
			}
			if base := newRules(&s.cfg); err != nil && !s.rules.Load().same(base) {
				t.Error("a refused Reload changed the rules")
			}
		})
	}
}

// CheckReload's changed sees every change Reload would apply, the policy
// hash and route passwords included, and nothing else.
func TestCheckReloadChanged(t *testing.T) {
	same := func(c *Config) {
		c.Routes[0].Match = regexp.MustCompile(`^\+?[0-9]+$`) // another *Regexp, the same expression
		c.Getenv = func(string) string { return "p" }
		c.Zones = slices.Clone(c.Zones)
	}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want bool
	}{
		{"nothing", func(c *Config) {}, false},
		{"the same rules rebuilt", same, false},
		{"policy hash", func(c *Config) { c.PolicyHash = "sha256:b" }, true},
		{"password", func(c *Config) { c.Getenv = func(string) string { return "q" } }, true},
		{"username", func(c *Config) { c.Routes[0].Auth = &topology.Auth{Username: "v", PasswordEnv: "ROUTE_PW"} }, true},
		{"no credentials", func(c *Config) { c.Routes[0].Auth = nil }, true},
		{"match", func(c *Config) { c.Routes[0].Match = regexp.MustCompile(`^[0-9]+$`) }, true},
		{"no match", func(c *Config) { c.Routes[0].Match = nil }, true},
		{"target", func(c *Config) { c.Routes[0].Target.Port = 5070 }, true},
		{"max calls", func(c *Config) { c.Routes[0].MaxCalls = 2 }, true},
		{"routes", func(c *Config) { c.Routes = nil }, true},
		{"zone policy", func(c *Config) { c.Zones[0].Policy.SRTP = policy.RequirementRequire }, true},
		{"feedback", func(c *Config) { c.Zones[0].Feedback = topology.FeedbackOff }, true},
		{"timeout", func(c *Config) { c.Media.Timeout = time.Minute }, true},
		{"hold timeout", func(c *Config) { c.Media.HoldTimeout = time.Minute }, true},
		{"limits", func(c *Config) { c.Limits = topology.DefaultLimits; c.Limits.OutsiderConnections = 10 }, true},
		{"default limits spelt out", func(c *Config) { c.Limits = topology.DefaultLimits }, false},
		{"outsiders", func(c *Config) { c.Zones[1].Outsiders = topology.RefusalDrop }, true},
		{"outsiders default spelt out", func(c *Config) { c.Zones[1].Outsiders = topology.RefusalRefuse }, false},
		{"scanners", func(c *Config) { c.Zones[0].Scanners = topology.RefusalRefuse }, true},
		{"scanners default spelt out", func(c *Config) { c.Zones[0].Scanners = topology.RefusalDrop }, false},
		{"zone max calls", func(c *Config) { c.Zones[0].MaxCalls = 5 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: reloadBase()}
			s.rules.Store(newRules(&s.cfg))
			cfg := reloadBase()
			tc.edit(&cfg)
			changed, err := s.CheckReload(cfg)
			if err != nil || changed != tc.want {
				t.Errorf("CheckReload = %v, %v; want %v, nil", changed, err, tc.want)
			}
		})
	}
}

// A route's password is read through Config.Getenv, from the variable its
// Auth names.
func TestRulesReadPasswords(t *testing.T) {
	cfg := reloadBase()
	var asked []string
	cfg.Getenv = func(k string) string { asked = append(asked, k); return "s3cret" }
	r := newRules(&cfg).route("pbx", "+15551230000")
	if r == nil || r.Username != "u" || r.Password != "s3cret" || !slices.Equal(asked, []string{"ROUTE_PW"}) {
		t.Fatalf("route %+v, asked %q", r, asked)
	}
	cfg.Routes[0].Auth = nil
	if r := newRules(&cfg).route("pbx", "+15551230000"); r == nil || r.Username != "" || r.Password != "" {
		t.Errorf("a route without auth: %+v", r)
	}
}
