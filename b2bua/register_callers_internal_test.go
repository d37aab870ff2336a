package b2bua

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
)

// flowConn stands for a TCP or TLS connection; only its identity matters.
type flowConn struct {
	sip.Connection
	n int
}

// A call matches a flow only over the connection the user registered on
// (TCP, TLS), or from the address it registered from (UDP), in the same
// zone, with a live binding: a new connection from the same address (the
// old one closed, its port reused) is not the flow.
func TestRegisteredOn(t *testing.T) {
	staff, other := &zone{name: "staff"}, &zone{name: "other"}
	c1, c2 := &flowConn{n: 1}, &flowConn{n: 2}
	b := newBindings(slog.New(slog.NewTextHandler(io.Discard, nil)))
	live := time.Now().Add(time.Minute)
	add := func(token string, z *zone, t policy.Transport, remote string, conn sip.Connection, granted bool, expires time.Time) {
		b.byToken[token] = &flow{token: token, zone: z, transport: t, remote: remote, conn: conn, granted: granted,
			expires: expires, aor: token + "@pbx.test"}
	}
	add("tcp", staff, policy.TransportTCP, "192.0.2.1:4000", c1, true, live)
	add("udp", staff, policy.TransportUDP, "192.0.2.1:5060", nil, true, live)
	add("pending", staff, policy.TransportUDP, "192.0.2.2:5060", nil, false, live)
	add("expired", staff, policy.TransportUDP, "192.0.2.3:5060", nil, true, time.Now().Add(-time.Second))
	add("elsewhere", other, policy.TransportUDP, "192.0.2.4:5060", nil, true, live)
	for _, tc := range []struct {
		name   string
		t      policy.Transport
		remote string
		conn   sip.Connection
		want   string
	}{
		{"same connection", policy.TransportTCP, "192.0.2.1:4000", c1, "tcp"},
		{"new connection, same address", policy.TransportTCP, "192.0.2.1:4000", c2, ""},
		{"no connection", policy.TransportTCP, "192.0.2.1:4000", nil, ""},
		{"same UDP address", policy.TransportUDP, "192.0.2.1:5060", nil, "udp"},
		{"another UDP port", policy.TransportUDP, "192.0.2.1:5061", nil, ""},
		{"another transport", policy.TransportUDP, "192.0.2.1:4000", nil, ""},
		{"not granted", policy.TransportUDP, "192.0.2.2:5060", nil, ""},
		{"expired", policy.TransportUDP, "192.0.2.3:5060", nil, ""},
		{"another zone", policy.TransportUDP, "192.0.2.4:5060", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.registeredOn(staff, tc.t, tc.remote, tc.conn)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("matched %s", got[0].token)
			case tc.want != "" && (len(got) != 1 || got[0].token != tc.want):
				t.Errorf("matched %d flows, want %s", len(got), tc.want)
			}
		})
	}
}
