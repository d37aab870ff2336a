package b2bua

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/parapet-sbc/parapet/compliance"
)

// Digest pass-through (route auth_passthrough): a route without
// credentials of its own relays a 401 or 407 challenge to its INVITE back
// to the caller, as a proxy would, and the caller's next INVITE of the
// same Call-ID (RFC 3261 section 22.2: same Call-ID and From tag, a higher
// CSeq, an Authorization or Proxy-Authorization header) is a new call for
// parapet, whose INVITE to the callee side carries those credentials
// unchanged. They cross only to the zone that challenged, and only for
// the realms it challenged with: parapet remembers each challenge it
// relayed, by the caller's zone and Call-ID, for challengeTTL. Credential
// values are never logged or recorded.

// challengeTTL is how long a relayed challenge's answer is awaited: the
// caller's INVITE transaction lifetime (64*T1).
const challengeTTL = 32 * time.Second

// maxRelayedChallenges bounds the book: beyond it the oldest challenge is
// forgotten (its caller's answer is then not passed, and the callee side
// challenges again).
const maxRelayedChallenges = 4096

// challengeKey names a relayed challenge: the caller's zone and Call-ID.
type challengeKey struct{ zone, callID string }

// relayedChallenge is what a relayed challenge allows: credentials for
// zone to, in the realms asked for (by the header that carries them:
// "Authorization" for a 401's, "Proxy-Authorization" for a 407's).
type relayedChallenge struct {
	to     string
	realms map[string]map[string]bool
	until  time.Time
}

// challengeBook is the server's memory of the challenges relayed to
// callers.
type challengeBook struct {
	mu    sync.Mutex
	m     map[challengeKey]relayedChallenge
	order []challengeKey // oldest first, for maxRelayedChallenges
}

func newChallengeBook() *challengeBook {
	return &challengeBook{m: map[challengeKey]relayedChallenge{}}
}

// note remembers that a challenge from zone to was relayed for k, with
// realms by credential header. Expired entries are swept first.
func (b *challengeBook) note(k challengeKey, to string, realms map[string]map[string]bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.order[:0]
	for _, o := range b.order {
		if e, ok := b.m[o]; ok && now.Before(e.until) && o != k {
			kept = append(kept, o)
		} else if o != k {
			delete(b.m, o)
		}
	}
	b.order = kept
	if len(b.order) >= maxRelayedChallenges {
		delete(b.m, b.order[0])
		b.order = b.order[1:]
	}
	b.m[k] = relayedChallenge{to: to, realms: realms, until: now.Add(challengeTTL)}
	b.order = append(b.order, k)
}

// lookup returns the challenge relayed for k, if it is still awaited.
func (b *challengeBook) lookup(k challengeKey, now time.Time) (relayedChallenge, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[k]
	return e, ok && now.Before(e.until)
}

// credentialHeader is the header that answers res's challenges, and the
// header that carries them.
func credentialHeader(res *sip.Response) (chal, cred string) {
	if res.StatusCode == sip.StatusProxyAuthRequired {
		return "Proxy-Authenticate", "Proxy-Authorization"
	}
	return "WWW-Authenticate", "Authorization"
}

// challengeRealms reads the realms of res's digest challenges, by the
// header that will answer them; nil when res has no readable challenge.
func challengeRealms(res *sip.Response) map[string]map[string]bool {
	chalHdr, credHdr := credentialHeader(res)
	realms := map[string]bool{}
	for _, h := range res.GetHeaders(chalHdr) {
		if chal, err := digest.ParseChallenge(h.Value()); err == nil {
			realms[chal.Realm] = true
		}
	}
	if len(realms) == 0 {
		return nil
	}
	return map[string]map[string]bool{credHdr: realms}
}

// realmNames lists the realms of challengeRealms's answer, for a log line.
func realmNames(realms map[string]map[string]bool) []string {
	var out []string
	for _, rs := range realms {
		for r := range rs {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// passesChallenge reports whether the callee side's challenge res is to
// be relayed to the caller: the route has no credentials of its own,
// pass-through is on, and res carries a challenge parapet can read.
func (c *Call) passesChallenge(res *sip.Response) bool {
	return c.passthrough() && challengeRealms(res) != nil
}

// passthrough reports whether the call's route relays challenges: no
// credentials of its own, and auth_passthrough on.
func (c *Call) passthrough() bool {
	return c.route.AuthPassthrough && c.route.Username == "" && c.route.Password == ""
}

// relayChallenge answers the caller with the callee side's challenge res:
// its status and its WWW-Authenticate or Proxy-Authenticate headers as
// they came, nothing else of the callee's. The challenge is remembered so
// that the caller's answer may reach the zone that challenged.
func (c *Call) relayChallenge(res *sip.Response) {
	code := res.StatusCode
	chalHdr, _ := credentialHeader(res)
	realms := challengeRealms(res)
	c.env.challenges.note(challengeKey{zone: c.a.zone.name, callID: c.a.key.callID}, c.b.zone.name, realms, time.Now())
	why := fmt.Sprintf("callee side asked for credentials (%d); its challenge was relayed to the caller "+
		"(route %q has auth_passthrough), whose INVITE with credentials is a new call", code, c.route.Name)
	c.setOutcome(compliance.DispositionFailed, code, why)
	c.log.Info("digest challenge relayed to the caller", "route", c.route.Name, "status", code,
		"realms", recordText(strings.Join(realmNames(realms), ","), nil, c.caller, c.callee))
	out := sip.NewResponseFromRequest(c.a.uas.InviteRequest, code, reasonPhrase(code), nil)
	c.a.zone.commonHeaders(out)
	for _, h := range res.GetHeaders(chalHdr) {
		out.AppendHeader(sip.NewHeader(chalHdr, h.Value()))
	}
	c.sent(code, c.aTx.Respond(out))
}

// passCredentials adds to B's INVITE req the caller's digest credentials
// that answer a challenge parapet relayed for the caller's Call-ID
// (answering). It reports whether any were passed.
func (c *Call) passCredentials(req *sip.Request) bool {
	inv := c.a.uas.InviteRequest
	if !c.passthrough() {
		return false
	}
	e, ok := c.env.challenges.lookup(challengeKey{zone: c.a.zone.name, callID: string(*inv.CallID())}, time.Now())
	if !ok {
		return false
	}
	hs := answering(inv, e, c.b.zone.name)
	for _, h := range hs {
		req.AppendHeader(h)
	}
	return len(hs) > 0
}

// answering is the caller's credential headers in inv that answer the
// relayed challenge e, for a leg toward zone to: none unless to is the
// zone that challenged, and of them only those of the header e asked for,
// in a realm it named, as they came. The others are dropped, as all the
// caller's other headers are.
func answering(inv *sip.Request, e relayedChallenge, to string) []sip.Header {
	if e.to != to {
		return nil
	}
	var out []sip.Header
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, h := range inv.GetHeaders(name) {
			cred, err := digest.ParseCredentials(h.Value())
			if err != nil || !e.realms[name][cred.Realm] {
				continue
			}
			out = append(out, sip.NewHeader(name, h.Value()))
		}
	}
	return out
}
