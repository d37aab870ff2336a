package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/policy"
)

// BenchmarkReportLog builds the auditor's pack (parapet report's work:
// group, read and aggregate every record, then verify the chain) from a
// synthetic log of 100,000 and of 1,000,000 records, and reports the peak
// Go heap while it runs: it must stay flat as the log grows, since records
// stream one line at a time and the tables the report keeps are bounded.
//
// The log is written once with the real Writer (every record fsync'd) and
// kept for later runs: in $PARAPET_BENCH_DIR, else /dev/shm where fsync is
// cheap, else the temporary directory. The 1,000,000-record log is about
// 2.6 GB and takes about a minute to write on tmpfs. Run with -benchtime 1x.
func BenchmarkReportLog(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			path := syntheticLog(b, n)
			st, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var peak uint64
			for i := 0; i < b.N; i++ {
				runtime.GC()
				stop := watchHeap(&peak)
				r, err := report.FromLogs([]string{path}, report.LogOptions{})
				stop()
				if err != nil {
					b.Fatal(err)
				}
				if v := r.Sources[0].Verification; !v.Intact || v.Records != n+2 {
					b.Fatalf("verification %+v, want %d intact records", v, n+2)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Size())*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// watchHeap samples the live heap every 5 ms into peak until stopped.
func watchHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var p atomic.Uint64
	p.Store(*peak)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.Load() {
				p.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait(); *peak = p.Load() }
}

// syntheticLog returns a log of n call and connection records, between the
// writer's opened and closed events (n+2 records), written once.
func syntheticLog(b *testing.B, n int) string {
	b.Helper()
	dir := os.Getenv("PARAPET_BENCH_DIR")
	if dir == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			dir = "/dev/shm/parapet-bench"
		} else {
			dir = filepath.Join(os.TempDir(), "parapet-bench")
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("report-%d", n), "compliance.jsonl")
	done := path + ".complete"
	if _, err := os.Stat(done); err == nil {
		return path
	}
	os.RemoveAll(filepath.Dir(path))
	clock := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w, err := compliance.OpenWriter(path, compliance.WriterOptions{Version: "bench",
		Now: func() time.Time { clock = clock.Add(50 * time.Millisecond); return clock }})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.Append(syntheticRecord(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

var (
	benchRequire = &policy.Zone{Name: "carrier", Signaling: policy.RequirementRequire, MinTLS: policy.VersionTLS12,
		VerifyPeer: true, SRTP: policy.RequirementRequire}
	benchLAN = &policy.Zone{Name: "lan", SRTP: policy.RequirementAllow}
)

// syntheticRecord is record i of the synthetic log: calls from 20,000
// phones (so the inventory's table fills and stays capped), a TLS 1.1
// refusal every 10th record, 500 carrier certificates.
func syntheticRecord(i int) *compliance.Record {
	if i%10 == 9 {
		return &compliance.Record{Type: compliance.TypeConnection, Conn: &compliance.ConnEvent{Event: compliance.EventTLSRefused,
			Zone: "carrier", Transport: "tls", Remote: fmt.Sprintf("198.51.%d.%d:40000", i/256%256, i%256),
			ClientMaxVersion: "TLS1.1", Error: "tls: client offered only unsupported versions: [302 301]"}}
	}
	phone := fmt.Sprintf("10.%d.%d.%d:5060", i/65536%256, i/256%256, i%20000%256)
	aOut := policy.LegOutcome{Signaling: policy.SignalingFacts{Transport: policy.TransportUDP}, SourceAdmitted: true, MediaFlowed: true}
	bOut := policy.LegOutcome{Signaling: policy.SignalingFacts{Transport: policy.TransportTLS, TLS: &policy.TLSFacts{Version: policy.VersionTLS13,
		CipherSuite: "TLS_AES_128_GCM_SHA256", PeerCert: &policy.CertFacts{Subject: "CN=trunk", Verified: true}}},
		SRTP: true, Suite: policy.SuiteAESCM128HMACSHA1_80, KeyExchange: policy.KeyExchangeSDES, Originated: true, MediaFlowed: true}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 50 * time.Millisecond)
	return &compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{
		ID: fmt.Sprintf("call-%d", i), Route: "outbound", Caller: "hmac-sha256:5f1d3a0c9e8b7a6d5c4b3a291807f6e5",
		Callee: "hmac-sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f9", Pseudonymized: true, Start: start, End: start.Add(time.Minute),
		Disposition: compliance.DispositionAnswered, SIPStatus: 200, EndReason: "bye from a", PolicyHash: "sha256:bench",
		Legs: []compliance.Leg{
			{Role: compliance.RoleA, Zone: "lan", Transport: "udp", Remote: phone, UserAgent: fmt.Sprintf("Yealink SIP-T46S 66.84.0.%d", i%7),
				Media:    &compliance.LegMedia{Profile: "RTP/AVP", KeyExchange: "none", Codec: "PCMU/8000", Streams: 1, PacketsIn: 3000, PacketsOut: 3000},
				Controls: policy.LegFindings(benchLAN, aOut)},
			{Role: compliance.RoleB, Zone: "carrier", Transport: "tls", Remote: "203.0.113.10:5061",
				TLS: &compliance.TLSInfo{Version: "TLS1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", PeerCert: &compliance.CertInfo{
					Subject: "CN=trunk", SHA256: fmt.Sprintf("%064d", i%500), NotAfter: start.Add(90 * 24 * time.Hour), Verified: true}},
				Media: &compliance.LegMedia{Profile: "RTP/SAVP", KeyExchange: "sdes", SRTPSuite: "AES_CM_128_HMAC_SHA1_80", Codec: "PCMU/8000",
					Streams: 1, PacketsIn: 3000, PacketsOut: 3000},
				Controls: policy.LegFindings(benchRequire, bOut)},
		},
		Decisions: []policy.Decision{{Stage: policy.StageOffer, Zone: "lan", Verdict: policy.VerdictUpgraded, Rule: policy.RuleUpgrade,
			Reason: "plain RTP in, SRTP out"}},
	}}
}
