package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Stage is the point in a call at which a decision is taken.
type Stage int

const (
	// StageHandshake judges a TLS handshake on a listener.
	StageHandshake Stage = iota
	// StageAdmission judges a request's source and signaling.
	StageAdmission
	// StageOffer judges the SDP offer of an initial INVITE and plans the
	// onward leg.
	StageOffer
	// StageAnswer judges the answer to an offer parapet made.
	StageAnswer
	// StageReoffer judges an offer inside an established dialog (re-INVITE).
	StageReoffer
	// StageTransfer judges a REFER (blind transfer, RFC 3515).
	StageTransfer
)

func (s Stage) String() string {
	switch s {
	case StageHandshake:
		return "handshake"
	case StageAdmission:
		return "admission"
	case StageOffer:
		return "offer"
	case StageAnswer:
		return "answer"
	case StageReoffer:
		return "reoffer"
	case StageTransfer:
		return "transfer"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// MarshalText writes the stage by name in records.
func (s Stage) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a stage name.
func (s *Stage) UnmarshalText(b []byte) error {
	for st := StageHandshake; st <= StageTransfer; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown stage %q", b)
}

// Verdict is what a decision did.
type Verdict string

const (
	// VerdictAllowed: the leg meets policy as it is.
	VerdictAllowed Verdict = "allowed"
	// VerdictUpgraded: parapet secured the onward leg although the offering
	// leg was not (plain RTP in, SRTP out).
	VerdictUpgraded Verdict = "upgraded"
	// VerdictRejected: the request or answer was refused with Status.
	VerdictRejected Verdict = "rejected"
	// VerdictWouldReject: an observe-mode zone would have rejected; the call
	// went on.
	VerdictWouldReject Verdict = "would_reject"
)

// Rules, by name. A decision names the rule that produced it so that a
// record can be traced back to a row of the decision table.
const (
	RuleAllowed             = "allowed"
	RuleUpgrade             = "media.upgrade"
	RuleTLSVersion          = "signaling.tls-version"
	RuleHandshakeFailed     = "signaling.tls-handshake"
	RuleSourceNotAllowed    = "signaling.source-not-allowed"
	RuleTLSRequired         = "signaling.tls-required"
	RulePeerUnauthenticated = "signaling.peer-unauthenticated"
	// RuleNotRegistered: a call from a zone whose users register through
	// parapet came over no connection a user registered on, or its From
	// names no address of record registered on it (caller.go).
	RuleNotRegistered       = "signaling.not-registered"
	RuleOfferRequired       = "media.offer-required"
	RuleNoUsableStream      = "media.no-usable-stream"
	RuleSRTPRequired        = "media.srtp-required"
	RuleSRTPOff             = "media.srtp-off"
	RuleKeyExchange         = "media.key-exchange-not-allowed"
	RuleNoAcceptableCrypto  = "media.no-acceptable-crypto"
	RuleOnwardUnsecurable   = "media.onward-unsecurable"
	RuleAnswerSRTPRequired  = "media.answer-srtp-required"
	RuleAnswerNotOffered    = "media.answer-crypto-not-offered"
	RuleAnswerCrypto        = "media.answer-crypto-unacceptable"
	RuleDowngrade           = "media.downgrade"
	RuleKeyExchangeFallback = "media.key-exchange-fallback"
	RuleSDESClear           = "media.sdes-clear-signaling"
	// RuleMalformed: a request parapet cannot act on (no Contact, a body
	// that is not SDP, SDP that does not parse); b2bua decides it, with
	// the status of the fault (400, 415).
	RuleMalformed = "request.malformed"
	// RuleRouteCallLimit: the route is carrying its max_calls; b2bua
	// decides it, with 503 and Retry-After.
	RuleRouteCallLimit = "route.call-limit"
	// RuleZoneCallLimit and RuleSiteCallLimit: the caller's zone, or the
	// whole site, has its max_calls up; b2bua decides them, with 503 and
	// Retry-After.
	RuleZoneCallLimit = "zone.call-limit"
	RuleSiteCallLimit = "site.call-limit"
	// RuleEmergency: a call to an emergency number, taken in spite of
	// what would refuse another call (a call limit, an unwritable log),
	// its media refusals recorded as would_reject; b2bua decides it.
	RuleEmergency = "call.emergency"
	// RuleTransfer: a REFER from a peer of the call, accepted (allowed)
	// or refused (rejected: 403 when the zone refuses transfer or the
	// target is outside its peers, 400, 501 for Replaces; 488 when the
	// new leg's media cannot meet the zone's policy); b2bua decides it.
	RuleTransfer = "call.transfer"
)

// SIP statuses a decision can carry.
const (
	StatusForbidden         = 403
	StatusNotAcceptableHere = 488
)

// OfferPlan says how parapet offers media on a leg it originates.
type OfferPlan struct {
	// SRTP: offer RTP/SAVP with a=crypto lines (or, with DTLS,
	// UDP/TLS/RTP/SAVP with a fingerprint); the answer must be SRTP.
	SRTP bool
	// DTLS: agree the keys with DTLS-SRTP rather than SDES.
	DTLS bool
	// BestEffort: offer RTP/AVP with a=crypto lines (RFC 8643 opportunistic
	// SRTP); the answer may take SRTP or stay plain.
	BestEffort bool
	// Suites to offer, one a=crypto line each, in preference order.
	Suites []Suite
}

// Secure reports whether the plan offers keys at all.
func (p OfferPlan) Secure() bool { return p.SRTP || p.BestEffort }

// Plan decides how to offer media on a leg parapet originates into zone z
// over SIP transport t: the first of Plans. ok is false when z requires
// SRTP but no key exchange parapet implements may be used on such a leg.
func Plan(z *Zone, t Transport) (plan OfferPlan, ok bool) {
	ps := Plans(z, t)
	if len(ps) == 0 {
		return OfferPlan{}, false
	}
	return ps[0], true
}

// Plans lists the ways parapet may offer media on a leg it originates into
// zone z over SIP transport t, best first. A zone that requires SRTP gets
// one plan per key exchange it allows on such a leg (KeyExchangesOn: SDES
// only over TLS), in its order: a callee that refuses the first offer with
// 488 is offered the next. Other zones get exactly one plan. The list is
// empty when z requires SRTP but no usable key exchange or suite is left.
func Plans(z *Zone, t Transport) []OfferPlan {
	if z.SRTP == RequirementOff {
		return []OfferPlan{{}}
	}
	var suites []Suite
	for _, s := range z.Suites {
		if s.Supported() {
			suites = append(suites, s)
		}
	}
	if z.SRTP == RequirementRequire {
		var out []OfferPlan
		for _, k := range z.KeyExchangesOn(t) {
			switch {
			case len(suites) == 0:
			case k == KeyExchangeSDES:
				out = append(out, OfferPlan{SRTP: true, Suites: suites})
			case k == KeyExchangeDTLS:
				out = append(out, OfferPlan{SRTP: true, DTLS: true, Suites: suites})
			}
		}
		return out
	}
	// allow: SRTP only if the answerer takes it. Only SDES has a profile a
	// plain-RTP peer still accepts (RTP/AVP with a=crypto, RFC 8643), and
	// SDES only over TLS.
	if len(suites) > 0 && z.KeyExchangeOn(KeyExchangeSDES, t) {
		return []OfferPlan{{BestEffort: true, Suites: suites}}
	}
	return []OfferPlan{{}}
}

// NextPlan is the plan after cur in Plans(z, t), for a callee that refused
// an offer made with cur; ok is false when there is none.
func NextPlan(z *Zone, t Transport, cur OfferPlan) (next OfferPlan, ok bool) {
	ps := Plans(z, t)
	for i, p := range ps {
		if p.SRTP == cur.SRTP && p.DTLS == cur.DTLS && p.BestEffort == cur.BestEffort && i+1 < len(ps) {
			return ps[i+1], true
		}
	}
	return OfferPlan{}, false
}

// HandshakeFacts describes a TLS handshake attempt on a listener.
type HandshakeFacts struct {
	// ClientMaxVersion is the highest version the client offered.
	ClientMaxVersion TLSVersion
	// Error is the handshake error, empty when it completed.
	Error string
}

// Input is everything Evaluate needs for one decision.
type Input struct {
	Stage Stage
	// Zone is the zone of the leg being judged.
	Zone *Zone
	// Signaling describes the judged leg's SIP transport.
	Signaling SignalingFacts
	// Media is the SDP being judged (offer, answer or re-offer).
	Media MediaFacts
	// Onward is, at StageOffer, the zone of the leg parapet will originate,
	// and OnwardTransport that leg's SIP transport (SDES is offered only
	// over TLS).
	Onward          *Zone
	OnwardTransport Transport
	// Handshake is set at StageHandshake.
	Handshake HandshakeFacts
	// Admitted is, at StageAdmission, whether the source is in the zone's
	// peers; b2bua fills it with Zone.AdmitsSource.
	Admitted bool
	// Caller is, at StageAdmission of a call from a zone whose callers
	// must be registered through parapet, who the caller says it is and
	// what is registered on the connection it came over; nil when the
	// zone has no such check.
	Caller *CallerFacts
	// CurrentSRTP is, at StageReoffer, whether the leg runs SRTP now.
	CurrentSRTP bool
}

// StreamChoice is the decision for one m= line of the judged SDP.
type StreamChoice struct {
	// Active is false for a stream that is disabled or refused (port 0).
	Active bool
	// SRTP is true when the stream runs SRTP on the judged leg.
	SRTP bool
	// Crypto is the index in StreamFacts.Crypto of the line to use, or -1.
	Crypto int
	// Suite is the suite of that line.
	Suite Suite
	// DTLS is true when the stream's keys come from a DTLS-SRTP handshake
	// (SRTP is then true, and the suite is known only after it).
	DTLS bool
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Stage    Stage     `json:"stage"`
	Zone     string    `json:"zone"`
	Verdict  Verdict   `json:"verdict"`
	Rule     string    `json:"rule"`
	Status   int       `json:"sip_status,omitempty"`
	Reason   string    `json:"reason"`
	Controls []Control `json:"controls,omitempty"`

	// Streams has one entry per stream of Input.Media (offer, answer and
	// re-offer stages).
	Streams []StreamChoice `json:"-"`
	// Onward is set at StageOffer: how to offer the onward leg.
	Onward *OfferPlan `json:"-"`
}

// Proceed reports whether the call goes on after this decision.
func (d Decision) Proceed() bool { return d.Verdict != VerdictRejected }

// SRTP reports whether any active stream of the judged SDP runs SRTP.
func (d Decision) SRTP() bool {
	for _, s := range d.Streams {
		if s.Active && s.SRTP {
			return true
		}
	}
	return false
}

// Evaluate judges one stage of a call against the zone's policy. It
// implements the policy decision table (docs/records.md, Rules); see
// evaluate_test.go for the table itself.
func Evaluate(in Input) Decision {
	z := in.Zone
	switch in.Stage {
	case StageHandshake:
		return handshake(z, in.Handshake)
	case StageAdmission:
		return admission(z, in)
	case StageOffer:
		return offer(z, in)
	case StageAnswer:
		return answer(z, in)
	case StageReoffer:
		return reoffer(z, in)
	case StageTransfer:
		// b2bua decides transfers itself (RuleTransfer): nothing to judge here.
	}
	return Decision{Stage: in.Stage, Zone: z.Name, Verdict: VerdictRejected, Rule: "internal", Status: 500,
		Reason: fmt.Sprintf("unknown stage %d", int(in.Stage))}
}

func allowed(stage Stage, z *Zone, reason string) Decision {
	return Decision{Stage: stage, Zone: z.Name, Verdict: VerdictAllowed, Rule: RuleAllowed, Reason: reason}
}

// reject builds a rejection; observable rejections become would_reject in an
// observe-mode zone. Rejections that parapet cannot proceed past (no usable
// crypto, a forbidden suite) are never observable.
func reject(stage Stage, z *Zone, observable bool, rule string, status int, controls []Control, format string, args ...any) Decision {
	d := Decision{Stage: stage, Zone: z.Name, Verdict: VerdictRejected, Rule: rule, Status: status,
		Reason: fmt.Sprintf(format, args...), Controls: controls}
	if observable && z.Mode == ModeObserve {
		d.Verdict = VerdictWouldReject
	}
	return d
}

var (
	ctlTransport = []Control{ControlTransmission, ControlEncryption}
	ctlAuth      = []Control{ControlAuthentication}
	ctlMedia     = []Control{ControlTransmission, ControlEncryption, ControlTransitIntegrity}
)

func handshake(z *Zone, h HandshakeFacts) Decision {
	if h.Error == "" {
		return allowed(StageHandshake, z, "handshake completed")
	}
	if h.ClientMaxVersion != 0 && h.ClientMaxVersion < max(z.MinTLS, MinTLSFloor) {
		return reject(StageHandshake, z, false, RuleTLSVersion, 0, ctlTransport,
			"client offered at most %s; zone %q requires %s or later", h.ClientMaxVersion, z.Name, max(z.MinTLS, MinTLSFloor))
	}
	return reject(StageHandshake, z, false, RuleHandshakeFailed, 0, append(slices.Clone(ctlTransport), ControlAuthentication),
		"TLS handshake failed: %s", h.Error)
}

func admission(z *Zone, in Input) Decision {
	if !in.Admitted {
		return reject(StageAdmission, z, true, RuleSourceNotAllowed, StatusForbidden, []Control{ControlAccess},
			"source %s is not within zone %q peers", in.Signaling.Source.Addr(), z.Name)
	}
	if in.Signaling.Transport != TransportTLS {
		if z.Signaling == RequirementRequire {
			return reject(StageAdmission, z, true, RuleTLSRequired, StatusForbidden, ctlTransport,
				"zone %q requires SIP over TLS; request came over %s", z.Name, in.Signaling.Transport)
		}
		return registeredCaller(z, in.Caller, fmt.Sprintf("source admitted; SIP over %s", in.Signaling.Transport))
	}
	t := in.Signaling.TLS
	if t == nil {
		return reject(StageAdmission, z, false, RuleTLSVersion, StatusForbidden, ctlTransport,
			"TLS connection state unknown")
	}
	if t.Version < max(z.MinTLS, MinTLSFloor) {
		// The handshake refuses this already; this is defence in depth.
		return reject(StageAdmission, z, false, RuleTLSVersion, StatusForbidden, ctlTransport,
			"negotiated %s; zone %q requires %s or later", t.Version, z.Name, max(z.MinTLS, MinTLSFloor))
	}
	if z.ClientAuth == ClientAuthRequire && (t.PeerCert == nil || !t.PeerCert.Verified) {
		return reject(StageAdmission, z, false, RulePeerUnauthenticated, StatusForbidden, ctlAuth,
			"zone %q requires a verified client certificate", z.Name)
	}
	return registeredCaller(z, in.Caller, fmt.Sprintf("source admitted; SIP over %s %s", t.Version, t.CipherSuite))
}

// chooseStream decides one offered stream for a leg in zone z whose SIP
// travels over t: does it run SRTP, and with which crypto line. A non-empty
// rule means the stream cannot be accepted at all, whatever the mode.
func chooseStream(z *Zone, t Transport, s StreamFacts) (c StreamChoice, rule, reason string) {
	c = StreamChoice{Crypto: -1}
	if !s.Active() {
		return c, "", ""
	}
	if !s.RTP() {
		// Not an RTP profile parapet relays (T.38 udptl, RTP over TCP, an
		// unknown profile): refused per stream with port 0.
		return c, "", ""
	}
	c.Active = true
	// DTLS-SRTP: the UDP/TLS profiles (RFC 5764), or an SRTP offer whose
	// SDES keys parapet cannot take here (over clear signaling, say) but
	// which also carries a usable a=fingerprint: that offerer can do
	// DTLS-SRTP instead.
	sdesUsable := len(s.Crypto) > 0 && z.KeyExchangeOn(KeyExchangeSDES, t)
	dtlsInstead := s.Secure() && s.DTLS && s.DTLSProblem == "" && !sdesUsable &&
		z.KeyExchangeOn(KeyExchangeDTLS, t) && z.SRTP != RequirementOff
	if s.DTLSSRTP() || dtlsInstead {
		switch {
		case z.SRTP == RequirementOff:
			return c, RuleSRTPOff, fmt.Sprintf("zone %q has SRTP off; %s offered", z.Name, s.Proto)
		case !z.KeyExchangeOn(KeyExchangeDTLS, t):
			return c, RuleKeyExchange, fmt.Sprintf("zone %q does not allow DTLS-SRTP key exchange", z.Name)
		case s.DTLSProblem != "":
			return c, RuleNoAcceptableCrypto, "DTLS-SRTP offer unusable: " + s.DTLSProblem
		}
		c.SRTP, c.DTLS = true, true
		return c, "", ""
	}
	if s.Secure() && len(s.Crypto) == 0 {
		return c, RuleNoAcceptableCrypto, fmt.Sprintf("%s offered without a=crypto", s.Proto)
	}
	if len(s.Crypto) == 0 {
		return c, "", "" // plain RTP offered
	}
	if z.SRTP == RequirementOff {
		if s.Secure() {
			return c, RuleSRTPOff, fmt.Sprintf("zone %q has SRTP off; %s offered", z.Name, s.Proto)
		}
		return c, "", "" // best-effort crypto ignored: plain
	}
	if !z.AllowsKeyExchange(KeyExchangeSDES) {
		if s.Secure() {
			return c, RuleKeyExchange, fmt.Sprintf("zone %q does not allow SDES key exchange", z.Name)
		}
		return c, "", ""
	}
	if !SDESSafe(t) {
		// The offerer's key crossed in clear already; parapet's answer
		// would send its own key the same way. A best-effort offer
		// (RTP/AVP with a=crypto) is taken as the plain RTP it also is.
		if s.Secure() {
			return c, RuleSDESClear, fmt.Sprintf("SDES keys offered over SIP over %s, in clear: parapet takes and sends SDES keys only over TLS (offer DTLS-SRTP, or call over TLS)", t)
		}
		return c, "", ""
	}
	best := -1
	var why []string
	for i, cr := range s.Crypto {
		switch {
		case cr.Problem != "":
			why = append(why, fmt.Sprintf("tag %d: %s", cr.Tag, cr.Problem))
		case len(cr.UnsafeParams) > 0:
			why = append(why, fmt.Sprintf("tag %d: unsafe session parameter %s", cr.Tag, strings.Join(cr.UnsafeParams, " ")))
		case cr.Suite.Null():
			why = append(why, fmt.Sprintf("tag %d: %s provides no encryption", cr.Tag, cr.Suite))
		case !z.AllowsSuite(cr.Suite):
			why = append(why, fmt.Sprintf("tag %d: suite %s not allowed in zone %q", cr.Tag, cr.Suite, z.Name))
		default:
			if best < 0 || slices.Index(z.Suites, cr.Suite) < slices.Index(z.Suites, s.Crypto[best].Suite) {
				best = i
			}
		}
	}
	if best < 0 {
		if s.Secure() {
			return c, RuleNoAcceptableCrypto, "no acceptable a=crypto: " + strings.Join(why, "; ")
		}
		return c, "", "" // best-effort offer with nothing we take: plain
	}
	c.SRTP, c.Crypto, c.Suite = true, best, s.Crypto[best].Suite
	return c, "", ""
}

// judgeOffer chooses every stream of an offer for the leg in zone z whose
// SIP travels over t.
func judgeOffer(stage Stage, z *Zone, t Transport, m MediaFacts) (choices []StreamChoice, d *Decision) {
	if !m.Present || len(m.Streams) == 0 {
		r := reject(stage, z, false, RuleOfferRequired, StatusNotAcceptableHere, nil,
			"the SDP offer has no media stream")
		return nil, &r
	}
	active := 0
	for _, s := range m.Streams {
		c, rule, reason := chooseStream(z, t, s)
		if rule != "" {
			r := reject(stage, z, false, rule, StatusNotAcceptableHere, ctlMedia, "%s stream: %s", s.Media, reason)
			return nil, &r
		}
		if c.Active {
			active++
		}
		choices = append(choices, c)
	}
	if active == 0 {
		r := reject(stage, z, false, RuleNoUsableStream, StatusNotAcceptableHere, nil, "no active RTP stream offered")
		return nil, &r
	}
	return choices, nil
}

func anyPlain(cs []StreamChoice) bool {
	for _, c := range cs {
		if c.Active && !c.SRTP {
			return true
		}
	}
	return false
}

func offer(z *Zone, in Input) Decision {
	if !in.Media.Present {
		// Delayed offer (RFC 3261 section 13.2.1): the INVITE carries no
		// SDP, the callee offers in its 2xx and the caller answers in its
		// ACK. Both are judged then, each against its own zone.
		return allowed(StageOffer, z, "no offer in the INVITE (delayed offer): media is judged at the callee's offer and the caller's answer")
	}
	choices, rej := judgeOffer(StageOffer, z, in.Signaling.Transport, in.Media)
	if rej != nil {
		return *rej
	}
	var d Decision
	if anyPlain(choices) && z.SRTP == RequirementRequire {
		d = reject(StageOffer, z, true, RuleSRTPRequired, StatusNotAcceptableHere, ctlMedia,
			"zone %q requires SRTP; offer has plain RTP", z.Name)
		if !d.Proceed() {
			return d
		}
	}
	if in.Onward == nil {
		if d.Verdict == "" {
			d = allowed(StageOffer, z, "offer accepted")
		}
		d.Streams = choices
		return d
	}
	plan, ok := Plan(in.Onward, in.OnwardTransport)
	if !ok {
		od := reject(StageOffer, in.Onward, true, RuleOnwardUnsecurable, StatusNotAcceptableHere, ctlMedia,
			"zone %q requires SRTP but allows no key exchange parapet can use over SIP over %s", in.Onward.Name, in.OnwardTransport)
		if !od.Proceed() {
			return od
		}
		if d.Verdict == "" {
			d = od
		}
	}
	if d.Verdict == "" {
		switch {
		case anyPlain(choices) && plan.SRTP:
			d = Decision{Stage: StageOffer, Zone: z.Name, Verdict: VerdictUpgraded, Rule: RuleUpgrade,
				Reason:   fmt.Sprintf("plain RTP from zone %q upgraded to SRTP toward zone %q", z.Name, in.Onward.Name),
				Controls: []Control{ControlTransmission, ControlEncryption}}
		default:
			d = allowed(StageOffer, z, fmt.Sprintf("offer accepted; onward to zone %q", in.Onward.Name))
		}
	}
	d.Streams = choices
	d.Onward = &plan
	return d
}

func answer(z *Zone, in Input) Decision {
	m := in.Media
	if !m.Present || len(m.Streams) == 0 {
		return reject(StageAnswer, z, false, RuleNoUsableStream, StatusNotAcceptableHere, nil, "answer carries no SDP")
	}
	var choices []StreamChoice
	active := 0
	for _, s := range m.Streams {
		c := StreamChoice{Crypto: -1}
		if s.Active() {
			c.Active = true
			active++
			switch {
			case len(s.Crypto) > 1:
				return reject(StageAnswer, z, false, RuleAnswerCrypto, StatusNotAcceptableHere, ctlMedia,
					"%s stream: answer carries %d a=crypto lines (RFC 4568 allows one)", s.Media, len(s.Crypto))
			case len(s.Crypto) == 1:
				cr := s.Crypto[0]
				if !SDESSafe(in.Signaling.Transport) {
					return reject(StageAnswer, z, false, RuleSDESClear, StatusNotAcceptableHere, ctlMedia,
						"%s stream: answer carries SDES keys over SIP over %s, in clear: parapet takes and sends SDES keys only over TLS", s.Media, in.Signaling.Transport)
				}
				if !cr.Offered {
					return reject(StageAnswer, z, false, RuleAnswerNotOffered, StatusNotAcceptableHere, ctlMedia,
						"%s stream: answer chose tag %d %s, which parapet did not offer", s.Media, cr.Tag, cr.Suite)
				}
				if cr.Problem != "" || len(cr.UnsafeParams) > 0 || !z.AllowsSuite(cr.Suite) {
					return reject(StageAnswer, z, false, RuleAnswerCrypto, StatusNotAcceptableHere, ctlMedia,
						"%s stream: answer crypto unacceptable: %s%s", s.Media, cr.Problem, strings.Join(cr.UnsafeParams, " "))
				}
				c.SRTP, c.Crypto, c.Suite = true, 0, cr.Suite
			case s.DTLSSRTP() && s.DTLSOffered:
				if s.DTLSProblem != "" {
					return reject(StageAnswer, z, false, RuleAnswerCrypto, StatusNotAcceptableHere, ctlMedia,
						"%s stream: DTLS-SRTP answer unusable: %s", s.Media, s.DTLSProblem)
				}
				c.SRTP, c.DTLS = true, true
			case s.DTLS:
				return reject(StageAnswer, z, false, RuleKeyExchange, StatusNotAcceptableHere, ctlMedia,
					"%s stream: answer uses DTLS-SRTP, which parapet did not offer", s.Media)
			}
		}
		choices = append(choices, c)
	}
	if active == 0 {
		return reject(StageAnswer, z, false, RuleNoUsableStream, StatusNotAcceptableHere, nil, "answer refused every stream")
	}
	d := allowed(StageAnswer, z, "answer accepted")
	if anyPlain(choices) && z.SRTP == RequirementRequire {
		d = reject(StageAnswer, z, true, RuleAnswerSRTPRequired, StatusNotAcceptableHere, ctlMedia,
			"zone %q requires SRTP; answer has plain RTP", z.Name)
	}
	d.Streams = choices
	return d
}

func reoffer(z *Zone, in Input) Decision {
	choices, rej := judgeOffer(StageReoffer, z, in.Signaling.Transport, in.Media)
	if rej != nil {
		return *rej
	}
	d := allowed(StageReoffer, z, "re-offer accepted")
	if anyPlain(choices) && z.SRTP == RequirementRequire {
		rule, what := RuleSRTPRequired, "re-offer has plain RTP"
		if in.CurrentSRTP {
			rule, what = RuleDowngrade, "re-offer downgrades SRTP to plain RTP"
		}
		d = reject(StageReoffer, z, true, rule, StatusNotAcceptableHere, ctlMedia, "zone %q requires SRTP; %s", z.Name, what)
	}
	d.Streams = choices
	return d
}
