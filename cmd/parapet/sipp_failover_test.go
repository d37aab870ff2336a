package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// A route with two targets whose first, a SIPp UAS, answers every INVITE
// with 503: SIPp's stock UAC's calls complete on the second (the stock
// UAS, echoing the RTP), and each record shows both attempts.
func TestSIPpFailoverOn503(t *testing.T) {
	requirePeers(t, "sipp")
	base := portBlock(t)
	busy := base + 2
	dir := t.TempDir()
	f := filepath.Join(dir, "uas_503.xml")
	if err := os.WriteFile(f, []byte(uas503), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	server := exec.CommandContext(ctx, "sipp", "-sf", f, "-i", "127.0.0.1", "-p", fmt.Sprint(busy),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base+14), "-nostdin")
	server.Dir, server.Stdout, server.Stderr = dir, &out, &out
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	waitFor(t, 5*time.Second, "the 503 UAS to bind", func() bool { return udpBound(busy) })

	recs := sippRun(t, base, fmt.Sprintf(`
route "trunk" {
  from            = "pbx"
  to              = "pbx"
  targets         = ["sip:127.0.0.1:%d", "sip:127.0.0.1:%d"]
  attempt_timeout = "2s"
}
`, busy, base), sippSetup{uas: []string{"-sn", "uas"}}, 3, "-sn", "uac_pcap")
	checkSIPpCalls(t, recs, 3)
	for _, c := range recs {
		b := c.Legs[1]
		if len(b.Attempts) != 2 {
			t.Errorf("call %s: attempts %+v", c.ID, b.Attempts)
			continue
		}
		first, second := b.Attempts[0], b.Attempts[1]
		if first.Outcome != compliance.AttemptUnavailable || first.Status != 503 || first.Address != fmt.Sprintf("127.0.0.1:%d", busy) ||
			second.Outcome != compliance.AttemptAnswered || second.Status != 200 || second.Address != fmt.Sprintf("127.0.0.1:%d", base) {
			t.Errorf("call %s: attempts %+v", c.ID, b.Attempts)
		}
	}
}

// uas503 answers every INVITE with 503 Service Unavailable.
const uas503 = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS answering 503">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 503 Service Unavailable
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
`
