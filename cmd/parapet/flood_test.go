package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// Flood sizes: INVITEs at floodRate per second for floodFor, from
// floodSources addresses spread over 127.1.0.0/16 (each its own socket),
// while legitCalls calls from the PBX (127.0.0.1, the zone's only peer)
// are placed and hung up, spread over floodFor (the flood goes on until the
// last is placed).
const (
	floodRate    = 2000
	floodFor     = 10 * time.Second
	floodSources = 1024
	legitCalls   = 20
	// maxSetup is the longest a legitimate call may take from INVITE to
	// answer under the flood.
	maxSetup = 200 * time.Millisecond
	// maxRSS is what parapet's resident memory must be back under once
	// the flood ends (it idles at about 25 MB).
	maxRSS = 100 << 20
)

// A multi-source INVITE flood at 2,000/s for 10 s, while 20 legitimate
// calls are placed: every legitimate call is answered within maxSetup,
// /readyz answers throughout, the compliance log grows by the 20 call
// records and a bounded number of outsiders summaries (not one record per
// INVITE), the summaries account for the flood, and parapet's memory is
// back under maxRSS after it.
func TestInviteFloodFromManySources(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary, 10 s of flood")
	}
	dir := t.TempDir()
	base := portBlock(t)
	carrier, pbx := simPeers(t, filepath.Join(dir, "state", "certs"), base+1, base+2)
	conf := floodSite(t, dir, base)
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	p := runParapet(t, "-c", conf, "-log-format", "json")
	pid := p.cmd.Process.Pid
	before, _ := readRecords(logPath, time.Time{})

	target := fmt.Sprintf("127.0.0.1:%d", base+60)
	ctx, cancel := context.WithTimeout(context.Background(), floodFor+30*time.Second)
	defer cancel()
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	wg.Go(func() { sent.Store(int64(flood(t, target, stop))) })
	readyz := watchReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", base+50), stop, &wg)

	setups := placeCallsUnderFlood(ctx, t, pbx, carrier, "sip:+1555123%04d@"+target)
	close(stop)
	wg.Wait()
	lasted := time.Since(began)

	if rate := float64(sent.Load()) / lasted.Seconds(); rate < 0.95*floodRate {
		t.Errorf("the flood reached only %.0f INVITEs/s", rate)
	}
	for i, d := range setups {
		if d > maxSetup {
			t.Errorf("legitimate call %d took %s to answer under the flood (limit %s)", i, d, maxSetup)
		}
	}
	if n := len(setups); n != legitCalls {
		t.Fatalf("%d of %d legitimate calls answered", n, legitCalls)
	}
	if bad := readyz.failures.Load(); bad > 0 || readyz.ok.Load() < 20 {
		t.Errorf("/readyz: %d answers, %d failed or slow (over 1 s)", readyz.ok.Load(), bad)
	}
	t.Logf("flood: %d INVITEs from %d sources in %s; setup times %v; /readyz answered %d times", sent.Load(), floodSources,
		lasted.Round(time.Millisecond), setups, readyz.ok.Load())

	rss := residentBytes(t, pid)
	// Stop parapet: the last period's summary is written at shutdown.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v", err)
	}
	checkFloodRecords(t, logPath, len(before), sent.Load(), lasted)
	if rss > maxRSS {
		t.Errorf("RSS after the flood %d MB, want under %d MB", rss>>20, maxRSS>>20)
	}
	t.Logf("RSS after the flood: %.1f MB", float64(rss)/(1<<20))
}

// floodSite is the flood test's configuration: the sim site with
// 127.0.0.1 as the zones' only peer, and the admin server on base+50.
func floodSite(t *testing.T, dir string, base int) string {
	t.Helper()
	return simSitePeers(t, dir, base, "127.0.0.1/32", `ca_file = "${state_dir}/certs/lab-ca.pem"`,
		fmt.Sprintf("admin { listen = \"127.0.0.1:%d\" }\n", base+50))
}

// flood sends INVITEs to target at floodRate from floodSources sockets
// bound to distinct addresses of 127.1.0.0/16 (several /24s), until stop
// is closed, and returns how many it sent.
func flood(t *testing.T, target string, stop <-chan struct{}) int {
	to, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Error(err)
		return 0
	}
	conns := make([]*net.UDPConn, 0, floodSources)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range floodSources {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 1, byte(i/200), byte(1+i%200))})
		if err != nil {
			t.Errorf("flood socket %d: %v", i, err)
			return 0
		}
		conns = append(conns, c)
	}
	// Paced by the clock, not by ticks (which a busy machine skips): by
	// now, floodRate times the seconds since the start.
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	start := time.Now()
	sent := 0
	for {
		select {
		case <-stop:
			return sent
		case <-tk.C:
		}
		for due := int(time.Since(start).Seconds() * floodRate); sent < due; {
			c := conns[sent%len(conns)]
			msg := strangerInvite(c.LocalAddr().String(), target, sent)
			if _, err := c.WriteToUDP(msg, to); err != nil {
				t.Errorf("flood: %v", err)
				return sent
			}
			sent++
		}
	}
}

// strangerInvite is INVITE number n from local, as a scanner-less
// stranger would send it.
func strangerInvite(local, target string, n int) []byte {
	id := "flood-" + strconv.Itoa(n)
	return []byte(strings.Join([]string{
		fmt.Sprintf("INVITE sip:+15550100@%s SIP/2.0", target),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s", local, id),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:caller@%s>;tag=%s", local, id),
		fmt.Sprintf("To: <sip:+15550100@%s>", target),
		"Call-ID: " + id,
		"CSeq: 1 INVITE",
		fmt.Sprintf("Contact: <sip:caller@%s>", local),
		"Content-Length: 0", "", ""}, "\r\n"))
}

type readyWatch struct{ ok, failures atomic.Int64 }

// watchReady asks url every 100 ms until stop is closed; an answer other
// than 200 within 1 s is a failure.
func watchReady(url string, stop <-chan struct{}, wg *sync.WaitGroup) *readyWatch {
	w := &readyWatch{}
	client := &http.Client{Timeout: time.Second}
	wg.Go(func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			res, err := client.Get(url)
			if err != nil || res.StatusCode != http.StatusOK {
				w.failures.Add(1)
			} else {
				w.ok.Add(1)
			}
			if res != nil {
				res.Body.Close()
			}
		}
	})
	return w
}

// placeCallsUnderFlood places legitCalls calls one after another over the
// flood, each hung up once answered, and returns their setup times (INVITE
// sent to 200 OK received).
func placeCallsUnderFlood(ctx context.Context, t *testing.T, pbx, carrier *sim.Peer, uriFormat string) []time.Duration {
	t.Helper()
	gap := floodFor / legitCalls
	var setups []time.Duration
	for i := range legitCalls {
		time.Sleep(gap)
		start := time.Now()
		caller, err := pbx.Call(ctx, fmt.Sprintf(uriFormat, i), sim.CallOptions{})
		if err != nil {
			t.Errorf("legitimate call %d under the flood: %v", i, err)
			continue
		}
		setups = append(setups, time.Since(start))
		select {
		case callee := <-carrier.Incoming():
			caller.Hangup(ctx)
			<-callee.Context().Done()
		case <-time.After(5 * time.Second):
			t.Errorf("legitimate call %d never reached the carrier", i)
			caller.Hangup(ctx)
		}
	}
	return setups
}

// checkFloodRecords reads what the flood added to the log: the legitimate
// calls, a bounded number of outsiders summaries that account for what was
// sent, and nothing else of the strangers.
func checkFloodRecords(t *testing.T, logPath string, from int, sent int64, lasted time.Duration) {
	t.Helper()
	recs, err := readRecords(logPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	added := recs[from:]
	var calls, summaries, others int
	var tally compliance.OutsiderTally
	for _, r := range added {
		switch {
		case r.Call != nil:
			calls++
			if r.Call.Disposition != compliance.DispositionAnswered {
				t.Errorf("call record %s: %s", r.Call.ID, r.Call.Disposition)
			}
		case r.Conn != nil && r.Conn.Event == compliance.EventOutsiders:
			summaries++
			tt := r.Conn.Tally
			tally.Refused += tt.Refused
			tally.OverBudget += tt.OverBudget
			tally.Dropped += tt.Dropped
		case r.Conn != nil:
			others++
			t.Errorf("connection event under the flood: %+v", r.Conn)
		}
	}
	// One summary per zone and 10 s period (the shutdown ends the last).
	if most := int(lasted/(10*time.Second)) + 2; calls != legitCalls || summaries < 1 || summaries > most {
		t.Errorf("the flood added %d call records and %d outsiders summaries (and %d records in all), want %d and 1 to %d",
			calls, summaries, len(added), legitCalls, most)
	}
	total := tally.Refused + tally.OverBudget + tally.Dropped
	// Loopback may drop datagrams when parapet's socket buffer is full:
	// at most a few percent.
	if int64(total) > sent || int64(total) < sent*95/100 {
		t.Errorf("the summaries count %d requests (%+v); %d were sent", total, tally, sent)
	}
	// The outsider budget (200/s, bursts of 200) bounds the 403s.
	if limit := uint64(200*lasted.Seconds() + 400); tally.Refused > limit || tally.OverBudget == 0 {
		t.Errorf("%d INVITEs answered (at most %d) and %d over budget", tally.Refused, limit, tally.OverBudget)
	}
	t.Logf("the flood added %d records: %d calls, %d summaries; tally refused %d, over budget %d, dropped %d",
		len(added), calls, summaries, tally.Refused, tally.OverBudget, tally.Dropped)
}

// residentBytes is the resident set size of process pid.
func residentBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
