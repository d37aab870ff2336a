package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// Helpers that run SIPp and a parapet for the SIPp tests.

// sippProc is a SIPp process a test started.
type sippProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// startSIPp starts sipp with args in dir; the test's end kills it if it
// is still running.
func startSIPp(ctx context.Context, t *testing.T, dir string, args []string) *sippProc {
	t.Helper()
	p := &sippProc{cmd: exec.CommandContext(ctx, "sipp", args...), done: make(chan error, 1)}
	p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = dir, &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its error; once only.
func (p *sippProc) wait() error {
	err := <-p.done
	p.done <- err
	return err
}

// sippErrors is what the SIPps in dir wrote to their error logs.
func sippErrors(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
	var out []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, b...)
	}
	return string(out)
}

// sippRegexpErrors returns the lines of the SIPp error logs of scenario
// name in dir that report a failed ereg check.
func sippRegexpErrors(dir, name string) string {
	files, _ := filepath.Glob(filepath.Join(dir, name+"_*_errors.log"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "regexp match") || strings.Contains(line, "Regexp matched") {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// startSIPpUAS starts a SIPp UAS on port running scenario (written to
// dir as uas_name.xml); its errors are logged if the test fails.
func startSIPpUAS(ctx context.Context, t *testing.T, dir, name string, port, mediaPort int, scenario string) {
	t.Helper()
	f := writeScenario(t, dir, "uas_"+name+".xml", scenario)
	t.Cleanup(func() {
		if t.Failed() {
			errs, _ := filepath.Glob(filepath.Join(dir, "uas_"+name+"*errors.log"))
			for _, e := range errs {
				b, _ := os.ReadFile(e)
				t.Logf("SIPp UAS %s errors:\n%s", name, peers.Tail(string(b), 30))
			}
		}
	})
	startSIPp(ctx, t, dir, []string{"-sf", f, "-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(mediaPort), "-nostdin", "-trace_err"})
	waitFor(t, 5*time.Second, "the SIPp UAS to bind its port", func() bool { return udpBound(port) })
}

// writeScenario writes text to dir/name and returns its path.
func writeScenario(t *testing.T, dir, name, text string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// sippDir is a directory for SIPp to run in, its pcap/ SIPp's pcap files.
func sippDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pcaps := "/usr/share/sip-tester"
	if _, err := os.Stat(filepath.Join(pcaps, "g711a.pcap")); err != nil {
		t.Fatalf("SIPp's pcap files not found in %s: %v", pcaps, err)
	}
	if err := os.Symlink(pcaps, filepath.Join(dir, "pcap")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runParapetHCL runs the parapet binary from the config text src, written
// to dir/parapet.hcl (its state_dir "state", relative to dir).
func runParapetHCL(t *testing.T, dir, src string) *process {
	t.Helper()
	conf := filepath.Join(dir, "parapet.hcl")
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return runParapet(t, "-c", conf)
}

// sippCall runs a SIPp UAC for one call to proxy with the scenario
// arguments, from port (media from mediaPort), in dir; it returns SIPp's
// output and its error.
func sippCall(ctx context.Context, dir, proxy string, port, mediaPort int, scenario ...string) (string, error) {
	args := append([]string{proxy}, scenario...)
	cmd := exec.CommandContext(ctx, "sipp", append(args, "-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(mediaPort),
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", "-recv_timeout", "10s", "-trace_err")...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stopAfterCalls waits for n call records in the compliance log of a
// parapet running in dir (runParapetHCL), stops it and returns them.
func stopAfterCalls(t *testing.T, p *process, dir string, n int) []*compliance.Call {
	t.Helper()
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	var calls []*compliance.Call
	waitFor(t, 10*time.Second, fmt.Sprintf("%d call records", n), func() bool {
		recs, _ := readRecords(logPath, time.Time{})
		calls = onlyCalls(recs)
		return len(calls) == n
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	return calls
}
