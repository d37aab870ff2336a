package media

import (
	"bytes"
	"errors"
	"testing"
)

// RFC 3264 section 8, modifying the session, and RFC 4568 section 7.1.4,
// keys across re-offers.

// exchange is one offer from parapet on n and the peer's answer to it.
func exchange(t *testing.T, n *Negotiation, src *Description, locals []Endpoint, profile OfferProfile,
	answer *Description, choices []StreamChoice) []byte {
	t.Helper()
	out, err := n.Offer(src, locals, profile)
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	if err := n.TakeAnswer(answer, choices); err != nil {
		t.Fatalf("take answer: %v", err)
	}
	return out
}

var srtp80 = OfferProfile{SRTP: true, Suites: []string{suite80}}

// base is a session of two SDES streams parapet offered on the leg.
func base(t *testing.T) (*Negotiation, []byte) {
	n := newLeg()
	out := exchange(t, n, peerSDP(t, 1, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")), twoLocals, srtp80,
		peerSDP(t, 1, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(6002, "RTP/SAVP", cryptoAttr(1, suite80, 8))),
		[]StreamChoice{sdesChoice(0), sdesChoice(0)})
	return n, out
}

// RFC 3264 section 8: "the version in the origin field MUST increment by one
// from the previous SDP", and "If the version in the origin line does not
// increment, the SDP MUST be identical". parapet raises it only when its
// SDP changes.
func TestNegotiationOriginVersion(t *testing.T) {
	three := []Endpoint{twoLocals[0], twoLocals[1], ep(relayV4, 20004, 20005)}
	cases := []struct {
		name   string
		src    []string
		srcVer int
		locals []Endpoint
		bump   bool
	}{
		{"an identical re-offer keeps the version and the bytes", []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")}, 1, twoLocals, false},
		{"a new version of an unchanged source changes nothing", []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")}, 2, twoLocals, false},
		{"the source's own ports do not show", []string{audio(4100, "RTP/AVP"), video(4102, "RTP/AVP")}, 2, twoLocals, false},
		{"a new relay port raises it by one", []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")}, 1, []Endpoint{ep(relayV4, 20010, 20011), twoLocals[1]}, true},
		{"8.4: hold raises it by one", []string{audio(4000, "RTP/AVP", "sendonly"), video(4002, "RTP/AVP", "sendonly")}, 2, twoLocals, true},
		{"8.1: an added stream raises it by one", []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP"), audio(4004, "RTP/AVP")}, 2, three, true},
		{"8.2: a removed stream raises it by one", []string{audio(4000, "RTP/AVP"), video(0, "RTP/AVP")}, 2, twoLocals, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, first := base(t)
			out, err := n.Offer(peerSDP(t, tc.srcVer, tc.src...), tc.locals, srtp80)
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			want := uint64(1)
			if tc.bump {
				want = 2
			}
			if d.OriginUser != "parapet" || d.OriginSession != 77 || d.OriginVersion != want || n.Origin().Version != want {
				t.Errorf("o= %s %d %d (Origin %d), want parapet 77 %d", d.OriginUser, d.OriginSession, d.OriginVersion, n.Origin().Version, want)
			}
			if !tc.bump && !bytes.Equal(out, first) {
				t.Errorf("same version, different SDP:\n%s\n%s", first, out)
			}
		})
	}
}

// The same rule as answerer: a re-offer parapet answers exactly as before
// gets the same answer, same version; parapet's versions run across its
// offers and answers on the leg.
func TestNegotiationOriginVersionAnswering(t *testing.T) {
	n := newLeg()
	other := peerSDP(t, 1, audio(5000, "RTP/AVP"))
	answer := func(offer *Description) *Description {
		t.Helper()
		if err := n.TakeOffer(offer, []StreamChoice{sdesChoice(0)}); err != nil {
			t.Fatal(err)
		}
		out, err := n.Answer(other, oneLocal)
		if err != nil {
			t.Fatal(err)
		}
		return parsed(t, out)
	}
	first := peerSDP(t, 1, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1)))
	if v := answer(first).OriginVersion; v != 1 {
		t.Fatalf("first answer version %d", v)
	}
	if !n.SameOffer(peerSDP(t, 1, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1)))) {
		t.Error("a re-sent offer (same o= version) is not recognised")
	}
	if n.SameOffer(peerSDP(t, 2, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1)))) {
		t.Error("a new o= version is taken for a re-sent offer")
	}
	local := n.Local()
	if d := answer(peerSDP(t, 2, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1)))); d.OriginVersion != 1 || !bytes.Equal(n.Local(), local) {
		t.Errorf("an unchanged re-offer got answer version %d, or a different answer", d.OriginVersion)
	}
	if d := answer(peerSDP(t, 3, audio(4000, "RTP/SAVP", "sendonly", cryptoAttr(1, suite80, 1)))); d.OriginVersion != 2 {
		t.Errorf("hold answered with version %d, want 2", d.OriginVersion)
	}
	out, err := n.Offer(other, oneLocal, srtp80)
	if err != nil {
		t.Fatal(err)
	}
	if d := parsed(t, out); d.OriginVersion != 3 || d.OriginSession != 77 {
		t.Errorf("parapet's own re-offer: o= %d %d, want 77 3", d.OriginSession, d.OriginVersion)
	}
}

// RFC 3264 sections 8.1 to 8.3 and 6.
func TestNegotiationModify(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"8.1: an added stream is appended; the running ones keep parapet's keys", func(t *testing.T) {
			n, _ := base(t)
			key := n.Stream(0).Ours.Key
			out, err := n.Offer(peerSDP(t, 2, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP"), audio(4004, "RTP/AVP")),
				[]Endpoint{twoLocals[0], twoLocals[1], ep(relayV4, 20004, 20005)}, OfferProfile{SRTP: true, Suites: []string{suiteGCM, suite80}})
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			checkStreams(t, d, []wantStream{
				{media: "audio", port: 20000, proto: "RTP/SAVP", tags: []int{1}, suites: []string{suite80}},
				{media: "video", port: 20002, proto: "RTP/SAVP", tags: []int{1}, suites: []string{suite80}},
				{media: "audio", port: 20004, proto: "RTP/SAVP", tags: []int{1, 2}, suites: []string{suiteGCM, suite80}},
			})
			if !bytes.Equal(d.Streams[0].Crypto[0].Key, key) {
				t.Error("the running stream was re-offered with a new key")
			}
		}},
		{"8.2: a removed stream stays as port 0; fewer m= lines are refused", func(t *testing.T) {
			n, _ := base(t)
			exchange(t, n, peerSDP(t, 2, audio(4000, "RTP/AVP"), video(0, "RTP/AVP")), twoLocals, srtp80,
				peerSDP(t, 2, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(0, "RTP/SAVP")),
				[]StreamChoice{sdesChoice(0), {Crypto: -1}})
			if n.Stream(1).Active || !n.Stream(0).Active {
				t.Fatal("the removed stream is still active, or the other is not")
			}
			out, err := n.Offer(peerSDP(t, 3, audio(4000, "RTP/AVP", "sendonly"), video(0, "RTP/AVP")), twoLocals, srtp80)
			if err != nil {
				t.Fatal(err)
			}
			checkStreams(t, parsed(t, out), []wantStream{
				{media: "audio", port: 20000, proto: "RTP/SAVP", tags: []int{1}, dir: "sendonly"}, {media: "video", proto: "RTP/AVP"}})
			n.Abandon()
			if _, err := n.Offer(peerSDP(t, 4, audio(4000, "RTP/AVP")), oneLocal, srtp80); !errors.Is(err, ErrStreamCount) {
				t.Errorf("an offer dropping an m= line: %v", err)
			}
		}},
		{"8.1: a disabled m= line is reused for a new stream", func(t *testing.T) {
			n, _ := base(t)
			old := n.Stream(1).Ours.Key
			exchange(t, n, peerSDP(t, 2, audio(4000, "RTP/AVP"), video(0, "RTP/AVP")), twoLocals, srtp80,
				peerSDP(t, 2, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(0, "RTP/SAVP")),
				[]StreamChoice{sdesChoice(0), {Crypto: -1}})
			out, err := n.Offer(peerSDP(t, 3, audio(4000, "RTP/AVP"), audio(4010, "RTP/AVP")), twoLocals,
				OfferProfile{SRTP: true, Suites: []string{suiteGCM, suite80}})
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			checkStreams(t, d, []wantStream{
				{media: "audio", port: 20000, proto: "RTP/SAVP", tags: []int{1}, suites: []string{suite80}},
				{media: "audio", port: 20002, proto: "RTP/SAVP", tags: []int{1, 2}, suites: []string{suiteGCM, suite80}},
			})
			if bytes.Equal(d.Streams[1].Crypto[1].Key, old) {
				t.Error("the reused m= line carries the old stream's key")
			}
		}},
		{"8: an offer refused leaves the session as it was", func(t *testing.T) {
			n, _ := base(t)
			key := n.Stream(0).Ours.Key
			if _, err := n.Offer(peerSDP(t, 2, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP"), audio(4004, "RTP/AVP")),
				[]Endpoint{twoLocals[0], twoLocals[1], ep(relayV4, 20004, 20005)}, srtp80); err != nil {
				t.Fatal(err)
			}
			if n.Len() != 3 || !n.Offered(2, 1, suite80) {
				t.Fatal("the offer awaiting its answer is not what Len and Offered describe")
			}
			n.Abandon()
			if n.Len() != 2 || n.Stream(2).Active || !bytes.Equal(n.Stream(0).Ours.Key, key) {
				t.Fatal("the refused offer changed the session")
			}
			out, err := n.Offer(peerSDP(t, 3, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")), twoLocals, srtp80)
			if err != nil {
				t.Fatal(err)
			}
			if v := parsed(t, out).OriginVersion; v != 3 {
				t.Errorf("the offer after a refused one has version %d, want 3 (the refused one was sent)", v)
			}
		}},
		{"RFC 3261 section 13.2.1: the answer in a 183 and the one in the 2xx answer the same offer", func(t *testing.T) {
			n := newLeg()
			out, err := n.Offer(peerSDP(t, 1, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")), twoLocals, srtp80)
			if err != nil {
				t.Fatal(err)
			}
			offered := parsed(t, out).Streams[0].Crypto[0].Key
			early := peerSDP(t, 1, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(0, "RTP/SAVP"))
			if err := n.TakeAnswer(early, []StreamChoice{sdesChoice(0), {Crypto: -1}}); err != nil || n.Stream(1).Active {
				t.Fatalf("the 183's answer: %v", err)
			}
			final := peerSDP(t, 1, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(6002, "RTP/SAVP", cryptoAttr(1, suite80, 8)))
			if err := n.TakeAnswer(final, []StreamChoice{sdesChoice(0), sdesChoice(0)}); err != nil || !n.Stream(1).Active {
				t.Fatalf("the 2xx's answer: %v", err)
			}
			if !bytes.Equal(n.Stream(0).Ours.Key, offered) || n.Remote() != final || !n.RemoteIsAnswer() {
				t.Error("the final answer does not use parapet's offered key")
			}
			if err := n.TakeOffer(peerSDP(t, 2, audio(6000, "RTP/SAVP", cryptoAttr(1, suite80, 7)), video(6002, "RTP/AVP")),
				[]StreamChoice{sdesChoice(0), {Active: true, Crypto: -1}}); err != nil {
				t.Fatal(err)
			}
			if err := n.TakeAnswer(final, []StreamChoice{sdesChoice(0), sdesChoice(0)}); err == nil {
				t.Error("an answer taken after the peer's own offer")
			}
		}},
		{"6: an answer with another number of m= lines is refused and changes nothing", func(t *testing.T) {
			n := newLeg()
			if _, err := n.Offer(peerSDP(t, 1, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")), twoLocals, OfferProfile{}); err != nil {
				t.Fatal(err)
			}
			short := peerSDP(t, 1, audio(6000, "RTP/AVP"))
			if err := n.CheckAnswer(short); !errors.Is(err, ErrStreamCount) {
				t.Errorf("CheckAnswer: %v", err)
			}
			if err := n.TakeAnswer(short, plainChoices(1)); !errors.Is(err, ErrStreamCount) || n.Stream(0).Active || n.Len() != 2 {
				t.Errorf("TakeAnswer: %v", err)
			}
		}},
		{"8: a peer's re-offer with fewer m= lines is refused", func(t *testing.T) {
			n := newLeg()
			offer := peerSDP(t, 1, audio(4000, "RTP/AVP"), video(4002, "RTP/AVP"))
			if err := n.TakeOffer(offer, plainChoices(1, 1)); err != nil {
				t.Fatal(err)
			}
			short := peerSDP(t, 2, audio(4000, "RTP/AVP"))
			if err := n.TakeOffer(short, plainChoices(1)); !errors.Is(err, ErrStreamCount) || n.Remote() != offer {
				t.Errorf("TakeOffer: %v", err)
			}
		}},
		{"RFC 4568 section 7.1.1: an answer choosing a line parapet did not offer is refused", func(t *testing.T) {
			n := newLeg()
			if _, err := n.Offer(peerSDP(t, 1, audio(4000, "RTP/AVP")), oneLocal, srtp80); err != nil {
				t.Fatal(err)
			}
			answer := peerSDP(t, 1, audio(6000, "RTP/SAVP", cryptoAttr(2, suite80, 7)))
			if err := n.TakeAnswer(answer, []StreamChoice{sdesChoice(0)}); err == nil || n.Stream(0).Active || n.Remote() != nil {
				t.Errorf("TakeAnswer of a line not offered: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// RFC 5763 section 5: parapet offers actpass; its role is the opposite of
// the answer's, and a re-offer keeps the certificate.
func TestNegotiationDTLSRoles(t *testing.T) {
	cases := []struct {
		answerSetup string
		want        string
	}{
		{"active", "passive"},
		{"passive", "active"},
		{"", "passive"},
	}
	dtls := OfferProfile{SRTP: true, DTLS: true}
	for _, tc := range cases {
		t.Run("answer setup "+tc.answerSetup, func(t *testing.T) {
			attrs := []string{fingerprintAttr(4)}
			if tc.answerSetup != "" {
				attrs = append(attrs, "setup:"+tc.answerSetup)
			}
			answer := peerSDP(t, 1, audio(6000, "UDP/TLS/RTP/SAVP", attrs...))
			n := newLeg()
			src := peerSDP(t, 1, audio(4000, "RTP/AVP"))
			exchange(t, n, src, oneLocal, dtls, answer, []StreamChoice{dtlsChoice})
			if s := n.Stream(0); !s.DTLS || s.Setup != tc.want || s.Ours != nil ||
				!sameFingerprints(s.Fingerprints, []Fingerprint{testFingerprint("sha-256", 32, 4)}) || !n.SRTP() {
				t.Fatalf("after the answer: %+v", s)
			}
			// A re-offer, even with a plain profile: the stream keeps DTLS-SRTP.
			out, err := n.Offer(peerSDP(t, 2, audio(4000, "RTP/AVP", "sendonly")), oneLocal, OfferProfile{})
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			checkStreams(t, d, []wantStream{{media: "audio", port: 20000, proto: "UDP/TLS/RTP/SAVP", setup: "actpass", dir: "sendonly"}})
			if !sameFingerprints(d.Streams[0].Fingerprints, []Fingerprint{parapetFP}) || !n.OfferedDTLS(0) {
				t.Error("the re-offer changed parapet's certificate")
			}
			if err := n.TakeAnswer(answer, []StreamChoice{dtlsChoice}); err != nil || n.Stream(0).Setup != tc.want {
				t.Errorf("role after the re-offer: %q (%v)", n.Stream(0).Setup, err)
			}
		})
	}
}

// RFC 4568 section 7.1.4: across re-offers parapet keeps its key on a
// stream while the peer keeps its line (tag, suite and key); when any of
// them changes, parapet answers with a new key. An answer that keeps its
// key is unchanged and keeps its o= version.
func TestNegotiationKeyReuse(t *testing.T) {
	l1, l1b, l2 := cryptoAttr(1, suite80, 1), cryptoAttr(1, suite80, 2), cryptoAttr(2, suite80, 1)
	gcm := cryptoAttr(1, suiteGCM, 1)
	type step struct {
		attrs  []string
		choice StreamChoice
	}
	plain := step{nil, StreamChoice{Active: true, Crypto: -1}}
	cases := []struct {
		name  string
		steps []step
		same  bool
	}{
		{"the peer keeps its line: parapet keeps its key", []step{{[]string{l1}, sdesChoice(0)}, {[]string{l1}, sdesChoice(0)}}, true},
		{"the peer changes its key", []step{{[]string{l1}, sdesChoice(0)}, {[]string{l1b}, sdesChoice(0)}}, false},
		{"the peer changes the suite", []step{{[]string{l1}, sdesChoice(0)}, {[]string{gcm}, sdesChoice(0)}}, false},
		{"the peer changes the tag", []step{{[]string{l1}, sdesChoice(0)}, {[]string{l2}, sdesChoice(0)}}, false},
		{"policy picks another of the peer's lines", []step{{[]string{l1, l2}, sdesChoice(0)}, {[]string{l1, l2}, sdesChoice(1)}}, false},
		{"hold and resume keep the key", []step{{[]string{l1}, sdesChoice(0)}, {[]string{"sendonly", l1}, sdesChoice(0)}, {[]string{l1}, sdesChoice(0)}}, true},
		{"SRTP, plain, SRTP again: a new key", []step{{[]string{l1}, sdesChoice(0)}, plain, {[]string{l1}, sdesChoice(0)}}, false},
	}
	other := peerSDP(t, 1, audio(5000, "RTP/AVP"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newLeg()
			var keys [][]byte
			var versions []uint64
			for v, s := range tc.steps {
				proto := "RTP/SAVP"
				if !s.choice.SRTP {
					proto = "RTP/AVP"
				}
				offer := peerSDP(t, v+1, audio(4000, proto, s.attrs...))
				if err := n.TakeOffer(offer, []StreamChoice{s.choice}); err != nil {
					t.Fatal(err)
				}
				out, err := n.Answer(other, oneLocal)
				if err != nil {
					t.Fatal(err)
				}
				d := parsed(t, out)
				if s.choice.SRTP {
					ours, theirs := n.Stream(0).Ours, n.Stream(0).Theirs
					line := offer.Streams[0].Crypto[s.choice.Crypto]
					if ours == nil || ours.Tag != line.Tag || ours.Suite != line.Suite || !bytes.Equal(theirs.Key, line.Key) ||
						len(d.Streams[0].Crypto) != 1 || !bytes.Equal(d.Streams[0].Crypto[0].Key, ours.Key) {
						t.Fatalf("step %d: parapet's line does not answer the chosen one", v)
					}
					keys = append(keys, ours.Key)
				} else if n.Stream(0).Ours != nil || len(d.Streams[0].Crypto) != 0 {
					t.Fatalf("step %d: a key on a plain stream", v)
				}
				versions = append(versions, d.OriginVersion)
			}
			first, last := keys[0], keys[len(keys)-1]
			if got := bytes.Equal(first, last); got != tc.same {
				t.Errorf("same key after the re-offers: %v, want %v", got, tc.same)
			}
			if tc.same && len(tc.steps) == 2 && versions[1] != versions[0] {
				t.Errorf("an unchanged answer went from version %d to %d", versions[0], versions[1])
			}
		})
	}
}
