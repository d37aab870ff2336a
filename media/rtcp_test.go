package media

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// rtcpRR is a receiver report (one report block) from ssrc: a plain RTCP
// compound packet whose length field walks exactly to its end.
func rtcpRR(ssrc uint32) []byte {
	p := unhexMust("81c90007 00000000 55667788 00000000 00000000 00000000 00000000 00000000")
	binary.BigEndian.PutUint32(p[4:], ssrc)
	return p
}

// rtcpPing is baresip's clear RTCP APP "PING" (16 bytes).
func rtcpPing(ssrc uint32) []byte {
	p := unhexMust("80cc0003 00000000 50494e47 504f4e47")
	binary.BigEndian.PutUint32(p[4:], ssrc)
	return p
}

func unhexMust(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// udpPeer is a test peer's socket on loopback.
func udpPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// farEnd counts what a peer socket receives from the relay: RTP and RTCP
// (told apart as on a muxed port), and how many RTCP packets decrypt with
// dec (nil: counted as they are).
type farEnd struct {
	rtp, rtcp, rtcpOK atomic.Int64
}

func (f *farEnd) read(c *net.UDPConn, dec *srtp.Context, done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 2048)
	for {
		select {
		case <-done:
			return
		default:
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if isRTCP(buf[:n]) {
			f.rtcp.Add(1)
			if dec != nil {
				if _, err := dec.DecryptRTCP(nil, buf[:n], nil); err == nil {
					f.rtcpOK.Add(1)
				}
			}
			continue
		}
		f.rtp.Add(1)
	}
}

// sender sends packets to a relay port, pacing so that no socket buffer
// overflows.
func sender(c *net.UDPConn, to netip.AddrPort, pkts [][]byte, wg *sync.WaitGroup) {
	defer wg.Done()
	for i, p := range pkts {
		c.WriteToUDPAddrPort(p, to)
		if i%16 == 15 {
			time.Sleep(time.Millisecond)
		}
	}
}

// srtcpPackets encrypts n receiver reports from ssrc with c; plain is
// every packet's clear counterpart, interleaved: SRTCP, clear, SRTCP, ...
func srtcpAndPlain(t *testing.T, c *Crypto, ssrc uint32, n int) [][]byte {
	t.Helper()
	enc, err := newEncryptor(c)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for range n {
		p, err := enc.EncryptRTCP(nil, rtcpRR(ssrc), nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p, rtcpPing(ssrc))
	}
	return out
}

// One owner per crypto context: SRTCP and clear RTCP sent to both ports of
// a non-muxed side (A) and of a muxed side (B), concurrently with SRTP,
// over real sockets. Run with -race: a context used by two readers at once
// fails it. Whatever arrives where the negotiation does not carry RTCP is
// dropped; SRTCP where it does is relayed, re-encrypted.
func TestRelayRTCPOwnership(t *testing.T) {
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 45000, 45999)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRelay(pool, RelayConfig{})
	defer r.Close()
	st, err := r.AddStream()
	if err != nil {
		t.Fatal(err)
	}
	pa, paC, pb := udpPeer(t), udpPeer(t), udpPeer(t)
	aIn, aOut := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80"), freshCrypto(t, "AES_CM_128_HMAC_SHA1_80")
	bIn, bOut := freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AEAD_AES_128_GCM")
	if err := st.Configure(SideA, PeerConfig{RTP: addrOf(pa), RTCP: addrOf(paC), In: aIn, Out: aOut}); err != nil {
		t.Fatal(err)
	}
	if err := st.Configure(SideB, PeerConfig{RTP: addrOf(pb), RTCP: addrOf(pb), Mux: true, In: bIn, Out: bOut}); err != nil {
		t.Fatal(err)
	}
	r.Start()
	local := func(s Side, rtcp bool) netip.AddrPort {
		l := st.Local(s, netip.Addr{})
		p := l.Port
		if rtcp {
			p = l.RTCPPort
		}
		return netip.AddrPortFrom(l.Addr, uint16(p))
	}

	const n = 150
	decA, _ := newEncryptor(aOut) // a context decrypts too: what parapet sent toward A
	decB, _ := newEncryptor(bOut)
	var fa, faC, fb farEnd
	done := make(chan struct{})
	var readers, senders sync.WaitGroup
	readers.Add(3)
	go fa.read(pa, nil, done, &readers)
	go faC.read(paC, decA, done, &readers)
	go fb.read(pb, decB, done, &readers)

	senders.Add(5)
	// Side A, not muxed: SRTP to its RTP port; SRTCP and clear RTCP to its
	// RTCP port (the right one) and, from the same address, to its RTP
	// port (the wrong one: there it is RTP, and fails as such).
	go sender(pa, local(SideA, false), packets(t, aIn, 1000, n), &senders)
	go sender(paC, local(SideA, true), srtcpAndPlain(t, aIn, 0xa1, n), &senders)
	go sender(paC, local(SideA, false), srtcpAndPlain(t, aIn, 0xa2, n), &senders)
	// Side B, muxed: SRTP, SRTCP and clear RTCP to its RTP port (the right
	// one); SRTCP and clear RTCP to its RTCP port (nothing is agreed there).
	bRTP := packets(t, bIn, 2000, n)
	mux := srtcpAndPlain(t, bIn, 0xb1, n)
	var bMixed [][]byte
	for i := range n {
		bMixed = append(bMixed, bRTP[i], mux[2*i], mux[2*i+1])
	}
	go sender(pb, local(SideB, false), bMixed, &senders)
	go sender(pb, local(SideB, true), srtcpAndPlain(t, bIn, 0xb2, n), &senders)
	senders.Wait()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (fb.rtp.Load() < n || fb.rtcp.Load() < n || fa.rtp.Load() < n || faC.rtcp.Load() < n) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything that should not come
	close(done)
	readers.Wait()

	// Toward B (muxed): A's SRTP and the SRTCP A sent to its RTCP port,
	// re-encrypted with B's key; nothing of what A sent to the wrong port.
	if fb.rtp.Load() != n || fb.rtcp.Load() != n || fb.rtcpOK.Load() != n {
		t.Errorf("B's peer got %d RTP, %d RTCP (%d decrypt), want %d each", fb.rtp.Load(), fb.rtcp.Load(), fb.rtcpOK.Load(), n)
	}
	// Toward A (not muxed): B's SRTP on A's RTP port, B's muxed SRTCP on A's
	// RTCP port; nothing of what B sent to its RTCP port.
	if fa.rtp.Load() != n || fa.rtcp.Load() != 0 || faC.rtcp.Load() != n || faC.rtcpOK.Load() != n || faC.rtp.Load() != 0 {
		t.Errorf("A's peer got %d RTP and %d RTCP on its RTP port, %d RTCP (%d decrypt) and %d RTP on its RTCP port; want %d, 0, %d, %d, 0",
			fa.rtp.Load(), fa.rtcp.Load(), faC.rtcp.Load(), faC.rtcpOK.Load(), faC.rtp.Load(), n, n, n)
	}
	// Every packet counted once. A: SRTP and the right port's SRTCP in;
	// the right port's clear RTCP unprotected; what went to the RTP port
	// is RTP there, failing as such (from a source other than the latched
	// one, or not authentic, or too short for SRTP: unprotected).
	ka, kb := r.Counters(SideA), r.Counters(SideB)
	if dropped := ka.WrongSource + ka.AuthFailures + ka.Replays + ka.Unprotected; ka.PacketsIn != 2*n || ka.Unprotected < n ||
		dropped != 3*n || ka.Malformed != 0 || ka.BeforeAnswer != 0 {
		t.Errorf("side A counters %+v; want %d in, %d dropped, at least %d unprotected", ka, 2*n, 3*n, n)
	}
	// B: SRTP and muxed SRTCP in; muxed clear RTCP unprotected; nothing is
	// agreed on its RTCP port: malformed there.
	if kb.PacketsIn != 2*n || kb.Unprotected != n || kb.Malformed != 2*n || kb.AuthFailures != 0 || kb.Replays != 0 || kb.WrongSource != 0 {
		t.Errorf("side B counters %+v; want %d in, %d unprotected, %d malformed", kb, 2*n, n, 2*n)
	}
}

// rtpWithMarker builds RTP with the marker bit and payload type pt (its
// second byte then reads 128+pt, in RTCP's 192-223 for pt 64-95).
func rtpWithMarker(t *testing.T, pt uint8, seq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: pt, SequenceNumber: seq, SSRC: 0x77},
		Payload: bytes.Repeat([]byte{pt}, 40)}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// On a side without rtcp-mux the RTP port carries only RTP: marker-bit
// RTP with a payload type of 64-95, which looks like RTCP to RFC 5761's
// test, is relayed as RTP, plain or SRTP.
func TestRelayMarkerRTPOnNonMuxSide(t *testing.T) {
	for _, suite := range []string{"", "AES_CM_128_HMAC_SHA1_80"} {
		name := suite
		if name == "" {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			r, st := newTestRelay(t)
			var c *Crypto
			if suite != "" {
				c = freshCrypto(t, suite)
			}
			configure(t, st, SideA, peerA, c, c)
			configure(t, st, SideB, peerB, c, c)
			var enc, dec *srtp.Context
			if c != nil {
				enc, _ = newEncryptor(c)
				dec, _ = newEncryptor(c)
			}
			sc := newScratch()
			for i, pt := range []uint8{64, 72, 77, 95} {
				plain := rtpWithMarker(t, pt, uint16(100+i))
				in := plain
				if enc != nil {
					var err error
					if in, err = enc.EncryptRTP(nil, plain, nil); err != nil {
						t.Fatal(err)
					}
				}
				out, dst, conn := st.handle(st.sides[SideA], in, peerA, false, sc)
				if out == nil {
					t.Fatalf("PT %d with the marker bit was dropped: %+v", pt, r.Counters(SideA))
				}
				if dst != peerB || conn != st.sides[SideB].rtp {
					t.Errorf("PT %d went to %s (RTCP socket %v), want B's RTP port %s", pt, dst, conn == st.sides[SideB].rtcp, peerB)
				}
				got := out
				if dec != nil {
					var err error
					if got, err = dec.DecryptRTP(nil, out, nil); err != nil {
						t.Fatalf("PT %d: not SRTP toward B: %v", pt, err)
					}
				}
				if !bytes.Equal(got, plain) {
					t.Errorf("PT %d: relayed %x, want %x", pt, got, plain)
				}
			}
			if k := r.Counters(SideA); k.PacketsIn != 4 || k.Malformed != 0 || k.AuthFailures != 0 {
				t.Errorf("counters %+v", k)
			}
		})
	}
}

// Every packet an SRTP side drops is counted under what it is (RFC 7983's
// first byte, then SRTP's own checks): only a packet that claims SRTP
// protection and fails it is an authentication failure.
func TestRelayCountsWhatItDrops(t *testing.T) {
	r, st := newTestRelay(t)
	aKey := freshCrypto(t, "AES_CM_128_HMAC_SHA1_80")
	configure(t, st, SideA, peerA, aKey, aKey)
	configure(t, st, SideB, peerB, nil, nil)
	a, sc := st.sides[SideA], newScratch()
	peerARTCP := netip.AddrPortFrom(peerA.Addr(), peerA.Port()+1)
	enc, _ := newEncryptor(aKey)
	srtcp, err := enc.EncryptRTCP(nil, rtcpRR(0x42), nil)
	if err != nil {
		t.Fatal(err)
	}
	forgedRTCP := bytes.Clone(srtcp)
	forgedRTCP[len(forgedRTCP)-1] ^= 1
	shortRTP := packets(t, nil, 7, 1)[0][:12+4]
	fullPlainRTP := packets(t, nil, 8, 1)[0]

	for _, tc := range []struct {
		name  string
		pkt   []byte
		rtcp  bool // sent to the RTCP port
		count func(Counters) uint64
	}{
		{"STUN binding request", unhex(t, "0001 0000 2112a442 000102030405060708090a0b"), false, func(k Counters) uint64 { return k.STUN }},
		{"STUN with an attribute, RTCP port", unhex(t, "0001 0008 2112a442 000102030405060708090a0b 00060004 61626364"), true, func(k Counters) uint64 { return k.STUN }},
		{"first byte 0, no magic cookie", unhex(t, "0001 0000 00000000 000102030405060708090a0b"), false, func(k Counters) uint64 { return k.Malformed }},
		{"STUN length past the end", unhex(t, "0001 0008 2112a442 000102030405060708090a0b"), false, func(k Counters) uint64 { return k.Malformed }},
		{"ZRTP", unhex(t, "10000001 5a525450 00000001 505a4e47"), false, func(k Counters) uint64 { return k.Malformed }},
		{"TURN channel data", unhex(t, "40000004 01020304"), false, func(k Counters) uint64 { return k.Malformed }},
		{"DTLS on an SDES side", unhex(t, "16fefd 0000 0000 0000 0000 0001 00"), false, func(k Counters) uint64 { return k.DTLS }},
		{"clear RTCP", rtcpPing(0x42), true, func(k Counters) uint64 { return k.Unprotected }},
		{"clear RTP too short for a tag", shortRTP, false, func(k Counters) uint64 { return k.Unprotected }},
		{"forged SRTCP", forgedRTCP, true, func(k Counters) uint64 { return k.AuthFailures }},
		// Clear RTP with room for a tag cannot be told from forged SRTP.
		{"clear RTP, full size", fullPlainRTP, false, func(k Counters) uint64 { return k.AuthFailures }},
		{"RTP on the RTCP port", packets(t, aKey, 9, 1)[0], true, func(k Counters) uint64 { return k.Malformed }},
	} {
		before := r.Counters(SideA)
		src := peerA
		if tc.rtcp {
			src = peerARTCP
		}
		if out, _, _ := st.handle(a, tc.pkt, src, tc.rtcp, sc); out != nil {
			t.Errorf("%s: relayed", tc.name)
		}
		after := r.Counters(SideA)
		if tc.count(after) != tc.count(before)+1 {
			t.Errorf("%s: counted elsewhere: before %+v, after %+v", tc.name, before, after)
		}
		if all := func(k Counters) uint64 {
			return k.AuthFailures + k.Replays + k.WrongSource + k.Malformed + k.BeforeAnswer + k.Unprotected + k.STUN + k.DTLS
		}; all(after) != all(before)+1 {
			t.Errorf("%s: counted %d times", tc.name, all(after)-all(before))
		}
	}
	if len(a.early) != 0 {
		t.Errorf("a DTLS record was kept for a side keyed by SDES")
	}
	// The genuine SRTCP still goes through after all that.
	if out, _, _ := st.handle(a, srtcp, peerARTCP, true, sc); out == nil {
		t.Errorf("genuine SRTCP dropped: %+v", r.Counters(SideA))
	}

	// A side with rtcp-mux: its RTCP port carries nothing; a DTLS record
	// before any answer is kept for the association to come.
	if err := st.Configure(SideA, PeerConfig{RTP: peerA, RTCP: peerA, Mux: true, In: aKey, Out: aKey}); err != nil {
		t.Fatal(err)
	}
	before := r.Counters(SideA)
	srtcp2, _ := enc.EncryptRTCP(nil, rtcpRR(0x42), nil)
	if out, _, _ := st.handle(a, srtcp2, peerA, true, sc); out != nil {
		t.Error("SRTCP on the RTCP port of a muxed side was relayed")
	}
	if k := r.Counters(SideA); k.Malformed != before.Malformed+1 {
		t.Errorf("SRTCP on the RTCP port of a muxed side: %+v", k)
	}
	if out, _, _ := st.handle(a, srtcp2, peerA, false, sc); out == nil {
		t.Errorf("the same SRTCP on the muxed RTP port was dropped: %+v", r.Counters(SideA))
	}
	r2, st2 := newTestRelay(t)
	st2.handle(st2.sides[SideB], unhex(t, "16fefd 0000 0000 0000 0000 0001 00"), peerB, false, newScratch())
	if k := r2.Counters(SideB); k.DTLS != 1 || len(st2.sides[SideB].early) != 1 {
		t.Errorf("DTLS before the answer: %+v, %d kept", k, len(st2.sides[SideB].early))
	}
}

// A re-INVITE that switches rtcp-mux keeps the contexts whose key did not
// change (a new encrypt context would repeat SRTCP indices), so their user
// moves from one socket's reader to the other's while both may be inside a
// packet. Under -race this fails unless that hand-over is synchronised.
func TestRelayRTCPMuxSwitchHandsOver(t *testing.T) {
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 46000, 46999)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRelay(pool, RelayConfig{})
	defer r.Close()
	st, err := r.AddStream()
	if err != nil {
		t.Fatal(err)
	}
	pa, paC, pb, pbC := udpPeer(t), udpPeer(t), udpPeer(t), udpPeer(t)
	aKey, bKey := freshCrypto(t, "AEAD_AES_128_GCM"), freshCrypto(t, "AES_CM_128_HMAC_SHA1_80")
	configA := func(mux bool) {
		rtcp := addrOf(paC)
		if mux {
			rtcp = addrOf(pa)
		}
		if err := st.Configure(SideA, PeerConfig{RTP: addrOf(pa), RTCP: rtcp, Mux: mux, In: aKey, Out: aKey}); err != nil {
			t.Error(err)
		}
	}
	configA(false)
	if err := st.Configure(SideB, PeerConfig{RTP: addrOf(pb), RTCP: addrOf(pbC), In: bKey, Out: bKey}); err != nil {
		t.Fatal(err)
	}
	before := st.sides[SideA].cfg.Load().decRTCP
	r.Start()
	l := st.Local(SideA, netip.Addr{})
	toRTP, toRTCP := netip.AddrPortFrom(l.Addr, uint16(l.Port)), netip.AddrPortFrom(l.Addr, uint16(l.RTCPPort))

	var fb farEnd
	dec, _ := newEncryptor(bKey)
	done := make(chan struct{})
	var readers, senders sync.WaitGroup
	readers.Add(1)
	go fb.read(pbC, dec, done, &readers)
	const n = 300
	senders.Add(3)
	go func() { // the peer, muxed or not as the last answer said: SRTCP to both ports
		defer senders.Done()
		p := srtcpAndPlain(t, aKey, 0xc1, n)
		for i := 0; i < len(p); i += 2 {
			pa.WriteToUDPAddrPort(p[i], toRTP)
			if i%32 == 30 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	go func() {
		defer senders.Done()
		p := srtcpAndPlain(t, aKey, 0xc2, n)
		for i := 0; i < len(p); i += 2 {
			paC.WriteToUDPAddrPort(p[i], toRTCP)
			if i%32 == 30 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	go func() { // re-INVITEs turning rtcp-mux on and off, same keys
		defer senders.Done()
		for i := range 60 {
			configA(i%2 == 0)
			time.Sleep(500 * time.Microsecond)
		}
		configA(false)
	}()
	senders.Wait()
	time.Sleep(200 * time.Millisecond)
	close(done)
	readers.Wait()
	if st.sides[SideA].cfg.Load().decRTCP != before {
		t.Error("a re-INVITE with the same key replaced the SRTCP context")
	}
	// Each SRTCP packet is relayed or dropped (on the RTP port of a side
	// without rtcp-mux it is RTP, and fails as such; on the RTCP port of a
	// muxed side it is malformed), never both; what is relayed decrypts.
	k := r.Counters(SideA)
	seen := k.PacketsIn + k.AuthFailures + k.Replays + k.Malformed + k.WrongSource
	if k.PacketsIn == 0 || seen > 2*n || seen < 2*n*9/10 || fb.rtcpOK.Load() != fb.rtcp.Load() || uint64(fb.rtcp.Load()) > k.PacketsIn {
		t.Errorf("side A %+v; B's peer got %d RTCP, %d decrypt", k, fb.rtcp.Load(), fb.rtcpOK.Load())
	}
}
