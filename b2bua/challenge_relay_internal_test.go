package b2bua

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The caller's credentials answer only the relayed challenge: toward the
// zone that challenged, in the header it asked for, in a realm it named.
func TestAnsweringRelayedChallenge(t *testing.T) {
	cred := func(realm string) string {
		return fmt.Sprintf(`Digest username="1001", realm=%q, nonce="n1", uri="sip:1002@sbc", response="00112233445566778899aabbccddeeff"`, realm)
	}
	e := relayedChallenge{to: "pbx", realms: map[string]map[string]bool{"Authorization": {"pbx.test": true}}}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		to      string
		want    int
	}{
		{"the challenging zone, its realm", map[string]string{"Authorization": cred("pbx.test")}, "pbx", 1},
		{"another zone", map[string]string{"Authorization": cred("pbx.test")}, "carrier", 0},
		{"another realm", map[string]string{"Authorization": cred("carrier.example")}, "pbx", 0},
		{"the header not asked for", map[string]string{"Proxy-Authorization": cred("pbx.test")}, "pbx", 0},
		{"not digest", map[string]string{"Authorization": "Basic MTAwMTpzZWNyZXQ="}, "pbx", 0},
		{"none", nil, "pbx", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1002", Host: "sbc"})
			for n, v := range tc.headers {
				inv.AppendHeader(sip.NewHeader(n, v))
			}
			got := answering(inv, e, tc.to)
			if len(got) != tc.want {
				t.Fatalf("passed %d headers, want %d", len(got), tc.want)
			}
			for _, h := range got {
				if h.Value() != tc.headers[h.Name()] {
					t.Errorf("%s changed: %q", h.Name(), h.Value())
				}
			}
		})
	}
}

// A relayed challenge is awaited for challengeTTL, per caller zone and
// Call-ID; the book keeps at most maxRelayedChallenges, forgetting the
// oldest.
func TestChallengeBook(t *testing.T) {
	b := newChallengeBook()
	now := time.Now()
	realms := map[string]map[string]bool{"Authorization": {"r": true}}
	b.note(challengeKey{"staff", "c1"}, "pbx", realms, now)
	if e, ok := b.lookup(challengeKey{"staff", "c1"}, now.Add(challengeTTL-time.Second)); !ok || e.to != "pbx" {
		t.Errorf("lookup within the TTL: %v %v", e, ok)
	}
	if _, ok := b.lookup(challengeKey{"staff", "c1"}, now.Add(challengeTTL)); ok {
		t.Error("found after the TTL")
	}
	if _, ok := b.lookup(challengeKey{"carrier", "c1"}, now); ok {
		t.Error("found from another caller zone")
	}
	for i := range maxRelayedChallenges + 10 {
		b.note(challengeKey{"staff", fmt.Sprint("n", i)}, "pbx", realms, now)
	}
	if n := len(b.m); n != maxRelayedChallenges || len(b.order) != n {
		t.Errorf("book holds %d (order %d), want %d", n, len(b.order), maxRelayedChallenges)
	}
	if _, ok := b.lookup(challengeKey{"staff", "c1"}, now); ok {
		t.Error("the oldest challenge is still there")
	}
	if _, ok := b.lookup(challengeKey{"staff", fmt.Sprint("n", maxRelayedChallenges+9)}, now); !ok {
		t.Error("the newest challenge is gone")
	}
	// Expired ones are swept on the next note.
	b.note(challengeKey{"staff", "late"}, "pbx", realms, now.Add(challengeTTL))
	if len(b.m) != 1 {
		t.Errorf("after the TTL the book holds %d, want 1", len(b.m))
	}
}
