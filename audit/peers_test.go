package audit

// Real captures for the tests: two baresip instances calling each other on
// loopback, recorded by dumpcap. The tools must be installed: a missing one
// fails the test (it does not skip).

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needTool fails the test when a tool is missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test and is not installed: %v", name, err)
	}
	return p
}

// portBlock returns the first of n free consecutive ports (UDP and TCP),
// chosen at random so parallel runs do not collide, in 10000-19999: the
// captures filter on the block, so it must hold no port another package's
// tests use at the same time (cmd's 20000-29999, b2bua's and media's
// 30000-45999) nor any ephemeral port (32768 up), from which a concurrent
// test's client could send into the capture.
func portBlock(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 10000 + mrand.IntN(10000/n)*n
		if blockFree(base, n) {
			return base
		}
	}
	t.Fatal("no free port block on loopback")
	return 0
}

func blockFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// capture runs dumpcap on lo for filter into each of files (".pcap" files
// in the classic format, others pcapng). stop waits a moment for the last
// packets to be written, then stops it.
type capture struct {
	cmds []*exec.Cmd
	logs []*lockedBuffer
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startCapture(t *testing.T, filter string, files ...string) *capture {
	t.Helper()
	return startCaptureOn(t, "lo", filter, files...)
}

// startCaptureOn captures on iface: "any" gives Linux cooked frames.
func startCaptureOn(t *testing.T, iface, filter string, files ...string) *capture {
	t.Helper()
	bin := needTool(t, "dumpcap")
	c := &capture{}
	for _, f := range files {
		args := []string{"-q", "-i", iface, "-f", filter, "-w", f, "-a", "duration:40"}
		if strings.HasSuffix(f, ".pcap") {
			args = append(args, "-P")
		}
		cmd := exec.Command(bin, args...)
		log := new(lockedBuffer)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("dumpcap: %v", err)
		}
		c.cmds, c.logs = append(c.cmds, cmd), append(c.logs, log)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	// dumpcap names its file once it captures.
	deadline := time.Now().Add(5 * time.Second)
	for i, f := range files {
		for !strings.Contains(c.logs[i].String(), "File:") {
			if time.Now().After(deadline) {
				t.Fatalf("dumpcap did not start writing %s: %s", f, c.logs[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	return c
}

func (c *capture) stop(t *testing.T) {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // dumpcap loses the last packets when stopped at once
	for i, cmd := range c.cmds {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("dumpcap did not stop: %s", c.logs[i])
		}
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 to dir and returns
// the path of a PEM bundle (certificate then key) and the certificate.
func selfSigned(t testing.TB, dir string) (bundle string, cert *x509.Certificate, der []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "audit-test", Organization: []string{"parapet test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	bundle = filepath.Join(dir, "tls.pem")
	if err := os.WriteFile(bundle, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle, cert, der, key
}

// baresipModules finds baresip's module directory.
func baresipModules(t *testing.T) string {
	t.Helper()
	for _, pat := range []string{"/usr/lib/*/baresip/modules/g711.so", "/usr/lib/baresip/modules/g711.so", "/usr/local/lib/baresip/modules/g711.so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Fatal("baresip modules not found (is baresip-core installed?)")
	return ""
}

// phone is one baresip instance driven over ctrl_tcp.
type phone struct {
	name     string
	sipPort  int // TLS listens on sipPort+1
	ctrlPort int
	cmd      *exec.Cmd
	ctrl     net.Conn
	events   chan map[string]any
	log      lockedBuffer
}

// phoneConf is what differs between the two phones of a call.
type phoneConf struct {
	name      string
	base      int    // sip base, base+2 ctrl, base+20..39 rtp
	transport string // udp, tcp or tls
	menc      string // "" or srtp-mand ...
	bundle    string // TLS certificate+key
}

func startPhone(t *testing.T, dir string, c phoneConf) *phone {
	t.Helper()
	needTool(t, "baresip")
	d := filepath.Join(dir, c.name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	p := &phone{name: c.name, sipPort: c.base, ctrlPort: c.base + 2, events: make(chan map[string]any, 64)}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "poll_method epoll\nsip_listen 127.0.0.1:%d\n", c.base)
	if c.bundle != "" {
		fmt.Fprintf(&cfg, "sip_certificate %s\n", c.bundle)
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
net_interface 127.0.0.1
dns_server 127.0.0.1:53
module_path %s
module g711.so
module aubridge.so
module ausine.so
module srtp.so
module dtls_srtp.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
`, 440+c.base%200, c.base+20, c.base+39, baresipModules(t), p.ctrlPort)
	os.WriteFile(filepath.Join(d, "config"), []byte(cfg.String()), 0o600)
	acc := fmt.Sprintf("<sip:%s@127.0.0.1;transport=%s>;regint=0;answermode=auto;audio_codecs=pcmu;ptime=20", c.name, c.transport)
	if c.menc != "" {
		acc += ";mediaenc=" + c.menc
	}
	os.WriteFile(filepath.Join(d, "accounts"), []byte(acc+"\n"), 0o600)
	os.WriteFile(filepath.Join(d, "contacts"), nil, 0o600)

	p.cmd = exec.Command("baresip", "-f", d, "-t", "40")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.ctrlPort))
		if err == nil {
			p.ctrl = conn
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s", c.name, err, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	go p.readEvents()
	return p
}

// readEvents decodes ctrl_tcp's netstrings ("LEN:JSON,").
func (p *phone) readEvents() {
	defer close(p.events)
	r := bufio.NewReader(p.ctrl)
	for {
		s, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s, ":"))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:n], &m) == nil {
			p.events <- m
		}
	}
}

func (p *phone) command(cmd, params string) error {
	j, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": cmd})
	_, err := fmt.Fprintf(p.ctrl, "%d:%s,", len(j), j)
	return err
}

func (p *phone) wait(d time.Duration, types ...string) (map[string]any, error) {
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return nil, fmt.Errorf("%s: control connection closed", p.name)
			}
			ty, _ := ev["type"].(string)
			for _, w := range types {
				if ty == w {
					return ev, nil
				}
			}
		case <-deadline:
			return nil, fmt.Errorf("%s: no %v within %s", p.name, types, d)
		}
	}
}

// phoneCall makes one call from alice to bob over transport with media
// encryption menc, holds it for hold, hangs up, and returns the capture
// files (a pcapng and a classic pcap of the same traffic).
func phoneCall(t *testing.T, transport, menc string, hold time.Duration) (pcapng, pcap string) {
	t.Helper()
	dir := t.TempDir()
	base := portBlock(t, 100)
	var bundle string
	if transport == "tls" {
		bundle, _, _, _ = selfSigned(t, dir)
	}
	pcapng, pcap = filepath.Join(dir, "call.pcapng"), filepath.Join(dir, "call.pcap")
	cap := startCapture(t, fmt.Sprintf("portrange %d-%d", base, base+99), pcapng, pcap)
	bob := startPhone(t, dir, phoneConf{name: "bob", base: base + 50, transport: transport, menc: menc, bundle: bundle})
	alice := startPhone(t, dir, phoneConf{name: "alice", base: base, transport: transport, menc: menc, bundle: bundle})
	port := bob.sipPort
	if transport == "tls" {
		port++
	}
	uri := fmt.Sprintf("sip:bob@127.0.0.1:%d", port)
	if transport != "tls" {
		uri += ";transport=" + transport
	}
	if err := alice.command("dial", uri); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*phone{alice, bob} {
		if ev, err := p.wait(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED"); err != nil || ev["type"] != "CALL_ESTABLISHED" {
			t.Fatalf("call not established (%v, %v)\nalice:\n%s\nbob:\n%s", ev, err, alice.log.String(), bob.log.String())
		}
	}
	time.Sleep(hold)
	alice.command("hangup", "")
	if _, err := bob.wait(5*time.Second, "CALL_CLOSED"); err != nil {
		t.Fatal(err)
	}
	cap.stop(t)
	return pcapng, pcap
}

// fixtures builds each real capture once per test binary and shares it.
var fixtures struct {
	plainOnce, tlsOnce sync.Once
	plain, plainPcap   string
	tls                string
	plainErr, tlsErr   string
}

// The fixtures live in a directory removed at the end of the run.
var fixtureDir = func() string {
	d, err := os.MkdirTemp("", "audit-test-")
	if err != nil {
		panic(err)
	}
	return d
}()

func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(fixtureDir)
	os.Exit(code)
}

// keep copies a capture out of a test's temp dir into fixtureDir.
func keep(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(fixtureDir, fmt.Sprintf("%d-%s", time.Now().UnixNano(), filepath.Base(src)))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// plainCapture is a plain UDP SIP + RTP call between two baresips.
func plainCapture(t *testing.T) (pcapng, pcap string) {
	t.Helper()
	fixtures.plainOnce.Do(func() {
		ok := false
		t.Run("capture-plain-udp-call", func(t *testing.T) {
			ng, p := phoneCall(t, "udp", "", 2500*time.Millisecond)
			fixtures.plain, fixtures.plainPcap = keep(t, ng), keep(t, p)
			ok = true
		})
		if !ok {
			fixtures.plainErr = "making the plain call capture failed"
		}
	})
	if fixtures.plainErr != "" {
		t.Fatal(fixtures.plainErr)
	}
	return fixtures.plain, fixtures.plainPcap
}

// tlsCapture is a TLS + SRTP (SDES, mandatory) call between two baresips.
func tlsCapture(t *testing.T) string {
	t.Helper()
	fixtures.tlsOnce.Do(func() {
		ok := false
		t.Run("capture-tls-srtp-call", func(t *testing.T) {
			ng, _ := phoneCall(t, "tls", "srtp-mand", 2500*time.Millisecond)
			fixtures.tls = keep(t, ng)
			ok = true
		})
		if !ok {
			fixtures.tlsErr = "making the TLS+SRTP call capture failed"
		}
	})
	if fixtures.tlsErr != "" {
		t.Fatal(fixtures.tlsErr)
	}
	return fixtures.tls
}

// loopback is 127.0.0.1 as an address.
var loopback = netip.MustParseAddr("127.0.0.1")

// testCert is a self-signed certificate (DER) and its key.
func testCert(tb testing.TB) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	_, _, der, key := selfSigned(tb, tb.TempDir())
	return der, key
}
