package b2bua_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// The callee's identity in responses (RFC 3325 section 9.1): the carrier
// asserts the callee's identity in its 183, 180 and 200; it reaches the
// caller only when both zones are in the trust domain, with Privacy
// alongside, and the records carry it pseudonymised.

// headerLines are the values of the header lines named name in msg, a SIP
// message as written.
func headerLines(msg, name string) []string {
	var out []string
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
		if line == "" {
			break
		}
	}
	return out
}

func TestIdentityInResponses(t *testing.T) {
	token := testPseudo.Token("+15557770000")
	for _, c := range []struct {
		name                 string
		pbx, carrier         bool
		privacy              string
		wantPAI              bool
		withheldA, withheldB []string
	}{
		{"trusted to trusted", true, true, "", true, nil, nil},
		{"trusted to trusted, privacy id", true, true, "id", true, nil, nil},
		{"trusted callee to untrusted caller", false, true, "", false, []string{"P-Asserted-Identity (response)"}, nil},
		{"trusted callee to untrusted caller, privacy id", false, true, "id", false,
			[]string{"P-Asserted-Identity (response)"}, nil},
		{"forged by an untrusted callee", true, false, "", false, nil, []string{"P-Asserted-Identity (response)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hdrs := []sip.Header{sip.NewHeader("P-Asserted-Identity",
				`"Dr Lee" <sip:+15557770000@sbc.carrier.example>, <tel:+15557770000>`)}
			if c.privacy != "" {
				hdrs = append(hdrs, sip.NewHeader("Privacy", c.privacy))
			}
			l := newLab(t, labOptions{pbxTrusted: c.pbx, carrierTrusted: c.carrier,
				carrierAnswer: sim.Answer{Early: true, Ring: 10 * time.Millisecond, Headers: hdrs}})
			ctx := ctxT(t)
			caller, err := l.callOut(ctx, sim.CallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			incoming(t, l.carrier)
			msgs := append(caller.Provisional(), caller.Dialog())
			if len(msgs) < 3 {
				t.Fatalf("the caller got %d responses, want 183, 180 and 200", len(msgs))
			}
			want := []string{`"Dr Lee" <sip:+15557770000@` + l.pbxUDP.Addr().String() + `>`, "<tel:+15557770000>"}
			for _, m := range msgs {
				first, _, _ := strings.Cut(m, "\r\n")
				pai, priv := headerLines(m, "P-Asserted-Identity"), headerLines(m, "Privacy")
				switch {
				case c.wantPAI && !slices.Equal(pai, want):
					t.Errorf("%s: P-Asserted-Identity %q, want %q", first, pai, want)
				case !c.wantPAI && len(pai) > 0:
					t.Errorf("%s: the callee's P-Asserted-Identity reached an untrusted caller: %q", first, pai)
				}
				if wantPriv := c.wantPAI && c.privacy != ""; wantPriv != slices.Equal(priv, []string{c.privacy}) {
					t.Errorf("%s: Privacy %q", first, priv)
				}
			}
			caller.Hangup(ctx)
			rec := l.sink.waitCalls(t, 1)[0]
			checkCalleeIdentities(t, rec, c.carrier, c.wantPAI, token)
			a, b := rec.Legs[0], rec.Legs[1]
			if !slices.Equal(a.WithheldHeaders, c.withheldA) || !slices.Equal(b.WithheldHeaders, c.withheldB) {
				t.Errorf("withheld a %q b %q, want %q %q", a.WithheldHeaders, b.WithheldHeaders, c.withheldA, c.withheldB)
			}
		})
	}
}

// checkCalleeIdentities checks the callee's identities in a record: on
// leg b when the callee's zone is trusted, on leg a when they reached the
// caller, pseudonymised, and never in clear.
func checkCalleeIdentities(t *testing.T, rec *compliance.Call, believed, passed bool, token string) {
	t.Helper()
	a, b := rec.Legs[0], rec.Legs[1]
	var wantA, wantB []string
	if believed {
		wantB = []string{token, token}
	}
	if passed {
		wantA = wantB
	}
	if !slices.Equal(a.CalleeIdentities, wantA) || !slices.Equal(b.CalleeIdentities, wantB) {
		t.Errorf("callee identities a %q b %q, want %q %q", a.CalleeIdentities, b.CalleeIdentities, wantA, wantB)
	}
	line, _ := json.Marshal(rec)
	if strings.Contains(string(line), "5557770000") || strings.Contains(string(line), "carrier.example") {
		t.Errorf("the record names the callee's identity in clear: %s", line)
	}
}
