package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// A SIPp phone dials urn:service:sos.police (RFC 5031) as RFC 6881 has a
// phone do: the URN as Request-URI and in To, parapet as its outbound
// proxy (Route). The running parapet takes it as an emergency call and
// sends it on the emergency route as 911, where a SIPp UAS checks the
// Request-URI it gets (a failed check fails the test); the record says
// emergency and names the service.
func TestSIPpEmergencyServiceURN(t *testing.T) {
	requirePeers(t, "sipp")
	base := portBlock(t)
	dir := t.TempDir()
	uas := base + 1
	p := runParapetHCL(t, dir, fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
emergency {
  numbers = ["911", "933"]
}
route "emergency" {
  from   = "pbx"
  to     = "carrier"
  match  = "^\\+?(911|933)$"
  target = "sip:127.0.0.1:%d"
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
`, base+60, base+61, uas, base+70, base+99))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sippUASChecking(ctx, t, dir, "sos", uas, base+10, `^INVITE sip:911@127\.0\.0\.1:`)
	uac := writeScenario(t, dir, "uac_sos.xml", uacSOS)
	if out, err := sippCall(ctx, dir, fmt.Sprintf("127.0.0.1:%d", base+60), base+3, base+20, "-sf", uac); err != nil {
		t.Fatalf("SIPp dialling urn:service:sos.police: %v\n%s\n%s", err, peers.Tail(out, 12), p.allLogs())
	}
	if e := sippRegexpErrors(dir, "uas_sos"); e != "" {
		t.Errorf("the carrier's SIPp UAS got another Request-URI:\n%s", e)
	}
	c := stopAfterCalls(t, p, dir, 1)[0]
	if c.Disposition != compliance.DispositionAnswered || c.Route != "emergency" || !c.Emergency ||
		c.EmergencyService != "urn:service:sos.police" {
		t.Errorf("record: %s %d route %q emergency %v service %q (%s)", c.Disposition, c.SIPStatus, c.Route,
			c.Emergency, c.EmergencyService, c.EndReason)
	}
}

// sippUASChecking starts a SIPp UAS on port that answers every INVITE
// and checks the whole INVITE against regexp; a failed check is written
// to its error log (sippRegexpErrors).
func sippUASChecking(ctx context.Context, t *testing.T, dir, name string, port, mediaPort int, regexp string) {
	t.Helper()
	startSIPpUAS(ctx, t, dir, name, port, mediaPort, uasChecking("UAS checking the INVITE",
		`<ereg regexp="`+regexp+`" search_in="msg" check_it="true" assign_to="pai"/>`))
}

// sosUAC dials urn:service:sos.police through its outbound proxy (the
// Route header; SIPp sends to the address it is given).
var sosUAC = sippUAC{ruri: "urn:service:sos.police", from: "phone <sip:phone@[local_ip]:[local_port]>",
	to: "<urn:service:sos.police>"}

// uacSOS calls as sosUAC, then hangs up.
var uacSOS = sippScenario("UAC dialling an emergency service URN",
	sosUAC.invite("\n      Route: <sip:[remote_ip]:[remote_port];lr>\n      Contact: sip:phone@[local_ip]:[local_port]",
		sippSDP("2353687637", sdpPCMU)), uacRinging,
	sippRecv(`response="200" rrs="true"`),
	sosUAC.ack(""), sippPause("300"), sosUAC.hangUp("2"),
)
