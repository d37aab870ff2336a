package main

import (
	"strings"
	"testing"
)

// SIPp through parapet with session timers (RFC 4028) and UPDATE (RFC
// 3311), the pbx zone's session interval 4 s: the UAC asks for 4 s and
// refreshes leg A itself with UPDATEs without SDP, and sends one UPDATE
// with a new offer, which parapet bridges to the UAS as a re-INVITE; the
// UAS makes parapet the refresher of leg B (refresher=uac in its 200,
// no UPDATE in its Allow), which parapet refreshes with re-INVITEs. The
// call lasts over three intervals, with media both ways, and ends with
// the UAC's BYE.
func TestSIPpSessionTimerAndUpdate(t *testing.T) {
	recs, msgs := sippScripted(t, uacTimer, uasTimer, `session_expires = "4s"`, `min_se = "2s"`)
	checkSIPpCalls(t, recs, 1)
	t.Logf("UAS: %d INVITEs, %d ACKs", strings.Count(msgs, "\nINVITE sip:"), strings.Count(msgs, "\nACK sip:"))
	// The INVITE, the bridged re-offer and parapet's refreshes of leg B
	// (at half of 4 s over some 12 s).
	if n := strings.Count(msgs, "\nINVITE sip:"); n < 5 {
		t.Errorf("the UAS got %d INVITEs, want the first, the re-offer and at least 3 refreshes:\n%s", n, msgs)
	}
	if n := strings.Count(msgs, "\nUPDATE sip:"); n != 0 {
		t.Errorf("the UAS got %d UPDATEs: leg A's refreshes must stay on leg A", n)
	}
	if c := recs[0]; c.EndReason != "bye from a" {
		t.Errorf("end reason %q", c.EndReason)
	}
}

// refreshUpdate is an UPDATE without SDP refreshing leg A, and the check
// of parapet's 200: the interval granted, the UAC refreshing.
func refreshUpdate(cseq string) string {
	return uacRequest("UPDATE", cseq, "\n      Supported: timer\n      Session-Expires: 4;refresher=uac", "") +
		sippRecv(`response="200"`,
			`<ereg regexp="4;refresher=uac" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="se`+cseq+`"/>`) +
		sippPause("1500")
}

// uacTimer asks for a 4 s session timer, refreshes it with UPDATEs
// without SDP, sends one UPDATE with a new offer, and hangs up.
var uacTimer = sippScenario("UAC, session timer refreshed by UPDATE, a re-offer by UPDATE",
	stockUAC.invite("\n      Allow: INVITE, ACK, BYE, CANCEL, UPDATE\n      Supported: timer\n      Session-Expires: 4;refresher=uac",
		sdpOffer("1")), uacRinging,
	sippRecv(`response="200" rtd="true" rrs="true"`,
		`<ereg regexp="4;refresher=uac" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="se1"/>`,
		`<ereg regexp="timer" search_in="hdr" header="Require:" check_it="true" assign_to="req1"/>`),
	stockUAC.ack(""), playPCAP, sippPause("1500"),
	refreshUpdate("2"),
	reofferUpdate("3", "\n      Supported: timer\n      Session-Expires: 4;refresher=uac"),
	sippPause("1500"),
	refreshUpdate("4"), refreshUpdate("5"), refreshUpdate("6"), refreshUpdate("7"), refreshUpdate("8"),
	stockUAC.hangUp("9"),
	sippLog("[$se1] [$req1] [$se2] [$answer3] [$se4] [$se5] [$se6] [$se7] [$se8]"),
)

// uasTimer answers the INVITE with a session timer parapet refreshes
// (refresher=uac, and an Allow without UPDATE: re-INVITEs), then answers
// every re-INVITE until the BYE.
var uasTimer = sippScenario("UAS, session timer refreshed by the UAC with re-INVITEs",
	`  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
`,
	uasOK(uasTag, "\n      Session-Expires: 4;refresher=uac\n      Require: timer\n      Allow: INVITE, ACK, BYE, CANCEL"),
	`  <recv request="ACK" next="1"/>
  <label id="2"/>
`,
	uasOK("", ""),
	`  <recv request="ACK"/>
  <label id="1"/>
  <recv request="INVITE" optional="true" next="2"/>
`,
	uasByeEnd,
)
