package b2bua_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// An UPDATE with a new offer in the callee's early dialog (RFC 3311
// section 5.1), the other way round from update_early_test.go: the
// carrier calls the PBX requiring 100rel; the PBX sends a reliable 183
// with its answer, which parapet PRACKs and relays to the carrier as a
// reliable 183 of its own, which the carrier PRACKs; then the PBX sends
// an UPDATE while it holds its 2xx.

// calleeUpdateCall runs such a call: allowUpdate says whether the
// caller's INVITE allows UPDATE (its early dialog can then carry one), eu
// what the callee's UPDATE offers. It returns the UPDATE's status and
// both ends of the call.
func calleeUpdateCall(t *testing.T, allowUpdate bool, eu sim.EarlyUpdate) (*lab, int, *sim.Session, *sim.Session) {
	t.Helper()
	hold, ready := make(chan struct{}), make(chan struct{})
	status := make(chan int, 1)
	eu.Done = func(code int) { status <- code }
	eu.After = ready
	l := newLab(t, labOptions{pbxAnswer: sim.Answer{Early: true, Rel100: true, Hold: hold, EarlyUpdate: &eu}})
	ctx := ctxT(t)
	var once sync.Once
	o := sim.CallOptions{SRTP: true, Rel100: true, OnPrack: func() { once.Do(func() { close(ready) }) }}
	if allowUpdate {
		o.Headers = []sip.Header{sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, PRACK, UPDATE")}
	}
	type result struct {
		s   *sim.Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := l.callIn(ctx, o)
		done <- result{s, err}
	}()
	var code int
	select {
	case code = <-status:
	case r := <-done:
		t.Fatalf("the call ended before the callee's early UPDATE: %v", r.err)
	case <-time.After(15 * time.Second):
		t.Fatal("no early UPDATE from the callee")
	}
	close(hold)
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the call was not answered")
	}
	if r.err != nil {
		t.Fatalf("call after the callee's early UPDATE: %v", r.err)
	}
	t.Cleanup(func() { r.s.Hangup(context.Background()) })
	return l, code, r.s, incoming(t, l.pbx)
}

// The caller's early dialog can carry an offer (its reliable 183 with
// parapet's answer PRACKed, UPDATE allowed): parapet bridges the callee's
// offer there as an UPDATE of its own and answers the callee with the
// caller's answer. Media then flows both ways.
func TestCalleeEarlyUpdateBridged(t *testing.T) {
	l, code, caller, callee := calleeUpdateCall(t, true, sim.EarlyUpdate{})
	if code != 200 {
		t.Fatalf("the callee's early UPDATE got %d, want 200", code)
	}
	if n := caller.Updates(); n != 1 {
		t.Errorf("the caller got %d UPDATEs, want the bridged one", n)
	}
	if n := callee.Pracks(); n != 1 {
		t.Errorf("the callee got %d PRACKs for its reliable 183, want 1", n)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 1 || ds[0].Verdict != policy.VerdictAllowed || ds[0].Zone != "pbx" {
		t.Errorf("re-offer decisions %+v, want one allowed in zone pbx", ds)
	}
}

// The caller's INVITE does not allow UPDATE, so its early dialog carries
// no offer: the callee's new offer changes its own leg only (a new o=
// version, the same media), and parapet answers it alone.
func TestCalleeEarlyUpdateAnsweredAlone(t *testing.T) {
	l, code, caller, callee := calleeUpdateCall(t, false, sim.EarlyUpdate{})
	if code != 200 {
		t.Fatalf("the callee's early UPDATE got %d, want 200", code)
	}
	if n := caller.Updates(); n != 0 {
		t.Errorf("the caller got %d UPDATEs: the change was the callee's leg's alone", n)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 1 || ds[0].Verdict != policy.VerdictAllowed || ds[0].Zone != "pbx" {
		t.Errorf("re-offer decisions %+v, want one allowed in zone pbx", ds)
	}
}

// A change the caller must take (the callee going sendonly) while the
// caller's early dialog cannot carry it: 500 with Retry-After, nothing
// changed, no decision recorded, and the call goes on as before.
func TestCalleeEarlyUpdateNotCarried(t *testing.T) {
	l, code, caller, callee := calleeUpdateCall(t, false, sim.EarlyUpdate{Direction: "sendonly"})
	if code != 500 {
		t.Fatalf("the callee's early UPDATE got %d, want 500", code)
	}
	exchange(t, caller, callee)
	rec := hangUpRecord(t, l, caller)
	if ds := reoffers(rec); len(ds) != 0 {
		t.Errorf("re-offer decisions %+v for an offer that changed nothing", ds)
	}
}

// SDES keys offered by the callee, whose zone allows no SDES (its
// signalling is SIP over UDP, in clear), are refused 488 by policy,
// bridgeable or not; the caller
// never sees them, the record shows the decision, and the call goes on
// with the media it had.
func TestCalleeEarlyUpdateRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		allowUpdate bool
	}{{"alone", false}, {"bridgeable", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l, code, caller, callee := calleeUpdateCall(t, tc.allowUpdate, sim.EarlyUpdate{Keys: true})
			if code != 488 {
				t.Fatalf("the callee's SDES early UPDATE over UDP got %d, want 488", code)
			}
			if n := caller.Updates(); n != 0 {
				t.Errorf("the caller got %d UPDATEs for a refused offer", n)
			}
			exchange(t, caller, callee)
			rec := hangUpRecord(t, l, caller)
			ds := reoffers(rec)
			if len(ds) != 1 || ds[0].Verdict != policy.VerdictRejected || ds[0].Status != 488 || ds[0].Zone != "pbx" {
				t.Fatalf("re-offer decisions %+v, want one rejected with 488 in zone pbx", ds)
			}
			if ds[0].Rule != policy.RuleKeyExchange && ds[0].Rule != policy.RuleSDESClear {
				t.Errorf("refused by rule %q, want %s or %s", ds[0].Rule, policy.RuleKeyExchange, policy.RuleSDESClear)
			}
			if rec.Disposition != compliance.DispositionAnswered {
				t.Errorf("disposition %s, want answered", rec.Disposition)
			}
		})
	}
}
