package b2bua_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// A leg that an INVITE with Replaces took the place of records the media it
// carried, and the replacing leg what it carried from then on, as for a
// REFER's transfer: neither shows the side's counters for the whole call.
func TestInviteReplacesLegMediaPerLeg(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	caller, carrier := l.connect(t, ctx)
	exchange(t, caller, carrier)
	callID, local, remote := caller.DialogID()
	replaces := sip.NewHeader("Replaces", fmt.Sprintf("%s;to-tag=%s;from-tag=%s", callID, remote, local))
	cs, err := c.Call(ctx, fmt.Sprintf("sip:+15551230000@%s", l.pbxUDP), sim.CallOptions{Headers: []sip.Header{replaces}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replaced leg's BYE", func() bool { return caller.Context().Err() != nil })
	talkAgain(t, carrier, cs, 9000)
	if err := cs.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the carrier's BYE", func() bool { return carrier.Context().Err() != nil })
	rec := l.sink.waitCalls(t, 1)[0]
	a, a2 := leg(rec, compliance.RoleA), leg(rec, "a2")
	if a.Media == nil || a2.Media == nil {
		t.Fatalf("media: a %+v, a2 %+v", a.Media, a2.Media)
	}
	// Each leg carried about one exchange's packets, not both.
	if a.Media.PacketsIn < packets || a.Media.PacketsIn >= 2*packets || a2.Media.PacketsIn < packets || a2.Media.PacketsIn >= 2*packets {
		t.Errorf("packets in: a %d, a2 %d; want each leg's own (about %d)", a.Media.PacketsIn, a2.Media.PacketsIn, packets)
	}
}
