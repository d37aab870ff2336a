package media

// Negotiation: writing parapet's offers and answers (RFC 3264 sections 5,
// 6 and 8) and its o= line.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Offer writes parapet's offer on the leg from src, the other leg's SDP
// (its offer, or the SDP in force there), with one m= line per src stream
// in src's order. local[i] is parapet's relay endpoint for stream i on this
// leg; a zero Port (or a missing entry) offers the stream disabled, port 0.
// A stream the leg runs keeps its profile, parapet's key or DTLS-SRTP
// certificate; a new one (section 8.1: an added line, or a disabled one
// reused) follows profile. Directions are src's, with RFC 2543's
// c=0.0.0.0 hold written as RFC 3264's (section 8.4). The offer becomes
// the session with TakeAnswer; the SDP is also Local.
func (n *Negotiation) Offer(src *Description, local []Endpoint, profile OfferProfile) ([]byte, error) {
	if src == nil {
		return nil, errors.New("offer: no source description")
	}
	if len(src.Streams) < len(n.streams) {
		return nil, fmt.Errorf("offer: source has %d m= lines, the session has %d: %w", len(src.Streams), len(n.streams), ErrStreamCount)
	}
	next := make([]StreamState, len(src.Streams))
	plans := make([]StreamPlan, len(src.Streams))
	for i, st := range src.Streams {
		if i < len(n.streams) {
			next[i] = n.streams[i]
		}
		if i >= len(local) || local[i].Port == 0 || st.Port == 0 {
			next[i].Active = false // section 8.2: a removed stream stays, with port 0
			continue
		}
		p, err := next[i].offer(st, profile)
		if err != nil {
			return nil, fmt.Errorf("offer: stream %d: %w", i, err)
		}
		p.Local = local[i]
		if p.DTLS != nil {
			p.DTLS.Fingerprint = n.cfg.Fingerprint
		}
		plans[i] = p
	}
	out, err := n.build(src, plans)
	if err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	n.offer, n.answered = next, false
	return out, nil
}

// offer plans stream st of parapet's offer and records what it offers.
func (s *StreamState) offer(st Stream, profile OfferProfile) (StreamPlan, error) {
	s.offered = nil
	if s.Active && s.Proto != "" {
		// A re-offer of a running stream: same profile, same key (or the
		// same certificate).
		s.offeredDTLS = s.DTLS
		if s.Ours != nil {
			s.offered = []Crypto{*s.Ours}
		}
	} else {
		s.Proto = profile.proto(st.Proto)
		s.offeredDTLS = profile.DTLS
		if !profile.DTLS {
			for j, su := range profile.Suites {
				c, err := NewCrypto(j+1, su)
				if err != nil {
					return StreamPlan{}, err
				}
				s.offered = append(s.offered, c)
			}
		}
	}
	s.Active = true
	p := StreamPlan{Active: true, Proto: s.Proto, RTCPMux: true, Crypto: slices.Clone(s.offered),
		Direction: offerDirection(st)}
	if s.offeredDTLS {
		p.DTLS = &DTLSPlan{Setup: setupActPass}
	}
	return p, nil
}

// proto is the profile of a new stream offered from a source stream whose
// profile is src.
func (p OfferProfile) proto(src string) string {
	proto := "RTP/AVP"
	switch {
	case p.DTLS:
		proto = "UDP/TLS/RTP/SAVP"
	case p.SRTP:
		proto = "RTP/SAVP"
	}
	if p.Feedback == FeedbackAlways || p.Feedback == FeedbackAsSource && strings.HasSuffix(src, "F") {
		proto += "F"
	}
	return proto
}

// Answer writes parapet's answer to the peer's offer (TakeOffer) from src,
// the other leg's answer, one m= line per offered one. local[i] is
// parapet's relay endpoint for stream i; a zero Port (no relay stream, or
// the other leg refused it) answers the stream disabled, as does a stream
// policy refused. Each answered stream carries parapet's key or DTLS role
// from TakeOffer, and a direction the offer allows (RFC 3264 section 6.1):
// parapet sends only what the other leg sends and the peer receives, and
// receives only what the peer sends and the other leg receives.
func (n *Negotiation) Answer(src *Description, local []Endpoint) ([]byte, error) {
	if src == nil {
		return nil, errors.New("answer: no source description")
	}
	if n.remote == nil || n.remoteAnswer {
		return nil, errors.New("answer: no offer from the peer")
	}
	if len(src.Streams) != len(n.remote.Streams) {
		return nil, fmt.Errorf("answer: source has %d m= lines, the offer had %d: %w", len(src.Streams), len(n.remote.Streams), ErrStreamCount)
	}
	plans := make([]StreamPlan, len(src.Streams))
	for i, st := range src.Streams {
		s := n.streams[i]
		if !s.Active || i >= len(local) || local[i].Port == 0 {
			plans[i] = StreamPlan{Proto: s.Proto}
			continue
		}
		p := StreamPlan{Active: true, Proto: s.Proto, Local: local[i], RTCPMux: s.Mux,
			Direction: answerDirection(n.remote.Streams[i], st)}
		if s.Ours != nil {
			p.Crypto = []Crypto{*s.Ours}
		}
		if s.DTLS {
			p.DTLS = &DTLSPlan{Fingerprint: n.cfg.Fingerprint, Setup: s.Setup}
		}
		plans[i] = p
	}
	out, err := n.build(src, plans)
	if err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	return out, nil
}

// Decline writes an answer to offer refusing every stream (RFC 3264
// section 6: port 0 on each m= line), such as the answer owed for an offer
// parapet cannot take. It changes no stream.
func (n *Negotiation) Decline(offer *Description) ([]byte, error) {
	if offer == nil {
		return nil, errors.New("decline: no offer")
	}
	plans := make([]StreamPlan, len(offer.Streams))
	for i, st := range offer.Streams {
		plans[i] = StreamPlan{Proto: st.Proto}
	}
	out, err := n.build(offer, plans)
	if err != nil {
		return nil, fmt.Errorf("decline: %w", err)
	}
	return out, nil
}

// build writes parapet's next SDP on the leg. Its o= line keeps the leg's
// session id; the version goes up by one unless the SDP is the same as the
// latest, which is then sent again as it was (RFC 3264 section 8).
func (n *Negotiation) build(src *Description, plans []StreamPlan) ([]byte, error) {
	if n.cfg.NoSDES && slices.ContainsFunc(plans, func(p StreamPlan) bool { return p.Active && len(p.Crypto) > 0 }) {
		return nil, ErrSDESInClear
	}
	o := n.origin
	if o.Session == 0 {
		o = Origin{Username: "parapet", Session: n.cfg.Session, Version: 1, Addr: n.cfg.Addr}
		if o.Session == 0 {
			o.Session = randSession()
		}
	} else {
		o.Version++
	}
	out, err := BuildSDP(src, o, plans)
	if err != nil {
		return nil, err
	}
	if n.local != nil && bytes.Equal(withoutOrigin(out), withoutOrigin(n.local)) {
		return slices.Clone(n.local), nil
	}
	n.origin, n.local = o, out
	return slices.Clone(out), nil
}

// withoutOrigin is an SDP BuildSDP wrote, without its o= line.
func withoutOrigin(b []byte) []byte {
	start := bytes.Index(b, []byte("\r\no="))
	if start < 0 {
		return b
	}
	end := bytes.Index(b[start+2:], []byte("\r\n"))
	if end < 0 {
		return b[:start]
	}
	return slices.Concat(b[:start], b[start+2+end:])
}

// randSession is a random o= session id, small enough to stay a positive
// 64-bit number however a peer reads it.
func randSession() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return binary.BigEndian.Uint64(b[:])>>2 | 1
}
