// Package report turns compliance records into the auditor's pack: what
// was negotiated on the legs of a period's calls, what was refused and why,
// the peers that still put calls in clear (the legacy inventory), and each
// HIPAA control's status with the evidence behind it. A Report is built by
// streaming records through a Builder (memory stays flat however long the
// log) and rendered as text, JSON, HTML or PDF.
//
// The JSON form is the Report struct as it stands: field names and meanings
// are stable within a report_version, and schema.json describes them.
package report

import "time"

// Version is the version of the report's JSON form. It changes when a field
// is removed or changes meaning; new fields may appear within a version.
const Version = 1

// Kinds of report.
const (
	KindLog     = "log"     // built from compliance logs
	KindCapture = "capture" // built from packet captures or SIP traces (parapet audit)
)

// Control statuses, as a report judges them over a period.
const (
	StatusSatisfied      = "satisfied"       // the evidence shows the control met
	StatusNeedsAttention = "needs_attention" // the evidence shows a gap: see Evidence
	StatusNotApplicable  = "not_applicable"  // nothing in the period bears on it
)

// Report is the auditor's pack for one period.
type Report struct {
	ReportVersion int       `json:"report_version"`
	Kind          string    `json:"kind"`
	Generated     time.Time `json:"generated"`
	Generator     string    `json:"generator"` // "parapet <version>"
	Period        Period    `json:"period"`

	// Sources has one entry per chain of log files (one per parapet
	// instance) or per capture, each verified on its own.
	Sources []Source `json:"sources"`

	Calls      CallStats  `json:"calls"`
	Legs       LegStats   `json:"legs"`
	Negotiated Negotiated `json:"negotiated"`
	Certs      []Cert     `json:"certificates"`
	// CertsOmitted counts certificates beyond the report's limit (those
	// expiring last); past ten times the limit, further certificates are
	// not tracked and each sighting counts here instead.
	CertsOmitted int          `json:"certificates_omitted"`
	Decisions    Decisions    `json:"decisions"`
	Connections  []EventCount `json:"connection_events"`
	Attacks      MediaAttacks `json:"media_attacks"`

	// Controls has one entry per control of the catalogue, in its order.
	Controls []ControlResult `json:"controls"`

	// Inventory is the upgrade-or-replace list, worst first.
	Inventory Inventory `json:"inventory"`

	// Capture is what an audit saw on the wire (captures only).
	Capture *Capture `json:"capture,omitempty"`
}

// Period is the time range a report covers.
type Period struct {
	// Since and Until are the bounds asked for (absent: open).
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	// First and Last are the times of the first and last record counted
	// (absent when no record fell in the period).
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
}

// Source is one chain of log files (an instance) or one capture.
type Source struct {
	// Name labels the source: the last file of a chain, or a capture's path.
	Name  string   `json:"name"`
	Files []string `json:"files"`
	// Records counts the source's records in the period; Calls its call
	// records among them.
	Records int `json:"records"`
	Calls   int `json:"calls"`

	// Verification is the outcome of walking the chain (logs only).
	Verification *Verification `json:"verification,omitempty"`
	// SHA256 is the hex SHA-256 of a capture file (captures only), so the
	// report can be tied to the capture it was built from.
	SHA256 string `json:"sha256,omitempty"`
	// Notes say what could not be read (a truncated capture, say).
	Notes []string `json:"notes,omitempty"`
}

// Signature check outcomes.
const (
	SignaturesVerified   = "verified"    // checkpoints verified with the given key and cover the log
	SignaturesNotChecked = "not_checked" // no key given for this chain
	SignaturesFailed     = "failed"      // a checkpoint did not verify, or records are left unsigned
	SignaturesNone       = "none"        // a key was given but the chain holds no checkpoint
)

// Verification is what verify found on one chain. It covers the whole
// chain, not only the period: tampering anywhere puts every record in doubt.
type Verification struct {
	Intact bool `json:"intact"`
	// Problem is the first tampering found ("file:line: kind: message").
	Problem     string `json:"problem,omitempty"`
	ProblemKind string `json:"problem_kind,omitempty"`
	// Records counts the valid records walked (up to Problem).
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// LastHash is the hash of the last record verified: a report is tied to
	// its log by it (docs/reports.md). For a chain that failed, it is the
	// last record before the problem, as parapet verify counts them.
	LastHash    string `json:"last_hash"`
	HeadChecked bool   `json:"head_checked"`
	// ContinuesFrom names the file the chain continues when it was not given.
	ContinuesFrom string `json:"continues_from,omitempty"`

	Signatures      string `json:"signatures"`
	KeyID           string `json:"key_id,omitempty"`
	Checkpoints     int    `json:"checkpoints"`
	SignedSeq       uint64 `json:"signed_seq,omitempty"`
	UnsignedRecords int    `json:"unsigned_records"`

	// Truncated is a torn last line (a crash mid-write, not tampering).
	Truncated string `json:"truncated,omitempty"`
	// Recovered counts torn lines sealed after a crash.
	Recovered int `json:"recovered"`
	// UncleanStops counts unclean_stop events (runs that ended without
	// closing the log) and Unobserved the calls whose end they lost.
	UncleanStops int `json:"unclean_stops"`
	Unobserved   int `json:"unobserved_calls"`
	// Starts counts opened events; Reloads reloaded events; ReloadsRefused
	// reload_refused events.
	Starts         int `json:"starts"`
	Reloads        int `json:"reloads"`
	ReloadsRefused int `json:"reloads_refused"`
	// PolicyHashes lists the policy hashes in force over the period, in order
	// of first appearance.
	PolicyHashes []string `json:"policy_hashes"`
}

// Count is a named count.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// CallStats counts the period's calls.
type CallStats struct {
	Total         int         `json:"total"`
	ByDisposition []Count     `json:"by_disposition"`
	ByZone        []ZoneCalls `json:"by_zone"`
}

// ZoneCalls counts the calls with a leg in one zone.
type ZoneCalls struct {
	Zone          string  `json:"zone"`
	Calls         int     `json:"calls"`
	ByDisposition []Count `json:"by_disposition"`
}

// LegStats measures the protection of the legs that carried signaling.
type LegStats struct {
	// External counts legs in zones whose policy requires protection
	// (docs/reports.md says how a zone is judged external); TLS12 those of
	// them with SIP over TLS 1.2 or later, SRTP those whose media ran SRTP
	// (of ExternalWithMedia, the legs that carried media), Both those
	// fully protected: SIP over TLS 1.2 or later and, when they carried
	// media, SRTP (of External).
	External          int `json:"external"`
	TLS12             int `json:"external_tls12"`
	ExternalWithMedia int `json:"external_with_media"`
	SRTP              int `json:"external_srtp"`
	Both              int `json:"external_tls12_and_srtp"`
	// ByZone has the same counts per zone, for every zone.
	ByZone []ZoneLegs `json:"by_zone"`
}

// ZoneLegs is LegStats for one zone.
type ZoneLegs struct {
	Zone      string `json:"zone"`
	External  bool   `json:"external"`
	Legs      int    `json:"legs"`
	TLS12     int    `json:"tls12"`
	WithMedia int    `json:"with_media"`
	SRTP      int    `json:"srtp"`
}

// Negotiated counts what the legs negotiated, most frequent first.
type Negotiated struct {
	Transports   []Count `json:"transports"`
	TLSVersions  []Count `json:"tls_versions"`
	CipherSuites []Count `json:"cipher_suites"`
	Profiles     []Count `json:"media_profiles"`
	SRTPSuites   []Count `json:"srtp_suites"`
	KeyExchanges []Count `json:"key_exchanges"`
	Codecs       []Count `json:"codecs"`
}

// Cert is a peer certificate seen on a leg or in a handshake.
type Cert struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer,omitempty"`
	SHA256   string    `json:"sha256"`
	NotAfter time.Time `json:"not_after"`
	// DaysToExpiry counts from the report's generation (negative: expired).
	DaysToExpiry int       `json:"days_to_expiry"`
	Verified     bool      `json:"verified"`
	VerifyError  string    `json:"verify_error,omitempty"`
	Zones        []string  `json:"zones"`
	Seen         int       `json:"seen"`
	LastSeen     time.Time `json:"last_seen"`
}

// Decisions groups the period's policy decisions that were not plain
// allows.
type Decisions struct {
	Rejected    []RuleCount `json:"rejected"`
	Upgraded    []RuleCount `json:"upgraded"`
	WouldReject []RuleCount `json:"would_reject"`
	// Downgrades are re-offers refused for lowering protection (rule
	// media.downgrade), also counted in Rejected or WouldReject.
	Downgrades int `json:"downgrade_attempts"`
}

// RuleCount counts the decisions of one rule, with a few examples.
type RuleCount struct {
	Rule  string `json:"rule"`
	Count int    `json:"count"`
	// Status is the SIP status the rule answers with: sent for a
	// rejection, only what enforcing would send for a would_reject.
	Status   int       `json:"sip_status,omitempty"`
	Controls []string  `json:"controls,omitempty"`
	Examples []Example `json:"examples"`
}

// Example is one pseudonymised instance of a decision or event: enough to
// find the record (seq, time, hashed Call-ID), never a number in clear
// unless the log holds it in clear.
type Example struct {
	Source string    `json:"source"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Zone   string    `json:"zone,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Caller string    `json:"caller,omitempty"`
	Callee string    `json:"callee,omitempty"`
	CallID string    `json:"call_id,omitempty"`
	Reason string    `json:"reason"`
}

// EventCount counts connection events of one kind.
type EventCount struct {
	Event string `json:"event"`
	Count int    `json:"count"`
	// Folded counts further identical events folded into these records
	// (the records' suppressed counters).
	Folded   uint64    `json:"folded"`
	Examples []Example `json:"examples"`
}

// MediaAttacks sums the media packets parapet dropped as forged, replayed or
// from the wrong source.
type MediaAttacks struct {
	AuthFailures uint64 `json:"auth_failures"`
	Replays      uint64 `json:"replays"`
	WrongSource  uint64 `json:"wrong_source"`
	Unprotected  uint64 `json:"unprotected"`
	// Calls counts calls with any of these; Examples names a few.
	Calls    int       `json:"calls"`
	Examples []Example `json:"examples"`
}

// ControlResult is one control's status over the period.
type ControlResult struct {
	ID     string `json:"id"` // "164.312(e)(1)"
	Title  string `json:"title"`
	Status string `json:"status"`
	// Requirement is what the regulation asks, and Basis what parapet
	// takes as evidence for it and how the status is judged (from the
	// control catalogue, compliance.Catalogue).
	Requirement string `json:"requirement"`
	Basis       string `json:"basis"`
	// Summary says in a sentence why the status is what it is.
	Summary string `json:"summary"`
	// Evidence lists the facts behind the status.
	Evidence []string `json:"evidence"`
	// Findings counts the per-leg findings recorded for the control, by
	// status (satisfied, violated, not_required, not_applicable).
	Findings []Count `json:"findings"`
	// References are the regulation and technical standards behind it.
	References []Reference `json:"references"`
}

// Reference is a regulation or standard a control's expectation rests on.
type Reference struct {
	ID    string `json:"id"`    // "RFC 8996"
	Title string `json:"title"` // "Deprecating TLS 1.0 and TLS 1.1"
}

// Inventory is the legacy inventory.
type Inventory struct {
	Peers []Peer `json:"peers"`
	// Omitted counts peers beyond the report's limit (the least severe and
	// least seen); past ten times the limit, further peers are no longer
	// tracked and each of their records counts here instead.
	Omitted int `json:"omitted"`
}

// Weaknesses a peer showed.
const (
	WeakTLSVersion = "tls_below_1_2"   // offered TLS below 1.2
	WeakNoTLS      = "no_tls"          // SIP without TLS where the zone requires TLS
	WeakPlainRTP   = "plain_rtp"       // offered or answered plain RTP
	WeakSuite      = "weak_suite"      // offered or used a weak or 32-bit-tag SRTP suite
	WeakNoCert     = "no_certificate"  // presented no certificate where one was asked
	WeakBadCert    = "bad_certificate" // presented a certificate that did not verify
)

// Peer is one device or trunk of the inventory: an address and the device
// name it gave (several phones behind one NAT address are apart).
type Peer struct {
	// Address is the peer's IP address (no port: phones change ports).
	Address     string   `json:"address"`
	Zones       []string `json:"zones"`
	CertSubject string   `json:"cert_subject,omitempty"`
	// UserAgent is the device and firmware as the peer names itself
	// (User-Agent or Server header).
	UserAgent string    `json:"user_agent,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Seen      int       `json:"seen"`
	Issues    []Issue   `json:"issues"`
	// Action says what to do about the peer, worst issue first.
	Action string `json:"action"`
}

// Issue is one weakness of a peer.
type Issue struct {
	Kind string `json:"kind"`
	// Offered says exactly what the peer offered ("at most TLS 1.1",
	// "RTP/AVP", "AES_CM_128_HMAC_SHA1_32").
	Offered string `json:"offered"`
	Count   int    `json:"count"`
	// Refused counts how often parapet refused it (the rest went through:
	// an allow zone, an upgrade or observe mode); always 0 in a capture's
	// report, where nothing was refused.
	Refused int `json:"refused"`
}

// Capture is what parapet audit reconstructed from packet captures or SIP
// traces, beyond the legs it judged (which are counted like calls).
type Capture struct {
	// Packets counts the packets read; Undecoded those that were not
	// Ethernet/Linux-cooked/raw IP carrying UDP or TCP.
	Packets   uint64 `json:"packets"`
	Undecoded uint64 `json:"undecoded"`
	// Dialogs counts SIP dialogs (Call-IDs with an INVITE) seen in clear.
	Dialogs int `json:"dialogs"`
	// Handshakes lists TLS handshakes, on any port.
	Handshakes []Handshake `json:"tls_handshakes"`
	// Flows lists the media flows: one per direction of a UDP 5-tuple that
	// carried RTP or SRTP.
	Flows []Flow `json:"media_flows"`
	// Omitted counts handshakes and flows beyond the report's limit.
	Omitted int `json:"omitted"`
}

// Handshake is one TLS handshake seen in a capture.
type Handshake struct {
	Client string `json:"client"` // ip:port
	Server string `json:"server"` // ip:port
	// ClientMaxVersion is the highest version the ClientHello offered;
	// Version the version the ServerHello chose ("" if none was seen).
	ClientMaxVersion string `json:"client_max_version"`
	Version          string `json:"version,omitempty"`
	CipherSuite      string `json:"cipher_suite,omitempty"`
	SNI              string `json:"sni,omitempty"`
	// Certs are the server's certificates when the handshake shows them
	// (TLS 1.2 and earlier; TLS 1.3 encrypts them).
	Certs []Cert `json:"certificates,omitempty"`
	// Alert names a fatal alert seen in clear before the handshake ended.
	Alert string `json:"alert,omitempty"`
}

// Media flow classifications.
const (
	FlowRTP     = "rtp"     // RTP in clear
	FlowSRTP    = "srtp"    // SRTP: encrypted payload and an authentication tag
	FlowUnknown = "unknown" // too few packets to tell
)

// Flow is one direction of a media flow seen in a capture.
type Flow struct {
	Src string `json:"src"` // ip:port
	Dst string `json:"dst"` // ip:port
	// Class is what the packets are; By says how it was told: "sdp" when
	// a clear SDP offer or answer named the flow's address and profile,
	// "packets" when only the packets themselves were examined.
	Class string `json:"class"`
	By    string `json:"by"`
	// PacketClass is what the packets alone say (rtp, srtp or unknown),
	// whatever By: an SDP that names SRTP over a flow whose payloads repeat
	// shows here as "rtp".
	PacketClass string `json:"packet_class"`
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	// SSRC and PayloadType of the first packet; CallID the hashed Call-ID
	// of the dialog whose SDP named the flow, when one did.
	SSRC        uint32 `json:"ssrc"`
	PayloadType uint8  `json:"payload_type"`
	CallID      string `json:"call_id,omitempty"`
}
