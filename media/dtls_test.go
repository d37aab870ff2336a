package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"
)

// dtlsPeer is an independent DTLS-SRTP endpoint (pion/dtls and pion/srtp
// used directly, not through the relay) on its own UDP socket.
type dtlsPeer struct {
	conn *net.UDPConn
	cert *DTLSCertificate
	tx   *srtp.Context // encrypts what the peer sends
	rx   *srtp.Context // decrypts what it receives
	dtls chan []byte   // DTLS records received, for pion
	// ciphers, when set, are the only cipher suites the peer offers.
	ciphers []dtls.CipherSuiteID
	media   chan []byte // everything else received
	dl      *deadline.Deadline
}

func newDTLSPeer(t *testing.T) *dtlsPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := NewDTLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	p := &dtlsPeer{conn: c, cert: cert, dtls: make(chan []byte, 64), media: make(chan []byte, 64), dl: deadline.New()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			ch := p.media
			if isDTLS(buf[:n]) {
				ch = p.dtls
			}
			select {
			case ch <- bytes.Clone(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func (p *dtlsPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// handshake runs the peer's side against relay address to, as client or
// server, offering profiles, and derives its SRTP contexts.
func (p *dtlsPeer) handshake(t *testing.T, to netip.AddrPort, client bool, profiles []dtls.SRTPProtectionProfile) error {
	t.Helper()
	opts := []dtls.Option{dtls.WithCertificates(p.cert.cert), dtls.WithSRTPProtectionProfiles(profiles...),
		dtls.WithInsecureSkipVerify(true), dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		// Longer than the test's patience: a lost flight fails the test
		// rather than being resent.
		dtls.WithFlightInterval(time.Minute)}
	if len(p.ciphers) > 0 {
		opts = append(opts, dtls.WithCipherSuites(p.ciphers...))
	}
	ra := net.UDPAddrFromAddrPort(to)
	conn, err := dtlsConn(&peerPacketConn{p: p, to: ra}, ra, client, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return err
	}
	t.Cleanup(func() { conn.Close() })
	prof, _ := conn.SelectedSRTPProtectionProfile()
	suite, _ := suiteOfProfile(prof)
	sp, err := Profile(suite)
	if err != nil {
		return err
	}
	state, _ := conn.ConnectionState()
	sc := srtp.Config{Profile: sp}
	if err := sc.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return err
	}
	if p.tx, err = srtp.CreateContext(sc.Keys.LocalMasterKey, sc.Keys.LocalMasterSalt, sp); err != nil {
		return err
	}
	p.rx, err = srtp.CreateContext(sc.Keys.RemoteMasterKey, sc.Keys.RemoteMasterSalt, sp)
	return err
}

// peerPacketConn is what pion/dtls reads and writes on the test peer: the
// DTLS records of its socket; the test reads the rest (recv).
type peerPacketConn struct {
	p      *dtlsPeer
	to     *net.UDPAddr
	closed chan struct{}
	once   sync.Once
}

func (c *peerPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case pkt := <-c.p.dtls:
		return copy(b, pkt), c.to, nil
	case <-c.p.dl.Done():
		return 0, nil, timeoutError{}
	case <-c.done():
		return 0, nil, net.ErrClosed
	}
}

func (c *peerPacketConn) done() chan struct{} {
	c.once.Do(func() {
		if c.closed == nil {
			c.closed = make(chan struct{})
		}
	})
	return c.closed
}

func (c *peerPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.p.conn.WriteTo(b, c.to) }
func (c *peerPacketConn) Close() error {
	select {
	case <-c.done():
	default:
		close(c.done())
	}
	return nil
}
func (c *peerPacketConn) LocalAddr() net.Addr                { return c.p.conn.LocalAddr() }
func (c *peerPacketConn) SetDeadline(t time.Time) error      { c.p.dl.Set(t); return nil }
func (c *peerPacketConn) SetReadDeadline(t time.Time) error  { c.p.dl.Set(t); return nil }
func (c *peerPacketConn) SetWriteDeadline(_ time.Time) error { return nil }

// recv waits for a non-DTLS packet.
func (p *dtlsPeer) recv(t *testing.T) []byte {
	t.Helper()
	select {
	case pkt := <-p.media:
		return pkt
	case <-time.After(5 * time.Second):
		t.Fatal("the peer received nothing")
	}
	return nil
}

func TestRelayDTLSSRTP(t *testing.T) {
	for _, tc := range []struct {
		name         string
		parapetIsCli bool
		early        bool // the peer's ClientHello arrives before parapet configured the side
		peer         []dtls.SRTPProtectionProfile
		want         string
	}{
		{"parapet server, GCM", false, false, []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}, "AEAD_AES_256_GCM"},
		{"parapet client, SHA1_80 only", true, false, []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, "AES_CM_128_HMAC_SHA1_80"},
		{"ClientHello before the answer is read", false, true, []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}, "AEAD_AES_128_GCM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := startDTLSRelay(t, nil)

			a := newDTLSPeer(t)
			b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			bAddr := b.LocalAddr().(*net.UDPAddr).AddrPort()

			configureA := func() {
				if err := st.Configure(SideA, PeerConfig{RTP: a.addr(), RTCP: a.addr(), Mux: true, DTLS: &DTLSParams{
					Client: tc.parapetIsCli, Fingerprints: []Fingerprint{a.cert.Fingerprint()},
					Suites: []string{"AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"}}}); err != nil {
					t.Error(err)
				}
			}
			if !tc.early {
				configureA()
				if k, ok := st.Keying(SideA); !ok || k.Done {
					t.Fatalf("keying before the handshake: %+v %v", k, ok)
				}
			} else {
				time.AfterFunc(200*time.Millisecond, configureA)
			}
			if err := st.Configure(SideB, PeerConfig{RTP: bAddr, RTCP: bAddr, Mux: true}); err != nil {
				t.Fatal(err)
			}
			relayA := st.Local(SideA, netip.Addr{})
			if err := a.handshake(t, netip.AddrPortFrom(relayA.Addr, uint16(relayA.Port)), !tc.parapetIsCli, tc.peer); err != nil {
				t.Fatal(err)
			}
			waitKeyed(t, st, SideA, tc.want)

			// A → B: SRTP in, the plaintext out.
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7, Timestamp: 160, SSRC: 0x1234}, Payload: []byte("hello, clinic")}
			raw, _ := pkt.Marshal()
			enc, err := a.tx.EncryptRTP(nil, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.conn.WriteToUDPAddrPort(enc, netip.AddrPortFrom(relayA.Addr, uint16(relayA.Port))); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := b.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[12:n]) != "hello, clinic" {
				t.Fatalf("B got %q, %v", buf[:n], err)
			}

			// B → A: plaintext in, SRTP out that decrypts with A's keys.
			relayB := st.Local(SideB, netip.Addr{})
			pkt.SequenceNumber, pkt.Payload = 9, []byte("and back")
			raw, _ = pkt.Marshal()
			if _, err := b.WriteToUDPAddrPort(raw, netip.AddrPortFrom(relayB.Addr, uint16(relayB.Port))); err != nil {
				t.Fatal(err)
			}
			got := a.recv(t)
			if strings.Contains(string(got), "and back") {
				t.Fatal("plaintext on the DTLS-SRTP side")
			}
			dec, err := a.rx.DecryptRTP(nil, got, nil)
			if err != nil || !strings.HasSuffix(string(dec), "and back") {
				t.Fatalf("A could not decrypt: %v %q", err, dec)
			}
		})
	}
}

// startDTLSRelay starts a relay with a DTLS certificate and one stream.
func startDTLSRelay(t *testing.T, onFailed func(Side, error)) *RelayStream {
	t.Helper()
	cert, err := NewDTLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 43000, 43999)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRelay(pool, RelayConfig{DTLS: cert, OnKeyingFailed: onFailed})
	t.Cleanup(r.Close)
	st, err := r.AddStream()
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	return st
}

func waitKeyed(t *testing.T, st *RelayStream, s Side, suite string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if k, _ := st.Keying(s); k.Done {
			if k.Suite != suite {
				t.Fatalf("suite %s, want %s", k.Suite, suite)
			}
			return
		}
	}
	k, _ := st.Keying(s)
	t.Fatalf("side %s not keyed: %+v", s, k)
}

// A peer whose certificate does not match its SDP fingerprint is refused,
// the failure is reported, and no media flows to or from it.
func TestRelayDTLSFingerprintMismatch(t *testing.T) {
	var mu sync.Mutex
	var failed error
	st := startDTLSRelay(t, func(_ Side, err error) { mu.Lock(); failed = err; mu.Unlock() })
	a := newDTLSPeer(t)
	other, _ := NewDTLSCertificate()
	if err := st.Configure(SideA, PeerConfig{RTP: a.addr(), RTCP: a.addr(), Mux: true, DTLS: &DTLSParams{
		Fingerprints: []Fingerprint{other.Fingerprint()}, Suites: []string{"AES_CM_128_HMAC_SHA1_80"}}}); err != nil {
		t.Fatal(err)
	}
	relayA := st.Local(SideA, netip.Addr{})
	if err := a.handshake(t, netip.AddrPortFrom(relayA.Addr, uint16(relayA.Port)), true,
		[]dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}); err == nil {
		t.Fatal("handshake with a certificate that does not match the fingerprint succeeded")
	} else {
		t.Logf("peer: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		f := failed
		mu.Unlock()
		if f != nil {
			if !errors.Is(f, ErrFingerprint) && !strings.Contains(f.Error(), "fingerprint") {
				t.Errorf("failure %v, want the fingerprint mismatch", f)
			}
			k, _ := st.Keying(SideA)
			if k.Done || k.Err == "" {
				t.Errorf("keying %+v", k)
			}
			// A plain RTP packet from the peer is not relayed.
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: []byte("x")}
			raw, _ := pkt.Marshal()
			if out, _, _ := st.handle(st.sides[SideA], raw, a.addr(), false, newScratch()); out != nil {
				t.Error("plain RTP relayed from an unkeyed DTLS-SRTP side")
			}
			return
		}
	}
	k, ok := st.Keying(SideA)
	t.Fatalf("the failed handshake was not reported: %+v %v", k, ok)
}

// A peer that offers only a CBC cipher suite is refused: parapet's DTLS
// takes ECDHE with AEAD ciphers only.
func TestRelayDTLSRefusesCBC(t *testing.T) {
	var mu sync.Mutex
	var failed error
	st := startDTLSRelay(t, func(_ Side, err error) { mu.Lock(); failed = err; mu.Unlock() })
	a := newDTLSPeer(t)
	a.ciphers = []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	if err := st.Configure(SideA, PeerConfig{RTP: a.addr(), RTCP: a.addr(), Mux: true, DTLS: &DTLSParams{
		Fingerprints: []Fingerprint{a.cert.Fingerprint()}, Suites: []string{"AES_CM_128_HMAC_SHA1_80"}}}); err != nil {
		t.Fatal(err)
	}
	relayA := st.Local(SideA, netip.Addr{})
	if err := a.handshake(t, netip.AddrPortFrom(relayA.Addr, uint16(relayA.Port)), true,
		[]dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}); err == nil {
		t.Fatal("a CBC-only handshake succeeded")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		f := failed
		mu.Unlock()
		if f != nil {
			if k, _ := st.Keying(SideA); k.Done {
				t.Errorf("keyed after a refused handshake: %+v", k)
			}
			// Refused for its cipher suite, not for anything else.
			if !strings.Contains(strings.ToLower(f.Error()), "cipher") {
				t.Errorf("handshake failed for another reason: %v", f)
			}
			return
		}
	}
	t.Fatal("the refused handshake was not reported")
}
