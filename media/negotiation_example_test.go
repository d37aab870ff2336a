package media_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/parapet-sbc/parapet/media"
)

// A call relayed from leg A to leg B: A's peer offers, parapet offers on B
// from it, B's peer answers, and parapet answers A from that answer. Each
// leg has its own Negotiation; policy's choices are written out here.
func ExampleNegotiation() {
	relay := netip.MustParseAddr("192.0.2.10")
	a := media.NewNegotiation(media.NegotiationConfig{Addr: relay, Session: 1001})
	b := media.NewNegotiation(media.NegotiationConfig{Addr: relay, Session: 2002})
	plain := []media.StreamChoice{{Active: true, Crypto: -1}}
	aLocal := []media.Endpoint{{Addr: relay, Port: 20000}}
	bLocal := []media.Endpoint{{Addr: relay, Port: 20002}}

	offer, _ := media.ParseSDP([]byte("v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"))
	_ = a.TakeOffer(offer, plain)                               // judged by policy on A's zone
	toB, _ := b.Offer(a.Remote(), bLocal, media.OfferProfile{}) // planned for B's zone

	answer, _ := media.ParseSDP([]byte("v=0\r\no=bob 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 6000 RTP/AVP 0\r\na=recvonly\r\n"))
	_ = b.CheckAnswer(answer)
	_ = b.TakeAnswer(answer, plain)
	toA, _ := a.Answer(b.Remote(), aLocal)

	show := func(leg string, sdp []byte) {
		for _, l := range strings.Split(strings.TrimSpace(string(sdp)), "\r\n") {
			if l[0] == 'o' || l[0] == 'm' || l == "a=sendonly" || l == "a=recvonly" {
				fmt.Println(leg, l)
			}
		}
	}
	show("B:", toB)
	show("A:", toA)
	fmt.Println("A held:", a.Held(), "B sends to", b.Stream(0).RTP)
	// Output:
	// B: o=parapet 2002 1 IN IP4 192.0.2.10
	// B: m=audio 20002 RTP/AVP 0
	// B: a=sendonly
	// A: o=parapet 1001 1 IN IP4 192.0.2.10
	// A: m=audio 20000 RTP/AVP 0
	// A: a=recvonly
	// A held: true B sends to 203.0.113.5:6000
}
