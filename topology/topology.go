// Package topology is parapet's domain model of a site: its zones with
// their listeners, the routes between zones and the targets they dial, and
// the media relay's sockets. configs produces these values from a file;
// b2bua consumes them as they are; nothing copies them field by field.
//
// The package is pure data: no I/O, no goroutines, no logging. It imports
// nothing of parapet's except policy, whose Zone is each zone's
// requirements (what policy.Evaluate judges against).
package topology

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// Zone is a zone's requirements (for policy) and its sockets (for b2bua).
type Zone struct {
	// Policy is what policy.Evaluate judges against: Name, Signaling,
	// MinTLS, VerifyPeer, ClientAuth, SRTP, KeyExchange, Suites, Peers, Mode.
	Policy policy.Zone
	// Listen lists the zone's listeners in file order (at least one in a
	// loaded configuration).
	Listen []Listener
	// Advertise is the host or IP written in Via and Contact instead of the
	// listener IP; "" means the listener IP.
	Advertise string
	// TLS is non-nil when the zone has a TLS listener or a tls block (which
	// then applies to outbound connections into the zone). It is what the
	// certificates are loaded from; the TLS configurations built from them
	// are the caller's (b2bua.Config.TLS).
	TLS *TLS
	// Feedback is the RTP profile parapet offers on legs into the zone:
	// with RTCP feedback (RTP/AVPF, RTP/SAVPF) or without. "" is
	// FeedbackMirror.
	Feedback Feedback
	// Outsiders is what a request from a source outside Policy.Peers gets:
	// one stateless 403 (the default) or nothing at all.
	Outsiders Refusal
	// Scanners is what a request from outside the peers that carries a
	// known scanner's signature (friendly-scanner, sipvicious, sipcli...)
	// gets; the default is RefusalDrop.
	Scanners Refusal
	// MaxCalls limits the calls arriving in the zone at once (503 with
	// Retry-After beyond); 0 leaves only the global limit.
	MaxCalls int
	// UserAgent is written in the Server and User-Agent headers of the
	// zone's messages; "" writes neither.
	UserAgent string
	// Registrar is where the zone's users register through parapet; nil
	// refuses REGISTER (405).
	Registrar *Registrar
}

// Registrar is the registrar (a PBX) that a zone's REGISTER requests are
// relayed to, with parapet in the path (RFC 3327).
type Registrar struct {
	// Zone is the zone the registrar lives in: the REGISTER leaves
	// through it, and calls to registered users come from it.
	Zone string
	// Target is the registrar's address.
	Target Target
}

// Refusal is how parapet refuses a request from outside a zone's peers.
type Refusal string

const (
	// RefusalRefuse answers 403 once, statelessly: no retransmission, no
	// transaction kept.
	RefusalRefuse Refusal = "refuse"
	// RefusalDrop answers nothing: the sender cannot tell a parapet from
	// an address where nothing listens.
	RefusalDrop Refusal = "drop"
)

// Limits are the site's budgets, which keep peers served whatever
// strangers send. Rates are requests per second; sources outside a zone's
// peers share the outsider budgets, and requests beyond them are dropped,
// counted, without a response.
type Limits struct {
	// MaxCalls limits the calls up at once, all zones together (503 with
	// Retry-After beyond); 0 is no limit.
	MaxCalls int
	// RetryAfter is what a 503 for a full zone or site asks callers to
	// wait.
	RetryAfter time.Duration
	// OutsiderRate is how many requests from outside the peers, all zones
	// and sources together, parapet answers (403) per second.
	OutsiderRate float64
	// SourceRate and PrefixRate bound that per source address and per
	// /24 (IPv4) or /64 (IPv6) prefix.
	SourceRate, PrefixRate float64
	// Connections is each TCP and TLS listener's cap on open connections.
	Connections int
	// OutsiderConnections is the part of Connections that sources outside
	// the peers may hold together: the rest is the peers' alone.
	OutsiderConnections int
	// ConnectionsPerSource and ConnectionsPerPrefix bound the connections
	// one outside address, and one outside /24 or /64, may hold on a
	// listener.
	ConnectionsPerSource, ConnectionsPerPrefix int
}

// DefaultLimits are the budgets of a site that sets none.
var DefaultLimits = Limits{
	MaxCalls:             1000,
	RetryAfter:           10 * time.Second,
	OutsiderRate:         200,
	SourceRate:           5,
	PrefixRate:           50,
	Connections:          4096,
	OutsiderConnections:  1024,
	ConnectionsPerSource: 4,
	ConnectionsPerPrefix: 64,
}

// Feedback says whether parapet's offers into a zone use an RTCP feedback
// profile (RFC 4585). Many peers decline a profile they were not
// configured for (Asterisk without avpf=yes, baresip), so a B2BUA cannot
// always pass the caller's choice through.
type Feedback string

const (
	// FeedbackMirror offers AVPF/SAVPF exactly when the other leg offered it.
	FeedbackMirror Feedback = "mirror"
	// FeedbackOn always offers RTP/AVPF or RTP/SAVPF.
	FeedbackOn Feedback = "on"
	// FeedbackOff always offers RTP/AVP or RTP/SAVP.
	FeedbackOff Feedback = "off"
)

// Listener is one SIP listening socket.
type Listener struct {
	// Transport is udp, tcp or tls.
	Transport policy.Transport
	// Addr is an IP literal with an explicit port (port 0, which configs
	// refuses, picks a free port: tests use it).
	Addr netip.AddrPort
}

// String renders the listener as written in the config, e.g.
// "udp://127.0.0.1:5060" or "tls://[::1]:5061".
func (l Listener) String() string { return l.Transport.String() + "://" + l.Addr.String() }

// TLS is a zone's TLS settings, for its listeners and for the connections
// parapet opens into the zone.
type TLS struct {
	// MinVersion is 1.2 (the default) or 1.3; never lower.
	MinVersion policy.TLSVersion
	// CertFile and KeyFile are both set or both empty (resolved paths).
	// Empty means the lab certificate.
	CertFile, KeyFile string
	// CAFile is the resolved path of the CA bundle peers are verified
	// against; empty means the system roots.
	CAFile string
	// VerifyPeer is true unless the config turns verification off.
	VerifyPeer bool
	// ClientAuth is what listeners ask of connecting peers (default none).
	ClientAuth policy.ClientAuth
	// Ciphers are TLS 1.2 cipher suite names as crypto/tls names them
	// (tls.CipherSuiteName); empty means Go's secure default.
	Ciphers []string
	// ServerName, when set, is the name verified on outbound connections
	// instead of the target host.
	ServerName string
}

// Lab reports whether the zone uses the self-signed lab certificate, that
// is, whether no cert_file was configured.
func (t *TLS) Lab() bool { return t.CertFile == "" }

// Route sends requests arriving in zone From whose Request-URI user matches
// Match to Target in zone To.
type Route struct {
	// Name names the route in records and logs.
	Name string
	// From and To are zone names.
	From, To string
	// Match is applied to the Request-URI user part; nil matches every user.
	Match *regexp.Regexp
	// Target is where the route sends calls.
	Target Target
	// MaxCalls limits the calls the route carries at once (503 beyond);
	// 0 is no limit.
	MaxCalls int
	// Auth holds digest credentials for the target; nil when none.
	Auth *Auth
}

// Target is where a route sends requests. The Request-URI user part is kept;
// the target sets host, port and transport.
type Target struct {
	// URI is the target as written ("" when not built from a file).
	URI string
	// Secure is true for a sips: URI.
	Secure bool
	// Host is a DNS name or an IP literal (IPv6 without brackets).
	Host string
	// Port is 0 for the transport's default (5060 for udp and tcp, 5061 for
	// tls).
	Port int
	// Transport is the transport parapet dials the target over.
	Transport policy.Transport
}

// Auth is the digest credential a route answers challenges with. The
// password is read from the environment variable PasswordEnv when needed,
// never stored in the config.
type Auth struct {
	// Username is the digest user name.
	Username string
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string
}

// Media configures the media relay.
type Media struct {
	// Address is where the relay binds.
	Address netip.Addr
	// Advertise is the address written in SDP; the zero value means Address.
	Advertise netip.Addr
	// PortMin (always even in a loaded configuration) and PortMax bound the
	// relay's UDP ports.
	PortMin, PortMax int
	// Timeout ends a call that has seen no media packet for this long.
	Timeout time.Duration
	// HoldTimeout replaces Timeout while a call is on hold.
	HoldTimeout time.Duration
}
