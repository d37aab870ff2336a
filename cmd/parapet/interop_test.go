package main

// Interop tests: real third-party SIP clients (baresip, linphone, SIPp) call
// through parapet on loopback, and tshark checks each leg on the wire. They
// need baresip, linphonec, sipp, dumpcap and tshark (`make peers` installs
// them); a missing tool fails the test. Only `go test -short` leaves them
// out, on purpose.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/pion/rtp"
)

func requirePeers(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: interop tests with real peers are left out")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make peers` (apt-get install baresip-core linphone-cli sip-tester tshark socat poppler-utils)", tool)
		}
	}
}

// portBlock finds 100 consecutive ports free for both UDP and TCP, in
// 20000-29999: below Linux's ephemeral range (32768 up), where an outgoing
// connection could take a port after it was checked, and clear of the
// media ports the b2bua package's tests use (30000-39999) while both
// packages' tests run at once.
func portBlock(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(100)*100
		free := true
		for p := base; p < base+100 && free; p++ {
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				free = false
				break
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			u.Close()
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free port block")
	return 0
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
// elements).
func startParapetZones(t *testing.T, base int, pbxListen, pbxMedia, carrierMedia, routes string) *parapetUnderTest {
	t.Helper()
	pbxTLS := ""
	if strings.Contains(pbxListen, "tls://") {
		pbxTLS = `tls { ca_file = "${state_dir}/certs/lab-ca.pem" }`
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
	deadline := time.Now().Add(10 * time.Second)
	for p.in != nil && p.in.srv.Stats().CallsActive > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
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

// ---- baresip -----------------------------------------------------------------

type baresipConf struct {
	name      string
	sipPort   int // TLS listens on sipPort+1
	ctrlPort  int
	rtpLo     int
	rtpHi     int
	transport string // udp | tls
	menc      string // "" (plain), srtp-mand, ...
	tone      int
	tlsBundle string // cert+key PEM
	openssl   string // OPENSSL_CONF for this process
}

type baresip struct {
	conf   baresipConf
	dir    string
	cmd    *exec.Cmd
	ctrl   net.Conn
	events chan map[string]any
	log    bytes.Buffer
}

func moduleDir(t *testing.T) string {
	t.Helper()
	for _, pat := range []string{"/usr/lib/*/baresip/modules/g711.so", "/usr/lib/baresip/modules/g711.so", "/usr/local/lib/baresip/modules/g711.so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Fatal("baresip modules not found (is baresip-core installed?)")
	return ""
}

func startBaresip(t *testing.T, c baresipConf) *baresip {
	t.Helper()
	dir := filepath.Join(t.TempDir(), c.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "poll_method epoll\nsip_listen 127.0.0.1:%d\n", c.sipPort)
	if c.tlsBundle != "" {
		fmt.Fprintf(&cfg, "sip_certificate %s\n", c.tlsBundle)
	}
	fmt.Fprintf(&cfg, `call_local_timeout 15
call_max_calls 2
audio_player aubridge,sink
audio_alert aubridge,sink
audio_source ausine,%d
ausrc_srate 48000
ausrc_channels 2
audio_level no
audio_buffer 20-160
rtp_ports %d-%d
rtcp_mux no
jitter_buffer_delay 5-10
rtp_stats yes
net_interface 127.0.0.1
dns_server 127.0.0.1:53
module_path %s
module g711.so
module aubridge.so
module ausine.so
module sndfile.so
module srtp.so
module dtls_srtp.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
snd_path %s
`, c.tone, c.rtpLo, c.rtpHi, moduleDir(t), c.ctrlPort, dir)
	os.WriteFile(filepath.Join(dir, "config"), []byte(cfg.String()), 0o600)
	acc := fmt.Sprintf("<sip:%s@127.0.0.1;transport=%s>;regint=0;answermode=auto;audio_codecs=pcmu;ptime=20", c.name, c.transport)
	if c.menc != "" {
		acc += ";mediaenc=" + c.menc
	}
	os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "contacts"), nil, 0o600)

	b := &baresip{conf: c, dir: dir, events: make(chan map[string]any, 64)}
	b.cmd = exec.Command("baresip", "-f", dir, "-t", "60")
	b.cmd.Stdin = nil
	b.cmd.Stdout, b.cmd.Stderr = &b.log, &b.log
	b.cmd.Env = os.Environ()
	if c.openssl != "" {
		b.cmd.Env = append(b.cmd.Env, "OPENSSL_CONF="+c.openssl)
	}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", c.name, tail(b.log.String(), 40))
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.ctrlPort))
		if err == nil {
			b.ctrl = conn
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s", c.name, err, b.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	go b.readEvents()
	return b
}

func tail(s string, n int) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n")
	var keep []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" && !strings.Contains(l, "bit/s") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// readEvents decodes ctrl_tcp's netstrings ("LEN:JSON,").
func (b *baresip) readEvents() {
	r := bufio.NewReader(b.ctrl)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			close(b.events)
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, ":"))
		if err != nil || n < 0 || n > 1<<20 {
			close(b.events)
			return
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			close(b.events)
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:n], &m) == nil {
			b.events <- m
		}
	}
}

func (b *baresip) command(cmd, params string) error {
	m := map[string]string{"command": cmd, "params": params, "token": cmd}
	j, _ := json.Marshal(m)
	_, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(j), j)
	return err
}

// waitEvent waits for an event of one of the given types and returns it.
func (b *baresip) waitEvent(timeout time.Duration, types ...string) (map[string]any, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-b.events:
			if !ok {
				return nil, fmt.Errorf("%s: control connection closed", b.conf.name)
			}
			if ty, _ := ev["type"].(string); ty != "" {
				for _, want := range types {
					if ty == want {
						return ev, nil
					}
				}
			}
		case <-deadline:
			return nil, fmt.Errorf("%s: no %v within %s", b.conf.name, types, timeout)
		}
	}
}

// ---- capture -----------------------------------------------------------------

type capture struct {
	path string
	cmd  *exec.Cmd
}

func startCapture(t *testing.T, base int) *capture {
	t.Helper()
	c := &capture{path: filepath.Join(t.TempDir(), "cap.pcapng")}
	c.cmd = exec.Command("dumpcap", "-q", "-i", "lo", "-f", fmt.Sprintf("portrange %d-%d", base, base+99),
		"-w", c.path, "-a", "duration:120")
	var errb bytes.Buffer
	c.cmd.Stderr = &errb
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	// dumpcap needs a moment to open the interface.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(c.path); err == nil && st.Size() > 0 {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dumpcap did not start: %s", errb.String())
	return nil
}

// stop ends the capture; dumpcap loses the last packets when killed at once.
func (c *capture) stop() {
	time.Sleep(1500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGINT)
	c.cmd.Wait()
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
