package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// The canonical form is the effective configuration, after defaults and
// path resolution, as JSON with fixed field order. Config.Hash is computed
// over its compact encoding; the golden files in testdata/good hold its
// indented encoding. Changing it changes every hash: add fields, never
// rename them.

type canonConfig struct {
	StateDir   string          `json:"state_dir"`
	Zones      []canonZone     `json:"zones"`
	Routes     []canonRoute    `json:"routes"`
	Media      canonMedia      `json:"media"`
	Compliance canonCompliance `json:"compliance"`
	Admin      canonAdmin      `json:"admin"`
}

type canonZone struct {
	Name        string    `json:"name"`
	Listen      []string  `json:"listen"`
	Advertise   string    `json:"advertise"`
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
}

type canonTLS struct {
	MinVersion string   `json:"min_version"`
	CertFile   string   `json:"cert_file"`
	KeyFile    string   `json:"key_file"`
	CAFile     string   `json:"ca_file"`
	VerifyPeer bool     `json:"verify_peer"`
	ClientAuth string   `json:"client_auth"`
	Ciphers    []string `json:"ciphers"`
	ServerName string   `json:"server_name"`
}

type canonRoute struct {
	Name     string      `json:"name"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Match    string      `json:"match"`
	Target   canonTarget `json:"target"`
	MaxCalls int         `json:"max_calls,omitempty"`
	Auth     *canonAuth  `json:"auth"`
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
	Address   string `json:"address"`
	Advertise string `json:"advertise"`
	PortMin   int    `json:"port_min"`
	PortMax   int    `json:"port_max"`
	Timeout   string `json:"timeout"`
	Hold      string `json:"hold_timeout"`
}

type canonCompliance struct {
	Log          string `json:"log"`
	Pseudonymize bool   `json:"pseudonymize"`
	RotateBytes  int64  `json:"rotate_bytes,omitempty"`
}

type canonAdmin struct {
	Listen string `json:"listen"`
}

// canonical builds the canonical form of c. Slices are never nil, so that
// an empty list and an absent one encode alike ("[]").
func canonical(c *Config) canonConfig {
	out := canonConfig{
		StateDir:   c.StateDir,
		Zones:      []canonZone{},
		Routes:     []canonRoute{},
		Compliance: canonCompliance{Log: c.Compliance.Log, Pseudonymize: c.Compliance.Pseudonymize, RotateBytes: c.Compliance.RotateBytes},
		Admin:      canonAdmin{Listen: c.Admin.Listen},
		Media: canonMedia{
			PortMin: c.Media.PortMin,
			PortMax: c.Media.PortMax,
			Timeout: c.Media.Timeout.String(),
			Hold:    c.Media.HoldTimeout.String(),
		},
	}
	if c.Media.Address.IsValid() {
		out.Media.Address = c.Media.Address.String()
	}
	if c.Media.Advertise.IsValid() {
		out.Media.Advertise = c.Media.Advertise.String()
	}
	for _, z := range c.Zones {
		p := z.Policy
		cz := canonZone{
			Name:        p.Name,
			Listen:      []string{},
			Advertise:   z.Advertise,
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
		}
		for _, l := range z.Listen {
			cz.Listen = append(cz.Listen, l.String())
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
			cz.TLS = &canonTLS{
				MinVersion: t.MinVersion.String(),
				CertFile:   t.CertFile,
				KeyFile:    t.KeyFile,
				CAFile:     t.CAFile,
				VerifyPeer: t.VerifyPeer,
				ClientAuth: t.ClientAuth.String(),
				Ciphers:    append([]string{}, t.Ciphers...),
				ServerName: t.ServerName,
			}
		}
		out.Zones = append(out.Zones, cz)
	}
	for _, r := range c.Routes {
		cr := canonRoute{
			Name:     r.Name,
			From:     r.From,
			To:       r.To,
			MaxCalls: r.MaxCalls,
			Target: canonTarget{
				URI:       r.Target.URI,
				Secure:    r.Target.Secure,
				Host:      r.Target.Host,
				Port:      r.Target.Port,
				Transport: r.Target.Transport.String(),
			},
		}
		if r.Match != nil {
			cr.Match = r.Match.String()
		}
		if r.Auth != nil {
			cr.Auth = &canonAuth{Username: r.Auth.Username, PasswordEnv: r.Auth.PasswordEnv}
		}
		out.Routes = append(out.Routes, cr)
	}
	return out
}

// hashConfig returns "sha256:<hex>" over the compact canonical JSON of c.
func hashConfig(c *Config) string {
	b, err := json.Marshal(canonical(c))
	if err != nil {
		// The canonical form holds only strings, numbers and booleans.
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// canonicalJSON returns the indented canonical JSON of c, as stored in the
// golden files.
func canonicalJSON(c *Config) ([]byte, error) {
	return json.MarshalIndent(canonical(c), "", "  ")
}
