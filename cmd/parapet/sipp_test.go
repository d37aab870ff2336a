package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// SIPp's stock UAC (with RTP played from its pcap) calls SIPp's stock UAS,
// which echoes the RTP, through parapet: every call must succeed, every
// call must leave exactly one record, and media must have crossed both legs.
func TestSIPpCallsThroughParapet(t *testing.T) {
	checkSIPpCalls(t, sippThroughParapet(t, 6, "-sn", "uac_pcap"), 6)
}

// The same with a delayed offer: SIPp's INVITE carries no SDP, the stock
// UAS offers in its 200, parapet offers to the UAC in its own 200, and the
// UAC answers in its ACK.
func TestSIPpDelayedOffer(t *testing.T) {
	f := writeScenario(t, t.TempDir(), "uac_delayed.xml", uacDelayedOffer)
	checkSIPpCalls(t, sippThroughParapet(t, 3, "-sf", f), 3)
}

// uacDelayedOffer is SIPp's uac_pcap with the SDP moved from the INVITE to
// the ACK, and shorter.
var uacDelayedOffer = sippScenario("UAC, delayed offer, with media",
	stockUAC.invite("", ""), uacRinging,
	sippRecv(`response="200" rtd="true" rrs="true"`),
	stockUAC.ack(sdpOffer("2353687637")), playPCAP, sippPause("2500"),
	stockUAC.hangUp("2"),
)

// sippThroughParapet runs parapet with a route from its pbx zone back to
// itself toward SIPp's stock UAS (RTP echo), places calls with a SIPp UAC
// running the given scenario arguments, and returns the call records.
func sippThroughParapet(t *testing.T, calls int, scenario ...string) []*compliance.Call {
	t.Helper()
	return sippWith(t, calls, sippSetup{uas: []string{"-sn", "uas"}}, scenario...)
}

// sippSetup is how sippWith runs: the UAS's scenario arguments, and more
// lines of parapet's pbx zone.
type sippSetup struct {
	uas     []string
	pbxZone []string
	// uasMessages, when set, receives the UAS's message trace (give the
	// UAS -trace_msg).
	uasMessages *string
}

// sippWith is sippThroughParapet with a setup of its own.
func sippWith(t *testing.T, calls int, setup sippSetup, scenario ...string) []*compliance.Call {
	t.Helper()
	requirePeers(t, "sipp")
	base := portBlock(t)
	return sippRun(t, base, fmt.Sprintf(`
route "internal" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:%d"
}
`, base), setup, calls, scenario...)
}

// sippScripted is sippWith for one call, the UAC and the UAS running the
// given scenarios, pbxZone more lines of parapet's pbx zone; it returns
// the call records and the messages the UAS got and sent.
func sippScripted(t *testing.T, uac, uas string, pbxZone ...string) ([]*compliance.Call, string) {
	t.Helper()
	dir := t.TempDir()
	uacXML := writeScenario(t, dir, "uac.xml", uac)
	uasXML := writeScenario(t, dir, "uas.xml", uas)
	var msgs string
	recs := sippWith(t, 1, sippSetup{uas: []string{"-sf", uasXML, "-trace_msg"}, uasMessages: &msgs, pbxZone: pbxZone},
		"-sf", uacXML)
	return recs, msgs
}

// sippRun is sippWith with the routes given: the stock UAS listens on
// base.
func sippRun(t *testing.T, base int, routes string, setup sippSetup, calls int, scenario ...string) []*compliance.Call {
	t.Helper()
	uas, uac := base, base+1
	p := startParapetZones(t, base, fmt.Sprintf(`"udp://127.0.0.1:%d"`, base+60), `srtp = "allow"`, `srtp = "require"`,
		routes, setup.pbxZone...)
	dir := sippDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	startSIPp(ctx, t, dir, append(setup.uas, "-i", "127.0.0.1", "-p", fmt.Sprint(uas),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base+10), "-rtp_echo", "-nostdin"))
	waitFor(t, 5*time.Second, "the SIPp UAS to bind its SIP and media ports", func() bool {
		return udpBound(uas) && udpBound(base+10)
	})

	// The UAC's [auto_media_port] is -mp plus 4 per call: base+20 leaves
	// room for 10 calls below parapet's ports, clear of the UAS's echo
	// ports (base+10 and +12), which would otherwise loop the media.
	if calls > 10 {
		t.Fatalf("%d calls: the UAC's media ports would run into parapet's", calls)
	}
	args := append([]string{fmt.Sprintf("127.0.0.1:%d", base+60)}, scenario...)
	args = append(args, "-s", "15551230000",
		"-i", "127.0.0.1", "-p", fmt.Sprint(uac), "-mi", "127.0.0.1", "-mp", fmt.Sprint(base+20),
		"-m", fmt.Sprint(calls), "-r", "5", "-l", fmt.Sprint(calls), "-nostdin",
		"-timeout", "60s", "-timeout_error", "-recv_timeout", "15s", "-trace_err")
	client := exec.CommandContext(ctx, "sipp", args...)
	client.Dir = dir
	out, err := client.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp uac: %v\n%s\n---- errors ----\n%s", err, peers.Tail(string(out), 12), peers.Tail(sippErrors(dir), 60))
	}
	if setup.uasMessages != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*messages.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			*setup.uasMessages += string(b)
		}
	}
	return onlyCalls(p.records(t))
}

// checkSIPpCalls wants n answered calls whose media crossed both legs
// both ways, with the callee pseudonymised.
func checkSIPpCalls(t *testing.T, recs []*compliance.Call, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("%d call records, want %d", len(recs), n)
	}
	for _, c := range recs {
		if c.Disposition != compliance.DispositionAnswered {
			t.Errorf("call %s: %s %d %q", c.ID, c.Disposition, c.SIPStatus, c.EndReason)
			continue
		}
		if len(c.Legs) != 2 || c.Legs[0].Media == nil || c.Legs[1].Media == nil {
			t.Errorf("call %s: legs %+v", c.ID, c.Legs)
			continue
		}
		a, b := c.Legs[0].Media, c.Legs[1].Media
		// The UAC's pcap goes A→B; the UAS echoes it B→A.
		// The UAC's pcaps hold 84 to 250 packets; far more would be a
		// media loop. Each packet relayed on; most echoed back.
		if a.PacketsIn < 50 || a.PacketsIn > 400 || b.PacketsOut+2 < a.PacketsIn ||
			b.PacketsIn < a.PacketsIn*9/10 || a.PacketsOut+2 < b.PacketsIn {
			t.Errorf("call %s: media did not cross both ways once: a=%+v b=%+v", c.ID, *a, *b)
		}
		if !strings.HasPrefix(c.Callee, "hmac-sha256:") {
			t.Errorf("callee not pseudonymised: %q", c.Callee)
		}
	}
}

// udpBound reports whether a UDP socket is bound to 127.0.0.1:port, as
// /proc/net/udp lists it (local address in hex, the IPv4 address in host
// byte order: 0100007F is 127.0.0.1).
func udpBound(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	return err == nil && strings.Contains(string(b), fmt.Sprintf(" 0100007F:%04X ", port))
}
