package b2bua

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// syncBuffer is a bytes.Buffer a logger on another goroutine may write;
// wrote, when set, is told of each write.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wrote != nil {
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A panic on a goroutine a call started is logged with its stack and ends
// the call as failed with 500; the process goes on.
func TestCallGoroutinePanicEndsTheCall(t *testing.T) {
	var logs syncBuffer
	c := &Call{log: slog.New(slog.NewTextHandler(&logs, nil)), ended: make(chan struct{})}
	c.goSafe("bye to b", func() { panic("boom") })
	select {
	case <-c.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the call was not ended")
	}
	if c.hangDisp != compliance.DispositionFailed || c.hangStatus != 500 || c.hangReason != "internal error: boom" {
		t.Errorf("ended as %q %d %q, want failed 500 \"internal error: boom\"", c.hangDisp, c.hangStatus, c.hangReason)
	}
	if l := logs.String(); !strings.Contains(l, "goroutine panicked") || !strings.Contains(l, `goroutine="bye to b"`) ||
		!strings.Contains(l, "panic=boom") || !strings.Contains(l, "recover_test.go") {
		t.Errorf("log lacks the panic, its goroutine or its stack:\n%s", l)
	}
}

// A panic in one turn of a server loop is logged, and the loop's next turn
// runs; a panic on a server goroutine is logged.
func TestServerPanicsAreLogged(t *testing.T) {
	logs := syncBuffer{wrote: make(chan struct{}, 8)}
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	turns := 0
	for range 2 {
		s.tick("event folding", func() { turns++; panic("tick") })
	}
	if turns != 2 {
		t.Errorf("%d turns ran, want 2", turns)
	}
	s.goSafe("sip listener of zone x", func() { panic("serve") })
	for !strings.Contains(logs.String(), "panic=serve") {
		select {
		case <-logs.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("the listener's panic was not logged:\n%s", logs.String())
		}
	}
	if l := logs.String(); strings.Count(l, "panic=tick") != 2 || !strings.Contains(l, `goroutine="sip listener of zone x"`) {
		t.Errorf("log:\n%s", l)
	}
}

// A panic on a goroutine of leg B's outgoing INVITE stops the wait for B's
// final response.
func TestOutgoingPanicStopsTheWait(t *testing.T) {
	var logs syncBuffer
	stopped := make(chan error, 1)
	o := &outgoing{log: slog.New(slog.NewTextHandler(&logs, nil)), stop: func(err error) { stopped <- err }}
	go func() {
		defer o.recoverPanic("cancel to b")
		panic("cancel")
	}()
	select {
	case err := <-stopped:
		if err == nil || err.Error() != "internal error: cancel" {
			t.Errorf("stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait for B was not stopped")
	}
}
