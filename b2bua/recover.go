package b2bua

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// A panic on a goroutine nobody recovers on ends the process, and with it
// every call. Request handlers are recovered by Server.safe and a call's own
// goroutine by handleInvite; the goroutines below are the others parapet
// starts, and each recovers through one of these helpers: a server's logs
// and goes on, a call's logs and ends the call.

// logPanic logs p, a recovered panic, with the stack of the goroutine it
// happened on. The stack holds code locations, not call data.
func logPanic(log *slog.Logger, what string, p any) {
	log.Error("goroutine panicked", "goroutine", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
}

// goSafe runs f on a new goroutine of the server's own (not of a call); a
// panic in f is logged, and the process and its calls go on.
func (s *Server) goSafe(what string, f func()) {
	go func() {
		defer s.recoverPanic(what)
		f()
	}()
}

// recoverPanic is goSafe's deferred half, for goroutines that need more
// than f around it; it must be deferred directly.
func (s *Server) recoverPanic(what string) {
	if p := recover(); p != nil {
		logPanic(s.log, what, p)
	}
}

// tick runs f, one turn of a server loop; a panic in f is logged and the
// loop goes on to its next turn.
func (s *Server) tick(what string, f func()) {
	defer s.recoverPanic(what)
	f()
}

// every runs f at each tick of a ticker of period d, one turn of the
// server loop named what (tick), until the server stops.
func (s *Server) every(d time.Duration, what string, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.tick(what, func() { f(now) })
		}
	}
}

// goSafe runs f on a new goroutine working for call c; a panic in f is
// logged and ends the call as failed (A is answered 500 if it has not
// been answered yet; answered legs get BYE).
func (c *Call) goSafe(what string, f func()) {
	go func() {
		defer c.recoverPanic(what)
		f()
	}()
}

// recoverPanic is the call's goSafe's deferred half; it must be deferred
// directly.
func (c *Call) recoverPanic(what string) {
	if p := recover(); p != nil {
		logPanic(c.log, what, p)
		c.hangupWith(compliance.DispositionFailed, fmt.Sprintf("internal error: %v", p), 500, "internal error")
	}
}

// recoverPanic recovers a panic on a goroutine of leg B's outgoing INVITE:
// it is logged, and parapet stops waiting for B's final response, so the
// call goes on to fail rather than wait for ever. It must be deferred
// directly.
func (o *outgoing) recoverPanic(what string) {
	if p := recover(); p != nil {
		logPanic(o.log, what, p)
		o.stop(fmt.Errorf("internal error: %v", p))
	}
}
