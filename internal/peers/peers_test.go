package peers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// attach is a Baresip whose control connection is conn, as StartBaresip
// leaves it once connected.
func attach(name string, conn net.Conn) *Baresip {
	b := &Baresip{conf: BaresipConfig{Name: name}, ctrl: conn, events: make(chan map[string]any, 64)}
	go b.readEvents()
	return b
}

// Events arrive as ctrl_tcp netstrings; WaitEvent skips other types and
// non-JSON payloads, and reports the connection's end.
func TestWaitEvent(t *testing.T) {
	ours, theirs := net.Pipe()
	b := attach("alice", ours)
	go func() {
		for _, s := range []string{`{"type":"CALL_RINGING"}`, `not json`, `{"event":true}`, `{"type":"CALL_ESTABLISHED","param":"x"}`} {
			fmt.Fprintf(theirs, "%d:%s,", len(s), s)
		}
		theirs.Close()
	}()
	ev, err := b.WaitEvent(time.Second, "CALL_CLOSED", "CALL_ESTABLISHED")
	if err != nil || ev["type"] != "CALL_ESTABLISHED" || ev["param"] != "x" {
		t.Fatalf("WaitEvent: %v, %v; want CALL_ESTABLISHED with its param", ev, err)
	}
	if _, err := b.WaitEvent(time.Second, "CALL_CLOSED"); err == nil || !strings.Contains(err.Error(), "alice: control connection closed") {
		t.Errorf("after the connection's end: %v, want it named", err)
	}
}

// A malformed netstring length ends the event stream rather than
// misreading what follows.
func TestWaitEventBadLength(t *testing.T) {
	for _, in := range []string{"x:{},", "-1:{},", "99999999:{},"} {
		ours, theirs := net.Pipe()
		b := attach("bob", ours)
		go func() { fmt.Fprint(theirs, in) }()
		if ev, err := b.WaitEvent(time.Second, "CALL_CLOSED"); err == nil {
			t.Errorf("%q: event %v, want the stream ended", in, ev)
		}
		theirs.Close()
	}
}

func TestWaitEventTimeout(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	b := attach("carol", ours)
	start := time.Now()
	_, err := b.WaitEvent(100*time.Millisecond, "CALL_CLOSED")
	if err == nil || !strings.Contains(err.Error(), "no [CALL_CLOSED] within 100ms") || time.Since(start) < 100*time.Millisecond {
		t.Errorf("WaitEvent on a silent phone: %v after %s", err, time.Since(start))
	}
}

// Command writes one netstring of JSON whose token is the command.
func TestCommand(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	b := &Baresip{conf: BaresipConfig{Name: "alice"}, ctrl: ours}
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(theirs)
		s, _ := r.ReadString(':')
		n, _ := strconv.Atoi(strings.TrimSuffix(s, ":"))
		buf := make([]byte, n+1)
		io.ReadFull(r, buf)
		got <- s + string(buf)
	}()
	if err := b.Command("dial", "sip:bob@127.0.0.1:5060"); err != nil {
		t.Fatal(err)
	}
	want := `{"command":"dial","params":"sip:bob@127.0.0.1:5060","token":"dial"}`
	if s := <-got; s != fmt.Sprintf("%d:%s,", len(want), want) {
		t.Errorf("sent %q, want the netstring of %s", s, want)
	}
	ours.Close()
	if err := b.Command("hangup", ""); err == nil || !strings.Contains(err.Error(), "alice: send hangup") {
		t.Errorf("Command on a closed connection: %v", err)
	}
}

// PortBlock returns an aligned block inside its range whose ports are free.
func TestPortBlock(t *testing.T) {
	for range 5 {
		base := PortBlock(t, 20000, 30000, 100)
		if base < 20000 || base+100 > 30000 || base%100 != 0 {
			t.Fatalf("block %d-%d: want an aligned block of 100 in [20000, 30000)", base, base+99)
		}
		if !blockFree(base, 100) {
			t.Errorf("block at %d is not free", base)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if blockFree(l.Addr().(*net.TCPAddr).Port, 1) {
		t.Errorf("a port being listened on counts as free")
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\r\n\n  \nb", 5, "a\nb"},
		{"call: 64 bit/s\rready\n", 5, "ready"},
		{"", 3, ""},
	} {
		if got := Tail(tc.in, tc.n); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
