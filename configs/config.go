package configs

import (
	"github.com/parapet-sbc/parapet/topology"
)

// Config is a loaded, validated configuration. Values are never modified
// after Load returns them, so a Config may be shared between goroutines.
type Config struct {
	// Source is the file name given to Load, or "embedded:lab.hcl".
	Source string
	// StateDir is the resolved state directory (absolute when BaseDir is
	// set, otherwise relative to the working directory).
	StateDir string
	// Zones are in file order.
	Zones []topology.Zone
	// Routes are in file order: the first route that matches wins.
	Routes     []topology.Route
	Media      topology.Media
	Compliance Compliance
	Admin      Admin
	// Limits are the site's budgets (topology.DefaultLimits when the file
	// has no limits block).
	Limits topology.Limits
	// Emergency is the emergency block: the numbers of the emergency
	// services (none when the file has no emergency block).
	Emergency topology.Emergency
	// NeedsLabCA is set when a zone's ca_file names the lab CA in the state
	// directory (StateDir/LabCAFile) and it does not exist yet: `parapet
	// run` creates the lab PKI there before loading certificates.
	NeedsLabCA bool
}

// A Config has no hash of its own: the policy hash records carry covers the
// certificates in force too, so it is Config.Policy(trust), computed by
// whoever loaded them (see canonical.go for what it covers).

// LabCAFile is where, under the state directory, the lab CA's certificate
// lives (created by `parapet run` and `parapet demo`, see certs.EnsureLab).
const LabCAFile = "certs/lab-ca.pem"

// Zone returns the zone named name, or nil if there is none.
func (c *Config) Zone(name string) *topology.Zone {
	for i := range c.Zones {
		if c.Zones[i].Policy.Name == name {
			return &c.Zones[i]
		}
	}
	return nil
}

// Compliance configures the compliance log.
type Compliance struct {
	// Log is the resolved path of the hash-chained JSON lines log.
	Log string
	// Pseudonymize replaces caller and callee identifiers with keyed HMACs.
	Pseudonymize bool
	// RotateBytes starts a new file (chained to the last) before the log
	// would grow past this size; 0 never rotates.
	RotateBytes int64
}

// Admin configures the admin HTTP server (/metrics, /healthz, /readyz).
type Admin struct {
	// Listen is "IP:PORT"; "" means no admin server.
	Listen string
}
