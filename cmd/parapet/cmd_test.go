package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/b2bua/sim"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	err := dispatch(args, &o, &e)
	if err == nil {
		return 0, o.String(), e.String()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			e.WriteString(ee.err.Error())
		}
		return ee.code, o.String(), e.String()
	}
	return 1, o.String(), e.String() + err.Error()
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	os.WriteFile(good, []byte(`
zone "pbx" {
  listen = ["udp://127.0.0.1:25060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "loop" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:25070"
}
media { address = "127.0.0.1" }
`), 0o600)
	code, out, errOut := runCmd("check", "-c", good)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("good config: %d %q %q", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte(`zone "carrier" {
  listen = ["tls://127.0.0.1:25061"]
  peers  = ["127.0.0.0/8"]
  tls {
    min_version = "1.1"
    min_verson  = "1.2"
  }
}
media { address = "127.0.0.1" }
`), 0o600)
	code, _, errOut = runCmd("check", "-c", bad)
	if code != 2 {
		t.Fatalf("bad config exit %d, want 2", code)
	}
	for _, want := range []string{"bad.hcl", "line 5", "1.2", "line 6", "min_verson"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "c.jsonl")
	w, err := compliance.OpenWriter(log, compliance.WriterOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Append(&compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: fmt.Sprint(i),
			Disposition: compliance.DispositionAnswered, SIPStatus: 200}})
	}
	w.Close()
	if code, out, _ := runCmd("verify", "-log", log); code != 0 || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("intact log: %d %q", code, out)
	}
	b, _ := os.ReadFile(log)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"sip_status":200`), []byte(`"sip_status":201`), 1)
	os.WriteFile(log, bytes.Join(lines, nil), 0o600)
	code, out, _ := runCmd("verify", "-log", log)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, ":3:") {
		t.Fatalf("one-byte change: %d %q, want exit 1 naming line 3", code, out)
	}
	if code, _, _ := runCmd("verify"); code != 2 {
		t.Errorf("verify without -log: exit %d, want 2", code)
	}
}

func TestCertsAndVersion(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd("certs", "selfsigned", "-host", "sbc.example.org", "-o", dir)
	if code != 0 || !strings.Contains(out, "sbc.example.org.pem") {
		t.Fatalf("certs selfsigned: %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCmd("certs", "selfsigned", "-host", "sbc.example.org", "-o", dir); code == 0 {
		t.Error("overwrote existing certificates without -force")
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "parapet ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd("frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// `parapet run` as a real process: a live call, then SIGTERM. The call is
// ended with BYE on both legs, recorded as shutdown, and the log is closed
// and verifies.
func TestRunStopsCleanlyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "parapet")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base := portBlock(t)
	pki, err := certs.EnsureLab(filepath.Join(dir, "state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	zt, err := certs.NewZone(certs.Options{Zone: "sim", MinVersion: tls.VersionTLS12, CertFile: pki.PeerCertFile,
		KeyFile: pki.PeerKeyFile, CAFile: pki.CAFile, VerifyPeer: true})
	if err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	carrier, err := sim.New(sim.Config{Name: "carrier", Transport: "tls", Listen: netip.AddrPortFrom(loop, uint16(base+1)),
		ServerTLS: zt.ServerConfig(), ClientTLS: zt.ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer carrier.Close()
	pbx, err := sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, uint16(base+2))})
	if err != nil {
		t.Fatal(err)
	}
	defer pbx.Close()
	conf := filepath.Join(dir, "parapet.hcl")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ["tls://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  tls { ca_file = "${state_dir}/certs/lab-ca.pem" }
  media { srtp = "require" }
}
route "out" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:127.0.0.1:%d"
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
admin { listen = "127.0.0.1:%d" }
`, base+60, base+61, base+1, base+70, base+99, base+62)), 0o600)

	cmd := exec.Command(bin, "run", "-c", conf, "-log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	started := make(chan struct{})
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "parapet started") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatalf("parapet did not start:\n%s", logs.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, err := pbx.Call(ctx, fmt.Sprintf("sip:+15551230000@127.0.0.1:%d", base+60), sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var callee *sim.Session
	select {
	case callee = <-carrier.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("carrier never got the call")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("parapet exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("parapet did not stop on SIGTERM:\n%s", logs.String())
	}
	for name, s := range map[string]*sim.Session{"pbx": caller, "carrier": callee} {
		select {
		case <-s.Context().Done():
		case <-time.After(5 * time.Second):
			t.Errorf("%s leg got no BYE", name)
		}
	}
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	res, err := compliance.Verify([]string{logPath}, compliance.VerifyOptions{Head: true})
	if err != nil || !res.OK() || !res.HeadChecked {
		t.Fatalf("log after SIGTERM: %v %+v", err, res)
	}
	recs, _ := readRecords(logPath, time.Time{})
	var shutdown, closed bool
	for _, r := range recs {
		if r.Call != nil && r.Call.Disposition == compliance.DispositionShutdown {
			shutdown = true
		}
		if r.Log != nil && r.Log.Event == compliance.LogClosed {
			closed = true
		}
	}
	if !shutdown || !closed {
		t.Errorf("records: call ended by shutdown=%v, log closed=%v", shutdown, closed)
	}
	if strings.Contains(logs.String(), "inline:") || strings.Contains(logs.String(), "a=crypto") {
		t.Error("key material in parapet's logs")
	}
}
