package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// seqLog collects the seqs Follow delivers.
type seqLog struct {
	mu   sync.Mutex
	seqs []uint64
}

func (s *seqLog) add(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, r.Seq)
	return nil
}

func (s *seqLog) get() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.seqs...)
}

func (s *seqLog) last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seqs) == 0 {
		return 0
	}
	return s.seqs[len(s.seqs)-1]
}

// checkRun fails unless seqs runs from first to last without a gap or a
// repeat.
func checkRun(t *testing.T, seqs []uint64, first, last uint64) {
	t.Helper()
	if len(seqs) == 0 || seqs[0] != first || seqs[len(seqs)-1] != last || uint64(len(seqs)) != last-first+1 {
		t.Fatalf("delivered %d records %v, want seq %d to %d", len(seqs), seqs, first, last)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seq %d follows %d", seqs[i], seqs[i-1])
		}
	}
}

// startFollow runs Follow in a goroutine; the returned stop cancels it and
// checks that it returns promptly with the context's error.
func startFollow(t *testing.T, path string, fromStart bool, got *seqLog) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, path, fromStart, got.add) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Follow returned %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Follow did not return within 2s of the cancel")
		}
	}
}

// Follow from the start of a log not created yet, while the real Writer
// writes and rotates it: every record once, in seq order.
func TestFollowAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	var got seqLog
	stop := startFollow(t, path, true, &got)
	defer stop()

	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0-test", RotateBytes: 12000})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	// A first burst, likely rotated before Follow first finds the file;
	// then batches that Follow catches up with one by one, so that it also
	// sees rotations happen while it follows.
	for i := range 12 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 12; i < 40; i += 4 {
		last := w.LastSeq()
		waitUntil(t, 10*time.Second, "Follow to catch up", func() bool { return got.last() >= last })
		for j := i; j < i+4; j++ {
			if err := w.Append(sampleRecord(p, j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	last := w.LastSeq()
	waitUntil(t, 10*time.Second, "the last record", func() bool { return got.last() >= last })
	checkRun(t, got.get(), 1, last)
	rotated, err := rotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 2 {
		t.Fatalf("%d rotations, want at least 2", len(rotated))
	}
}

// Follow from the end of a live log: the records already there are not
// delivered, those appended after are, across rotations.
func TestFollowFromEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0-test", RotateBytes: 12000})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := NewPseudonymizer(testKey())
	if err := w.Append(sampleRecord(p, 0)); err != nil {
		t.Fatal(err)
	}
	before := w.LastSeq()
	var got seqLog
	stop := startFollow(t, path, false, &got)
	defer stop()
	// Whether Follow has reached the end yet is unknown: append until it
	// delivers, then well past two rotations.
	i := 1
	waitUntil(t, 10*time.Second, "a first record", func() bool {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
		i++
		return got.last() != 0
	})
	first := got.get()[0]
	if first <= before {
		t.Fatalf("first delivered seq %d was in the log before Follow started (up to %d)", first, before)
	}
	rotatedBefore, _ := rotatedFiles(path)
	for j := range 30 {
		if err := w.Append(sampleRecord(p, i+j)); err != nil {
			t.Fatal(err)
		}
	}
	last := w.LastSeq()
	waitUntil(t, 10*time.Second, "the last record", func() bool { return got.last() >= last })
	checkRun(t, got.get(), first, last)
	if rotated, _ := rotatedFiles(path); len(rotated)-len(rotatedBefore) < 2 {
		t.Fatalf("%d rotations while following, want at least 2", len(rotated)-len(rotatedBefore))
	}
}

// Several rotations between two polls: the files in between are delivered
// whole, in chain order, before the new live file.
func TestFollowSeveralRotationsBetweenPolls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0-test", RotateBytes: 12000, Now: newClock(time.Second).Now})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	if err := w.Append(sampleRecord(p, 0)); err != nil {
		t.Fatal(err)
	}
	cur, err := openTail(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.close()
	var got seqLog
	fn := func(_ []byte, r *Record) error { return got.add(r) }
	fl := &Follower{Path: path, Bad: func(file string, line int, err error) { t.Errorf("%s:%d: %v", file, line, err) }}
	ctx := context.Background()
	if err := fl.read(ctx, cur, fn); err != nil {
		t.Fatal(err)
	}
	if next, err := fl.successor(ctx, cur, fn); next != nil || err != nil {
		t.Fatalf("successor before any rotation: %v, %v", next, err)
	}
	for i := 1; i < 30; i++ {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	if rotated, _ := rotatedFiles(path); len(rotated) < 3 {
		t.Fatalf("%d rotations, want at least 3", len(rotated))
	}
	next, err := fl.successor(ctx, cur, fn)
	if err != nil || next == nil {
		t.Fatalf("successor after rotations: %v, %v", next, err)
	}
	defer next.close()
	if err := fl.read(ctx, next, fn); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fl.read(ctx, next, fn); err != nil {
		t.Fatal(err)
	}
	checkRun(t, got.get(), 1, w.LastSeq())
}

// A line is delivered once its newline is written, not before, and once.
func TestFollowWaitsForTheNewline(t *testing.T) {
	path := writeLog(t, 2, WriterOptions{})
	var got seqLog
	fn := func(_ []byte, r *Record) error { return got.add(r) }
	fl := &Follower{Path: path}
	cur, err := openTail(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.close()
	ctx := context.Background()
	if err := fl.read(ctx, cur, nil); err != nil { // from the end
		t.Fatal(err)
	}
	rec := sampleConn(9)
	rec.V, rec.Seq, rec.Time = SchemaVersion, 99, t0
	line, _, err := encodeLine(rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, part := range [][]byte{line[:10], line[10 : len(line)-1]} {
		if _, err := f.Write(part); err != nil {
			t.Fatal(err)
		}
		if err := fl.read(ctx, cur, fn); err != nil {
			t.Fatal(err)
		}
		if n := len(got.get()); n != 0 {
			t.Fatalf("%d records delivered before the newline", n)
		}
	}
	if _, err := f.Write(line[len(line)-1:]); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := fl.read(ctx, cur, fn); err != nil {
			t.Fatal(err)
		}
	}
	if s := got.get(); len(s) != 1 || s[0] != 99 {
		t.Fatalf("delivered %v, want [99]", s)
	}
}

// A cancelled context ends Follow promptly, whether it waits for the log to
// appear or for new records.
func TestFollowCancel(t *testing.T) {
	for _, name := range []string{"missing.jsonl", "live"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			if name == "live" {
				path = writeLog(t, 1, WriterOptions{})
			}
			var got seqLog
			stop := startFollow(t, path, true, &got)
			if name == "live" {
				waitUntil(t, 5*time.Second, "the existing records", func() bool { return len(got.get()) == 3 })
			}
			stop()
		})
	}
}

// An error from fn ends Follow with that error.
func TestFollowFnError(t *testing.T) {
	path := writeLog(t, 1, WriterOptions{})
	stopErr := errors.New("enough")
	err := Follow(context.Background(), path, true, func(*Record) error { return stopErr })
	if err != stopErr { //nolint:errorlint // the contract is fn's error itself, unwrapped
		t.Fatalf("Follow returned %v, want the fn's error", err)
	}
}

// Lines that are not intact records go to Bad with their file and line,
// and the records around them are delivered.
func TestFollowReportsBadLines(t *testing.T) {
	path := writeLog(t, 3, WriterOptions{})
	lines := splitLines(readFile(t, path))
	lines[1] = bytes.Replace(lines[1], []byte(`"seq":2`), []byte(`"seq":8`), 1)
	writeFile(t, path, bytes.Join(lines, nil))
	var mu sync.Mutex
	var bad []string
	var got seqLog
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fl := &Follower{Path: path, FromStart: true, Bad: func(file string, line int, err error) {
		mu.Lock()
		defer mu.Unlock()
		bad = append(bad, fmt.Sprintf("%s:%d:%v", file, line, errors.Is(err, ErrDamagedLine)))
	}}
	done := make(chan error, 1)
	go func() { done <- fl.Run(ctx, func(_ []byte, r *Record) error { return got.add(r) }) }()
	waitUntil(t, 5*time.Second, "the closed record", func() bool { return got.last() == 5 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if s := got.get(); !slices.Equal(s, []uint64{1, 3, 4, 5}) {
		t.Errorf("delivered %v, want [1 3 4 5]", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{path + ":2:true"}; !slices.Equal(bad, want) {
		t.Errorf("bad %v, want %v", bad, want)
	}
}
