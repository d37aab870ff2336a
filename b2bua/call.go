package b2bua

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// ringLimit bounds how long the callee (or a transfer's target) may ring
// (RFC 3261 Timer C is at least 3 minutes), in nanoseconds. A variable
// only so that tests can shorten it (export_test.go), atomic because the
// calls of an earlier test may still read it.
var ringLimit atomic.Int64

func init() { ringLimit.Store(int64(3 * time.Minute)) }

// ringTimeout is how long the callee (or a transfer's target) may ring.
func ringTimeout() time.Duration { return time.Duration(ringLimit.Load()) }

// Timers of a call.
const (
	// teardownTimeout bounds the BYEs sent when a call ends.
	teardownTimeout = 5 * time.Second
	// inDialogTimeout bounds a request relayed inside a dialog.
	inDialogTimeout = 32 * time.Second
)

// Call is one call: the inbound leg A that parapet answered, the outbound
// leg B it originated, the relay between them, and the decisions taken.
// Exactly one record is written for it, whatever path it takes.
type Call struct {
	env   *env // all a call gets of the server
	id    string
	log   *slog.Logger
	start time.Time

	caller, callee string
	rules          *rules // in force when the INVITE arrived
	route          *routeRules
	// target is the route's target leg B is dialling now (one of several
	// when a failover moved on); attempts are leg B's attempts on a
	// route with several targets. Guarded by mu.
	target   topology.Target
	dest     netip.AddrPort // where target resolved to (zero: sipgo resolves it)
	attempts []compliance.Attempt
	a, b     *leg
	aTx      sip.ServerTransaction // A's INVITE transaction

	// emergency: the call dials the emergency services (see emergency.go
	// and sos.go); dialled says how (the service URN it named, if any);
	// overrides says what the call was taken in spite of, for its
	// call.emergency decision.
	emergency bool
	dialled   dialled
	overrides []string
	// outsider: a zone in observe mode let the call in from outside its
	// peers; such a call, emergency or not, is held to the call limits.
	outsider bool
	// identity is what the call's identity headers were and became (see
	// identity.go); guarded by mu once the call is routed.
	identity identity

	relay   *media.Relay
	streams []*media.RelayStream // by m= line; nil when the line is not relayed
	// meter is relay, for Server.Stats while the call is live (Stats reads
	// it from another goroutine).
	meter atomic.Pointer[media.Relay]

	// mu guards the media state of both legs, the decisions and the outcome.
	mu          sync.Mutex
	decisions   []policy.Decision
	answered    time.Time
	disposition compliance.Disposition
	status      int
	endReason   string
	endAt       time.Time // when the outcome was settled: the call's end

	ended      chan struct{}
	endOnce    sync.Once
	hangDisp   compliance.Disposition
	hangReason string
	// hangStatus and hangWarn, when set, are what A gets if the call ends
	// before it was answered (else 500).
	hangStatus int
	hangWarn   string

	// limits are the call limits this call counts against (given back
	// when it ends).
	limits []callLimit
	// folded: an INVITE from outside the zone's peers, which is no call
	// (the zone's outsider tally counts it), or an INVITE with Replaces
	// that took a leg's place in another call (that call's record has
	// it): no call record.
	folded bool

	// transfers are the REFERs the call's peers sent; departed the legs
	// a transfer replaced (booked until the call ends, so that their
	// peers' BYEs are answered). Guarded by mu. swapped wakes talk when a
	// transfer replaced a leg; transferring counts the transfers under
	// way, whose outcome the record waits for, once transfersClosed says
	// that no more may start (countTransfer).
	transfers       []compliance.Transfer
	departed        []*leg
	swapped         chan struct{}
	transferring    sync.WaitGroup
	transfersClosed bool

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

// leg is one side of a call. Its owner is the call: the call's goroutine
// sets role, side, zone, pol, transport, secure, admitted, key and the
// dialog handles (dua, uas, uac, firstAck, settled) before the registry
// books the leg, which publishes it to the goroutines that handle requests
// inside its dialog; they only read them. What changes later is guarded by
// the call's lock, Call.mu (sig, local, remote, callID, userAgent,
// attempted, conn, neg, ackPending, pendingOffer, as the call learns them),
// except the dialog bookkeeping that requests inside the dialog keep on
// their own goroutines, which is under the leg's own lock, leg.mu (the
// peer's tag and CSeq, RFC 3261 section 12.2.2; the ACKs and PRACKs
// parapet waits for).
type leg struct {
	call      *Call
	role      compliance.Role
	side      media.Side
	zone      *zone
	pol       *policy.Zone // the zone's policy in the call's rules
	transport policy.Transport
	secure    bool
	// flow is the registration flow leg B goes over to a registered
	// user (registered.go); nil otherwise.
	flow     *flow
	sig      policy.SignalingFacts
	admitted bool
	// trunk is the route whose registration admitted leg A, its
	// Request-URI carrying that trunk's line token, from a source
	// outside the zone's peers ("" otherwise).
	trunk     string
	attempted bool
	// callerCreds: leg B's INVITE carried the caller's digest credentials
	// (auth_passthrough, authrelay.go). Guarded by Call.mu.
	callerCreds bool
	local       string
	remote      string
	key         dialogKey // the leg's dialog, as the registry books it
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

	// neg is the leg's SDP offer/answer state (made on first use, see
	// negLocked). Guarded by Call.mu.
	neg *media.Negotiation
	// A transfer splits its relay side between legs (transfermedia.go):
	// frozen is the media record of a leg a transfer replaced, as it stood
	// then; mediaBase the side's counters when the leg took the side over.
	// Guarded by Call.mu.
	frozen    *frozenMedia
	mediaBase media.Counters
	// newPeer, on a transfer's leg until its answer configured the relay,
	// says its peer takes the side over from another (media.PeerConfig).
	newPeer bool

	// mu is the leg's own lock, for the dialog bookkeeping that requests
	// inside its dialog keep on their own goroutines: the ACKs and PRACKs
	// parapet waits for (ackWait, rel) and what the peer's requests are
	// checked against (remoteTag, remoteSeq, seqKnown). It is never held
	// with another lock, nor while waiting.
	mu      sync.Mutex
	ackWait map[uint32]chan *sip.Request // ACKs to our 2xx for re-INVITEs, by CSeq
	// rel is set on leg A when its INVITE requires reliable provisional
	// responses (RFC 3262).
	rel *rel100
	// firstAck receives A's ACK to parapet's 2xx for the INVITE; it
	// carries the answer when parapet offered in that 2xx (delayed offer).
	firstAck chan *sip.Request
	// settled, on leg A, is closed once sipgo is done sending parapet's
	// 2xx to A's INVITE (A acknowledged it, or sipgo gave up): sipgo's
	// WriteResponse sets the dialog's InviteResponse, which every request
	// parapet sends in the dialog reads.
	settled chan struct{}

	// What requests from the peer are checked against (RFC 3261 section
	// 12.2.2): remoteTag, the peer's tag ("" while unknown), and remoteSeq,
	// the CSeq of its last request (if seqKnown).
	remoteTag string
	remoteSeq uint32
	seqKnown  bool

	// ackPending: B answered an offerless INVITE with an offer in its 2xx,
	// and parapet has not sent the ACK that must carry the answer.
	// pendingOffer is that offer (nil if it did not parse). Guarded by
	// Call.mu.
	ackPending   bool
	pendingOffer *media.Description
	// early is what the leg's early dialog can carry (an UPDATE with a
	// new offer, see onEarlyUpdate). Guarded by Call.mu.
	early earlyDialog

	// timer is the leg's session timer (RFC 4028) and timerKick wakes its
	// watcher when it changes. Guarded by leg.mu.
	timer     sessionTimer
	timerKick chan struct{}
	// seFloor is the Min-SE of leg B's 422 (RFC 4028 section 7.4): the
	// interval parapet's next INVITE asks for. Guarded by leg.mu.
	seFloor time.Duration
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) newCall(z *zone, req *sip.Request) *Call {
	c := &Call{env: s.env, id: newID(), start: time.Now(), ended: make(chan struct{}), swapped: make(chan struct{}, 1)}
	c.log = s.log.With("call", c.id, "zone", z.name)
	if f := req.From(); f != nil {
		c.caller = f.Address.User
	}
	c.rules = s.rules.Load()
	c.dialled = dialledBy(c.rules.emergency, req)
	c.callee, c.emergency = c.dialled.callee, c.dialled.emergency
	c.identity = identityFrom(req, c.rules.zones[z.name].trusted)
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
	if !c.a.admitted {
		c.a.trunk, c.a.admitted = s.env.trunks.admitsLine(z.name, &req.Recipient)
	}
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

func (c *Call) setOutcome(disposition compliance.Disposition, status int, reason string) {
	c.mu.Lock()
	if c.disposition == "" {
		c.disposition, c.status, c.endReason = disposition, status, recordText(reason, c.rules.vocab, c.caller, c.callee)
		c.endAt = time.Now()
	}
	c.mu.Unlock()
}

// hangup asks the call to end, from any goroutine.
func (c *Call) hangup(disposition compliance.Disposition, reason string) {
	c.hangupWith(disposition, reason, 0, "")
}

// hangupWith is hangup, saying what A is answered if it has not been yet:
// status, and warn for its Warning header (never the other leg's details).
func (c *Call) hangupWith(disposition compliance.Disposition, reason string, status int, warn string) {
	c.endOnce.Do(func() {
		c.hangDisp, c.hangReason, c.hangStatus, c.hangWarn = disposition, reason, status, warn
		close(c.ended)
	})
}

// reject answers the INVITE with a final error before any dialog exists.
func (c *Call) reject(tx sip.ServerTransaction, req *sip.Request, code int, reason string, disposition compliance.Disposition, why string) {
	c.setOutcome(disposition, code, why)
	c.sent(code, c.a.zone.respond(tx, req, code, reason, why))
}

// sent notes how sending the final response with status code to the
// caller went: err, when not nil, goes into the outcome (unsent).
func (c *Call) sent(code int, err error) {
	if err != nil {
		c.unsent(code, err)
	}
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
				c.a.zone.respond(tx, req, 500, "Server Internal Error", "")
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

func (c *Call) isEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// sipgo's WaitAnswer stops after 10 responses with this error, though the
// INVITE transaction goes on; a callee that re-sends 180 or 183 while it
// rings (carriers do, every few seconds) would fail the call.
const tooManyResponses = "more than 10 responses received"

// maxProvisionalRounds bounds how many times waitAnswer resumes: a callee
// that sends thousands of provisional responses without an answer is
// failed rather than waited on until Timer C.
const maxProvisionalRounds = 100
