package b2bua

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first Accept calls the way a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var refused []string
	var acceptErrs int
	peer := false
	ll := newLimitListener(&flakyListener{Listener: raw, fails: 3},
		func(netip.Addr) bool { mu.Lock(); defer mu.Unlock(); return peer },
		func(_, why string) { mu.Lock(); refused = append(refused, why); mu.Unlock() },
		func(error) { mu.Lock(); acceptErrs++; mu.Unlock() })
	ll.max, ll.lifetime = 6, 300*time.Millisecond
	defer ll.Close()

	accepted := make(chan net.Conn, 16)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				done <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	got := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
		}
		return nil
	}
	none := func() {
		t.Helper()
		select {
		case c := <-accepted:
			t.Fatalf("connection from %s accepted over the limit", c.RemoteAddr())
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Accept errors are survived; then a non-peer source gets maxConnsNonPeer.
	var nonPeer []net.Conn
	for range maxConnsNonPeer {
		dial()
		nonPeer = append(nonPeer, got())
	}
	dial()
	none()
	mu.Lock()
	if acceptErrs != 3 {
		t.Errorf("%d accept errors reported, want 3", acceptErrs)
	}
	mu.Unlock()

	// Their connections expire: a read on the server side times out.
	start := time.Now()
	if _, err := nonPeer[0].Read(make([]byte, 1)); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("non-peer connection read: %v after %v, want a deadline error after ~300ms", err, time.Since(start))
	}
	// Closing one gives its slot back.
	nonPeer[0].Close()
	dial()
	got()

	// Peers share the listener's cap: 4 non-peer slots in use, so 2 more.
	mu.Lock()
	peer = true
	mu.Unlock()
	dial()
	got()
	dial()
	got()
	dial()
	none()

	mu.Lock()
	if len(refused) != 2 || refused[0] == refused[1] {
		t.Errorf("refusals %q, want one per limit", refused)
	}
	mu.Unlock()

	ll.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// A closed connection's TLS state stays known for a while, for requests it
// carried that are still being handled; a newer connection from the same
// address keeps its own state when the older one's grace runs out.
func TestConnStatesOutliveClose(t *testing.T) {
	s := newConnStates()
	var expire []func()
	s.after = func(f func()) { expire = append(expire, f) }
	older, newer := &tls.ConnectionState{Version: tls.VersionTLS12}, &tls.ConnectionState{Version: tls.VersionTLS13}

	s.put("192.0.2.1:5061", older)
	s.release("192.0.2.1:5061", older)
	if s.get("192.0.2.1:5061") != older {
		t.Fatal("the state was forgotten at the close")
	}
	s.put("192.0.2.1:5062", older)
	s.release("192.0.2.1:5062", older)
	s.put("192.0.2.1:5062", newer)
	if len(expire) != 2 {
		t.Fatalf("%d expiries scheduled, want 2", len(expire))
	}
	for _, f := range expire {
		f()
	}
	if s.get("192.0.2.1:5061") != nil {
		t.Error("the state outlived its grace")
	}
	if s.get("192.0.2.1:5062") != newer {
		t.Error("the older connection's release removed the newer one's state")
	}
}
