// Package compliance owns parapet's evidence: the versioned record schema,
// the append-only hash-chained log and its verifier, and the
// pseudonymisation of caller and callee identifiers.
//
// A record is not a log line. It is written once per call (and once per
// connection event), fsync'd, and chained to the record before it so that an
// edit, a removal or a reordering is caught by Verify. Records never carry key
// material or full SDP.
package compliance

import (
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// SchemaVersion is the version of the record schema written by this build.
// Version 2 added evidence fields and events and changed what some counters
// count; version 3 sums outsiders' requests in outsiders events instead of
// recording them alone (docs/records.md, Versions). Older records stay
// valid.
const SchemaVersion = 3

// Record types.
const (
	TypeCall       = "call"
	TypeConnection = "connection"
	TypeLog        = "log"
)

// Record is one line of the compliance log. Exactly one of Call, Conn or Log
// is set, matching Type. Seq, Time, Prev and Hash are filled by the Writer.
type Record struct {
	V    int       `json:"v"`
	Seq  uint64    `json:"seq"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`

	Call *Call      `json:"call,omitempty"`
	Conn *ConnEvent `json:"conn,omitempty"`
	Log  *LogEvent  `json:"log,omitempty"`

	// Prev is the hex SHA-256 of the previous line of the log (or of the
	// last line of the previous file after rotation); empty for the first
	// record ever written.
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of this line as written with Hash set to "".
	Hash string `json:"hash"`
}

// Disposition is how a call ended.
type Disposition string

// Dispositions of a call.
const (
	DispositionAnswered  Disposition = "answered"  // answered and ended normally
	DispositionRejected  Disposition = "rejected"  // refused by parapet: policy, route, malformed request
	DispositionCancelled Disposition = "cancelled" // the caller cancelled before an answer
	DispositionFailed    Disposition = "failed"    // could not be completed (callee, network, log, keying)
	DispositionTimeout   Disposition = "timeout"   // no media for media.timeout (hold_timeout on hold), or a session timer ran out
	DispositionShutdown  Disposition = "shutdown"  // ended because parapet shut down
	// DispositionUnobserved: the call was up when parapet stopped
	// uncleanly (crash, kill, power loss); its end was not observed. Written
	// at the next start from the live-call journal.
	DispositionUnobserved Disposition = "unobserved"
)

// Call is the record of one call: both legs, what each negotiated, and the
// decisions taken.
type Call struct {
	// ID is parapet's own identifier for the call (not a SIP Call-ID).
	ID     string `json:"id"`
	Route  string `json:"route,omitempty"`
	Caller string `json:"caller"` // pseudonymised unless configured otherwise
	Callee string `json:"callee"` // pseudonymised unless configured otherwise
	// Pseudonymized tells how Caller and Callee are written.
	Pseudonymized bool `json:"pseudonymized"`
	// Emergency: the call dialled the emergency services (one of the
	// configured emergency numbers, or urn:service:sos), and the call was taken as one (never refused for a call limit or an
	// unwritable log; media refusals recorded as would_reject).
	Emergency bool `json:"emergency,omitempty"`
	// EmergencyService is the emergency service URN (RFC 5031) an
	// emergency call named, in its Request-URI or To, in lower case
	// ("urn:service:sos.police"); absent when it dialled a number alone.
	EmergencyService string `json:"emergency_service,omitempty"`

	Start  time.Time  `json:"start"`
	Answer *time.Time `json:"answer,omitempty"`
	End    time.Time  `json:"end"`
	// DurationMS is the answered time, from Answer to End, in
	// milliseconds (as carriers bill); absent when the call was never
	// answered.
	DurationMS *int64 `json:"duration_ms,omitempty"`

	Disposition Disposition `json:"disposition"`
	// SIPStatus is the final status sent to the caller (200 for answered).
	SIPStatus int `json:"sip_status"`
	// EndReason says how the call ended: "bye from a", "bye from b",
	// "no media for 30s" (" (on hold)" when the hold timeout ran out),
	// "shutdown", or the failure.
	EndReason string `json:"end_reason,omitempty"`

	// PolicyHash identifies the configuration in force (sha256:...).
	PolicyHash string `json:"policy_hash"`

	Legs      []Leg             `json:"legs"`
	Decisions []policy.Decision `json:"decisions"`
	// Transfers are the REFERs (RFC 3515) the call's peers sent, in order;
	// absent when none.
	Transfers []Transfer `json:"transfers,omitempty"`
}

// Transfer is one REFER a peer of the call sent: a blind or an attended
// transfer.
type Transfer struct {
	// Time is when the REFER was refused, failed or completed.
	Time time.Time `json:"time"`
	// By is the role of the leg whose peer sent the REFER.
	By Role `json:"by"`
	// Target is the Refer-To URI's user part, pseudonymised like Callee.
	Target string `json:"target,omitempty"`
	// Kind is blind, or attended when the Refer-To carried Replaces
	// (RFC 3891), or replaced when an INVITE with Replaces took leg By's
	// place; absent when the REFER had no Refer-To that parsed.
	Kind TransferKind `json:"kind,omitempty"`
	// ReferredBy is the user part of the new leg's Referred-By (RFC 3892),
	// the REFER's or else the referrer's, pseudonymised like Caller.
	ReferredBy string `json:"referred_by,omitempty"`
	// Outcome: refused (the REFER got Status), failed (accepted, but the
	// target's final status was Status; the call went on as it was) or
	// done (the target answered: leg Leg replaced the referrer's).
	Outcome TransferOutcome `json:"outcome"`
	Status  int             `json:"sip_status"`
	// Leg is the role of the leg that replaced the referrer's (done only).
	Leg string `json:"leg,omitempty"`
}

// TransferKind is what a REFER asked for.
type TransferKind string

// Transfer kinds.
const (
	TransferBlind    TransferKind = "blind"
	TransferAttended TransferKind = "attended"
	// TransferReplaced: no REFER reached parapet; an INVITE with Replaces
	// (RFC 3891) from a peer of the zone replaced leg By.
	TransferReplaced TransferKind = "replaced"
)

// TransferOutcome is how a transfer ended.
type TransferOutcome string

// Transfer outcomes.
const (
	TransferRefused TransferOutcome = "refused"
	TransferFailed  TransferOutcome = "failed"
	TransferDone    TransferOutcome = "done"
)

// Role is which side of a call a leg is.
type Role string

// Leg roles.
const (
	RoleA Role = "a" // the inbound leg parapet answered
	RoleB Role = "b" // the outbound leg parapet originated
)

// Leg is what one leg negotiated and carried.
type Leg struct {
	Role      Role   `json:"role"`
	Zone      string `json:"zone"`
	Transport string `json:"transport"`
	Local     string `json:"local,omitempty"`
	Remote    string `json:"remote,omitempty"`
	// UserAgent is the peer's own description of its device and firmware:
	// the User-Agent header of its requests (leg a) or the Server header of
	// its responses (leg b), as free text.
	UserAgent string `json:"user_agent,omitempty"`
	// CallID is the leg's SIP Call-ID as a keyed hash (the pseudonymisation
	// key; in clear when pseudonymisation is off), so a record can be
	// matched to a carrier's CDR or a SIP capture.
	CallID string `json:"call_id,omitempty"`
	// AssertedIdentities are the P-Asserted-Identity users (RFC 3325)
	// parapet believed on leg a (from a trusted zone) or sent on leg b,
	// pseudonymised like Caller.
	AssertedIdentities []string `json:"asserted_identities,omitempty"`
	// Privacy is the Privacy header (RFC 3323) the caller sent, its known
	// values joined with ";" (leg a only).
	Privacy string `json:"privacy,omitempty"`
	// WithheldHeaders name the identity headers the caller sent that were
	// not believed (leg a: from an untrusted zone, or a
	// P-Preferred-Identity) or that were believed but not passed on (leg
	// b: toward an untrusted zone).
	WithheldHeaders []string `json:"withheld_headers,omitempty"`
	// CalleeIdentities are the P-Asserted-Identity users of the callee's
	// responses (18x, 2xx; RFC 3325 section 9.1) parapet believed on leg
	// b (from a trusted zone) or passed on to the caller on leg a (toward
	// a trusted zone), pseudonymised like Callee.
	CalleeIdentities []string `json:"callee_identities,omitempty"`
	// Trunk names the route whose registration admitted this leg (a):
	// its Request-URI carried the line token of that route's registered
	// Contact, from a source outside the zone's peers. Empty otherwise.
	Trunk string `json:"trunk,omitempty"`
	// CallerCredentials, on leg b, says parapet's INVITE carried the
	// caller's own digest credentials (Authorization or
	// Proxy-Authorization) in answer to a challenge from this zone that
	// parapet relayed to the caller (route auth_passthrough). Never their
	// values.
	CallerCredentials bool `json:"caller_credentials,omitempty"`
	// Attempts, on leg b of a route with several targets, are the INVITEs
	// parapet sent to them in order (and the targets it skipped), the
	// last being the one the other leg fields describe.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Flow names the registration flow (a registration record's
	// registration.flow) a leg toward a registered user went over: the
	// connection the user registered on; on leg a, the flow a registered
	// user's call came over (a zone whose callers must be registered).
	Flow string `json:"flow,omitempty"`

	TLS   *TLSInfo  `json:"tls,omitempty"`
	Media *LegMedia `json:"media,omitempty"`

	Controls []policy.Finding `json:"controls"`
}

// Attempt is one try of a route's target on leg b.
type Attempt struct {
	// Target is the target as the route lists it (sips:host:port).
	Target string `json:"target"`
	// Address is the IP and port the INVITE went to (where the response
	// came from, else where it was sent); absent when none was had.
	Address   string `json:"address,omitempty"`
	Transport string `json:"transport"`
	// Outcome is one of the Attempt* values.
	Outcome string `json:"outcome"`
	// Status is the final SIP status the target answered (0 for none).
	Status int `json:"status,omitempty"`
}

// Attempt outcomes.
const (
	AttemptAnswered    = "answered"     // 2xx: the call went on with this target
	AttemptRejected    = "rejected"     // a final response that ends the search (404, 486, 603...)
	AttemptUnavailable = "unavailable"  // 503: the next target was tried
	AttemptTimeout     = "timeout"      // no response within the route's attempt_timeout
	AttemptUnreachable = "unreachable"  // no connection (refused, unreachable), or it closed before a response
	AttemptTLSFailed   = "tls_failed"   // the TLS handshake failed
	AttemptAbandoned   = "abandoned"    // the call ended (caller cancelled...) while this target rang
	AttemptSkippedDown = "skipped_down" // not tried: OPTIONS pings had marked it down
	AttemptUnresolved  = "unresolved"   // the target's name resolved to no address
)

// TLSInfo is the outcome of a leg's TLS handshake.
type TLSInfo struct {
	Version     string    `json:"version"`
	CipherSuite string    `json:"cipher_suite"`
	ServerName  string    `json:"server_name,omitempty"`
	PeerCert    *CertInfo `json:"peer_cert,omitempty"`
}

// CertInfo identifies a peer certificate.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer,omitempty"`
	SANs        []string  `json:"sans,omitempty"`
	SHA256      string    `json:"sha256"`
	NotAfter    time.Time `json:"not_after"`
	Verified    bool      `json:"verified"`
	VerifyError string    `json:"verify_error,omitempty"`
	// AnchorSHA256 is the SHA-256 fingerprint of the CA certificate the
	// verified chain ended at: which of the trusted CAs vouched for the
	// peer.
	AnchorSHA256 string `json:"anchor_sha256,omitempty"`
}

// LegMedia is what a leg's media negotiated and carried, summed over its
// streams.
type LegMedia struct {
	// Profile is the transport profile of the first active stream as
	// written in the SDP (RTP/AVP, RTP/SAVP, ...).
	Profile string `json:"profile"`
	// Codec is the first media format of the answer that settled the
	// leg's first active stream, as its rtpmap names it (PCMU/8000,
	// opus/48000/2); absent until an answer came.
	Codec       string `json:"codec,omitempty"`
	KeyExchange string `json:"key_exchange"` // none | sdes | dtls
	SRTPSuite   string `json:"srtp_suite,omitempty"`
	// KeyingError is why a DTLS-SRTP handshake on the leg failed (no media
	// could then flow on it).
	KeyingError string `json:"keying_error,omitempty"`
	// DTLSRole is parapet's role in the leg's DTLS-SRTP handshake: client
	// or server. DTLSPeerCert is the SHA-256 fingerprint ("sha-256 AB:..")
	// of the certificate the peer presented, which matched the
	// a=fingerprint of its SDP unless KeyingError says otherwise.
	DTLSRole     string `json:"dtls_role,omitempty"`
	DTLSPeerCert string `json:"dtls_peer_cert,omitempty"`
	RTCPMux      bool   `json:"rtcp_mux"`
	Streams      int    `json:"streams"`

	// Counters, from parapet's point of view: "in" is what the leg's peer
	// sent to parapet, "out" what parapet sent to the peer.
	PacketsIn    uint64 `json:"packets_in"`
	PacketsOut   uint64 `json:"packets_out"`
	BytesIn      uint64 `json:"bytes_in"`
	BytesOut     uint64 `json:"bytes_out"`
	AuthFailures uint64 `json:"auth_failures"`
	Replays      uint64 `json:"replays"`
	WrongSource  uint64 `json:"wrong_source"`
	Malformed    uint64 `json:"malformed"`
	// DroppedBeforeAnswer counts packets from the peer dropped because media
	// was not negotiated yet (sent before parapet had the answer's keys).
	DroppedBeforeAnswer uint64 `json:"dropped_before_answer"`
	// Unprotected counts clear RTP/RTCP dropped on an SRTP leg, STUNPackets
	// STUN messages (dropped: no ICE), DTLSPackets DTLS records (a DTLS-SRTP
	// leg's key agreement; dropped elsewhere). Not forgeries: see
	// docs/records.md.
	Unprotected uint64 `json:"unprotected"`
	STUNPackets uint64 `json:"stun_packets"`
	DTLSPackets uint64 `json:"dtls_packets"`
}

// ConnEventKind is what happened to a connection or request.
type ConnEventKind string

// Connection events.
const (
	EventTLSRefused      ConnEventKind = "tls_refused"       // a TLS handshake on a listener failed
	EventTLSClientFailed ConnEventKind = "tls_client_failed" // parapet's own handshake toward a peer failed
	EventSourceRefused   ConnEventKind = "source_refused"    // a request from outside the zone's peers: any but INVITE, and INVITEs beyond one call record per source and interval
	EventConnectionLimit ConnEventKind = "connection_limit"  // a TCP/TLS connection closed at once: too many open
	// EventTrunkRegistration: a route's registration with its carrier
	// changed state (registered, failed, unregistered).
	EventTrunkRegistration ConnEventKind = "trunk_registration"
	// EventOutsiders sums, per zone and period, what sources outside the
	// zone's peers sent and got (Tally): one record however many they
	// were, so that strangers cannot grow the log.
	EventOutsiders ConnEventKind = "outsiders"
	// EventRegistration is a user's registration through parapet: written
	// when its binding is made and whenever its security facts change.
	EventRegistration ConnEventKind = "registration"
)

// ConnEvent records something that happened to a connection or request
// outside any call.
type ConnEvent struct {
	Event     ConnEventKind `json:"event"`
	Zone      string        `json:"zone"`
	Transport string        `json:"transport"`
	Local     string        `json:"local,omitempty"`
	Remote    string        `json:"remote"`

	// TLS handshakes: what the client offered and why it failed.
	ClientMaxVersion string    `json:"client_max_version,omitempty"`
	SNI              string    `json:"sni,omitempty"`
	Error            string    `json:"error,omitempty"`
	PeerCert         *CertInfo `json:"peer_cert,omitempty"`

	// Requests: the method refused and the status sent.
	Method    string `json:"method,omitempty"`
	SIPStatus int    `json:"sip_status,omitempty"`
	// Suppressed counts identical events folded into this one since the
	// previous record for the same remote, so a flood cannot fill the disk.
	Suppressed uint64 `json:"suppressed,omitempty"`

	Decision   *policy.Decision `json:"decision,omitempty"`
	PolicyHash string           `json:"policy_hash,omitempty"`

	// Tally is the sum an "outsiders" event stands for.
	Tally *OutsiderTally `json:"tally,omitempty"`

	// Trunk registrations: the route, its new state, the lifetime the
	// registrar granted (seconds) and the TLS the REGISTER went over.
	Route   string   `json:"route,omitempty"`
	State   string   `json:"state,omitempty"`
	Expires int      `json:"expires,omitempty"`
	TLS     *TLSInfo `json:"tls,omitempty"`

	// Registration is what a "registration" event records.
	Registration *Registration `json:"registration,omitempty"`
}

// Registration is a user's registration through parapet as the registrar
// granted it, and the security facts of the flow it came over.
type Registration struct {
	// Flow identifies the flow (zone, transport, connection) for the call
	// records of calls that went over it (Leg.Flow).
	Flow string `json:"flow"`
	// AOR is the address of record (the To URI's user@host),
	// pseudonymised like callers and callees.
	AOR string `json:"aor"`
	// Registrar is the registrar's target as configured.
	Registrar string `json:"registrar"`
	// Expires is the expiry the registrar granted, in seconds.
	Expires int `json:"expires"`
	// UserAgent is the phone's User-Agent header, as free text.
	UserAgent string `json:"user_agent,omitempty"`
	// TLS is the flow's handshake when the phone registered over TLS.
	TLS *TLSInfo `json:"tls,omitempty"`
}

// OutsiderTally sums what sources outside one zone's peers sent in one
// period and what each got. Every request and connection from them is in
// exactly one of the counts.
type OutsiderTally struct {
	// Since is when the period began; the record's time ends it.
	Since time.Time `json:"since"`
	// Refused requests got one 403, sent statelessly.
	Refused uint64 `json:"refused"`
	// Dropped requests got nothing: the zone drops outsiders.
	Dropped uint64 `json:"dropped"`
	// Scanners are requests with a scanner's signature (User-Agent or
	// From), refused or dropped as the zone's scanners setting says.
	Scanners uint64 `json:"scanners"`
	// OverBudget requests came beyond the outsider request budgets
	// (site, prefix, source) and got nothing.
	OverBudget uint64 `json:"over_budget"`
	// Connections were TCP or TLS connections closed as they were
	// accepted: the zone drops outsiders, or they were beyond the
	// outsider connection budgets.
	Connections uint64 `json:"connections"`
	// TLSRefused are TLS handshakes from outsiders that failed.
	TLSRefused uint64 `json:"tls_refused"`
	// Methods counts the requests (all of the above but connections and
	// handshakes) by SIP method; methods beyond the first 16 count as
	// "other".
	Methods map[string]uint64 `json:"methods"`
	// Prefixes and Sources are the busiest /24 (IPv4) or /64 (IPv6)
	// prefixes and addresses, most first, at most 16 each.
	Prefixes []TallyEntry `json:"prefixes"`
	Sources  []TallyEntry `json:"sources"`
}

// Total is every request and connection the tally counts.
func (t *OutsiderTally) Total() uint64 {
	return t.Refused + t.Dropped + t.Scanners + t.OverBudget + t.Connections + t.TLSRefused
}

// TallyEntry is one prefix or address of a tally and how many requests
// and connections came from it.
type TallyEntry struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// LogEventKind is an event in the log's own life.
type LogEventKind string

// Log events.
const (
	LogOpened    LogEventKind = "opened"    // the writer opened the file (process start)
	LogRecovered LogEventKind = "recovered" // the writer found and sealed a torn final line
	LogRotated   LogEventKind = "rotated"   // first record of a file that continues another
	LogReloaded  LogEventKind = "reloaded"  // a new configuration or new certificates took effect (SIGHUP); detail names both policy hashes
	// LogReloadRefused: a reload (SIGHUP) could not take effect; the policy
	// in force stays, and detail says why.
	LogReloadRefused LogEventKind = "reload_refused"
	// LogCheckpoint signs the chain up to the record before it (detail:
	// key=<KeyID> sig=<base64 Ed25519 signature>).
	LogCheckpoint LogEventKind = "checkpoint"
	LogClosed     LogEventKind = "closed" // orderly shutdown
	// LogUncleanStop opens what a start writes after a run that did not
	// stop cleanly, before LogOpened: its detail says where the previous
	// run's log ended and what the live-call journal held; the unobserved
	// call records follow it.
	LogUncleanStop LogEventKind = "unclean_stop"
)

// LogEvent records the log's own life, so that gaps are explained.
type LogEvent struct {
	Event LogEventKind `json:"event"`
	// Detail is free text, with a fixed form for "recovered", "rotated",
	// "reloaded" and "checkpoint" (see docs/records.md).
	Detail string `json:"detail,omitempty"`
	// PrevFile names the file this one continues (rotation).
	PrevFile string `json:"prev_file,omitempty"`
	// Version is the parapet version writing the log.
	Version string `json:"version,omitempty"`
	// Config names the configuration (opened, reloaded, reload_refused):
	// the absolute path of the file, or "embedded:lab.hcl".
	Config string `json:"config,omitempty"`
	// PrevPolicyHash (reloaded, reload_refused) is the policy hash in force
	// before the event; PolicyHash (opened, reloaded, reload_refused) the
	// one in force after it.
	PrevPolicyHash string `json:"prev_policy_hash,omitempty"`
	PolicyHash     string `json:"policy_hash,omitempty"`
}
