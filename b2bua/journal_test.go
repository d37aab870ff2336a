package b2bua_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// gateJournal is a real journal whose entries for answered calls, once on
// disk, are reported only when the test releases them.
type gateJournal struct {
	*compliance.Journal
	answered chan *compliance.Call
	release  chan struct{}
}

func (g *gateJournal) Commit(c *compliance.Call) <-chan error {
	done := g.Journal.Commit(c)
	if c.Answer == nil {
		return done
	}
	out := make(chan error, 1)
	go func() {
		err := <-done
		g.answered <- c
		<-g.release
		out <- err
	}()
	return out
}

func startJournal(t *testing.T) (*compliance.Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), compliance.JournalFile)
	j, err := compliance.OpenJournal(path, compliance.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, path
}

// TestAnsweredCallIsJournaledBeforeThe200: the caller gets parapet's 200
// only once the call, answered, is on disk in the journal, with its legs
// and their security facts; the journal holds it while it is up, and not
// once its record is in the log.
func TestAnsweredCallIsJournaledBeforeThe200(t *testing.T) {
	j, path := startJournal(t)
	g := &gateJournal{Journal: j, answered: make(chan *compliance.Call, 1), release: make(chan struct{})}
	l := newLab(t, labOptions{journal: g})
	ctx := ctxT(t)

	var returned atomic.Bool
	type result struct {
		s   *sim.Session
		err error
	}
	called := make(chan result, 1)
	go func() {
		s, err := l.callOut(ctx, sim.CallOptions{})
		returned.Store(true)
		called <- result{s, err}
	}()
	var snap *compliance.Call
	select {
	case snap = <-g.answered:
	case <-time.After(15 * time.Second):
		t.Fatal("no journal entry for the answered call")
	}
	if returned.Load() {
		t.Fatal("the caller had its 200 before the answered call was in the journal")
	}
	// The entry is on disk now, with what is known of the call.
	live, torn, err := compliance.ReadJournal(path)
	if err != nil || torn != 0 || len(live) != 1 || live[0].Call.ID != snap.ID {
		t.Fatalf("journal while answering: %v, %d torn, %+v", err, torn, live)
	}
	c := live[0].Call
	if c.Answer == nil || c.Disposition != "" || c.Route != "outbound" || len(c.Legs) != 2 || c.PolicyHash != "sha256:test" ||
		!c.Pseudonymized || strings.Contains(c.Callee, "5551230000") {
		t.Fatalf("journaled call: %+v", c)
	}
	b := c.Legs[1]
	if b.Zone != "carrier" || b.Transport != "tls" || b.TLS == nil || b.TLS.Version == "" || b.TLS.PeerCert == nil ||
		!b.TLS.PeerCert.Verified || b.Media == nil || b.Media.KeyExchange != "sdes" || b.Media.SRTPSuite == "" {
		t.Errorf("journaled leg b lacks its security facts: %+v (tls %+v, media %+v)", b, b.TLS, b.Media)
	}
	if a := c.Legs[0]; a.Zone != "pbx" || a.Transport != "udp" || a.Media == nil || a.Media.Profile != "RTP/AVP" {
		t.Errorf("journaled leg a: %+v", a)
	}
	// Held a while longer (a window), the 200 still does not go out.
	poll(200*time.Millisecond, returned.Load)
	if returned.Load() {
		t.Fatal("the caller had its 200 before the journal entry was reported on disk")
	}
	close(g.release)
	res := <-called
	if res.err != nil {
		t.Fatal(res.err)
	}
	callee := incoming(t, l.carrier)

	if err := res.s.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "the caller's BYE", callee)
	recs := l.sink.waitCalls(t, 1)
	if recs[0].ID != snap.ID || recs[0].Disposition != compliance.DispositionAnswered {
		t.Fatalf("record: %+v", recs[0])
	}
	// Its end entry follows the record (not waited for by the call).
	var left []compliance.LiveCall
	var readErr error
	if !poll(10*time.Second, func() bool {
		left, _, readErr = compliance.ReadJournal(path)
		return readErr == nil && len(left) == 0
	}) {
		t.Fatalf("the ended call stays in the journal: %v %+v", readErr, left)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte(`"op":"begin","id":"`+snap.ID)) || !bytes.Contains(raw, []byte(`"op":"end","id":"`+snap.ID)) {
		t.Errorf("journal file lacks the call's begin or end entry:\n%s", raw)
	}
}

// failingJournal takes the entries not waited for and fails the others.
type failingJournal struct{ ended atomic.Int64 }

func (f *failingJournal) Commit(c *compliance.Call) <-chan error {
	d := make(chan error, 1)
	d <- errors.New("injected: disk full")
	return d
}

func (f *failingJournal) Note(*compliance.Call) {}

func (f *failingJournal) End(string) { f.ended.Add(1) }

// Err says nothing is wrong until a call fails to be journaled: the
// failure this test injects comes with the answer.
func (f *failingJournal) Err() error { return nil }

// TestJournalFailureRefusesCall: a call that cannot be journaled is not
// answered: the caller gets 503, the callee a BYE, and the record says why.
func TestJournalFailureRefusesCall(t *testing.T) {
	fj := &failingJournal{}
	l := newLab(t, labOptions{journal: fj})
	ctx := ctxT(t)
	_, err := l.callOut(ctx, sim.CallOptions{})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 503 {
		t.Fatalf("caller got %v, want 503", err)
	}
	callee := incoming(t, l.carrier)
	waitEnded(t, "the refused call's BYE to the callee", callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.SIPStatus != 503 || c.Answer != nil ||
		!strings.HasPrefix(c.EndReason, "live-call journal unavailable: ") {
		t.Errorf("record: %s %d answer=%v %q", c.Disposition, c.SIPStatus, c.Answer, c.EndReason)
	}
	poll(5*time.Second, func() bool { return fj.ended.Load() == 1 })
	if fj.ended.Load() != 1 {
		t.Errorf("journal told of %d ends, want 1", fj.ended.Load())
	}
}

// TestJournalLearnsDTLSKeys: a DTLS-SRTP handshake completes after the
// answer; the journal's entry then gains the suite it agreed, so that a
// crash during the call leaves a record that says how its media was keyed.
func TestJournalLearnsDTLSKeys(t *testing.T) {
	j, path := startJournal(t)
	l := newLab(t, labOptions{journal: j, carrierZone: func(z *policy.Zone) {
		z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}
	}})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{DTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	waitDTLS(t, ctx, caller)
	var live []compliance.LiveCall
	var a *compliance.Leg
	if !poll(10*time.Second, func() bool {
		var err error
		if live, _, err = compliance.ReadJournal(path); err != nil {
			t.Fatal(err)
		}
		a = nil
		if len(live) == 1 {
			a = leg(live[0].Call, compliance.RoleA)
		}
		return a != nil && a.Media != nil && a.Media.SRTPSuite != ""
	}) {
		t.Fatalf("the journal never learnt the DTLS-SRTP suite: %+v", live)
	}
	if a.Media.KeyExchange != "dtls" || a.Media.SRTPSuite != "AEAD_AES_256_GCM" || a.Media.DTLSRole != "server" ||
		a.Media.DTLSPeerCert != l.carrier.Fingerprint() {
		t.Errorf("journaled DTLS leg: %+v", a.Media)
	}
	if err := callee.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE to the carrier", caller)
	l.sink.waitCalls(t, 1)
}

// brokenJournal cannot be written: its last write failed.
type brokenJournal struct{ failingJournal }

func (b *brokenJournal) Err() error { return errors.New("injected: no space left on device") }

// TestJournalUnavailableRefusesNewCalls: while the journal cannot be
// written, a new call is refused at once with 503 — before the callee is
// rung, not once it has answered — and parapet is not ready.
func TestJournalUnavailableRefusesNewCalls(t *testing.T) {
	l := newLab(t, labOptions{journal: &brokenJournal{}})
	if l.srv.Ready() {
		t.Error("ready with a journal that cannot be written")
	}
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != 503 {
		t.Fatalf("caller got %v, want 503", err)
	}
	select {
	case <-l.carrier.Incoming():
		t.Error("the callee was rung")
	case <-time.After(300 * time.Millisecond):
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.SIPStatus != 503 ||
		!strings.HasPrefix(c.EndReason, "live-call journal unavailable") || len(c.Legs) != 1 {
		t.Errorf("record: %s %d %q, %d legs", c.Disposition, c.SIPStatus, c.EndReason, len(c.Legs))
	}
}

// TestJournalRefreshesAnsweredCalls: an answered call's journal entry is
// renewed while it is up, so that the record a crash leaves ends (and
// counts its media) close to the crash, not at the answer.
func TestJournalRefreshesAnsweredCalls(t *testing.T) {
	j, path := startJournal(t)
	l := newLab(t, labOptions{journal: j, journalRefresh: 50 * time.Millisecond})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	// The scenario: the call stays up 400 ms, eight refresh intervals.
	time.Sleep(400 * time.Millisecond)
	live, _, err := compliance.ReadJournal(path)
	if err != nil || len(live) != 1 {
		t.Fatalf("journal: %v, %d calls", err, len(live))
	}
	c := live[0].Call
	if c.Answer == nil || c.End.Sub(*c.Answer) < 300*time.Millisecond {
		t.Errorf("the entry of a call up for over 400 ms ends %v after its answer", c.End.Sub(*c.Answer))
	}
	var in uint64
	for _, l := range c.Legs {
		if l.Media != nil {
			in += l.Media.PacketsIn
		}
	}
	if in < 2*packets {
		t.Errorf("the entry counts %d packets in, want the %d exchanged", in, 2*packets)
	}
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}
