package media

import (
	"net/netip"
	"testing"
)

// dtlsRecord is a DTLS 1.2 record header of content type ct and epoch,
// followed by a handshake message header of type msg.
func dtlsRecord(ct byte, epoch uint16, msg byte) []byte {
	pkt := make([]byte, 25)
	pkt[0], pkt[1], pkt[2] = ct, 0xfe, 0xfd
	pkt[3], pkt[4] = byte(epoch>>8), byte(epoch)
	pkt[13] = msg
	return pkt
}

// An association that has not latched onto its peer latches only onto a
// datagram that opens a handshake with it in its role: a late record of
// the side's previous peer (a close_notify, a resent Finished) is dropped
// and does not capture it.
func TestDTLSLatchOnlyOnHandshakeStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pkt    []byte
		client bool
		want   bool
	}{
		{"ClientHello to the server", dtlsRecord(22, 0, 1), false, true},
		{"ClientHello to the client", dtlsRecord(22, 0, 1), true, false},
		{"ServerHello to the client", dtlsRecord(22, 0, 2), true, true},
		{"HelloVerifyRequest to the client", dtlsRecord(22, 0, 3), true, true},
		{"ServerHello to the server", dtlsRecord(22, 0, 2), false, false},
		{"alert (close_notify)", dtlsRecord(21, 1, 0), false, false},
		{"Finished, epoch 1", dtlsRecord(22, 1, 1), false, false},
		{"ClientKeyExchange", dtlsRecord(22, 0, 16), false, false},
		{"application data", dtlsRecord(23, 1, 1), true, false},
		{"short", []byte{22, 0xfe, 0xfd, 0, 0}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := opensHandshake(tc.pkt, tc.client); got != tc.want {
				t.Errorf("opensHandshake = %v, want %v", got, tc.want)
			}
			a := &dtlsAssoc{params: &DTLSParams{Client: tc.client}, in: make(chan []byte, 1), closed: make(chan struct{})}
			sdp := netip.MustParseAddrPort("127.0.0.1:4000")
			a.dest.Store(&sdp)
			src := netip.MustParseAddrPort("127.0.0.1:5000")
			if got := a.deliver(tc.pkt, src); got != tc.want {
				t.Errorf("deliver = %v, want %v", got, tc.want)
			}
			if d := *a.dest.Load(); (d == src) != tc.want {
				t.Errorf("dest %v after the record (latched: %v)", d, a.latched.Load())
			}
		})
	}
}
