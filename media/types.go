// Package media is parapet's media plane: SDP reading and writing, SDES
// (RFC 4568) key handling, UDP port allocation and the per-call SRTP
// re-encrypting relay.
//
// media knows nothing of SIP, zones or policy: keys, suites and addresses
// come in as parameters. It imports pion only. Key material never leaves this
// package in a printable form: Crypto and Keys redact themselves when
// formatted or logged.
package media

import (
	"log/slog"
	"net/netip"
)

// Crypto is one SDES a=crypto attribute (RFC 4568 section 9.1):
//
//	a=crypto:<tag> <crypto-suite> inline:<key||salt>[|lifetime][|MKI:length] [session-params]
//
// Its String and LogValue methods never print the key.
type Crypto struct {
	Tag   int
	Suite string // as written, e.g. AES_CM_128_HMAC_SHA1_80, possibly unsupported
	// Key is the master key followed by the master salt, decoded from base64.
	Key []byte
	// Lifetime is the key lifetime as written (empty when absent).
	Lifetime string
	// MKI is true when the key parameter carried an MKI; parapet refuses MKI.
	MKI bool
	// Params holds the session parameters as written (KDR=, UNENCRYPTED_SRTP, ...).
	Params []string
}

// String describes the line without its key.
func (c Crypto) String() string { return cryptoRedacted(c) }

// LogValue keeps the key out of structured logs.
func (c Crypto) LogValue() slog.Value { return slog.StringValue(cryptoRedacted(c)) }

// CryptoLine is a Crypto as found in an SDP, with the verdict on its form.
type CryptoLine struct {
	Crypto
	// Problem is non-empty when the line cannot be used whatever the policy:
	// malformed, wrong key length for its suite, MKI, several keys, KDR != 0.
	Problem string
	// Unsafe lists session parameters that weaken SRTP: UNENCRYPTED_SRTP,
	// UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP.
	Unsafe []string
}

// Fingerprint is an a=fingerprint attribute (RFC 8122 section 5): the hash
// function and the certificate's fingerprint.
type Fingerprint struct {
	Hash  string // lower case: sha-1, sha-224, sha-256, sha-384 or sha-512; ParseSDP reads and BuildSDP writes no other
	Value []byte // the fingerprint bytes (decoded from the colon-separated hex)
}

// String renders the attribute value, e.g. "sha-256 AB:CD:...:EF" (upper-case hex).
func (f Fingerprint) String() string { return fingerprintString(f) }

// Stream is one m= line of an SDP, with what parapet needs to relay it.
type Stream struct {
	Index   int    // position among the m= lines, from 0
	Media   string // audio, video, image, application ...
	Port    int    // 0: disabled or refused
	Proto   string // RTP/AVP, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP, udptl ...
	Formats []string
	// Codecs names each format as its a=rtpmap does (PCMU/8000,
	// opus/48000/2), or RFC 3551's static table for payload types without
	// one; "" for a format neither names.
	Codecs []string
	// Addr is the connection address (media-level c= or else session-level).
	Addr netip.Addr
	// RTCPPort is from a=rtcp when present, else Port+1.
	RTCPPort  int
	RTCPMux   bool
	Crypto    []CryptoLine
	DTLS      bool   // a=fingerprint at media or session level
	Direction string // sendrecv, sendonly, recvonly, inactive ("" when absent)
	// Fingerprints are the stream's a=fingerprint values: media-level ones
	// if the m= section has any a=fingerprint line, usable or not, else
	// session-level ones. Lines that do not parse are left out and described
	// in FingerprintProblem (the first reason found).
	Fingerprints       []Fingerprint
	FingerprintProblem string
	// Setup is the a=setup value (RFC 4145: active, passive, actpass,
	// holdconn), media-level else session-level, lower-cased; "" when absent.
	Setup string
}

// Description is a parsed SDP body.
type Description struct {
	// Origin is the o= line's username, session id and version, kept so an
	// unchanged re-offer can be recognised (same id and version).
	OriginUser    string
	OriginSession uint64
	OriginVersion uint64
	Streams       []Stream
	// raw is the pion description, kept for rewriting.
	raw any
}

// Endpoint is where parapet's relay receives one stream on one leg.
type Endpoint struct {
	Addr     netip.Addr
	Port     int
	RTCPPort int
}

// StreamPlan says how to write one m= line of an SDP parapet sends.
type StreamPlan struct {
	// Active false writes the m= line with port 0 (refused or disabled).
	Active bool
	// Proto to write, e.g. RTP/AVP or RTP/SAVP.
	Proto string
	// Local is parapet's relay address for this stream on this leg.
	Local Endpoint
	// RTCPMux adds a=rtcp-mux.
	RTCPMux bool
	// Crypto lines to write, with parapet's own keys.
	Crypto []Crypto
	// Direction overrides the direction attribute when non-empty.
	Direction string
	// DTLS, when set, writes a=setup and a=fingerprint for this stream
	// (parapet's own certificate), and no a=crypto lines.
	DTLS *DTLSPlan
}

// DTLSPlan is parapet's side of a DTLS-SRTP stream in an SDP it writes.
type DTLSPlan struct {
	Fingerprint Fingerprint
	Setup       string // actpass in an offer; active or passive in an answer
}

// Origin is the o= line parapet writes on a leg.
type Origin struct {
	Username string // "parapet"
	Session  uint64
	Version  uint64 // incremented for each new SDP on the leg
	Addr     netip.Addr
}
