package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	conf := filepath.Join(dir, "parapet.hcl")
	src := fmt.Sprintf(`
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
`, base+60, base+61, uas, base+70, base+99)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runParapet(t, "-c", conf)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sippUASChecking(ctx, t, dir, "sos", uas, base+10, `^INVITE sip:911@127\.0\.0\.1:`)
	uac := filepath.Join(dir, "uac_sos.xml")
	if err := os.WriteFile(uac, []byte(uacSOS), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "sipp", fmt.Sprintf("127.0.0.1:%d", base+60), "-sf", uac,
		"-i", "127.0.0.1", "-p", fmt.Sprint(base+3), "-mi", "127.0.0.1", "-mp", fmt.Sprint(base+20),
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", "-recv_timeout", "10s", "-trace_err")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("SIPp dialling urn:service:sos.police: %v\n%s\n%s", err, peers.Tail(string(out), 12), p.allLogs())
	}
	if e := sippRegexpErrors(dir, "uas_sos"); e != "" {
		t.Errorf("the carrier's SIPp UAS got another Request-URI:\n%s", e)
	}
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	var calls []*compliance.Call
	waitFor(t, 10*time.Second, "the call record", func() bool {
		recs, _ := readRecords(logPath, time.Time{})
		calls = onlyCalls(recs)
		return len(calls) == 1
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	c := calls[0]
	if c.Disposition != compliance.DispositionAnswered || c.Route != "emergency" || !c.Emergency ||
		c.EmergencyService != "urn:service:sos.police" {
		t.Errorf("record: %s %d route %q emergency %v service %q (%s)", c.Disposition, c.SIPStatus, c.Route,
			c.Emergency, c.EmergencyService, c.EndReason)
	}
}

// sippUASChecking starts a SIPp UAS on port that answers every INVITE
// (uasCheckPAI's scenario) and checks the whole INVITE against regexp; a
// failed check is written to its error log (sippRegexpErrors).
func sippUASChecking(ctx context.Context, t *testing.T, dir, name string, port, mediaPort int, regexp string) {
	t.Helper()
	f := filepath.Join(dir, "uas_"+name+".xml")
	scenario := strings.NewReplacer(`search_in="hdr" header="P-Asserted-Identity:" CHECK`, `search_in="msg" check_it="true"`,
		"REGEXP", regexp, "scenario name=\"UAS checking P-Asserted-Identity\"", "scenario name=\"UAS checking the INVITE\"").Replace(uasCheckPAI)
	if err := os.WriteFile(f, []byte(scenario), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "sipp", "-sf", f, "-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(mediaPort), "-nostdin", "-trace_err")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, 5*time.Second, "the SIPp UAS to bind its port", func() bool { return udpBound(port) })
}

// uacSOS dials urn:service:sos.police through its outbound proxy (the
// Route header; SIPp sends to the address it is given), then hangs up.
const uacSOS = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC dialling an emergency service URN">
  <send retrans="500">
    <![CDATA[
      INVITE urn:service:sos.police SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Route: <sip:[remote_ip]:[remote_port];lr>
      From: phone <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <urn:service:sos.police>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:phone@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: phone <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <urn:service:sos.police>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: phone <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <urn:service:sos.police>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`
