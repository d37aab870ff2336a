package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	err := dispatch(args, &o, &e)
	if err == nil {
		return 0, o.String(), e.String()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			e.WriteString(ee.err.Error())
		}
		return ee.code, o.String(), e.String()
	}
	return 1, o.String(), e.String() + err.Error()
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	os.WriteFile(good, []byte(`
zone "pbx" {
  listen = ["udp://127.0.0.1:25060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "loop" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:25070"
}
media { address = "127.0.0.1" }
`), 0o600)
	code, out, errOut := runCmd("check", "-c", good)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("good config: %d %q %q", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte(`zone "carrier" {
  listen = ["tls://127.0.0.1:25061"]
  peers  = ["127.0.0.0/8"]
  tls {
    min_version = "1.1"
    min_verson  = "1.2"
  }
}
media { address = "127.0.0.1" }
`), 0o600)
	code, _, errOut = runCmd("check", "-c", bad)
	if code != 2 {
		t.Fatalf("bad config exit %d, want 2", code)
	}
	for _, want := range []string{"bad.hcl", "line 5", "1.2", "line 6", "min_verson"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check output lacks %q:\n%s", want, errOut)
		}
	}
}

// signedLog writes a signed compliance log in a new directory, as one run
// of parapet with three calls leaves it (opened, 3 calls, checkpoint,
// closed), and returns its path and the signing key's public key file.
func signedLog(t *testing.T) (log, pub string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "c.jsonl")
	key, err := compliance.LoadOrCreateSigningKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := compliance.OpenWriter(log, compliance.WriterOptions{Version: "test", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Append(&compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: fmt.Sprint(i),
			Disposition: compliance.DispositionAnswered, SIPStatus: 200}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return log, filepath.Join(dir, compliance.PublicKeyFile)
}

func TestVerifyCommand(t *testing.T) {
	log, pub := signedLog(t)
	if code, out, _ := runCmd("verify", "-log", log); code != 0 || !strings.HasPrefix(out, "OK:") || !strings.Contains(out, "signatures: not checked") {
		t.Fatalf("intact log: %d %q", code, out)
	}
	if code, out, _ := runCmd("verify", "-log", log, "-key", pub); code != 0 || !strings.Contains(out, "signatures: 1 checkpoint signed with ed25519:") {
		t.Fatalf("signed log with -key: %d %q", code, out)
	}
	b, _ := os.ReadFile(log)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"sip_status":200`), []byte(`"sip_status":201`), 1)
	os.WriteFile(log, bytes.Join(lines, nil), 0o600)
	code, out, _ := runCmd("verify", "-log", log)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, ":3:") {
		t.Fatalf("one-byte change: %d %q, want exit 1 naming line 3", code, out)
	}
	if code, _, _ := runCmd("verify"); code != 2 {
		t.Errorf("verify without -log: exit %d, want 2", code)
	}
}

// The attack of issue 7 against the command: a call record and every
// checkpoint removed, the chain and the head file recomputed. Without -key
// the log looks intact (and the output says signatures were not checked);
// with -key it is reported, exit status 1. An intact log's OK names what
// the signatures cover and the unsigned tail.
func TestVerifyCommandRechainedLog(t *testing.T) {
	log, pub := signedLog(t)
	code, out, _ := runCmd("verify", "-log", log, "-key", pub)
	if code != 0 || !strings.Contains(out, "signatures: 1 checkpoint signed with ed25519:") ||
		!strings.Contains(out, "cover seq 1..4") || !strings.Contains(out, "unsigned tail: seq 6..6 (after the last checkpoint), 1 record over") {
		t.Fatalf("intact log with -key: %d %q", code, out)
	}

	rechainLog(t, log, func(r *compliance.Record) bool {
		return !(r.Call != nil && r.Call.ID == "1") && !(r.Log != nil && r.Log.Event == compliance.LogCheckpoint)
	})
	if code, out, _ := runCmd("verify", "-log", log); code != 0 || !strings.Contains(out, "signatures: not checked") {
		t.Fatalf("re-chained log without -key: %d %q", code, out)
	}
	code, out, _ = runCmd("verify", "-log", log, "-key", pub)
	if code != 1 || !strings.Contains(out, "TAMPERED: "+log+":4: unsigned: ") {
		t.Fatalf("re-chained log with -key: %d %q, want exit 1 and unsigned at line 4 (closed)", code, out)
	}
}

// rechainLog rewrites a compliance log as someone without the signing key
// would, by the byte rule of docs/records.md: keep says which records stay;
// seq and prev are renumbered, every hash recomputed, the head file
// rewritten.
func rechainLog(t *testing.T, path string, keep func(*compliance.Record) bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var seq uint64
	prev := ""
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var r compliance.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if !keep(&r) {
			continue
		}
		seq++
		r.Seq, r.Prev, r.Hash = seq, prev, ""
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
		blank := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		sum := sha256.Sum256(blank)
		prev = hex.EncodeToString(sum[:])
		out.Write(bytes.TrimSuffix(blank, []byte(`"}`)))
		out.WriteString(prev + `"}` + "\n")
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf(`{"seq":%d,"hash":%q,"file":%q}`+"\n", seq, prev, filepath.Base(path))
	if err := os.WriteFile(path+".head", []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertsAndVersion(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd("certs", "selfsigned", "-host", "sbc.example.org", "-o", dir)
	if code != 0 || !strings.Contains(out, "sbc.example.org.pem") {
		t.Fatalf("certs selfsigned: %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCmd("certs", "selfsigned", "-host", "sbc.example.org", "-o", dir); code == 0 {
		t.Error("overwrote existing certificates without -force")
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "parapet ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd("frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// `parapet run` as a real process: a live call, then SIGTERM. The call is
// ended with BYE on both legs, recorded as shutdown, and the log is closed
// and verifies.
func TestRunStopsCleanlyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	base := portBlock(t)
	carrier, pbx := simPeers(t, filepath.Join(dir, "state", "certs"), base+1, base+2)
	conf := simSite(t, dir, base, `ca_file = "${state_dir}/certs/lab-ca.pem"`,
		fmt.Sprintf(`admin { listen = "127.0.0.1:%d" }`+"\n", base+62))

	p := runParapet(t, "-c", conf, "-log-format", "json")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, callee := placeCall(ctx, t, pbx, carrier, fmt.Sprintf("sip:+15551230000@127.0.0.1:%d", base+60))

	// A second parapet on the same state directory and log is refused
	// before it writes anything: it would fork the log's chain.
	size := fileSize(t, filepath.Join(dir, "state", "compliance.jsonl"))
	second := exec.Command(buildParapet(t), "run", "-c", conf)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another parapet is running") {
		t.Errorf("a second parapet on the same state directory: %v\n%s", err, out)
	}
	if got := fileSize(t, filepath.Join(dir, "state", "compliance.jsonl")); got != size {
		t.Errorf("the second parapet wrote to the log: %d bytes, then %d", size, got)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	// Its stderr is read to the end before Wait, which closes the pipe.
	select {
	case <-p.ended:
	case <-time.After(20 * time.Second):
		t.Fatalf("parapet did not stop on SIGTERM:\n%s", p.allLogs())
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v:\n%s", err, p.allLogs())
	}
	for name, s := range map[string]*sim.Session{"pbx": caller, "carrier": callee} {
		select {
		case <-s.Context().Done():
		case <-time.After(5 * time.Second):
			t.Errorf("%s leg got no BYE", name)
		}
	}
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	pub, err := compliance.LoadPublicKey(filepath.Join(dir, "state", compliance.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err := compliance.Verify([]string{logPath}, compliance.VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() || !res.HeadChecked || res.Checkpoints == 0 || res.SignedSeq < res.LastSeq-2 {
		t.Fatalf("log after SIGTERM: %v %+v", err, res)
	}
	recs, _ := readRecords(logPath, time.Time{})
	var shutdown, closed bool
	for _, r := range recs {
		if r.Call != nil && r.Call.Disposition == compliance.DispositionShutdown {
			shutdown = true
		}
		if r.Log != nil && r.Log.Event == compliance.LogClosed {
			closed = true
		}
	}
	if !shutdown || !closed {
		t.Errorf("records: call ended by shutdown=%v, log closed=%v", shutdown, closed)
	}
	if logs := p.allLogs(); !strings.Contains(logs, "stopped; compliance log closed") {
		t.Errorf("parapet's log lacks its last line:\n%s", logs)
	} else if strings.Contains(logs, "inline:") || strings.Contains(logs, "a=crypto") {
		t.Error("key material in parapet's logs")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// buildParapet builds the binary once per test run.
func buildParapet(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parapet-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "parapet")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// process is a running `parapet run` whose log lines can be waited for.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string // not yet matched by waitLog
	all   []string // every line
	more  chan struct{}
	ended chan struct{} // closed when the process's stderr closes
}

// allLogs returns every line parapet has written so far.
func (p *process) allLogs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.all, "\n")
}

func runParapet(t *testing.T, args ...string) *process {
	t.Helper()
	return runParapetIn(t, t.TempDir(), args...)
}

// runParapetIn runs `parapet run` with dir as its working directory (where
// the embedded default keeps its state).
func runParapetIn(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(buildParapet(t), append([]string{"run"}, args...)...), more: make(chan struct{}, 1),
		ended: make(chan struct{})}
	p.cmd.Dir = dir
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	go func() {
		defer close(p.ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
	}()
	p.waitLog(t, "parapet started")
	return p
}

// waitLog waits for the next log line (after those already matched)
// containing s, and returns it.
func (p *process) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for seen := 0; ; {
		p.mu.Lock()
		lines := p.lines
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], s) {
				p.mu.Lock()
				p.lines = p.lines[seen+1:]
				p.mu.Unlock()
				return lines[seen]
			}
		}
		select {
		case <-p.more:
		case <-p.ended:
			// Lines the reader added just before closing were seen above
			// only if they came before this check: look once more.
			p.mu.Lock()
			more := len(p.lines) > len(lines)
			p.mu.Unlock()
			if !more {
				t.Fatalf("parapet exited (%v) before a log line with %q; after the last match it wrote:\n%s",
					p.cmd.Wait(), s, strings.Join(lines, "\n"))
			}
		case <-deadline:
			t.Fatalf("no log line with %q in:\n%s", s, strings.Join(lines, "\n"))
		}
	}
}

// options sends an OPTIONS over UDP from 127.0.0.1 and returns the status line.
func options(t *testing.T, to int) string {
	t.Helper()
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	fmt.Fprintf(c, "OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\nFrom: <sip:probe@%s>;tag=1\r\n"+
		"To: <sip:127.0.0.1:%d>\r\nCall-ID: probe-%d@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		to, local, time.Now().UnixNano(), local, to, time.Now().UnixNano())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("OPTIONS: %v", err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

// SIGHUP re-reads the configuration: a policy change applies to what comes
// next and is recorded in the compliance log; a file that does not load, or
// changes what needs a restart, changes nothing.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dir := t.TempDir()
	base := portBlock(t)
	conf := filepath.Join(dir, "parapet.hcl")
	write := func(peers string, port int) {
		t.Helper()
		src := fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = [%q]
  media { srtp = "allow" }
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
admin { listen = "127.0.0.1:%d" }
`, port, peers, base+70, base+99, base+62)
		if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("127.0.0.0/8", base+60)
	p := runParapet(t, "-c", conf, "-log-format", "json")
	if got := options(t, base+60); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("OPTIONS from a peer: %q", got)
	}

	// A policy change: 127.0.0.1 is no longer a peer.
	write("10.0.0.0/8", base+60)
	p.cmd.Process.Signal(syscall.SIGHUP)
	var reloaded struct {
		PolicyHash string `json:"policy_hash"`
	}
	if err := json.Unmarshal([]byte(p.waitLog(t, "configuration reloaded")), &reloaded); err != nil || reloaded.PolicyHash == "" {
		t.Fatalf("reload log line: %v %+v", err, reloaded)
	}
	if got := options(t, base+60); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Errorf("OPTIONS after the reload: %q, want 403", got)
	}
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", base+62))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := fmt.Sprintf(`parapet_policy_info{policy_hash=%q} 1`, reloaded.PolicyHash); !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	for _, m := range []string{"parapet_srtp_auth_failures_total 0", "parapet_media_unprotected_total 0", "parapet_media_stun_total 0",
		"parapet_media_dtls_total 0", "parapet_media_malformed_total 0", "parapet_journal_healthy 1", "parapet_journal_failures_total 0"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// A listener change needs a restart: refused, the policy stays.
	write("127.0.0.0/8", base+61)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "configuration reload refused")
	// A file with an error: refused too.
	os.WriteFile(conf, []byte("zone \"pbx\" { bogus = 1 }\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	var bad struct {
		Msg        string `json:"msg"`
		Diagnostic string `json:"diagnostic"`
	}
	// One line per error, in the FILE:LINE:COL form.
	if err := json.Unmarshal([]byte(p.waitLog(t, `bogus`)), &bad); err != nil ||
		bad.Msg != "configuration error" || !strings.Contains(bad.Diagnostic, "parapet.hcl:1:14: error: ") {
		t.Errorf("reload error line: %v %+v", err, bad)
	}
	p.waitLog(t, "configuration reload failed")
	if got := options(t, base+60); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Errorf("OPTIONS after refused reloads: %q, want the reloaded policy's 403", got)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("parapet exited with %v", err)
	}
	logPath := filepath.Join(dir, "state", "compliance.jsonl")
	if res, err := compliance.Verify([]string{logPath}, compliance.VerifyOptions{Head: true}); err != nil || !res.OK() {
		t.Fatalf("log: %v %+v", err, res)
	}
	recs, _ := readRecords(logPath, time.Time{})
	var reloads []string
	var refused *compliance.ConnEvent
	for _, r := range recs {
		if r.Log != nil && r.Log.Event == compliance.LogReloaded {
			reloads = append(reloads, r.Log.Detail)
		}
		if r.Conn != nil && r.Conn.Event == compliance.EventOutsiders {
			refused = r.Conn
		}
	}
	if len(reloads) != 1 || !strings.Contains(reloads[0], " -> sha256:") || !strings.HasSuffix(reloads[0], " from "+conf) {
		t.Fatalf("reload records %q, want exactly one naming both hashes and the file", reloads)
	}
	_, after, _ := strings.Cut(reloads[0], " -> ")
	newHash, _, _ := strings.Cut(after, " ")
	if newHash != reloaded.PolicyHash || refused == nil || refused.PolicyHash != newHash || refused.Tally.Refused == 0 {
		t.Errorf("outsiders summary %+v, want it under the reloaded policy %s", refused, newHash)
	}
}

// simPeers makes the lab PKI in certDir (as parapet would) and starts a
// simulated carrier over TLS, with a certificate that PKI's CA signed, and a
// simulated PBX over UDP, on loopback at the given ports. Both close when
// the test ends.
func simPeers(t *testing.T, certDir string, carrierPort, pbxPort int) (carrier, pbx *sim.Peer) {
	t.Helper()
	pki, err := certs.EnsureLab(certDir)
	if err != nil {
		t.Fatal(err)
	}
	zt, err := certs.NewZone(certs.Options{Zone: "sim", MinVersion: tls.VersionTLS12, CertFile: pki.PeerCertFile,
		KeyFile: pki.PeerKeyFile, CAFile: pki.CAFile, VerifyPeer: true})
	if err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	carrier, err = sim.New(sim.Config{Name: "carrier", Transport: "tls", Listen: netip.AddrPortFrom(loop, uint16(carrierPort)),
		ServerTLS: zt.ServerConfig(), ClientTLS: zt.ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carrier.Close() })
	pbx, err = sim.New(sim.Config{Name: "pbx", Transport: "udp", Listen: netip.AddrPortFrom(loop, uint16(pbxPort))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pbx.Close() })
	return carrier, pbx
}

// simSite writes dir/parapet.hcl, the configuration of the tests that run
// parapet between simPeers: state in dir/state, a UDP zone "pbx" on
// base+60, a TLS zone "carrier" on base+61 whose tls block holds
// carrierTLS, a route to the simulated carrier on base+1, media ports
// base+70 to base+99, then extra. It returns the file's path.
func simSite(t *testing.T, dir string, base int, carrierTLS, extra string) string {
	t.Helper()
	return simSitePeers(t, dir, base, "127.0.0.0/8", carrierTLS, extra)
}

// simSitePeers is simSite with both zones' peers set to peers.
func simSitePeers(t *testing.T, dir string, base int, peers, carrierTLS, extra string) string {
	t.Helper()
	conf := filepath.Join(dir, "parapet.hcl")
	src := fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%[1]d"]
  peers  = [%[7]q]
  media { srtp = "allow" }
}
zone "carrier" {
  listen = ["tls://127.0.0.1:%[2]d"]
  peers  = [%[7]q]
  tls {
    %[3]s
  }
  media { srtp = "require" }
}
route "out" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:127.0.0.1:%[4]d"
}
media {
  address = "127.0.0.1"
  ports   = "%[5]d-%[6]d"
}
%[8]s`, base+60, base+61, carrierTLS, base+1, base+70, base+99, peers, extra)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// placeCall has from call uri through parapet and returns both ends once
// the call reached to.
func placeCall(ctx context.Context, t *testing.T, from, to *sim.Peer, uri string) (caller, callee *sim.Session) {
	t.Helper()
	caller, err := from.Call(ctx, uri, sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case callee = <-to.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("the callee side never got the call")
	}
	return caller, callee
}
