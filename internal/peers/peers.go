// Package peers drives real SIP peers and packet captures on loopback for
// parapet's tests: baresip instances over their ctrl_tcp interface, dumpcap
// captures, free port blocks and the checks that the tools are installed.
//
// It is test support: only test code imports it, and it imports nothing of
// parapet's. A missing tool fails the test that needs it; it never skips.
package peers

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require fails t when any of tools is not installed. It never skips: the
// interop tests are the evidence that parapet works with real peers.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required for this test and is not installed (%v): run `make peers` "+
				"(apt-get install baresip-core linphone-cli sip-tester tshark socat poppler-utils sipvicious)", tool, err)
		}
	}
}

// PortBlock returns the first of n consecutive ports, free on 127.0.0.1
// for both TCP and UDP, in [lo, hi). The block is chosen at random among the
// n-aligned blocks of the range, so that tests running at once rarely
// collide; the caller picks a range no other concurrent test uses.
func PortBlock(t testing.TB, lo, hi, n int) int {
	t.Helper()
	if n <= 0 || hi-lo < n {
		t.Fatalf("port block of %d in [%d, %d): no such block", n, lo, hi)
	}
	for range 50 {
		base := lo + rand.IntN((hi-lo)/n)*n
		if blockFree(base, n) {
			return base
		}
	}
	t.Fatalf("no free block of %d ports on loopback in [%d, %d)", n, lo, hi)
	return 0
}

// blockFree reports whether ports base to base+n-1 can each be bound for
// UDP and TCP on 127.0.0.1.
func blockFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			return false
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		u.Close()
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// SyncBuffer is a bytes.Buffer that one goroutine (or process) writes
// while another reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n non-blank lines of a program's output, carriage
// returns taken as line ends and baresip's "bit/s" status lines left out.
func Tail(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n") {
		if strings.TrimSpace(l) != "" && !strings.Contains(l, "bit/s") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// Reap waits up to grace for cmd, already asked to end, to exit, then
// kills its process group and waits for it. cmd must have been started
// with Setpgid, and nothing else may wait for it.
func Reap(cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
