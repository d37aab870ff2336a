package b2bua

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Reliable provisional responses (RFC 3262) toward the caller, when its
// INVITE requires them (Require: 100rel): each 18x parapet relays to A
// carries Require: 100rel and an RSeq, is retransmitted until A's PRACK
// acknowledges it, and the next one waits for that PRACK; one whose PRACK
// never comes ends the call with 500 (section 3). Toward the callee
// parapet offers 100rel when the caller supports it, and PRACKs B's
// reliable provisionals (prackB).

// errNoPrack is a reliable provisional response to A that A never
// acknowledged.
var errNoPrack = errors.New("no PRACK from the caller for a reliable provisional response within 64*T1 (RFC 3262 section 3)")

// rel100 is leg A's reliable-provisional state.
type rel100 struct {
	rseq    uint32        // the RSeq of the last reliable provisional sent
	pracked chan struct{} // closed when it is acknowledged
	answer  bool          // it carries parapet's SDP answer
}

// requireTags splits the Require or Proxy-Require headers (name) into
// their option tags.
func requireTags(req *sip.Request, name string) []string {
	var tags []string
	for _, h := range req.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}

func newRel100() *rel100 {
	var b [4]byte
	rand.Read(b[:])
	// RFC 3262 section 3: start between 1 and 2**31 - 1, leaving room to count up.
	return &rel100{rseq: binary.BigEndian.Uint32(b[:])%(1<<30) + 1}
}

// sendReliable sends res (a 101-199 response to A's INVITE) reliably:
// it retransmits res with T1 doubling until A's PRACK comes (or 64*T1),
// and returns once it came, A gave up, or the call ended.
func (c *Call) sendReliable(res *sip.Response) error {
	a := c.a
	a.mu.Lock()
	r := a.rel
	r.rseq++
	rseq := r.rseq
	done := make(chan struct{})
	r.pracked = done
	r.answer = len(res.Body()) > 0
	a.mu.Unlock()

	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(rseq), 10)))
	if err := a.uas.WriteResponse(res); err != nil {
		return err
	}
	wait := sip.T1
	deadline := time.After(64 * sip.T1)
	for {
		select {
		case <-done:
			return nil
		case <-a.uas.Context().Done():
			return nil
		case <-c.ended:
			return nil
		case <-deadline:
			c.log.Warn("no PRACK for a reliable provisional response", "rseq", rseq)
			return errNoPrack
		case <-time.After(wait):
			if err := c.aTx.Respond(res); err != nil {
				return nil // the INVITE transaction is over
			}
			wait = min(2*wait, sip.T2)
		}
	}
}

// onPrack acknowledges a reliable provisional response (RFC 3262 section 7.2).
func (c *Call) onPrack(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	var rseq, cseq uint64
	var method string
	if h := req.GetHeader("RAck"); h != nil {
		f := strings.Fields(h.Value())
		if len(f) == 3 {
			rseq, _ = strconv.ParseUint(f[0], 10, 32)
			cseq, _ = strconv.ParseUint(f[1], 10, 32)
			method = f[2]
		}
	}
	matched, answered := false, false
	if l == c.a && l.uas != nil && method == string(sip.INVITE) && cseq == uint64(l.uas.InviteRequest.CSeq().SeqNo) {
		l.mu.Lock()
		if r := l.rel; r != nil && r.pracked != nil && rseq == uint64(r.rseq) {
			close(r.pracked)
			r.pracked = nil
			matched, answered = true, r.answer
		}
		l.mu.Unlock()
	}
	if answered {
		// A's early offer/answer is complete: its early dialog may carry
		// an UPDATE with a new offer (RFC 3311 section 5.1).
		c.mu.Lock()
		l.early = earlyDialog{done: true, update: hasTag(l.uas.InviteRequest, "Allow", "UPDATE")}
		c.mu.Unlock()
	}
	if !matched {
		c.a.zone.respond(tx, req, 481, "Call/Transaction Does Not Exist", "PRACK matches no unacknowledged reliable provisional response")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	c.a.zone.commonHeaders(res)
	c.a.zone.send(tx, res)
}

// prackB acknowledges B's reliable provisional response res (RFC 3262
// section 7.2) in B's early dialog. It reports whether res is new (its
// RSeq above the last one): a retransmission is PRACKed again but not
// relayed to A. r.acked says whether B accepted the PRACK.
func (c *Call) prackB(r *ringing, uac *sipgo.DialogClientSession, res *sip.Response) bool {
	r.acked = false
	h := res.GetHeader("RSeq")
	if h == nil || !hasTag(res, "Require", "100rel") {
		return true
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return true
	}
	req := sip.NewRequest(sip.PRACK, remoteTarget(uac.InviteRequest, res))
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, uac.InviteRequest.CSeq().SeqNo)))
	ctx, cancel := context.WithTimeout(context.Background(), 8*sip.T1)
	defer cancel()
	pres, err := uac.Do(ctx, req)
	r.acked = err == nil && pres.IsSuccess()
	if !r.acked {
		c.log.Debug("prack to b", "rseq", rseq, "error", err)
	}
	fresh := rseq > r.rseq
	if fresh {
		r.rseq = rseq
	}
	return fresh
}

// writeAck acknowledges B's 2xx to uac's INVITE with ack (nil: sipgo's
// own, without a body). sipgo v1.7.2 gives an ACK
// the CSeq of the dialog's last request (emiago/sipgo#355): after a PRACK
// or an early UPDATE, theirs, where RFC 3261 section 13.2.2.4 wants the
// INVITE's, and a callee that matches the ACK to its INVITE by CSeq
// retransmits its 2xx and drops the call. parapet then first writes the
// ACK itself with the INVITE's CSeq; sipgo's own follows (it confirms the
// dialog on sipgo's side, which BYE needs) and B absorbs it as an ACK
// that matches nothing. Only sipgo's is sent again should B retransmit
// its 2xx.
func (c *Call) writeAck(uac *sipgo.DialogClientSession, ack *sip.Request) {
	inv := uac.InviteRequest
	if uac.CSEQ() != inv.CSeq().SeqNo {
		own := ackFor(inv, uac.InviteResponse)
		if ack != nil {
			if ct := ack.ContentType(); ct != nil {
				own.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
			}
			own.SetBody(ack.Body())
			own.Laddr = ack.Laddr
		}
		if err := c.b.dua.Client.WriteRequest(own); err != nil {
			c.log.Warn("ack to b failed", "error", err)
		}
	}
	var err error
	if ack == nil {
		err = uac.Ack(context.Background())
	} else {
		err = uac.WriteAck(context.Background(), ack)
	}
	if err != nil {
		c.log.Warn("ack to b failed", "error", err)
	}
}

// remoteTarget is where requests of the dialog res makes with inv go
// (RFC 3261 section 12.1.2): res's Contact, else inv's Request-URI.
func remoteTarget(inv *sip.Request, res *sip.Response) sip.Uri {
	if ct := res.Contact(); ct != nil {
		return *ct.Address.Clone()
	}
	return *inv.Recipient.Clone()
}

// ackFor is the ACK to res, a 2xx to inv (RFC 3261 section 13.2.2.4):
// to res's Contact, over the route its Record-Route headers make, with
// inv's CSeq and credentials.
func ackFor(inv *sip.Request, res *sip.Response) *sip.Request {
	ack := sip.NewRequest(sip.ACK, remoteTarget(inv, res))
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		if h := inv.GetHeader(name); h != nil {
			ack.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		ack.AppendHeader(sip.NewHeader("Route", rrs[i].Value()))
	}
	if len(rrs) == 0 {
		ack.SetDestination(res.Source())
	}
	ack.SetTransport(inv.Transport())
	ack.Laddr = inv.Laddr // from the address the INVITE left from (UDP)
	ack.SetBody(nil)      // Content-Length: 0
	return ack
}
