package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/parapet-sbc/parapet/media"
)

// BenchmarkDTLSHandshake measures one DTLS-SRTP key agreement through the
// relay: parapet as DTLS server on a fresh stream, a pion/dtls client with
// its own ECDSA P-256 certificate, on loopback, from the client's first
// flight until parapet has installed the SRTP keys. Setting up the stream
// and tearing it down are not timed. Both ends run on this machine, so
// ns/op (wall time) and cpu-ns/op (the process's CPU time, from getrusage)
// cover both sides of a call leg's handshake.
func BenchmarkDTLSHandshake(b *testing.B) {
	cert, err := media.NewDTLSCertificate()
	if err != nil {
		b.Fatal(err)
	}
	pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 44000, 44999)
	if err != nil {
		b.Fatal(err)
	}
	peer, fp := peerCertificate(b)
	suites := []string{"AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"}
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r := media.NewRelay(pool, media.RelayConfig{DTLS: cert})
		st, err := r.AddStream()
		if err != nil {
			b.Fatal(err)
		}
		r.Start()
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		if err := st.Configure(media.SideA, media.PeerConfig{RTP: addr, RTCP: addr, Mux: true,
			DTLS: &media.DTLSParams{Fingerprints: []media.Fingerprint{fp}, Suites: suites}}); err != nil {
			b.Fatal(err)
		}
		local := st.Local(media.SideA, netip.Addr{})
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr, uint16(local.Port)))
		c, err := dtls.ClientWithOptions(conn, to, dtls.WithCertificates(peer), dtls.WithInsecureSkipVerify(true),
			dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_256_GCM),
			dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cpu0 := processCPU(b)
		b.StartTimer()

		if err := c.HandshakeContext(ctx); err != nil {
			b.Fatal(err)
		}
		// parapet installs its keys just after the client's handshake
		// ends: yield until it has, rather than sleep past it.
		for {
			if k, _ := st.Keying(media.SideA); k.Done {
				break
			} else if k.Err != "" {
				b.Fatal(k.Err)
			}
			runtime.Gosched()
		}

		b.StopTimer()
		cpu += processCPU(b) - cpu0
		cancel()
		c.Close()
		conn.Close()
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peerCertificate is a self-signed ECDSA P-256 certificate and its SHA-256
// fingerprint, as a softphone would have.
func peerCertificate(b *testing.B) (tls.Certificate, media.Fingerprint) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, media.Fingerprint{Hash: "sha-256", Value: sum[:]}
}
