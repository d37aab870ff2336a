package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

// ---- linphone ----------------------------------------------------------------

// linphone is a linphonec (liblinphone, belle-sip, mediastreamer2: a SIP and
// media stack of its own, unlike baresip's libre) driven through a FIFO on
// its stdin, as ../shared/peers/README.md section 5 describes: a private
// HOME with a null ALSA device, sound from and to WAV files.
type linphone struct {
	dir     string
	cmd     *exec.Cmd
	in      *os.File
	mu      sync.Mutex
	console bytes.Buffer
	logPath string
}

type linphoneConf struct {
	udpPort      int    // its UDP listener; 0: none
	tlsPort      int    // its own TLS listener (it cannot be called over TLS, but needs the transport)
	rtpLo, rtpHi int    // its RTP ports
	caFile       string // the CA it verifies parapet's certificate with
	// certFile and keyFile are its client certificate: without one it
	// stalls 15 s on a server's certificate request, prompting for a
	// password on its console.
	certFile, keyFile string
	menc              string // media_encryption: none, srtp, dtls
}

func startLinphone(t *testing.T, c linphoneConf) *linphone {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	// Without its database directory the core never starts its SIP
	// transports ("No listening point matching").
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	// No sound card: ALSA's null device, and linphone's "files" card.
	os.WriteFile(filepath.Join(home, ".asoundrc"), []byte("pcm.!default { type null }\n"), 0o600)
	rc := fmt.Sprintf(`[sip]
sip_port=%d
sip_tcp_port=0
sip_tls_port=%d
bind_address=127.0.0.1
guess_hostname=0
ipv6_enabled=0
root_ca=%s
client_cert_chain=%s
client_cert_key=%s
verify_server_certs=1
verify_server_cn=1
media_encryption=%s
media_encryption_mandatory=1
register_only_when_network_is_up=0
[rtp]
bind_address=127.0.0.1
audio_rtp_port=%d-%d
rtcp_mux=0
audio_jitt_comp=60
[net]
firewall_policy=0
[sound]
echocancellation=0
[video]
enabled=0
capture=0
display=0
[audio_codec_0]
mime=PCMU
rate=8000
channels=1
enabled=1
[audio_codec_1]
mime=PCMA
rate=8000
channels=1
enabled=0
[audio_codec_2]
mime=opus
rate=48000
channels=2
enabled=0
[audio_codec_3]
mime=speex
rate=8000
channels=1
enabled=0
[audio_codec_4]
mime=GSM
rate=8000
channels=1
enabled=0
`, c.udpPort, c.tlsPort, c.caFile, c.certFile, c.keyFile, c.menc, c.rtpLo, c.rtpHi)
	rcPath := filepath.Join(dir, "linphonerc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "in")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphone{dir: dir, logPath: filepath.Join(dir, "linphone.log")}
	l.cmd = exec.Command("linphonec", "-c", rcPath, "-d", "6", "-l", l.logPath)
	l.cmd.Dir = dir
	l.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"))
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stderr = l.cmd.Stdout
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The FIFO is opened read-write here so that neither end blocks.
	in, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.in = in
	stdin, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stdin = stdin
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(out)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			l.mu.Lock()
			l.console.Write(buf[:n])
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		l.send("quit")
		peers.Reap(l.cmd, 5*time.Second)
		l.in.Close()
		<-done
		if t.Failed() {
			t.Logf("---- linphonec console ----\n%s", peers.Tail(l.output(), 40))
			if b, err := os.ReadFile(l.logPath); err == nil {
				t.Logf("---- linphonec log (errors and warnings) ----\n%s", peers.Tail(grepLines(string(b), "error|warning|srtp|tls|stun"), 60))
			}
		}
	})
	return l
}

func grepLines(s, re string) string {
	rx := regexp.MustCompile("(?i)" + re)
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if rx.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func (l *linphone) send(cmd string) {
	io.WriteString(l.in, cmd+"\n")
}

func (l *linphone) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.console.String()
}

// waitLog waits until linphone's log file matches re.
func (l *linphone) waitLog(timeout time.Duration, re string) error {
	rx := regexp.MustCompile(re)
	if poll(timeout, func() bool {
		b, err := os.ReadFile(l.logPath)
		return err == nil && rx.Match(b)
	}) {
		return nil
	}
	return fmt.Errorf("linphonec log: no %q within %s", re, timeout)
}

// wait waits until the console output matches re.
func (l *linphone) wait(timeout time.Duration, re string) (string, error) {
	rx := regexp.MustCompile(re)
	var m string
	if poll(timeout, func() bool { m = rx.FindString(l.output()); return m != "" }) {
		return m, nil
	}
	return "", fmt.Errorf("linphonec: no %q within %s", re, timeout)
}

// callBob has linphone, once its listening point for transport (UDP,
// TLS) is up, call uri while playing a 440 Hz tone and recording what it
// hears; bob answers. linphone hangs up after callSeconds, and both ends
// must see the call end. It returns the file of what linphone heard.
func (l *linphone) callBob(t *testing.T, bob *peers.Baresip, transport, uri string) (heard string) {
	t.Helper()
	tone := filepath.Join(l.dir, "tone.wav")
	heard = filepath.Join(l.dir, "heard.wav")
	writeTone(t, tone, 440, 30)
	if err := l.waitLog(10*time.Second, `Creating listening point .*transport=`+transport); err != nil {
		t.Fatal(err)
	}
	l.send("soundcard use files")
	l.send("play " + tone)
	l.send("record " + heard)
	l.send("call " + uri)
	if _, err := l.wait(15*time.Second, `(?i)call \d+ .*connected`); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(5*time.Second, "CALL_ESTABLISHED"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(callSeconds * time.Second)
	l.send("terminate")
	if _, err := bob.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		t.Fatalf("bob never saw the hangup: %v", err)
	}
	if _, err := l.wait(5*time.Second, `(?i)call \d+ .*(ended|terminated)`); err != nil {
		t.Error(err)
	}
	return heard
}

// writeTone writes secs seconds of a freq Hz tone as an 8 kHz mono 16-bit
// WAV, what linphone's file sound card plays.
func writeTone(t *testing.T, path string, freq float64, secs int) {
	t.Helper()
	n := 8000 * secs
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	for i := range n {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// linphoneCallLegs checks what every linphone call through parapet must
// show: linphone heard the other phone's tone (decrypted by linphone), and
// parapet wrote one record, answered, whose legs pass wantLegs.
func linphoneCallLegs(t *testing.T, p *parapetUnderTest, heard string) (a, b *compliance.Leg) {
	t.Helper()
	if loud, samples, err := wavLoud(heard); err != nil || !loud {
		t.Errorf("linphone heard nothing (%d samples, %v)", samples, err)
	}
	calls := onlyCalls(p.records(t))
	if len(calls) != 1 || calls[0].Disposition != compliance.DispositionAnswered {
		t.Fatalf("records %+v", calls)
	}
	return wantLegs(t, calls[0])
}

// wavLoud reports whether a 16-bit WAV file holds more than silence.
func wavLoud(path string) (bool, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, 0, err
	}
	i := bytes.Index(b, []byte("data"))
	if i < 0 || len(b) < i+8 {
		return false, 0, fmt.Errorf("%s: no data chunk", path)
	}
	pcm := b[i+8:]
	loud := 0
	for j := 0; j+1 < len(pcm); j += 2 {
		if v := int16(binary.LittleEndian.Uint16(pcm[j:])); v > 1000 || v < -1000 {
			loud++
		}
	}
	return loud > 8000/2, len(pcm) / 2, nil
}

// A second, independent SIP and media stack: linphone on the carrier side
// calls over TLS 1.2 (it dials "localhost", the lab certificate's DNS name:
// its TLS library matches names only against DNS SANs) with mandatory
// SDES-SRTP, through parapet, to a plain-RTP baresip phone on the PBX side.
// The call must be answered and carry the tones both ways, and the record
// must show what linphone sent: no authentication failures, no malformed
// packets, its STUN checks (if any) in stun_packets.
func TestLinphoneInboundSDES(t *testing.T) {
	requirePeers(t, "linphonec", "baresip", "dumpcap", "tshark")
	base := portBlock(t)
	p := startParapet(t, base, fmt.Sprintf("sips:127.0.0.1:%d", base+1), fmt.Sprintf("sip:127.0.0.1:%d", base+10))
	cap := startCapture(t, base)
	// bob (baresip, plain RTP over UDP) at base+10, RTP base+40..59; linphone's
	// TLS port base+3, RTP base+20..39.
	bob := peers.StartBaresip(t, peers.BaresipConfig{Name: "bob", SIPPort: base + 10, CtrlPort: base + 12, RTPLo: base + 40, RTPHi: base + 59,
		Transport: "udp", Tone: 880})
	lin := startLinphone(t, linphoneConf{tlsPort: base + 3, rtpLo: base + 20, rtpHi: base + 39, caFile: p.pki.CAFile,
		certFile: p.pki.PeerCertFile, keyFile: p.pki.PeerKeyFile, menc: "srtp"})
	heard := lin.callBob(t, bob, "TLS", fmt.Sprintf("sip:bob@localhost:%d;transport=tls", base+61))
	cap.Stop()

	cap.sipLegTLS(t, base+61)
	cap.sipLegClear(t, base+60)
	if v := cap.media(t, base+40, base+59); !v.plain() || v.packets < callSeconds*50 {
		t.Errorf("PBX leg media does not look like the tone in clear: %+v", v)
	}
	if v := cap.media(t, base+20, base+39); v.plain() || v.packets < callSeconds*50 {
		t.Errorf("linphone's leg media does not look like SRTP: %+v", v)
	}
	a, b := linphoneCallLegs(t, p, heard)
	if a.Zone != "carrier" || a.Transport != "tls" || a.TLS == nil || a.TLS.Version != "TLS1.2" ||
		a.Media.KeyExchange != "sdes" || a.Media.SRTPSuite == "" {
		t.Errorf("linphone's leg %+v %+v", a, a.Media)
	}
	if a.TLS != nil && (a.TLS.PeerCert == nil || !a.TLS.PeerCert.Verified) {
		t.Errorf("linphone's client certificate not verified: %+v", a.TLS.PeerCert)
	}
	if b.Media.KeyExchange != "none" {
		t.Errorf("PBX leg media %+v", b.Media)
	}
	stunOnWire := len(cap.tshark(t, "-Y", fmt.Sprintf("udp.srcport in {%d..%d} && stun", base+20, base+39)))
	t.Logf("STUN from linphone on the wire: %d; in the record: %d", stunOnWire, a.Media.STUNPackets)
	if stunOnWire > 0 && a.Media.STUNPackets == 0 {
		t.Errorf("linphone sent %d STUN messages to parapet, the record counts none", stunOnWire)
	}
}
