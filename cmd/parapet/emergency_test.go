//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// setFileSizeLimit sets the RLIMIT_FSIZE of process pid (prlimit(2)): no
// file it writes may grow past max bytes (math.MaxUint64: no limit). A
// write past it fails with EFBIG (Go ignores SIGXFSZ): the disk is full as
// far as the process can tell, whatever its privileges.
func setFileSizeLimit(t *testing.T, pid int, max uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: max, Max: math.MaxUint64}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE,
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("prlimit: %v", errno)
	}
}

// An emergency number completes while the compliance log cannot grow (its
// disk full), when other calls get 503; once the log can be written again
// the call's record reaches it, says emergency, and the log verifies.
func TestEmergencyCallWithLogFull(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	base := portBlock(t)
	carrier, pbx := simPeers(t, filepath.Join(dir, "state", "certs"), base+1, base+2)
	conf := simSite(t, dir, base, `ca_file = "${state_dir}/certs/lab-ca.pem"`, fmt.Sprintf("emergency { numbers = [\"911\"] }\nadmin { listen = \"127.0.0.1:%d\" }\n", base+62))
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	p := runParapet(t, "-c", conf, "-log-format", "json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uri := func(user string) string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, base+60) }

	// The disk is full: no file parapet writes may grow by one more byte
	// than the log has. A first call's record cannot be written (the call
	// itself may be refused already, when its live-call journal entry
	// could not be written either).
	limit := fileSize(t, logPath)
	setFileSizeLimit(t, p.cmd.Process.Pid, uint64(limit))
	caller, err := pbx.Call(ctx, uri("+15551230001"), sim.CallOptions{})
	if err == nil {
		caller.Hangup(ctx)
	}
	select { // it reached the carrier either way, which got a BYE
	case callee := <-carrier.Incoming():
		<-callee.Context().Done()
	case <-ctx.Done():
		t.Fatal("the first call never reached the carrier")
	}
	p.waitLog(t, "compliance record not written")
	var rej *sim.Rejected
	if _, err = pbx.Call(ctx, uri("+15551230002"), sim.CallOptions{}); !errors.As(err, &rej) || rej.Status != 503 {
		t.Fatalf("a call with the log full: %v, want 503", err)
	}
	caller, callee := placeCall(ctx, t, pbx, carrier, uri("911"))
	if err := callee.Send(ctx, 1, 5, 20*time.Millisecond); err != nil {
		t.Fatalf("media from the emergency callee: %v\n%s", err, p.allLogs())
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatalf("the emergency call's BYE: %v", err)
	}
	<-callee.Context().Done()
	full := fileSize(t, logPath)

	if ready(base + 62) {
		t.Error("ready with the disk full")
	}

	// Room again: parapet is ready once the journal and the log can be
	// written (the held records reach the log then, in order), and the
	// next call goes through.
	setFileSizeLimit(t, p.cmd.Process.Pid, math.MaxUint64)
	waitFor(t, 10*time.Second, "parapet to be ready again", func() bool { return ready(base + 62) })
	if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", base+62)); err != nil {
		t.Error(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(body), "\nparapet_emergency_calls_total 1\n") {
			t.Errorf("metrics do not count the emergency call:\n%s", body)
		}
	}
	caller, _ = placeCall(ctx, t, pbx, carrier, uri("+15551230003"))
	caller.Hangup(ctx)
	var recs []*compliance.Record
	waitFor(t, 10*time.Second, "the four calls' records", func() bool {
		recs, _ = readRecords(logPath, time.Time{})
		return calls(recs) == 4
	})
	var got []string
	for _, r := range recs {
		if c := r.Call; c != nil {
			got = append(got, fmt.Sprintf("%s/%d/%v", c.Disposition, c.SIPStatus, c.Emergency))
			if c.Emergency && !slices.ContainsFunc(c.Decisions, func(d policy.Decision) bool {
				return d.Rule == policy.RuleEmergency && strings.Contains(d.Reason, "compliance log could not be written")
			}) {
				t.Errorf("the emergency call's decisions do not say what it was taken in spite of: %+v", c.Decisions)
			}
		}
	}
	first, want := "answered/200/false", "failed/503/false answered/200/true answered/200/false"
	if len(got) > 0 && got[0] == "failed/503/false" {
		first = got[0] // refused for its journal entry
	}
	if strings.Join(got, " ") != first+" "+want {
		t.Errorf("call records %q, want %q then %q", got, first, want)
	}
	if full != limit || fileSize(t, logPath) <= full {
		t.Errorf("the log had %d bytes when full, %d while full, %d after", limit, full, fileSize(t, logPath))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v:\n%s", err, p.allLogs())
	}
	pub := filepath.Join(dir, "state", compliance.PublicKeyFile)
	if code, out, errOut := runCmd("verify", "-log", logPath, "-key", pub); code != 0 {
		t.Fatalf("verify -key: %d\n%s%s", code, out, errOut)
	}
}

// ready reports whether parapet's /readyz on port answers 200.
func ready(port int) bool {
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
