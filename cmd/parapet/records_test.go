package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/policy"
)

// recT0 is the time of the first record of recordsLog.
var recT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// The numbers and Call-IDs of recordsLog, in clear. They must never appear
// in the command's output.
const (
	numClinic   = "+1 (555) 010-0142"
	numCarrier  = "+15550109999"
	numAttacker = "+15550107777"
	rawCallID   = "a84b4c76e66710@pbx.clinic.example"
)

func finding(c policy.Control, s policy.FindingStatus) policy.Finding {
	return policy.Finding{Control: c, Status: s, Detail: "test"}
}

func decision(st policy.Stage, zone string, v policy.Verdict, rule string) policy.Decision {
	return policy.Decision{Stage: st, Zone: zone, Verdict: v, Rule: rule, Reason: "test"}
}

// recordsLog writes, with the real Writer, a log of known records in a new
// state directory with a pseudonymisation key, and returns the log's path
// and the key file. Its seqs:
//
//	1 opened
//	2 call, day 0: outbound pbx>carrier, answered, upgraded, from 10.20.1.15,
//	  numClinic→numCarrier, leg a Call-ID rawCallID, (e)(1) satisfied on b
//	3 call, day 1: inbound carrier>pbx from 203.0.113.7, would_reject
//	  media.srtp-required, (e)(1) violated on a, numCarrier→numClinic
//	4 conn, day 2: tls_refused from 203.0.113.7 on carrier, signaling.tls-version
//	5 call, day 3: inbound from 198.51.100.9, rejected 403 signaling.tls-required,
//	  numAttacker→numClinic
//	6 call, day 4: pbx>pbx in clear (not pseudonymised): alice→bob, cancelled
//	7 closed
//
// The writer's clock, for the log events, stays at recT0 less an hour.
func recordsLog(t *testing.T) (log, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile = filepath.Join(dir, "state", "pseudonym.key")
	key, err := compliance.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := compliance.NewPseudonymizer(key)
	log = filepath.Join(dir, "state", "compliance.jsonl")
	w, err := compliance.OpenWriter(log, compliance.WriterOptions{Version: "test", Now: func() time.Time { return recT0.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	day := func(n int) time.Time { return recT0.Add(time.Duration(n) * 24 * time.Hour) }
	leg := func(role compliance.Role, zone, transport, remote string, f ...policy.Finding) compliance.Leg {
		return compliance.Leg{Role: role, Zone: zone, Transport: transport, Remote: remote, Controls: f}
	}
	call := func(n int, route, caller, callee string, disp compliance.Disposition, status int, legs []compliance.Leg, ds ...policy.Decision) *compliance.Record {
		return &compliance.Record{Type: compliance.TypeCall, Time: day(n), Call: &compliance.Call{
			ID: fmt.Sprintf("c-%d", n), Route: route, Caller: p.Token(caller), Callee: p.Token(callee), Pseudonymized: true,
			Start: day(n), End: day(n), Disposition: disp, SIPStatus: status, Legs: legs, Decisions: ds}}
	}
	tx := policy.ControlTransmission
	c2 := call(0, "outbound", numClinic, numCarrier, compliance.DispositionAnswered, 200,
		[]compliance.Leg{leg("a", "pbx", "udp", "10.20.1.15:5060", finding(tx, policy.StatusNotRequired)),
			leg("b", "carrier", "tls", "203.0.113.10:5061", finding(tx, policy.StatusSatisfied))},
		decision(policy.StageAdmission, "pbx", policy.VerdictAllowed, "allowed"),
		decision(policy.StageOffer, "pbx", policy.VerdictUpgraded, "media.upgrade"),
		decision(policy.StageAnswer, "carrier", policy.VerdictAllowed, "allowed"))
	c2.Call.Legs[0].CallID = p.CallID(rawCallID)
	c3 := call(1, "inbound", numCarrier, numClinic, compliance.DispositionAnswered, 200,
		[]compliance.Leg{leg("a", "carrier", "udp", "203.0.113.7:5060", finding(tx, policy.StatusViolated)),
			leg("b", "pbx", "udp", "10.20.1.15:5060", finding(tx, policy.StatusNotRequired))},
		decision(policy.StageAdmission, "carrier", policy.VerdictAllowed, "allowed"),
		decision(policy.StageOffer, "carrier", policy.VerdictWouldReject, "media.srtp-required"))
	refusal := decision(policy.StageHandshake, "carrier", policy.VerdictRejected, "signaling.tls-version")
	c4 := &compliance.Record{Type: compliance.TypeConnection, Time: day(2), Conn: &compliance.ConnEvent{
		Event: compliance.EventTLSRefused, Zone: "carrier", Transport: "tls", Remote: "203.0.113.7:40112", Decision: &refusal}}
	c5 := call(3, "inbound", numAttacker, numClinic, compliance.DispositionRejected, 403,
		[]compliance.Leg{leg("a", "carrier", "tcp", "198.51.100.9:5060", finding(tx, policy.StatusNotApplicable))},
		decision(policy.StageAdmission, "carrier", policy.VerdictRejected, "signaling.tls-required"))
	c6 := call(4, "", "", "", compliance.DispositionCancelled, 487,
		[]compliance.Leg{leg("a", "pbx", "udp", "[2001:db8::5]:5060"), leg("b", "pbx", "udp", "10.20.1.16:5060")})
	c6.Call.Caller, c6.Call.Callee, c6.Call.Pseudonymized = "alice", "bob", false
	c6.Call.Legs[0].CallID = "clear-call-id@pbx"
	for _, r := range []*compliance.Record{c2, c3, c4, c5, c6} {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return log, keyFile
}

// jsonlSeqs runs parapet records -format jsonl with args and returns the
// seqs printed, checking that each line is a line of the log, intact.
func jsonlSeqs(t *testing.T, log string, args ...string) []uint64 {
	t.Helper()
	code, out, errOut := runCmd(append([]string{"records", "-log", log, "-format", "jsonl"}, args...)...)
	if code != 0 {
		t.Fatalf("records %v: exit %d: %s", args, code, errOut)
	}
	logBytes, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		if !bytes.Contains(logBytes, []byte(line)) {
			t.Errorf("records %v: output line is not a line of the log: %s", args, line)
		}
		rec, err := compliance.DecodeLine([]byte(line))
		if err != nil {
			t.Fatalf("records %v: output line not intact: %v", args, err)
		}
		seqs = append(seqs, rec.Seq)
	}
	return seqs
}

func TestRecordsFilters(t *testing.T) {
	log, key := recordsLog(t)
	for _, tc := range []struct {
		args []string
		want []uint64
	}{
		{nil, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{[]string{"-type", "call"}, []uint64{2, 3, 5, 6}},
		{[]string{"-type", "connection", "-type", "log"}, []uint64{1, 4, 7}},
		{[]string{"-since", "2026-12-02"}, []uint64{3, 4, 5, 6}},
		{[]string{"-since", "2026-12-02", "-until", "2026-12-04"}, []uint64{3, 4}},
		{[]string{"-until", "2026-12-01T10:00:00Z"}, []uint64{1, 7}},
		{[]string{"-zone", "carrier"}, []uint64{2, 3, 4, 5}},
		{[]string{"-zone", "carrier", "-type", "call"}, []uint64{2, 3, 5}},
		{[]string{"-route", "inbound"}, []uint64{3, 5}},
		{[]string{"-disposition", "rejected", "-disposition", "cancelled"}, []uint64{5, 6}},
		{[]string{"-event", "tls_refused", "-event", "closed"}, []uint64{4, 7}},
		{[]string{"-rule", "media.srtp-required"}, []uint64{3}},
		{[]string{"-rule", "signaling.tls-version", "-rule", "signaling.tls-required"}, []uint64{4, 5}},
		{[]string{"-verdict", "rejected"}, []uint64{4, 5}},
		{[]string{"-verdict", "would_reject"}, []uint64{3}},
		{[]string{"-verdict", "upgraded"}, []uint64{2}},
		{[]string{"-peer", "203.0.113.7"}, []uint64{3, 4}},
		{[]string{"-peer", "203.0.113.0/24"}, []uint64{2, 3, 4}},
		{[]string{"-peer", "10.20.1.16", "-peer", "198.51.100.0/24"}, []uint64{5, 6}},
		{[]string{"-peer", "2001:db8::/32"}, []uint64{6}},
		{[]string{"-peer", "::ffff:203.0.113.7"}, []uint64{3, 4}},
		{[]string{"-control", "164.312(e)(1)=violated"}, []uint64{3}},
		{[]string{"-control", "(e)(1)=satisfied"}, []uint64{2}},
		{[]string{"-control", "164.312(e)(1)"}, []uint64{2, 3, 5}},
		{[]string{"-control", "164.312(e)(1)=violated", "-peer", "203.0.113.7", "-since", "2026-12-01"}, []uint64{3}},
		{[]string{"-control", "164.312(e)(1)=violated", "-peer", "198.51.100.9"}, nil},
		{[]string{"-number", numClinic, "-pseudonym-key", key}, []uint64{2, 3, 5}},
		{[]string{"-number", "+1 555 010 7777", "-pseudonym-key", key}, []uint64{5}},
		{[]string{"-number", "alice", "-pseudonym-key", key}, []uint64{6}},
		{[]string{"-number", "alice"}, []uint64{6}},
		{[]string{"-call-id", rawCallID, "-pseudonym-key", key}, []uint64{2}},
		{[]string{"-call-id", "clear-call-id@pbx"}, []uint64{6}},
	} {
		got := jsonlSeqs(t, log, tc.args...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("records %q: seqs %v, want %v", tc.args, got, tc.want)
		}
	}
}

// A token, whole or its start as the table shows it, selects without the key.
func TestRecordsTokens(t *testing.T) {
	log, keyFile := recordsLog(t)
	key, err := compliance.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := compliance.NewPseudonymizer(key)
	tok := p.Token(numAttacker)
	for _, v := range []string{tok, tok[:len(compliance.TokenPrefix)+8]} {
		if got := jsonlSeqs(t, log, "-number", v); !slices.Equal(got, []uint64{5}) {
			t.Errorf("-number %s: seqs %v, want [5]", v, got)
		}
	}
	if got := jsonlSeqs(t, log, "-call-id", p.CallID(rawCallID)); !slices.Equal(got, []uint64{2}) {
		t.Errorf("-call-id token: seqs %v, want [2]", got)
	}
	// A number is not a Call-ID: the two are hashed apart.
	if got := jsonlSeqs(t, log, "-call-id", tok); got != nil {
		t.Errorf("-call-id with a number's token: seqs %v, want none", got)
	}
}

// The unfiltered jsonl output of a log is the log, byte for byte, and
// verifies; so does a log of several rotated files.
func TestRecordsJSONLIsTheLog(t *testing.T) {
	log, _ := recordsLog(t)
	want, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("records", "-log", log, "-format", "jsonl")
	if code != 0 || out != string(want) {
		t.Fatalf("exit %d, output differs from the log (%d bytes, want %d): %s", code, len(out), len(want), errOut)
	}
	res, err := compliance.VerifyReader("output", strings.NewReader(out), "", 0)
	if err != nil || !res.OK() {
		t.Fatalf("output does not verify: %v %+v", err, res)
	}

	// Rotated: the files in chain order, all given.
	dir := t.TempDir()
	rlog := filepath.Join(dir, "c.jsonl")
	w, err := compliance.OpenWriter(rlog, compliance.WriterOptions{Version: "test", RotateBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := w.Append(&compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: fmt.Sprint(i),
			Disposition: compliance.DispositionAnswered, SIPStatus: 200, Legs: []compliance.Leg{{Role: "a", Zone: "pbx"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := compliance.ChainFiles(rlog)
	if err != nil || len(files) < 3 {
		t.Fatalf("chain files %v: %v", files, err)
	}
	args := []string{"records", "-format", "jsonl"}
	var all []byte
	for _, f := range files {
		args = append(args, "-log", f)
		all = append(all, readAll(t, f)...)
	}
	if code, out, errOut := runCmd(args...); code != 0 || out != string(all) {
		t.Fatalf("rotated log: exit %d, output differs from its files: %s", code, errOut)
	}
	res, err = compliance.Verify(files, compliance.VerifyOptions{Head: true})
	if err != nil || !res.OK() {
		t.Fatalf("rotated log does not verify: %v %+v", err, res)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The table: one line per record under a header, tokens cut to what
// -number takes, numbers never in clear.
func TestRecordsTable(t *testing.T) {
	log, key := recordsLog(t)
	code, out, errOut := runCmd("records", "-log", log, "-pseudonym-key", key, "-number", numCarrier)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME ") {
		t.Fatalf("want a header and 2 rows:\n%s", out)
	}
	k, _ := compliance.LoadKey(key)
	tok := compliance.NewPseudonymizer(k).Token(numCarrier)
	for _, want := range []string{"2026-12-02T10:00:00Z", "carrier>pbx", "answered", "200", "inbound", "media.srtp-required",
		"203.0.113.7:5060", tok[:len(compliance.TokenPrefix)+8] + "→"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("row lacks %q:\n%s", want, lines[2])
		}
	}
	if !strings.Contains(lines[1], "media.upgrade") {
		t.Errorf("the deciding rule of an upgraded call is media.upgrade:\n%s", lines[1])
	}
	for _, n := range []string{numCarrier, "5550109999", numClinic, "5550100142"} {
		if strings.Contains(out+errOut, n) {
			t.Errorf("output holds the number %q:\n%s%s", n, out, errOut)
		}
	}
	// No match: exit 0, nothing printed.
	if code, out, _ := runCmd("records", "-log", log, "-route", "nowhere"); code != 0 || out != "" {
		t.Errorf("no match: exit %d, output %q", code, out)
	}
}

// -c CONFIG reads the configured log (all its files) and key.
func TestRecordsConfig(t *testing.T) {
	log, _ := recordsLog(t)
	dir := filepath.Dir(filepath.Dir(log))
	cfg := filepath.Join(dir, "parapet.hcl")
	if err := os.WriteFile(cfg, []byte(`state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:25060"]
  peers  = ["127.0.0.0/8"]
}
route "loop" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:25070"
}
media { address = "127.0.0.1" }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("records", "-c", cfg, "-number", numAttacker, "-format", "jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if rec, err := compliance.DecodeLine([]byte(out)); err != nil || rec.Seq != 5 {
		t.Fatalf("-c with -number: %q (%v)", out, err)
	}
	// A state directory without a key: a number then matches the records
	// written in clear, with a note.
	if err := os.Remove(filepath.Join(dir, "state", "pseudonym.key")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd("records", "-c", cfg, "-number", "alice", "-format", "jsonl")
	if rec, err := compliance.DecodeLine([]byte(out)); code != 0 || err != nil || rec.Seq != 6 || !strings.Contains(errOut, "without the pseudonymisation key") {
		t.Fatalf("-c without a key: exit %d, %q (%v), stderr %q", code, out, err, errOut)
	}
}

// A line that is not an intact record is skipped with a warning; the
// others print, exit 0.
func TestRecordsSkipsBadLines(t *testing.T) {
	log, _ := recordsLog(t)
	b := readAll(t, log)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"sip_status":200`), []byte(`"sip_status":202`), 1)
	if err := os.WriteFile(log, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("records", "-log", log, "-format", "jsonl")
	if code != 0 || strings.Count(out, "\n") != 6 {
		t.Fatalf("exit %d, %d lines out", code, strings.Count(out, "\n"))
	}
	for _, want := range []string{log + ":3: skipped", "1 line skipped", "parapet verify"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// -h says what the command does not do.
func TestRecordsHelp(t *testing.T) {
	code, _, errOut := runCmd("records", "-h")
	if code != 0 || !strings.Contains(errOut, "it does not verify the chain") || !strings.Contains(errOut, "parapet verify") {
		t.Fatalf("records -h: exit %d\n%s", code, errOut)
	}
	if _, out, _ := runCmd("help"); !strings.Contains(out, "parapet records -log FILE") {
		t.Errorf("usage does not list records:\n%s", out)
	}
}

func TestRecordsBadFlags(t *testing.T) {
	log, key := recordsLog(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "give -log FILE"},
		{[]string{"-log", log, "-format", "xml"}, `-format "xml"`},
		{[]string{"-log", log, "-type", "calls"}, `-type "calls": want one of call, connection, log`},
		{[]string{"-log", log, "-since", "yesterday"}, `-since: "yesterday" is not a time`},
		{[]string{"-log", log, "-until", "-3h"}, `-until: "-3h" is not a time`},
		{[]string{"-log", log, "-since", "2026-12-05", "-until", "2026-12-01"}, "is not before -until"},
		{[]string{"-log", log, "-disposition", "ok"}, `-disposition "ok"`},
		{[]string{"-log", log, "-verdict", "denied"}, `-verdict "denied"`},
		{[]string{"-log", log, "-peer", "203.0.113.300"}, `-peer "203.0.113.300": not an address or CIDR`},
		{[]string{"-log", log, "-control", "164.312(z)"}, `-control "164.312(z)": unknown control`},
		{[]string{"-log", log, "-control", "(e)(1)=broken"}, `unknown status "broken"`},
		{[]string{"-log", log, "-number", "hmac-sha256:xyz"}, "a token is hmac-sha256: followed by 8 to 32"},
		{[]string{"-log", log, "-number", numCarrier, "-pseudonym-key", key + ".missing"}, "read pseudonym key"},
		{[]string{"-log", log, "-log", log, "-follow"}, "-follow follows one live log"},
		{[]string{"-log", log + ".missing"}, "no such file"},
		{[]string{"-log", log, "extra"}, `unexpected argument "extra"`},
		{[]string{"-log", log, "-nosuch"}, "flag provided but not defined"},
	} {
		code, out, errOut := runCmd(append([]string{"records"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("records %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
		if strings.Contains(errOut, numCarrier) {
			t.Errorf("records %q: stderr repeats the number", tc.args)
		}
	}
}

// waitFor polls cond until it holds, and fails the test if it does not
// within timeout; what says what was awaited.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// poll calls cond every 5 ms until it reports true or d has passed, and
// reports whether it did: waitFor for helpers that return an error instead
// of failing the test.
func poll(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// -follow prints what the Writer appends, across two rotations and more,
// byte for byte, and ends with exit 0 when interrupted.
func TestRecordsFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "c.jsonl")
	w, err := compliance.OpenWriter(log, compliance.WriterOptions{Version: "test", RotateBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n := 0
	appendCall := func() {
		n++
		if err := w.Append(&compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: fmt.Sprint(n),
			Disposition: compliance.DispositionAnswered, SIPStatus: 200, Legs: []compliance.Leg{{Role: "a", Zone: "pbx"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	appendCall()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr peers.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- records(ctx, []string{"-log", log, "-follow", "-format", "jsonl"}, &stdout, &stderr) }()
	// When the command has reached the end of the log is unknown: append
	// until it prints, then across rotations.
	waitFor(t, 10*time.Second, "a first record", func() bool { appendCall(); return stdout.String() != "" })
	for range 20 {
		appendCall()
	}
	last := w.LastSeq()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		out := strings.TrimSuffix(stdout.String(), "\n")
		rec, err := compliance.DecodeLine([]byte(out[strings.LastIndexByte(out, '\n')+1:]))
		if err != nil {
			return 0
		}
		return rec.Seq
	}
	waitFor(t, 10*time.Second, "the closed record", func() bool { return lastSeq() == last+1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("records -follow ended with %v, want nil (exit 0)", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("records -follow did not end within 2s of the interrupt")
	}
	files, err := compliance.ChainFiles(log)
	if err != nil || len(files) < 3 {
		t.Fatalf("chain files %v (want two rotations and more): %v", files, err)
	}
	var all []byte
	for _, f := range files {
		all = append(all, readAll(t, f)...)
	}
	out := stdout.String()
	if !bytes.HasSuffix(all, []byte(out)) || !strings.HasPrefix(out, "{") {
		t.Fatalf("the output is not the log's tail, byte for byte:\n%s", out)
	}
	if stderr.String() != "" {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// The real binary: -follow prints as records come, and SIGINT ends it
// with exit status 0.
func TestRecordsFollowBinarySIGINT(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "c.jsonl")
	w, err := compliance.OpenWriter(log, compliance.WriterOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command(buildParapet(t), "records", "-follow", "-log", log, "-type", "call")
	var stdout, stderr peers.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	i := 0
	waitFor(t, 15*time.Second, "a row", func() bool {
		i++
		if err := w.Append(&compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: fmt.Sprint(i), Route: "outbound",
			Disposition: compliance.DispositionAnswered, SIPStatus: 200}}); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(stdout.String(), "outbound")
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("exit after SIGINT: %v, want 0; stderr: %s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit within 5s of SIGINT")
	}
	if !strings.HasPrefix(stdout.String(), "TIME ") {
		t.Errorf("table without its header:\n%s", stdout.String())
	}
}
