package topology

import (
	"net/netip"
	"testing"

	"github.com/parapet-sbc/parapet/policy"
)

func TestListenerString(t *testing.T) {
	for _, tc := range []struct {
		l    Listener
		want string
	}{
		{Listener{policy.TransportUDP, netip.MustParseAddrPort("127.0.0.1:5060")}, "udp://127.0.0.1:5060"},
		{Listener{policy.TransportTCP, netip.MustParseAddrPort("0.0.0.0:5070")}, "tcp://0.0.0.0:5070"},
		{Listener{policy.TransportTLS, netip.MustParseAddrPort("[::1]:5061")}, "tls://[::1]:5061"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%+v: String() = %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestTLSLab(t *testing.T) {
	if !(&TLS{}).Lab() {
		t.Error("no cert_file: want the lab certificate")
	}
	if (&TLS{CertFile: "/etc/parapet/sbc.pem", KeyFile: "/etc/parapet/sbc.key"}).Lab() {
		t.Error("a cert_file: want no lab certificate")
	}
}
