package b2bua

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// Timers of a call.
const (
	// ringTimeout bounds how long the callee may ring (RFC 3261 Timer C is
	// at least 3 minutes).
	ringTimeout = 3 * time.Minute
	// teardownTimeout bounds the BYEs sent when a call ends.
	teardownTimeout = 5 * time.Second
	// inDialogTimeout bounds a request relayed inside a dialog.
	inDialogTimeout = 32 * time.Second
)

// Call is one call: the inbound leg A that parapet answered, the outbound
// leg B it originated, the relay between them, and the decisions taken.
// Exactly one record is written for it, whatever path it takes.
type Call struct {
	s     *Server
	id    string
	log   *slog.Logger
	start time.Time

	caller, callee string
	rules          *rules // in force when the INVITE arrived
	route          *Route
	a, b           *leg
	aTx            sip.ServerTransaction // A's INVITE transaction

	relay   *media.Relay
	streams []*media.RelayStream // by m= line; nil when the line is not relayed
	// meter is relay, for Server.Stats while the call is live (Stats reads
	// it from another goroutine).
	meter atomic.Pointer[media.Relay]

	// mu guards the media state of both legs, the decisions and the outcome.
	mu          sync.Mutex
	decisions   []policy.Decision
	answered    time.Time
	disposition string
	status      int
	endReason   string
	endAt       time.Time // when the outcome was settled: the call's end

	ended      chan struct{}
	endOnce    sync.Once
	hangDisp   string
	hangReason string
	// hangStatus and hangWarn, when set, are what A gets if the call ends
	// before it was answered (else 500).
	hangStatus int
	hangWarn   string

	// routeSlot names the route whose call limit this call counts against.
	routeSlot string
	// folded: an INVITE from outside the zone's peers beyond the first in
	// an interval; a source_refused event counts it, no call record.
	folded bool

	established atomic.Bool
	reinvite    sync.Mutex // one offer/answer exchange at a time (RFC 3261 section 14.1)
	recordOnce  sync.Once
	// jmu orders the call's journal entries (see journal): jBegun once one
	// was written, jDone once the record went to the recorder.
	jmu    sync.Mutex
	jBegun bool
	jDone  bool
	// lateAck, when set, is the outcome of parapet's 2xx to A, which was
	// still unacknowledged when the call ended: see byeOnLateAck.
	lateAck <-chan error
}

// leg is one side of a call.
type leg struct {
	call      *Call
	role      string // compliance.RoleA or RoleB
	side      media.Side
	zone      *zone
	pol       *policy.Zone // the zone's policy in the call's rules
	transport policy.Transport
	secure    bool
	sig       policy.SignalingFacts
	admitted  bool
	attempted bool
	local     string
	remote    string
	key       dialogKey // the leg's dialog, as the registry books it
	// callID is the leg's SIP Call-ID; userAgent the peer's User-Agent
	// (leg A) or Server header (leg B) as free text fit for a record
	// (recordText). userAgent is guarded by Call.mu.
	callID    string
	userAgent string
	// conn is leg B's TCP or TLS connection, once found in sipgo's pool.
	conn sip.Connection

	dua *sipgo.DialogUA
	uas *sipgo.DialogServerSession // leg A
	uac *sipgo.DialogClientSession // leg B

	m legMedia

	ackMu   sync.Mutex
	ackWait map[uint32]chan *sip.Request // ACKs to our 2xx for re-INVITEs, by CSeq
	// rel is set on leg A when its INVITE requires reliable provisional
	// responses (RFC 3262); guarded by ackMu.
	rel *rel100
	// firstAck receives A's ACK to parapet's 2xx for the INVITE; it
	// carries the answer when parapet offered in that 2xx (delayed offer).
	firstAck chan *sip.Request
	// settled, on leg A, is closed once sipgo is done sending parapet's
	// 2xx to A's INVITE (A acknowledged it, or sipgo gave up): sipgo's
	// WriteResponse sets the dialog's InviteResponse, which every request
	// parapet sends in the dialog reads.
	settled chan struct{}

	// dmu guards what requests from the peer are checked against (RFC
	// 3261 section 12.2.2): remoteTag, the peer's tag ("" while unknown),
	// and remoteSeq, the CSeq of its last request (if seqKnown).
	dmu       sync.Mutex
	remoteTag string
	remoteSeq uint32
	seqKnown  bool

	// ackPending: B answered an offerless INVITE with an offer in its 2xx,
	// and parapet has not sent the ACK that must carry the answer.
	// pendingOffer is that offer (nil if it did not parse). Guarded by
	// Call.mu.
	ackPending   bool
	pendingOffer *media.Description
}

// legMedia is what a leg negotiated. Guarded by Call.mu.
type legMedia struct {
	remote *media.Description // the peer's latest SDP
	// answer is set when remote is the peer's answer to an offer parapet
	// made on this leg (not an offer of its own).
	answer  bool
	local   []byte // parapet's latest SDP on this leg
	origin  media.Origin
	streams []legStream
}

type legStream struct {
	active  bool
	proto   string
	mux     bool
	ours    *media.Crypto  // parapet's key on this leg
	theirs  *media.Crypto  // the peer's key
	offered []media.Crypto // parapet's lines in its last offer on this leg
	// DTLS-SRTP: dtls when the stream's keys come from a handshake on this
	// leg; setup is parapet's a=setup in its answer on this leg (active or
	// passive); offeredDTLS when parapet's last offer here was DTLS-SRTP.
	dtls        bool
	setup       string
	offeredDTLS bool
	rtp         netip.AddrPort
	rtcp        netip.AddrPort
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randSession() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 2
}

func (s *Server) newCall(z *zone, req *sip.Request) *Call {
	c := &Call{s: s, id: newID(), start: time.Now(), ended: make(chan struct{})}
	c.log = s.log.With("call", c.id, "zone", z.name)
	if f := req.From(); f != nil {
		c.caller = f.Address.User
	}
	c.callee = req.Recipient.User
	c.rules = s.rules.Load()
	c.a = &leg{call: c, role: compliance.RoleA, side: media.SideA, zone: z, pol: c.rules.zone(z.name), attempted: true,
		firstAck: make(chan *sip.Request, 1), settled: make(chan struct{})}
	c.a.sig = z.signaling(req, c.a.pol)
	c.a.transport = c.a.sig.Transport
	c.a.secure = req.Recipient.Scheme == "sips"
	c.a.remote = req.Source()
	c.a.callID = string(*req.CallID())
	if h := req.GetHeader("User-Agent"); h != nil {
		c.a.userAgent = recordText(h.Value(), nil)
	}
	if a, ok := z.bound[c.a.transport]; ok {
		c.a.local = a.String()
	}
	c.a.admitted = c.a.pol.AdmitsSource(c.a.sig.Source.Addr())
	c.a.dua = &sipgo.DialogUA{Client: z.cli, ContactHDR: z.contact(c.a.transport, c.a.secure), RewriteContact: true}
	s.reg.add(c)
	return c
}

func (c *Call) decide(d policy.Decision) {
	c.mu.Lock()
	d.Reason = recordText(d.Reason, c.rules.vocab, c.caller, c.callee)
	c.decisions = append(c.decisions, d)
	c.mu.Unlock()
	lvl := slog.LevelInfo
	if d.Verdict == policy.VerdictRejected || d.Verdict == policy.VerdictWouldReject {
		lvl = slog.LevelWarn
	}
	if d.Verdict != policy.VerdictAllowed || d.Stage != policy.StageAdmission {
		c.log.Log(context.Background(), lvl, "policy decision", "stage", d.Stage.String(), "decision_zone", d.Zone,
			"verdict", string(d.Verdict), "rule", d.Rule, "reason", d.Reason)
	}
}

func (c *Call) setOutcome(disposition string, status int, reason string) {
	c.mu.Lock()
	if c.disposition == "" {
		c.disposition, c.status, c.endReason = disposition, status, recordText(reason, c.rules.vocab, c.caller, c.callee)
		c.endAt = time.Now()
	}
	c.mu.Unlock()
}

// hangup asks the call to end, from any goroutine.
func (c *Call) hangup(disposition, reason string) { c.hangupWith(disposition, reason, 0, "") }

// hangupWith is hangup, saying what A is answered if it has not been yet:
// status, and warn for its Warning header (never the other leg's details).
func (c *Call) hangupWith(disposition, reason string, status int, warn string) {
	c.endOnce.Do(func() {
		c.hangDisp, c.hangReason, c.hangStatus, c.hangWarn = disposition, reason, status, warn
		close(c.ended)
	})
}

// reject answers the INVITE with a final error before any dialog exists.
func (c *Call) reject(tx sip.ServerTransaction, req *sip.Request, code int, reason, disposition, why string) {
	c.setOutcome(disposition, code, why)
	c.s.respond(tx, req, code, reason, why)
}

// rejectDecision answers with a decision's status.
func (c *Call) rejectDecision(tx sip.ServerTransaction, req *sip.Request, d policy.Decision) {
	c.reject(tx, req, d.Status, reasonPhrase(d.Status), compliance.DispositionRejected, d.Reason)
}

func malformed(stage policy.Stage, z *policy.Zone, status int, format string, args ...any) policy.Decision {
	return policy.Decision{Stage: stage, Zone: z.Name, Verdict: policy.VerdictRejected, Rule: policy.RuleMalformed,
		Status: status, Reason: fmt.Sprintf(format, args...)}
}

// handleInvite runs a new call from its INVITE to its record.
func (s *Server) handleInvite(z *zone, req *sip.Request, tx sip.ServerTransaction) {
	s.reg.wg.Add(1)
	defer s.reg.wg.Done()
	c := s.newCall(z, req)
	defer c.finish()
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("call panicked", "panic", fmt.Sprint(p))
			c.setOutcome(compliance.DispositionFailed, 500, fmt.Sprintf("internal error: %v", p))
			switch {
			case c.a.uas == nil:
				c.s.respond(tx, req, 500, "Server Internal Error", "")
			case !c.established.Load():
				c.respondA(500, "Server Internal Error", compliance.DispositionFailed, "internal error", "internal error")
			}
			c.teardown()
		}
	}()
	c.run(req, tx)
}

// run takes a call through its phases, from the INVITE to the end of the
// conversation (the record is finish's, deferred by handleInvite): admit,
// route, take the offer, ring B (trying the zone's key exchanges in turn),
// answer A, talk. A phase that ends the call has answered A and set the
// outcome; run then stops.
func (c *Call) run(req *sip.Request, tx sip.ServerTransaction) {
	c.aTx = tx
	maxForwards, ok := c.admit(req, tx)
	if !ok || !c.routeCall(req, tx) {
		return
	}
	offer, ok := c.takeOffer(req, tx)
	if !ok {
		return
	}
	c.relay.Start()
	if c.ringB(maxForwards-1, offer.Onward, offer.Streams) {
		c.talk()
	}
}

func statusOf(err error) int {
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) && dr.Res != nil {
		return dr.Res.StatusCode
	}
	return 0
}

func keyExchangeName(p policy.OfferPlan) string {
	switch {
	case p.DTLS:
		return "DTLS-SRTP"
	case p.Secure():
		return "SDES-SRTP"
	}
	return "plain RTP"
}

// resetB forgets an attempt on leg B that the callee refused, so that
// ringB can make another: a new dialog, a new offer.
func (c *Call) resetB() {
	b := c.b
	c.s.reg.forgetLeg(b)
	if b.uac != nil {
		b.uac.Close()
	}
	b.dmu.Lock()
	b.remoteTag, b.remoteSeq, b.seqKnown = "", 0, false
	b.dmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	b.uac, b.key, b.remote, b.local, b.conn, b.callID, b.userAgent = nil, dialogKey{}, "", "", nil, "", ""
	b.sig = policy.SignalingFacts{Transport: b.transport}
	for i := range b.m.streams {
		b.m.streams[i] = legStream{}
	}
	b.m.remote, b.m.local, b.m.answer = nil, nil, false
}

// mediaFailed answers A when the relay could not be set up.
func (c *Call) mediaFailed(err error) {
	code := 500
	if errors.Is(err, media.ErrNoPorts) {
		code = 503
	}
	c.respondA(code, reasonPhrase(code), compliance.DispositionFailed, "media: "+err.Error(), "no media resources for this call")
}

func isSDP(ct *sip.ContentTypeHeader) bool {
	if ct == nil {
		return false
	}
	v, _, _ := strings.Cut(ct.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(v), "application/sdp")
}

// respondA sends a final error to A once its dialog exists. why goes into
// the record; warn, the Warning header A sees, must never carry anything of
// the other leg's topology (addresses, hosts): only what A may know.
func (c *Call) respondA(code int, reason, disposition, why, warn string) {
	c.setOutcome(disposition, code, why)
	res := sip.NewResponseFromRequest(c.a.uas.InviteRequest, code, reason, nil)
	c.s.commonHeaders(res)
	if warn != "" && code != 487 {
		res.AppendHeader(sip.NewHeader("Warning", warningValue(warn)))
	}
	// Straight to the transaction, which retransmits the response and
	// absorbs the ACK itself; the dialog's WriteResponse would block this
	// call until that ACK (up to Timer H) even when parapet is stopping.
	if err := c.aTx.Respond(res); err != nil {
		c.log.Debug("final response to a", "status", code, "error", err)
	}
}

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

func (o *outgoing) reason() giveUp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.why
}

func (o *outgoing) sendLocked() {
	if o.why == notGivenUp || o.why == giveUpConnLost || o.cancel == nil || o.sent {
		return // (no CANCEL can follow the INVITE on a closed connection)
	}
	o.sent = true
	go o.sendCancel(o.cancel)
}

// sendCancel sends req, a CANCEL, and stops waiting for the INVITE's
// final response 64*T1 later (RFC 3261 section 9.1).
func (o *outgoing) sendCancel(req *sip.Request) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
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
	} else if err := b.uac.Ack(context.Background()); err != nil {
		c.log.Warn("ack to b failed", "error", err)
	}
	c.byeB()
}

// answerA sends A parapet's 2xx with sdp and waits for A's ACK, which it
// returns (nil if A never sent one). It reports whether the call was
// established; if not, it has set the outcome and torn the call down.
func (c *Call) answerA(sdp []byte) (*sip.Request, bool) {
	a := c.a
	ok := sip.NewSDPResponseFromRequest(a.uas.InviteRequest, sdp)
	c.s.commonHeaders(ok)
	c.mu.Lock()
	c.answered = time.Now()
	c.mu.Unlock()
	// The answered call is on disk before the caller learns it is
	// answered: a crash from here on leaves its record (unobserved).
	if err := c.journal(true); err != nil {
		c.log.Error("live-call journal not written; call refused", "error", err)
		c.mu.Lock()
		c.answered = time.Time{}
		c.mu.Unlock()
		_ = c.journal(false) // not answered after all: what a crash from here would leave
		c.byeB()
		c.respondA(503, "Service Unavailable", compliance.DispositionFailed, "live-call journal unavailable: "+err.Error(),
			"internal error")
		return nil, false
	}
	c.established.Store(true)
	c.relay.Watch() // media.timeout counts from the answer, not while ringing
	// sipgo retransmits the 2xx until the ACK comes, for up to 64*T1; a
	// hangup (shutdown, media timeout) must not wait that long.
	acked := make(chan error, 1)
	go func() {
		err := a.uas.WriteResponse(ok)
		close(a.settled)
		acked <- err
	}()
	select {
	case err := <-acked:
		if err != nil {
			switch {
			case errors.Is(err, sip.ErrTransactionCanceled):
				// The caller's CANCEL reached its INVITE transaction just
				// before parapet's 2xx, which was not sent: A got 487 and
				// has no dialog; B, which answered, gets BYE.
				c.mu.Lock()
				c.answered = time.Time{}
				c.mu.Unlock()
				c.setOutcome(compliance.DispositionCancelled, 487, "cancelled by caller")
				c.teardownLegs(false)
				return nil, false
			case a.uas.LoadState() == sip.DialogStateEnded:
				// The caller's BYE was handled before its ACK: the call was
				// answered and is already over.
				c.setOutcome(compliance.DispositionAnswered, 200, "bye from a")
			default:
				c.log.Warn("a did not confirm the answer", "error", err)
				c.setOutcome(compliance.DispositionFailed, 200, "no ACK from caller: "+err.Error())
			}
			c.teardown()
			return nil, false
		}
	case <-c.ended:
		// Hung up before A's ACK: B gets its BYE at once. A's dialog is
		// WriteResponse's until it returns, so wait for that (bounded)
		// before A's BYE; a late ACK is byeOnLateAck's.
		c.setOutcome(c.hangDisp, 200, c.hangReason+" (before the caller's ACK)")
		c.teardownLegs(false) // B at once: its call is over whatever A does
		select {
		case err := <-acked:
			if answered(err) {
				c.teardownLegs(true) // now A, whose dialog is settled
			}
		case <-time.After(teardownTimeout):
			c.lateAck = acked // the record need not wait for it
		}
		return nil, false
	}
	select {
	case ack := <-a.firstAck:
		return ack, true
	default:
		return nil, true // sipgo stopped waiting for the ACK (64*T1)
	}
}

// provisionalA relays a provisional response to A: reliably when A's
// INVITE required it (RFC 3262).
func (c *Call) provisionalA(res *sip.Response) error {
	if c.a.rel != nil {
		return c.sendReliable(res)
	}
	return c.a.uas.WriteResponse(res)
}

// respondEnded answers A when the call was hung up before B answered.
func (c *Call) respondEnded() {
	if c.hangDisp == compliance.DispositionShutdown {
		c.respondA(503, "Service Unavailable", compliance.DispositionShutdown, "parapet is shutting down", "parapet is shutting down")
		return
	}
	if c.hangStatus != 0 {
		c.respondA(c.hangStatus, reasonPhrase(c.hangStatus), c.hangDisp, c.hangReason, c.hangWarn)
		return
	}
	c.respondA(500, "Server Internal Error", c.hangDisp, c.hangReason, "call ended")
}

func (c *Call) isEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// noteB records where B's responses come from and, over TLS, the
// handshake that carried them.
func (c *Call) noteB(res *sip.Response) {
	if res == nil {
		return
	}
	b := c.b
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.StatusCode != 100 {
		// The callee's device: the Server header of its responses (100
		// Trying may come from a proxy on the way); some stacks put a
		// User-Agent header there instead.
		h := res.GetHeader("Server")
		if h == nil {
			h = res.GetHeader("User-Agent")
		}
		if h != nil {
			b.userAgent = recordText(h.Value(), nil)
		}
	}
	if b.remote != "" {
		return
	}
	b.remote = res.Source()
	if ap, err := netip.ParseAddrPort(res.Source()); err == nil {
		b.sig.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.noteBConnLocked(strings.ToLower(res.Transport()), res.Source())
}

// noteBConnLocked takes the local address and, over TLS, the handshake of
// the connection to B at addr, if it is still open and not yet noted. It is
// called as soon as the INVITE was written (a callee may answer and close
// the connection before its response is looked at) and again for the
// first response. Caller holds c.mu.
func (c *Call) noteBConnLocked(network, addr string) {
	b := c.b
	if b.local != "" && (b.transport != policy.TransportTLS || b.sig.TLS != nil) {
		return
	}
	conn := b.zone.pooled(network, addr)
	if conn == nil {
		return
	}
	if b.conn == nil && b.transport != policy.TransportUDP {
		b.conn = conn
	}
	if la := conn.LocalAddr(); la != nil {
		b.local = la.String()
	}
	if b.transport != policy.TransportTLS {
		return
	}
	if tc, ok := conn.(*sip.TCPConnection); ok {
		if tlsc, ok := tc.Conn.(*tls.Conn); ok {
			st := tlsc.ConnectionState()
			b.sig.TLS = tlsFacts(&st, b.pol.VerifyPeer)
		}
	}
}

// bConnLost reports whether leg B's TCP or TLS connection, toward dest, is
// no longer in sipgo's pool: closed, by the peer or on an error.
func (c *Call) bConnLost(network, dest string) bool {
	c.mu.Lock()
	known := c.b.conn
	c.mu.Unlock()
	z := c.b.zone
	if known == nil {
		// Never found: gone already if dest is an address; a host name's
		// connection is pooled under the address it resolved to, unknown
		// here until a response names it.
		ap, err := netip.ParseAddrPort(dest)
		return err == nil && z.pooled(network, ap.String()) == nil
	}
	ra, ok := known.(interface{ RemoteAddr() net.Addr })
	return ok && z.pooled(network, ra.RemoteAddr().String()) != known
}

// pooled returns the connection sipgo's pool holds for addr, or nil. It
// gives back the reference GetConnection takes: parapet only looks.
func (z *zone) pooled(network, addr string) sip.Connection {
	conn, err := z.ua.TransportLayer().GetConnection(network, addr)
	if err != nil || conn == nil {
		return nil
	}
	conn.Ref(-1)
	return conn
}

// tlsToBFailed records a failed TLS handshake toward B (a decision, a
// tls_client_failed event with the certificate offered) and answers A.
func (c *Call) tlsToBFailed(err error, msg string) {
	b := c.b
	d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: b.pol,
		Handshake: policy.HandshakeFacts{Error: msg}})
	c.decide(d)
	c.s.stats.tlsRefused.Add(1)
	c.s.connEvent(b.zone, compliance.EventTLSClientFailed, b.sig, c.targetAddr(), func(e *compliance.ConnEvent) {
		e.Error = msg
		e.Decision = &d
		if cert := certFromError(err); cert != nil {
			e.PeerCert = certInfo(certFacts(cert))
		}
	})
	c.respondA(503, reasonPhrase(503), compliance.DispositionFailed, "TLS to callee side failed: "+msg,
		"TLS to the callee side failed")
}

func (c *Call) targetAddr() string {
	t := c.route.Target
	port := t.Port
	if port == 0 {
		port = 5060
		if t.Transport == policy.TransportTLS {
			port = 5061
		}
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(port))
}

// talk waits for the end of an established call and tears it down.
func (c *Call) talk() {
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
		go func() {
			defer wg.Done()
			if err := uas.Bye(ctx); err != nil {
				c.log.Debug("bye to a", "error", err)
			}
		}()
	}
	if c.b != nil && c.b.uac != nil && c.b.uac.LoadState() != sip.DialogStateEnded && c.b.uac.InviteResponse != nil &&
		c.b.uac.InviteResponse.IsSuccess() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.b.uac.Bye(ctx); err != nil {
				c.log.Debug("bye to b", "error", err)
			}
		}()
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
	defer c.s.reg.wg.Done()
	defer func() {
		c.s.reg.forgetLeg(c.a)
		c.a.uas.Close()
	}()
	select {
	case err := <-acked:
		if !answered(err) {
			return
		}
	case <-c.s.stopping:
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
	if err := c.b.uac.Bye(ctx); err != nil {
		c.log.Debug("bye to b", "error", err)
	}
}

// finish closes the relay, writes the call's one record, and forgets it.
func (c *Call) finish() {
	c.recordOnce.Do(func() {
		if c.relay != nil {
			c.relay.Close()
		}
		// Leg A outlives the record while its ACK may still come.
		late := c.lateAck != nil && c.a.uas != nil
		// The relay is closed: its counters are final.
		var counters media.Counters
		if r := c.meter.Load(); r != nil {
			counters = r.Counters(media.SideA).Add(r.Counters(media.SideB))
		}
		c.s.reg.forget(c, counters, late)
		if late {
			c.s.reg.wg.Add(1)
			go c.byeOnLateAck(c.lateAck)
		} else if c.a.uas != nil {
			c.a.uas.Close()
		}
		if c.b != nil && c.b.uac != nil {
			c.b.uac.Close()
		}
		c.mu.Lock()
		if c.disposition == "" {
			c.disposition, c.status, c.endReason = compliance.DispositionFailed, 500, "call ended without an outcome"
		}
		c.mu.Unlock()
		if c.routeSlot != "" {
			c.s.reg.releaseSlot(c.routeSlot)
		}
		if c.folded {
			return // counted in a source_refused event instead
		}
		c.journalClose()
		rec := c.record()
		c.s.stats.call(c.disposition)
		c.s.rec.append(rec)
		c.log.Info("call ended", "disposition", c.disposition, "status", c.status, "reason", c.endReason)
	})
}

// sipgo's WaitAnswer stops after 10 responses with this error, though the
// INVITE transaction goes on; a callee that re-sends 180 or 183 while it
// rings (carriers do, every few seconds) would fail the call.
const tooManyResponses = "more than 10 responses received"

// maxProvisionalRounds bounds how many times waitAnswer resumes: a callee
// that sends thousands of provisional responses without an answer is
// failed rather than waited on until Timer C.
const maxProvisionalRounds = 100

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
