package b2bua_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// passthroughLab is a lab whose outbound route has no credentials and
// relays challenges (auth_passthrough), toward a carrier that challenges
// every INVITE with 401, or 407 when proxy.
func passthroughLab(t *testing.T, proxy bool, log *lockedLog) (*lab, *sim.Credentials) {
	t.Helper()
	creds := &sim.Credentials{Username: "1001", Password: "phone-Secret-1001"}
	return newLab(t, labOptions{
		carrierAnswer: sim.Answer{Digest: creds, DigestProxy: proxy},
		outbound:      func(r *topology.Route, _ *lab) { r.AuthPassthrough = true },
		logger:        log.logger(),
	}), creds
}

// A callee side that challenges the INVITE of a route without credentials
// of its own: parapet relays the challenge to the caller, whose INVITE
// with credentials (the same Call-ID, the next CSeq) is a new call that
// carries them to the callee side unchanged. The first call's record says
// the challenge was relayed; neither the records nor the logs hold the
// digest response.
func TestChallengeRelayedToCaller(t *testing.T) {
	for _, tc := range []struct {
		name           string
		proxy          bool
		status         int
		credHdr, chHdr string
	}{
		{"401", false, 401, "Authorization", "WWW-Authenticate"},
		{"407", true, 407, "Proxy-Authorization", "Proxy-Authenticate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &lockedLog{}
			l, creds := passthroughLab(t, tc.proxy, log)
			ctx := ctxT(t)
			caller, err := l.callOut(ctx, sim.CallOptions{Credentials: creds})
			if err != nil {
				t.Fatalf("call with credentials: %v", err)
			}
			callee := incoming(t, l.carrier)
			sent, got := caller.SentHeader(tc.credHdr), callee.InviteHeader(tc.credHdr)
			if len(sent) != 1 || len(got) != 1 || sent[0] != got[0] {
				t.Errorf("%s sent %q, the callee side got %q: want it unchanged", tc.credHdr, sent, got)
			}
			if other := map[string]string{"Authorization": "Proxy-Authorization",
				"Proxy-Authorization": "Authorization"}[tc.credHdr]; callee.InviteHeader(other) != nil {
				t.Errorf("callee side got %s it was not challenged for", other)
			}
			if err := caller.Hangup(ctx); err != nil {
				t.Fatalf("hangup: %v", err)
			}
			calls := l.sink.waitCalls(t, 2)
			first, second := calls[0], calls[1]
			if first.Start.After(second.Start) {
				first, second = second, first // records are written as calls end
			}
			if first.Disposition != compliance.DispositionFailed || first.SIPStatus != tc.status ||
				!strings.Contains(first.EndReason, "its challenge was relayed to the caller") {
				t.Errorf("first record %s %d %q", first.Disposition, first.SIPStatus, first.EndReason)
			}
			if second.Disposition != compliance.DispositionAnswered || second.Legs[0].CallID != first.Legs[0].CallID {
				t.Errorf("second record %s, call IDs %q %q", second.Disposition, first.Legs[0].CallID, second.Legs[0].CallID)
			}
			if b := second.Legs[len(second.Legs)-1]; !b.CallerCredentials || first.Legs[len(first.Legs)-1].CallerCredentials {
				t.Errorf("caller_credentials: first %v, second %v",
					first.Legs[len(first.Legs)-1].CallerCredentials, b.CallerCredentials)
			}
			noDigestResponse(t, l, log)
		})
	}
}

// noDigestResponse fails when a record or a log line holds a digest
// response (its response= parameter) or the password.
func noDigestResponse(t *testing.T, l *lab, log *lockedLog) {
	t.Helper()
	for _, c := range l.sink.calls() {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.Contains(s, "response=") || strings.Contains(s, "phone-Secret") {
			t.Errorf("a record holds credentials: %s", s)
		}
	}
	if log.String() == "" {
		t.Error("no log captured: the check would prove nothing")
	}
	if s := log.String(); strings.Contains(s, "response=") || strings.Contains(s, "phone-Secret") {
		t.Errorf("the log holds credentials:\n%s", s)
	}
}

// The caller's credentials cross only in answer to a challenge parapet
// relayed: sent unasked (a phone that sends them first, or a forged
// header), they are dropped like the caller's other headers, and the
// callee side challenges (the sim answers 403 to credentials it cannot
// verify, so a 401 here says none reached it).
func TestUnaskedCredentialsNotPassed(t *testing.T) {
	log := &lockedLog{}
	l, _ := passthroughLab(t, false, log)
	forged := `Digest username="1001", realm="carrier.sim", nonce="abc", uri="sip:+15551230000@x", response="0123456789abcdef0123456789abcdef"`
	_, err := l.callOut(ctxT(t), sim.CallOptions{Headers: []sip.Header{sip.NewHeader("Authorization", forged)}})
	wantRejected(t, err, 401)
	c := l.sink.waitCalls(t, 1)[0]
	if b := c.Legs[len(c.Legs)-1]; b.CallerCredentials {
		t.Error("record says the caller's credentials were passed")
	}
	noDigestResponse(t, l, log)
}

// A phone whose credentials the callee side refuses gets its 403, and a
// phone that answers no challenge gets the relayed 401 as its final word.
func TestChallengeRelayWrongCredentials(t *testing.T) {
	log := &lockedLog{}
	l, _ := passthroughLab(t, false, log)
	_, err := l.callOut(ctxT(t), sim.CallOptions{Credentials: &sim.Credentials{Username: "1001", Password: "wrong"}})
	wantRejected(t, err, 403)
	calls := l.sink.waitCalls(t, 2)
	if calls[0].Start.After(calls[1].Start) {
		calls[0], calls[1] = calls[1], calls[0]
	}
	if calls[0].SIPStatus != 401 || calls[1].SIPStatus != 403 || calls[1].Disposition != compliance.DispositionFailed {
		t.Errorf("records %d %d %s", calls[0].SIPStatus, calls[1].SIPStatus, calls[1].Disposition)
	}
	noDigestResponse(t, l, log)
}

// The gap a new user's trial found: a remote user registered through
// parapet (the carrier zone's registrar, on the PBX side) calls a PBX
// extension over TLS, and the PBX challenges the INVITE as it challenges
// its own users. The challenge reaches the phone, the phone's credentials
// reach the PBX, and the call is answered, with SRTP on the phone's leg.
func TestRegisteredUserAnswersPBXChallenge(t *testing.T) {
	reg := sim.NewPathRegistrar(t, "carrier", "s3cret")
	creds := &sim.Credentials{Username: "carrier", Password: "s3cret"}
	log := &lockedLog{}
	l := newLab(t, labOptions{usersRegistrar: &topology.Registrar{Zone: "pbx",
		Target: topology.Target{URI: "sip:" + reg.Addr.String(), Host: reg.Addr.Addr().String(), Port: int(reg.Addr.Port()),
			Transport: policy.TransportUDP}},
		pbxAnswer: sim.Answer{Digest: creds}, inboundRelay: true, logger: log.logger()})
	ctx := ctxT(t)
	proxy := fmt.Sprintf("sip:%s;transport=tls", l.carrierTLS)
	if res, err := l.carrier.Register(ctx, proxy, sim.Realm, 300, *creds); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Credentials: creds, FromHost: sim.Realm})
	if err != nil {
		t.Fatalf("call from the registered user: %v", err)
	}
	callee := incoming(t, l.pbx)
	if got := callee.InviteHeader("Authorization"); len(got) != 1 || got[0] != caller.SentHeader("Authorization")[0] {
		t.Errorf("the PBX got Authorization %q", got)
	}
	if ok, _ := caller.SRTP(); !ok {
		t.Error("the registered user's leg has no SRTP")
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	calls := l.sink.waitCalls(t, 2)
	if calls[0].Start.After(calls[1].Start) {
		calls[0], calls[1] = calls[1], calls[0]
	}
	if calls[0].SIPStatus != 401 || calls[1].Disposition != compliance.DispositionAnswered ||
		!leg(calls[1], compliance.RoleB).CallerCredentials {
		t.Errorf("records: %d %q, then %s", calls[0].SIPStatus, calls[0].EndReason, calls[1].Disposition)
	}
	noDigestResponse(t, l, log)
}
