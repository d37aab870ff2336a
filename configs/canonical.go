package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/parapet-sbc/parapet/topology"
)

// The canonical policy is what a record's policy_hash names: everything
// that decides whom parapet trusts and how it judges a call, and nothing
// else. It is JSON with a fixed field order; the hash is "sha256:<hex>" over
// its compact encoding (no insignificant space, no HTML escaping), and
// `parapet check -print` shows its indented encoding.
//
// In: per zone, the listeners (transports and sockets calls arrive on),
// peers, mode, the signaling requirement derived from the listeners, the TLS
// floor, verify_peer, client_auth, srtp, key_exchange, suites and
// rtcp_feedback; for a zone with TLS, the TLS 1.2 ciphers, server_name, the
// SHA-256 of parapet's own certificate (the leaf, DER) and the SHA-256 of
// every CA certificate peers are verified against (ca_file, or the lab CA),
// or the fixed marker "system" when verification uses the system roots
// (the system store itself is not hashed). Per route: name, from, to,
// match, target, max_calls, auth's username and password_env (the
// variable's name, never the password; a password_file's path is out, as
// every path), register's registrar, aor and expires, and auth_passthrough
// when a route without auth turns it off. The media
// timeouts. Whether identifiers are pseudonymised. Per zone, whether it is
// trusted (RFC 3325 identity) and whether its peers may transfer calls,
// and the emergency numbers and services map; each is left out when unset,
// so that configurations without them hash as before they existed.
//
// Out: file paths of every kind (certificates, keys, CA bundles, the
// compliance log) and state_dir, so that the same policy moved to another
// directory or machine hashes alike; the compliance log's rotation size; the
// admin listener; zone advertise and the media address, ports and advertise;
// the limits block and zone outsiders, scanners, max_calls and user_agent
// (budgets and manners toward strangers, not what a call is judged by);
// zone session_expires and min_se (how often a live call is refreshed).
// These are operational: they say where things are, not what is trusted or
// allowed. Key material of any kind never enters it, nor do file contents
// other than certificate fingerprints.
//
// The trust material is an input (Trust), read by whoever loads the
// certificates (cmd/parapet, through certs): configs never reads them.
//
// Changing this form changes every hash: add fields, never rename them, and
// keep docs/records.md (policy_hash) and docs/config.md in step.

// ZoneTrust is a zone's TLS trust material as loaded, by fingerprint: the
// lowercase hex SHA-256 of the DER certificate.
type ZoneTrust struct {
	// Cert is the fingerprint of parapet's own certificate (the leaf).
	Cert string
	// CAs are the fingerprints of the CA certificates peers are verified
	// against, in any order; empty means the system roots.
	CAs []string
}

// Trust maps the name of every zone with TLS settings (Zone.TLS non-nil)
// to its trust material.
type Trust map[string]ZoneTrust

// Policy is the canonical policy of a configuration with its trust
// material, and its hash.
type Policy struct {
	// Hash is "sha256:<hex>" over Canonical: the policy_hash of records.
	Hash string
	// Canonical is the compact canonical JSON.
	Canonical []byte
}

// Indented returns the canonical JSON indented by two spaces, as
// `parapet check -print` shows it.
func (p Policy) Indented() []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, p.Canonical, "", "  "); err != nil {
		return nil
	}
	return b.Bytes()
}

// SystemRoots is the value of "ca" in a zone's canonical TLS when peers are
// verified against the system roots; "bundle" means the ca_sha256 list.
const SystemRoots = "system"

type canonConfig struct {
	Zones        []canonZone  `json:"zones"`
	Routes       []canonRoute `json:"routes"`
	Media        canonMedia   `json:"media"`
	Pseudonymize bool         `json:"pseudonymize"`
	// Emergency, absent when empty, so that a file without an emergency
	// block hashes as before it existed.
	Emergency []string `json:"emergency_numbers,omitempty"`
	// EmergencyServices, absent when empty (as Emergency): service URN to
	// number, encoded in key order.
	EmergencyServices map[string]string `json:"emergency_services,omitempty"`
}

type canonZone struct {
	Name        string    `json:"name"`
	Listen      []string  `json:"listen"`
	Peers       []string  `json:"peers"`
	Mode        string    `json:"mode"`
	Signaling   string    `json:"signaling"`
	MinTLS      string    `json:"min_tls"`
	VerifyPeer  bool      `json:"verify_peer"`
	ClientAuth  string    `json:"client_auth"`
	TLS         *canonTLS `json:"tls"`
	SRTP        string    `json:"srtp"`
	KeyExchange []string  `json:"key_exchange"`
	Suites      []string  `json:"suites"`
	Feedback    string    `json:"rtcp_feedback"`
	// Trusted, absent when false (as Emergency).
	Trusted bool `json:"trusted,omitempty"`
	// Transfer, absent when refused (the default).
	Transfer bool `json:"transfer,omitempty"`
	// Registrar is omitted when the zone has none, so that the hashes of
	// configurations written before it stay the same.
	Registrar *canonRegistrar `json:"registrar,omitempty"`
}

// canonRegistrar is where a zone's users register through parapet.
type canonRegistrar struct {
	Zone         string      `json:"zone"`
	Target       canonTarget `json:"target"`
	UDPKeepAlive string      `json:"udp_keepalive"`
	Callers      string      `json:"callers"`
}

type canonTLS struct {
	Ciphers    []string `json:"ciphers"`
	ServerName string   `json:"server_name"`
	CertSHA256 string   `json:"cert_sha256"`
	CA         string   `json:"ca"`
	CASHA256   []string `json:"ca_sha256"`
}

type canonRoute struct {
	Name   string      `json:"name"`
	From   string      `json:"from"`
	To     string      `json:"to"`
	Match  string      `json:"match"`
	Target canonTarget `json:"target"`
	// Targets, AttemptTimeout and OptionsInterval only when the route
	// lists several targets or sets them: the hash of a route without
	// them is unchanged.
	Targets         []canonTarget `json:"targets,omitempty"`
	AttemptTimeout  string        `json:"attempt_timeout,omitempty"`
	OptionsInterval string        `json:"options_interval,omitempty"`
	Resolver        string        `json:"resolver,omitempty"`
	MaxCalls        int           `json:"max_calls,omitempty"`
	Auth            *canonAuth    `json:"auth"`
	// NoAuthPassthrough only when a route without auth turns digest
	// pass-through off: the hash of a route at the default is unchanged.
	NoAuthPassthrough bool `json:"no_auth_passthrough,omitempty"`
	// Register is the trunk registration: whom parapet registers as,
	// where; absent from routes that do not register.
	Register *canonRegister `json:"register,omitempty"`
}

type canonRegister struct {
	Registrar canonTarget `json:"registrar"`
	AOR       string      `json:"aor"`
	Expires   string      `json:"expires"`
}

type canonTarget struct {
	URI       string `json:"uri"`
	Secure    bool   `json:"secure"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Transport string `json:"transport"`
}

type canonAuth struct {
	Username    string `json:"username"`
	PasswordEnv string `json:"password_env"`
}

type canonMedia struct {
	Timeout string `json:"timeout"`
	Hold    string `json:"hold_timeout"`
}

// Policy returns the canonical policy of c with trust, the material of
// every zone that has TLS settings. It fails when a zone's material is
// missing or is not fingerprints, or when trust names another zone.
func (c *Config) Policy(trust Trust) (Policy, error) {
	cc, err := canonical(c, trust)
	if err != nil {
		return Policy{}, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cc); err != nil {
		// The canonical form holds only strings, numbers and booleans.
		return Policy{}, err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	sum := sha256.Sum256(out)
	return Policy{Hash: "sha256:" + hex.EncodeToString(sum[:]), Canonical: out}, nil
}

// isFingerprint reports whether s is 64 lowercase hex digits.
func isFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// canonical builds the canonical form of c. Slices are never nil, so that
// an empty list and an absent one encode alike ("[]").
func canonical(c *Config, trust Trust) (canonConfig, error) {
	out := canonConfig{
		Zones:        []canonZone{},
		Routes:       []canonRoute{},
		Pseudonymize: c.Compliance.Pseudonymize,
		Media:        canonMedia{Timeout: c.Media.Timeout.String(), Hold: c.Media.HoldTimeout.String()},
		Emergency:    c.Emergency.Numbers,
		// encoding/json writes a map's keys sorted: the same map, the same bytes.
		EmergencyServices: c.Emergency.Services,
	}
	used := 0
	for _, z := range c.Zones {
		p := z.Policy
		cz := canonZone{
			Name:        p.Name,
			Listen:      []string{},
			Peers:       []string{},
			Mode:        p.Mode.String(),
			Signaling:   p.Signaling.String(),
			MinTLS:      p.MinTLS.String(),
			VerifyPeer:  p.VerifyPeer,
			ClientAuth:  p.ClientAuth.String(),
			SRTP:        p.SRTP.String(),
			KeyExchange: []string{},
			Suites:      []string{},
			Feedback:    string(z.Feedback),
			Trusted:     z.Trusted,
			Transfer:    z.Transfer,
		}
		for _, l := range z.Listen {
			cz.Listen = append(cz.Listen, l.String())
		}
		if r := z.Registrar; r != nil {
			cz.Registrar = &canonRegistrar{Zone: r.Zone, Target: canonTargetOf(r.Target), UDPKeepAlive: r.UDPKeepAlive.String(),
				Callers: r.Callers.String()}
		}
		for _, pr := range p.Peers {
			cz.Peers = append(cz.Peers, pr.String())
		}
		for _, k := range p.KeyExchange {
			cz.KeyExchange = append(cz.KeyExchange, k.String())
		}
		for _, s := range p.Suites {
			cz.Suites = append(cz.Suites, string(s))
		}
		if t := z.TLS; t != nil {
			zt, ok := trust[p.Name]
			if !ok {
				return canonConfig{}, fmt.Errorf("zone %q: no trust material (certificate and CA fingerprints)", p.Name)
			}
			used++
			if !isFingerprint(zt.Cert) {
				return canonConfig{}, fmt.Errorf("zone %q: certificate fingerprint %q is not 64 lowercase hex digits", p.Name, zt.Cert)
			}
			ct := &canonTLS{
				Ciphers:    append([]string{}, t.Ciphers...),
				ServerName: t.ServerName,
				CertSHA256: zt.Cert,
				CA:         SystemRoots,
				CASHA256:   []string{},
			}
			for _, f := range zt.CAs {
				if !isFingerprint(f) {
					return canonConfig{}, fmt.Errorf("zone %q: CA fingerprint %q is not 64 lowercase hex digits", p.Name, f)
				}
				ct.CASHA256 = append(ct.CASHA256, f)
			}
			if len(ct.CASHA256) > 0 {
				// A bundle is a set: its order and repeats decide nothing.
				ct.CA = "bundle"
				sort.Strings(ct.CASHA256)
				ct.CASHA256 = slices.Compact(ct.CASHA256)
			}
			cz.TLS = ct
		}
		out.Zones = append(out.Zones, cz)
	}
	if used != len(trust) {
		for name := range trust {
			if z := c.Zone(name); z == nil || z.TLS == nil {
				return canonConfig{}, fmt.Errorf("trust material given for zone %q, which has no TLS settings", name)
			}
		}
	}
	for _, r := range c.Routes {
		cr := canonRoute{
			Name:     r.Name,
			From:     r.From,
			To:       r.To,
			MaxCalls: r.MaxCalls,
			Target:   canonTargetOf(r.Target),
		}
		for _, t := range r.Targets {
			cr.Targets = append(cr.Targets, canonTargetOf(t))
		}
		if r.AttemptTimeout > 0 {
			cr.AttemptTimeout = r.AttemptTimeout.String()
		}
		if r.HealthInterval > 0 {
			cr.OptionsInterval = r.HealthInterval.String()
		}
		cr.Resolver = r.Resolver
		if r.Match != nil {
			cr.Match = r.Match.String()
		}
		if r.Auth != nil {
			cr.Auth = &canonAuth{Username: r.Auth.Username, PasswordEnv: r.Auth.PasswordEnv}
		}
		cr.NoAuthPassthrough = r.Auth == nil && !r.AuthPassthrough
		if g := r.Register; g != nil {
			t := g.Registrar
			cr.Register = &canonRegister{AOR: g.AOR, Expires: g.Expires.String(),
				Registrar: canonTarget{URI: t.URI, Secure: t.Secure, Host: t.Host, Port: t.Port, Transport: t.Transport.String()}}
		}
		out.Routes = append(out.Routes, cr)
	}
	return out, nil
}

// canonTargetOf is a target's canonical form.
func canonTargetOf(t topology.Target) canonTarget {
	return canonTarget{URI: t.URI, Secure: t.Secure, Host: t.Host, Port: t.Port, Transport: t.Transport.String()}
}
