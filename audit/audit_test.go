package audit

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/internal/peers"
	"github.com/parapet-sbc/parapet/policy"
)

// analyze runs Analyze with a fixed key and collects the records.
func analyze(t *testing.T, path string, opts Options) ([]*compliance.Record, report.Source, *report.Capture, error) {
	t.Helper()
	if opts.Pseudonymizer == nil {
		opts.Pseudonymizer = compliance.NewPseudonymizer([]byte("audit test key, not a secret...."))
	}
	var recs []*compliance.Record
	src, c, err := Analyze(path, opts, func(r *compliance.Record) { recs = append(recs, r) })
	return recs, src, c, err
}

func calls(recs []*compliance.Record) []*compliance.Call {
	var out []*compliance.Call
	for _, r := range recs {
		if r.Type == compliance.TypeCall {
			out = append(out, r.Call)
		}
	}
	return out
}

func finding(l compliance.Leg, c policy.Control) policy.Finding {
	for _, f := range l.Controls {
		if f.Control == c {
			return f
		}
	}
	return policy.Finding{}
}

// wantPlainCall checks the record of a plain UDP call between two baresips.
func wantPlainCall(t *testing.T, recs []*compliance.Record, c *report.Capture) {
	t.Helper()
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("want 1 call record, got %d: %s", len(cs), dump(recs))
	}
	call := cs[0]
	if call.Disposition != compliance.DispositionAnswered || call.SIPStatus != 200 || call.EndReason != "bye from a" {
		t.Errorf("disposition %q status %d end %q; want answered 200 bye from a", call.Disposition, call.SIPStatus, call.EndReason)
	}
	if !strings.HasPrefix(call.Caller, compliance.TokenPrefix) || !strings.HasPrefix(call.Callee, compliance.TokenPrefix) || !call.Pseudonymized {
		t.Errorf("caller %q callee %q not pseudonymised", call.Caller, call.Callee)
	}
	if call.Answer == nil || call.DurationMS == nil || *call.DurationMS < 1500 {
		t.Errorf("answer %v duration %v: want an answered call of about 2.5 s", call.Answer, call.DurationMS)
	}
	if len(call.Legs) != 1 {
		t.Fatalf("want one leg (one hop), got %d", len(call.Legs))
	}
	l := call.Legs[0]
	if l.Role != "a" || l.Transport != "udp" || l.Zone != "external" || !strings.HasPrefix(l.UserAgent, "baresip") {
		t.Errorf("leg %+v", l)
	}
	if !strings.HasPrefix(l.CallID, compliance.TokenPrefix) {
		t.Errorf("Call-ID not hashed: %q", l.CallID)
	}
	if l.Media == nil || l.Media.Profile != "RTP/AVP" || l.Media.KeyExchange != "none" || l.Media.Codec != "PCMU/8000" {
		t.Fatalf("media %+v", l.Media)
	}
	if l.Media.PacketsIn < 60 || l.Media.PacketsOut < 60 {
		t.Errorf("media counters in %d out %d: want both ways about 50 pkt/s", l.Media.PacketsIn, l.Media.PacketsOut)
	}
	for _, ctl := range []policy.Control{policy.ControlTransmission, policy.ControlEncryption} {
		if f := finding(l, ctl); f.Status != policy.StatusViolated {
			t.Errorf("%s: %+v, want violated", ctl, f)
		}
	}
	var rules []string
	for _, d := range call.Decisions {
		rules = append(rules, fmt.Sprintf("%s:%s:%s", d.Stage, d.Verdict, d.Rule))
	}
	if !slices.Contains(rules, "offer:rejected:media.srtp-required") || !slices.Contains(rules, "answer:rejected:media.answer-srtp-required") {
		t.Errorf("decisions %v", rules)
	}
	if c.Dialogs != 1 || c.Packets == 0 {
		t.Errorf("capture: %d dialogs, %d packets", c.Dialogs, c.Packets)
	}
	rtp := 0
	for _, f := range c.Flows {
		if f.Class != report.FlowRTP || f.By != "sdp" || f.PacketClass != report.FlowRTP || f.CallID != l.CallID || f.PayloadType != 0 {
			t.Errorf("flow %+v: want rtp by sdp, rtp by packets, tied to the call", f)
		}
		rtp++
	}
	if rtp != 2 {
		t.Errorf("want 2 media flows (one each way), got %d: %+v", rtp, c.Flows)
	}
}

func TestPlainUDPCall(t *testing.T) {
	ng, pcap := plainCapture(t)
	for _, path := range []string{ng, pcap} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			var progress []int64
			recs, src, c, err := analyze(t, path, Options{Progress: func(done, total int64) { progress = append(progress, done) }})
			if err != nil {
				t.Fatal(err)
			}
			wantPlainCall(t, recs, c)
			st, _ := os.Stat(path)
			if len(progress) == 0 || progress[len(progress)-1] != st.Size() {
				t.Errorf("progress %v, want it to end at %d", progress, st.Size())
			}
			if src.Records != len(recs) || src.Calls != 1 || len(src.SHA256) != 64 {
				t.Errorf("source %+v", src)
			}
			for i, r := range recs {
				if r.V != compliance.SchemaVersion || r.Seq != uint64(i+1) || r.Time.IsZero() {
					t.Errorf("record %d: v %d seq %d time %v", i, r.V, r.Seq, r.Time)
				}
			}
		})
	}
}

// A zone from -c that allows clear signaling and plain RTP judges the same
// call "not required", and names the zone.
func TestPlainCallInternalZone(t *testing.T) {
	ng, _ := plainCapture(t)
	z := Zone{Policy: policy.Zone{Name: "lan", Signaling: policy.RequirementOff, SRTP: policy.RequirementAllow,
		MinTLS: policy.VersionTLS12, Suites: policy.DefaultSuites, KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES},
		Peers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	recs, _, _, err := analyze(t, ng, Options{Zones: []Zone{z}})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("%d calls: %s", len(cs), dump(recs))
	}
	l := cs[0].Legs[0]
	if l.Zone != "lan" {
		t.Errorf("zone %q", l.Zone)
	}
	for _, ctl := range []policy.Control{policy.ControlTransmission, policy.ControlEncryption} {
		if f := finding(l, ctl); f.Status != policy.StatusNotRequired {
			t.Errorf("%s: %+v, want not_required", ctl, f)
		}
	}
}

func TestTLSSRTPCall(t *testing.T) {
	path := tlsCapture(t)
	recs, _, c, err := analyze(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Handshakes) == 0 {
		t.Fatal("no TLS handshake found")
	}
	h := c.Handshakes[0]
	if h.Version != "TLS1.3" && h.Version != "TLS1.2" || h.CipherSuite == "" || h.Alert != "" || h.ClientMaxVersion == "" {
		t.Errorf("handshake %+v", h)
	}
	if c.Dialogs != 0 {
		t.Errorf("%d dialogs seen in clear over TLS", c.Dialogs)
	}
	srtp := 0
	for _, f := range c.Flows {
		if f.Class != report.FlowSRTP || f.By != "packets" {
			t.Errorf("flow %+v: want srtp by packets", f)
		}
		srtp++
	}
	if srtp != 2 {
		t.Errorf("want 2 SRTP flows, got %d", srtp)
	}
	cs := calls(recs)
	if len(cs) != 1 || !strings.HasPrefix(cs[0].ID, "capture-tls-") {
		t.Fatalf("want one TLS call record, got %+v", recs)
	}
	l := cs[0].Legs[0]
	if l.Transport != "tls" || l.TLS == nil || l.TLS.Version != h.Version || l.Media != nil {
		t.Errorf("leg %+v", l)
	}
	for _, f := range l.Controls {
		if f.Status == policy.StatusViolated {
			t.Errorf("finding %+v violated on a TLS+SRTP call", f)
		}
	}
	for _, ctl := range []policy.Control{policy.ControlTransmission, policy.ControlEncryption} {
		if f := finding(l, ctl); f.Status != policy.StatusSatisfied {
			t.Errorf("%s: %+v, want satisfied", ctl, f)
		}
	}
}

// A client that offers at most TLS 1.1 to a server with a TLS 1.2 floor:
// the handshake fails, and the capture shows who offered what.
func TestTLS11ClientRefused(t *testing.T) {
	dir := t.TempDir()
	_, _, der, key := selfSigned(t, dir)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	path := filepath.Join(dir, "tls11.pcapng")
	cap := peers.StartCapture(t, fmt.Sprintf("tcp port %d", port), path)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10,
		InsecureSkipVerify: true, ServerName: "sip.example.test"})
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client got through a TLS 1.2 floor")
	}
	// And a TLS 1.2 client that gets through, so the certificate shows.
	c, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
	c.Close()
	cap.Stop()

	recs, _, capt, err := analyze(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(capt.Handshakes) != 2 {
		t.Fatalf("want 2 handshakes, got %+v", capt.Handshakes)
	}
	old := capt.Handshakes[0]
	if old.ClientMaxVersion != "TLS1.1" || old.Version != "" || old.Alert != "protocol_version from server" || old.SNI != "sip.example.test" {
		t.Errorf("refused handshake %+v", old)
	}
	good := capt.Handshakes[1]
	if good.Version != "TLS1.2" || len(good.Certs) != 1 || good.Certs[0].Subject != "CN=audit-test,O=parapet test" {
		t.Errorf("TLS 1.2 handshake %+v", good)
	}
	var refused *compliance.ConnEvent
	for _, r := range recs {
		if r.Type == compliance.TypeConnection {
			refused = r.Conn
		}
	}
	if refused == nil || refused.Event != compliance.EventTLSRefused || refused.ClientMaxVersion != "TLS1.1" ||
		!strings.HasPrefix(refused.Remote, "127.0.0.1:") || refused.Decision == nil || refused.Decision.Rule != policy.RuleTLSVersion {
		t.Errorf("refused record %+v", refused)
	}
	cs := calls(recs)
	if len(cs) != 1 || cs[0].Legs[0].TLS == nil || cs[0].Legs[0].TLS.PeerCert == nil ||
		cs[0].Legs[0].TLS.PeerCert.SHA256 != good.Certs[0].SHA256 {
		t.Errorf("TLS 1.2 call record %+v", cs)
	}
}

// Half a capture: an error that says truncated, and the records of what was
// read before.
func TestTruncatedCapture(t *testing.T) {
	ng, pcap := plainCapture(t)
	for _, path := range []string{ng, pcap} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := filepath.Join(t.TempDir(), "half"+filepath.Ext(path))
			os.WriteFile(cut, b[:len(b)/2], 0o600)
			recs, src, c, err := analyze(t, cut, Options{})
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("error %v, want ErrTruncated", err)
			}
			if c == nil || c.Packets == 0 || c.Dialogs != 1 {
				t.Fatalf("capture %+v: want what was read", c)
			}
			cs := calls(recs)
			if len(cs) != 1 || cs[0].Disposition != compliance.DispositionAnswered || cs[0].EndReason != "the capture ended before the call did" {
				t.Errorf("calls %+v", cs)
			}
			if !slices.ContainsFunc(src.Notes, func(n string) bool { return strings.Contains(n, "truncated") }) {
				t.Errorf("notes %v", src.Notes)
			}
		})
	}
}

func TestNotACapture(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(p, []byte("\x00\x01binary junk that is no capture"), 0o600)
	_, _, _, err := analyze(t, p, Options{})
	if !errors.Is(err, ErrNotCapture) {
		t.Fatalf("error %v", err)
	}
	if _, _, _, err := analyze(t, filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func TestRandomKeyNoted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.txt")
	os.WriteFile(p, []byte(ngrepTrace), 0o600)
	src, _, err := Analyze(p, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(src.Notes, func(n string) bool { return strings.Contains(n, "random key") }) {
		t.Errorf("notes %v", src.Notes)
	}
}

// A plain call whose SIP runs over TCP: reassembled and judged like UDP.
func TestPlainTCPCall(t *testing.T) {
	ng, _ := phoneCall(t, "tcp", "", 1500*time.Millisecond)
	recs, src, c, err := analyze(t, ng, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 || c.Dialogs != 1 {
		t.Fatalf("calls %s notes %v", dump(recs), src.Notes)
	}
	l := cs[0].Legs[0]
	if cs[0].Disposition != compliance.DispositionAnswered || l.Transport != "tcp" || l.Media == nil || l.Media.PacketsIn == 0 {
		t.Errorf("call %+v leg %+v", cs[0], l)
	}
	if f := finding(l, policy.ControlTransmission); f.Status != policy.StatusViolated || !strings.Contains(f.Detail, "SIP over tcp") {
		t.Errorf("finding %+v", f)
	}
}

// A server that still accepts TLS 1.1: the handshake completes, and the
// call record shows the version so the inventory can list the pair.
func TestTLS11Negotiated(t *testing.T) {
	der, key := testCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS10,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { buf := make([]byte, 100); c.Read(buf); c.Close() }()
		}
	}()
	// On "any", so the frames are Linux cooked ones rather than Ethernet.
	path := filepath.Join(t.TempDir(), "tls11ok.pcap")
	cap := peers.StartCaptureOn(t, "any", fmt.Sprintf("tcp port %d", ln.Addr().(*net.TCPAddr).Port), path)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
	c.Close()
	cap.Stop()
	recs, _, _, err := analyze(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("records %+v", recs)
	}
	l := cs[0].Legs[0]
	if l.TLS == nil || l.TLS.Version != "TLS1.1" {
		t.Fatalf("leg %+v", l)
	}
	if f := finding(l, policy.ControlTransmission); f.Status != policy.StatusViolated {
		t.Errorf("finding %+v", f)
	}
	var admission policy.Decision
	for _, d := range cs[0].Decisions {
		if d.Stage == policy.StageAdmission {
			admission = d
		}
	}
	if admission.Rule != policy.RuleTLSVersion || admission.Verdict != policy.VerdictRejected {
		t.Errorf("admission %+v", admission)
	}
}

// DTLS-SRTP over clear SIP: media is protected, signaling is not.
func TestDTLSSRTPOverUDP(t *testing.T) {
	ng, _ := phoneCall(t, "udp", "dtls_srtp", 2*time.Second)
	recs, src, c, err := analyze(t, ng, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := calls(recs)
	if len(cs) != 1 {
		t.Fatalf("calls %s notes %v", dump(recs), src.Notes)
	}
	l := cs[0].Legs[0]
	if l.Media == nil || l.Media.KeyExchange != "dtls" || !strings.HasPrefix(l.Media.Profile, "UDP/TLS/RTP/SAVP") ||
		!strings.HasPrefix(l.Media.DTLSPeerCert, "sha-256 ") || l.Media.PacketsIn == 0 {
		t.Fatalf("media %+v", l.Media)
	}
	for _, d := range cs[0].Decisions {
		if d.Verdict != policy.VerdictAllowed {
			t.Errorf("decision %+v: the media offer and answer meet the zone", d)
		}
	}
	if f := finding(l, policy.ControlTransmission); f.Status != policy.StatusViolated || !strings.Contains(f.Detail, "SIP over udp, media SRTP") {
		t.Errorf("(e)(1) %+v: clear signaling is a violation", f)
	}
	if f := finding(l, policy.ControlTransitIntegrity); f.Status != policy.StatusSatisfied {
		t.Errorf("(e)(2)(i) %+v", f)
	}
	n := 0
	for _, f := range c.Flows {
		if f.Class != report.FlowSRTP || f.By != "sdp" {
			t.Errorf("flow %+v", f)
		}
		// baresip may send its first packets in clear before its DTLS
		// handshake completes (seen: 50 of 100 packets at 172 bytes, the
		// rest at 182): the packets then rightly say rtp. Otherwise srtp.
		if f.PacketClass != report.FlowSRTP && (f.PacketClass != report.FlowRTP || f.Bytes == f.Packets*182) {
			t.Errorf("flow %+v: packets say %s", f, f.PacketClass)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d flows", n)
	}
}

// dump renders records for a failure message.
func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}
