package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// SIPp sends P-Asserted-Identity (RFC 3325) through a running parapet: from
// the trusted zone "pbx" to a trusted target it arrives (with parapet's own
// host), toward the untrusted zone "lan" it does not, and a PAI forged from
// "lan" never reaches anyone. The SIPp UAS checks the INVITE it gets (a
// failed check fails the call), and the records show what crossed.
func TestSIPpIdentityTrustDomain(t *testing.T) {
	requirePeers(t, "sipp")
	base := portBlock(t)
	dir := t.TempDir()
	uasYes, uasNo := base+1, base+2
	p := runParapetHCL(t, dir, fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen  = ["udp://127.0.0.1:%d"]
  peers   = ["127.0.0.0/8"]
  trusted = true
  media { srtp = "allow" }
}
zone "lan" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "to-trusted" {
  from   = "pbx"
  to     = "pbx"
  match  = "^1"
  target = "sip:127.0.0.1:%d"
}
route "to-untrusted" {
  from   = "pbx"
  to     = "lan"
  match  = "^2"
  target = "sip:127.0.0.1:%d"
}
route "forged" {
  from   = "lan"
  to     = "pbx"
  target = "sip:127.0.0.1:%d"
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
`, base+60, base+61, uasYes, uasNo, uasNo, base+70, base+99))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The UAS behind the trusted route wants parapet's PAI, with the
	// caller's number and parapet's host; the other wants none at all.
	sippUAS(ctx, t, dir, "yes", uasYes, base+10, `check_it="true"`, `^ *&lt;sip:\+15551110000@127\.0\.0\.1&gt;`)
	sippUAS(ctx, t, dir, "no", uasNo, base+14, `check_it_inverse="true"`, `.`)
	uac := writeScenario(t, dir, "uac_pai.xml", uacPAI)
	for i, c := range []struct{ port, service string }{
		{fmt.Sprint(base + 60), "15550001"}, {fmt.Sprint(base + 60), "25550002"}, {fmt.Sprint(base + 61), "15550003"},
	} {
		if out, err := sippCall(ctx, dir, "127.0.0.1:"+c.port, base+3+i, base+20+4*i, "-sf", uac, "-s", c.service); err != nil {
			t.Errorf("call %s through %s: %v\n%s", c.service, c.port, err, peers.Tail(out, 12))
		}
	}

	// SIPp marks a failed check in its error log and goes on with the
	// call: the log is the UAS's verdict.
	for _, name := range []string{"yes", "no"} {
		if e := sippRegexpErrors(dir, "uas_"+name); e != "" {
			t.Errorf("the SIPp UAS %q got what it should not:\n%s", name, e)
		}
	}

	calls := stopAfterCalls(t, p, dir, 3)
	want := []struct {
		route         string
		sent          int
		withheldA     []string
		withheldB     []string
		privacyPassed string
	}{
		{"to-trusted", 1, nil, nil, "id"},
		{"to-untrusted", 0, nil, []string{"P-Asserted-Identity"}, "id"},
		{"forged", 0, []string{"P-Asserted-Identity"}, nil, "id"},
	}
	for i, c := range calls {
		w := want[i]
		if c.Disposition != compliance.DispositionAnswered || c.Route != w.route || len(c.Legs) != 2 {
			t.Errorf("call %d: %s %d route %q %q", i, c.Disposition, c.SIPStatus, c.Route, c.EndReason)
			continue
		}
		a, b := c.Legs[0], c.Legs[1]
		if len(b.AssertedIdentities) != w.sent || !slices.Equal(a.WithheldHeaders, w.withheldA) ||
			!slices.Equal(b.WithheldHeaders, w.withheldB) || a.Privacy != w.privacyPassed {
			t.Errorf("call %d (%s): a %q/%q/%q b %q/%q", i, w.route, a.AssertedIdentities, a.WithheldHeaders, a.Privacy,
				b.AssertedIdentities, b.WithheldHeaders)
		}
		for _, id := range append(a.AssertedIdentities, b.AssertedIdentities...) {
			if !strings.HasPrefix(id, "hmac-sha256:") {
				t.Errorf("call %d: identity in clear %q", i, id)
			}
		}
	}
}

// sippUAS starts a SIPp UAS on port that answers every INVITE with SDP
// and checks its P-Asserted-Identity header against regexp with check (a
// SIPp ereg attribute); a failed check is written to its error log
// (sippRegexpErrors).
func sippUAS(ctx context.Context, t *testing.T, dir, name string, port, mediaPort int, check, regexp string) {
	t.Helper()
	startSIPpUAS(ctx, t, dir, name, port, mediaPort, uasChecking("UAS checking P-Asserted-Identity",
		`<ereg regexp="`+regexp+`" search_in="hdr" header="P-Asserted-Identity:" `+check+` assign_to="pai"/>`))
}

// uasChecking answers an INVITE whose check (a SIPp ereg assigning
// "pai") passes, then takes ACK and BYE.
func uasChecking(name, ereg string) string {
	return sippScenario(name,
		sippRecv(`request="INVITE"`, ereg),
		`  <Reference variables="pai"/>
`,
		uasAnswer(uasTag, "", sdpPCMU),
		sippRecv(`request="ACK"`), uasByeEnd)
}

// paiUAC calls [service] with a P-Asserted-Identity naming the PBX's own
// host, Privacy: id.
var paiUAC = sippUAC{ruri: stockUAC.ruri, from: stockUAC.from, to: "<sip:[service]@[remote_ip]:[remote_port]>"}

// uacPAI calls [service] as paiUAC, then hangs up.
var uacPAI = sippScenario("UAC with P-Asserted-Identity",
	paiUAC.invite("\n      Contact: sip:sipp@[local_ip]:[local_port]\n      P-Asserted-Identity: <sip:+15551110000@pbx.clinic.internal>\n      Privacy: id",
		sippSDP("2353687637", sdpPCMU)), uacRinging,
	sippRecv(`response="200" rrs="true"`),
	paiUAC.ack(""), sippPause("300"), paiUAC.hangUp("2"),
)
