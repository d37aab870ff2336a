// Package bench measures parapet's media hot path against bare pion/srtp in
// the same run, so the ratio holds on a noisy machine. See BENCHMARKS.md.
//
//	go test -run '^$' -bench . -benchmem -count 5 -cpu 1 ./bench/
package bench

import (
	"crypto/rand"
	"net/netip"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/parapet-sbc/parapet/media"
)

const ring = 1 << 16 // one sequence-number cycle of pre-encrypted packets

var (
	peerA = netip.MustParseAddrPort("127.0.0.1:40000")
	peerB = netip.MustParseAddrPort("127.0.0.1:40002")
)

type suite struct {
	name    string
	profile srtp.ProtectionProfile
}

var suites = []suite{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm},
}

func key(b *testing.B, s suite) []byte {
	kl, _ := s.profile.KeyLen()
	sl, _ := s.profile.SaltLen()
	k := make([]byte, kl+sl)
	rand.Read(k)
	return k
}

// stream pre-encrypts one ring of 20 ms G.711 packets (160-byte payload)
// with k, sequence numbers 0..65535.
func stream(b *testing.B, s suite, k []byte) [][]byte {
	kl, _ := s.profile.KeyLen()
	ctx, err := srtp.CreateContext(k[:kl], k[kl:], s.profile)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, ring)
	payload := make([]byte, 160)
	for i := range out {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 160, SSRC: 0xdecafbad}, Payload: payload}
		raw, _ := p.Marshal()
		if out[i], err = ctx.EncryptRTP(nil, raw, nil); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkPion is the floor: pion's own decrypt (with a 128-packet replay
// window, as parapet uses) then encrypt with another key, buffers reused.
func BenchmarkPion(b *testing.B) {
	for _, s := range suites {
		b.Run(s.name, func(b *testing.B) {
			kin, kout := key(b, s), key(b, s)
			pkts := stream(b, s, kin)
			kl, _ := s.profile.KeyLen()
			newDec := func() *srtp.Context {
				d, err := srtp.CreateContext(kin[:kl], kin[kl:], s.profile, srtp.SRTPReplayProtection(128))
				if err != nil {
					b.Fatal(err)
				}
				return d
			}
			dec := newDec()
			enc, _ := srtp.CreateContext(kout[:kl], kout[kl:], s.profile)
			var h1, h2 rtp.Header
			plain, out := make([]byte, 0, 1500), make([]byte, 0, 1500)
			b.ReportAllocs()
			b.SetBytes(172)
			b.ResetTimer()
			for i := range b.N {
				if i%ring == 0 && i > 0 {
					b.StopTimer()
					dec = newDec() // a new cycle needs a fresh replay window
					b.StartTimer()
				}
				var err error
				if plain, err = dec.DecryptRTP(plain[:0], pkts[i%ring], &h1); err != nil {
					b.Fatal(err)
				}
				if out, err = enc.EncryptRTP(out[:0], plain, &h2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelay is parapet's per-packet path for the same packets: RTP
// validation, source latching, replay check, authentication and decrypt
// with side A's key, re-encrypt with side B's, and the per-leg counters.
func BenchmarkRelay(b *testing.B) {
	for _, s := range suites {
		b.Run(s.name, func(b *testing.B) {
			kin, kout := key(b, s), key(b, s)
			pkts := stream(b, s, kin)
			in := &media.Crypto{Tag: 1, Suite: s.name, Key: kin}
			out := &media.Crypto{Tag: 1, Suite: s.name, Key: kout}
			pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 45000, 45999)
			if err != nil {
				b.Fatal(err)
			}
			var r *media.Relay
			var p *media.Processor
			setup := func() {
				if r != nil {
					r.Close()
				}
				r = media.NewRelay(pool, media.RelayConfig{})
				st, err := r.AddStream()
				if err != nil {
					b.Fatal(err)
				}
				st.Configure(media.SideA, media.PeerConfig{RTP: peerA, RTCP: peerA, In: in, Out: in})
				st.Configure(media.SideB, media.PeerConfig{RTP: peerB, RTCP: peerB, In: out, Out: out})
				p = st.Processor(media.SideA)
			}
			setup()
			defer func() { r.Close() }()
			b.ReportAllocs()
			b.SetBytes(172)
			b.ResetTimer()
			for i := range b.N {
				if i%ring == 0 && i > 0 {
					b.StopTimer()
					setup()
					b.StartTimer()
				}
				if o, _ := p.Handle(pkts[i%ring], peerA); o == nil {
					b.Fatal("packet dropped")
				}
			}
		})
	}
}

// BenchmarkRelayPlainToSRTP is the upgrade path: plain RTP from the PBX
// side, SRTP toward the carrier.
func BenchmarkRelayPlainToSRTP(b *testing.B) {
	s := suites[0]
	kout := key(b, s)
	pool, _ := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 46000, 46999)
	r := media.NewRelay(pool, media.RelayConfig{})
	defer r.Close()
	st, _ := r.AddStream()
	out := &media.Crypto{Tag: 1, Suite: s.name, Key: kout}
	st.Configure(media.SideA, media.PeerConfig{RTP: peerA, RTCP: peerA})
	st.Configure(media.SideB, media.PeerConfig{RTP: peerB, RTCP: peerB, In: out, Out: out})
	p := st.Processor(media.SideA)
	pkts := make([][]byte, ring)
	for i := range pkts {
		pk := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), SSRC: 7}, Payload: make([]byte, 160)}
		pkts[i], _ = pk.Marshal()
	}
	b.ReportAllocs()
	b.SetBytes(172)
	b.ResetTimer()
	for i := range b.N {
		if o, _ := p.Handle(pkts[i%ring], peerA); o == nil {
			b.Fatal("packet dropped")
		}
	}
}
