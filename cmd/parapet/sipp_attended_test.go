package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
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
	referrer := func(target int) string {
		plain := fmt.Sprintf("Refer-To: <sip:target@127.0.0.1:%d>", target)
		attended := fmt.Sprintf("Refer-To: <sip:target@127.0.0.1:%d?Replaces=%s>", target,
			strings.NewReplacer("@", "%40", ";", "%3B", "=", "%3D").Replace(sippConsult))
		referXML := strings.Replace(fmt.Sprintf(uacRefer, target), plain, attended, 1)
		if !strings.Contains(referXML, attended) {
			t.Fatal("the REFER scenario has no Refer-To to make attended")
		}
		return referXML
	}
	// The checks go in the INVITE's action (the first), not the pcap's.
	replacing := strings.Replace(strings.Replace(uasTarget, "<action>\n", "<action>\n"+replacesChecks, 1),
		"</scenario>", `  <Reference variables="replaces,require,referredby"/>`+"\n</scenario>", 1)
	rec, target := sippTransfer(t, referrer, replacing)
	checkSIPpTransfer(t, rec, target)
	if tr := rec.Transfers[0]; tr.Kind != compliance.TransferAttended || tr.ReferredBy == "" {
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
