package b2bua_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/internal/sim"
)

// A carrier caller who asked for privacy keeps it across a transfer: the
// PBX phone's REFER makes parapet invite another phone with the caller's
// number in From, and that INVITE carries the caller's Privacy as leg B's
// did, so that the PBX withholds the number at its own edge.
func TestTransferKeepsCallerPrivacy(t *testing.T) {
	l := newLab(t, labOptions{transfer: true})
	c := phone(t, "c")
	ctx := ctxT(t)
	carrier, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Headers: []sip.Header{sip.NewHeader("Privacy", "id")}})
	if err != nil {
		t.Fatal(err)
	}
	pbx := incoming(t, l.pbx)
	if p := pbx.InviteHeader("Privacy"); !slices.Equal(p, []string{"id"}) {
		t.Fatalf("Privacy at the PBX phone: %q, want [id]", p)
	}
	exchange(t, carrier, pbx)
	if st, err := pbx.Refer(ctx, fmt.Sprintf("sip:200@%s", c.Addr())); err != nil || st != 202 {
		t.Fatalf("REFER: %d, %v; want 202", st, err)
	}
	target := incoming(t, c)
	if p := target.InviteHeader("Privacy"); !slices.Equal(p, []string{"id"}) {
		t.Errorf("Privacy at the transfer target: %q, want [id] as leg b had", p)
	}
	select {
	case <-pbx.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the referrer got no BYE")
	}
	talkAgain(t, carrier, target, 9000)
	if err := carrier.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	l.sink.waitCalls(t, 1)
}
