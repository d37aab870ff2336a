package peers

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Capture is dumpcap recording loopback traffic into one or more files.
// It is killed when its test ends if Stop did not end it first.
type Capture struct {
	t     testing.TB
	dumps []*dump
}

// dump is one dumpcap process writing one file.
type dump struct {
	file string
	cmd  *exec.Cmd
	log  *SyncBuffer
	done chan struct{} // closed when the process has exited
}

// StartCapture runs dumpcap on lo for the capture filter into each of
// files: a ".pcap" file in the classic pcap format (-P), any other pcapng.
// It returns once every file is being written. A missing dumpcap, or one
// that does not start within 5 s, fails t.
func StartCapture(t testing.TB, filter string, files ...string) *Capture {
	t.Helper()
	return StartCaptureOn(t, "lo", filter, files...)
}

// StartCaptureOn is StartCapture on interface iface: "any" gives Linux
// cooked frames rather than loopback's Ethernet ones.
func StartCaptureOn(t testing.TB, iface, filter string, files ...string) *Capture {
	t.Helper()
	Require(t, "dumpcap")
	c := &Capture{t: t}
	for _, f := range files {
		// -a: a capture left behind by a test that hangs ends on its own.
		args := []string{"-q", "-i", iface, "-f", filter, "-w", f, "-a", "duration:120"}
		if strings.HasSuffix(f, ".pcap") {
			args = append(args, "-P")
		}
		d := &dump{file: f, cmd: exec.Command("dumpcap", args...), log: new(SyncBuffer), done: make(chan struct{})}
		d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := d.cmd.Start(); err != nil {
			t.Fatalf("dumpcap: %v", err)
		}
		go func() { d.cmd.Wait(); close(d.done) }()
		t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
		c.dumps = append(c.dumps, d)
	}
	// dumpcap names its file once it captures, and writes the file's
	// header when it has opened the interface.
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range c.dumps {
		for !d.writing() {
			select {
			case <-d.done:
				t.Fatalf("dumpcap for %s exited: %s", d.file, d.log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("dumpcap did not start writing %s: %s", d.file, d.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	return c
}

// writing reports whether dumpcap has said it writes d.file and the file
// holds its header.
func (d *dump) writing() bool {
	st, err := os.Stat(d.file)
	return err == nil && st.Size() > 0 && strings.Contains(d.log.String(), "File:")
}

// Stop ends the capture, leaving complete files. It waits a moment first:
// dumpcap loses the last packets when stopped at once. A dumpcap that does
// not exit within 5 s of SIGINT fails the test.
func (c *Capture) Stop() {
	c.t.Helper()
	time.Sleep(1500 * time.Millisecond)
	for _, d := range c.dumps {
		d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			c.t.Fatalf("dumpcap did not stop writing %s: %s", d.file, d.log)
		}
	}
}
