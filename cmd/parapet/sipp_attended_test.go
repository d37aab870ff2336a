package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// sippConsult is the consultation dialog the referrer names in its
// REFER's Replaces: one between two PBX phones, which parapet does not
// hold, so it passes it to the target as given.
const sippConsult = "consult-7f3a@pbx.example;to-tag=tgt-41;from-tag=ref-17"

// Attended transfer (REFER with Replaces, RFC 3515 and 3891) driven by
// SIPp through parapet, whose pbx zone allows transfer. A SIPp UAC (the
// PBX phone) calls SIPp's stock UAS (RTP echo) through parapet and, once
// answered, sends a REFER whose Refer-To is a third SIPp, the target,
// with ?Replaces= naming its consultation call with that target. The
// target checks that its INVITE carries that Replaces as given (Call-ID,
// to-tag, from-tag), Require: replaces and the REFER's Referred-By, then
// answers, plays audio and hangs up. The referrer checks the 202, NOTIFY
// 100 then 200, and parapet's BYE. The one call record says the transfer
// was attended and done, with media both ways on the new leg.
func TestSIPpAttendedTransfer(t *testing.T) {
	requirePeers(t, "sipp")
	base := portBlock(t)
	uas, uac, target := base, base+1, base+2
	p := startParapetZones(t, base, fmt.Sprintf(`"udp://127.0.0.1:%d"`, base+60), `srtp = "allow"`, `srtp = "require"`,
		fmt.Sprintf(`
route "internal" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:%d"
}
`, uas), `transfer = "allow"`)
	dir := t.TempDir()
	if err := os.Symlink("/usr/share/sip-tester", filepath.Join(dir, "pcap")); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	plain := fmt.Sprintf("Refer-To: <sip:target@127.0.0.1:%d>", target)
	attended := fmt.Sprintf("Refer-To: <sip:target@127.0.0.1:%d?Replaces=%s>", target,
		strings.NewReplacer("@", "%40", ";", "%3B", "=", "%3D").Replace(sippConsult))
	referXML := strings.Replace(fmt.Sprintf(uacRefer, target), plain, attended, 1)
	if !strings.Contains(referXML, attended) {
		t.Fatal("the REFER scenario has no Refer-To to make attended")
	}
	uacXML := write("uac_attended.xml", referXML)
	// The checks go in the INVITE's action (the first), not the pcap's.
	targetXML := write("uas_replacing.xml", strings.Replace(strings.Replace(uasTarget, "<action>\n", "<action>\n"+replacesChecks, 1),
		"</scenario>", `  <Reference variables="replaces,require,referredby"/>`+"\n</scenario>", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	common := []string{"-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-recv_timeout", "15s", "-trace_err"}
	callee := startSIPp(ctx, t, dir, append([]string{"-sn", "uas", "-p", fmt.Sprint(uas),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base + 10), "-rtp_echo"}, common...))
	tgt := startSIPp(ctx, t, dir, append([]string{"-sf", targetXML, "-p", fmt.Sprint(target),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(base + 30)}, common...))
	waitFor(t, 5*time.Second, "the SIPp UASs to bind", func() bool {
		return udpBound(uas) && udpBound(base+10) && udpBound(target)
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
	checkSIPpTransfer(t, recs[0], target)
	if tr := recs[0].Transfers[0]; tr.Kind != compliance.TransferAttended || tr.ReferredBy == "" {
		t.Errorf("transfer: %+v, want kind attended with its Referred-By", tr)
	}
}

// replacesChecks are the target's checks of the replacing INVITE: the
// Replaces as the referrer gave it, Require: replaces, and the REFER's
// Referred-By (SIPp's own address).
const replacesChecks = `      <ereg regexp="^ *consult-7f3a@pbx\.example;to-tag=tgt-41;from-tag=ref-17$" search_in="hdr" header="Replaces:" check_it="true" assign_to="replaces"/>
      <ereg regexp="replaces" search_in="hdr" header="Require:" check_it="true" assign_to="require"/>
      <ereg regexp="^ *.sip:sipp@127\.0\.0\.1:[0-9]+.$" search_in="hdr" header="Referred-By:" check_it="true" assign_to="referredby"/>
`
