package media

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// FuzzRelayPacket feeds arbitrary datagrams to the relay's per-packet path
// on every kind of side (SRTP with each suite, plain), as RTP and as RTCP.
// Nothing may panic, and whatever the relay sends on must be SRTP (SRTCP)
// that side B's key authenticates and decrypts to what side A sent: the
// packet itself from the plain side, its plaintext from an SRTP side. Every
// datagram is counted on side A: a relayed one as in, a dropped one under
// exactly one reason (after counting it in, when it was valid but could not
// be sent on: a plain packet's repeated sequence number).
func FuzzRelayPacket(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.srtp), uint8(0), false)
	}
	f.Add(unhex(f, vecPlain), uint8(4), false)
	f.Add(unhex(f, "80cc0003 11223344 50494e47 504f4e47"), uint8(4), true)
	f.Add(unhex(f, "81c8000b cafebabe abababab abababab abababab abababab abababab"), uint8(4), true)
	f.Add(unhex(f, "80cc0003 11223344 50494e47 504f4e47"), uint8(1), true)
	f.Add(unhex(f, "81c8000b cafebabe abababab abababab abababab abababab abababab"), uint8(2), true)
	f.Add([]byte{0x80, 0xc8, 0x00, 0x00}, uint8(3), true)
	f.Add(unhex(f, "0001 0000 2112a442 000102030405060708090a0b"), uint8(0), false)
	f.Add(unhex(f, "16fefd 0000 0000 0000 0000 0001 00"), uint8(2), true)
	f.Add(unhex(f, "80c8000b cafebabe abababab"), uint8(1), false)
	suites := []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM", ""}
	type fixture struct {
		st  *RelayStream
		sc  *scratch
		aIn *Crypto // nil: side A is plain
		// peerB receives all the fixture relays, in order, as side B's
		// peer would: its rollover counter follows the relay's.
		peerB *srtp.Context
	}
	fixtures := make([]fixture, len(suites))
	for i, su := range suites {
		_, st := newTestRelay(f)
		var c *Crypto
		if su != "" {
			v := vectors[i]
			c = vecCrypto(f, v.suite, v.key, v.salt)
		}
		bOut := freshCrypto(f, "AEAD_AES_128_GCM")
		configure(f, st, SideA, peerA, c, c)
		configure(f, st, SideB, peerB, freshCrypto(f, "AEAD_AES_128_GCM"), bOut)
		peer, err := newEncryptor(bOut)
		if err != nil {
			f.Fatal(err)
		}
		fixtures[i] = fixture{st, newScratch(), c, peer}
	}
	f.Fuzz(func(t *testing.T, pkt []byte, which uint8, rtcp bool) {
		fx := fixtures[int(which)%len(fixtures)]
		in := bytes.Clone(pkt) // handle may decrypt in place
		counts := func() (in, dropped uint64) {
			k := fx.st.r.Counters(SideA)
			return k.PacketsIn, k.AuthFailures + k.Replays + k.WrongSource + k.Malformed + k.BeforeAnswer +
				k.Unprotected + k.STUN + k.DTLS
		}
		in0, drop0 := counts()
		out, _, _ := fx.st.handle(fx.st.sides[SideA], pkt, peerA, rtcp, fx.sc)
		in1, drop1 := counts()
		if relayed := out != nil; in1-in0 > 1 || relayed && (in1 != in0+1 || drop1 != drop0) || !relayed && drop1 != drop0+1 {
			t.Fatalf("relayed %v, counted %d in and %d dropped on side A (%x)", relayed, in1-in0, drop1-drop0, in)
		}
		if out == nil {
			return
		}
		// Side A has no rtcp-mux: its RTP port carries only RTP, its RTCP
		// port only RTCP.
		// What A sent, as plaintext. A fresh context knows no earlier
		// packets (replays, rollover), so where it cannot tell, the
		// comparison is left out; B's authentication is still checked.
		want := in
		if fx.aIn != nil {
			ref, err := newEncryptor(fx.aIn)
			if err != nil {
				t.Fatal(err)
			}
			if rtcp {
				want, err = ref.DecryptRTCP(nil, in, nil)
			} else {
				want, err = ref.DecryptRTP(nil, in, nil)
			}
			if err != nil {
				want = nil
			}
		}
		dec := fx.peerB
		if rtcp {
			got, err := dec.DecryptRTCP(nil, out, nil)
			if err != nil {
				t.Fatalf("relayed RTCP does not authenticate with side B's key: %v (in %x, out %x)", err, in, out)
			}
			if want != nil && !bytes.Equal(got, want) {
				t.Fatalf("relayed RTCP decrypts to %x, A sent %x", got, want)
			}
			return
		}
		got, err := dec.DecryptRTP(nil, out, nil)
		if err != nil {
			t.Fatalf("relayed RTP does not authenticate with side B's key: %v (in %x, out %x)", err, in, out)
		}
		if want == nil {
			return
		}
		var g, w rtp.Packet
		if err := g.Unmarshal(got); err != nil {
			t.Fatalf("relayed RTP decrypts to a packet that does not parse: %v", err)
		}
		if err := w.Unmarshal(want); err != nil {
			t.Fatalf("the relay passed a packet that does not parse: %x", want)
		}
		// The sequence number may be renumbered (plain side restarts);
		// the rest is A's.
		if g.SSRC != w.SSRC || g.PayloadType != w.PayloadType || g.Timestamp != w.Timestamp || g.Marker != w.Marker ||
			!bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("relayed RTP decrypts to %+v, A sent %+v", g.Header, w.Header)
		}
	})
}
