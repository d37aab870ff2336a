package main

import (
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	uac, uas := filepath.Join(dir, "uac_timer.xml"), filepath.Join(dir, "uas_timer.xml")
	if err := os.WriteFile(uac, []byte(uacTimer), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uas, []byte(uasTimer), 0o600); err != nil {
		t.Fatal(err)
	}
	var msgs string
	recs := sippWith(t, 1, sippSetup{uas: []string{"-sf", uas, "-trace_msg"}, uasMessages: &msgs,
		pbxZone: []string{`session_expires = "4s"`, `min_se = "2s"`}}, "-sf", uac)
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

// sdpOffer is the UAC's SDP with o= version v.
func sdpOffer(v string) string {
	return `      v=0
      o=user1 53655765 ` + v + ` IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16`
}

// uacRequest is an in-dialog request of the UAC: method, CSeq, extra
// headers and body.
func uacRequest(method, cseq, headers, body string) string {
	ctype := ""
	if body != "" {
		ctype = "\n      Content-Type: application/sdp"
	}
	return `  <send retrans="500">
    <![CDATA[
      ` + method + ` [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ` + cseq + ` ` + method + `
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70` + headers + ctype + `
      Content-Length: [len]

` + body + `
    ]]>
  </send>
`
}

// refreshUpdate is an UPDATE without SDP refreshing leg A, and the check
// of parapet's 200: the interval granted, the UAC refreshing.
func refreshUpdate(cseq string) string {
	return uacRequest("UPDATE", cseq, "\n      Supported: timer\n      Session-Expires: 4;refresher=uac", "") +
		`  <recv response="200">
    <action>
      <ereg regexp="4;refresher=uac" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="se` + cseq + `"/>
    </action>
  </recv>
  <pause milliseconds="1500"/>
`
}

var uacTimer = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC, session timer refreshed by UPDATE, a re-offer by UPDATE">
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
      Allow: INVITE, ACK, BYE, CANCEL, UPDATE
      Supported: timer
      Session-Expires: 4;refresher=uac
      Content-Type: application/sdp
      Content-Length: [len]

` + sdpOffer("1") + `
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true">
    <action>
      <ereg regexp="4;refresher=uac" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="se1"/>
      <ereg regexp="timer" search_in="hdr" header="Require:" check_it="true" assign_to="req1"/>
    </action>
  </recv>
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
  <pause milliseconds="1500"/>
` + refreshUpdate("2") + uacRequest("UPDATE", "3", "\n      Supported: timer\n      Session-Expires: 4;refresher=uac", sdpOffer("2")) + `  <recv response="200">
    <action>
      <ereg regexp="m=audio" search_in="body" check_it="true" assign_to="answer3"/>
    </action>
  </recv>
  <pause milliseconds="1500"/>
` + refreshUpdate("4") + refreshUpdate("5") + refreshUpdate("6") + refreshUpdate("7") + refreshUpdate("8") +
	uacRequest("BYE", "9", "", "") + `  <recv response="200"/>
  <nop>
    <action>
      <log message="[$se1] [$req1] [$se2] [$answer3] [$se4] [$se5] [$se6] [$se7] [$se8]"/>
    </action>
  </nop>
</scenario>
`

// uasTimer answers the INVITE with a session timer parapet refreshes
// (refresher=uac, and an Allow without UPDATE: re-INVITEs), then answers
// every re-INVITE until the BYE.
var uasTimer = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS, session timer refreshed by the UAC with re-INVITEs">
  <recv request="INVITE" crlf="true"/>
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
` + uasOK(";tag=[pid]SIPpTag01[call_number]", "\n      Session-Expires: 4;refresher=uac\n      Require: timer\n      Allow: INVITE, ACK, BYE, CANCEL") + `  <recv request="ACK" next="1"/>
  <label id="2"/>
` + uasOK("", "") + `  <recv request="ACK"/>
  <label id="1"/>
  <recv request="INVITE" optional="true" next="2"/>
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

// uasOK is the UAS's 200 with SDP to the last INVITE: toTag is added to
// To (none for a re-INVITE, whose To has the tag), with more headers.
func uasOK(toTag, headers string) string {
	return `  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]` + toTag + `
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>` + headers + `
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
`
}
