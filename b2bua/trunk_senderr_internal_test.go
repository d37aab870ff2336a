package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// A REGISTER that could not be sent, or got no answer, names the registrar
// with its port and transport, and says "no answer" rather than only
// "context deadline exceeded".
func TestTrunkSendErr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target topology.Target
		err    error
		want   string
	}{
		{"no answer over udp", topology.Target{Host: "192.0.2.7", Port: 5070, Transport: policy.TransportUDP},
			context.DeadlineExceeded, "REGISTER to 192.0.2.7:5070 over udp: no answer from the registrar: context deadline exceeded"},
		{"default tls port", topology.Target{Host: "sbc.carrier.example", Transport: policy.TransportTLS, Secure: true},
			errors.New("connection refused"), "REGISTER to sbc.carrier.example:5061 over tls: connection refused"},
		{"ipv6", topology.Target{Host: "2001:db8::1", Transport: policy.TransportTCP},
			errors.New("connection refused"), "REGISTER to [2001:db8::1]:5060 over tcp: connection refused"},
		{"refused: the system's error, not sipgo's wording", topology.Target{Host: "192.0.2.7", Port: 5070, Transport: policy.TransportTCP},
			fmt.Errorf("client transcation failed to request connection: Transport<TCP> dial err=%w",
				&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}),
			"REGISTER to 192.0.2.7:5070 over tcp: connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trunk{cfg: topology.Register{Registrar: tc.target}}
			got := tr.sendErr("REGISTER", tc.err)
			if got.Error() != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("%v does not wrap %v", got, tc.err)
			}
		})
	}
}
