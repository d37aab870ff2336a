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
	"strings"
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
	// Trusted puts the zone's peers inside parapet's trust domain (RFC
	// 3325): the P-Asserted-Identity and Diversion they send are believed
	// and passed on to other trusted zones, and the ones parapet passes
	// reach them. An untrusted zone (the default) has those headers
	// removed both ways.
	Trusted bool
	// Transfer lets the zone's peers transfer the calls they are in (a
	// REFER, RFC 3515): parapet then places a new leg into the zone toward
	// the Refer-To target, one of the zone's peers. false (the default)
	// refuses every REFER with 403.
	Transfer bool
	// SessionExpires is the session interval (RFC 4028) parapet asks for
	// on legs into the zone and grants at most on calls from it; 0 is
	// DefaultSessionExpires.
	SessionExpires time.Duration
	// MinSE is the shortest session interval parapet accepts from the
	// zone's peers (422 below it); 0 is DefaultMinSE.
	MinSE time.Duration
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
	// UDPKeepAlive is how often parapet sends OPTIONS to each user
	// registered over UDP, to keep its NAT binding open and to know its
	// flow alive (two unanswered in a row: calls to it get 430 until it
	// is heard from again); 0 sends none.
	UDPKeepAlive time.Duration
	// Callers is who may call from the zone: only its registered users,
	// over the connection each registered on and as the address of
	// record it registered (the zero value, the default), or any of its
	// peers.
	Callers Callers
}

// Callers is who may place calls from a zone whose users register
// through parapet.
type Callers int

const (
	// CallersRegistered takes a call only over a connection with a live
	// registration, from an address of record registered on it.
	CallersRegistered Callers = iota
	// CallersAny takes calls from any of the zone's peers, registered or
	// not.
	CallersAny
)

// String is the callers setting as the configuration writes it.
func (c Callers) String() string {
	if c == CallersAny {
		return "any"
	}
	return "registered"
}

// DefaultUDPKeepAlive is the registrar block's udp_keepalive when the
// configuration does not say: under the 30 to 60 seconds after which
// common NATs forget an idle UDP binding.
const DefaultUDPKeepAlive = 25 * time.Second

// Session timer defaults (RFC 4028): 30 minutes asked for, as RFC 4028
// section 4 recommends, and no less than its 90-second minimum accepted.
const (
	DefaultSessionExpires = 30 * time.Minute
	DefaultMinSE          = 90 * time.Second
)

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
	// Target is where the route sends calls: its only target, or the
	// first of Targets.
	Target Target
	// Targets, when the route lists several, are its targets in priority
	// order (Targets[0] is Target): on a timeout, a 503, a refused
	// connection or a failed TLS handshake parapet tries the next (RFC
	// 3263 section 4.3). Nil for a route with one target.
	Targets []Target
	// AttemptTimeout bounds how long parapet waits for any response from
	// one target before it tries the next; 0 is the default (4 s).
	AttemptTimeout time.Duration
	// HealthInterval is how often parapet sends OPTIONS to each of the
	// route's targets, marking them up or down; 0 sends none.
	HealthInterval time.Duration
	// Resolver is the DNS server ("host:port") that a route with Targets
	// asks for its target names (RFC 3263: NAPTR, SRV, A and AAAA); ""
	// asks the servers of /etc/resolv.conf.
	Resolver string
	// MaxCalls limits the calls the route carries at once (503 beyond);
	// 0 is no limit.
	MaxCalls int
	// Auth holds digest credentials for the target; nil when none.
	Auth *Auth
	// AuthPassthrough, for a route without Auth, relays a 401 or 407
	// challenge to the target's INVITE back to the caller, and passes the
	// caller's credentials in its next INVITE of the same Call-ID to the
	// zone that challenged (digest pass-through, as proxies do). configs
	// sets it for every route without auth unless the file turns it off;
	// a route with Auth answers challenges itself and never sets it.
	AuthPassthrough bool
	// Register, when set, makes parapet register with the carrier on the
	// route's behalf (a trunk that authenticates by registration).
	Register *Register
}

// Register is a route's registration with its carrier: parapet sends
// REGISTER to Registrar for AOR, with a Contact on its listener in the
// route's To zone, and keeps it registered.
type Register struct {
	// Registrar is where REGISTER goes; host, port and transport as a
	// route target has them (the route's target when not configured).
	Registrar Target
	// AOR is the address of record registered, as a SIP URI
	// ("sip:USER@HOST"); by default sip:USERNAME@REGISTRAR-HOST.
	AOR string
	// Expires is the registration lifetime parapet asks for (the
	// registrar's grant is honoured); 0 means 3600 s.
	Expires time.Duration
}

// AllTargets is the route's targets in priority order: Targets, or
// Target alone.
func (r *Route) AllTargets() []Target {
	if len(r.Targets) > 0 {
		return r.Targets
	}
	return []Target{r.Target}
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
// password is read from the environment variable PasswordEnv or the file
// PasswordFile (exactly one is set) when the rules are made, at start and
// at every reload; it is never stored in the config.
type Auth struct {
	// Username is the digest user name.
	Username string
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string
	// PasswordFile is the absolute path of a file holding the password
	// (its first line; readable by its owner only).
	PasswordFile string
}

// Emergency lists the numbers of the emergency services (911, 933, 112):
// a call to one of them is never refused for a call limit or for a
// compliance log or journal that cannot be written, and keeps its
// caller's callback number.
type Emergency struct {
	// Numbers are dial strings as a caller's Request-URI user carries
	// them, digits (and * or #) only, without a leading "+".
	Numbers []string
	// Services maps emergency service URNs (RFC 5031, in lower case:
	// "urn:service:sos.police") to the one of Numbers a call naming that
	// service is routed as (ServiceNumber); nil routes every service as
	// the first of Numbers.
	Services map[string]string
}

// Match reports whether user, a Request-URI user part, dials one of the
// emergency numbers: compared once its user parameters (";phone-context=")
// are cut, a leading "+" stripped and the visual separators of RFC 3966
// ("-", ".", "(", ")", " ") removed.
func (e Emergency) Match(user string) bool {
	if len(e.Numbers) == 0 {
		return false
	}
	n := DialString(user)
	for _, want := range e.Numbers {
		if n != "" && n == want {
			return true
		}
	}
	return false
}

// DialString is user as Emergency compares it: its user parameters cut,
// a leading "+" and the visual separators of RFC 3966 removed.
func DialString(user string) string {
	if i := strings.IndexByte(user, ';'); i >= 0 {
		user = user[:i]
	}
	user = strings.TrimPrefix(user, "+")
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '.', '(', ')', ' ':
			return -1
		}
		return r
	}, user)
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
