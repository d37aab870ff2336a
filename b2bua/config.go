package b2bua

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/topology"
)

// Config is everything the server needs. Zones, Routes and Media are the
// domain model as configs loads it (cmd/parapet passes them as they are);
// the rest is what exists only while parapet runs.
type Config struct {
	// Zones are the zones, each with its listeners.
	Zones []topology.Zone
	// Routes are tried in order: the first that matches wins.
	Routes []topology.Route
	// Media is the relay's address, ports and timeouts (Timeout <= 0 is
	// 30 s, HoldTimeout <= 0 is 1 hour).
	Media topology.Media
	// Limits are the site's budgets; the zero value is
	// topology.DefaultLimits.
	Limits topology.Limits
	// TLS is the TLS material of the zones that have some, by zone name.
	TLS map[string]ZoneTLS
	// Emergency lists the emergency numbers (see emergency.go); none when
	// empty.
	Emergency topology.Emergency
	// Getenv reads the environment variable a route's Auth.PasswordEnv
	// names, at New and at every Reload; nil is os.Getenv.
	Getenv func(key string) string

	// PolicyHash identifies the configuration; it is written in every record.
	PolicyHash string
	// Sink receives the compliance records.
	Sink compliance.Sink
	// Journal, when set, keeps the calls that are up on disk (see
	// journal.go); nil keeps none, and a crash leaves no record of them.
	Journal Journal
	// JournalRefresh is how often the journal entries of answered calls
	// are renewed (0: DefaultJournalRefresh), so that the record a crash
	// leaves of a call ends at most this long before the crash.
	JournalRefresh time.Duration
	// Pseudonymizer turns caller and callee identifiers and SIP Call-IDs
	// into keyed tokens; nil records them in clear.
	Pseudonymizer *compliance.Pseudonymizer

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// ZoneTLS is the TLS material of one zone, built by the caller from the
// zone's settings (topology.Zone.TLS) and certificates.
type ZoneTLS struct {
	// Server is used by the zone's TLS listeners; required when it has one.
	Server *tls.Config
	// Client is used when parapet dials out over TLS into the zone; nil is
	// sipgo's default.
	Client *tls.Config
}
