package main

import (
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	uac, uas := filepath.Join(dir, "uac_early.xml"), filepath.Join(dir, "uas_early.xml")
	if err := os.WriteFile(uac, []byte(uacEarlyUpdate), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uas, []byte(uasEarly), 0o600); err != nil {
		t.Fatal(err)
	}
	var msgs string
	recs := sippWith(t, 1, sippSetup{uas: []string{"-sf", uas, "-trace_msg"}, uasMessages: &msgs}, "-sf", uac)
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

var uacEarlyUpdate = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC, 100rel, an UPDATE with a new offer in the early dialog">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Allow: INVITE, ACK, BYE, CANCEL, PRACK, UPDATE
      Supported: 100rel
      Require: 100rel
      Content-Type: application/sdp
      Content-Length: [len]

` + sdpOffer("1") + `
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="183" rrs="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="RSeq:" check_it="true" assign_to="rseq"/>
      <ereg regexp="m=audio" search_in="body" check_it="true" assign_to="early"/>
    </action>
  </recv>
` + uacRequest("PRACK", "2", "\n      RAck: [$rseq] 1 INVITE", "") + `  <recv response="200"/>
` + uacRequest("UPDATE", "3", "", sdpOffer("2")) + `  <recv response="200">
    <action>
      <ereg regexp="m=audio" search_in="body" check_it="true" assign_to="answer3"/>
    </action>
  </recv>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec play_pcap_audio="pcap/g711a.pcap"/>
    </action>
  </nop>
  <pause milliseconds="2500"/>
` + uacRequest("BYE", "4", "", "") + `  <recv response="200"/>
  <nop>
    <action>
      <log message="[$rseq] [$early] [$answer3]"/>
    </action>
  </nop>
</scenario>
`

// uasEarly sends an unreliable 183 with its answer and holds its 200 for
// 1.5 s (the early dialog), then answers; media is echoed (-rtp_echo).
var uasEarly = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS, early media, a late answer">
  <recv request="INVITE" crlf="true"/>
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

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16
    ]]>
  </send>
  <pause milliseconds="1500"/>
` + uasOK(";tag=[pid]SIPpTag01[call_number]", "") + `  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
`
