package media

import (
	"bytes"
	"testing"
)

// judge stands in for policy: each active stream is keyed by DTLS-SRTP when
// it has a usable fingerprint, else by its first usable a=crypto line, else
// plain; refuse masks streams to refuse (bit i: stream i).
func judge(d *Description, refuse uint8) []StreamChoice {
	out := make([]StreamChoice, len(d.Streams))
	for i, st := range d.Streams {
		c := StreamChoice{Active: st.Port != 0 && (i >= 8 || refuse&(1<<i) == 0), Crypto: -1}
		switch {
		case !c.Active:
		case st.DTLS && len(st.Fingerprints) > 0:
			c.SRTP, c.DTLS = true, true
		default:
			for j, l := range st.Crypto {
				if l.Problem == "" && len(l.Unsafe) == 0 && SupportedSuite(l.Suite) {
					c.SRTP, c.Crypto = true, j
					break
				}
			}
		}
		out[i] = c
	}
	return out
}

func fuzzLocals(n int) []Endpoint {
	out := make([]Endpoint, n)
	for i := range out {
		out[i] = ep(relayV4, 20000+2*i, 20001+2*i)
	}
	return out
}

// versionCheck follows the SDPs parapet writes on one leg: they parse,
// keep one o= session, and raise its version by one exactly when they
// change (RFC 3264 section 8).
type versionCheck struct {
	t       *testing.T
	session uint64
	version uint64
	last    []byte
}

func (v *versionCheck) next(out []byte, n *Negotiation, streams int, noSDES bool) {
	t := v.t
	t.Helper()
	d, err := ParseSDP(out)
	if err != nil {
		t.Fatalf("parapet's SDP does not parse: %v\n%s", err, out)
	}
	if len(d.Streams) != streams {
		t.Fatalf("%d m= lines written for %d", len(d.Streams), streams)
	}
	if !bytes.Equal(n.Local(), out) || n.Origin().Version != d.OriginVersion {
		t.Fatal("Local and Origin do not describe the SDP written")
	}
	for _, st := range d.Streams {
		if noSDES && len(st.Crypto) > 0 {
			t.Fatal("a=crypto written on a leg without SDES")
		}
	}
	switch {
	case v.last == nil:
		v.session = d.OriginSession
	case d.OriginSession != v.session:
		t.Fatalf("o= session changed from %d to %d", v.session, d.OriginSession)
	case d.OriginVersion == v.version && !bytes.Equal(out, v.last):
		t.Fatalf("version %d kept for a different SDP", v.version)
	case d.OriginVersion != v.version && d.OriginVersion != v.version+1:
		t.Fatalf("version went from %d to %d", v.version, d.OriginVersion)
	case d.OriginVersion == v.version+1 && bytes.Equal(out, v.last):
		t.Fatalf("version raised for the same SDP")
	}
	v.version, v.last = d.OriginVersion, out
}

// FuzzNegotiation drives one leg as answerer (the peer offers first, then
// re-offers second) and another as offerer (parapet offers from first, the
// peer answers second, parapet re-offers from second), checking what
// parapet writes: it parses, has the m= lines it must, carries no SDES key
// where they are refused, and keeps RFC 3264's o= rules. Errors are fine;
// panics and broken invariants are not.
func FuzzNegotiation(f *testing.F) {
	seeds := append(sdpSeeds(f), dtlsSeeds()...)
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)], uint8(i))
		f.Add(s, s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, first, second []byte, flags uint8) {
		d1, err := ParseSDP(first)
		if err != nil {
			return
		}
		d2, err := ParseSDP(second)
		if err != nil {
			return
		}
		noSDES := flags&0x80 != 0
		cfg := NegotiationConfig{Addr: relayV4, Fingerprint: parapetFP, NoSDES: noSDES}

		ans, av := NewNegotiation(cfg), &versionCheck{t: t}
		for _, offer := range []*Description{d1, d2} {
			same := ans.SameOffer(offer)
			if err := ans.TakeOffer(offer, judge(offer, flags)); err != nil {
				continue
			}
			if out, err := ans.Answer(offer, fuzzLocals(len(offer.Streams))); err == nil {
				av.next(out, ans, len(offer.Streams), noSDES)
			} else if same {
				t.Logf("re-sent offer not answered: %v", err)
			}
		}

		off, ov := NewNegotiation(cfg), &versionCheck{t: t}
		profile := OfferProfile{SRTP: flags&1 != 0, DTLS: flags&2 != 0, Feedback: Feedback(flags >> 2 & 3)}
		if flags&4 != 0 {
			profile.Suites = []string{suite80, suiteGCM}
		}
		out, err := off.Offer(d1, fuzzLocals(len(d1.Streams)), profile)
		if err != nil {
			return
		}
		ov.next(out, off, len(d1.Streams), noSDES)
		if err := off.CheckAnswer(d2); err != nil {
			off.Abandon()
		} else if err := off.TakeAnswer(d2, judge(d2, flags>>4)); err != nil {
			off.Abandon()
		}
		if out, err := off.Offer(d2, fuzzLocals(len(d2.Streams)), profile); err == nil {
			ov.next(out, off, len(d2.Streams), noSDES)
		}
	})
}
