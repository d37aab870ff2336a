package peers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BaresipConfig is one baresip phone: where it listens, how it calls and
// what it plays. Its account auto-answers and offers PCMU only.
type BaresipConfig struct {
	// Name is the phone's user (sip:Name@127.0.0.1) and its directory.
	Name string
	// SIPPort is its SIP listener on 127.0.0.1 (UDP and TCP); TLS
	// listens on SIPPort+1.
	SIPPort int
	// CtrlPort is its ctrl_tcp listener, through which it is driven.
	CtrlPort int
	// RTPLo and RTPHi bound its RTP (and RTCP) ports.
	RTPLo, RTPHi int
	// Transport is the account's SIP transport: udp, tcp or tls.
	Transport string
	// MediaEnc is the account's mediaenc: "" (plain RTP), srtp,
	// srtp-mand, srtp-mandf, dtls_srtp.
	MediaEnc string
	// Tone is the frequency in Hz of the sine it sends.
	Tone int
	// TLSBundle is a PEM file of its certificate then key, for TLS.
	TLSBundle string
	// OpenSSLConf, when set, is the OPENSSL_CONF of its process (to limit
	// its TLS versions, say).
	OpenSSLConf string
	// Register, when set, makes the account register (its user being
	// Name) instead of staying unregistered.
	Register *BaresipRegistration
}

// BaresipRegistration is where and how a baresip account registers.
type BaresipRegistration struct {
	// Domain is the AOR's host (sip:Name@Domain) and the REGISTER's
	// Request-URI.
	Domain string
	// Proxy is the outbound proxy every request goes to (a SIP URI such
	// as sip:127.0.0.1:5061;transport=tls).
	Proxy string
	// Password answers the registrar's digest challenge (user Name).
	Password string
	// Interval is the registration interval in seconds (regint).
	Interval int
	// Outbound makes the account use SIP outbound (RFC 5626, sipnat=
	// outbound): +sip.instance and reg-id in its Contact, keep-alives on
	// its flow (STUN over UDP, CRLF over TCP and TLS).
	Outbound bool
}

// Baresip is a running baresip process driven over ctrl_tcp. It is stopped
// (SIGTERM, then SIGKILL of its process group) when its test ends, and its
// log's tail is logged if the test failed.
type Baresip struct {
	conf   BaresipConfig
	dir    string
	cmd    *exec.Cmd
	ctrl   net.Conn
	events chan map[string]any
	log    SyncBuffer
}

// StartBaresip writes c's configuration to a directory of t's, starts
// baresip on it and connects to its control port. A missing baresip or one
// that does not start within 5 s fails t.
func StartBaresip(t testing.TB, c BaresipConfig) *Baresip {
	t.Helper()
	Require(t, "baresip")
	b := &Baresip{conf: c, dir: filepath.Join(t.TempDir(), c.Name), events: make(chan map[string]any, 64)}
	if err := b.writeConfig(moduleDir(t)); err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	// -t: a phone left behind by a test that hangs quits on its own.
	b.cmd = exec.Command("baresip", "-f", b.dir, "-t", "60")
	b.cmd.Stdout, b.cmd.Stderr = &b.log, &b.log
	b.cmd.Env = os.Environ()
	if c.OpenSSLConf != "" {
		b.cmd.Env = append(b.cmd.Env, "OPENSSL_CONF="+c.OpenSSLConf)
	}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("%s: start baresip: %v", c.Name, err)
	}
	t.Cleanup(func() {
		b.cmd.Process.Signal(syscall.SIGTERM)
		Reap(b.cmd, 3*time.Second)
		if b.ctrl != nil {
			b.ctrl.Close()
		}
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", c.Name, Tail(b.log.String(), 40))
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.CtrlPort))
		if err == nil {
			b.ctrl = conn
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s", c.Name, err, b.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	go b.readEvents()
	return b
}

// writeConfig writes baresip's config, accounts and contacts files to b.dir.
// The phone plays a sine, hears into a sink, records each call's audio as
// WAV files in its directory (sndfile) and prints RTP statistics.
func (b *Baresip) writeConfig(modules string) error {
	c := b.conf
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "poll_method epoll\nsip_listen 127.0.0.1:%d\n", c.SIPPort)
	if c.TLSBundle != "" {
		fmt.Fprintf(&cfg, "sip_certificate %s\n", c.TLSBundle)
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
`, c.Tone, c.RTPLo, c.RTPHi, modules, c.CtrlPort, b.dir)
	acc := fmt.Sprintf("<sip:%s@127.0.0.1;transport=%s>;regint=0;answermode=auto;audio_codecs=pcmu;ptime=20", c.Name, c.Transport)
	if r := c.Register; r != nil {
		acc = fmt.Sprintf("<sip:%s@%s;transport=%s>;auth_pass=%s;outbound=\"%s\";regint=%d;answermode=auto;audio_codecs=pcmu;ptime=20",
			c.Name, r.Domain, c.Transport, r.Password, r.Proxy, r.Interval)
		if r.Outbound {
			acc += ";sipnat=outbound"
		}
	}
	if c.MediaEnc != "" {
		acc += ";mediaenc=" + c.MediaEnc
	}
	for name, body := range map[string]string{"config": cfg.String(), "accounts": acc + "\n", "contacts": ""} {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(body), 0o600); err != nil {
			return fmt.Errorf("write baresip %s: %w", name, err)
		}
	}
	return nil
}

// moduleDir finds baresip's module directory.
func moduleDir(t testing.TB) string {
	t.Helper()
	for _, pat := range []string{"/usr/lib/*/baresip/modules/g711.so", "/usr/lib/baresip/modules/g711.so", "/usr/local/lib/baresip/modules/g711.so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Fatal("baresip modules not found (is baresip-core installed?)")
	return ""
}

// Config returns the configuration b was started with.
func (b *Baresip) Config() BaresipConfig { return b.conf }

// Log returns what baresip has printed so far.
func (b *Baresip) Log() string { return b.log.String() }

// readEvents decodes ctrl_tcp's netstrings ("LEN:JSON,") into b.events,
// which it closes when the connection ends or carries something else.
func (b *Baresip) readEvents() {
	defer close(b.events)
	r := bufio.NewReader(b.ctrl)
	for {
		s, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s, ":"))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		buf := make([]byte, n+1) // the JSON and its ","
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:n], &m) == nil {
			b.events <- m
		}
	}
}

// Command sends a ctrl_tcp command ("dial", "hangup", ...) with its
// parameters; its token is the command's name.
func (b *Baresip) Command(cmd, params string) error {
	j, err := json.Marshal(map[string]string{"command": cmd, "params": params, "token": cmd})
	if err != nil {
		return fmt.Errorf("%s: encode %s: %w", b.conf.Name, cmd, err)
	}
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(j), j); err != nil {
		return fmt.Errorf("%s: send %s: %w", b.conf.Name, cmd, err)
	}
	return nil
}

// WaitEvent waits up to timeout for an event of one of the given types
// ("CALL_ESTABLISHED", "CALL_CLOSED", ...), skipping others, and returns
// it.
func (b *Baresip) WaitEvent(timeout time.Duration, types ...string) (map[string]any, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-b.events:
			if !ok {
				return nil, fmt.Errorf("%s: control connection closed", b.conf.Name)
			}
			if ty, _ := ev["type"].(string); ty != "" {
				for _, want := range types {
					if ty == want {
						return ev, nil
					}
				}
			}
		case <-deadline:
			return nil, fmt.Errorf("%s: no %v within %s", b.conf.Name, types, timeout)
		}
	}
}
