package b2bua_test

import (
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// A callee side that challenges the INVITE of a route without credentials
// and with auth_passthrough off (the lab's route leaves it unset) fails the
// call with 503, and the record says the route had none to answer with
// (not that parapet's credentials were refused). With auth_passthrough the
// challenge goes to the caller instead (challenge_relay_test.go).
func TestDigestChallengeWithoutCredentials(t *testing.T) {
	creds := &sim.Credentials{Username: "clinic", Password: "s3cret"}
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Digest: creds}})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 503)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || !strings.Contains(c.EndReason, "asked for credentials (401)") ||
		!strings.Contains(c.EndReason, "has none to answer with") {
		t.Errorf("record %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
}
