package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// SIPVicious, the scanner most SIP attacks start with, learns nothing of a
// zone that drops outsiders: svmap (OPTIONS and INVITE sweeps) does not list
// it and svwar (extension enumeration) finds no server. The same tools run
// against a zone that answers outsiders and scanners (403) do find parapet,
// so the scan itself works. Both scans are counted in the zones' outsiders
// summaries.
func TestSIPViciousLearnsNothing(t *testing.T) {
	peers.Require(t, "svmap", "svwar")
	dir := t.TempDir()
	base := portBlock(t)
	dark, lit := base+60, base+62
	conf := filepath.Join(dir, "parapet.hcl")
	// The scanners run on 127.0.0.1 (svwar cannot bind elsewhere), so the
	// zones' peers are elsewhere.
	src := fmt.Sprintf(`
state_dir = "state"
zone "dark" {
  listen    = ["udp://127.0.0.1:%d", "tcp://127.0.0.1:%d"]
  peers     = ["10.0.0.0/8"]
  outsiders = "drop"
  media { srtp = "allow" }
}
zone "lit" {
  listen   = ["udp://127.0.0.1:%d"]
  peers    = ["10.0.0.0/8"]
  scanners = "refuse"
  media { srtp = "allow" }
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
`, dark, dark, lit, base+70, base+99)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runParapet(t, "-c", conf, "-log-format", "json")

	ports := fmt.Sprintf("-p%d,%d", dark, lit)
	for _, method := range []string{"OPTIONS", "INVITE"} {
		out := scan(t, "svmap", ports, "-m", method, "127.0.0.1")
		if strings.Contains(out, ":"+strconv.Itoa(dark)) {
			t.Errorf("svmap -m %s found the zone that drops outsiders:\n%s", method, out)
		}
		if !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(lit)) {
			t.Errorf("svmap -m %s did not find the zone that answers scanners (the scan does not work?):\n%s", method, out)
		}
	}
	if out := scan(t, "svwar", "-p"+strconv.Itoa(dark), "-e100-104", "127.0.0.1"); !strings.Contains(out, "found nothing") ||
		strings.Contains(out, "replied") || strings.Contains(out, "not allowed") || strings.Contains(out, "decode") ||
		strings.Contains(out, "Extension") {
		t.Errorf("svwar learned something of the zone that drops outsiders:\n%s", out)
	}
	if out := scan(t, "svwar", "-p"+strconv.Itoa(lit), "-e100-104", "127.0.0.1"); !strings.Contains(out, "replied") {
		t.Errorf("svwar against the zone that answers: no sign of a server (the scan does not work?):\n%s", out)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v", err)
	}
	recs, err := readRecords(filepath.Join(dir, "state", "compliance.jsonl"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*compliance.OutsiderTally{}
	for _, r := range recs {
		if r.Conn != nil && r.Conn.Event == compliance.EventOutsiders {
			if prev := got[r.Conn.Zone]; prev != nil {
				r.Conn.Tally.Scanners += prev.Scanners
				r.Conn.Tally.Refused += prev.Refused
			}
			got[r.Conn.Zone] = r.Conn.Tally
		} else if r.Conn != nil {
			t.Errorf("a scan wrote a connection event of its own: %+v", r.Conn)
		}
	}
	if d, l := got["dark"], got["lit"]; d == nil || d.Scanners == 0 || d.Refused != 0 || l == nil || l.Scanners == 0 {
		t.Errorf("the scans are not in the outsiders summaries: dark %+v, lit %+v", d, l)
	}
}

// scan runs a SIPVicious tool (at most 60 s) and returns what it printed.
func scan(t *testing.T, tool string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Dir = t.TempDir() // svmap and svwar keep their sessions in the working directory's ~/.sipvicious
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	timer := time.AfterFunc(60*time.Second, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		close(done)
	})
	out, err := cmd.CombinedOutput()
	if !timer.Stop() {
		<-done
		t.Fatalf("%s %v did not finish in 60 s:\n%s", tool, args, out)
	}
	if err != nil {
		t.Logf("%s %v: %v", tool, args, err)
	}
	return string(out)
}
