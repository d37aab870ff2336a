package b2bua

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// mediaFacts turns a parsed SDP into policy facts. For an answer, l is the
// leg the answer came from and Offered says whether each crypto line's tag
// and suite match a line parapet offered on that leg (RFC 4568 section 7.1.1:
// the answer must pick one of the offered lines).
func mediaFacts(d *media.Description, l *leg) policy.MediaFacts {
	if d == nil {
		return policy.MediaFacts{}
	}
	f := policy.MediaFacts{Present: true}
	for i, st := range d.Streams {
		sf := policy.StreamFacts{Media: st.Media, Proto: st.Proto, Port: st.Port, DTLS: st.DTLS, RTCPMux: st.RTCPMux}
		if st.DTLS {
			sf.DTLSProblem = dtlsProblem(st, l != nil)
			if l != nil && i < len(l.m.streams) {
				sf.DTLSOffered = l.m.streams[i].offeredDTLS
			}
		}
		for _, cl := range st.Crypto {
			cf := policy.CryptoFacts{Tag: cl.Tag, Suite: policy.Suite(cl.Suite), Problem: cl.Problem,
				UnsafeParams: cl.Unsafe}
			if l != nil && i < len(l.m.streams) {
				for _, o := range l.m.streams[i].offered {
					if o.Tag == cl.Tag && o.Suite == cl.Suite {
						cf.Offered = true
					}
				}
			}
			sf.Crypto = append(sf.Crypto, cf)
		}
		f.Streams = append(f.Streams, sf)
	}
	return f
}

// mediaSources are the addresses leg l's peer may send a stream's plain
// RTP from before the relay latches: the address its SDP names and the one
// its signaling comes from (a phone behind NAT sends from the latter).
func mediaSources(l *leg, ls *legStream) []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{ls.rtp.Addr().Unmap(), l.sig.Source.Addr().Unmap()} {
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

// keyByDTLS makes stream i of leg l, whose peer described it as st (an
// offer or an answer), a DTLS-SRTP stream. parapet's role is the opposite
// of the peer's: passive (it waits for the peer's handshake) unless the
// peer said passive. So as answerer to actpass parapet is passive, and
// after offering actpass it takes what the answer leaves (RFC 5763 section
// 5). Caller holds c.mu; the stream's addresses are set.
func (c *Call) keyByDTLS(l *leg, i int, st media.Stream) error {
	ls := &l.m.streams[i]
	ls.dtls, ls.theirs, ls.ours = true, nil, nil
	ls.setup = "passive"
	if st.Setup == "passive" {
		ls.setup = "active"
	}
	p := &media.DTLSParams{Client: ls.setup == "active", Fingerprints: dtlsFingerprints(st)}
	for _, s := range l.pol.Suites {
		p.Suites = append(p.Suites, string(s))
	}
	return c.streams[i].Configure(l.side, media.PeerConfig{RTP: ls.rtp, RTCP: ls.rtcp, Mux: ls.mux, DTLS: p})
}

func peerAddrs(st media.Stream, mux bool) (rtp, rtcp netip.AddrPort) {
	if st.Port == 0 || !st.Addr.IsValid() {
		return netip.AddrPort{}, netip.AddrPort{}
	}
	addr := st.Addr.Unmap()
	rtp = netip.AddrPortFrom(addr, uint16(st.Port))
	rtcp = netip.AddrPortFrom(addr, uint16(st.RTCPPort))
	if mux || st.RTCPPort == 0 {
		rtcp = rtp
	}
	return rtp, rtcp
}

// acceptOffer applies an offer received on leg l (its peer is the offerer),
// as judged by d: the leg's streams, the keys parapet will answer with, the
// relay. A key parapet already uses on a stream is kept when the peer keeps
// the same tag and suite, so a re-offer does not reset SRTP state.
func (c *Call) acceptOffer(l *leg, offer *media.Description, d policy.Decision) error {
	if err := c.ensureStreams(d.Streams); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, st := range offer.Streams {
		ch := d.Streams[i]
		ls := &l.m.streams[i]
		if !ch.Active || c.streams[i] == nil {
			ls.active = false
			continue
		}
		ls.active, ls.proto, ls.mux = true, st.Proto, st.RTCPMux
		ls.rtp, ls.rtcp = peerAddrs(st, st.RTCPMux)
		if ch.DTLS {
			if err := c.keyByDTLS(l, i, st); err != nil {
				return fmt.Errorf("stream %d: %w", i, err)
			}
			continue
		}
		ls.dtls = false
		if ch.SRTP {
			theirs := st.Crypto[ch.Crypto].Crypto
			ls.theirs = &theirs
			if ls.ours == nil || ls.ours.Tag != theirs.Tag || ls.ours.Suite != theirs.Suite {
				ours, err := media.NewCrypto(theirs.Tag, theirs.Suite)
				if err != nil {
					return err
				}
				ls.ours = &ours
			}
		} else {
			ls.theirs, ls.ours = nil, nil
		}
		if err := c.streams[i].Configure(l.side, media.PeerConfig{RTP: ls.rtp, RTCP: ls.rtcp, Mux: ls.mux,
			In: ls.theirs, Out: ls.ours, Sources: mediaSources(l, ls)}); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	l.m.remote, l.m.answer = offer, false
	c.updateHoldLocked()
	return nil
}

// updateHoldLocked tells the relay whether the call is on hold: a leg's
// latest SDP has no active stream that both sends and receives
// (sendonly, recvonly, inactive, or the old c=0.0.0.0 form). A held call
// may carry no media for long, so the relay waits media.hold_timeout
// rather than media.timeout before ending it. Caller holds c.mu.
func (c *Call) updateHoldLocked() {
	held := func(l *leg) bool {
		if l == nil || l.m.remote == nil {
			return false
		}
		some := false
		for i, st := range l.m.remote.Streams {
			if i >= len(l.m.streams) || !l.m.streams[i].active {
				continue
			}
			some = true
			if (st.Direction == "" || st.Direction == "sendrecv") && !st.Addr.IsUnspecified() {
				return false
			}
		}
		return some
	}
	if c.relay != nil {
		c.relay.SetHold(held(c.a) || held(c.b))
	}
}

// ensureStreams makes sure every active stream of an offer has a relay
// stream and both legs have a slot for it.
func (c *Call) ensureStreams(choices []policy.StreamChoice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ch := range choices {
		for i >= len(c.streams) {
			c.streams = append(c.streams, nil)
		}
		for _, l := range []*leg{c.a, c.b} {
			for l != nil && i >= len(l.m.streams) {
				l.m.streams = append(l.m.streams, legStream{})
			}
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
	desc, err := media.ParseSDP(body)
	if err != nil {
		d := malformed(policy.StageAnswer, l.pol, 488, "malformed SDP in answer: %v", err)
		c.decide(d)
		return d
	}
	c.mu.Lock()
	n := len(l.m.streams)
	c.mu.Unlock()
	if len(desc.Streams) != n {
		// RFC 3264 section 6: the answer has exactly as many m= lines.
		d := malformed(policy.StageAnswer, l.pol, 488, "answer has %d m= lines, the offer had %d", len(desc.Streams), n)
		c.decide(d)
		return d
	}
	c.mu.Lock()
	facts := mediaFacts(desc, l)
	c.mu.Unlock()
	d := policy.Evaluate(policy.Input{Stage: policy.StageAnswer, Zone: l.pol, Signaling: l.sig, Media: facts})
	c.decide(d)
	if !d.Proceed() {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, st := range desc.Streams {
		ls := &l.m.streams[i]
		ch := d.Streams[i]
		if c.streams[i] == nil || !ls.active {
			continue
		}
		if !ch.Active {
			ls.active = false
			continue
		}
		ls.proto, ls.mux = st.Proto, st.RTCPMux
		ls.rtp, ls.rtcp = peerAddrs(st, st.RTCPMux)
		if ch.DTLS {
			if err := c.keyByDTLS(l, i, st); err != nil {
				d := malformed(policy.StageAnswer, l.pol, 488, "stream %d: %v", i, err)
				c.decide(d)
				return d
			}
			continue
		}
		ls.dtls = false
		if ch.SRTP {
			theirs := st.Crypto[0].Crypto
			ls.theirs = &theirs
			for _, o := range ls.offered {
				if o.Tag == theirs.Tag && o.Suite == theirs.Suite {
					ours := o
					ls.ours = &ours
				}
			}
		} else {
			ls.theirs, ls.ours = nil, nil
		}
		if err := c.streams[i].Configure(l.side, media.PeerConfig{RTP: ls.rtp, RTCP: ls.rtcp, Mux: ls.mux,
			In: ls.theirs, Out: ls.ours, Sources: mediaSources(l, ls)}); err != nil {
			d := malformed(policy.StageAnswer, l.pol, 488, "stream %d: %v", i, err)
			c.decide(d)
			return d
		}
	}
	l.m.remote, l.m.answer = desc, true
	c.updateHoldLocked()
	return d
}

// offerTo builds parapet's offer on leg to, from the other leg's SDP src.
// Streams the leg already runs keep their profile and parapet's key; new
// streams follow plan. Caller holds c.mu.
func (c *Call) offerTo(to *leg, src *media.Description, plan policy.OfferPlan, choices []policy.StreamChoice) ([]byte, error) {
	plans := make([]media.StreamPlan, len(src.Streams))
	for i, st := range src.Streams {
		for i >= len(to.m.streams) {
			to.m.streams = append(to.m.streams, legStream{})
		}
		ts := &to.m.streams[i]
		if i >= len(c.streams) || c.streams[i] == nil || i >= len(choices) || !choices[i].Active {
			plans[i] = media.StreamPlan{Active: false}
			ts.active = false
			continue
		}
		ts.offered = nil
		if ts.proto != "" && ts.active {
			// A re-offer on a running stream: same profile, same key (or,
			// with DTLS-SRTP, the same certificate).
			ts.offeredDTLS = ts.dtls
			if ts.ours != nil {
				ts.offered = []media.Crypto{*ts.ours}
			}
		} else {
			ts.proto = "RTP/AVP"
			switch {
			case plan.DTLS:
				ts.proto = "UDP/TLS/RTP/SAVP"
			case plan.SRTP:
				ts.proto = "RTP/SAVP"
			}
			if c.rules.feedback(to.zone.name, strings.HasSuffix(st.Proto, "F")) {
				ts.proto += "F"
			}
			ts.offeredDTLS = plan.DTLS
			if plan.Secure() && !plan.DTLS {
				for j, su := range plan.Suites {
					cr, err := media.NewCrypto(j+1, string(su))
					if err != nil {
						return nil, err
					}
					ts.offered = append(ts.offered, cr)
				}
			}
		}
		ts.active = true
		plans[i] = media.StreamPlan{Active: true, Proto: ts.proto, Local: c.streams[i].Local(to.side, c.env.advertise),
			RTCPMux: true, Crypto: ts.offered}
		if ts.offeredDTLS {
			plans[i].DTLS = &media.DTLSPlan{Fingerprint: c.env.dtls.Fingerprint(), Setup: "actpass"}
		}
	}
	return c.buildSDP(to, src, plans)
}

// answerTo builds parapet's answer on leg to, whose peer made the offer,
// from the other leg's answer src. Caller holds c.mu.
func (c *Call) answerTo(to *leg, src *media.Description) ([]byte, error) {
	from := c.other(to)
	plans := make([]media.StreamPlan, len(src.Streams))
	for i := range src.Streams {
		if i >= len(to.m.streams) || i >= len(c.streams) {
			continue
		}
		ts := &to.m.streams[i]
		if !ts.active || c.streams[i] == nil || i >= len(from.m.streams) || !from.m.streams[i].active {
			plans[i] = media.StreamPlan{Active: false, Proto: ts.proto}
			continue
		}
		p := media.StreamPlan{Active: true, Proto: ts.proto, Local: c.streams[i].Local(to.side, c.env.advertise),
			RTCPMux: ts.mux}
		if ts.ours != nil {
			p.Crypto = []media.Crypto{*ts.ours}
		}
		if ts.dtls {
			p.DTLS = &media.DTLSPlan{Fingerprint: c.env.dtls.Fingerprint(), Setup: ts.setup}
		}
		plans[i] = p
	}
	return c.buildSDP(to, src, plans)
}

// buildSDP writes parapet's SDP on leg to from plans, as the leg's next
// version. Every offer and answer parapet makes is written here (settleB's
// answer declining every stream, which holds no key, aside), and it refuses
// to put SDES keys into an SDP that would cross in clear: whatever policy
// decided, no a=crypto key leaves parapet over UDP or TCP. Caller holds
// c.mu.
func (c *Call) buildSDP(to *leg, src *media.Description, plans []media.StreamPlan) ([]byte, error) {
	if !policy.SDESSafe(to.transport) {
		for _, p := range plans {
			if p.Active && len(p.Crypto) > 0 {
				return nil, fmt.Errorf("refusing to send SDES keys to leg %s over SIP over %s", to.role, to.transport)
			}
		}
	}
	c.bumpOrigin(to)
	sdp, err := media.BuildSDP(src, to.m.origin, plans)
	if err == nil {
		to.m.local = sdp
	}
	return sdp, err
}

// bumpOrigin advances parapet's o= line on a leg: a new session the first
// time, a new version afterwards (RFC 3264 section 8).
func (c *Call) bumpOrigin(l *leg) {
	if l.m.origin.Session == 0 {
		l.m.origin = media.Origin{Username: "parapet", Session: randSession(), Version: 1, Addr: c.env.mediaAddr}
		return
	}
	l.m.origin.Version++
}

func (c *Call) other(l *leg) *leg {
	if l == c.a {
		return c.b
	}
	return c.a
}
