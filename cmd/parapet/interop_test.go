package main

// Interop tests: real third-party SIP clients (baresip, linphone, SIPp) call
// through parapet on loopback, and tshark checks each leg on the wire. They
// need baresip, linphonec, sipp, dumpcap and tshark (`make peers` installs
// them); a missing tool fails the test. Only `go test -short` leaves them
// out, on purpose.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// requirePeers fails the test when a tool is missing; only -short leaves
// the interop tests out.
func requirePeers(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: interop tests with real peers are left out")
	}
	peers.Require(t, tools...)
}

// portBlock finds 100 consecutive ports free for both UDP and TCP, in
// 20000-29999: below Linux's ephemeral range (32768 up), where an outgoing
// connection could take a port after it was checked, and clear of the
// media ports the b2bua package's tests use (30000-39999) and of the audit
// package's captures (10000-19999) while the packages' tests run at once.
func portBlock(t *testing.T) int {
	t.Helper()
	return peers.PortBlock(t, 20000, 30000, 100)
}

// ---- parapet under test ------------------------------------------------------

type parapetUnderTest struct {
	dir, logPath string
	in           *instance
	pki          *certs.LabPKI
}

// startParapet runs parapet from an HCL config: a "pbx" zone on UDP and a
// "carrier" zone on TLS (lab certificate), routes to the given targets.
func startParapet(t *testing.T, base int, outboundTarget, inboundTarget string) *parapetUnderTest {
	t.Helper()
	return startParapetRoutes(t, base, routesTo(outboundTarget, inboundTarget))
}

// routesTo is an "outbound" route from pbx to carrier and an "inbound" one
// back, to the given targets.
func routesTo(outboundTarget, inboundTarget string) string {
	return fmt.Sprintf(`
route "outbound" {
  from   = "pbx"
  to     = "carrier"
  target = %q
}
route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = %q
}
`, outboundTarget, inboundTarget)
}

// startParapetRoutes runs parapet with the two zones and the given routes.
func startParapetRoutes(t *testing.T, base int, routes string) *parapetUnderTest {
	t.Helper()
	return startParapetMedia(t, base, `srtp = "allow"`, `srtp = "require"`, routes)
}

// startParapetMedia also sets the media blocks of the pbx and carrier zones.
func startParapetMedia(t *testing.T, base int, pbxMedia, carrierMedia, routes string) *parapetUnderTest {
	t.Helper()
	return startParapetZones(t, base, fmt.Sprintf(`"udp://127.0.0.1:%d"`, base+60), pbxMedia, carrierMedia, routes)
}

// startParapetZones also sets the pbx zone's listeners (an HCL list's
// elements), and pbxExtra are more lines of the pbx zone.
func startParapetZones(t *testing.T, base int, pbxListen, pbxMedia, carrierMedia, routes string, pbxExtra ...string) *parapetUnderTest {
	t.Helper()
	pbxTLS := strings.Join(pbxExtra, "\n  ")
	if strings.Contains(pbxListen, "tls://") {
		pbxTLS += "\n  " + `tls { ca_file = "${state_dir}/certs/lab-ca.pem" }`
	}
	dir := t.TempDir()
	pki, err := certs.EnsureLab(filepath.Join(dir, "state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = [%s]
  peers  = ["127.0.0.0/8"]
  %s
  media {
    %s
  }
}
zone "carrier" {
  listen = ["tls://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  tls {
    ca_file     = "${state_dir}/certs/lab-ca.pem"
    client_auth = "request"
  }
  media {
    %s
  }
}
%s
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
  timeout = "10s"
}
`, pbxListen, pbxTLS, pbxMedia, base+61, carrierMedia, routes, base+70, base+99)
	return startParapetConfig(t, dir, pki, conf)
}

// startParapetConfig runs parapet in dir from the config text conf, whose
// state_dir is "state" (where pki is).
func startParapetConfig(t *testing.T, dir string, pki *certs.LabPKI, conf string) *parapetUnderTest {
	t.Helper()
	path := filepath.Join(dir, "parapet.hcl")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var diag bytes.Buffer
	cfg, err := loadConfig(path, &diag)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, diag.String())
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("PARAPET_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	in, err := start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	p := &parapetUnderTest{dir: dir, logPath: cfg.Compliance.Log, in: in, pki: pki}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *parapetUnderTest) stop(t *testing.T) {
	if p.in == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.in.stop(ctx); err != nil {
		t.Errorf("stop parapet: %v", err)
	}
	p.in = nil
}

// records stops parapet and returns its compliance records, after checking
// the chain.
func (p *parapetUnderTest) records(t *testing.T) []*compliance.Record {
	t.Helper()
	// Let calls that are ending (a BYE relayed, its 200 awaited) finish
	// before stopping, so none is recorded as ended by shutdown.
	poll(10*time.Second, func() bool { return p.in == nil || p.in.srv.Stats().CallsActive == 0 })
	p.stop(t)
	res, err := compliance.Verify([]string{p.logPath}, compliance.VerifyOptions{Head: true})
	if err != nil || !res.OK() {
		t.Fatalf("compliance log does not verify: %v %+v", err, res)
	}
	recs, err := readRecords(p.logPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func onlyCalls(recs []*compliance.Record) []*compliance.Call {
	var out []*compliance.Call
	for _, r := range recs {
		if r.Call != nil {
			out = append(out, r.Call)
		}
	}
	return out
}

// ---- capture -----------------------------------------------------------------

// capture is dumpcap on lo recording a test's port block (base to base+99)
// into path, a pcapng file; its methods read it with tshark.
type capture struct {
	*peers.Capture
	path string
}

func startCapture(t *testing.T, base int) *capture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cap.pcapng")
	return &capture{Capture: peers.StartCapture(t, fmt.Sprintf("portrange %d-%d", base, base+99), path), path: path}
}

func (c *capture) tshark(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("tshark", append([]string{"-r", c.path}, args...)...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// sipLegTLS checks a TCP port carried only TLS >= 1.2 and no cleartext SIP.
func (c *capture) sipLegTLS(t *testing.T, port int) string {
	t.Helper()
	clear := c.tshark(t, "-Y", fmt.Sprintf(`tcp.port == %d && (frame contains "INVITE sip:" || frame contains "SIP/2.0 " || frame contains "a=crypto")`, port))
	if len(clear) > 0 {
		t.Errorf("port %d: %d frames of cleartext SIP on a TLS leg", port, len(clear))
	}
	hello := c.tshark(t, "-d", fmt.Sprintf("tcp.port==%d,tls", port), "-Y", "tls.handshake.type == 2",
		"-T", "fields", "-e", "tls.handshake.extensions.supported_version", "-e", "tls.handshake.version")
	if len(hello) == 0 {
		t.Fatalf("port %d: no TLS ServerHello on the wire", port)
	}
	f := strings.Fields(hello[0])
	v, _ := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16)
	if v < 0x0303 {
		t.Errorf("port %d: TLS version 0x%04x below 1.2", port, v)
	}
	return f[0]
}

// dtlsVersions returns the record versions of the frames carrying a DTLS
// ServerHello on a UDP port range (0xfefd is DTLS 1.2).
func (c *capture) dtlsVersions(t *testing.T, lo, hi int) []string {
	t.Helper()
	var out []string
	for _, l := range c.tshark(t, "-Y", fmt.Sprintf("udp.port in {%d..%d} && dtls.handshake.type == 2", lo, hi),
		"-T", "fields", "-e", "dtls.record.version") {
		out = append(out, strings.Split(strings.TrimSpace(l), ",")...)
	}
	return out
}

// sipLegClear checks that SIP on a UDP port was in clear (the internal leg).
func (c *capture) sipLegClear(t *testing.T, port int) {
	t.Helper()
	if n := len(c.tshark(t, "-Y", fmt.Sprintf(`udp.port == %d && frame contains "SIP/2.0"`, port))); n == 0 {
		t.Errorf("udp port %d: no cleartext SIP seen on the internal leg", port)
	}
}

type mediaVerdict struct {
	packets, unique, frameSized int
	// other counts UDP datagrams on the ports that are not RTP (RTCP,
	// DTLS, STUN), for the failure message.
	other int
}

// media reads the RTP packets to and from a port range. It parses the raw
// UDP payloads itself (RFC 7983 demultiplexing, RFC 5761 RTP/RTCP split)
// rather than trusting Wireshark's RTP heuristic, which can give a whole
// conversation to another dissector when its first datagram is not RTP.
func (c *capture) media(t *testing.T, lo, hi int) mediaVerdict {
	t.Helper()
	lines := c.tshark(t, "-Y", fmt.Sprintf("udp.srcport in {%d..%d} || udp.dstport in {%d..%d}", lo, hi, lo, hi),
		"-T", "fields", "-e", "udp.payload")
	v := mediaVerdict{}
	seen := map[string]bool{}
	for _, l := range lines {
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(l), ":", ""))
		// RTP and RTCP start with 128..191; RTCP packet types 192..223
		// sit where RTP's marker bit and payload type would be.
		if err != nil || len(b) < 12 || b[0] < 128 || b[0] > 191 || (b[1] >= 192 && b[1] <= 223) {
			v.other++
			continue
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(b) != nil || len(pkt.Payload) == 0 {
			v.other++
			continue
		}
		p := string(pkt.Payload)
		v.packets++
		if !seen[p] {
			seen[p] = true
			v.unique++
		}
		if len(pkt.Payload) == 160 {
			v.frameSized++
		}
	}
	return v
}

// wantMedia checks the media of a baresip call on the wire: SRTP on the
// phone whose RTP ports start at srtpPorts, the tone in clear on the one
// whose ports start at plainPorts (20 ports each), a call's worth each.
func (c *capture) wantMedia(t *testing.T, srtpPorts, plainPorts int) {
	t.Helper()
	for _, leg := range []struct {
		name  string
		first int
		ok    func(mediaVerdict) bool
	}{{"SRTP", srtpPorts, mediaVerdict.srtp}, {"plain RTP", plainPorts, mediaVerdict.plain}} {
		v := c.media(t, leg.first, leg.first+19)
		if !leg.ok(v) || v.packets < callSeconds*50 {
			t.Errorf("the leg that should carry %s does not look like it: %+v", leg.name, v)
		} else {
			t.Logf("%s leg media: %+v", leg.name, v)
		}
	}
}

// srtp reports whether the packets look encrypted: (nearly) every payload
// differs and few have the bare 160-byte G.711 frame size (an SRTP payload
// carries its authentication tag after the ciphertext).
func (v mediaVerdict) srtp() bool {
	return v.packets > 0 && v.unique*100 >= v.packets*95 && v.frameSized*10 < v.packets
}

// plain reports whether the packets look like the test tone in clear: frame
// sized and repeating.
func (v mediaVerdict) plain() bool {
	return v.packets > 0 && v.frameSized*10 >= v.packets*9 && v.unique*2 < v.packets
}
