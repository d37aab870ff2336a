package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/internal/sim"
)

// The embedded lab default listens on fixed loopback ports; the README's
// first command needs them free.
var labPorts = []string{"udp:5060", "tcp:5060", "tcp:5061", "udp:5062", "tcp:5062", "udp:5070", "tcp:9090"}

func requireLabPorts(t *testing.T) {
	t.Helper()
	for _, p := range labPorts {
		network, port, _ := strings.Cut(p, ":")
		addr := "127.0.0.1:" + port
		var err error
		if network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			t.Fatalf("the lab default needs %s free: %v", p, err)
		}
	}
}

// The README's first command: `parapet demo` on a fresh directory runs the
// lab on the embedded default and proves each promise with real packets.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary on the lab's fixed ports")
	}
	requireLabPorts(t)
	dir := t.TempDir()
	cmd := exec.Command(buildParapet(t), "demo")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, peers.Tail(stdout.String(), 60), stderr.String())
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("demo did not finish:\n%s", peers.Tail(stdout.String(), 60))
	}
	out := stdout.String()
	if n := strings.Count(out, "  ✓ "); n != 5 || strings.Contains(out, "✗") {
		t.Errorf("demo steps: %d passed, want 5 and no failure:\n%s", n, out)
	}
	for _, want := range []string{"refused: 488", "TLS 1.1 handshake", "hash chain intact"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if both := out + stderr.String(); strings.Contains(both, "inline:") || strings.Contains(both, "a=crypto") {
		t.Error("key material in the demo's output")
	}

	state := filepath.Join(dir, "parapet-state")
	logPath := filepath.Join(state, "compliance.jsonl")
	pub, err := compliance.LoadPublicKey(filepath.Join(state, compliance.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := compliance.Verify([]string{logPath}, compliance.VerifyOptions{Head: true, PublicKey: pub}); err != nil || !res.OK() || res.Checkpoints == 0 {
		t.Fatalf("demo log: %v %+v", err, res)
	}
	recs, err := readRecords(logPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var answered, rejected, refused, upgraded, dtls int
	for _, r := range recs {
		if r.Call != nil {
			// The PBX calls as "pbx", like its zone: the zone's name in a
			// reason must stay (it read zone "<number>").
			for _, d := range r.Call.Decisions {
				if strings.Contains(d.Reason, "<number>") || strings.Contains(d.Reason, "<user>") {
					t.Errorf("decision reason redacted parapet's own words: %q", d.Reason)
				}
			}
		}
		switch {
		case r.Conn != nil && r.Conn.Event == compliance.EventTLSRefused && r.Conn.ClientMaxVersion == "TLS1.1":
			refused++
		case r.Call != nil && r.Call.Disposition == compliance.DispositionAnswered:
			answered++
			for _, d := range r.Call.Decisions {
				if d.Rule == "media.upgrade" {
					upgraded++
				}
			}
			for _, l := range r.Call.Legs {
				if l.Media != nil && l.Media.KeyExchange == "dtls" && l.Media.SRTPSuite != "" {
					dtls++
				}
			}
		case r.Call != nil && r.Call.Disposition == compliance.DispositionRejected && r.Call.SIPStatus == 488:
			rejected++
		}
	}
	if answered != 3 || rejected != 1 || refused != 1 || upgraded != 1 || dtls != 1 {
		t.Errorf("records: %d answered (%d upgraded, %d DTLS-SRTP legs), %d rejected with 488, %d TLS 1.1 refusals; want 3 (1, 1), 1, 1",
			answered, upgraded, dtls, rejected, refused)
	}
}

// The other half of the first command: `parapet run` with no -c serves the
// embedded lab default — admin endpoints up, and a call from the PBX side
// reaches a carrier on 127.0.0.1:5062 over verified TLS with SRTP.
func TestRunEmbeddedDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary on the lab's fixed ports")
	}
	requireLabPorts(t)
	dir := t.TempDir()
	// The lab PKI parapet would create, made first so the simulated carrier
	// can present a certificate parapet's lab CA signed.
	carrier, pbx := simPeers(t, filepath.Join(dir, "parapet-state", "certs"), 5062, 5070)

	p := runParapetIn(t, dir)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://127.0.0.1:9090" + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", path, res.Status)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, callee := placeCall(ctx, t, pbx, carrier, "sip:+15551230000@127.0.0.1:5060")
	// Real packets both ways through the relay: plain RTP from the PBX,
	// SRTP on the carrier side, every payload checked at the far end.
	if err := sim.Prime(ctx, caller, callee); err != nil {
		t.Fatal(err)
	}
	a0, b0 := caller.Stats().Intact, callee.Stats().Intact
	errc := make(chan error, 2)
	go func() { errc <- caller.Send(ctx, 1000, 20, 5*time.Millisecond) }()
	go func() { errc <- callee.Send(ctx, 5000, 20, 5*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := callee.WaitIntact(ctx, b0+20); err != nil {
		t.Fatalf("carrier side: %v %+v", err, callee.Stats())
	}
	if err := caller.WaitIntact(ctx, a0+20); err != nil {
		t.Fatalf("PBX side: %v %+v", err, caller.Stats())
	}
	if ok, suite := callee.SRTP(); !ok || suite == "" {
		t.Errorf("carrier side media not SRTP (%q)", suite)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-callee.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the carrier leg got no BYE")
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v", err)
	}
	recs, err := readRecords(filepath.Join(dir, "parapet-state", "compliance.jsonl"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	calls := onlyCalls(recs)
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered {
		t.Fatalf("want one answered call record, got %+v", calls)
	}
	var b *compliance.Leg
	for i := range calls[0].Legs {
		if calls[0].Legs[i].Role == compliance.RoleB {
			b = &calls[0].Legs[i]
		}
	}
	if b == nil || b.TLS == nil || b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified || b.Media == nil || b.Media.SRTPSuite == "" {
		t.Errorf("carrier leg: %+v", b)
	}
}
