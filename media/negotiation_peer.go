package media

// Negotiation: taking the peer's offers and answers (RFC 3264 sections 6
// and 8, RFC 4568, RFC 5763).

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// CheckOffer checks a peer's offer against the leg: it must keep every m=
// line the leg has (RFC 3264 section 8).
func (n *Negotiation) CheckOffer(offer *Description) error {
	if offer == nil {
		return errors.New("no offer")
	}
	if len(offer.Streams) < len(n.streams) {
		return fmt.Errorf("offer has %d m= lines, the session has %d: %w", len(offer.Streams), len(n.streams), ErrStreamCount)
	}
	return nil
}

// CheckAnswer checks a peer's answer against parapet's latest offer: one
// m= line for each of the offer's (RFC 3264 section 6).
func (n *Negotiation) CheckAnswer(answer *Description) error {
	switch {
	case answer == nil:
		return errors.New("no answer")
	case n.offer == nil:
		return errors.New("answer without an offer")
	case len(answer.Streams) != len(n.offer):
		return fmt.Errorf("answer has %d m= lines, the offer had %d: %w", len(answer.Streams), len(n.offer), ErrStreamCount)
	}
	return nil
}

// TakeOffer applies the peer's offer as policy judged it (one choice per
// m= line): the streams the leg runs, where the peer receives, the peer's
// keys, and the keys and DTLS roles parapet will answer with. parapet's
// SDES key on a stream is kept while the peer keeps its line's tag, suite
// and key (RFC 4568 section 7.1.4), so a re-offer does not reset SRTP; any
// of them changing gets a new key. parapet's latest offer takes no more
// answers.
func (n *Negotiation) TakeOffer(offer *Description, choices []StreamChoice) error {
	if err := n.CheckOffer(offer); err != nil {
		return fmt.Errorf("take offer: %w", err)
	}
	next, err := take(n.streams, offer, choices, false)
	if err != nil {
		return fmt.Errorf("take offer: %w", err)
	}
	n.streams, n.offer, n.answered = next, nil, false
	n.remote, n.remoteAnswer = offer, false
	return nil
}

// TakeAnswer applies the peer's answer to parapet's latest offer, as
// policy judged it: the offer becomes the leg's state, with the streams
// the answer refused disabled, the peer's keys, and for each SRTP stream
// parapet's offered line the answer chose. A later answer to the same
// offer (the 2xx after SDP in a 183) applies to the offer again and
// replaces the earlier one.
func (n *Negotiation) TakeAnswer(answer *Description, choices []StreamChoice) error {
	if err := n.CheckAnswer(answer); err != nil {
		return fmt.Errorf("take answer: %w", err)
	}
	next, err := take(n.offer, answer, choices, true)
	if err != nil {
		return fmt.Errorf("take answer: %w", err)
	}
	n.streams, n.answered = next, true
	n.remote, n.remoteAnswer = answer, true
	return nil
}

// take applies the peer's SDP d, as judged by choices, to a copy of
// streams, which it extends to d's m= lines. answer says d answers
// parapet's offer.
func take(streams []StreamState, d *Description, choices []StreamChoice, answer bool) ([]StreamState, error) {
	if len(choices) != len(d.Streams) {
		return nil, fmt.Errorf("%d choices for %d m= lines", len(choices), len(d.Streams))
	}
	next := slices.Clone(streams)
	for len(next) < len(d.Streams) {
		next = append(next, StreamState{})
	}
	for i, st := range d.Streams {
		if err := next[i].take(st, choices[i], answer); err != nil {
			return nil, fmt.Errorf("stream %d: %w", i, err)
		}
	}
	return next, nil
}

// take applies stream st of the peer's SDP as judged by ch.
func (s *StreamState) take(st Stream, ch StreamChoice, answer bool) error {
	if answer && !s.Active {
		return nil // parapet offered it disabled
	}
	if !ch.Active {
		s.Active = false
		return nil
	}
	s.Active, s.Proto, s.Mux = true, st.Proto, st.RTCPMux
	s.RTP, s.RTCP = peerAddrs(st)
	switch {
	case ch.DTLS:
		s.keyByDTLS(st)
		return nil
	case !ch.SRTP:
		s.DTLS, s.Theirs, s.Ours = false, nil, nil
		return nil
	}
	theirs, err := chosenCrypto(st, ch)
	if err != nil {
		return err
	}
	ours, err := s.oursFor(theirs, answer)
	if err != nil {
		return err
	}
	s.DTLS, s.Theirs, s.Ours = false, &theirs, ours
	return nil
}

// oursFor is parapet's key for an SDES stream whose peer uses line theirs.
// In the peer's answer, it is the line parapet offered that the answer
// chose (RFC 4568 section 7.1.1). Answering the peer's offer, it is the
// key parapet has while the peer keeps its line, else a new one with the
// line's tag and suite (section 7.1.4).
func (s *StreamState) oursFor(theirs Crypto, answer bool) (*Crypto, error) {
	if answer {
		i := slices.IndexFunc(s.offered, func(o Crypto) bool { return o.Tag == theirs.Tag && o.Suite == theirs.Suite })
		if i < 0 {
			return nil, fmt.Errorf("answer chose tag %d, which parapet did not offer", theirs.Tag)
		}
		ours := s.offered[i]
		return &ours, nil
	}
	if s.Ours != nil && s.Theirs != nil && !s.DTLS && sameLine(*s.Theirs, theirs) {
		return s.Ours, nil
	}
	ours, err := NewCrypto(theirs.Tag, theirs.Suite)
	if err != nil {
		return nil, err
	}
	return &ours, nil
}

// keyByDTLS makes the stream DTLS-SRTP keyed, as the peer described it
// (offer or answer). parapet's role is the opposite of the peer's: passive
// unless the peer said passive. So as answerer to actpass parapet is
// passive, and after offering actpass it takes what the answer leaves (RFC
// 5763 section 5).
func (s *StreamState) keyByDTLS(st Stream) {
	s.DTLS, s.Theirs, s.Ours = true, nil, nil
	s.Setup = setupPassive
	if st.Setup == setupPassive {
		s.Setup = setupActive
	}
	s.Fingerprints = nil
	for _, f := range st.Fingerprints {
		if _, ok := fingerprintLen(f.Hash); ok {
			s.Fingerprints = append(s.Fingerprints, Fingerprint{Hash: f.Hash, Value: slices.Clone(f.Value)})
		}
	}
}

// chosenCrypto is the peer's line ch picked, which must be usable.
func chosenCrypto(st Stream, ch StreamChoice) (Crypto, error) {
	if ch.Crypto < 0 || ch.Crypto >= len(st.Crypto) {
		return Crypto{}, fmt.Errorf("no a=crypto line %d", ch.Crypto)
	}
	l := st.Crypto[ch.Crypto]
	if l.Problem != "" {
		return Crypto{}, fmt.Errorf("a=crypto tag %d: %s", l.Tag, l.Problem)
	}
	c := l.Crypto
	c.Key, c.Params = slices.Clone(c.Key), slices.Clone(c.Params)
	return c, nil
}

// sameLine reports whether two of the peer's lines are the same line: tag,
// suite and key.
func sameLine(a, b Crypto) bool {
	return a.Tag == b.Tag && a.Suite == b.Suite && bytes.Equal(a.Key, b.Key)
}

// peerAddrs are where the peer receives a stream's RTP and RTCP; zero when
// the stream is disabled or has no address. An unspecified address
// (c=0.0.0.0: send it nothing, RFC 3264 section 8.4) is kept as it is.
func peerAddrs(st Stream) (rtp, rtcp netip.AddrPort) {
	if st.Port == 0 || !st.Addr.IsValid() {
		return netip.AddrPort{}, netip.AddrPort{}
	}
	addr := st.Addr.Unmap()
	rtp = netip.AddrPortFrom(addr, uint16(st.Port))
	rtcp = netip.AddrPortFrom(addr, uint16(st.RTCPPort))
	if st.RTCPMux || st.RTCPPort == 0 {
		rtcp = rtp
	}
	return rtp, rtcp
}
