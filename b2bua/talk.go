package b2bua

import (
	"context"

	"github.com/parapet-sbc/parapet/compliance"
)

// talk waits for the end of an established call and tears it down.
func (c *Call) talk() {
	ctx, stop := context.WithCancel(context.Background())
	watching := c.watchTimers(ctx)
	defer func() {
		stop()
		watching.Wait()
	}()
	aCtx, bCtx := c.a.uas.Context(), c.b.uac.Context()
	select {
	case <-aCtx.Done():
	case <-bCtx.Done():
	case <-c.ended:
	}
	// select picks at random among ready cases: a BYE that arrived as the
	// call was being hung up is still what ended it.
	switch {
	case aCtx.Err() != nil:
		c.setOutcome(compliance.DispositionAnswered, 200, "bye from a")
	case bCtx.Err() != nil:
		c.setOutcome(compliance.DispositionAnswered, 200, "bye from b")
	default:
		c.setOutcome(c.hangDisp, 200, c.hangReason)
	}
	c.teardown()
}
