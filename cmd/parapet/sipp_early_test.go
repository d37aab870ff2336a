package main

import (
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/policy"
)

// SIPp through parapet with an UPDATE in the early dialog (RFC 3311
// section 5.1): the UAC requires 100rel, PRACKs parapet's reliable 183
// (which carries parapet's answer to its offer) and then sends an UPDATE
// with a new offer while the UAS, whose own 183 was unreliable, holds its
// 200. The UAS's early dialog cannot carry an offer and the new SDP
// concerns leg A only (same codecs): parapet answers the UPDATE itself.
// The call is then answered, with media both ways, and its record holds
// the re-offer decision.
func TestSIPpEarlyUpdate(t *testing.T) {
	recs, msgs := sippScripted(t, uacEarlyUpdate, uasEarly)
	checkSIPpCalls(t, recs, 1)
	if n := strings.Count(msgs, "\nUPDATE sip:"); n != 0 {
		t.Errorf("the UAS got %d UPDATEs: the change was leg A's alone", n)
	}
	var reoffers []policy.Decision
	for _, d := range recs[0].Decisions {
		if d.Stage == policy.StageReoffer {
			reoffers = append(reoffers, d)
		}
	}
	if len(reoffers) != 1 || reoffers[0].Verdict != policy.VerdictAllowed {
		t.Errorf("re-offer decisions %+v, want the early UPDATE's, allowed", reoffers)
	}
}

// uacEarlyUpdate requires 100rel, PRACKs the reliable 183 and sends an
// UPDATE with a new offer before the call is answered.
var uacEarlyUpdate = sippScenario("UAC, 100rel, an UPDATE with a new offer in the early dialog",
	stockUAC.invite("\n      Allow: INVITE, ACK, BYE, CANCEL, PRACK, UPDATE\n      Supported: 100rel\n      Require: 100rel",
		sdpOffer("1")), sippRecv(`response="100" optional="true"`),
	sippRecv(`response="183" rrs="true"`,
		`<ereg regexp="[0-9]+" search_in="hdr" header="RSeq:" check_it="true" assign_to="rseq"/>`,
		`<ereg regexp="m=audio" search_in="body" check_it="true" assign_to="early"/>`),
	uacRequest("PRACK", "2", "\n      RAck: [$rseq] 1 INVITE", ""), sippRecv(`response="200"`),
	reofferUpdate("3", ""),
	sippRecv(`response="200" rtd="true" rrs="true"`),
	stockUAC.ack(""), playPCAP, sippPause("2500"),
	stockUAC.hangUp("4"),
	sippLog("[$rseq] [$early] [$answer3]"),
)

// uasEarly sends an unreliable 183 with its answer and holds its 200 for
// 1.5 s (the early dialog), then answers; media is echoed (-rtp_echo).
var uasEarly = sippScenario("UAS, early media, a late answer",
	`  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 183 Session Progress
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

`+sippSDP("2353687637", sdpPCMA)+`
    ]]>
  </send>
`,
	sippPause("1500"), uasOK(uasTag, ""), sippRecv(`request="ACK"`), uasByeEnd,
)
