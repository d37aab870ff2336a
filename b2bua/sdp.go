package b2bua

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// SDP offer/answer on a call's legs. What each SDP says, parapet's keys and
// o= lines are media.Negotiation's, one per leg (leg.neg); this file turns
// policy's decisions into its choices and configures the relay from what it
// agreed.

// negLocked is leg l's offer/answer state, made on first use. It refuses
// to put SDES keys into an SDP that would cross in clear: whatever policy
// decided, no a=crypto key leaves parapet over UDP or TCP. Caller holds
// c.mu.
func (c *Call) negLocked(l *leg) *media.Negotiation {
	if l.neg == nil {
		cfg := media.NegotiationConfig{Addr: c.env.mediaAddr, NoSDES: !policy.SDESSafe(l.transport)}
		if c.env.dtls != nil {
			cfg.Fingerprint = c.env.dtls.Fingerprint()
		}
		l.neg = media.NewNegotiation(cfg)
	}
	return l.neg
}

// mediaFacts turns a parsed SDP into policy facts. For an answer, l is the
// leg the answer came from and Offered says whether each crypto line's tag
// and suite match a line parapet offered on that leg (RFC 4568 section 7.1.1:
// the answer must pick one of the offered lines). Caller holds c.mu when l
// is set.
func (c *Call) mediaFacts(d *media.Description, l *leg) policy.MediaFacts {
	if d == nil {
		return policy.MediaFacts{}
	}
	var n *media.Negotiation
	if l != nil {
		n = c.negLocked(l)
	}
	f := policy.MediaFacts{Present: true}
	for i, st := range d.Streams {
		sf := policy.StreamFacts{Media: st.Media, Proto: st.Proto, Port: st.Port, DTLS: st.DTLS, RTCPMux: st.RTCPMux}
		if st.DTLS {
			sf.DTLSProblem = dtlsProblem(st, l != nil)
			sf.DTLSOffered = n != nil && n.OfferedDTLS(i)
		}
		for _, cl := range st.Crypto {
			sf.Crypto = append(sf.Crypto, policy.CryptoFacts{Tag: cl.Tag, Suite: policy.Suite(cl.Suite), Problem: cl.Problem,
				UnsafeParams: cl.Unsafe, Offered: n != nil && n.Offered(i, cl.Tag, cl.Suite)})
		}
		f.Streams = append(f.Streams, sf)
	}
	return f
}

// mediaSources are the addresses leg l's peer may send a stream's plain
// RTP from before the relay latches: the address its SDP names (rtp) and
// the one its signaling comes from (a phone behind NAT sends from the
// latter).
func mediaSources(l *leg, rtp netip.AddrPort) []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{rtp.Addr().Unmap(), l.sig.Source.Addr().Unmap()} {
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// dtlsFingerprints are the stream's fingerprints with a hash parapet
// checks certificates with.
func dtlsFingerprints(st media.Stream) []media.Fingerprint {
	var out []media.Fingerprint
	for _, f := range st.Fingerprints {
		switch f.Hash {
		case "sha-256", "sha-384", "sha-512", "sha-1":
			out = append(out, f)
		}
	}
	return out
}

// dtlsProblem says why a DTLS-SRTP stream cannot be keyed, or "".
func dtlsProblem(st media.Stream, answer bool) string {
	switch {
	case len(dtlsFingerprints(st)) == 0:
		p := "no a=fingerprint with a supported hash (sha-256, sha-384, sha-512, sha-1)"
		if st.FingerprintProblem != "" {
			p += ": " + st.FingerprintProblem
		}
		return p
	case st.Setup == "holdconn":
		return "a=setup:holdconn"
	case answer && st.Setup == "actpass":
		return "a=setup:actpass in an answer (RFC 5763 section 5)"
	}
	return ""
}

// choicesLocked are policy's choices for leg l's streams as Negotiation
// takes them: a stream with no relay stream is refused. Caller holds c.mu.
func (c *Call) choicesLocked(d policy.Decision) []media.StreamChoice {
	out := make([]media.StreamChoice, len(d.Streams))
	for i, ch := range d.Streams {
		out[i] = media.StreamChoice{Active: ch.Active && i < len(c.streams) && c.streams[i] != nil, SRTP: ch.SRTP,
			Crypto: ch.Crypto, DTLS: ch.DTLS}
	}
	return out
}

// configureLocked sets the relay's side of leg l from the streams its
// Negotiation runs. Caller holds c.mu.
func (c *Call) configureLocked(l *leg) error {
	var suites []string
	for _, s := range l.pol.Suites {
		suites = append(suites, string(s))
	}
	for i, s := range c.negLocked(l).Streams() {
		if !s.Active || i >= len(c.streams) || c.streams[i] == nil {
			continue
		}
		pc := s.PeerConfig(mediaSources(l, s.RTP), suites)
		pc.NewPeer = l.newPeer
		if err := c.streams[i].Configure(l.side, pc); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	l.newPeer = false
	return nil
}

// acceptOffer applies an offer received on leg l (its peer is the offerer),
// as judged by d: the leg's streams, the keys parapet will answer with, the
// relay.
func (c *Call) acceptOffer(l *leg, offer *media.Description, d policy.Decision) error {
	if err := c.ensureStreams(d.Streams); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.negLocked(l).TakeOffer(offer, c.choicesLocked(d)); err != nil {
		return err
	}
	if err := c.configureLocked(l); err != nil {
		return err
	}
	c.updateHoldLocked()
	return nil
}

// updateHoldLocked tells the relay whether the call is on hold: a leg's
// latest SDP has no active stream that both sends and receives
// (sendonly, recvonly, inactive, or the old c=0.0.0.0 form). A held call
// may carry no media for long, so the relay waits media.hold_timeout
// rather than media.timeout before ending it. Caller holds c.mu.
func (c *Call) updateHoldLocked() {
	held := func(l *leg) bool { return l != nil && l.neg != nil && l.neg.Held() }
	if c.relay != nil {
		c.relay.SetHold(held(c.a) || held(c.b))
	}
}

// ensureStreams makes sure every active stream of an offer has a relay
// stream.
func (c *Call) ensureStreams(choices []policy.StreamChoice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ch := range choices {
		for i >= len(c.streams) {
			c.streams = append(c.streams, nil)
		}
		if ch.Active && c.streams[i] == nil {
			rs, err := c.relay.AddStream()
			if err != nil {
				return err
			}
			c.streams[i] = rs
		}
	}
	return nil
}

// takeAnswer judges an answer received on leg l and applies it.
func (c *Call) takeAnswer(l *leg, body []byte) policy.Decision {
	fail := func(format string, args ...any) policy.Decision {
		d := malformed(policy.StageAnswer, l.pol, 488, format, args...)
		c.decide(d)
		return d
	}
	desc, err := media.ParseSDP(body)
	if err != nil {
		return fail("malformed SDP in answer: %v", err)
	}
	c.mu.Lock()
	n := c.negLocked(l)
	want, cerr := n.Len(), n.CheckAnswer(desc)
	facts := c.mediaFacts(desc, l)
	c.mu.Unlock()
	switch {
	case len(desc.Streams) != want:
		// RFC 3264 section 6: the answer has exactly as many m= lines.
		return fail("answer has %d m= lines, the offer had %d", len(desc.Streams), want)
	case cerr != nil:
		return fail("%v", cerr)
	}
	d := policy.Evaluate(policy.Input{Stage: policy.StageAnswer, Zone: l.pol, Signaling: l.sig, Media: facts})
	c.decide(d)
	if !d.Proceed() {
		return d
	}
	c.mu.Lock()
	err = n.TakeAnswer(desc, c.choicesLocked(d))
	if err == nil {
		err = c.configureLocked(l)
		c.updateHoldLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return fail("%v", err)
	}
	return d
}

// offerTo builds parapet's offer on leg to, from the other leg's SDP src.
// Streams the leg already runs keep their profile and parapet's key; new
// streams follow plan. Caller holds c.mu.
func (c *Call) offerTo(to *leg, src *media.Description, plan policy.OfferPlan, choices []policy.StreamChoice) ([]byte, error) {
	locals := make([]media.Endpoint, len(src.Streams))
	for i := range locals {
		if i < len(c.streams) && c.streams[i] != nil && i < len(choices) && choices[i].Active {
			locals[i] = c.streams[i].Local(to.side, c.env.advertise)
		}
	}
	profile := media.OfferProfile{SRTP: plan.SRTP, DTLS: plan.DTLS, Feedback: media.FeedbackAsSource}
	if plan.Secure() && !plan.DTLS {
		for _, s := range plan.Suites {
			profile.Suites = append(profile.Suites, string(s))
		}
	}
	// The zone's setting: on, off, or (mirror) as the other leg's offer.
	switch plain, withF := c.rules.feedback(to.zone.name, false), c.rules.feedback(to.zone.name, true); {
	case plain && withF:
		profile.Feedback = media.FeedbackAlways
	case !plain && !withF:
		profile.Feedback = media.FeedbackNever
	}
	return c.negLocked(to).Offer(src, locals, profile)
}

// answerTo builds parapet's answer on leg to, whose peer made the offer,
// from the other leg's answer src. A stream the other leg does not run is
// answered disabled. Caller holds c.mu.
func (c *Call) answerTo(to *leg, src *media.Description) ([]byte, error) {
	from := c.negLocked(c.other(to))
	locals := make([]media.Endpoint, len(src.Streams))
	for i := range locals {
		if i < len(c.streams) && c.streams[i] != nil && from.Stream(i).Active {
			locals[i] = c.streams[i].Local(to.side, c.env.advertise)
		}
	}
	return c.negLocked(to).Answer(src, locals)
}

// abandonOffer drops parapet's offer on leg l, which its peer refused or
// never answered: the leg's streams stay as they were.
func (c *Call) abandonOffer(l *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.negLocked(l).Abandon()
}

func (c *Call) other(l *leg) *leg {
	if l == c.a {
		return c.b
	}
	return c.a
}
