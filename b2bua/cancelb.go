package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/media"
)

// Why parapet gives up on leg B before its final response.
type giveUp int

const (
	notGivenUp        giveUp = iota
	giveUpRefused            // policy refused B's early answer
	giveUpCaller             // A cancelled, or its INVITE transaction ended
	giveUpEnded              // the call was hung up (shutdown, a DTLS failure...)
	giveUpRingTimeout        // B rang for ringTimeout
	giveUpFailed             // relaying B's progress to A failed
	giveUpConnLost           // B's TCP or TLS connection closed before its final response
	giveUpNoResponse         // B sent no response within the route's attempt_timeout
)

// connPoll is how often the connection of a TCP or TLS leg B is looked for
// while parapet waits for B's final response.
const connPoll = 200 * time.Millisecond

var errConnLost = errors.New("the connection to the callee side closed before it answered")

var errGaveUp = errors.New("parapet gave up on the callee")

// outgoing is leg B's INVITE while parapet waits for its final response.
// Once parapet gives up on it, it CANCELs it as soon as a provisional
// response allows (RFC 3261 section 9.1) and goes on waiting for the final
// response, which is 487 or, when B answered as the CANCEL crossed, a 2xx
// that must be ACKed and BYE'd. (sipgo's WaitAnswer would CANCEL on its
// own when its context ends, but then drops a 2xx that crosses a CANCEL
// answered other than 200, and ACKs none.)
type outgoing struct {
	cli  *sipgo.Client
	log  *slog.Logger
	stop context.CancelCauseFunc // ends WaitAnswer, which then sends no CANCEL
	done chan struct{}           // closed once WaitAnswer returned

	mu     sync.Mutex
	heard  bool         // a response came
	cancel *sip.Request // a CANCEL for the INVITE, once a provisional response came
	why    giveUp
	sent   bool
}

// provisional notes a provisional response to inv, the INVITE as last
// sent. It runs on WaitAnswer's goroutine, which owns inv.
func (o *outgoing) provisional(inv *sip.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cancel == nil {
		o.cancel = cancelRequest(inv)
	}
	o.sendLocked()
}

// final notes a final response: the transaction a CANCEL would match is
// over (after a challenge, sipgo sends a new INVITE).
func (o *outgoing) final() {
	o.mu.Lock()
	o.cancel = nil
	o.mu.Unlock()
}

// giveUp gives up on B: the first reason is kept.
func (o *outgoing) giveUp(why giveUp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.why == notGivenUp {
		o.why = why
	}
	o.sendLocked()
}

// heardFrom notes that B responded, and reports whether it had before.
func (o *outgoing) heardFrom() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.heard
	o.heard = true
	return was
}

// silent reports whether B has not responded yet.
func (o *outgoing) silent() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.heard
}

func (o *outgoing) reason() giveUp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.why
}

func (o *outgoing) sendLocked() {
	if o.why == notGivenUp || o.why == giveUpConnLost || o.why == giveUpNoResponse || o.cancel == nil || o.sent {
		return // (no CANCEL can follow the INVITE on a closed connection)
	}
	o.sent = true
	req := o.cancel
	go func() {
		defer o.recoverPanic("cancel to b")
		o.sendCancel(req)
	}()
}

// sendCancel sends req, a CANCEL, and stops waiting for the INVITE's
// final response 64*T1 later (RFC 3261 section 9.1).
func (o *outgoing) sendCancel(req *sip.Request) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer o.recoverPanic("cancel transaction to b")
		// The request is complete: sipgo adds nothing to it.
		res, err := o.cli.Do(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
		switch {
		case err != nil:
			o.log.Debug("cancel to b", "error", err)
		case res.StatusCode != 200:
			o.log.Debug("cancel to b", "status", res.StatusCode)
		}
	}()
	t := time.NewTimer(64 * sip.T1)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		o.log.Warn("no final response from b after CANCEL")
		o.stop(sipgo.WaitAnswerForceCancelErr)
	}
}

// cancelRequest builds the CANCEL of inv (RFC 3261 section 9.1): the same
// Request-URI, top Via, From, To, Call-ID, CSeq number and Route. (sipgo
// has one, unexported, used only by the WaitAnswer path parapet avoids.)
func cancelRequest(inv *sip.Request) *sip.Request {
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	sip.CopyHeaders("Route", inv, req)
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.SetSource(inv.Source())
	req.Laddr = inv.Laddr
	return req
}

// dropB ends the dialog of a 2xx from B that parapet no longer wants: ACK
// (when B offered in it, with an answer declining every stream), then BYE.
func (c *Call) dropB(delayed bool) {
	b := c.b
	if delayed {
		res := b.uac.InviteResponse
		var offer *media.Description
		if len(res.Body()) > 0 && isSDP(res.ContentType()) {
			offer, _ = media.ParseSDP(res.Body())
		}
		c.mu.Lock()
		b.ackPending, b.pendingOffer = true, offer
		c.mu.Unlock()
	} else {
		c.writeAck(b.uac, nil)
	}
	c.byeB()
}

// waitAnswer is uac.WaitAnswer without its limit of 10 responses: when that
// limit is hit it resumes on the same transaction (the responses already
// read were handed to opts.OnResponse). Digest retries stay bounded by
// sipgo within each round.
func waitAnswer(ctx context.Context, uac *sipgo.DialogClientSession, opts sipgo.AnswerOptions) error {
	for round := 0; ; round++ {
		err := uac.WaitAnswer(ctx, opts)
		if err == nil || err.Error() != tooManyResponses || round == maxProvisionalRounds || ctx.Err() != nil {
			return err
		}
		if res := uac.InviteResponse; res != nil && !res.IsProvisional() {
			// The tenth response was final (a challenge that sipgo could
			// not answer within the limit): not worth resuming.
			return err
		}
	}
}
