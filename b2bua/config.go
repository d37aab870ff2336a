package b2bua

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// Config is everything the server needs. cmd/parapet builds it from a
// configs.Config.
type Config struct {
	Zones  []Zone
	Routes []Route
	Media  MediaConfig

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

	Logger *slog.Logger
	// UserAgent is written in User-Agent and Server headers.
	UserAgent string
}

// Zone is one zone as b2bua needs it.
type Zone struct {
	Policy policy.Zone
	Listen []Listener
	// Advertise, when set, replaces the listener IP in Via and Contact.
	Advertise string
	// ServerTLS is used by the zone's TLS listeners; required when it has one.
	ServerTLS *tls.Config
	// ClientTLS is used when parapet dials out over TLS into this zone.
	ClientTLS *tls.Config
	// Feedback is the RTP profile of parapet's offers into this zone;
	// "" is FeedbackMirror.
	Feedback Feedback
}

// Feedback says whether parapet's offers into a zone use an RTCP feedback
// profile (RTP/AVPF, RTP/SAVPF; RFC 4585).
type Feedback string

const (
	FeedbackMirror Feedback = "mirror" // as the other leg offered
	FeedbackOn     Feedback = "on"     // always AVPF/SAVPF
	FeedbackOff    Feedback = "off"    // always AVP/SAVP
)

// Listener is one SIP listening socket.
type Listener struct {
	Transport policy.Transport
	Addr      netip.AddrPort // port 0 picks a free port (tests)
}

func (l Listener) String() string { return fmt.Sprintf("%s://%s", l.Transport, l.Addr) }

// Route sends calls from one zone to a target in another.
type Route struct {
	Name     string
	From, To string
	// Match is applied to the Request-URI user; nil matches every call.
	Match  *regexp.Regexp
	Target Target
	// MaxCalls limits the calls the route carries at once (503 beyond);
	// 0 is no limit.
	MaxCalls int
	// Username and Password answer digest challenges from the target.
	Username, Password string
}

// Target is where a route sends calls: host, port and transport. The
// Request-URI user of the incoming call is kept.
type Target struct {
	Host      string
	Port      int // 0: the transport's default
	Transport policy.Transport
	Secure    bool // sips:
}

// MediaConfig configures the relay.
type MediaConfig struct {
	Address   netip.Addr
	Advertise netip.Addr // zero: Address
	PortMin   int
	PortMax   int
	// Timeout ends a call when no media packet arrived for this long.
	Timeout time.Duration
	// HoldTimeout replaces Timeout while a call is on hold; 0 is 1 hour.
	HoldTimeout time.Duration
}
