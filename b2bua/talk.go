package b2bua

import (
	"context"

	"github.com/parapet-sbc/parapet/compliance"
)

// talk waits for the end of an established call and tears it down. A
// transfer that replaces a leg wakes it (swapped): it then waits on the
// new leg, and the replaced leg's end does not end the call.
func (c *Call) talk() {
	ctx, stop := context.WithCancel(context.Background())
	watching, watched := c.watchTimers(ctx)
	defer func() {
		stop()
		watching.Wait()
	}()
	for {
		c.mu.Lock()
		a, b := c.a, c.b
		c.mu.Unlock()
		for _, l := range []*leg{a, b} {
			if !watched[l] {
				// A leg a transfer placed: its session timer is watched
				// from now on.
				watching.Add(1)
				c.goSafe("session timer", func() {
					defer watching.Done()
					c.watchTimer(ctx, l)
				})
			}
			watched[l] = true
		}
		aCtx, bCtx := a.dialog().Context(), b.dialog().Context()
		select {
		case <-aCtx.Done():
		case <-bCtx.Done():
		case <-c.ended:
		case <-c.swapped:
			continue
		}
		if c.replaced(a, b) {
			continue
		}
		// select picks at random among ready cases: a BYE that arrived as
		// the call was being hung up is still what ended it.
		switch {
		case aCtx.Err() != nil:
			c.setOutcome(compliance.DispositionAnswered, 200, "bye from a")
		case bCtx.Err() != nil:
			c.setOutcome(compliance.DispositionAnswered, 200, "bye from b")
		default:
			c.setOutcome(c.hangDisp, 200, c.hangReason)
		}
		break
	}
	// The call is over, whoever ended it: what still waits on it stops (a
	// transfer's target still ringing is cancelled), and the record waits
	// for that transfer's outcome.
	c.endOnce.Do(func() { close(c.ended) })
	// No transfer starts from here on (countTransfer): the record waits
	// for those under way.
	c.mu.Lock()
	c.transfersClosed = true
	c.mu.Unlock()
	c.teardown()
	c.transferring.Wait()
}

// replaced reports whether a transfer replaced leg a or b since talk read
// them (and the call is not being hung up).
func (c *Call) replaced(a, b *leg) bool {
	if c.isEnded() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return a != c.a || b != c.b
}
