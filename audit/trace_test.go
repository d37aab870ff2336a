package audit

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// ngrepTrace is a plain call as `ngrep -W byline port 5060` prints it.
const ngrepTrace = `interface: eth0 (10.0.0.0/255.255.255.0)
filter: ( port 5060 ) and ((ip || ip6) || (vlan && (ip || ip6)))
#
U 2026/12/07 09:00:00.100000 10.0.0.1:5060 -> 10.0.0.2:5060 #1
INVITE sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1
f: "Alice" <sip:+1 555 0100@10.0.0.1>;tag=a1
t: <sip:bob@10.0.0.2>
i: call-1@10.0.0.1
CSeq: 1 INVITE
User-Agent: OldPhone 1.0
c: application/sdp
l: 131

v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv

#
U 2026/12/07 09:00:01.200000 10.0.0.2:5060 -> 10.0.0.1:5060 #2
SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1
From: "Alice" <sip:+1 555 0100@10.0.0.1>;tag=a1
To: <sip:bob@10.0.0.2>;tag=b1
Call-ID: call-1@10.0.0.1
CSeq: 1 INVITE
Server: PBX 2.0
Content-Type: application/sdp
Content-Length: 131

v=0
o=- 2 1 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 50000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv

#
U 2026/12/07 09:00:01.300000 10.0.0.1:5060 -> 10.0.0.2:5060 #3
ACK sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2
From: <sip:+1 555 0100@10.0.0.1>;tag=a1
To: <sip:bob@10.0.0.2>;tag=b1
Call-ID: call-1@10.0.0.1
CSeq: 1 ACK
Content-Length: 0

#
U 2026/12/07 09:00:31.300000 10.0.0.2:5060 -> 10.0.0.1:5060 #4
BYE sip:alice@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3
From: <sip:bob@10.0.0.2>;tag=b1
To: <sip:+1 555 0100@10.0.0.1>;tag=a1
Call-ID: call-1@10.0.0.1
CSeq: 1 BYE
Content-Length: 0

`

// sngrepTrace is a call over TLS as a proxy's own trace shows it (no
// addresses line transport, Via says TLS), and a rejected call.
const sngrepTrace = `2026/12/07 10:00:00.000000 192.0.2.1:5061 -> 192.0.2.2:5061
INVITE sip:carol@192.0.2.2 SIP/2.0
Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKx
From: <sip:dave@192.0.2.1>;tag=d
To: <sip:carol@192.0.2.2>
Call-ID: tls-call
CSeq: 10 INVITE
Content-Type: application/sdp
Content-Length: 200

v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 41000 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtpmap:0 PCMU/8000

2026/12/07 10:00:00.500000 192.0.2.2:5061 -> 192.0.2.1:5061
SIP/2.0 486 Busy Here
Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKx
From: <sip:dave@192.0.2.1>;tag=d
To: <sip:carol@192.0.2.2>;tag=c
Call-ID: tls-call
CSeq: 10 INVITE
Content-Length: 0

`

func TestTextTraceNgrep(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.txt")
	os.WriteFile(p, []byte(ngrepTrace), 0o600)
	recs, src, c, err := analyze(t, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("calls %+v (notes %v)", recs, src.Notes)
	}
	call := cs[0]
	if call.Disposition != compliance.DispositionAnswered || call.EndReason != "bye from b" || *call.DurationMS != 30100 {
		t.Errorf("call %+v", call)
	}
	if call.Start.Format("15:04:05.000") != "09:00:00.100" {
		t.Errorf("start %v", call.Start)
	}
	p2 := compliance.NewPseudonymizer([]byte("audit test key, not a secret...."))
	if call.Caller != p2.Token("+15550100") || call.Callee != p2.Token("bob") {
		t.Errorf("caller %q callee %q", call.Caller, call.Callee)
	}
	l := call.Legs[0]
	if l.Remote != "10.0.0.1:5060" || l.Local != "10.0.0.2:5060" || l.UserAgent != "OldPhone 1.0" || l.Transport != "udp" {
		t.Errorf("leg %+v", l)
	}
	if l.Media == nil || l.Media.Profile != "RTP/AVP" || l.Media.Codec != "PCMU/8000" {
		t.Errorf("media %+v", l.Media)
	}
	for _, ctl := range []policy.Control{policy.ControlTransmission, policy.ControlEncryption} {
		if f := finding(l, ctl); f.Status != policy.StatusViolated {
			t.Errorf("%s: %+v", ctl, f)
		}
	}
	if c.Dialogs != 1 || len(c.Flows) != 0 {
		t.Errorf("capture %+v", c)
	}
}

func TestTextTraceTLSRejected(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.log")
	os.WriteFile(p, []byte(strings.ReplaceAll(sngrepTrace, "\n", "\r\n")), 0o600)
	recs, src, _, err := analyze(t, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("calls %+v notes %v", recs, src.Notes)
	}
	call := cs[0]
	if call.Disposition != compliance.DispositionRejected || call.SIPStatus != 486 || call.EndReason != "486 Busy Here" {
		t.Errorf("call %+v", call)
	}
	l := call.Legs[0]
	if l.Transport != "tls" || l.Media == nil || l.Media.Profile != "RTP/SAVP" {
		t.Errorf("leg %+v media %+v", l, l.Media)
	}
	if !strings.Contains(strings.Join(src.Notes, "\n"), "TLS, whose version a text trace does not show") {
		t.Errorf("notes %v", src.Notes)
	}
	// No media flowed: (e)(1) is judged on signaling alone, and unproven.
	if f := finding(l, policy.ControlTransmission); f.Status != policy.StatusViolated || !strings.Contains(f.Detail, "not visible") {
		t.Errorf("finding %+v", f)
	}
}

// A call through a proxy that keeps the Call-ID: two hops, legs a and b,
// each judged in its own zone.
func TestTextTraceTwoHops(t *testing.T) {
	hop2 := strings.NewReplacer(
		"10.0.0.1:5060 -> 10.0.0.2:5060", "10.0.0.2:5070 -> 10.0.0.3:5060",
		"10.0.0.2:5060 -> 10.0.0.1:5060", "10.0.0.3:5060 -> 10.0.0.2:5070",
		"09:00:00.100000", "09:00:00.150000", "09:00:01.200000", "09:00:01.150000",
		"09:00:01.300000", "09:00:01.350000", "09:00:31.300000", "09:00:31.250000",
		"Server: PBX 2.0", "Server: Phone 3.1", "User-Agent: OldPhone 1.0", "User-Agent: Proxy 1")
	// Interleave: hop 1 INVITE, hop 2 INVITE, hop 2 200, hop 1 200, ...
	msgs1 := strings.Split(ngrepTrace, "#\n")
	msgs2 := strings.Split(hop2.Replace(ngrepTrace), "#\n")
	var b strings.Builder
	b.WriteString(msgs1[0])
	b.WriteString("#\n" + msgs1[1] + "#\n" + msgs2[1] + "#\n" + msgs2[2] + "#\n" + msgs1[2])
	b.WriteString("#\n" + msgs1[3] + "#\n" + msgs2[3] + "#\n" + msgs2[4] + "#\n" + msgs1[4])
	p := filepath.Join(t.TempDir(), "proxy.txt")
	os.WriteFile(p, []byte(b.String()), 0o600)
	lan := Zone{Policy: policy.Zone{Name: "lan", Signaling: policy.RequirementOff, SRTP: policy.RequirementOff, MinTLS: policy.VersionTLS12},
		Listen: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:5070")}}
	recs, src, _, err := analyze(t, p, Options{Zones: []Zone{lan}})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 || len(cs[0].Legs) != 2 {
		t.Fatalf("calls %+v notes %v", recs, src.Notes)
	}
	a, b2 := cs[0].Legs[0], cs[0].Legs[1]
	if a.Role != "a" || a.Remote != "10.0.0.1:5060" || a.Zone != "external" || a.UserAgent != "OldPhone 1.0" {
		t.Errorf("leg a %+v", a)
	}
	if b2.Role != "b" || b2.Remote != "10.0.0.3:5060" || b2.Local != "10.0.0.2:5070" || b2.Zone != "lan" || b2.UserAgent != "Phone 3.1" {
		t.Errorf("leg b %+v", b2)
	}
	if f := finding(a, policy.ControlEncryption); f.Status != policy.StatusViolated {
		t.Errorf("leg a %+v", f)
	}
	if f := finding(b2, policy.ControlEncryption); f.Status != policy.StatusNotRequired {
		t.Errorf("leg b %+v", f)
	}
	if len(cs[0].Decisions) != 4 {
		t.Errorf("decisions %+v", cs[0].Decisions)
	}
}

// An authentication challenge (407) and the INVITE sent again with
// credentials are one call, not a rejected one and another.
func TestTextTraceChallenge(t *testing.T) {
	msgs := strings.Split(ngrepTrace, "#\n")
	challenge := `U 2026/12/07 09:00:00.110000 10.0.0.2:5060 -> 10.0.0.1:5060
SIP/2.0 407 Proxy Authentication Required
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1
From: "Alice" <sip:+1 555 0100@10.0.0.1>;tag=a1
To: <sip:bob@10.0.0.2>;tag=p
Call-ID: call-1@10.0.0.1
CSeq: 1 INVITE
Content-Length: 0

`
	retry := strings.Replace(strings.Replace(msgs[1], "CSeq: 1 INVITE", "CSeq: 2 INVITE", 1), "09:00:00.100000", "09:00:00.120000", 1)
	trace := msgs[0] + "#\n" + msgs[1] + "#\n" + challenge + "#\n" + retry + "#\n" + strings.Replace(msgs[2], "CSeq: 1 INVITE", "CSeq: 2 INVITE", 1) + "#\n" + msgs[3] + "#\n" + msgs[4]
	p := filepath.Join(t.TempDir(), "auth.txt")
	os.WriteFile(p, []byte(trace), 0o600)
	recs, _, _, err := analyze(t, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 || cs[0].Disposition != compliance.DispositionAnswered || cs[0].SIPStatus != 200 || cs[0].EndReason != "bye from b" {
		t.Fatalf("calls %+v", cs)
	}
}
