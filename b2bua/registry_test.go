package b2bua

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/media"
)

func inDialog(callID, toTag string) *sip.Request {
	req := sip.NewRequest(sip.BYE, sip.Uri{User: "bob", Host: "127.0.0.1"})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	to := &sip.ToHeader{Address: sip.Uri{Host: "127.0.0.1"}, Params: sip.NewParams()}
	if toTag != "" {
		to.Params.Add("tag", toTag)
	}
	req.AppendHeader(to)
	return req
}

// The registry finds a leg by the dialog a request names (Call-ID and
// parapet's tag), forgets a reset leg only while the key is still its own,
// and keeps leg A through a late ACK.
func TestRegistryLegs(t *testing.T) {
	r := newRegistry()
	c := &Call{id: "c1"}
	c.a = &leg{call: c, key: dialogKey{"cid-a", "ours-a"}}
	c.b = &leg{call: c, key: dialogKey{"cid-b", "ours-b"}}
	r.add(c)
	r.addLeg(c.a)
	r.addLeg(c.b)
	if got := r.lookup(inDialog("cid-a", "ours-a")); got != c.a {
		t.Errorf("lookup leg a: %v", got)
	}
	if got := r.lookup(inDialog("cid-a", "theirs")); got != nil {
		t.Errorf("a request with another tag found %v", got)
	}
	if got := r.lookup(inDialog("cid-b", "")); got != nil {
		t.Errorf("a request without a To tag found %v", got)
	}

	// A new attempt on leg B takes the same key: forgetting the old one
	// must not drop the new.
	retry := &leg{call: c, key: c.b.key}
	r.addLeg(retry)
	r.forgetLeg(c.b)
	if got := r.lookup(inDialog("cid-b", "ours-b")); got != retry {
		t.Errorf("forgetting the old attempt dropped the new: %v", got)
	}
	c.b = retry

	r.forget(c, media.Counters{PacketsIn: 7}, true)
	if r.count() != 0 || r.lookup(inDialog("cid-b", "ours-b")) != nil {
		t.Errorf("forget left the call or leg b")
	}
	if r.lookup(inDialog("cid-a", "ours-a")) != c.a {
		t.Errorf("leg a was forgotten while its ACK may still come")
	}
	if m, n := r.media(); m.PacketsIn != 7 || n != 0 {
		t.Errorf("media %+v, %d live; want the ended call's 7 packets, none live", m, n)
	}
	r.forgetLeg(c.a)
	if r.lookup(inDialog("cid-a", "ours-a")) != nil {
		t.Errorf("leg a not forgotten")
	}
}

func TestRegistrySlots(t *testing.T) {
	r := newRegistry()
	site := callLimit{key: "site", max: 3}
	trunk := []callLimit{site, {key: "route|trunk", max: 2}, {key: "zone|pbx"}} // the zone has no limit
	other := []callLimit{site, {key: "route|other", max: 1}}
	for range 2 {
		if full := r.takeSlots(trunk, false); full != nil {
			t.Fatalf("two slots of two not taken: %s full", full.key)
		}
	}
	if full := r.takeSlots(trunk, false); full == nil || full.key != "route|trunk" {
		t.Errorf("a third slot of two taken (full: %v)", full)
	}
	if full := r.takeSlots(other, false); full != nil {
		t.Errorf("another route's slot refused: %s full", full.key)
	}
	// The site is now full (3): a call on any route is refused, and the
	// refusal takes nothing.
	if full := r.takeSlots(other, false); full == nil || full.key != "site" {
		t.Errorf("a fourth call on the site: full %v", full)
	}
	if r.slots["route|other"] != 1 || r.slots["site"] != 3 {
		t.Errorf("a refused call counted: %v", r.slots)
	}
	r.releaseSlots(trunk)
	if full := r.takeSlots(trunk, false); full != nil {
		t.Errorf("a released slot not taken again: %s full", full.key)
	}
	r.releaseSlots(trunk)
	r.releaseSlots(trunk)
	r.releaseSlots(other)
	if len(r.slots) != 0 {
		t.Errorf("slots %v: a limit back to zero calls is dropped", r.slots)
	}
}

func TestRegistryLive(t *testing.T) {
	r := newRegistry()
	up, ringing := &Call{id: "up"}, &Call{id: "ringing"}
	up.established.Store(true)
	r.add(up)
	r.add(ringing)
	if n := len(r.live(nil)); n != 2 {
		t.Errorf("%d live calls, want 2", n)
	}
	got := r.live(func(c *Call) bool { return c.established.Load() })
	if len(got) != 1 || got[0] != up {
		t.Errorf("established calls %v", got)
	}
}
