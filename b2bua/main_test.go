package b2bua_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// call, leg, relay and listener parapet starts must be gone once the lab
// that started it is closed. One is let be, named by its top frame:
//
//   - sipgo's DialogServerSession.WriteResponse, on the goroutine answerA
//     sends A's 2xx from. For a 2xx the caller never ACKs it retransmits on
//     its own timer (RFC 6026's Accepted state) and watches neither the
//     server's Close nor the dialog's end; at shutdown byeOnLateAck
//     terminates its transaction, and it returns at its next
//     retransmission, up to T2 (4 s) later, which can be after the
//     package's last test.
//
// And one is let be wherever it is: sipgo's server transaction opening a
// connection back to a TCP client that closed its own before the response
// (RFC 3261 section 18.2.2: to the source address and the Via port), which
// sipgo bounds at 10 s. The torture corpus's clients close theirs as soon
// as they have what they wait for.
//
// And the reader of a UDP socket sipgo opened itself for a request without
// a local address (TransportUDP.readUDPConnection; the simulated peers and
// parapet toward a UDP address not heard from on a zone without a UDP
// listener): sipgo v1.7.2's ConnectionPool.Clear, at a UA's Close, passes
// over a connection whose reference count has gone to zero or below
// without closing it. Seen twice in many full runs, never traced to a
// test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/emiago/sipgo.(*DialogServerSession).WriteResponse"),
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportLayer).serverRequestConnection"),
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"),
	)
}

// pollEvery is how often poll looks again.
const pollEvery = 5 * time.Millisecond

// poll calls cond until it reports true or d has passed, and reports
// whether it did. It is the one way these tests wait: on its own to watch a
// window for something that must not happen (it returns as soon as it
// does), through waitFor for something that must.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// waitFor fails the test unless cond becomes true within timeout; what
// says what was awaited, for the failure message.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("gave up after %v waiting for %s", timeout, what)
	}
}
