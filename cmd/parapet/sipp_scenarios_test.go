package main

import "strings"

// The blocks SIPp scenarios of these tests are built from: each scenario
// states what is particular to it and takes the rest (the XML head, SDP,
// the UAC's INVITE, ACK and in-dialog requests, the UAS's answers) from
// here.

// sippScenario is a whole SIPp scenario named name, its steps parts.
func sippScenario(name string, parts ...string) string {
	return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="` + name + `">
` + strings.Join(parts, "") + `</scenario>
`
}

// sdpPCMA and sdpPCMU are the media lines of SDP offering PCMA (with
// telephone-event) or PCMU alone.
var (
	sdpPCMA = []string{"m=audio [media_port] RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-11,16"}
	sdpPCMU = []string{"m=audio [media_port] RTP/AVP 0", "a=rtpmap:0 PCMU/8000"}
)

// sippSDP is a SIPp message body of SDP with o= version v and the given
// media lines.
func sippSDP(v string, media []string) string {
	return `      v=0
      o=user1 53655765 ` + v + ` IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      ` + strings.Join(media, "\n      ")
}

// sdpOffer is the UAC's SDP (PCMA) with o= version v.
func sdpOffer(v string) string { return sippSDP(v, sdpPCMA) }

// sippUAC is who a UAC scenario is: the Request-URI of its INVITE, its
// From and To (without tags) and its Contact header line (empty for none
// on requests after the INVITE).
type sippUAC struct {
	ruri, from, to, contact string
}

// stockUAC is the UAC of SIPp's stock scenarios, calling [service].
var stockUAC = sippUAC{
	ruri:    "sip:[service]@[remote_ip]:[remote_port]",
	from:    "sipp <sip:sipp@[local_ip]:[local_port]>",
	to:      "[service] <sip:[service]@[remote_ip]:[remote_port]>",
	contact: "\n      Contact: sip:sipp@[local_ip]:[local_port]",
}

// sippBody is the end of a message: its Content-Type (none without a
// body), Content-Length and body.
func sippBody(body string) string {
	if body == "" {
		return "\n      Content-Length: 0\n\n"
	}
	return "\n      Content-Type: application/sdp\n      Content-Length: [len]\n\n" + body + "\n"
}

// invite is the UAC's INVITE with more headers and a body.
func (u sippUAC) invite(headers, body string) string {
	return `  <send retrans="500">
    <![CDATA[
      INVITE ` + u.ruri + ` SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: ` + u.from + `;tag=[pid]SIPpTag09[call_number]
      To: ` + u.to + `
      Call-ID: [call_id]
      CSeq: 1 INVITE` + u.contact + `
      Max-Forwards: 70` + headers + sippBody(body) + `    ]]>
  </send>
`
}

// uacRinging takes the 100 and 180 a UAC may get before its 200.
const uacRinging = `  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
`

// ack is the UAC's ACK of the 200 to its INVITE, with a body (SDP, for a
// delayed offer) or none.
func (u sippUAC) ack(body string) string {
	return `  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: ` + u.from + `;tag=[pid]SIPpTag09[call_number]
      To: ` + u.to + `[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK` + u.contact + `
      Max-Forwards: 70` + sippBody(body) + `    ]]>
  </send>
`
}

// request is an in-dialog request of the UAC: method, CSeq, extra headers
// and body.
func (u sippUAC) request(method, cseq, headers, body string) string {
	return `  <send retrans="500">
    <![CDATA[
      ` + method + ` [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: ` + u.from + `;tag=[pid]SIPpTag09[call_number]
      To: ` + u.to + `[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ` + cseq + ` ` + method + u.contact + `
      Max-Forwards: 70` + headers + sippBody(body) + `    ]]>
  </send>
`
}

// hangUp is the UAC's BYE (CSeq cseq) and its 200.
func (u sippUAC) hangUp(cseq string) string {
	return u.request("BYE", cseq, "", "") + "  <recv response=\"200\"/>\n"
}

// uacRequest is an in-dialog request of the stock UAC.
func uacRequest(method, cseq, headers, body string) string {
	return stockUAC.request(method, cseq, headers, body)
}

// reofferUpdate is the stock UAC's UPDATE (CSeq cseq, more headers) with
// a new offer (o= version 2), and the check that parapet's 200 answers it
// (assigning answer<cseq>).
func reofferUpdate(cseq, headers string) string {
	return uacRequest("UPDATE", cseq, headers, sdpOffer("2")) +
		sippRecv(`response="200"`, `<ereg regexp="m=audio" search_in="body" check_it="true" assign_to="answer`+cseq+`"/>`)
}

// playPCAP plays SIPp's PCMA pcap (the test links pcap/ to SIPp's files).
const playPCAP = `  <nop>
    <action>
      <exec play_pcap_audio="pcap/g711a.pcap"/>
    </action>
  </nop>
`

// sippPause is a pause of ms milliseconds.
func sippPause(ms string) string { return `  <pause milliseconds="` + ms + `"/>` + "\n" }

// sippRecv is a recv of a response or request whose attributes are given
// (response="200" rrs="true", ...), with an action of the given lines
// (SIPp ereg, log), none if empty.
func sippRecv(attrs string, action ...string) string {
	if len(action) == 0 {
		return "  <recv " + attrs + "/>\n"
	}
	return "  <recv " + attrs + ">\n    <action>\n      " + strings.Join(action, "\n      ") +
		"\n    </action>\n  </recv>\n"
}

// sippOK is the 200 OK without a body to the last request received.
const sippOK = `  <send>
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
`

// uasByeEnd is the end of a UAS's call: the BYE and its 200.
const uasByeEnd = `  <recv request="BYE"/>
` + sippOK

// uasAnswer is the UAS's 200 with SDP (version 2353687637, the given
// media lines) to the last INVITE: toTag is added to To (none for a
// re-INVITE, whose To has the tag), with more headers.
func uasAnswer(toTag, headers string, media []string) string {
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

` + sippSDP("2353687637", media) + `
    ]]>
  </send>
`
}

// uasTag is the UAS's To tag.
const uasTag = ";tag=[pid]SIPpTag01[call_number]"

// uasOK is the UAS's 200 with PCMA SDP to the last INVITE.
func uasOK(toTag, headers string) string { return uasAnswer(toTag, headers, sdpPCMA) }

// sippLog logs message (SIPp variables that checks assigned, so that
// SIPp finds them used).
func sippLog(message string) string {
	return "  <nop>\n    <action>\n      <log message=\"" + message + "\"/>\n    </action>\n  </nop>\n"
}
