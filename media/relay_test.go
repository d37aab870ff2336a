package media

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known-answer vectors (libsrtp's classic test packet, as also used by
// pion/srtp): master key 000102..0f (..1f for 256-bit), master salt a0a1..,
// RTP packet SSRC 0xcafebabe, seq 0x1234, 16 bytes of 0xab.
var (
	vecPlain = "800f1234 decafbad cafebabe abababab abababab abababab abababab"
	vectors  = []struct {
		suite, key, salt, srtp string
	}{
		{"AES_CM_128_HMAC_SHA1_80", "000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaabacad",
			"800f1234 decafbad cafebabe e2d8df8f 7a75d688 c3502eee c2a98066 cd7c0d09 ca4432a5 6e3d"},
		{"AES_CM_128_HMAC_SHA1_32", "000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaabacad",
			"800f1234 decafbad cafebabe e2d8df8f 7a75d688 c3502eee c2a98066 cd7c0d09"},
		{"AEAD_AES_128_GCM", "000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab",
			"800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201 df3131a1 27e8a392"},
		{"AEAD_AES_256_GCM", "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab",
			"800f1234 decafbad cafebabe af49968f 7e9c43f8 01dd0c84 8b1ec9b0 29cdf85c b79a2f95 60d46975 98507725"},
	}
	peerA = netip.MustParseAddrPort("127.0.0.1:40000")
	peerB = netip.MustParseAddrPort("127.0.0.1:40002")
)

func vecCrypto(t testing.TB, suite, key, salt string) *Crypto {
	return &Crypto{Tag: 1, Suite: suite, Key: append(unhex(t, key), unhex(t, salt)...)}
}

func newTestRelay(t testing.TB) (*Relay, *RelayStream) {
	t.Helper()
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 42000, 42999)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRelay(pool, RelayConfig{})
	st, err := r.AddStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, st
}

func configure(t testing.TB, st *RelayStream, s Side, addr netip.AddrPort, in, out *Crypto) {
	t.Helper()
	if err := st.Configure(s, PeerConfig{RTP: addr, RTCP: netip.AddrPortFrom(addr.Addr(), addr.Port()+1), In: in, Out: out}); err != nil {
		t.Fatal(err)
	}
}

// The published SRTP packets go through the relay: decrypted exactly to the
// published plaintext, and the plaintext re-encrypted exactly to them.
func TestRelayKnownAnswerVectors(t *testing.T) {
	plain := unhex(t, vecPlain)
	for _, v := range vectors {
		t.Run(v.suite, func(t *testing.T) {
			c := vecCrypto(t, v.suite, v.key, v.salt)
			want := unhex(t, v.srtp)

			// SRTP (side A) → plain RTP (side B).
			_, st := newTestRelay(t)
			configure(t, st, SideA, peerA, c, c)
			configure(t, st, SideB, peerB, nil, nil)
			out, dst, _ := st.handle(st.sides[SideA], want, peerA, false, newScratch())
			if !bytes.Equal(out, plain) || dst != peerB {
				t.Fatalf("decrypt: got %x to %s, want %x to %s", out, dst, plain, peerB)
			}

			// Plain RTP (side B) → SRTP (side A): the exact published packet.
			_, st = newTestRelay(t)
			configure(t, st, SideA, peerA, c, c)
			configure(t, st, SideB, peerB, nil, nil)
			out, dst, _ = st.handle(st.sides[SideB], plain, peerB, false, newScratch())
			if !bytes.Equal(out, want) || dst != peerA {
				t.Fatalf("encrypt: got %x, want %x", out, want)
			}

			// SRTP → SRTP with the same key on both sides is the identity.
			_, st = newTestRelay(t)
			configure(t, st, SideA, peerA, c, c)
			configure(t, st, SideB, peerB, c, c)
			out, _, _ = st.handle(st.sides[SideA], want, peerA, false, newScratch())
			if !bytes.Equal(out, want) {
				t.Fatalf("re-encrypt: got %x, want %x", out, want)
			}
		})
	}
}

func freshCrypto(t testing.TB, suite string) *Crypto {
	c, err := NewCrypto(1, suite)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// packets encrypts n RTP packets with c, seq from first.
func packets(t testing.TB, c *Crypto, first uint16, n int) [][]byte {
	t.Helper()
	var ctx *srtp.Context
	if c != nil {
		var err error
		if ctx, err = newEncryptor(c); err != nil {
			t.Fatal(err)
		}
	}
	out := make([][]byte, n)
	for i := range out {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: first + uint16(i), Timestamp: uint32(i) * 160, SSRC: 0x11223344},
			Payload: bytes.Repeat([]byte{byte(i)}, 160)}
		raw, _ := p.Marshal()
		if c == nil {
			out[i] = raw
			continue
		}
		var err error
		if out[i], err = ctx.EncryptRTP(nil, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Replays, forgeries and packets from an unlatched source are dropped and
// counted, and never reach the other side.
func TestRelayRefusesReplayForgeryAndWrongSource(t *testing.T) {
	r, st := newTestRelay(t)
	inA, outA, outB := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80"), freshCrypto(t, "AES_CM_128_HMAC_SHA1_80"), freshCrypto(t, "AEAD_AES_128_GCM")
	configure(t, st, SideA, peerA, inA, outA)
	configure(t, st, SideB, peerB, freshCrypto(t, "AEAD_AES_128_GCM"), outB)
	sc := newScratch()
	pkts := packets(t, inA, 100, 3)
	a := st.sides[SideA]
	if out, _, _ := st.handle(a, pkts[0], peerA, false, sc); out == nil {
		t.Fatal("a valid packet was dropped")
	}
	if out, _, _ := st.handle(a, pkts[0], peerA, false, sc); out != nil {
		t.Error("a replayed packet was relayed")
	}
	forged := bytes.Clone(pkts[1])
	forged[20] ^= 1
	if out, _, _ := st.handle(a, forged, peerA, false, sc); out != nil {
		t.Error("a forged packet was relayed")
	}
	// The source latched to peerA; the same valid packet from elsewhere is refused.
	if out, _, _ := st.handle(a, pkts[1], netip.MustParseAddrPort("127.0.0.1:50000"), false, sc); out != nil {
		t.Error("a packet from another source was relayed")
	}
	if out, _, _ := st.handle(a, pkts[1], peerA, false, sc); out == nil {
		t.Error("the genuine packet was dropped after the forgery")
	}
	if out, _, _ := st.handle(a, []byte("not rtp at all, really"), peerA, false, sc); out != nil {
		t.Error("garbage was relayed")
	}
	// Plain RTCP on an SRTP leg (baresip sends one RTCP APP this way) is
	// well-formed but unprotected: dropped, and not an authentication
	// failure.
	plainRTCP := unhex(t, "80cc0003 11223344 50494e47 504f4e47")
	if out, _, _ := st.handle(a, plainRTCP, peerA, true, sc); out != nil {
		t.Error("unprotected RTCP was relayed")
	}
	k := r.Counters(SideA)
	if k.PacketsIn != 2 || k.Replays != 1 || k.AuthFailures != 1 || k.WrongSource != 1 || k.Malformed != 1 || k.Unprotected != 1 {
		t.Errorf("counters %+v", k)
	}
	if kb := r.Counters(SideB); kb.PacketsOut != 0 {
		t.Errorf("side b out counted by handle: %+v (serve counts sends)", kb)
	}
}

// A re-key (re-INVITE with a new key) replaces the context; an unchanged
// key keeps it, with its replay window.
func TestRelayConfigureKeepsUnchangedContexts(t *testing.T) {
	_, st := newTestRelay(t)
	in := freshCrypto(t, "AEAD_AES_256_GCM")
	configure(t, st, SideA, peerA, in, in)
	configure(t, st, SideB, peerB, nil, nil)
	before := st.sides[SideA].cfg.Load().decRTP
	configure(t, st, SideA, peerA, in, in)
	if st.sides[SideA].cfg.Load().decRTP != before {
		t.Error("same key, new context")
	}
	configure(t, st, SideA, peerA, freshCrypto(t, "AEAD_AES_256_GCM"), in)
	if st.sides[SideA].cfg.Load().decRTP == before {
		t.Error("new key, old context")
	}
}

// The per-packet path allocates nothing, for every pair of sides.
func TestRelayHotPathAllocatesNothing(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"srtp-cm to srtp-gcm", "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"},
		{"srtp-gcm to rtp", "AEAD_AES_256_GCM", ""},
		{"rtp to srtp-cm", "", "AES_CM_128_HMAC_SHA1_80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, st := newTestRelay(t)
			var inA, outB *Crypto
			if tc.a != "" {
				inA = freshCrypto(t, tc.a)
			}
			if tc.b != "" {
				outB = freshCrypto(t, tc.b)
			}
			configure(t, st, SideA, peerA, inA, inA)
			configure(t, st, SideB, peerB, outB, outB)
			pkts := packets(t, inA, 1, 2000)
			sc := newScratch()
			a := st.sides[SideA]
			st.handle(a, pkts[0], peerA, false, sc) // first packet of an SSRC allocates its state
			i := 1
			allocs := testing.AllocsPerRun(1000, func() {
				if out, _, _ := st.handle(a, pkts[i], peerA, false, sc); out == nil {
					t.Fatal("dropped")
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%.1f allocations per packet, want 0", allocs)
			}
		})
	}
}

// RTCP multiplexed on the RTP port is told apart and goes through SRTCP.
func TestRelayRTCPMux(t *testing.T) {
	_, st := newTestRelay(t)
	c := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80")
	if err := st.Configure(SideA, PeerConfig{RTP: peerA, RTCP: peerA, Mux: true, In: c, Out: c}); err != nil {
		t.Fatal(err)
	}
	configure(t, st, SideB, peerB, nil, nil)
	enc, _ := newEncryptor(c)
	sr := unhex(t, "81c8000b cafebabe abababab abababab abababab abababab abababab")
	pkt, err := enc.EncryptRTCP(nil, sr, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, dst, conn := st.handle(st.sides[SideA], pkt, peerA, false, newScratch())
	if !bytes.Equal(out, sr) || dst.Port() != peerB.Port()+1 || conn != st.sides[SideB].rtcp {
		t.Fatalf("muxed SRTCP: %x to %s", out, dst)
	}
}

// End to end over real sockets: SRTP in on A, GCM out on B, and back; the
// idle watchdog then ends the call; Close leaves no goroutine behind.
func TestRelayOverSockets(t *testing.T) {
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 43000, 43999)
	if err != nil {
		t.Fatal(err)
	}
	var idle atomic.Bool
	r := NewRelay(pool, RelayConfig{Timeout: 300 * time.Millisecond, OnIdle: func(time.Duration, bool) { idle.Store(true) }})
	defer r.Close()
	st, err := r.AddStream()
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	pb, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer pa.Close()
	defer pb.Close()
	aKey, aOut, bKey, bOut := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80"), freshCrypto(t, "AES_CM_128_HMAC_SHA1_80"),
		freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AEAD_AES_128_GCM")
	configure(t, st, SideA, pa.LocalAddr().(*net.UDPAddr).AddrPort(), aKey, aOut)
	configure(t, st, SideB, pb.LocalAddr().(*net.UDPAddr).AddrPort(), bKey, bOut)
	r.Start()
	r.Watch()

	toRelayA := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(st.Local(SideA, netip.Addr{}).Port))
	dec, _ := srtp.CreateContext(bOut.Key[:16], bOut.Key[16:], srtp.ProtectionProfileAeadAes128Gcm)
	buf := make([]byte, 2048)
	for i, p := range packets(t, aKey, 500, 20) {
		pa.WriteToUDPAddrPort(p, toRelayA)
		pb.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := pb.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("packet %d never arrived: %v", i, err)
		}
		if from.Port() != uint16(st.Local(SideB, netip.Addr{}).Port) {
			t.Errorf("came from %s, not parapet's side-B port", from)
		}
		plain, err := dec.DecryptRTP(nil, buf[:n], nil)
		if err != nil || !bytes.Equal(plain[12:], bytes.Repeat([]byte{byte(i)}, 160)) {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for !idle.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !idle.Load() {
		t.Error("idle watchdog did not fire")
	}
	k := r.Counters(SideB)
	if k.PacketsOut != 20 || k.BytesOut != 20*(12+160+16) {
		t.Errorf("side b counters %+v", k)
	}
}

func TestPortPool(t *testing.T) {
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 44001, 44008)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Pairs() != 3 {
		t.Fatalf("pairs %d", pool.Pairs())
	}
	// A stream takes a pair per side: the first fits, the second does not.
	r := NewRelay(pool, RelayConfig{})
	st, err := r.AddStream()
	if err != nil {
		t.Fatalf("first stream: %v", err)
	}
	a, b := st.Local(SideA, netip.Addr{}).Port, st.Local(SideB, netip.Addr{}).Port
	for _, p := range []int{a, b} {
		if p%2 != 0 || p < 44002 || p > 44006 {
			t.Errorf("RTP port %d: odd or outside 44002-44007", p)
		}
	}
	if a == b {
		t.Errorf("both sides got port %d", a)
	}
	if pool.InUse() != 2 {
		t.Errorf("%d pairs in use, want 2", pool.InUse())
	}
	if _, err := r.AddStream(); err == nil {
		t.Error("pool handed out more pairs than it has")
	}
	r.Close()
	if pool.InUse() != 0 {
		t.Errorf("%d pairs still held after Close", pool.InUse())
	}
	for _, bad := range [][2]int{{100, 2000}, {40000, 40001}, {60000, 70000}} {
		if _, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), bad[0], bad[1]); err == nil {
			t.Errorf("range %v accepted", bad)
		}
	}
}

// A plain-RTP side latches only from its peer's own addresses: a stranger's
// packet, sent first, neither takes the stream over nor gets its media
// (RTP bleed).
func TestRelayPlainLatchOnlyFromPeerAddresses(t *testing.T) {
	r, st := newTestRelay(t)
	stranger := netip.MustParseAddrPort("192.0.2.66:4000")
	pbxNAT := netip.AddrPortFrom(peerB.Addr(), 40123) // the PBX's address, another port
	if err := st.Configure(SideB, PeerConfig{RTP: peerB, RTCP: netip.AddrPortFrom(peerB.Addr(), peerB.Port()+1),
		Sources: []netip.Addr{peerB.Addr()}}); err != nil {
		t.Fatal(err)
	}
	configure(t, st, SideA, peerA, freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AEAD_AES_128_GCM"))
	sc := newScratch()
	b := st.sides[SideB]
	pkts := packets(t, nil, 10, 3)
	if out, _, _ := st.handle(b, pkts[0], stranger, false, sc); out != nil {
		t.Fatal("a stranger's plain packet was relayed")
	}
	if out, _, _ := st.handle(b, pkts[1], pbxNAT, false, sc); out == nil {
		t.Fatal("the PBX's packet, from another port of its address, was dropped")
	}
	if out, _, _ := st.handle(b, pkts[2], stranger, false, sc); out != nil {
		t.Error("a stranger's packet was relayed after the latch")
	}
	// Media toward side B goes where the PBX really sends from.
	if l := b.latchRTP.Load(); l == nil || *l != pbxNAT {
		t.Errorf("side B latched to %v, want %s", l, pbxNAT)
	}
	if k := r.Counters(SideB); k.WrongSource != 2 || k.PacketsIn != 1 {
		t.Errorf("counters %+v", k)
	}
}

// Plain RTP encrypted toward an SRTP side never reuses a packet index: a
// repeated sequence number is dropped (it would reuse the key stream), and
// a phone that restarts its numbering is renumbered to go on.
func TestRelayPlainToSRTPNeverReusesAnIndex(t *testing.T) {
	r, st := newTestRelay(t)
	out := freshCrypto(t, "AEAD_AES_128_GCM")
	configure(t, st, SideA, peerA, freshCrypto(t, "AEAD_AES_128_GCM"), out)
	configure(t, st, SideB, peerB, nil, nil)
	dec, err := newDecryptor(out)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScratch()
	b := st.sides[SideB]
	ssrc := uint32(0x5eed)
	send := func(seq uint16, fill byte) (uint16, bool) {
		t.Helper()
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, SSRC: ssrc}, Payload: bytes.Repeat([]byte{fill}, 160)}
		raw, _ := p.Marshal()
		o, _, _ := st.handle(b, raw, peerB, false, sc)
		if o == nil {
			return 0, false
		}
		var h rtp.Header
		plain, err := dec.ctx.DecryptRTP(nil, o, &h)
		if err != nil || plain[len(plain)-1] != fill {
			t.Fatalf("seq %d: the far end cannot decrypt it: %v", seq, err)
		}
		return h.SequenceNumber, true
	}
	for seq := uint16(1000); seq < 1010; seq++ {
		if got, ok := send(seq, byte(seq)); !ok || got != seq {
			t.Fatalf("seq %d sent as %d (%v)", seq, got, ok)
		}
	}
	if _, ok := send(1005, 0xee); ok {
		t.Error("a repeated sequence number with another payload was encrypted again")
	}
	if _, ok := send(900, 0xee); ok {
		t.Error("a packet 109 behind, neither fresh nor a restart, was encrypted")
	}
	// The phone restarts at 1: parapet goes on at 1010, 1011.
	if got, ok := send(1, 0x01); !ok || got != 1010 {
		t.Errorf("after a restart: sent as %d (%v), want 1010", got, ok)
	}
	if got, ok := send(2, 0x02); !ok || got != 1011 {
		t.Errorf("after a restart: sent as %d (%v), want 1011", got, ok)
	}
	// Another SSRC has its own numbering, which wraps at 65535 without a fuss.
	ssrc = 0xbeef
	for seq := uint16(65530); seq != 5; seq++ {
		if got, ok := send(seq, byte(seq)); !ok || got != seq {
			t.Fatalf("seq %d around the wrap sent as %d (%v)", seq, got, ok)
		}
	}
	if k := r.Counters(SideB); k.Replays != 2 {
		t.Errorf("counters %+v, want 2 replays", k)
	}
}

// Plain RTCP whose length fields do not fit the packet is malformed, not
// relayed (encrypted, it would look vouched for).
func TestRTCPLengths(t *testing.T) {
	sr := unhex(t, "80c80006 11223344 00000000 00000000 00000000 00000000 00000000")
	rr := unhex(t, "81c90007 11223344 55667788 00000000 00000000 00000000 00000000 00000000")
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"sender report", sr, true},
		{"compound SR+RR", append(bytes.Clone(sr), rr...), true},
		{"SR claiming 28 bytes in 8", sr[:8], false},
		{"trailing bytes", append(bytes.Clone(sr), 0, 0, 0, 0), false},
		{"second part not version 2", append(bytes.Clone(sr), 0x01, 0xc9, 0x00, 0x00), false},
	} {
		if got := rtcpLengthsOK(tc.pkt); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.ok)
		}
	}
	r, st := newTestRelay(t)
	configure(t, st, SideA, peerA, freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AEAD_AES_128_GCM"))
	configure(t, st, SideB, peerB, nil, nil)
	if out, _, _ := st.handle(st.sides[SideB], sr[:8], netip.AddrPortFrom(peerB.Addr(), peerB.Port()+1), true, newScratch()); out != nil {
		t.Error("a truncated sender report was relayed")
	}
	if out, _, _ := st.handle(st.sides[SideB], sr, netip.AddrPortFrom(peerB.Addr(), peerB.Port()+1), true, newScratch()); out == nil {
		t.Error("a valid sender report was dropped")
	}
	if k := r.Counters(SideB); k.Malformed != 1 {
		t.Errorf("counters %+v", k)
	}
}

// RTP whose padding count does not fit (RFC 3550 appendix A.1) is
// malformed: not relayed from a plain side, nor from an SRTP side whose
// peer authenticated it.
func TestRTPPaddingChecked(t *testing.T) {
	rtpPkt := func(pad byte, last byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7, SSRC: 0x1234},
			Payload: bytes.Repeat([]byte{0xd5}, 20)}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if pad > 0 {
			b[0] |= 0x20 // the padding bit, with the count written by hand
			b = append(b, make([]byte, pad-1)...)
			b = append(b, last)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"no padding", rtpPkt(0, 0), true},
		{"4 bytes of padding", rtpPkt(4, 4), true},
		{"padding count 0", rtpPkt(4, 0), false},
		{"padding count past the header", rtpPkt(4, 40), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aKey := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80")
			for _, fromSRTP := range []bool{false, true} {
				r, st := newTestRelay(t)
				in := tc.pkt
				if fromSRTP {
					configure(t, st, SideA, peerA, aKey, aKey)
					enc, err := newEncryptor(aKey)
					if err != nil {
						t.Fatal(err)
					}
					if in, err = enc.EncryptRTP(nil, tc.pkt, nil); err != nil {
						t.Fatal(err)
					}
				} else {
					configure(t, st, SideA, peerA, nil, nil)
				}
				configure(t, st, SideB, peerB, freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AEAD_AES_128_GCM"))
				out, _, _ := st.handle(st.sides[SideA], in, peerA, false, newScratch())
				if (out != nil) != tc.ok {
					t.Errorf("from SRTP %v: relayed %v, want %v", fromSRTP, out != nil, tc.ok)
				}
				if k := r.Counters(SideA); !tc.ok && k.Malformed != 1 {
					t.Errorf("from SRTP %v: counters %+v", fromSRTP, k)
				}
			}
		})
	}
}
