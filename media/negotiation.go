package media

// Offer/answer state of one leg of a call (RFC 3264), kept apart from SIP:
// what parapet offered and answered on the leg, the keys it uses there and
// its o= line. The SIP side decides when an offer or answer is made and
// which streams policy accepts; Negotiation decides what the SDP says.

import (
	"errors"
	"net/netip"
	"slices"
)

// ErrSDESInClear is returned by Negotiation's Offer and Answer when the SDP
// would carry a=crypto keys and the leg was configured with NoSDES (its
// signalling is not confidential, RFC 4568 section 8.3).
var ErrSDESInClear = errors.New("refusing to write SDES keys on a leg whose signalling is in clear")

// ErrStreamCount is returned when an SDP has the wrong number of m= lines
// for the exchange: an answer with other than the offer's count (RFC 3264
// section 6), or an offer with fewer than the leg's previous SDP (section 8:
// m= lines are never removed, only disabled with port 0).
var ErrStreamCount = errors.New("wrong number of m= lines")

// StreamChoice is the decision on one m= line of a peer's SDP, as the
// policy package takes it (policy.StreamChoice, field for field).
type StreamChoice struct {
	// Active is false for a stream that is disabled or refused.
	Active bool
	// SRTP is true when the stream runs SRTP with the peer.
	SRTP bool
	// Crypto is the index in Stream.Crypto of the peer's line to use, or -1.
	Crypto int
	// DTLS is true when the keys come from a DTLS-SRTP handshake.
	DTLS bool
}

// Feedback says whether parapet offers an RTCP feedback profile (RFC 4585:
// AVPF, SAVPF) on a stream the leg does not run yet.
type Feedback int

// Feedback values.
const (
	FeedbackAsSource Feedback = iota // when the source stream's profile is one
	FeedbackAlways
	FeedbackNever
)

// OfferProfile is how parapet offers a stream the leg does not run yet (a
// first offer, or a stream added by a re-offer, RFC 3264 section 8.1): the
// policy package's OfferPlan, as media needs it.
type OfferProfile struct {
	// SRTP offers RTP/SAVP (UDP/TLS/RTP/SAVP with DTLS); else RTP/AVP.
	SRTP bool
	// DTLS keys the stream with DTLS-SRTP (RFC 5763): a=setup:actpass and
	// parapet's fingerprint, no a=crypto.
	DTLS bool
	// Suites are the SDES suites to offer without DTLS, one a=crypto line
	// each with tags 1, 2, ... in this order. Empty: no keys. On RTP/AVP
	// they are best-effort SRTP (RFC 8643).
	Suites []string
	// Feedback picks the AVPF/SAVPF form of the profile.
	Feedback Feedback
}

// NegotiationConfig is what a Negotiation keeps for the life of its leg.
type NegotiationConfig struct {
	// Addr is the address of parapet's o= line (RFC 8866 section 5.2).
	Addr netip.Addr
	// Session is the o= session id; 0 picks a random one.
	Session uint64
	// Fingerprint is parapet's DTLS certificate, written on DTLS-SRTP streams.
	Fingerprint Fingerprint
	// NoSDES refuses every SDP carrying a=crypto keys (ErrSDESInClear):
	// set it when the leg's signalling is not TLS.
	NoSDES bool
}

// StreamState is what one stream of a leg runs: where the peer receives,
// the keys each way, or the DTLS-SRTP role. The Crypto pointers are
// Negotiation's own: read them, never change them.
type StreamState struct {
	Active bool
	Proto  string
	Mux    bool // RTCP on the RTP port (RFC 5761)
	// RTP and RTCP are where the peer receives: zero when the stream is
	// disabled, the unspecified address when the peer holds with
	// c=0.0.0.0 (the relay sends nothing there).
	RTP, RTCP netip.AddrPort
	// Ours is parapet's SDES key toward the peer, Theirs the peer's.
	Ours, Theirs *Crypto
	// DTLS is set when the keys come from a handshake on this leg; Setup is
	// parapet's role in it (active or passive, RFC 4145) and Fingerprints
	// the peer's certificate fingerprints.
	DTLS         bool
	Setup        string
	Fingerprints []Fingerprint

	offered     []Crypto // parapet's a=crypto lines in its last offer
	offeredDTLS bool     // parapet's last offer keyed the stream by DTLS-SRTP
}

// PeerConfig is the relay configuration for the stream's side facing this
// leg's peer. sources are the addresses a plain-RTP peer may send from;
// suites the SRTP suites a DTLS-SRTP handshake may agree.
func (s StreamState) PeerConfig(sources []netip.Addr, suites []string) PeerConfig {
	pc := PeerConfig{RTP: s.RTP, RTCP: s.RTCP, Mux: s.Mux}
	if s.DTLS {
		pc.DTLS = &DTLSParams{Client: s.Setup == setupActive, Fingerprints: cloneFingerprints(s.Fingerprints),
			Suites: slices.Clone(suites)}
		return pc
	}
	pc.In, pc.Out, pc.Sources = s.Theirs, s.Ours, sources
	return pc
}

// Negotiation is parapet's side of the offer/answer exchange with one
// peer, one per leg of a call (RFC 3264). It keeps the leg's o= line (one
// session id, the version raised by one for each SDP that differs from the
// one before, section 8), the m= lines in force (count and order kept; a
// disabled stream stays as port 0), parapet's SDES keys per stream (kept
// across re-offers while the peer keeps its line, RFC 4568 section 7.1.4)
// and the DTLS-SRTP roles.
//
// One exchange: Offer then TakeAnswer when parapet offers; TakeOffer then
// Answer (or Decline) when the peer offers. An offer parapet made becomes
// the leg's state only with its answer: an offer refused or never answered
// leaves the session as it was (section 8). A Negotiation is not safe for
// concurrent use.
type Negotiation struct {
	cfg          NegotiationConfig
	origin       Origin
	local        []byte        // parapet's latest SDP on the leg
	remote       *Description  // the peer's latest SDP
	remoteAnswer bool          // remote answers parapet's offer
	streams      []StreamState // in force
	// offer is parapet's latest offer on the leg, until the peer offers:
	// answers apply to it, a preliminary one (in an unreliable 183, RFC
	// 3261 section 13.2.1) and then the final one. answered is set once
	// one did.
	offer    []StreamState
	answered bool
}

// NewNegotiation returns the state of a leg on which no SDP was exchanged.
func NewNegotiation(cfg NegotiationConfig) *Negotiation {
	cfg.Fingerprint = Fingerprint{Hash: cfg.Fingerprint.Hash, Value: slices.Clone(cfg.Fingerprint.Value)}
	return &Negotiation{cfg: cfg}
}

// Origin is the o= line of parapet's latest SDP on the leg (zero before).
func (n *Negotiation) Origin() Origin { return n.origin }

// Local is parapet's latest SDP on the leg (nil before), to send again
// when nothing changed: an offerless re-INVITE, a re-sent offer.
func (n *Negotiation) Local() []byte { return slices.Clone(n.local) }

// Remote is the peer's latest SDP, offer or answer (nil before).
func (n *Negotiation) Remote() *Description { return n.remote }

// RemoteIsAnswer reports whether Remote answers an offer parapet made.
func (n *Negotiation) RemoteIsAnswer() bool { return n.remoteAnswer }

// Len is the number of m= lines on the leg: those of parapet's offer
// while it awaits its answer, else the session's.
func (n *Negotiation) Len() int { return len(n.view()) }

// Stream is what stream i runs on the leg (the zero StreamState when i is
// out of range).
func (n *Negotiation) Stream(i int) StreamState {
	if i < 0 || i >= len(n.streams) {
		return StreamState{}
	}
	return n.streams[i]
}

// Streams are the streams in force on the leg, one per m= line, for
// records and the relay (copies; the Crypto pointers are shared).
func (n *Negotiation) Streams() []StreamState { return slices.Clone(n.streams) }

// Offered reports whether parapet's latest offer on the leg had, on stream
// i, an a=crypto line with this tag and suite (RFC 4568 section 7.1.1: the
// answer picks one of them).
func (n *Negotiation) Offered(i, tag int, suite string) bool {
	v := n.view()
	if i < 0 || i >= len(v) {
		return false
	}
	return slices.ContainsFunc(v[i].offered, func(c Crypto) bool { return c.Tag == tag && c.Suite == suite })
}

// OfferedDTLS reports whether parapet's latest offer keyed stream i with
// DTLS-SRTP.
func (n *Negotiation) OfferedDTLS(i int) bool {
	v := n.view()
	return i >= 0 && i < len(v) && v[i].offeredDTLS
}

// SRTP reports whether any active stream runs SRTP (SDES or DTLS) now.
func (n *Negotiation) SRTP() bool {
	return slices.ContainsFunc(n.streams, func(s StreamState) bool { return s.Active && (s.Ours != nil || s.DTLS) })
}

// SameOffer reports whether offer repeats the peer's latest SDP: the same
// o= session id and version, which RFC 3264 section 8 allows only for an
// identical SDP. The answer is then parapet's latest, unchanged.
func (n *Negotiation) SameOffer(offer *Description) bool {
	p := n.remote
	return p != nil && offer != nil && offer.OriginSession == p.OriginSession && offer.OriginVersion == p.OriginVersion
}

// Held reports whether the peer holds the call: its latest SDP has an
// active stream and none that both sends and receives (sendonly, recvonly,
// inactive, or RFC 2543's c=0.0.0.0; RFC 3264 section 8.4).
func (n *Negotiation) Held() bool {
	if n.remote == nil {
		return false
	}
	some := false
	for i, st := range n.remote.Streams {
		if i >= len(n.streams) || !n.streams[i].Active {
			continue
		}
		some = true
		if (st.Direction == "" || st.Direction == dirSendRecv) && !st.Addr.IsUnspecified() {
			return false
		}
	}
	return some
}

// Reset forgets the streams and SDPs of the leg, keeping its o= line: the
// leg's next SDP goes on from the same session and version.
func (n *Negotiation) Reset() {
	n.local, n.remote, n.remoteAnswer, n.streams, n.offer, n.answered = nil, nil, false, nil, nil, false
}

// Abandon drops parapet's offer awaiting its answer: the peer refused it
// or never answered, and the session stays as it was before it (RFC 3264
// section 8). Origin and Local still describe the offer, the latest SDP
// sent. Once an answer was taken, Abandon only stops further answers.
func (n *Negotiation) Abandon() { n.offer, n.answered = nil, false }

// view is the streams parapet's latest SDP describes: its offer awaiting
// its answer, else those in force.
func (n *Negotiation) view() []StreamState {
	if n.offer != nil && !n.answered {
		return n.offer
	}
	return n.streams
}
