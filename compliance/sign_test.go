package compliance

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A signed log: checkpoints every few records and before "closed", each
// verifying with the public key.
func TestSignedCheckpoints(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	again, err := LoadOrCreateSigningKey(dir)
	if err != nil || !again.Equal(key) {
		t.Fatalf("the key changed when read again: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, SigningKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file: %v %v", st, err)
	}

	path := writeLog(t, 7, WriterOptions{Signer: key, CheckpointEvery: 3})
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() {
		t.Fatalf("signed log: %v %+v", err, res.Problem)
	}
	// opened and 7 records with a checkpoint after every 3 (opened
	// counts), a checkpoint before closed.
	if res.Checkpoints < 3 {
		t.Errorf("%d checkpoints, want at least 3", res.Checkpoints)
	}
	if res.SignedSeq != res.LastSeq-2 {
		t.Errorf("signed up to seq %d of %d; want all but the final checkpoint and closed", res.SignedSeq, res.LastSeq)
	}

	// Without the key the chain alone is checked; with another key the
	// checkpoints do not prove anything.
	if res, _ := Verify([]string{path}, VerifyOptions{}); !res.OK() || res.Checkpoints != 0 {
		t.Errorf("unsigned verification: %+v", res)
	}
	otherDir := t.TempDir()
	if _, err := LoadOrCreateSigningKey(otherDir); err != nil {
		t.Fatal(err)
	}
	other, _ := LoadPublicKey(filepath.Join(otherDir, PublicKeyFile))
	if res, _ := Verify([]string{path}, VerifyOptions{PublicKey: other}); res.OK() || res.Problem.Kind != ProblemSignature {
		t.Errorf("another key: %+v", res.Problem)
	}
}

// Someone who rewrites the log and recomputes the whole chain fools the
// hash chain, but not the checkpoints.
func TestRechainedLogCaughtBySignature(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := writeLog(t, 6, WriterOptions{Signer: key, CheckpointEvery: 100, CheckpointInterval: time.Hour})

	// Change the disposition of the first call and re-hash every line
	// after it, as an attacker without the key would.
	var out bytes.Buffer
	prev := ""
	changed := false
	for _, line := range splitLines(readFile(t, path)) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Call != nil && !changed {
			r.Call.Disposition = DispositionRejected
			changed = true
		}
		r.Prev = prev
		b, h, err := encodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		prev = h
	}
	if !changed {
		t.Fatal("no call record to change")
	}
	writeFile(t, path, out.Bytes())
	os.Remove(headPath(path))

	if res, _ := Verify([]string{path}, VerifyOptions{}); !res.OK() {
		t.Fatalf("the re-chained log should fool the chain alone: %+v", res.Problem)
	}
	res, _ := Verify([]string{path}, VerifyOptions{PublicKey: pub})
	if res.OK() || res.Problem.Kind != ProblemSignature {
		t.Fatalf("re-chained log with the key: %+v", res.Problem)
	}
}

// Checkpoints and rotation: a signed chain across rotated files verifies
// with the key, and every file but the last ends signed.
func TestSignedCheckpointsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := filepath.Join(dir, "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 4000, Now: newClock(time.Second).Now, Version: "v1",
		Signer: key, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range 20 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(path)
	if err != nil || len(files) < 3 {
		t.Fatalf("files %v %v, want a few", files, err)
	}
	res, err := Verify(files, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() {
		t.Fatalf("rotated signed log: %v %+v", err, res.Problem)
	}
	if res.Checkpoints < 10 {
		t.Errorf("%d checkpoints for 20 records at one per 2", res.Checkpoints)
	}
}

// On a quiet system the timer signs the last records: no append is needed
// to trigger the checkpoint, and nothing new means no further checkpoint.
func TestCheckpointTimer(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := filepath.Join(dir, "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0-test", Signer: key, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	if err := w.Append(sampleRecord(p, 0)); err != nil {
		t.Fatal(err)
	}
	checkpoints := func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte(`"event":"`+LogCheckpoint+`"`))
	}
	deadline := time.Now().Add(10 * time.Second)
	for checkpoints() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint written by the timer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Several more ticks over nothing new.
	time.Sleep(200 * time.Millisecond)
	if n := checkpoints(); n != 1 {
		t.Errorf("%d checkpoints over one record, want 1", n)
	}
	// The timer's checkpoint signs the record, before Close adds anything.
	res, err := Verify([]string{path}, VerifyOptions{PublicKey: pub})
	if err != nil || !res.OK() || res.SignedSeq != res.LastSeq-1 {
		t.Fatalf("timer checkpoint: %v %+v", err, res)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close found nothing unsigned: closed follows the timer's checkpoint.
	if n := checkpoints(); n != 1 {
		t.Errorf("%d checkpoints after Close, want 1", n)
	}
}

// signingKeys creates a signing key pair in dir and returns both halves.
func signingKeys(t *testing.T, dir string) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	key, err := LoadOrCreateSigningKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// The attack of issue 7: remove a call record and every checkpoint,
// recompute every hash and the head file. The chain and the head file are
// fooled; with the key, the records no checkpoint covers are caught.
func TestVerifyKeyCatchesRechainedLog(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	for name, tc := range map[string]struct {
		n          int
		step       time.Duration
		dropClosed bool
		want       string // in the problem's message
	}{
		"a call and every checkpoint removed":            {n: 12, step: time.Second, want: "closed"},
		"closed removed too, records spanning over 90 s": {n: 30, step: 5 * time.Second, dropClosed: true, want: "span"},
		"closed removed too, more than 100 records":      {n: 150, step: time.Millisecond, dropClosed: true, want: "100 records"},
		"closed removed too, 40 records over minutes":    {n: 40, step: 2 * time.Second, dropClosed: true, want: "span"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeLog(t, tc.n, WriterOptions{Signer: key, CheckpointEvery: 4, Now: newClock(tc.step).Now})
			if res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub}); err != nil || !res.OK() {
				t.Fatalf("the log as written: %v %s", err, problemString(res.Problem))
			}
			dropped := false
			n := rechain(t, path, func(r *Record) bool {
				switch {
				case r.Call != nil && !dropped:
					dropped = true
					return false
				case isEvent(r, LogCheckpoint):
					return false
				case isEvent(r, LogClosed):
					return !tc.dropClosed
				}
				return true
			})
			if res, err := Verify([]string{path}, VerifyOptions{Head: true}); err != nil || !res.OK() {
				t.Fatalf("the rewritten log should fool the chain and the head file: %v %s", err, problemString(res.Problem))
			}
			res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
			if err != nil || res.OK() || res.Problem.Kind != ProblemUnsigned || !strings.Contains(res.Problem.Message, tc.want) {
				t.Fatalf("rewritten log with the key: %v %s; want %s mentioning %q", err, problemString(res.Problem), ProblemUnsigned, tc.want)
			}
			if !tc.dropClosed && res.Problem.Line != n {
				t.Errorf("problem at line %d, want the closed record at line %d", res.Problem.Line, n)
			}
		})
	}
}

// A tail rewritten beyond what the writer leaves unsigned fails: the
// checkpoints after the first ones are removed (a call with them) and the
// chain recomputed.
func TestVerifyKeyTailRewrittenBeyondRun(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	for name, tc := range map[string]struct {
		n     int
		step  time.Duration
		every int
		keep  int // checkpoints kept
		want  string
	}{
		// A writer asked for fewer checkpoints still signs every 100.
		"more than 100 records after the last checkpoint": {n: 260, step: time.Millisecond, every: 1000, keep: 1, want: "100 records"},
		"more than 90 s after the last checkpoint":        {n: 60, step: 5 * time.Second, keep: 2, want: "span"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeLog(t, tc.n, WriterOptions{Signer: key, CheckpointEvery: tc.every, Now: newClock(tc.step).Now})
			res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
			if err != nil || !res.OK() || res.Checkpoints <= tc.keep+1 {
				t.Fatalf("the log as written: %v %s, %d checkpoints", err, problemString(res.Problem), res.Checkpoints)
			}
			cps, dropped := 0, false
			rechain(t, path, func(r *Record) bool {
				switch {
				case isEvent(r, LogCheckpoint):
					cps++
					return cps <= tc.keep
				case isEvent(r, LogClosed):
					return false
				case r.Call != nil && cps == tc.keep && !dropped:
					dropped = true
					return false
				}
				return true
			})
			if !dropped {
				t.Fatal("no call after the checkpoints kept")
			}
			res, err = Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
			if err != nil || res.OK() || res.Problem.Kind != ProblemUnsigned || !strings.Contains(res.Problem.Message, tc.want) {
				t.Fatalf("rewritten tail: %v %s; want %s mentioning %q", err, problemString(res.Problem), ProblemUnsigned, tc.want)
			}
		})
	}
}

// What the writer legitimately leaves unsigned passes: the few records of a
// log still being written (or cut by a crash) before its first checkpoint,
// and closed after its checkpoint. So does a log cut back by someone
// without the key within those bounds (docs/records.md says so).
func TestVerifyKeyAcceptsShortUnsignedTail(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Version: "v1", Signer: key, Now: newClock(time.Second).Now})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range 3 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() || res.Checkpoints != 0 || res.UnsignedRecords != 4 || res.UnsignedSpan <= 0 || res.UnsignedSpan > MaxUnsignedSpan {
		t.Fatalf("short unsigned log: %v %s, %d checkpoints, %d unsigned over %v", err, problemString(res.Problem), res.Checkpoints, res.UnsignedRecords, res.UnsignedSpan)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() || res.Checkpoints != 1 || res.SignedSeq != 4 || res.UnsignedRecords != 1 || res.UnsignedSpan != 0 {
		t.Fatalf("closed log: %v %s, %d checkpoints to seq %d, %d unsigned", err, problemString(res.Problem), res.Checkpoints, res.SignedSeq, res.UnsignedRecords)
	}

	// Cut back to before the final checkpoint and closed: still within
	// the bounds, so this is what the key cannot catch.
	path = writeLog(t, 10, WriterOptions{Signer: key, CheckpointEvery: 4})
	lines := splitLines(readFile(t, path))
	writeFile(t, path, bytes.Join(lines[:len(lines)-2], nil))
	rechain(t, path, nil)
	res, err = Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() || res.UnsignedRecords == 0 {
		t.Fatalf("log cut within the bounds: %v %s", err, problemString(res.Problem))
	}
}

// A stop with nothing appended since opened still signs before closed, and
// a start signs the log it finds before writing opened.
func TestCloseSignsWithNothingAppended(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	clock := newClock(time.Second)
	for run, want := range [][]LogEventKind{
		{LogOpened, LogCheckpoint, LogClosed},
		{LogOpened, LogCheckpoint, LogClosed, LogCheckpoint, LogOpened, LogCheckpoint, LogClosed},
	} {
		w, err := OpenWriter(path, WriterOptions{Version: "v1", Signer: key, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := events(t, path); !slices.Equal(got, want) {
			t.Fatalf("run %d: events %q, want %q", run+1, got, want)
		}
		res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
		if err != nil || !res.OK() || res.SignedSeq != res.LastSeq-2 || res.UnsignedRecords != 1 {
			t.Fatalf("run %d: %v %s, signed to %d of %d", run+1, err, problemString(res.Problem), res.SignedSeq, res.LastSeq)
		}
	}
}

// A closed whose checkpoint was removed (and the chain recomputed) fails.
func TestVerifyKeyClosedNeedsItsCheckpoint(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := writeLog(t, 5, WriterOptions{Signer: key, CheckpointEvery: 2})
	lines := splitLines(readFile(t, path))
	var last Record
	if err := json.Unmarshal(lines[len(lines)-2], &last); err != nil || !isEvent(&last, LogCheckpoint) {
		t.Fatalf("the record before closed is not a checkpoint: %s", lines[len(lines)-2])
	}
	n := rechain(t, path, func(r *Record) bool { return r.Seq != last.Seq })
	if res, _ := Verify([]string{path}, VerifyOptions{Head: true}); !res.OK() {
		t.Fatalf("without the key: %s", problemString(res.Problem))
	}
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || res.OK() || res.Problem.Kind != ProblemUnsigned || res.Problem.Line != n {
		t.Fatalf("closed without its checkpoint: %v %s; want %s at line %d", err, problemString(res.Problem), ProblemUnsigned, n)
	}
}

// A version 1 writer signed before closed only when something had come
// since the last checkpoint, so a version 1 run that stopped with nothing
// appended (opened, closed) still verifies with the key; the same shape
// written as version 2 does not.
func TestVerifyKeyVersion1ClosedWithoutCheckpoint(t *testing.T) {
	_, pub := signingKeys(t, t.TempDir())
	for _, tc := range []struct {
		v    int
		want bool
	}{{1, true}, {2, false}} {
		path := filepath.Join(t.TempDir(), "compliance.jsonl")
		t0 := time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC)
		var out bytes.Buffer
		prev := ""
		for i, ev := range []LogEventKind{LogOpened, LogClosed} {
			b, h, err := encodeLine(&Record{V: tc.v, Seq: uint64(i + 1), Type: TypeLog, Time: t0.Add(time.Duration(i) * time.Second),
				Log: &LogEvent{Event: ev}, Prev: prev})
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
			prev = h
		}
		writeFile(t, path, out.Bytes())
		res, err := Verify([]string{path}, VerifyOptions{PublicKey: pub})
		if err != nil || res.OK() != tc.want {
			t.Errorf("v%d opened, closed: %v ok=%v (%s), want ok=%v", tc.v, err, res.OK(), problemString(res.Problem), tc.want)
		}
	}
}

// Several runs of parapet on one log: a clean stop, a crash (verified
// while parapet is down, with a torn line), a start an hour later. Every
// state verifies with the key, and each start signs what it found.
func TestVerifyKeyRunsAndRestarts(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	clock := newClock(time.Second)
	opts := WriterOptions{Version: "v1", Signer: key, Now: clock.Now}
	p := NewPseudonymizer(testKey())
	verify := func(when string) *VerifyResult {
		t.Helper()
		res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
		if err != nil || !res.OK() {
			t.Fatalf("%s: %v %s", when, err, problemString(res.Problem))
		}
		return res
	}
	run := func(n int) *Writer {
		w, err := OpenWriter(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := w.Append(sampleRecord(p, i)); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	if err := run(3).Close(); err != nil {
		t.Fatal(err)
	}
	verify("after a clean stop")
	crashed := run(2) // never closed: a crash
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"v":1,"seq":`)
	f.Close()
	if res := verify("after a crash"); res.Truncated == nil || res.UnsignedRecords != 3 {
		t.Fatalf("after a crash: truncated %s, %d unsigned", problemString(res.Truncated), res.UnsignedRecords)
	}
	_ = crashed
	clock.mu.Lock()
	clock.t = clock.t.Add(time.Hour)
	clock.mu.Unlock()
	w := run(2)
	evs := events(t, path)
	if i := slices.Index(evs, LogRecovered); i < 0 || !slices.Equal(evs[i:i+4], []LogEventKind{LogRecovered, LogUncleanStop, LogCheckpoint, LogOpened}) {
		t.Fatalf("restart after the crash: events %q, want recovered, unclean_stop, checkpoint, opened", evs)
	}
	if res := verify("an hour later, before the first checkpoint of the run"); res.UnsignedRecords != 3 {
		t.Errorf("%d unsigned, want opened and 2 records", res.UnsignedRecords)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	verify("after the last stop")
}

// A log written without a signer has no checkpoint: with the key, it
// passes only while it is as short as a signed log's unsigned tail.
func TestVerifyKeyLogWithoutSigner(t *testing.T) {
	_, pub := signingKeys(t, t.TempDir())
	path := writeLog(t, 3, WriterOptions{})
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || res.OK() || res.Problem.Kind != ProblemUnsigned || res.Problem.Line != 5 {
		t.Fatalf("closed unsigned log: %v %s; want %s at line 5 (closed)", err, problemString(res.Problem), ProblemUnsigned)
	}
	for name, tc := range map[string]struct {
		n    int
		step time.Duration
		ok   bool
	}{
		"a few records within seconds": {n: 2, step: time.Second, ok: true},
		"records over minutes":         {n: 5, step: 30 * time.Second},
		"more than 100 records":        {n: 120, step: time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compliance.jsonl")
			w, err := OpenWriter(path, WriterOptions{Version: "v1", Now: newClock(tc.step).Now})
			if err != nil {
				t.Fatal(err)
			}
			p := NewPseudonymizer(testKey())
			for i := range tc.n {
				if err := w.Append(sampleRecord(p, i)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
			switch {
			case err != nil:
				t.Fatal(err)
			case tc.ok && (!res.OK() || res.UnsignedRecords != tc.n+1):
				t.Fatalf("%s, %d unsigned", problemString(res.Problem), res.UnsignedRecords)
			case !tc.ok && (res.OK() || res.Problem.Kind != ProblemUnsigned || res.Problem.Line != 1):
				t.Fatalf("%s; want %s from line 1", problemString(res.Problem), ProblemUnsigned)
			}
		})
	}
}

// The writer never leaves more than CheckpointEvery records unsigned, even
// when a rotation adds its own record in the same append; and each file of
// a rotated, signed log verifies with the key on its own.
func TestCheckpointEveryHoldsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := filepath.Join(dir, "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 4000, Now: newClock(time.Second).Now, Version: "v1",
		Signer: key, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range 40 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(path)
	if err != nil || len(files) < 4 {
		t.Fatalf("files %v %v, want several", files, err)
	}
	run, longest := 0, 0
	for _, f := range files {
		for _, ev := range events(t, f) {
			if ev == LogCheckpoint {
				run = 0
				continue
			}
			run++
			longest = max(longest, run)
		}
	}
	if longest > 3 {
		t.Errorf("%d records in a row unsigned, CheckpointEvery is 3", longest)
	}
	for i, f := range files {
		res, err := Verify([]string{f}, VerifyOptions{Head: i == len(files)-1, PublicKey: pub})
		if err != nil || !res.OK() || (i > 0) != (res.ContinuesFrom != "") {
			t.Errorf("%s alone: %v %s", f, err, problemString(res.Problem))
		}
	}
}

// checkpointFaults is a log file whose checkpoint writes fail, in the order
// of fail: "write" writes nothing; "torn" writes half the line, and the
// truncate that would cut it back fails too, so the file's state is unknown.
type checkpointFaults struct {
	*os.File
	fail         *[]string
	failTruncate bool
}

func (f *checkpointFaults) Write(b []byte) (int, error) {
	if len(*f.fail) > 0 && bytes.Contains(b, []byte(`"event":"checkpoint"`)) {
		mode := (*f.fail)[0]
		*f.fail = (*f.fail)[1:]
		if mode == "torn" {
			n, _ := f.File.Write(b[:len(b)/2])
			f.failTruncate = true
			return n, errors.New("injected: no space left on device")
		}
		return 0, errors.New("injected write failure")
	}
	return f.File.Write(b)
}

func (f *checkpointFaults) Truncate(n int64) error {
	if f.failTruncate {
		f.failTruncate = false
		return errors.New("injected truncate failure")
	}
	return f.File.Truncate(n)
}

func openCheckpointFaults(fail *[]string) openFunc {
	return func(name string, flag int, perm os.FileMode) (logFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &checkpointFaults{File: f, fail: fail}, nil
	}
}

// A checkpoint due before a record that fails half-written, and cannot be
// cut back, leaves the file's end unknown: the record is not written after
// the torn bytes (where it would be unreadable while Append reported it
// durable). Append fails, and the retry seals the torn line first.
func TestRecordNotWrittenAfterTornCheckpoint(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	var fail []string
	w, err := openWriter(path, WriterOptions{Version: "v1", Signer: key, CheckpointEvery: 2, Now: newClock(time.Second).Now},
		openCheckpointFaults(&fail))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	// The checkpoint due after the first record fails cleanly; the one
	// owed before the second is torn.
	fail = []string{"write", "torn"}
	if err := w.Append(sampleRecord(p, 0)); err != nil {
		t.Fatal(err)
	}
	r := sampleRecord(p, 1)
	if err := w.Append(r); err == nil {
		t.Fatal("Append reported the record written after a torn checkpoint that could not be cut back")
	}
	if len(fail) != 0 {
		t.Fatalf("injected failures not reached: %v", fail)
	}
	if err := w.Append(r); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() || res.Calls != 2 || len(res.Recovered) != 1 {
		t.Fatalf("verify: %v %s, %d calls, recovered %v", err, problemString(res.Problem), res.Calls, res.Recovered)
	}
}

// A Close whose checkpoint fails does not write closed: parapet's own log
// must never hold a closed that verify -key takes for a removed checkpoint.
// The log stays as a stop that was not clean, and the next start says so.
func TestCloseWithoutItsCheckpointWritesNoClosed(t *testing.T) {
	key, pub := signingKeys(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	clock := newClock(time.Second)
	var fail []string
	w, err := openWriter(path, WriterOptions{Version: "v1", Signer: key, Now: clock.Now}, openCheckpointFaults(&fail))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(sampleRecord(NewPseudonymizer(testKey()), 0)); err != nil {
		t.Fatal(err)
	}
	fail = []string{"write"}
	if err := w.Close(); err == nil {
		t.Fatal("Close reported success without its checkpoint")
	}
	if got, want := events(t, path), []LogEventKind{LogOpened, ""}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() {
		t.Fatalf("verify -key: %v %s", err, problemString(res.Problem))
	}
	w, err = OpenWriter(path, WriterOptions{Version: "v1", Signer: key, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if w.UncleanStop() == nil {
		t.Error("the start after a close without closed reports no unclean stop")
	}
	w.Close()
}
