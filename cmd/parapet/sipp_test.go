package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// SIPp's stock UAC (with RTP played from its pcap) calls SIPp's stock UAS,
// which echoes the RTP, through parapet: every call must succeed, every
// call must leave exactly one record, and media must have crossed both legs.
func TestSIPpCallsThroughParapet(t *testing.T) {
	requirePeers(t, "sipp")
	const calls = 6 // 2 port pairs per call; the test media range (30 ports) holds 7
	base := portBlock(t)
	uas, uac := base, base+1
	p := startParapetRoutes(t, base, fmt.Sprintf(`
route "internal" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:%d"
}
`, uas))
	dir := t.TempDir()
	pcaps := "/usr/share/sip-tester"
	if _, err := os.Stat(filepath.Join(pcaps, "g711a.pcap")); err != nil {
		t.Fatalf("SIPp's pcap files not found in %s: %v", pcaps, err)
	}
	if err := os.Symlink(pcaps, filepath.Join(dir, "pcap")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var uasOut bytes.Buffer
	server := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", fmt.Sprint(uas),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base+40), "-rtp_echo", "-nostdin")
	server.Dir, server.Stdout, server.Stderr = dir, &uasOut, &uasOut
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	time.Sleep(300 * time.Millisecond)

	client := exec.CommandContext(ctx, "sipp", fmt.Sprintf("127.0.0.1:%d", base+60), "-sn", "uac_pcap", "-s", "15551230000",
		"-i", "127.0.0.1", "-p", fmt.Sprint(uac), "-mi", "127.0.0.1", "-mp", fmt.Sprint(base+20),
		"-m", fmt.Sprint(calls), "-r", "5", "-l", fmt.Sprint(calls), "-nostdin",
		"-timeout", "60s", "-timeout_error", "-recv_timeout", "15s", "-trace_err")
	client.Dir = dir
	out, err := client.CombinedOutput()
	if err != nil {
		errs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
		var el []byte
		for _, f := range errs {
			b, _ := os.ReadFile(f)
			el = append(el, b...)
		}
		t.Fatalf("sipp uac: %v\n%s\n---- errors ----\n%s", err, tail(string(out), 12), tail(string(el), 60))
	}

	recs := onlyCalls(p.records(t))
	if len(recs) != calls {
		t.Fatalf("%d call records, want %d", len(recs), calls)
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
		if a.PacketsIn == 0 || b.PacketsOut == 0 || b.PacketsIn == 0 || a.PacketsOut == 0 {
			t.Errorf("call %s: media did not cross both ways: a=%+v b=%+v", c.ID, *a, *b)
		}
		if !strings.HasPrefix(c.Callee, "hmac-sha256:") {
			t.Errorf("callee not pseudonymised: %q", c.Callee)
		}
	}
}
