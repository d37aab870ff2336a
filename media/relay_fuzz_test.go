package media

import (
	"net/netip"
	"testing"
)

// FuzzRelayPacket feeds arbitrary datagrams to the relay's per-packet path
// on every kind of side (SRTP with each suite, plain), as RTP and as RTCP.
// Nothing may panic, and no packet too short to carry an authentication tag
// may come out of an SRTP side.
func FuzzRelayPacket(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.srtp), uint8(0), false)
	}
	f.Add(unhex(f, vecPlain), uint8(4), false)
	f.Add(unhex(f, "80cc0003 11223344 50494e47 504f4e47"), uint8(1), true)
	f.Add(unhex(f, "81c8000b cafebabe abababab abababab abababab abababab abababab"), uint8(2), true)
	f.Add([]byte{0x80, 0xc8, 0x00, 0x00}, uint8(3), true)
	suites := []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM", ""}
	type fixture struct {
		st *RelayStream
		sc *scratch
	}
	fixtures := make([]fixture, len(suites))
	for i, su := range suites {
		_, st := newTestRelay(f)
		var c *Crypto
		if su != "" {
			v := vectors[i]
			c = vecCrypto(f, v.suite, v.key, v.salt)
		}
		configure(f, st, SideA, peerA, c, c)
		configure(f, st, SideB, peerB, freshCrypto(f, "AEAD_AES_128_GCM"), freshCrypto(f, "AEAD_AES_128_GCM"))
		fixtures[i] = fixture{st, newScratch()}
	}
	f.Fuzz(func(t *testing.T, pkt []byte, which uint8, rtcp bool) {
		fx := fixtures[int(which)%len(fixtures)]
		out, _, _ := fx.st.handle(fx.st.sides[SideA], pkt, netip.MustParseAddrPort("127.0.0.1:40000"), rtcp, fx.sc)
		if out != nil && int(which)%len(fixtures) != len(suites)-1 {
			if len(pkt) < 12 {
				t.Fatalf("a %d-byte packet passed authentication", len(pkt))
			}
		}
	})
}
