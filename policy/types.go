// Package policy is parapet's vocabulary and judge: what a zone requires, what
// was observed on a call leg, and the decision that follows.
//
// The package is pure: no I/O, no goroutines, no logging, no clock. Every
// function is a deterministic function of its arguments, which is what lets
// the policy decision table (docs/records.md, Rules) be tested as a table. It imports nothing of
// parapet's and only the standard library.
package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Requirement is the three-state switch a zone applies to a protection
// (TLS on signaling, SRTP on media).
type Requirement int

const (
	// RequirementOff means the protection is not used on this zone's legs.
	RequirementOff Requirement = iota
	// RequirementAllow means the protection is used when the peer offers or
	// accepts it, and the leg may run without it.
	RequirementAllow
	// RequirementRequire means a leg without the protection is refused.
	RequirementRequire
)

// ParseRequirement parses "off", "allow" or "require".
func ParseRequirement(s string) (Requirement, error) {
	switch s {
	case "off":
		return RequirementOff, nil
	case "allow":
		return RequirementAllow, nil
	case "require":
		return RequirementRequire, nil
	}
	return RequirementOff, fmt.Errorf("unknown requirement %q (want off, allow or require)", s)
}

func (r Requirement) String() string {
	switch r {
	case RequirementOff:
		return "off"
	case RequirementAllow:
		return "allow"
	case RequirementRequire:
		return "require"
	}
	return fmt.Sprintf("Requirement(%d)", int(r))
}

// Mode says whether a zone's decisions are enforced or only recorded.
type Mode int

const (
	// ModeEnforce rejects what policy rejects.
	ModeEnforce Mode = iota
	// ModeObserve records "would reject" and lets the call proceed, so a
	// site can measure before it enforces. It never makes parapet itself use
	// a forbidden suite or skip a TLS floor: those are always enforced.
	ModeObserve
)

// ParseMode parses "enforce" or "observe".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "enforce":
		return ModeEnforce, nil
	case "observe":
		return ModeObserve, nil
	}
	return ModeEnforce, fmt.Errorf("unknown mode %q (want enforce or observe)", s)
}

func (m Mode) String() string {
	switch m {
	case ModeEnforce:
		return "enforce"
	case ModeObserve:
		return "observe"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Transport is a SIP transport.
type Transport int

const (
	// TransportUDP is SIP over UDP.
	TransportUDP Transport = iota
	// TransportTCP is SIP over TCP.
	TransportTCP
	// TransportTLS is SIP over TLS (over TCP).
	TransportTLS
)

// ParseTransport parses "udp", "tcp" or "tls" (any case).
func ParseTransport(s string) (Transport, error) {
	switch strings.ToLower(s) {
	case "udp":
		return TransportUDP, nil
	case "tcp":
		return TransportTCP, nil
	case "tls":
		return TransportTLS, nil
	}
	return TransportUDP, fmt.Errorf("unknown transport %q (want udp, tcp or tls)", s)
}

func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportTCP:
		return "tcp"
	case TransportTLS:
		return "tls"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// KeyExchange is how SRTP keys are agreed on a leg.
type KeyExchange int

const (
	// KeyExchangeNone means no SRTP keys were exchanged (plain RTP).
	KeyExchangeNone KeyExchange = iota
	// KeyExchangeSDES is RFC 4568 a=crypto in the SDP.
	KeyExchangeSDES
	// KeyExchangeDTLS is DTLS-SRTP (RFC 5763/5764).
	KeyExchangeDTLS
)

// ParseKeyExchange parses "sdes" or "dtls".
func ParseKeyExchange(s string) (KeyExchange, error) {
	switch s {
	case "sdes":
		return KeyExchangeSDES, nil
	case "dtls":
		return KeyExchangeDTLS, nil
	}
	return KeyExchangeNone, fmt.Errorf("unknown key exchange %q (want sdes or dtls)", s)
}

func (k KeyExchange) String() string {
	switch k {
	case KeyExchangeNone:
		return "none"
	case KeyExchangeSDES:
		return "sdes"
	case KeyExchangeDTLS:
		return "dtls"
	}
	return fmt.Sprintf("KeyExchange(%d)", int(k))
}

// Suite is an SRTP crypto suite, named as in the SDES registry (RFC 4568,
// RFC 6188, RFC 7714).
type Suite string

// The suites parapet implements. Everything else, NULL suites above all, is
// never offered and never accepted.
const (
	SuiteAESCM128HMACSHA1_80 Suite = "AES_CM_128_HMAC_SHA1_80"
	SuiteAESCM128HMACSHA1_32 Suite = "AES_CM_128_HMAC_SHA1_32"
	SuiteAEADAES128GCM       Suite = "AEAD_AES_128_GCM"
	SuiteAEADAES256GCM       Suite = "AEAD_AES_256_GCM"
)

// SupportedSuites lists every suite parapet can negotiate, strongest first.
var SupportedSuites = []Suite{
	SuiteAEADAES256GCM,
	SuiteAEADAES128GCM,
	SuiteAESCM128HMACSHA1_80,
	SuiteAESCM128HMACSHA1_32,
}

// DefaultSuites is what a zone allows when its config names no suites:
// the supported suites without the 32-bit authentication tag.
var DefaultSuites = []Suite{
	SuiteAEADAES256GCM,
	SuiteAEADAES128GCM,
	SuiteAESCM128HMACSHA1_80,
}

// ParseSuite accepts only the suites parapet implements; a NULL suite gets
// an error that says it is refused on purpose.
func ParseSuite(s string) (Suite, error) {
	su := Suite(s)
	if su.Supported() {
		return su, nil
	}
	if su.Null() {
		return "", fmt.Errorf("SRTP suite %q provides no encryption and is never allowed", s)
	}
	return "", fmt.Errorf("unsupported SRTP suite %q (supported: %s)", s, joinSuites(SupportedSuites))
}

// Supported reports whether parapet implements the suite.
func (s Suite) Supported() bool { return slices.Contains(SupportedSuites, s) }

// Null reports whether the suite leaves media unencrypted.
func (s Suite) Null() bool { return strings.HasPrefix(string(s), "NULL_") }

func joinSuites(ss []Suite) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// TLSVersion is a TLS protocol version as it appears on the wire
// (0x0303 is TLS 1.2). The values equal crypto/tls's VersionTLSxx constants.
type TLSVersion uint16

// TLS versions parapet names. Only 1.2 and 1.3 can ever be negotiated.
const (
	VersionSSL30 TLSVersion = 0x0300
	VersionTLS10 TLSVersion = 0x0301
	VersionTLS11 TLSVersion = 0x0302
	VersionTLS12 TLSVersion = 0x0303
	VersionTLS13 TLSVersion = 0x0304
)

// MinTLSFloor is the lowest TLS version any zone may accept.
const MinTLSFloor = VersionTLS12

// ParseTLSVersion parses "1.0" .. "1.3".
func ParseTLSVersion(s string) (TLSVersion, error) {
	switch strings.TrimPrefix(strings.ToLower(s), "tls") {
	case "1.0", "1":
		return VersionTLS10, nil
	case "1.1":
		return VersionTLS11, nil
	case "1.2":
		return VersionTLS12, nil
	case "1.3":
		return VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q (want 1.2 or 1.3)", s)
}

func (v TLSVersion) String() string {
	switch v {
	case 0:
		return ""
	case VersionSSL30:
		return "SSL3.0"
	case VersionTLS10:
		return "TLS1.0"
	case VersionTLS11:
		return "TLS1.1"
	case VersionTLS12:
		return "TLS1.2"
	case VersionTLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// ClientAuth says whether a zone's TLS listeners ask peers for a certificate.
type ClientAuth int

const (
	// ClientAuthNone never asks for a client certificate.
	ClientAuthNone ClientAuth = iota
	// ClientAuthRequest asks, and verifies the certificate when one is sent.
	ClientAuthRequest
	// ClientAuthRequire refuses a handshake without a verified certificate.
	ClientAuthRequire
)

// ParseClientAuth parses "none", "request" or "require".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "none":
		return ClientAuthNone, nil
	case "request":
		return ClientAuthRequest, nil
	case "require":
		return ClientAuthRequire, nil
	}
	return ClientAuthNone, fmt.Errorf("unknown client_auth %q (want none, request or require)", s)
}

func (c ClientAuth) String() string {
	switch c {
	case ClientAuthNone:
		return "none"
	case ClientAuthRequest:
		return "request"
	case ClientAuthRequire:
		return "require"
	}
	return fmt.Sprintf("ClientAuth(%d)", int(c))
}

// Zone is what policy knows of a zone: its requirements, not its sockets.
type Zone struct {
	Name string

	// Signaling is the requirement for TLS on SIP. configs derives it from
	// the listeners: require when every listener is TLS, allow when some
	// are, off when none are.
	Signaling Requirement
	// MinTLS is the lowest TLS version accepted (never below 1.2).
	MinTLS TLSVersion
	// VerifyPeer means peer certificates are verified against the zone's CA.
	VerifyPeer bool
	// ClientAuth is what TLS listeners demand of connecting peers.
	ClientAuth ClientAuth

	// SRTP is the requirement for SRTP on media.
	SRTP Requirement
	// KeyExchange lists the key exchanges allowed on this zone's legs, in
	// the order parapet offers them. Whatever it lists, SDES is used only
	// on a leg whose SIP travels over TLS (KeyExchangesOn): its keys are in
	// the SDP.
	KeyExchange []KeyExchange
	// Suites lists the SRTP suites allowed, in order of preference.
	Suites []Suite

	// Peers lists the source networks allowed to send requests into the zone.
	Peers []netip.Prefix

	// Mode is enforce or observe.
	Mode Mode
}

// AdmitsSource reports whether ip falls within the zone's peers.
func (z *Zone) AdmitsSource(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range z.Peers {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AllowsSuite reports whether the zone allows the SRTP suite.
func (z *Zone) AllowsSuite(s Suite) bool { return s.Supported() && slices.Contains(z.Suites, s) }

// AllowsKeyExchange reports whether the zone allows the key exchange on
// some leg. Whether it may be used on a given leg is KeyExchangeOn's answer.
func (z *Zone) AllowsKeyExchange(k KeyExchange) bool { return slices.Contains(z.KeyExchange, k) }

// SDESSafe reports whether SDES keys may travel over SIP transport t: only
// TLS keeps the a=crypto lines of an SDP from the wire in clear. (sipgo
// sends every request of a dialog over the transport of its INVITE, so a
// leg's transport holds for the whole call, re-offers included.)
func SDESSafe(t Transport) bool { return t == TransportTLS }

// KeyExchangeOn reports whether the zone allows key exchange k on a leg
// whose SIP travels over t: it lists k, and k is not SDES over a clear
// transport.
func (z *Zone) KeyExchangeOn(k KeyExchange, t Transport) bool {
	return z.AllowsKeyExchange(k) && (k != KeyExchangeSDES || SDESSafe(t))
}

// KeyExchangesOn lists the key exchanges the zone allows on a leg whose SIP
// travels over t, in the zone's order.
func (z *Zone) KeyExchangesOn(t Transport) []KeyExchange {
	var out []KeyExchange
	for _, k := range z.KeyExchange {
		if z.KeyExchangeOn(k, t) {
			out = append(out, k)
		}
	}
	return out
}

// CertFacts describes a peer certificate as observed in a TLS handshake.
type CertFacts struct {
	Subject  string
	Issuer   string
	SANs     []string
	SHA256   string // hex fingerprint of the DER certificate
	NotAfter time.Time
	Verified bool
	// VerifyError says why verification failed or was skipped.
	VerifyError string
	// AnchorSHA256 is the hex SHA-256 fingerprint of the trusted CA
	// certificate that anchored the verified chain; empty when the
	// certificate was not verified.
	AnchorSHA256 string
}

// TLSFacts describes a completed TLS handshake.
type TLSFacts struct {
	Version     TLSVersion
	CipherSuite string
	ServerName  string
	PeerCert    *CertFacts // nil when the peer sent no certificate
}

// SignalingFacts describes how a leg's SIP travels.
type SignalingFacts struct {
	Transport Transport
	TLS       *TLSFacts // nil unless Transport is TLS
	Source    netip.AddrPort
}

// CryptoFacts describes one a=crypto line as parapet parsed it.
type CryptoFacts struct {
	Tag   int
	Suite Suite // as written in the SDP, even if unsupported
	// Problem is non-empty when the line is unusable whatever the suite:
	// a malformed key, an MKI, a non-zero KDR, several keys.
	Problem string
	// UnsafeParams lists session parameters that weaken SRTP
	// (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP).
	UnsafeParams []string
	// Offered, in an answer, reports whether the tag and suite match a line
	// parapet offered. Ignored in offers.
	Offered bool
}

// StreamFacts describes one m= line.
type StreamFacts struct {
	Media  string // audio, video, ...
	Proto  string // RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, ...
	Port   int    // 0 means the stream is rejected or disabled
	Crypto []CryptoFacts
	DTLS   bool // a=fingerprint present
	// DTLSProblem says why a DTLS-SRTP stream cannot be keyed whatever the
	// policy (no a=fingerprint with a hash parapet supports, a=setup that
	// leaves no role for parapet); empty when it can.
	DTLSProblem string
	// DTLSOffered is, in an answer, whether parapet offered DTLS-SRTP on
	// this stream.
	DTLSOffered bool
	RTCPMux     bool
}

// DTLSSRTP reports whether the stream asks for DTLS-SRTP keying: a
// UDP/TLS/RTP/SAVP(F) profile with a fingerprint (RFC 5764 section 8).
func (s StreamFacts) DTLSSRTP() bool { return s.DTLS && strings.HasPrefix(s.Proto, "UDP/TLS/") }

// Secure reports whether the proto names an SRTP profile.
func (s StreamFacts) Secure() bool { return strings.Contains(s.Proto, "SAVP") }

// RTP reports whether the stream uses an RTP profile parapet relays over
// UDP: RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF (RFC 3551, 4585, 3711,
// 5124) or UDP/TLS/RTP/SAVP(F) (RFC 5764). Anything else — T.38's udptl,
// RTP over TCP (RFC 4571), a profile nobody registered — is declined.
func (s StreamFacts) RTP() bool {
	switch s.Proto {
	case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF":
		return true
	}
	return false
}

// Active reports whether the stream carries media.
func (s StreamFacts) Active() bool { return s.Port != 0 }

// MediaFacts describes an SDP body.
type MediaFacts struct {
	Present bool
	Streams []StreamFacts
}
