package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// `kill -9` with calls up: the next start records, before its opened, an
// unclean_stop and one unobserved record per call that was up, with its
// legs and security facts; the log verifies with the key.
func TestKillDuringCallsLeavesRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	base := portBlock(t)
	carrier, pbx := simPeers(t, filepath.Join(dir, "state", "certs"), base+1, base+2)
	conf := simSite(t, dir, base, `ca_file = "${state_dir}/certs/lab-ca.pem"`, "")
	logPath := filepath.Join(dir, "state", "compliance.jsonl")

	p := runParapet(t, "-c", conf, "-log-format", "json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3
	var callers []*sim.Session
	for i := range n {
		caller, _ := placeCall(ctx, t, pbx, carrier, fmt.Sprintf("sip:+1555123000%d@127.0.0.1:%d", i, base+60))
		callers = append(callers, caller)
	}
	// One call that ended before the crash: it has its record, and gets
	// no second one.
	caller, callee := placeCall(ctx, t, pbx, carrier, fmt.Sprintf("sip:+15551239999@127.0.0.1:%d", base+60))
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	<-callee.Context().Done()
	waitFor(t, 10*time.Second, "the ended call's record to reach the log", func() bool {
		recs, _ := readRecords(logPath, time.Time{})
		return calls(recs) == 1
	})
	before, _ := readRecords(logPath, time.Time{})

	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	for _, c := range callers {
		if c.Context().Err() != nil {
			t.Fatal("a call ended before the kill")
		}
	}

	p2 := runParapet(t, "-c", conf, "-log-format", "json")
	if logs := p2.allLogs(); !strings.Contains(logs, "did not stop cleanly") || !strings.Contains(logs, `"calls_unobserved":3`) {
		t.Errorf("the start after the kill does not say it recorded 3 calls:\n%s", logs)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if err := p2.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v:\n%s", err, p2.allLogs())
	}

	recs, err := readRecords(logPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	after := recs[len(before):]
	var kinds []string
	for _, r := range after {
		switch {
		case r.Log != nil:
			kinds = append(kinds, string(r.Log.Event))
		case r.Call != nil:
			kinds = append(kinds, string(r.Call.Disposition))
		default:
			kinds = append(kinds, r.Type)
		}
	}
	unobserved := string(compliance.DispositionUnobserved)
	want := []string{string(compliance.LogUncleanStop), unobserved, unobserved, unobserved,
		string(compliance.LogCheckpoint), string(compliance.LogOpened)}
	if len(kinds) < len(want) || strings.Join(kinds[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("after the kill the log has %v, want it to start with %v", kinds, want)
	}
	// The ended call's journal end entry is not waited for: the kill may
	// have come before it was on disk, and then its record, found in the
	// log, counts as recorded.
	if d := after[0].Log.Detail; !strings.HasPrefix(d, fmt.Sprintf("last_seq=%d ", before[len(before)-1].Seq)) ||
		!strings.HasSuffix(d, " live=3 unobserved=3 recorded=0 torn=0") && !strings.HasSuffix(d, " live=4 unobserved=3 recorded=1 torn=0") {
		t.Errorf("unclean_stop detail %q", d)
	}
	seen := map[string]bool{}
	for _, r := range after[1:4] {
		c := r.Call
		if seen[c.ID] {
			t.Errorf("call %s recorded twice", c.ID)
		}
		seen[c.ID] = true
		for _, old := range before {
			if old.Call != nil && old.Call.ID == c.ID {
				t.Errorf("the call that ended before the kill was recorded again")
			}
		}
		if c.SIPStatus != 200 || c.Answer == nil || c.End.Before(*c.Answer) || !c.End.Before(after[0].Time) ||
			!strings.Contains(c.EndReason, "stopped uncleanly") || c.Route != "out" || len(c.Legs) != 2 {
			t.Errorf("unobserved record: %+v", c)
			continue
		}
		a, b := c.Legs[0], c.Legs[1]
		if a.Transport != "udp" || a.Media == nil || a.Media.KeyExchange != "none" {
			t.Errorf("leg a: %+v", a)
		}
		if b.Transport != "tls" || b.TLS == nil || b.TLS.Version == "" || b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified ||
			b.Media == nil || b.Media.KeyExchange == "none" || b.Media.SRTPSuite == "" {
			t.Errorf("leg b lacks its security facts: %+v tls=%+v media=%+v", b, b.TLS, b.Media)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct unobserved calls, want %d", len(seen), n)
	}
	pub := filepath.Join(dir, "state", compliance.PublicKeyFile)
	if code, out, errOut := runCmd("verify", "-log", logPath, "-key", pub); code != 0 {
		t.Fatalf("verify -key after the kill: %d\n%s%s", code, out, errOut)
	}
	if live, _, err := compliance.ReadJournal(filepath.Join(dir, "state", compliance.JournalFile)); err != nil || len(live) != 0 {
		t.Errorf("journal after a clean stop: %v %d calls", err, len(live))
	}
}

func calls(recs []*compliance.Record) int {
	n := 0
	for _, r := range recs {
		if r.Call != nil {
			n++
		}
	}
	return n
}
