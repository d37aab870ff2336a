package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// Blind transfer (REFER, RFC 3515) driven by SIPp through parapet, whose
// pbx zone allows it. A SIPp UAC (the PBX phone) calls SIPp's stock UAS
// (RTP echo) and, once answered, sends a REFER whose Refer-To is a third
// SIPp, the target: the UAC checks the 202, a NOTIFY whose sipfrag is
// "SIP/2.0 100 Trying", then one with "SIP/2.0 200 OK" ending the
// subscription, then parapet's BYE. The target answers, plays audio (which
// the UAS echoes back through parapet) and hangs up; parapet's BYE ends the
// UAS's call. Every SIPp must pass its scenario, and the one call record
// must show the transfer and media both ways on the new leg.
func TestSIPpRefer(t *testing.T) {
	rec, target := sippTransfer(t, func(target int) string { return fmt.Sprintf(uacRefer, target) }, uasTarget)
	checkSIPpTransfer(t, rec, target)
}

// sippTransfer runs parapet with its pbx zone allowing transfer and a
// route back to itself toward SIPp's stock UAS (RTP echo); a SIPp UAC
// running referrer(the target's port) calls through it, and a SIPp
// running target listens on that port. Every SIPp must pass its scenario; it returns the
// one call record and the target's port.
func sippTransfer(t *testing.T, referrer func(target int) string, target string) (*compliance.Call, int) {
	t.Helper()
	requirePeers(t, "sipp")
	base := portBlock(t)
	uas, uac, tport := base, base+1, base+2
	p := startParapetZones(t, base, fmt.Sprintf(`"udp://127.0.0.1:%d"`, base+60), `srtp = "allow"`, `srtp = "require"`,
		fmt.Sprintf(`
route "internal" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:%d"
}
`, uas), `transfer = "allow"`)
	dir := sippDir(t)
	uacXML := writeScenario(t, dir, "uac_refer.xml", referrer(tport))
	targetXML := writeScenario(t, dir, "uas_target.xml", target)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	common := []string{"-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-recv_timeout", "15s", "-trace_err"}
	callee := startSIPp(ctx, t, dir, append([]string{"-sn", "uas", "-p", fmt.Sprint(uas),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base + 10), "-rtp_echo"}, common...))
	tgt := startSIPp(ctx, t, dir, append([]string{"-sf", targetXML, "-p", fmt.Sprint(tport),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base + 30)}, common...))
	waitFor(t, 5*time.Second, "the SIPp UASs to bind", func() bool {
		return udpBound(uas) && udpBound(base+10) && udpBound(tport)
	})
	caller := startSIPp(ctx, t, dir, append([]string{fmt.Sprintf("127.0.0.1:%d", base+60), "-sf", uacXML,
		"-s", "15551230000", "-p", fmt.Sprint(uac), "-mi", "127.0.0.1", "-mp", fmt.Sprint(base + 20)}, common...))
	for _, s := range []struct {
		name string
		p    *sippProc
	}{{"the referrer (UAC)", caller}, {"the transfer target", tgt}, {"the stock UAS", callee}} {
		if err := s.p.wait(); err != nil {
			t.Fatalf("sipp, %s: %v\n%s\n---- errors ----\n%s", s.name, err, peers.Tail(s.p.out.String(), 12),
				peers.Tail(sippErrors(dir), 60))
		}
	}
	recs := onlyCalls(p.records(t))
	if len(recs) != 1 {
		t.Fatalf("%d call records, want 1", len(recs))
	}
	return recs[0], tport
}

// checkSIPpTransfer checks the record of TestSIPpRefer's call.
func checkSIPpTransfer(t *testing.T, rec *compliance.Call, target int) {
	t.Helper()
	if len(rec.Transfers) != 1 {
		t.Fatalf("transfers: %+v", rec.Transfers)
	}
	if tr := rec.Transfers[0]; tr.By != compliance.RoleA || tr.Outcome != compliance.TransferDone || tr.Status != 200 || tr.Leg != "a2" {
		t.Errorf("transfer: %+v", tr)
	}
	var roles []compliance.Role
	for _, g := range rec.Legs {
		roles = append(roles, g.Role)
	}
	if fmt.Sprint(roles) != "[a a2 b]" {
		t.Fatalf("legs: %v, want [a a2 b]", roles)
	}
	a2, b := rec.Legs[1], rec.Legs[2]
	if a2.Zone != "pbx" || a2.Transport != "udp" || a2.Remote != fmt.Sprintf("127.0.0.1:%d", target) || a2.CallID == "" {
		t.Errorf("leg a2: zone %q transport %q remote %q call-id %q", a2.Zone, a2.Transport, a2.Remote, a2.CallID)
	}
	// The target's audio went to the UAS, whose echo came back to it
	// (about 65 packets each way in the target's 2 s).
	if a2.Media == nil || a2.Media.PacketsIn < 25 || a2.Media.PacketsOut < 25 || b.Media == nil ||
		b.Media.PacketsOut < 25 || b.Media.PacketsIn < 25 {
		t.Errorf("media: a2 %+v, b %+v", a2.Media, b.Media)
	}
	if rec.Disposition != compliance.DispositionAnswered || rec.EndReason != "bye from a" {
		t.Errorf("outcome: %s %q, want answered, bye from a (the target's)", rec.Disposition, rec.EndReason)
	}
}

// uacRefer is the referrer: a call, then a REFER to the target (%d is its
// port), whose 202, NOTIFYs (sipfrag 100 then 200, the last ending the
// subscription) and BYE it checks.
var uacRefer = sippScenario("UAC that transfers its call",
	stockUAC.invite("", sippSDP("2353687637", []string{"m=audio [media_port] RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000"})), uacRinging,
	sippRecv(`response="200" rrs="true"`),
	stockUAC.ack(""), sippPause("300"),
	uacRequest("REFER", "2", "\n      Refer-To: <sip:target@127.0.0.1:%d>\n      Referred-By: <sip:sipp@[local_ip]:[local_port]>", ""),
	sippRecv(`response="202"`),
	sippRecv(`request="NOTIFY"`,
		`<ereg regexp="refer" search_in="hdr" header="Event:" check_it="true" assign_to="ev1"/>`,
		`<ereg regexp="^SIP/2.0 100 Trying" search_in="body" check_it="true" assign_to="frag1"/>`),
	sippOK,
	sippRecv(`request="NOTIFY"`,
		`<ereg regexp="^SIP/2.0 200 OK" search_in="body" check_it="true" assign_to="frag2"/>`,
		`<ereg regexp="terminated" search_in="hdr" header="Subscription-State:" check_it="true" assign_to="state2"/>`),
	sippOK,
	uasByeEnd,
	`  <!-- The ereg variables are there to be checked, not used. -->
  <Reference variables="ev1,frag1,frag2,state2"/>
`,
)

// uasTarget is the transfer target: it answers, plays SIPp's PCMA pcap,
// and hangs up after 2 s (From and To of its BYE taken from the INVITE).
var uasTarget = sippScenario("Transfer target that talks and hangs up",
	sippRecv(`request="INVITE" crlf="true" rrs="true"`,
		`<ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote"/>`,
		`<ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local"/>`),
	uasAnswer(uasTag, "", sdpPCMU),
	sippRecv(`request="ACK" crlf="true"`), playPCAP, sippPause("2000"),
	`  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local];tag=[pid]SIPpTag01[call_number]
      To: [$remote]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
`,
	sippRecv(`response="200"`),
)
