package b2bua

import (
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/media"
)

// dialogKey names one leg's dialog from parapet's side: the SIP Call-ID and
// parapet's own tag in it (the To tag of a dialog parapet answered, the
// From tag of one it started). A request inside a dialog carries both.
type dialogKey struct {
	callID, tag string
}

// keyOf is the dialog key of a request parapet receives inside one of its
// dialogs: parapet's tag is in the To header.
func keyOf(req *sip.Request) (dialogKey, bool) {
	cid, to := req.CallID(), req.To()
	if cid == nil || to == nil {
		return dialogKey{}, false
	}
	tag, _ := to.Params.Get("tag")
	return dialogKey{callID: string(*cid), tag: tag}, true
}

// registry is the server's book of live calls: the calls by id, their legs
// by dialog, the route slots taken, the relay counters of the calls already
// forgotten, and the WaitGroup of the goroutines calls run on. It is the one
// place that state lives, behind one mutex that nothing else takes; calls
// reach it only through its methods.
type registry struct {
	mu    sync.Mutex
	calls map[string]*Call
	legs  map[dialogKey]*leg
	// callIDs counts the legs booked under each SIP Call-ID, so that the
	// gate can tell a request of a live dialog from a stranger's.
	callIDs map[string]int
	// slots counts the calls up against each call limit (callLimit.key).
	slots map[string]int
	// ended sums the relay counters of the calls forgotten, so that live
	// plus ended counts every packet exactly once (stats).
	ended media.Counters
	// wg counts the goroutines of calls: each call's own, and the ones it
	// leaves behind (a BYE after a late ACK).
	wg sync.WaitGroup
}

func newRegistry() *registry {
	return &registry{calls: map[string]*Call{}, legs: map[dialogKey]*leg{}, callIDs: map[string]int{}, slots: map[string]int{}}
}

// add books a new call.
func (r *registry) add(c *Call) {
	r.mu.Lock()
	r.calls[c.id] = c
	r.mu.Unlock()
}

// addLeg books a leg under its dialog key.
func (r *registry) addLeg(l *leg) {
	r.mu.Lock()
	if _, ok := r.legs[l.key]; !ok {
		r.callIDs[l.key.callID]++
	}
	r.legs[l.key] = l
	r.mu.Unlock()
}

// knowsCallID reports whether a leg is booked under the SIP Call-ID id.
func (r *registry) knowsCallID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.callIDs[string(id)] > 0
}

// forgetLeg drops l, if its key is still l's (a reset leg B may have left
// its key to a new attempt).
func (r *registry) forgetLeg(l *leg) {
	r.mu.Lock()
	r.forgetLegLocked(l)
	r.mu.Unlock()
}

func (r *registry) forgetLegLocked(l *leg) {
	if l.key != (dialogKey{}) && r.legs[l.key] == l {
		delete(r.legs, l.key)
		if r.callIDs[l.key.callID]--; r.callIDs[l.key.callID] <= 0 {
			delete(r.callIDs, l.key.callID)
		}
	}
}

// lookup finds the leg a request inside a dialog belongs to, or nil.
func (r *registry) lookup(req *sip.Request) *leg {
	k, ok := keyOf(req)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.legs[k]
}

// forget drops a call that has ended: its counters move from the live calls
// to the ended ones under the lock stats reads both with (so a scrape counts
// them once, never less), and its legs are forgotten (leg A kept when
// keepA: its 2xx may still be acknowledged, see Call.byeOnLateAck).
func (r *registry) forget(c *Call, counters media.Counters, keepA bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = r.ended.Add(counters)
	delete(r.calls, c.id)
	if !keepA {
		r.forgetLegLocked(c.a)
	}
	if c.b != nil {
		r.forgetLegLocked(c.b)
	}
	for _, l := range c.departed {
		r.forgetLegLocked(l)
	}
}

// callLimit is one limit a call counts toward: the site's, its zone's or
// its route's; key names it in the registry's slots.
type callLimit struct {
	key  string
	max  int
	rule string // the policy rule of a refusal
	what string // the limit in words, for records
	// exceeded: an emergency call was counted although the limit was
	// full.
	exceeded bool
}

// takeSlots counts a new call against each of limits (those with a max),
// unless one of them is full: then it counts none and returns that one.
// An emergency call is counted even beyond a full limit: the limits it
// exceeded are marked (callLimit.exceeded) and nil is returned.
func (r *registry) takeSlots(limits []callLimit, emergency bool) *callLimit {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range limits {
		if l := &limits[i]; l.max > 0 && r.slots[l.key] >= l.max {
			if !emergency {
				return l
			}
			l.exceeded = true
		}
	}
	for _, l := range limits {
		if l.max > 0 {
			r.slots[l.key]++
		}
	}
	return nil
}

// releaseSlots gives back what takeSlots took.
func (r *registry) releaseSlots(limits []callLimit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range limits {
		if l.max <= 0 {
			continue
		}
		if r.slots[l.key]--; r.slots[l.key] <= 0 {
			delete(r.slots, l.key)
		}
	}
}

// live returns the calls that pass keep (nil: all of them).
func (r *registry) live(keep func(*Call) bool) []*Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := make([]*Call, 0, len(r.calls))
	for _, c := range r.calls {
		if keep == nil || keep(c) {
			calls = append(calls, c)
		}
	}
	return calls
}

// count is the number of live calls.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// media sums the relay counters of every call, live and ended, and counts
// the live ones, in one look.
func (r *registry) media() (media.Counters, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.ended
	for _, c := range r.calls {
		if rl := c.meter.Load(); rl != nil {
			m = m.Add(rl.Counters(media.SideA)).Add(rl.Counters(media.SideB))
		}
	}
	return m, len(r.calls)
}
