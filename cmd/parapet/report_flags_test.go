package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// smallLog writes a log of one call and one refused handshake with the real
// Writer and returns its path.
func smallLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := compliance.OpenWriter(path, compliance.WriterOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	recs := []*compliance.Record{
		{Type: compliance.TypeCall, Call: &compliance.Call{ID: "c1", Caller: "hmac-sha256:aa", Callee: "hmac-sha256:bb",
			Pseudonymized: true, Start: now, End: now, Disposition: compliance.DispositionAnswered, SIPStatus: 200,
			Legs: []compliance.Leg{{Role: compliance.RoleA, Zone: "pbx", Transport: "udp", Remote: "192.0.2.5:5060",
				UserAgent: "Phone 1.0", Media: &compliance.LegMedia{Profile: "RTP/AVP", KeyExchange: "none"}}}}},
		{Type: compliance.TypeConnection, Conn: &compliance.ConnEvent{Event: compliance.EventTLSRefused, Zone: "carrier",
			Transport: "tls", Remote: "198.51.100.9:40000", ClientMaxVersion: "TLS1.0"}},
	}
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportAndInventoryFlags(t *testing.T) {
	log := smallLog(t)
	empty := filepath.Join(t.TempDir(), "compliance.jsonl")
	os.WriteFile(empty, nil, 0o600)
	notJSON := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notJSON, []byte("hello\nworld\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr (errors) or stdout (success)
	}{
		{[]string{"report"}, 2, "report needs -log FILE or -c CONFIG"},
		{[]string{"report", "-log", log, "-format", "docx"}, 2, `unknown -format "docx"`},
		{[]string{"report", "-log", log, "-format", "pdf", "-page", "A5", "-o", filepath.Join(t.TempDir(), "r.pdf")}, 2, `unknown -page "A5"`},
		{[]string{"report", "-log", log, "-since", "2026-12-02", "-until", "2026-12-01"}, 2, "is not after -since"},
		{[]string{"report", "-log", log, "-since", "yesterday"}, 2, "is not a time"},
		{[]string{"report", "-log", filepath.Join(t.TempDir(), "missing.jsonl")}, 2, "no such file"},
		{[]string{"report", "-log", log, "-key", filepath.Join(t.TempDir(), "missing.pub")}, 2, "missing.pub"},
		{[]string{"report", "-log", log, "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"report", "-log", log}, 0, "164.312(e)(1)"},
		{[]string{"report", "-schema"}, 0, `"$id": "https://parapet-sbc.example/schema/report-v1.json"`},
		// A file that is not a log is a mistake, not tampering.
		{[]string{"report", "-log", notJSON, "-format", "json"}, 2, "is not a compliance log"},
		{[]string{"inventory"}, 2, "inventory needs -log FILE or -c CONFIG"},
		{[]string{"inventory", "-log", log, "-format", "pdf"}, 2, `unknown -format "pdf"`},
		{[]string{"inventory", "-log", log}, 0, "at most TLS1.0"},
		{[]string{"inventory", "-log", log, "-format", "csv"}, 0, "192.0.2.5,pbx,Phone 1.0,,"},
		{[]string{"inventory", "-log", log, "-format", "json"}, 0, `"kind": "plain_rtp"`},
		{[]string{"audit"}, 2, "audit needs a CAPTURE file"},
		{[]string{"verify", "-log", empty}, 0, "warning: the log holds no record"},
		{[]string{"audit", log}, 2, "not a pcap, pcapng or SIP text trace"},
	} {
		code, stdout, stderr := runCmd(c.args...)
		got := stderr
		if c.code != 2 {
			got = stdout
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("parapet %s: exit %d, want %d with %q in\n%s", strings.Join(c.args, " "), code, c.code, c.want, got)
		}
	}
}

// An output file appears only once complete: a failed run leaves nothing.
func TestReportOutputIsAtomic(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.html")
	code, _, stderr := runCmd("report", "-log", filepath.Join(t.TempDir(), "missing.jsonl"), "-format", "html", "-o", out)
	if code != 2 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 0 {
		t.Errorf("a failed report left %v behind", ents)
	}
	log := smallLog(t)
	if code, _, stderr := runCmd("report", "-log", log, "-format", "html", "-o", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.HasPrefix(string(b), "<!DOCTYPE html>") {
		t.Errorf("report.html: %v %.40q", err, b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("files left beside the report: %v", ents)
	}
}

// -o writes through a symbolic link and into a device or pipe as they are,
// never replacing them.
func TestReportOutputThroughLinksAndDevices(t *testing.T) {
	log := smallLog(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "target.json")
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd("report", "-log", log, "-format", "json", "-o", link); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(target); err != nil || !strings.Contains(string(b), `"report_version": 1`) {
		t.Errorf("the link's target holds no report: %v", err)
	}
	// /dev/null stays a device.
	if code, _, stderr := runCmd("report", "-log", log, "-o", os.DevNull); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("%s is no longer a device: %v %v", os.DevNull, fi.Mode(), err)
	}
	if code, _, stderr := runCmd("report", "-log", log, "-o", dir); code != 2 || !strings.Contains(stderr, "is a directory") {
		t.Errorf("-o a directory: exit %d %s", code, stderr)
	}
}
