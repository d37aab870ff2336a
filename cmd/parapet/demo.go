package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/configs"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// demoPackets is one second of 20 ms audio each way.
const demoPackets = 50

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr, "Usage: parapet demo [-v]\n\nRun the lab in one process on the embedded default: parapet, a simulated\nPBX (UDP, plain RTP) and a simulated carrier (TLS; SDES-SRTP or DTLS-SRTP).\nIt places an outbound call (upgraded to SRTP), an inbound call with SDES\nand one with DTLS-SRTP, a carrier offer without SRTP (refused, 488) and a\nTLS 1.1 handshake (refused), then prints each record, a summary, and\nverifies the compliance log. It binds loopback ports 5060-5062, 5070 and 9090.")
	verbose := fs.Bool("v", false, "log parapet's activity to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	log, _ := newLogger(stderr, "text", level)
	b2bua.SetProcessLogger(log)
	cfg, err := loadConfig("", io.Discard)
	if err != nil {
		return err
	}
	out := &demoOut{w: stdout}
	began := time.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	in, err := start(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("start parapet (are ports 5060, 5061, 9090 free?): %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			in.stop(context.Background())
		}
	}()
	pbxAddr := in.srv.Addrs("pbx")[policy.TransportUDP]
	carrierAddr := in.srv.Addrs("carrier")[policy.TransportTLS]
	out.say("parapet %s is up on the embedded lab default (policy %s)", parapetVersion(), in.policy.Hash)
	out.say("  pbx zone     udp://%s   (plain RTP allowed)", pbxAddr)
	out.say("  carrier zone tls://%s   (TLS 1.2+, SRTP required)", carrierAddr)

	peers, err := startDemoPeers(cfg)
	if err != nil {
		return err
	}
	defer peers.close()
	out.say("  simulated PBX on udp://%s, simulated carrier on tls://%s\n", peers.pbx.Addr(), peers.carrier.Addr())

	results := []string{}
	step := func(name string, f func() (string, error)) error {
		out.say("▶ %s", name)
		res, err := f()
		if err != nil {
			out.say("  ✗ %v\n", err)
			return fmt.Errorf("%s: %w", name, err)
		}
		out.say("  ✓ %s\n", res)
		results = append(results, fmt.Sprintf("%-44s %s", name, res))
		return nil
	}
	if err := step("outbound call: PBX (UDP/RTP) → carrier", func() (string, error) {
		caller, err := peers.pbx.Call(ctx, fmt.Sprintf("sip:+15551230000@%s", pbxAddr), sim.CallOptions{})
		if err != nil {
			return "", err
		}
		return talk(ctx, caller, peers.carrier, true)
	}); err != nil {
		return err
	}
	if err := step("inbound call: carrier (TLS/SRTP) → PBX", func() (string, error) {
		caller, err := peers.carrier.Call(ctx, fmt.Sprintf("sip:+15557650000@%s;transport=tls", carrierAddr),
			sim.CallOptions{SRTP: true, Suites: []string{"AES_CM_128_HMAC_SHA1_80"}})
		if err != nil {
			return "", err
		}
		return talk(ctx, caller, peers.pbx, false)
	}); err != nil {
		return err
	}
	if err := step("inbound call: carrier (TLS/DTLS-SRTP) → PBX", func() (string, error) {
		caller, err := peers.carrier.Call(ctx, fmt.Sprintf("sip:+15557650002@%s;transport=tls", carrierAddr),
			sim.CallOptions{DTLS: true})
		if err != nil {
			return "", err
		}
		return talk(ctx, caller, peers.pbx, true)
	}); err != nil {
		return err
	}
	if err := step("carrier offer without SRTP", func() (string, error) {
		_, err := peers.carrier.Call(ctx, fmt.Sprintf("sip:+15557650001@%s;transport=tls", carrierAddr), sim.CallOptions{})
		var rej *sim.Rejected
		if errors.As(err, &rej) && rej.Status == 488 {
			return fmt.Sprintf("refused: %d %s", rej.Status, rej.Reason), nil
		}
		return "", fmt.Errorf("want 488, got %w", err)
	}); err != nil {
		return err
	}
	if err := step("TLS 1.1 handshake to the carrier zone", func() (string, error) {
		c, err := tls.Dial("tcp", carrierAddr.String(), &tls.Config{MinVersion: tls.VersionTLS10,
			MaxVersion: tls.VersionTLS11, ServerName: "parapet.lab", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			return "", errors.New("TLS 1.1 was accepted")
		}
		return "refused: " + err.Error(), nil
	}); err != nil {
		return err
	}

	// Give the refused handshake's record a moment, then stop cleanly.
	time.Sleep(200 * time.Millisecond)
	stopped = true
	if err := in.stop(ctx); err != nil {
		return err
	}

	recs, err := readRecords(cfg.Compliance.Log, began)
	if err != nil {
		return err
	}
	out.say("── compliance records written by this demo (%s) ──", cfg.Compliance.Log)
	for _, r := range recs {
		b, _ := json.MarshalIndent(r, "", "  ")
		out.say("%s", b)
	}
	out.say("\n── summary ──")
	for _, r := range results {
		out.say("  %s", r)
	}
	out.say("")
	for _, r := range recs {
		if line := summarize(r); line != "" {
			out.say("  %s", line)
		}
	}
	pubFile := filepath.Join(cfg.StateDir, compliance.PublicKeyFile)
	pub, err := compliance.LoadPublicKey(pubFile)
	if err != nil {
		return err
	}
	res, err := compliance.Verify([]string{cfg.Compliance.Log}, compliance.VerifyOptions{Head: true, PublicKey: pub})
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("compliance log verification failed: %s", res.Problem)
	}
	out.say("\n  compliance log: %d records, hash chain intact, %d signed %s (parapet verify -log %s -key %s)",
		res.Records, res.Checkpoints, plural(res.Checkpoints, "checkpoint"), cfg.Compliance.Log, pubFile)
	return nil
}

type demoOut struct{ w io.Writer }

func (o *demoOut) say(format string, args ...any) { fmt.Fprintf(o.w, format+"\n", args...) }

type demoPeers struct{ pbx, carrier *sim.Peer }

func (d *demoPeers) close() {
	if d.pbx != nil {
		d.pbx.Close()
	}
	if d.carrier != nil {
		d.carrier.Close()
	}
}

// startDemoPeers starts the simulated PBX and carrier where the lab
// default's routes send calls.
func startDemoPeers(cfg *configs.Config) (*demoPeers, error) {
	var pbxAt, carrierAt netip.AddrPort
	for _, r := range cfg.Routes {
		ip, err := netip.ParseAddr(r.Target.Host)
		if err != nil {
			continue
		}
		a := netip.AddrPortFrom(ip, uint16(r.Target.Port))
		switch r.To {
		case "pbx":
			pbxAt = a
		case "carrier":
			carrierAt = a
		}
	}
	if !pbxAt.IsValid() || !carrierAt.IsValid() {
		return nil, errors.New("the lab default has no routes to a PBX and a carrier")
	}
	pki, err := certs.EnsureLab(filepath.Join(cfg.StateDir, "certs"))
	if err != nil {
		return nil, err
	}
	zt, err := certs.NewZone(certs.Options{Zone: "lab-carrier", MinVersion: tls.VersionTLS12, CertFile: pki.PeerCertFile,
		KeyFile: pki.PeerKeyFile, CAFile: pki.CAFile, VerifyPeer: true, ClientAuth: "request"})
	if err != nil {
		return nil, err
	}
	d := &demoPeers{}
	if d.carrier, err = sim.New(sim.Config{Name: "carrier", Transport: "tls", Listen: carrierAt,
		ServerTLS: zt.ServerConfig(), ClientTLS: zt.ClientConfig()}); err != nil {
		return nil, fmt.Errorf("simulated carrier on %s: %w", carrierAt, err)
	}
	if d.pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: pbxAt}); err != nil {
		d.close()
		return nil, fmt.Errorf("simulated PBX on %s: %w", pbxAt, err)
	}
	return d, nil
}

// talk exchanges a second of audio both ways, checks it, and hangs up.
func talk(ctx context.Context, caller *sim.Session, calleePeer *sim.Peer, callerHangs bool) (string, error) {
	var callee *sim.Session
	select {
	case callee = <-calleePeer.Incoming():
	case <-time.After(10 * time.Second):
		return "", errors.New("the callee never got the call")
	}
	// Until a DTLS-SRTP handshake has ended, media is dropped, as for any
	// phone: start counting once a packet has made it each way.
	if err := sim.Prime(ctx, caller, callee); err != nil {
		return "", err
	}
	baseCaller, baseCallee := caller.Stats().Intact, callee.Stats().Intact
	errc := make(chan error, 2)
	// Sequence numbers after Prime's (SRTP refuses what looks replayed).
	go func() { errc <- caller.Send(ctx, 1000, demoPackets, 20*time.Millisecond) }()
	go func() { errc <- callee.Send(ctx, 5000, demoPackets, 20*time.Millisecond) }()
	for range 2 {
		if err := <-errc; err != nil {
			return "", err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := callee.WaitIntact(wctx, baseCallee+demoPackets); err != nil {
		return "", fmt.Errorf("callee got %+v", callee.Stats())
	}
	if err := caller.WaitIntact(wctx, baseCaller+demoPackets); err != nil {
		return "", fmt.Errorf("caller got %+v", caller.Stats())
	}
	hang := caller
	if !callerHangs {
		hang = callee
	}
	if err := hang.Hangup(ctx); err != nil {
		return "", err
	}
	describe := func(s *sim.Session) string {
		if ok, suite := s.SRTP(); ok {
			return "SRTP " + suite
		}
		return "plain RTP"
	}
	secure := caller
	if ok, _ := callee.SRTP(); ok {
		secure = callee
	}
	return fmt.Sprintf("answered; %d/%d packets intact each way; caller %s, callee %s; plaintext payloads seen on the SRTP side: %d",
		callee.Stats().Intact-baseCallee, demoPackets, describe(caller), describe(callee), secure.Stats().PlainOnWire), nil
}

// readRecords reads the log's records written since t.
func readRecords(path string, since time.Time) ([]*compliance.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*compliance.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r compliance.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if !r.Time.Before(since) {
			out = append(out, &r)
		}
	}
	return out, sc.Err()
}

// summarize is one line per call or connection event.
func summarize(r *compliance.Record) string {
	switch {
	case r.Call != nil:
		c := r.Call
		var legs []string
		for _, l := range c.Legs {
			s := fmt.Sprintf("%s:%s/%s", l.Role, l.Zone, l.Transport)
			if l.TLS != nil {
				s += " " + l.TLS.Version
			}
			if l.Media != nil {
				if l.Media.SRTPSuite != "" {
					s += " SRTP " + l.Media.SRTPSuite + " (" + l.Media.KeyExchange + ")"
				} else {
					s += " RTP"
				}
			}
			legs = append(legs, s)
		}
		verdicts := []string{}
		for _, d := range c.Decisions {
			if d.Verdict != policy.VerdictAllowed {
				verdicts = append(verdicts, fmt.Sprintf("%s (%s)", d.Verdict, d.Rule))
			}
		}
		return fmt.Sprintf("call %s: %s %d  %s  %s", c.ID[:8], c.Disposition, c.SIPStatus,
			strings.Join(legs, " → "), strings.Join(verdicts, ", "))
	case r.Conn != nil:
		e := r.Conn
		return fmt.Sprintf("event %s: zone %s from %s, client offered at most %s", e.Event, e.Zone, e.Remote, e.ClientMaxVersion)
	}
	return ""
}
