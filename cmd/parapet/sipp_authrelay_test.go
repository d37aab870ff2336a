package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
)

const sippPhonePassword = "sipp-Phone-pw-1001"

// SIPp as a phone and SIPp as a PBX that challenges its users' INVITEs,
// parapet between them on a route without auth (auth_passthrough at its
// default): the PBX's 401 reaches the phone, the phone's INVITE with
// credentials reaches the PBX with its Authorization unchanged, and the PBX
// (SIPp's verifyauth) accepts it and answers; a call whose digest did not
// verify is never answered, and the phone's scenario fails. Two records:
// the challenged call (failed, 401) and the answered one, whose leg b says
// it carried the caller's credentials; the log holds no digest response.
func TestSIPpChallengeRelayed(t *testing.T) {
	dir := t.TempDir()
	uas := filepath.Join(dir, "pbx_challenges.xml")
	uac := filepath.Join(dir, "phone_auth.xml")
	if err := os.WriteFile(uas, []byte(strings.ReplaceAll(sippChallengingPBX, "PASSWORD", sippPhonePassword)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uac, []byte(sippPhoneWithAuth), 0o600); err != nil {
		t.Fatal(err)
	}
	recs := sippWith(t, 1, sippSetup{uas: []string{"-sf", uas, "-trace_err"}}, "-sf", uac, "-au", "1001", "-ap", sippPhonePassword)
	if len(recs) != 2 {
		t.Fatalf("%d call records, want 2", len(recs))
	}
	first, second := recs[0], recs[1]
	if first.Start.After(second.Start) {
		first, second = second, first
	}
	if first.Disposition != compliance.DispositionFailed || first.SIPStatus != 401 ||
		!strings.Contains(first.EndReason, "its challenge was relayed to the caller") {
		t.Errorf("challenged call: %s %d %q", first.Disposition, first.SIPStatus, first.EndReason)
	}
	if second.Disposition != compliance.DispositionAnswered || len(second.Legs) != 2 || !second.Legs[1].CallerCredentials {
		t.Errorf("answered call: %s %d %q legs %+v", second.Disposition, second.SIPStatus, second.EndReason, second.Legs)
	}
	for _, c := range recs {
		if b, err := json.Marshal(c); err != nil || strings.Contains(string(b), "response=") || strings.Contains(string(b), sippPhonePassword) {
			t.Errorf("a record holds the phone's credentials (or cannot be marshalled: %v): %s", err, b)
		}
	}
	if first.Legs[0].CallID != second.Legs[0].CallID {
		t.Errorf("the phone's two INVITEs have Call-IDs %q and %q, want one", first.Legs[0].CallID, second.Legs[0].CallID)
	}
}

// sippChallengingPBX answers an INVITE without credentials 401, and one
// with credentials 200 only if its digest (user 1001) verifies; otherwise
// it waits for a request that never comes, so the phone's call fails.
// parapet's INVITE with credentials has a Call-ID of its own: for SIPp it
// is another call, which starts this scenario again.
var sippChallengingPBX = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="PBX: challenge an INVITE, answer it with verified credentials">
  <recv request="INVITE">
    <action>
      <ereg regexp="Digest" search_in="hdr" header="Authorization:" assign_to="creds"/>
      <verifyauth assign_to="ok" username="1001" password="PASSWORD"/>
    </action>
  </recv>
  <nop hide="true" test="creds" next="verify"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=pbx[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="pbx.sipp", nonce="[pid]n[call_number]x[clock_tick]", algorithm=MD5
Content-Length: 0

]]></send>
  <recv request="ACK" next="end"/>

  <label id="verify"/>
  <nop hide="true" test="ok" next="answer"/>
  <recv request="NEVER" timeout="10"/>
  <label id="answer"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=pbx[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:pbx@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="end"/>
</scenario>
`

// sippPhoneWithAuth calls, answers the 401 with its credentials (-au,
// -ap) in a second INVITE of the same Call-ID and From tag, CSeq 2, and
// hangs up once answered.
var sippPhoneWithAuth = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="phone: INVITE, 401, INVITE with credentials, BYE">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: 1001 <sip:1001@[local_ip]:[local_port]>;tag=[pid]phone[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:1001@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: 1001 <sip:1001@[local_ip]:[local_port]>;tag=[pid]phone[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: 1001 <sip:1001@[local_ip]:[local_port]>;tag=[pid]phone[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:1001@[local_ip]:[local_port]>
[authentication]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 1 2 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: 1001 <sip:1001@[local_ip]:[local_port]>;tag=[pid]phone[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: 1001 <sip:1001@[local_ip]:[local_port]>;tag=[pid]phone[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
`
