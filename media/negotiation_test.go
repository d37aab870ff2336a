package media

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Offer/answer as RFC 3264 describes it, from parapet's side of one leg.
// The peer's SDPs are written here; parapet's are read back with ParseSDP.

const (
	suite80  = "AES_CM_128_HMAC_SHA1_80"
	suiteGCM = "AEAD_AES_256_GCM"
)

var (
	oneLocal  = []Endpoint{ep(relayV4, 20000, 20001)}
	twoLocals = []Endpoint{ep(relayV4, 20000, 20001), ep(relayV4, 20002, 20003)}
	parapetFP = testFingerprint("sha-256", 32, 9)
)

// peerSDP is the parsed SDP of a peer at 198.51.100.7: o= version v, then
// the m= sections.
func peerSDP(t testing.TB, v int, sections ...string) *Description {
	t.Helper()
	body := fmt.Sprintf("v=0\r\no=peer 4242 %d IN IP4 198.51.100.7\r\ns=call\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n", v) +
		strings.Join(sections, "")
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatalf("peer sdp: %v\n%s", err, body)
	}
	return d
}

// section is an m= section: "audio" or "video", its port and proto, then
// attributes (without "a="); "c=..." entries are written as lines.
func section(media string, port int, proto string, attrs ...string) string {
	var b strings.Builder
	if media == "video" {
		fmt.Fprintf(&b, "m=video %d %s 96\r\na=rtpmap:96 H264/90000\r\n", port, proto)
	} else {
		fmt.Fprintf(&b, "m=%s %d %s 0 8\r\na=rtpmap:0 PCMU/8000\r\n", media, port, proto)
	}
	for _, a := range attrs {
		if strings.HasPrefix(a, "c=") {
			// RFC 8866 section 5: c= comes before the media's a= lines.
			s := b.String()
			i := strings.Index(s, "\r\n") + 2
			b.Reset()
			b.WriteString(s[:i] + a + "\r\n" + s[i:])
			continue
		}
		b.WriteString("a=" + a + "\r\n")
	}
	return b.String()
}

func audio(port int, proto string, attrs ...string) string {
	return section("audio", port, proto, attrs...)
}
func video(port int, proto string, attrs ...string) string {
	return section("video", port, proto, attrs...)
}

const held = "c=IN IP4 0.0.0.0" // RFC 2543 hold

func cryptoAttr(tag int, suite string, seed byte) string {
	return "crypto:" + testCrypto(tag, suite, seed).Marshal()
}

func fingerprintAttr(seed byte) string {
	return "fingerprint:" + testFingerprint("sha-256", 32, seed).String()
}

func newLeg() *Negotiation {
	return NewNegotiation(NegotiationConfig{Addr: relayV4, Session: 77, Fingerprint: parapetFP})
}

func parsed(t testing.TB, b []byte) *Description {
	t.Helper()
	d, err := ParseSDP(b)
	if err != nil {
		t.Fatalf("parapet's sdp does not parse: %v\n%s", err, b)
	}
	return d
}

func plainChoices(ports ...int) []StreamChoice {
	out := make([]StreamChoice, len(ports))
	for i, p := range ports {
		out[i] = StreamChoice{Active: p != 0, Crypto: -1}
	}
	return out
}

func sdesChoice(line int) StreamChoice { return StreamChoice{Active: true, SRTP: true, Crypto: line} }

var dtlsChoice = StreamChoice{Active: true, SRTP: true, DTLS: true, Crypto: -1}

// wantStream is what a test expects of one m= line parapet wrote.
type wantStream struct {
	media  string
	port   int
	proto  string
	tags   []int // a=crypto tags, in order
	suites []string
	setup  string // a=setup, "" for none
	dir    string // direction attribute, "" for none
}

func checkStreams(t *testing.T, d *Description, want []wantStream) {
	t.Helper()
	if len(d.Streams) != len(want) {
		t.Fatalf("%d m= lines, want %d: %v", len(d.Streams), len(want), d)
	}
	for i, w := range want {
		st := d.Streams[i]
		var tags []int
		var suites []string
		for _, c := range st.Crypto {
			tags, suites = append(tags, c.Tag), append(suites, c.Suite)
		}
		if st.Media != w.media || st.Port != w.port || (w.port != 0 || w.proto != "") && st.Proto != w.proto ||
			!slices.Equal(tags, w.tags) || (w.suites != nil && !slices.Equal(suites, w.suites)) ||
			st.Setup != w.setup || st.Direction != w.dir {
			t.Errorf("stream %d: m=%s %d %s tags %v %v setup %q dir %q, want %+v", i, st.Media, st.Port, st.Proto,
				tags, suites, st.Setup, st.Direction, w)
		}
	}
}

// RFC 3264 section 5: generating the initial offer.
func TestNegotiationOffer(t *testing.T) {
	cases := []struct {
		name    string
		src     []string
		locals  []Endpoint
		profile OfferProfile
		want    []wantStream
	}{
		{
			name: "5: one m= line per stream of the source, in its order",
			src:  []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")},
			want: []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}, {media: "video", port: 20002, proto: "RTP/AVP"}},
		},
		{
			name:   "5: a stream parapet has no relay for is offered with port 0",
			src:    []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")},
			locals: []Endpoint{oneLocal[0], {}},
			want:   []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}, {media: "video", port: 0, proto: "RTP/AVP"}},
		},
		{
			name: "8.2: a stream the source disabled is offered disabled",
			src:  []string{audio(4000, "RTP/AVP"), video(0, "RTP/AVP")},
			want: []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}, {media: "video", port: 0, proto: "RTP/AVP"}},
		},
		{
			name:    "RFC 4568 section 5.1: SRTP offers RTP/SAVP with one a=crypto per suite, tags from 1",
			src:     []string{audio(4000, "RTP/AVP")},
			profile: OfferProfile{SRTP: true, Suites: []string{suiteGCM, suite80}},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/SAVP", tags: []int{1, 2}, suites: []string{suiteGCM, suite80}}},
		},
		{
			name:    "RFC 8643: best-effort SRTP offers RTP/AVP with a=crypto lines",
			src:     []string{audio(4000, "RTP/AVP")},
			profile: OfferProfile{Suites: []string{suite80}},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP", tags: []int{1}, suites: []string{suite80}}},
		},
		{
			name:    "RFC 5763 section 5: DTLS-SRTP offers setup:actpass and no a=crypto",
			src:     []string{audio(4000, "RTP/AVP")},
			profile: OfferProfile{SRTP: true, DTLS: true, Suites: []string{suite80}},
			want:    []wantStream{{media: "audio", port: 20000, proto: "UDP/TLS/RTP/SAVP", setup: "actpass"}},
		},
		{
			name: "RFC 4585: the feedback profile follows the source's",
			src:  []string{audio(4000, "RTP/AVPF"), video(4002, "RTP/AVP")},
			want: []wantStream{{media: "audio", port: 20000, proto: "RTP/AVPF"}, {media: "video", port: 20002, proto: "RTP/AVP"}},
		},
		{
			name:    "RFC 4585: feedback always",
			src:     []string{audio(4000, "RTP/AVP")},
			profile: OfferProfile{SRTP: true, Feedback: FeedbackAlways},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/SAVPF"}},
		},
		{
			name:    "RFC 4585: feedback never",
			src:     []string{audio(4000, "RTP/AVPF")},
			profile: OfferProfile{Feedback: FeedbackNever},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			locals := tc.locals
			if locals == nil {
				locals = twoLocals
			}
			n := newLeg()
			out, err := n.Offer(peerSDP(t, 1, tc.src...), locals, tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			checkStreams(t, d, tc.want)
			if d.OriginUser != "parapet" || d.OriginSession != 77 || d.OriginVersion != 1 {
				t.Errorf("o= %s %d %d, want parapet 77 1", d.OriginUser, d.OriginSession, d.OriginVersion)
			}
			if !bytes.Equal(n.Local(), out) || n.Len() != len(tc.want) {
				t.Errorf("Local or Len do not describe the offer")
			}
			for i, w := range tc.want {
				for j, tag := range w.tags {
					if !n.Offered(i, tag, w.suites[j]) {
						t.Errorf("Offered(%d, %d, %s) = false", i, tag, w.suites[j])
					}
				}
				if got := n.OfferedDTLS(i); got != (w.setup != "") {
					t.Errorf("OfferedDTLS(%d) = %v", i, got)
				}
				if w.setup != "" && !sameFingerprints(d.Streams[i].Fingerprints, []Fingerprint{parapetFP}) {
					t.Errorf("stream %d: fingerprint is not parapet's", i)
				}
			}
		})
	}
}

// RFC 4568 section 8.3: SDES keys are written only where the signalling is
// confidential; NoSDES makes Offer and Answer refuse, and nothing changes.
func TestNegotiationNoSDES(t *testing.T) {
	n := NewNegotiation(NegotiationConfig{Addr: relayV4, NoSDES: true, Fingerprint: parapetFP})
	src := peerSDP(t, 1, audio(4000, "RTP/AVP"))
	out, err := n.Offer(src, oneLocal, OfferProfile{SRTP: true, Suites: []string{suite80}})
	if !errors.Is(err, ErrSDESInClear) || out != nil || n.Local() != nil || n.Len() != 0 || n.Origin().Session != 0 {
		t.Fatalf("SDES offer on a clear leg: %v, %q, state changed", err, out)
	}
	if _, err := n.Offer(src, oneLocal, OfferProfile{SRTP: true, DTLS: true}); err != nil {
		t.Fatalf("DTLS-SRTP offer on a clear leg: %v", err)
	}
	m := NewNegotiation(NegotiationConfig{Addr: relayV4, NoSDES: true})
	if err := m.TakeOffer(peerSDP(t, 1, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1))), []StreamChoice{sdesChoice(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Answer(peerSDP(t, 1, audio(5000, "RTP/AVP")), oneLocal); !errors.Is(err, ErrSDESInClear) || m.Local() != nil {
		t.Fatalf("SDES answer on a clear leg: %v", err)
	}
}

// RFC 3264 section 6: generating the answer. The source is the other
// leg's answer to parapet's offer there.
func TestNegotiationAnswer(t *testing.T) {
	peerKey := testCrypto(2, suite80, 3)
	cases := []struct {
		name    string
		offer   []string
		choices []StreamChoice
		src     []string
		locals  []Endpoint
		want    []wantStream
		role    string // parapet's DTLS role, when DTLS
	}{
		{
			name:    "6: one m= line per offered one; a refused stream gets port 0",
			offer:   []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")},
			choices: []StreamChoice{{Active: true, Crypto: -1}, {Crypto: -1}},
			src:     []string{audio(5000, "RTP/AVP"), video(0, "RTP/AVP")},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}, {media: "video", port: 0}},
		},
		{
			name:    "6: a stream the other leg refused (no relay endpoint) gets port 0",
			offer:   []string{audio(4000, "RTP/AVP"), video(4002, "RTP/AVP")},
			choices: plainChoices(1, 1),
			src:     []string{audio(5000, "RTP/AVP"), video(0, "RTP/AVP")},
			locals:  []Endpoint{oneLocal[0], {}},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/AVP"}, {media: "video", port: 0}},
		},
		{
			name:    "6: the answer keeps the offered profile",
			offer:   []string{audio(4000, "RTP/SAVPF", cryptoAttr(1, suite80, 1))},
			choices: []StreamChoice{sdesChoice(0)},
			src:     []string{audio(5000, "RTP/AVP")},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/SAVPF", tags: []int{1}, suites: []string{suite80}}},
		},
		{
			name:    "RFC 4568 section 7.1.1: one a=crypto, with the tag and suite of the line chosen",
			offer:   []string{audio(4000, "RTP/SAVP", cryptoAttr(1, suiteGCM, 1), "crypto:"+peerKey.Marshal())},
			choices: []StreamChoice{sdesChoice(1)},
			src:     []string{audio(5000, "RTP/AVP")},
			want:    []wantStream{{media: "audio", port: 20000, proto: "RTP/SAVP", tags: []int{2}, suites: []string{suite80}}},
		},
		{
			name:    "RFC 5763 section 5: to setup:actpass parapet answers passive",
			offer:   []string{audio(4000, "UDP/TLS/RTP/SAVP", fingerprintAttr(1), "setup:actpass")},
			choices: []StreamChoice{dtlsChoice},
			src:     []string{audio(5000, "RTP/AVP")},
			want:    []wantStream{{media: "audio", port: 20000, proto: "UDP/TLS/RTP/SAVP", setup: "passive"}},
			role:    "passive",
		},
		{
			name:    "RFC 5763 section 5: to setup:passive parapet answers active",
			offer:   []string{audio(4000, "UDP/TLS/RTP/SAVP", fingerprintAttr(1), "setup:passive")},
			choices: []StreamChoice{dtlsChoice},
			src:     []string{audio(5000, "RTP/AVP")},
			want:    []wantStream{{media: "audio", port: 20000, proto: "UDP/TLS/RTP/SAVP", setup: "active"}},
			role:    "active",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			locals := tc.locals
			if locals == nil {
				locals = twoLocals
			}
			n := newLeg()
			offer := peerSDP(t, 1, tc.offer...)
			if err := n.TakeOffer(offer, tc.choices); err != nil {
				t.Fatal(err)
			}
			out, err := n.Answer(peerSDP(t, 1, tc.src...), locals)
			if err != nil {
				t.Fatal(err)
			}
			d := parsed(t, out)
			checkStreams(t, d, tc.want)
			for i, st := range d.Streams {
				for _, c := range st.Crypto {
					if bytes.Equal(c.Key, offer.Streams[i].Crypto[tc.choices[i].Crypto].Key) {
						t.Errorf("stream %d: parapet answered with the peer's own key", i)
					}
				}
			}
			s := n.Stream(0)
			if tc.role != "" {
				pc := s.PeerConfig(nil, []string{suite80})
				if s.Setup != tc.role || pc.DTLS == nil || pc.DTLS.Client != (tc.role == "active") ||
					!sameFingerprints(pc.DTLS.Fingerprints, []Fingerprint{testFingerprint("sha-256", 32, 1)}) ||
					!sameFingerprints(d.Streams[0].Fingerprints, []Fingerprint{parapetFP}) {
					t.Errorf("DTLS state: setup %q, peer config %+v", s.Setup, pc.DTLS)
				}
			}
			if s.RTP.String() != "198.51.100.7:4000" || n.RemoteIsAnswer() || n.Remote() != offer {
				t.Errorf("stream 0 sends to %v; remote is answer %v", s.RTP, n.RemoteIsAnswer())
			}
		})
	}
}

// RFC 3264 section 6.1 (and 8.4 for hold): the answer's direction is one
// the offer allows. parapet relays, so it sends toward the offerer only
// what the other leg sends, and receives only what the other leg takes.
func TestNegotiationAnswerDirection(t *testing.T) {
	cases := []struct {
		name    string
		offered []string // the peer's offer: attributes of its stream
		other   []string // the other leg's answer
		want    string   // direction parapet writes, "" for none (sendrecv)
	}{
		{"sendrecv answered sendrecv", nil, nil, ""},
		{"sendrecv answered sendonly: copied", nil, []string{"sendonly"}, "sendonly"},
		{"sendrecv answered inactive: copied", nil, []string{"inactive"}, "inactive"},
		{"hold: sendonly gets recvonly", []string{"sendonly"}, []string{"recvonly"}, "recvonly"},
		{"hold: sendonly gets recvonly though the other leg said sendrecv", []string{"sendonly"}, nil, "recvonly"},
		{"hold: sendonly gets inactive when the other leg takes nothing", []string{"sendonly"}, []string{"inactive"}, "inactive"},
		{"recvonly gets sendonly", []string{"recvonly"}, []string{"sendonly"}, "sendonly"},
		{"recvonly gets sendonly though the other leg said sendrecv", []string{"recvonly"}, nil, "sendonly"},
		{"inactive gets inactive", []string{"inactive"}, nil, "inactive"},
		{"8.4: RFC 2543 hold (c=0.0.0.0): parapet sends nothing", []string{held}, nil, "recvonly"},
		{"8.4: c=0.0.0.0 with recvonly: inactive", []string{held, "recvonly"}, nil, "inactive"},
		{"8.4: resume: sendrecv again", nil, []string{"sendrecv"}, "sendrecv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newLeg()
			if err := n.TakeOffer(peerSDP(t, 1, audio(4000, "RTP/AVP", tc.offered...)), plainChoices(1)); err != nil {
				t.Fatal(err)
			}
			out, err := n.Answer(peerSDP(t, 1, audio(5000, "RTP/AVP", tc.other...)), oneLocal)
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed(t, out).Streams[0].Direction; got != tc.want {
				t.Errorf("answer direction %q, want %q", got, tc.want)
			}
		})
	}
}

// RFC 3264 section 8.4: parapet's offer carries the source's direction, and
// turns RFC 2543's c=0.0.0.0 hold, which its own c= line would hide, into
// a direction attribute.
func TestNegotiationOfferDirection(t *testing.T) {
	cases := []struct {
		name string
		src  []string
		want string
	}{
		{"no attribute: none", nil, ""},
		{"sendonly (hold)", []string{"sendonly"}, "sendonly"},
		{"recvonly", []string{"recvonly"}, "recvonly"},
		{"inactive", []string{"inactive"}, "inactive"},
		{"c=0.0.0.0: sendonly", []string{held}, "sendonly"},
		{"c=0.0.0.0 with sendonly: sendonly", []string{held, "sendonly"}, "sendonly"},
		{"c=0.0.0.0 with recvonly: inactive", []string{held, "recvonly"}, "inactive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := newLeg().Offer(peerSDP(t, 1, audio(4000, "RTP/AVP", tc.src...)), oneLocal, OfferProfile{})
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed(t, out).Streams[0].Direction; got != tc.want {
				t.Errorf("offer direction %q, want %q", got, tc.want)
			}
		})
	}
}

// RFC 3264 section 8.4: the peer holds the call when no active stream
// both sends and receives.
func TestNegotiationHeld(t *testing.T) {
	cases := []struct {
		name    string
		offer   []string
		choices []StreamChoice
		want    bool
	}{
		{"sendrecv", []string{audio(4000, "RTP/AVP")}, plainChoices(1), false},
		{"sendonly", []string{audio(4000, "RTP/AVP", "sendonly")}, plainChoices(1), true},
		{"recvonly", []string{audio(4000, "RTP/AVP", "recvonly")}, plainChoices(1), true},
		{"inactive", []string{audio(4000, "RTP/AVP", "inactive")}, plainChoices(1), true},
		{"c=0.0.0.0", []string{audio(4000, "RTP/AVP", held)}, plainChoices(1), true},
		{"one stream held, one not", []string{audio(4000, "RTP/AVP", "sendonly"), video(4002, "RTP/AVP")}, plainChoices(1, 1), false},
		{"the only sendrecv stream refused", []string{audio(4000, "RTP/AVP", "sendonly"), video(4002, "RTP/AVP")}, plainChoices(1, 0), true},
		{"every stream refused", []string{audio(4000, "RTP/AVP", "sendonly")}, plainChoices(0), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newLeg()
			if n.Held() {
				t.Fatal("held before any SDP")
			}
			if err := n.TakeOffer(peerSDP(t, 1, tc.offer...), tc.choices); err != nil {
				t.Fatal(err)
			}
			if got := n.Held(); got != tc.want {
				t.Errorf("Held() = %v, want %v", got, tc.want)
			}
		})
	}
}

// RFC 3264 section 6: an answer refusing every stream keeps every m= line,
// with port 0.
func TestNegotiationDecline(t *testing.T) {
	n := newLeg()
	out, err := n.Decline(peerSDP(t, 1, audio(4000, "RTP/SAVP", cryptoAttr(1, suite80, 1)), video(4002, "RTP/AVP")))
	if err != nil {
		t.Fatal(err)
	}
	checkStreams(t, parsed(t, out), []wantStream{{media: "audio", proto: "RTP/SAVP"}, {media: "video", proto: "RTP/AVP"}})
	if n.Stream(0).Active || n.SRTP() {
		t.Error("Decline changed the streams")
	}
}

func TestStreamStatePeerConfig(t *testing.T) {
	ours, theirs := testCrypto(1, suite80, 1), testCrypto(1, suite80, 2)
	src := []netip.Addr{relayV4b}
	s := StreamState{Active: true, Ours: &ours, Theirs: &theirs, Mux: true}
	pc := s.PeerConfig(src, []string{suite80})
	if pc.In != &theirs || pc.Out != &ours || !pc.Mux || pc.DTLS != nil || !slices.Equal(pc.Sources, src) {
		t.Errorf("SDES: %+v", pc)
	}
	d := StreamState{Active: true, DTLS: true, Setup: "active", Fingerprints: []Fingerprint{parapetFP}}
	pc = d.PeerConfig(src, []string{suite80})
	if pc.In != nil || pc.Out != nil || pc.Sources != nil || pc.DTLS == nil || !pc.DTLS.Client ||
		!slices.Equal(pc.DTLS.Suites, []string{suite80}) || !sameFingerprints(pc.DTLS.Fingerprints, []Fingerprint{parapetFP}) {
		t.Errorf("DTLS: %+v", pc)
	}
}
