package bench

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/parapet-sbc/parapet/media"
)

// window bounds packets in flight so the loopback path never drops.
const window = 32

// pump sends b.N packets from src to dst through a relay and waits for each
// window to arrive at sink. It reports ns per relayed packet, including the
// kernel's loopback path twice (in and out of the relay).
func pump(b *testing.B, pkts [][]byte, src, sink *net.UDPConn, relayIn netip.AddrPort) {
	if b.N > ring {
		b.Skipf("b.N=%d exceeds one sequence cycle (%d); use -benchtime=20000x", b.N, ring)
	}
	buf := make([]byte, 2048)
	b.SetBytes(172)
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			if _, err := src.WriteToUDPAddrPort(pkts[sent%ring], relayIn); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatalf("lost packets: %d sent, %d received: %v", sent, got, err)
		}
		got++
	}
}

func udp(b *testing.B) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadBuffer(1 << 20)
	return c
}

func addr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// The loopback benchmarks send at most one sequence cycle per stream: run
// them with -benchtime=20000x (make bench does).

// BenchmarkLoopbackPion is a minimal relay built on bare pion: one
// goroutine reads a socket, decrypts, re-encrypts and writes to the sink.
func BenchmarkLoopbackPion(b *testing.B) {
	s := suites[1] // AEAD_AES_128_GCM
	kin, kout := key(b, s), key(b, s)
	pkts := stream(b, s, kin)
	src, sink, in, out := udp(b), udp(b), udp(b), udp(b)
	defer src.Close()
	defer sink.Close()
	kl, _ := s.profile.KeyLen()
	dec, _ := srtp.CreateContext(kin[:kl], kin[kl:], s.profile, srtp.SRTPReplayProtection(128))
	enc, _ := srtp.CreateContext(kout[:kl], kout[kl:], s.profile)
	to := addr(sink)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, plain, o := make([]byte, 2048), make([]byte, 2048), make([]byte, 0, 2048)
		var h1, h2 rtp.Header
		for {
			n, _, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p, err := dec.DecryptRTP(plain, buf[:n], &h1)
			if err != nil {
				continue
			}
			if o, err = enc.EncryptRTP(o[:0], p, &h2); err != nil {
				continue
			}
			out.WriteToUDPAddrPort(o, to)
		}
	}()
	pump(b, pkts, src, sink, addr(in))
	b.StopTimer()
	in.Close()
	out.Close()
	<-done
}

// BenchmarkLoopbackRelay is parapet's relay on the same path.
func BenchmarkLoopbackRelay(b *testing.B) {
	s := suites[1]
	kin, kout := key(b, s), key(b, s)
	pkts := stream(b, s, kin)
	src, sink := udp(b), udp(b)
	defer src.Close()
	defer sink.Close()
	pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 47000, 47999)
	if err != nil {
		b.Fatal(err)
	}
	r := media.NewRelay(pool, media.RelayConfig{})
	defer r.Close()
	st, err := r.AddStream()
	if err != nil {
		b.Fatal(err)
	}
	in := &media.Crypto{Tag: 1, Suite: s.name, Key: kin}
	out := &media.Crypto{Tag: 1, Suite: s.name, Key: kout}
	st.Configure(media.SideA, media.PeerConfig{RTP: addr(src), RTCP: addr(src), In: in, Out: in})
	st.Configure(media.SideB, media.PeerConfig{RTP: addr(sink), RTCP: addr(sink), In: out, Out: out})
	r.Start()
	pump(b, pkts, src, sink, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(st.Local(media.SideA, netip.Addr{}).Port)))
	b.StopTimer() // the deferred Close is teardown, as in BenchmarkLoopbackPion
}
