package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
)

// Session timers (RFC 4028), one per leg. parapet is a B2BUA: it is the
// UAS of leg A and the UAC of leg B, and each leg negotiates its own
// session interval and refresher with its peer. Where parapet is the
// refresher it refreshes at half the interval (UPDATE without SDP when
// the peer allows UPDATE, else a re-INVITE with parapet's current SDP);
// where the peer is, parapet answers its refreshes and ends the call
// when none came by the interval less min(32 s, interval/3) (RFC 4028
// section 10). A refresh of one leg is not carried to the other: each
// leg's timer is its own.

// sessionTimer is a leg's negotiated session timer.
type sessionTimer struct {
	interval time.Duration // 0: no session timer on the leg
	parapet  bool          // parapet refreshes (else the peer does)
	// peerTimer: the peer supports timer; peerUpdate: it allows UPDATE.
	peerTimer, peerUpdate bool
	last                  time.Time // when the session was last refreshed
	retry                 time.Time // when a refused refresh is tried again
}

// sessionExpires reads a message's Session-Expires header (or its compact
// form x): the interval and the refresher parameter ("uac", "uas" or "").
func sessionExpires(m interface{ GetHeader(string) sip.Header }) (time.Duration, string, bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	parts := strings.Split(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil || n == 0 {
		return 0, "", false
	}
	ref := ""
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "refresher") {
			ref = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return time.Duration(n) * time.Second, ref, true
}

// minSE reads a request's Min-SE header; 0 if it has none.
func minSE(req *sip.Request) time.Duration {
	h := req.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Second
}

// hasTag reports whether a message's header name (Supported, Require,
// Allow) lists tag.
func hasTag(m interface {
	GetHeaders(string) []sip.Header
}, name, tag string) bool {
	for _, h := range m.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// timerTerms is what parapet, as the UAS of req on leg l (A's INVITE, or a
// refresh from l's peer), grants: the interval asked for, shortened to the
// zone's session_expires (never below the request's Min-SE), and the
// refresher the request names (the peer only if it supports timer), else
// the peer when it supports timer. A
// request without Session-Expires keeps the leg's terms, or starts the
// zone's. tooShort is the zone's minimum when the request asked for less
// (422).
func (c *Call) timerTerms(l *leg, req *sip.Request) (st sessionTimer, tooShort time.Duration) {
	zr := c.rules.zones[l.zone.name]
	se, ref, has := sessionExpires(req)
	l.mu.Lock()
	st = l.timer
	l.mu.Unlock()
	fresh := st.interval == 0
	st.peerTimer = hasTag(req, "Supported", "timer") || hasTag(req, "Require", "timer")
	if req.GetHeader("Allow") != nil {
		st.peerUpdate = hasTag(req, "Allow", string(sip.UPDATE))
	}
	switch {
	case has && se < zr.minSE:
		return st, zr.minSE
	case has:
		st.interval = max(min(se, zr.sessionExpires), minSE(req))
	case fresh:
		st.interval = zr.sessionExpires
	}
	switch {
	case ref == "uac" && st.peerTimer:
		st.parapet = false
	case ref == "uas":
		st.parapet = true
	case has || fresh:
		st.parapet = !st.peerTimer
	}
	return st, 0
}

// refuseShortInterval answers 422 to a request on leg l that asks for a
// session interval below the zone's minimum, saying the minimum in Min-SE
// (RFC 4028 section 8.1). It reports whether it did.
func (c *Call) refuseShortInterval(l *leg, req *sip.Request, tx sip.ServerTransaction) bool {
	if _, short := c.timerTerms(l, req); short == 0 {
		return false
	}
	c.send422(l, req, tx)
	return true
}

func (c *Call) send422(l *leg, req *sip.Request, tx sip.ServerTransaction) error {
	short := c.rules.zones[l.zone.name].minSE
	res := sip.NewResponseFromRequest(req, 422, reasonPhrase(422), nil)
	l.zone.commonHeaders(res)
	res.AppendHeader(sip.NewHeader("Min-SE", seconds(short)))
	return l.zone.send(tx, res)
}

// timerAdmits refuses A's INVITE with 422 when it asks for a session
// interval below the zone's minimum; the record says so.
func (c *Call) timerAdmits(req *sip.Request, tx sip.ServerTransaction) bool {
	se, _, _ := sessionExpires(req)
	if _, short := c.timerTerms(c.a, req); short == 0 {
		return true
	}
	why := fmt.Sprintf("session interval %v is below the zone's minimum %v (RFC 4028)", se, c.rules.zones[c.a.zone.name].minSE)
	c.setOutcome(compliance.DispositionRejected, 422, why)
	c.sent(422, c.send422(c.a, req, tx))
	return false
}

// grantTimer takes the terms of req (A's INVITE, or a refresh from l's
// peer) on leg l as parapet answers it with res, a 2xx: the terms go into
// res (Session-Expires, and Require: timer when the peer supports it),
// and the leg's session counts as refreshed now.
func (c *Call) grantTimer(l *leg, req *sip.Request, res *sip.Response) {
	st, short := c.timerTerms(l, req)
	if short != 0 || st.interval == 0 {
		return
	}
	ref := "uac"
	if st.parapet {
		ref = "uas"
	}
	res.AppendHeader(sip.NewHeader("Session-Expires", seconds(st.interval)+";refresher="+ref))
	if st.peerTimer {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	c.setTimer(l, st)
}

// setTimer stores leg l's terms as refreshed now and wakes its watcher.
func (c *Call) setTimer(l *leg, st sessionTimer) {
	st.last, st.retry = time.Now(), time.Time{}
	l.mu.Lock()
	l.timer = st
	if l.timerKick == nil {
		l.timerKick = make(chan struct{}, 1)
	}
	kick := l.timerKick
	l.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// timerRequest adds parapet's session-timer headers to a request it sends
// as the UAC on leg l: the INVITE to B (the interval the zone asks for,
// the refresher left to B) or a refresh or re-offer (the leg's terms).
func (c *Call) timerRequest(l *leg, req *sip.Request) {
	zr := c.rules.zones[l.zone.name]
	l.mu.Lock()
	st := l.timer
	l.mu.Unlock()
	if req.GetHeader("Supported") == nil {
		req.AppendHeader(sip.NewHeader("Supported", "timer"))
	}
	switch {
	case st.interval == 0:
		l.mu.Lock()
		ask := max(zr.sessionExpires, l.seFloor)
		l.mu.Unlock()
		req.AppendHeader(sip.NewHeader("Session-Expires", seconds(ask)))
	case st.parapet:
		req.AppendHeader(sip.NewHeader("Session-Expires", seconds(st.interval)+";refresher=uac"))
	default:
		req.AppendHeader(sip.NewHeader("Session-Expires", seconds(st.interval)+";refresher=uas"))
	}
	req.AppendHeader(sip.NewHeader("Min-SE", seconds(zr.minSE)))
}

// raiseSE takes the Min-SE of B's 422 to parapet's INVITE (err): it
// reports whether parapet should invite B again asking for it, which it
// does once, and only for more than it asked.
func (c *Call) raiseSE(err error) bool {
	var dr *sipgo.ErrDialogResponse
	if !errors.As(err, &dr) || dr.Res == nil {
		return false
	}
	h := dr.Res.GetHeader("Min-SE")
	if h == nil {
		return false
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	want := time.Duration(n) * time.Second
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if perr != nil || b.seFloor != 0 || want <= c.rules.zones[b.zone.name].sessionExpires {
		return false
	}
	b.seFloor = want
	c.log.Info("callee asked for a longer session interval (422); inviting it again", "min_se", want)
	return true
}

// timerResponse takes the terms of a 2xx to a request parapet sent as the
// UAC on leg l (B's answer, or a refresh's): the interval and refresher
// of its Session-Expires (refresher=uac is parapet). A 2xx without one
// leaves the leg without a session timer after the INVITE to B (RFC 4028
// section 7.2), and its terms as they were after a refresh.
func (c *Call) timerResponse(l *leg, res *sip.Response) {
	se, ref, has := sessionExpires(res)
	l.mu.Lock()
	st := l.timer
	l.mu.Unlock()
	if res.GetHeader("Allow") != nil {
		st.peerUpdate = hasTag(res, "Allow", string(sip.UPDATE))
	}
	st.peerTimer = st.peerTimer || hasTag(res, "Supported", "timer") || hasTag(res, "Require", "timer")
	if has {
		st.interval = se
		st.parapet = ref != "uas"
	}
	c.setTimer(l, st)
}

// watchTimers runs the session timers of an established call's legs until
// it ends or ctx is done; the group is done when they stopped. It returns
// the legs it watches: a transfer may be swapping one meanwhile (c.mu
// guards them).
func (c *Call) watchTimers(ctx context.Context) (*sync.WaitGroup, map[*leg]bool) {
	var wg sync.WaitGroup
	c.mu.Lock()
	legs := []*leg{c.a, c.b}
	c.mu.Unlock()
	for _, l := range legs {
		l.mu.Lock()
		if l.timerKick == nil {
			l.timerKick = make(chan struct{}, 1)
		}
		l.mu.Unlock()
		wg.Add(1)
		c.goSafe("session timer", func() {
			defer wg.Done()
			c.watchTimer(ctx, l)
		})
	}
	return &wg, map[*leg]bool{legs[0]: true, legs[1]: true}
}

// watchTimer refreshes leg l's session at half its interval when parapet
// is the refresher, and ends the call when the peer was and no refresh
// came in time.
func (c *Call) watchTimer(ctx context.Context, l *leg) {
	for {
		if c.departedLeg(l) {
			return // a transfer replaced the leg: its timer is no more
		}
		l.mu.Lock()
		st, kick := l.timer, l.timerKick
		l.mu.Unlock()
		if st.interval <= 0 {
			// No session timer on the leg (yet): a later exchange may
			// start one.
			select {
			case <-c.ended:
				return
			case <-ctx.Done():
				return
			case <-kick:
				continue
			}
		}
		deadline := st.last.Add(st.interval - min(32*time.Second, st.interval/3))
		next := deadline
		if st.parapet {
			next = st.last.Add(st.interval / 2)
			if st.retry.After(next) {
				next = st.retry
			}
			if next.After(deadline) {
				next = deadline
			}
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-c.ended:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			t.Stop()
			continue
		case <-t.C:
		}
		if !st.parapet || !time.Now().Before(deadline) {
			c.log.Warn("session timer expired", "leg", l.role, "interval", st.interval)
			c.hangup(compliance.DispositionTimeout, fmt.Sprintf("session timer expired on leg %s: no session refresh within %v (RFC 4028)", l.role, st.interval))
			return
		}
		if !c.refreshLeg(ctx, l, st) {
			return
		}
	}
}

// refreshLeg sends one session refresh on leg l and takes its answer. A
// refresh the peer does not know the dialog of (481) or never answers
// (408, timeout) ends the call (RFC 4028 section 10); another refusal is
// retried a little later, until the session expires. It reports whether
// the watch goes on.
func (c *Call) refreshLeg(ctx context.Context, l *leg, st sessionTimer) bool {
	res, err := c.sendRefresh(ctx, l, st)
	switch {
	case ctx.Err() != nil:
		return false
	case err == nil && res.IsSuccess():
		return true // timerResponse took its terms
	case err != nil || res.StatusCode == 408 || res.StatusCode == 481:
		why := "no response"
		if err == nil {
			why = strconv.Itoa(res.StatusCode)
		}
		c.hangup(compliance.DispositionFailed, fmt.Sprintf("session refresh on leg %s failed (%s): the peer lost the session (RFC 4028)", l.role, why))
		return false
	case res.StatusCode == 422:
		if h := res.GetHeader("Min-SE"); h != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
				st.interval = max(st.interval, time.Duration(n)*time.Second)
			}
		}
	}
	// Retry soon, as a refresh: the session counts from the last success.
	// Tried again in min(interval/8, 2 s); the deadline stays where the
	// last success put it.
	st.retry = time.Now().Add(min(st.interval/8, 2*time.Second))
	l.mu.Lock()
	l.timer = st
	l.mu.Unlock()
	return true
}

// sendRefresh sends a session refresh on leg l: an UPDATE without SDP when
// its peer allows UPDATE, else a re-INVITE with parapet's current SDP
// (same version: nothing changes). A re-offer under way is a refresh
// already: nothing is sent, and a success is faked for the watch to go on.
func (c *Call) sendRefresh(ctx context.Context, l *leg, st sessionTimer) (*sip.Response, error) {
	if !c.reinvite.TryLock() {
		return &sip.Response{StatusCode: 491}, nil
	}
	defer c.reinvite.Unlock()
	if !st.peerUpdate {
		c.mu.Lock()
		sdp := c.negLocked(l).Local()
		c.mu.Unlock()
		return c.sendReinviteCtx(ctx, l, sdp)
	}
	req := sip.NewRequest(sip.UPDATE, l.target())
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	c.timerRequest(l, req)
	ctx, cancel := context.WithTimeout(ctx, inDialogTimeout)
	defer cancel()
	res, err := c.doIn(ctx, l, req) // a challenge from B's route is answered as for any in-dialog request
	if err == nil && res.IsSuccess() {
		c.timerResponse(l, res)
	}
	return res, err
}
