package audit

// Real captures for the tests: two baresip instances calling each other on
// loopback, recorded by dumpcap (internal/peers drives both). The tools must
// be installed: a missing one fails the test (it does not skip).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/internal/peers"
)

// portBlock returns the first of n free consecutive ports (UDP and TCP),
// chosen at random so parallel runs do not collide, in 10000-19999: the
// captures filter on the block, so it must hold no port another package's
// tests use at the same time (cmd's 20000-29999, b2bua's and media's
// 30000-45999) nor any ephemeral port (32768 up), from which a concurrent
// test's client could send into the capture.
func portBlock(t *testing.T, n int) int {
	t.Helper()
	return peers.PortBlock(t, 10000, 20000, n)
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
	cap := peers.StartCapture(t, fmt.Sprintf("portrange %d-%d", base, base+99), pcapng, pcap)
	// A phone at base: SIP base (TLS +1), ctrl +2, RTP +20..39.
	phone := func(name string, base int) *peers.Baresip {
		return peers.StartBaresip(t, peers.BaresipConfig{Name: name, SIPPort: base, CtrlPort: base + 2,
			RTPLo: base + 20, RTPHi: base + 39, Tone: 440 + base%200,
			Transport: transport, MediaEnc: menc, TLSBundle: bundle})
	}
	bob := phone("bob", base+50)
	alice := phone("alice", base)
	port := bob.Config().SIPPort
	if transport == "tls" {
		port++
	}
	uri := fmt.Sprintf("sip:bob@127.0.0.1:%d", port)
	if transport != "tls" {
		uri += ";transport=" + transport
	}
	if err := alice.Command("dial", uri); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peers.Baresip{alice, bob} {
		if ev, err := p.WaitEvent(15*time.Second, "CALL_ESTABLISHED", "CALL_CLOSED"); err != nil || ev["type"] != "CALL_ESTABLISHED" {
			t.Fatalf("call not established (%v, %v)\nalice:\n%s\nbob:\n%s", ev, err, alice.Log(), bob.Log())
		}
	}
	time.Sleep(hold)
	alice.Command("hangup", "")
	if _, err := bob.WaitEvent(5*time.Second, "CALL_CLOSED"); err != nil {
		t.Fatal(err)
	}
	cap.Stop()
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

// testCert is a self-signed certificate (DER) and its key.
func testCert(tb testing.TB) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	_, _, der, key := selfSigned(tb, tb.TempDir())
	return der, key
}
