package compliance

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// liveCall is a call as b2bua journals it: the record as it stands while
// the call is up, with no outcome yet, ended at the snapshot's time.
func liveCall(p *Pseudonymizer, i int, answered bool) *Call {
	c := *sampleCall(p, i).Call
	c.Disposition, c.SIPStatus, c.EndReason = "", 0, ""
	c.End = c.Start.Add(5 * time.Second)
	if !answered {
		c.Answer = nil
	}
	return &c
}

func openJournal(t *testing.T, path string, opts JournalOptions) *Journal {
	t.Helper()
	j, err := OpenJournal(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// wait waits for a journal entry to be on disk.
func wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("journal entry never committed")
	}
}

// readLog reads every record of a log file.
func readLog(t *testing.T, path string) []*Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Bytes(), err)
		}
		out = append(out, &r)
	}
	return out
}

func recordKinds(recs []*Record) []string {
	var out []string
	for _, r := range recs {
		switch {
		case r.Log != nil:
			out = append(out, string(r.Log.Event))
		case r.Call != nil:
			out = append(out, string(r.Call.Disposition)+":"+r.Call.ID)
		default:
			out = append(out, r.Type)
		}
	}
	return out
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	p := NewPseudonymizer(testKey())
	j := openJournal(t, path, JournalOptions{})
	if prev, torn := j.Previous(); len(prev) != 0 || torn != 0 {
		t.Fatalf("a new journal holds %d calls, %d torn", len(prev), torn)
	}
	seq := uint64(7)
	if err := j.Start(func() uint64 { return seq }); err != nil {
		t.Fatal(err)
	}
	ringing, answered, ended := liveCall(p, 1, false), liveCall(p, 2, false), liveCall(p, 3, true)
	wait(t, j.Commit(ringing))
	wait(t, j.Commit(answered))
	wait(t, j.Commit(ended))
	seq = 9 // later entries keep the seq of the call's begin
	up := liveCall(p, 2, true)
	up.End = up.End.Add(time.Second)
	wait(t, j.Commit(up))
	j.End(ended.ID)
	j.End("never-journaled") // ignored
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal file: %v %v", st.Mode(), err)
	}
	b := readFile(t, path)
	if n := bytes.Count(b, []byte("\n")); n != 5 {
		t.Errorf("journal holds %d lines, want 5 (3 begin, 1 update, 1 end):\n%s", n, b)
	}
	if bytes.Contains(b, []byte("never-journaled")) {
		t.Error("an end for a call never journaled was written")
	}

	j2 := openJournal(t, path, JournalOptions{})
	prev, torn := j2.Previous()
	if torn != 0 || len(prev) != 2 {
		t.Fatalf("reopened: %d calls (%d torn), want 2", len(prev), torn)
	}
	got := map[string]LiveCall{}
	for _, lc := range prev {
		got[lc.Call.ID] = lc
	}
	if lc := got[ringing.ID]; lc.Call == nil || lc.Call.Answer != nil || lc.LogSeq != 7 {
		t.Errorf("ringing call: %+v", lc)
	}
	lc := got[answered.ID]
	if lc.Call == nil || lc.Call.Answer == nil || !lc.Call.End.Equal(up.End) || lc.LogSeq != 7 {
		t.Fatalf("answered call: %+v, want its update with the begin's log seq 7", lc)
	}
	// The snapshot comes back whole: legs and their security facts.
	wantJSON, _ := json.Marshal(up)
	gotJSON, _ := json.Marshal(lc.Call)
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("snapshot changed on its way through the journal:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if lc.Time.IsZero() || prev[0].Call.Start.After(prev[1].Call.Start) {
		t.Errorf("entries not ordered by start, or without time: %+v", prev)
	}
	// Start forgets them: the file is empty.
	if err := j2.Start(nil); err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if b := readFile(t, path); len(b) != 0 {
		t.Errorf("journal after Start holds %q", b)
	}
}

// TestJournalGroupCommit checks that the entries queued while a batch is
// being fsync'd go to disk together, with one fsync.
func TestJournalGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	p := NewPseudonymizer(testKey())
	j := openJournal(t, path, JournalOptions{})
	var mu sync.Mutex
	syncs := 0
	entered, release := make(chan struct{}, 1), make(chan struct{})
	j.syncFile = func(f *os.File) error {
		mu.Lock()
		syncs++
		first := syncs == 1
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-release
		}
		return f.Sync()
	}
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	first := j.Commit(liveCall(p, 0, true))
	<-entered // the first batch is in its fsync
	const n = 50
	var waits []<-chan error
	var wg sync.WaitGroup
	var qmu sync.Mutex
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := j.Commit(liveCall(p, i, true))
			qmu.Lock()
			waits = append(waits, d)
			qmu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-first:
		t.Fatalf("the first entry was reported durable (%v) before its fsync returned", err)
	default:
	}
	close(release)
	wait(t, first)
	for _, d := range waits {
		wait(t, d)
	}
	mu.Lock()
	defer mu.Unlock()
	if syncs != 2 {
		t.Errorf("%d fsyncs for %d entries, want 2 (one per batch)", syncs, n+1)
	}
	if prev, _, err := ReadJournal(path); err != nil || len(prev) != n+1 {
		t.Errorf("journal holds %d calls (%v), want %d", len(prev), err, n+1)
	}
}

func TestJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, JournalFile)
	p := NewPseudonymizer(testKey())
	const limit = 16 << 10
	j := openJournal(t, path, JournalOptions{CompactBytes: limit})
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	keep := liveCall(p, 0, true)
	wait(t, j.Commit(keep))
	maxSize := int64(0)
	for i := 1; i <= 100; i++ {
		c := liveCall(p, i, false)
		wait(t, j.Commit(c))
		c2 := liveCall(p, i, true)
		wait(t, j.Commit(c2))
		j.End(c.ID)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, st.Size())
	}
	// The last end entries are flushed by a last begin.
	last := liveCall(p, 101, true)
	wait(t, j.Commit(last))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if maxSize > 2*limit {
		t.Errorf("journal grew to %d bytes with a compaction limit of %d", maxSize, limit)
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Error("a temporary file was left behind")
	}
	prev, torn, err := ReadJournal(path)
	if err != nil || torn != 0 || len(prev) != 2 || prev[0].Call.ID != keep.ID || prev[1].Call.ID != last.ID {
		t.Fatalf("after compaction: %v, %d torn, %d calls", err, torn, len(prev))
	}
	if prev[0].Call.Answer == nil {
		t.Error("compaction lost the call's latest snapshot")
	}
}

// TestJournalTornLastLine: a crash in the middle of a journal write leaves
// a torn last line, which was never reported written: it is ignored.
func TestJournalTornLastLine(t *testing.T) {
	p := NewPseudonymizer(testKey())
	for _, tc := range []struct {
		name string
		tail func(line []byte) []byte // what the crash left of the last entry
		want []int                    // the calls still live
	}{
		{"begin torn", func(l []byte) []byte { return l[:len(l)/2] }, []int{1}},
		{"begin without newline", func(l []byte) []byte { return l[:len(l)-1] }, []int{1}},
		{"zeros", func(l []byte) []byte { return make([]byte, len(l)) }, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), JournalFile)
			j := openJournal(t, path, JournalOptions{})
			if err := j.Start(nil); err != nil {
				t.Fatal(err)
			}
			wait(t, j.Commit(liveCall(p, 1, true)))
			before := readFile(t, path)
			wait(t, j.Commit(liveCall(p, 2, false)))
			j.Close()
			all := readFile(t, path)
			writeFile(t, path, append(before, tc.tail(all[len(before):])...))
			prev, torn, err := ReadJournal(path)
			if err != nil || torn != 1 || len(prev) != len(tc.want) || prev[0].Call.ID != liveCall(p, tc.want[0], true).ID {
				t.Fatalf("%v, %d torn, %d calls", err, torn, len(prev))
			}
		})
	}
	// A torn end entry: the call stays live (its end was never durable).
	path := filepath.Join(t.TempDir(), JournalFile)
	j := openJournal(t, path, JournalOptions{})
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	c := liveCall(p, 1, true)
	wait(t, j.Commit(c))
	before := readFile(t, path)
	j.End(c.ID)
	j.Close()
	all := readFile(t, path)
	writeFile(t, path, all[:len(before)+(len(all)-len(before))/2])
	if prev, torn, err := ReadJournal(path); err != nil || torn != 1 || len(prev) != 1 {
		t.Fatalf("torn end: %v, %d torn, %d calls", err, torn, len(prev))
	}
}

// failFirstSync makes the first fsync of a batch fail (before Start).
func failFirstSync(j *Journal) {
	var failed atomic.Bool
	j.syncFile = func(f *os.File) error {
		if failed.CompareAndSwap(false, true) {
			return errors.New("injected fsync failure")
		}
		return f.Sync()
	}
}

// failedCommit starts a journal whose first fsync fails and commits one
// answered call, which it checks is reported failed.
func failedCommit(t *testing.T, opts JournalOptions) (j *Journal, path string, a *Call) {
	t.Helper()
	path = filepath.Join(t.TempDir(), JournalFile)
	j = openJournal(t, path, opts)
	failFirstSync(j)
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	a = liveCall(NewPseudonymizer(testKey()), 1, true)
	if err := <-j.Commit(a); err == nil {
		t.Fatal("entry reported durable despite a failed fsync")
	}
	return j, path, a
}

// TestJournalRewritesAfterFailedSync: a batch whose fsync failed is
// reported failed, and the next batch rewrites the whole file.
func TestJournalRewritesAfterFailedSync(t *testing.T) {
	j, path, _ := failedCommit(t, JournalOptions{})
	p := NewPseudonymizer(testKey())
	if j.Failures() != 1 || j.Err() == nil {
		t.Errorf("failures %d, err %v", j.Failures(), j.Err())
	}
	// The failed file is not trusted: make it look as if nothing reached
	// the disk, and check that the next batch puts everything back.
	writeFile(t, path, nil)
	b := liveCall(p, 2, true)
	wait(t, j.Commit(b))
	if j.Err() != nil {
		t.Errorf("error not cleared: %v", j.Err())
	}
	if prev, _, err := ReadJournal(path); err != nil || len(prev) != 2 {
		t.Fatalf("after the rewrite: %v, %d calls, want both", err, len(prev))
	}
}

// crashedRun writes n records and leaves the log as a crash would: no closed
// event. It returns the writer, still open (as the dead process left it).
func crashedRun(t *testing.T, path string, j *Journal, n int) *Writer {
	t.Helper()
	w, err := OpenWriter(path, WriterOptions{Version: "v1", Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(sampleConn(i)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func TestUncleanStopRecordsLiveCalls(t *testing.T) {
	dir := t.TempDir()
	path, jpath := filepath.Join(dir, "compliance.jsonl"), filepath.Join(dir, JournalFile)
	p := NewPseudonymizer(testKey())
	signer, err := LoadOrCreateSigningKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, jpath, JournalOptions{})
	w := crashedRun(t, path, j, 2)
	up, ringing, done := liveCall(p, 1, true), liveCall(p, 2, false), liveCall(p, 3, true)
	// A snapshot may catch an outcome being settled (a CANCEL as the crash
	// came): whether its 487 went out is not known.
	ringing.Disposition, ringing.SIPStatus = DispositionCancelled, 487
	for _, c := range []*Call{up, ringing, done} {
		wait(t, j.Commit(c))
	}
	final := sampleCall(p, 3)
	if err := w.Append(final); err != nil {
		t.Fatal(err)
	}
	j.End(done.ID)
	j.Close() // flushes the end; the writer is left as the crash left it
	lastSeq := w.LastSeq()
	lastTime := readLog(t, path)[lastSeq-1].Time

	j2 := openJournal(t, jpath, JournalOptions{})
	w2, err := OpenWriter(path, WriterOptions{Version: "v2", Journal: j2, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	u := w2.UncleanStop()
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readLog(t, path)
	got := strings.Join(recordKinds(recs[lastSeq:]), " ")
	want := strings.Join([]string{string(LogUncleanStop), "unobserved:" + up.ID, "unobserved:" + ringing.ID, string(LogCheckpoint), string(LogOpened), string(LogCheckpoint), string(LogClosed)}, " ")
	if got != want {
		t.Fatalf("after the crash the log has\n %s\nwant\n %s", got, want)
	}
	wantDetail := fmt.Sprintf("last_seq=%d last_kind=call last_time=%s live=2 unobserved=2 recorded=0 torn=0",
		lastSeq, lastTime.Format(time.RFC3339Nano))
	if d := recs[lastSeq].Log.Detail; d != wantDetail {
		t.Errorf("unclean_stop detail %q, want %q", d, wantDetail)
	}
	if u == nil || u.Live != 2 || u.Unobserved != 2 || u.Detail != wantDetail {
		t.Errorf("UncleanStop() = %+v", u)
	}
	a, r := recs[lastSeq+1].Call, recs[lastSeq+2].Call
	if a.Disposition != DispositionUnobserved || a.SIPStatus != 200 || !a.End.Equal(up.End) || a.Answer == nil ||
		a.EndReason != "parapet stopped uncleanly while the call was up: its end was not observed" {
		t.Errorf("answered call recorded as %+v", a)
	}
	if r.Disposition != DispositionUnobserved || r.SIPStatus != 0 || r.Answer != nil || !r.End.Equal(ringing.End) ||
		r.EndReason != "parapet stopped uncleanly while the call was being set up: its outcome was not observed" {
		t.Errorf("ringing call recorded as %+v", r)
	}
	// What was known of the legs is kept: zones, transports, TLS and SRTP.
	if len(a.Legs) != 2 || a.Legs[1].TLS == nil || a.Legs[1].TLS.Version != "TLS1.3" || a.Legs[1].TLS.PeerCert == nil ||
		a.Legs[1].Media == nil || a.Legs[1].Media.SRTPSuite != up.Legs[1].Media.SRTPSuite || a.PolicyHash != up.PolicyHash ||
		len(a.Decisions) != len(up.Decisions) || a.Caller != up.Caller {
		t.Errorf("unobserved record lost what the journal knew: %+v", a)
	}
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: signer.Public().(ed25519.PublicKey)})
	if err != nil || !res.OK() || res.Checkpoints == 0 {
		t.Fatalf("verify: %v %s", err, problemString(res.Problem))
	}
	if prev, _, _ := ReadJournal(jpath); len(prev) != 0 {
		t.Errorf("journal still holds %d calls after recovery", len(prev))
	}

	// A clean stop then: the next start writes no unclean_stop.
	j3 := openJournal(t, jpath, JournalOptions{})
	w3, err := OpenWriter(path, WriterOptions{Journal: j3})
	if err != nil {
		t.Fatal(err)
	}
	if w3.UncleanStop() != nil {
		t.Errorf("unclean stop after a clean one: %+v", w3.UncleanStop())
	}
	w3.Close()
	j3.Close()
	recs = readLog(t, path)
	if ev := recordKinds(recs[len(recs)-2:]); ev[0] != string(LogOpened) {
		t.Errorf("after a clean stop the log has %v", ev)
	}
}

// TestUncleanStopSkipsRecordedCalls: a call whose final record reached the
// log before the crash (which came before its journal end entry) gets no
// second record.
func TestUncleanStopSkipsRecordedCalls(t *testing.T) {
	dir := t.TempDir()
	path, jpath := filepath.Join(dir, "compliance.jsonl"), filepath.Join(dir, JournalFile)
	p := NewPseudonymizer(testKey())
	j := openJournal(t, jpath, JournalOptions{})
	w := crashedRun(t, path, j, 1)
	recorded, live := liveCall(p, 1, true), liveCall(p, 2, true)
	wait(t, j.Commit(recorded))
	wait(t, j.Commit(live))
	if err := w.Append(sampleCall(p, 1)); err != nil {
		t.Fatal(err)
	}
	j.Close() // no end entry: the crash came first
	// The log rotates meanwhile: the record is in a rotated file.
	w.mu.Lock()
	w.opts.RotateBytes = 1
	w.mu.Unlock()
	for i := range 3 {
		if err := w.Append(sampleConn(i)); err != nil {
			t.Fatal(err)
		}
	}
	if files, _ := ChainFiles(path); len(files) < 2 {
		t.Fatalf("log did not rotate: %v", files)
	}

	j2 := openJournal(t, jpath, JournalOptions{})
	w2, err := OpenWriter(path, WriterOptions{Journal: j2})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	j2.Close()
	files, _ := ChainFiles(path)
	var all []*Record
	for _, f := range files {
		all = append(all, readLog(t, f)...)
	}
	counts := map[string]int{}
	var unclean *LogEvent
	for _, r := range all {
		if r.Call != nil {
			counts[r.Call.ID+" "+string(r.Call.Disposition)]++
		}
		if r.Log != nil && r.Log.Event == LogUncleanStop {
			unclean = r.Log
		}
	}
	if counts[recorded.ID+" answered"] != 1 || counts[recorded.ID+" unobserved"] != 0 || counts[live.ID+" unobserved"] != 1 {
		t.Errorf("call records: %v", counts)
	}
	if unclean == nil || !strings.HasSuffix(unclean.Detail, " live=2 unobserved=1 recorded=1 torn=0") {
		t.Errorf("unclean_stop: %+v", unclean)
	}
	if res, err := Verify(files, VerifyOptions{Head: true}); err != nil || !res.OK() {
		t.Fatalf("verify: %v %+v", err, res.Problem)
	}
}

// crashAfter is a log file that fails its nth write (counting from 1), as
// if the process had died just before it.
func crashAfter(n int) openFunc {
	writes := 0
	return func(name string, flag int, perm os.FileMode) (logFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &countedFile{File: f, writes: &writes, failAt: n}, nil
	}
}

type countedFile struct {
	*os.File
	writes *int
	failAt int
}

func (f *countedFile) Write(b []byte) (int, error) {
	*f.writes++
	if *f.writes == f.failAt {
		return 0, errors.New("injected: the process died here")
	}
	return f.File.Write(b)
}

// TestUncleanStopSurvivesCrashDuringRecovery: a crash while the unobserved
// records are being written, or after opened but before the journal is
// emptied, neither loses a call nor records one twice.
func TestUncleanStopSurvivesCrashDuringRecovery(t *testing.T) {
	dir := t.TempDir()
	path, jpath := filepath.Join(dir, "compliance.jsonl"), filepath.Join(dir, JournalFile)
	p := NewPseudonymizer(testKey())
	j := openJournal(t, jpath, JournalOptions{})
	crashedRun(t, path, j, 1)
	calls := []*Call{liveCall(p, 1, true), liveCall(p, 2, true), liveCall(p, 3, false)}
	for _, c := range calls {
		wait(t, j.Commit(c))
	}
	j.Close()
	journal := readFile(t, jpath)

	// First restart: dies writing the second unobserved record (write 1
	// is unclean_stop, 2 the first call).
	j1 := openJournal(t, jpath, JournalOptions{})
	if _, err := openWriter(path, WriterOptions{Journal: j1}, crashAfter(3)); err == nil {
		t.Fatal("the injected crash did not stop OpenWriter")
	}
	if b := readFile(t, jpath); !bytes.Equal(b, journal) {
		t.Fatal("the journal changed before its calls were all recorded")
	}

	// Second restart: completes, then dies before the journal is emptied
	// (its old content is put back, as if the rename had not happened).
	j2 := openJournal(t, jpath, JournalOptions{})
	if _, err := OpenWriter(path, WriterOptions{Journal: j2}); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	writeFile(t, jpath, journal)

	// Third restart, then a clean stop.
	j3 := openJournal(t, jpath, JournalOptions{})
	w3, err := OpenWriter(path, WriterOptions{Journal: j3})
	if err != nil {
		t.Fatal(err)
	}
	if u := w3.UncleanStop(); u == nil || u.Unobserved != 0 || u.Live != 3 {
		t.Errorf("third start: %+v, want an unclean stop with nothing left to record", u)
	}
	w3.Close()
	j3.Close()

	recs := readLog(t, path)
	counts := map[string]int{}
	var details []string
	for _, r := range recs {
		if r.Call != nil {
			counts[r.Call.ID]++
			if r.Call.Disposition != DispositionUnobserved {
				t.Errorf("call %s recorded as %s", r.Call.ID, r.Call.Disposition)
			}
		}
		if r.Log != nil && r.Log.Event == LogUncleanStop {
			details = append(details, r.Log.Detail)
		}
	}
	for _, c := range calls {
		if counts[c.ID] != 1 {
			t.Errorf("call %s has %d records, want exactly 1 (log: %v)", c.ID, counts[c.ID], recordKinds(recs))
		}
	}
	if len(details) != 3 || !strings.Contains(details[0], "live=3 unobserved=3 recorded=0") ||
		!strings.Contains(details[1], "last_kind=call") || !strings.Contains(details[1], "live=3 unobserved=2 recorded=1") ||
		!strings.Contains(details[2], "last_kind=opened") || !strings.Contains(details[2], "live=3 unobserved=0 recorded=3") {
		t.Errorf("unclean_stop details:\n%s", strings.Join(details, "\n"))
	}
	if res, err := Verify([]string{path}, VerifyOptions{Head: true}); err != nil || !res.OK() {
		t.Fatalf("verify: %v %+v", err, res.Problem)
	}
}

// TestUncleanStopWithoutJournal: a log that does not end with closed gets
// an unclean_stop at the next start, journal or not; one that does, none.
func TestUncleanStopWithoutJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w := crashedRun(t, path, nil, 1)
	last := w.LastSeq()
	w2, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	recs := readLog(t, path)
	if ev := recordKinds(recs[last:]); strings.Join(ev, " ") != "unclean_stop opened closed" {
		t.Fatalf("after a crash: %v", ev)
	}
	if d := recs[last].Log.Detail; !strings.HasPrefix(d, fmt.Sprintf("last_seq=%d last_kind=connection last_time=", last)) || strings.Contains(d, "live=") {
		t.Errorf("detail without a journal: %q", d)
	}
	w3, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w3.Close()
	if ev := recordKinds(readLog(t, path)); ev[len(ev)-2] != string(LogOpened) || ev[len(ev)-3] != string(LogClosed) {
		t.Errorf("after a clean stop: %v", ev)
	}
	// A new log: nothing before it, nothing to say.
	fresh := filepath.Join(t.TempDir(), "compliance.jsonl")
	w4, err := OpenWriter(fresh, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w4.Close()
	if ev := recordKinds(readLog(t, fresh)); strings.Join(ev, " ") != "opened closed" {
		t.Errorf("new log: %v", ev)
	}
}

// TestJournalNotesRideOnCommits: entries nobody waits for are written at
// once (a killed process loses none) and fsync'd with the next Commit, or
// SyncDelay after they were written.
func TestJournalNotesRideOnCommits(t *testing.T) {
	p := NewPseudonymizer(testKey())
	path := filepath.Join(t.TempDir(), JournalFile)
	j := openJournal(t, path, JournalOptions{SyncDelay: time.Hour})
	var mu sync.Mutex
	syncs := 0
	j.syncFile = func(f *os.File) error {
		mu.Lock()
		syncs++
		mu.Unlock()
		return f.Sync()
	}
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	ended := liveCall(p, 0, true)
	wait(t, j.Commit(ended))
	j.Note(liveCall(p, 1, false))
	j.Note(liveCall(p, 2, false))
	j.End(ended.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Written, not yet fsync'd: what a kill -9 would leave.
		if prev, _, _ := ReadJournal(path); len(prev) == 2 && prev[0].Call.ID == liveCall(p, 1, false).ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("notes never written to the file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	if syncs != 1 {
		t.Errorf("%d fsyncs after one commit and three entries not waited for, want 1", syncs)
	}
	mu.Unlock()
	wait(t, j.Commit(liveCall(p, 3, true)))
	mu.Lock()
	if syncs != 2 {
		t.Errorf("%d fsyncs, want 2: the notes ride on the second commit", syncs)
	}
	mu.Unlock()
	j.Close()

	// Alone, a note is fsync'd SyncDelay later.
	path = filepath.Join(t.TempDir(), JournalFile)
	j = openJournal(t, path, JournalOptions{SyncDelay: 10 * time.Millisecond})
	synced := make(chan struct{}, 1)
	j.syncFile = func(f *os.File) error {
		select {
		case synced <- struct{}{}:
		default:
		}
		return f.Sync()
	}
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.Note(liveCall(p, 1, false))
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("a note was never fsync'd")
	}
}

// A journal whose write failed retries on its own: with no call to write
// an entry, its error (which /readyz and journal_healthy report) clears
// once the file can be written again, instead of lasting until the next
// call's entry.
func TestJournalRecoversWithoutTraffic(t *testing.T) {
	j, path, a := failedCommit(t, JournalOptions{SyncDelay: 5 * time.Millisecond})
	for deadline := time.Now().Add(10 * time.Second); j.Err() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal never retried: %v", j.Err())
		}
	}
	if prev, _, err := ReadJournal(path); err != nil || len(prev) != 1 || prev[0].Call.ID != a.ID {
		t.Fatalf("after the retry: %v, %d calls", err, len(prev))
	}
}

// TestJournalHealthNeedsRoom: on a full disk an empty journal still
// rewrites fine, which must not count as recovered: the journal is healthy
// again only once an entry's worth can be written and fsync'd.
func TestJournalHealthNeedsRoom(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	p := NewPseudonymizer(testKey())
	j := openJournal(t, path, JournalOptions{SyncDelay: 5 * time.Millisecond})
	var full atomic.Bool
	full.Store(true)
	var probes atomic.Int64
	j.syncFile = func(f *os.File) error {
		if filepath.Base(f.Name()) == JournalFile+".probe" {
			probes.Add(1)
		}
		if full.Load() {
			return errors.New("injected: no space left on device")
		}
		return f.Sync()
	}
	if err := j.Start(nil); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	a := liveCall(p, 1, true)
	if err := <-j.Commit(a); err == nil {
		t.Fatal("entry reported durable on a full disk")
	}
	j.End(a.ID) // nothing live: the retry rewrites an empty file
	for deadline := time.Now().Add(5 * time.Second); probes.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal never probed: %d probes", probes.Load())
		}
	}
	if j.Err() == nil {
		t.Fatal("an empty rewrite on a full disk counted as recovered")
	}
	full.Store(false)
	for deadline := time.Now().Add(5 * time.Second); j.Err() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal did not recover once there was room: %v", j.Err())
		}
	}
	if _, err := os.Stat(path + ".probe"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("probe file left behind: %v", err)
	}
}
