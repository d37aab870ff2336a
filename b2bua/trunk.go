package b2bua

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// TrunkState is where a route's registration with its carrier stands.
type TrunkState string

// The states of a trunk registration.
const (
	// TrunkRegistering: the first REGISTER is on its way.
	TrunkRegistering TrunkState = "registering"
	// TrunkRegistered: the registrar accepted the binding and it has not
	// run out.
	TrunkRegistered TrunkState = "registered"
	// TrunkFailed: the last attempt failed (refused, wrong credentials, no
	// answer); parapet retries with back-off.
	TrunkFailed TrunkState = "failed"
	// TrunkUnregistered: parapet removed the binding (shutdown, reload).
	TrunkUnregistered TrunkState = "unregistered"
)

// TrunkStates lists the states in the order metrics write them.
var TrunkStates = []TrunkState{TrunkRegistering, TrunkRegistered, TrunkFailed, TrunkUnregistered}

// Timings of registration; variables so that tests can shorten them.
var (
	// registerRetryMin and registerRetryMax bound the back-off between
	// failed attempts (doubling from the first to the second).
	registerRetryMin = 5 * time.Second
	registerRetryMax = 5 * time.Minute
	// registerTimeout bounds one REGISTER transaction (challenge included).
	registerTimeout = 10 * time.Second
	// unregisterTimeout bounds the REGISTER with Expires: 0 at shutdown.
	unregisterTimeout = 2 * time.Second
)

// refreshShare is the part of a granted lifetime after which parapet
// refreshes a registration (85 %, as Kamailio's uac and Asterisk do
// roughly).
const refreshShare = 0.85

// trunk is one route's registration: a goroutine that registers, refreshes
// before the grant runs out and retries failures, until stopped.
type trunk struct {
	route string
	zone  *zone
	cfg   topology.Register
	user  string // digest user name ("" answers no challenge)
	pass  string
	token string // the Contact's line parameter
	log   *slog.Logger
	// notify is told of every state change (metrics, log).
	notify func(t *trunk, was, now TrunkState, status int, granted time.Duration, err error)

	callID string
	cseq   uint32
	asked  time.Duration // the lifetime asked (raised by 423)

	// verify is whether the zone verifies peers' certificates (for the
	// TLS facts of the record).
	verify bool

	mu      sync.Mutex
	state   TrunkState
	granted time.Duration
	where   trunkWhere
	stop    context.CancelFunc
	done    chan struct{}
}

// trunkWhere is the connection the registrar's last answer came over.
type trunkWhere struct {
	remote, local string
	tls           *policy.TLSFacts
}

// newLineToken draws a trunk's line token: 64 random bits in hex.
func newLineToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// State returns the trunk's state.
func (t *trunk) State() TrunkState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// set changes the state and tells notify when it changed.
func (t *trunk) set(now TrunkState, status int, granted time.Duration, err error) {
	t.mu.Lock()
	was := t.state
	t.state, t.granted = now, granted
	t.mu.Unlock()
	if was != now && t.notify != nil {
		t.notify(t, was, now, status, granted, err)
	}
}

// start runs the registration loop until stop.
func (t *trunk) start() {
	ctx, cancel := context.WithCancel(context.Background())
	t.stop, t.done = cancel, make(chan struct{})
	t.set(TrunkRegistering, 0, 0, nil)
	go func() {
		defer close(t.done)
		t.run(ctx)
	}()
}

// halt stops the loop and, when unregister is set and the trunk is
// registered, removes the binding (Expires: 0), waiting at most
// unregisterTimeout for the registrar.
func (t *trunk) halt(unregister bool) {
	t.stop()
	<-t.done
	status := 0
	var err error
	if unregister && t.State() == TrunkRegistered {
		ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
		defer cancel()
		var res *sip.Response
		res, err = t.transact(ctx, 0)
		if err == nil {
			status = res.StatusCode
			if !res.IsSuccess() {
				err = fmt.Errorf("registrar answered %d", res.StatusCode)
			}
		}
		if err != nil {
			err = fmt.Errorf("unregistering failed, the binding runs out by itself: %w", err)
		}
	}
	t.set(TrunkUnregistered, status, 0, err)
}

// run registers, then refreshes at refreshShare of each grant; a failure
// is retried after a back-off that doubles up to registerRetryMax (or the
// registrar's Retry-After, when longer).
func (t *trunk) run(ctx context.Context) {
	backoff := registerRetryMin
	for {
		granted, retryAfter, status, err := t.register(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err == nil {
			t.set(TrunkRegistered, status, granted, nil)
			backoff = registerRetryMin
			wait = time.Duration(float64(granted) * refreshShare)
		} else {
			t.set(TrunkFailed, status, 0, err)
			t.log.Debug("trunk registration attempt failed", "route", t.route, "status", status, "error", err, "retry_in", backoff)
			wait = max(backoff, min(retryAfter, registerRetryMax))
			backoff = min(backoff*2, registerRetryMax)
		}
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C:
		}
	}
}

// register makes one registration attempt: REGISTER, answered challenges
// and 423 Interval Too Brief (at most twice) included. It returns the
// lifetime granted, or the error with the registrar's status (0 when it
// did not answer) and Retry-After.
func (t *trunk) register(ctx context.Context) (granted, retryAfter time.Duration, status int, err error) {
	for range 3 {
		ctx, cancel := context.WithTimeout(ctx, registerTimeout)
		res, err := t.transact(ctx, t.asked)
		cancel()
		if err != nil {
			return 0, 0, 0, err
		}
		switch {
		case res.IsSuccess():
			g := grantedLifetime(res, t.token, t.asked)
			if g <= 0 {
				return 0, 0, res.StatusCode, errors.New("the registrar granted no lifetime to parapet's contact")
			}
			return g, 0, res.StatusCode, nil
		case res.StatusCode == sip.StatusIntervalToBrief:
			m, ok := headerSeconds(res, "Min-Expires")
			if !ok || m <= t.asked {
				return 0, 0, res.StatusCode, errors.New("423 Interval Too Brief without a longer Min-Expires")
			}
			t.asked = m
			continue
		}
		ra, _ := headerSeconds(res, "Retry-After")
		return 0, ra, res.StatusCode, registerRefusal(res)
	}
	return 0, 0, sip.StatusIntervalToBrief, errors.New("423 Interval Too Brief again after raising the lifetime")
}

// registerRefusal says why a final non-2xx answer refused the
// registration (the status only: a reason phrase is the carrier's text).
func registerRefusal(res *sip.Response) error {
	switch res.StatusCode {
	case sip.StatusUnauthorized, sip.StatusProxyAuthRequired:
		return fmt.Errorf("registrar answered %d to the credentials: wrong user name or password", res.StatusCode)
	case sip.StatusForbidden:
		return errors.New("registrar answered 403 Forbidden")
	}
	return fmt.Errorf("registrar answered %d", res.StatusCode)
}

// transact sends one REGISTER asking for lifetime expires (0 removes the
// binding) and answers one 401 or 407 challenge with the credentials. It
// returns the final response.
func (t *trunk) transact(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	req := t.request(expires)
	res, err := t.zone.cli.Do(ctx, req)
	if err != nil {
		return nil, t.sendErr("REGISTER", err)
	}
	t.cseq = req.CSeq().SeqNo
	t.noteWhere(res)
	if !challenged(res) {
		return res, nil
	}
	if t.user == "" || t.pass == "" {
		return nil, fmt.Errorf("registrar challenged with %d, but the route has no password (password_env unset or password_file unreadable)", res.StatusCode)
	}
	res2, err := t.zone.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: t.user, Password: t.pass})
	t.cseq = req.CSeq().SeqNo
	if err != nil {
		return nil, t.sendErr("REGISTER with credentials", err)
	}
	t.noteWhere(res2)
	return res2, nil
}

// sendErr says what failed sending a REGISTER, naming the registrar with
// its port and transport (what an operator checks first): when no answer
// came in time, saying so rather than "context deadline exceeded"; when
// no connection could be made, the system's error alone (sendError), not
// sipgo's wording around it. It wraps err.
func (t *trunk) sendErr(what string, err error) error {
	r := t.cfg.Registrar
	where := targetAddr(r.Host, r.Port, r.Transport) + " over " + r.Transport.String()
	msg := fmt.Sprintf("%s to %s: %s", what, where, sendError(err))
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("%s to %s: no answer from the registrar: %v", what, where, err)
	}
	return &explainedError{msg: msg, err: err}
}

// explainedError is an error with a text of its own that still wraps the error
// it explains.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// noteWhere keeps the connection res came over: the registrar's address,
// parapet's, and over TLS the handshake.
func (t *trunk) noteWhere(res *sip.Response) {
	w := trunkWhere{remote: res.Source()}
	if a, ok := t.zone.bound[policy.TransportUDP]; ok && t.cfg.Registrar.Transport == policy.TransportUDP {
		w.local = a.String()
	} else if conn := t.zone.pooled(strings.ToLower(res.Transport()), res.Source()); conn != nil {
		if la := conn.LocalAddr(); la != nil {
			w.local = la.String()
		}
		if tc, ok := conn.(*sip.TCPConnection); ok {
			if tlsc, ok := tc.Conn.(*tls.Conn); ok {
				st := tlsc.ConnectionState()
				w.tls = tlsFacts(&st, t.verify)
			}
		}
	}
	t.mu.Lock()
	t.where = w
	t.mu.Unlock()
}

// lastWhere returns what noteWhere kept.
func (t *trunk) lastWhere() trunkWhere {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.where
}

// request builds a REGISTER (RFC 3261 section 10.2): the Request-URI is
// the registrar without user, To and From the AOR, one Call-ID for the
// trunk's life and a CSeq that grows, parapet's Contact in the zone with
// the line token, and the lifetime asked.
func (t *trunk) request(expires time.Duration) *sip.Request {
	r := t.cfg.Registrar
	req, _ := targetRequest(sip.REGISTER, r, "")
	var aor sip.Uri
	_ = sip.ParseUri(t.cfg.AOR, &aor)
	from := sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	callID := sip.CallIDHeader(t.callID)
	t.cseq++
	contact := t.zone.contact(r.Transport, r.Secure)
	contact.Address.User = aor.User
	if contact.Address.UriParams == nil {
		contact.Address.UriParams = sip.NewParams()
	}
	contact.Address.UriParams.Add("line", t.token)
	mf := sip.MaxForwardsHeader(70)
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: t.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&mf)
	req.AppendHeader(&contact)
	req.AppendHeader(&exp)
	if ua := t.zone.userAgent; ua != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", ua))
	}
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	if ap, ok := t.zone.bound[policy.TransportUDP]; ok && r.Transport == policy.TransportUDP {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	return req
}

// grantedLifetime is the lifetime a 2xx to REGISTER grants parapet's
// binding: the expires parameter of the Contact that carries its line
// token, else the Expires header, else what was asked (RFC 3261 section
// 10.2.4).
func grantedLifetime(res *sip.Response, token string, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if v, _ := c.Address.UriParams.Get("line"); v != token {
			continue
		}
		if e, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(e), 10, 32); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	if d, ok := headerSeconds(res, "Expires"); ok {
		return d
	}
	return asked
}

// headerSeconds reads a header holding a number of seconds (Expires,
// Min-Expires, Retry-After, whose comment and parameters are ignored).
func headerSeconds(res *sip.Response, name string) (time.Duration, bool) {
	h := res.GetHeader(name)
	if h == nil {
		return 0, false
	}
	v := strings.TrimSpace(h.Value())
	if i := strings.IndexAny(v, " (;"); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
