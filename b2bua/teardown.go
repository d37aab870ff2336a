package b2bua

import (
	"context"
	"errors"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// teardown ends whatever dialogs are still up: BYE first, then media
// (the relay is closed by finish).
func (c *Call) teardown() { c.teardownLegs(true) }

// teardownLegs is teardown; byeA false leaves leg A alone (its dialog is
// still being answered by another goroutine, or never confirmed).
func (c *Call) teardownLegs(byeA bool) {
	c.settleB()
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	// A BYE to A waits (bounded) for A's ACK first: a UAS does not send BYE
	// before the ACK for its 2xx (RFC 3261 section 15), and a caller that
	// did ACK must not be left believing the call is up.
	if uas := c.a.uas; byeA && uas != nil && uas.LoadState() != sip.DialogStateEnded && c.established.Load() {
		wg.Add(1)
		c.goSafe("bye to a", func() {
			defer wg.Done()
			if err := uas.Bye(ctx); err != nil {
				c.log.Debug("bye to a", "error", err)
			}
		})
	}
	if uac := c.a.uac; byeA && uac != nil && uac.LoadState() != sip.DialogStateEnded {
		// Leg A placed by a transfer.
		wg.Add(1)
		c.goSafe("bye to a", func() {
			defer wg.Done()
			if err := uac.Bye(ctx); err != nil {
				c.log.Debug("bye to a", "error", err)
			}
		})
	}
	if c.b != nil && c.b.uac != nil && c.b.uac.LoadState() != sip.DialogStateEnded && c.b.uac.InviteResponse != nil &&
		c.b.uac.InviteResponse.IsSuccess() {
		wg.Add(1)
		c.goSafe("bye to b", func() {
			defer wg.Done()
			if err := c.byeBOnce(ctx); err != nil {
				c.log.Debug("bye to b", "error", err)
			}
		})
	}
	wg.Wait()
}

// answered reports whether the caller may hold a dialog from parapet's 2xx,
// given how sending it ended: acknowledged, or retransmitted until sipgo
// gave up waiting for the ACK — after which RFC 3261 section 13.3.1.4 has
// the dialog confirmed and the session ended with BYE. Only a 2xx that the
// caller's CANCEL kept from being sent leaves it none.
func answered(err error) bool {
	return err == nil || !errors.Is(err, sip.ErrTransactionCanceled)
}

// byeOnLateAck waits for the caller's ACK to a 2xx of a call that ended
// before it came, and then sends BYE: sipgo retransmits the 2xx for up to
// 64*T1, and a caller whose ACK comes that late believes the call is up
// until it gets one (RFC 3261 section 15); so may a caller whose ACK never
// came. A stopping server waits no longer. Leg A is forgotten when this
// returns.
func (c *Call) byeOnLateAck(acked <-chan error) {
	defer c.env.reg.wg.Done()
	defer func() {
		c.env.reg.forgetLeg(c.a)
		c.a.uas.Close()
	}()
	select {
	case err := <-acked:
		if !answered(err) {
			return
		}
	case <-c.env.stopping:
		// Stop retransmitting the 2xx (sipgo would for up to 64*T1): the
		// server is going, and so is this dialog.
		c.aTx.Terminate()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if err := c.a.uas.Bye(ctx); err != nil {
		c.log.Debug("bye to a after its late ACK", "error", err)
		return
	}
	c.log.Info("sent BYE to a caller whose call ended before its ACK")
}

func (c *Call) byeB() {
	c.settleB()
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if err := c.byeBOnce(ctx); err != nil {
		c.log.Debug("bye to b", "error", err)
	}
}
