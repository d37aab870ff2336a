package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
