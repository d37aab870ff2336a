package b2bua

import (
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// A ping booked for a flow carries the flow's contact as it was then: a
// REGISTER that refreshes the flow while the ping is under way writes the
// flow's contact under the bindings' lock, which the ping does not hold.
func TestDuePingsSnapshotContact(t *testing.T) {
	z := &zone{name: "staff", cfg: topology.Zone{Registrar: &topology.Registrar{UDPKeepAlive: time.Second}}}
	b := newBindings(slog.New(slog.DiscardHandler))
	start := time.Now()
	fl := &flow{token: "flow-1", key: "k", zone: z, transport: policy.TransportUDP, remote: "192.0.2.1:5060",
		granted: true, expires: start.Add(time.Hour), lastPing: start,
		contact: sip.Uri{Scheme: "sip", User: "staff", Host: "10.0.0.1"}}
	b.byUDP["staff|"+fl.remote] = []*flow{fl}
	due := b.duePings(start.Add(2 * time.Second))
	if len(due) != 1 || due[0].fl != fl {
		t.Fatalf("due: %+v", due)
	}
	b.mu.Lock()
	fl.contact = sip.Uri{Scheme: "sip", User: "staff", Host: "10.0.0.2"} // what granted does
	b.mu.Unlock()
	if got := due[0].contact.Host; got != "10.0.0.1" {
		t.Errorf("the booked ping's contact host is %q, want the one booked (10.0.0.1)", got)
	}
	if again := b.duePings(start.Add(4 * time.Second)); len(again) != 0 {
		t.Errorf("a flow under a ping was booked again: %+v", again)
	}
}
