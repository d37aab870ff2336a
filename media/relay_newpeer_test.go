package media

import (
	"net/netip"
	"testing"
)

// A transfer hands a plain-RTP side to a new phone on the same address
// (another port): the replaced phone, still sending until its BYE, must
// not latch the side again, and the new phone's media must flow. Without
// NewPeer the replaced phone's next packet takes the side back.
func TestRelayNewPeerTakesTheSideOver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newPeer bool
		want    netip.AddrPort // where side B is latched at the end
	}{
		{"transfer (NewPeer)", true, netip.AddrPortFrom(peerB.Addr(), 41000)},
		{"without NewPeer", false, peerB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, st := newTestRelay(t)
			src := []netip.Addr{peerB.Addr()}
			if err := st.Configure(SideB, PeerConfig{RTP: peerB, RTCP: netip.AddrPortFrom(peerB.Addr(), peerB.Port()+1),
				Sources: src}); err != nil {
				t.Fatal(err)
			}
			configure(t, st, SideA, peerA, nil, nil)
			sc := newScratch()
			b := st.sides[SideB]
			pkts := packets(t, nil, 10, 4)
			if out, _, _ := st.handle(b, pkts[0], peerB, false, sc); out == nil {
				t.Fatal("the first phone's packet was dropped")
			}
			// The transfer's target answers: same address, another port.
			target := netip.AddrPortFrom(peerB.Addr(), 41000)
			if err := st.Configure(SideB, PeerConfig{RTP: target, RTCP: netip.AddrPortFrom(target.Addr(), target.Port()+1),
				Sources: src, NewPeer: tc.newPeer}); err != nil {
				t.Fatal(err)
			}
			before := r.Counters(SideB)
			st.handle(b, pkts[1], peerB, false, sc) // the replaced phone, before its BYE
			st.handle(b, pkts[2], target, false, sc)
			st.handle(b, pkts[3], target, false, sc)
			if l := b.latchRTP.Load(); l == nil || *l != tc.want {
				t.Fatalf("side B latched to %v, want %s", l, tc.want)
			}
			if k := r.Counters(SideB); tc.newPeer && (k.PacketsIn-before.PacketsIn != 2 || k.WrongSource-before.WrongSource != 1) {
				t.Errorf("counters after the hand-over %+v (before %+v): want the target's 2 in, the replaced phone's 1 wrong source", k, before)
			}
		})
	}
}
