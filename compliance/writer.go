package compliance

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is what b2bua writes records to. *Writer is the production Sink.
type Sink interface {
	// Append writes one record durably or returns an error.
	Append(*Record) error
}

var _ Sink = (*Writer)(nil)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("compliance log is closed")

// rotatedTimeLayout names rotated files: <log>.<UTC time>[.n].
const rotatedTimeLayout = "20060102T150405Z"

// WriterOptions configures OpenWriter.
type WriterOptions struct {
	// Version is the parapet version, written in the log's own events.
	Version string
	// PolicyHash and Config, when set, are written in the LogOpened event:
	// the policy in force and the configuration it came from.
	PolicyHash, Config string
	// Now is the clock; nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time
	// RotateBytes is the size a log file may reach: an append that would
	// take the file past it first moves the file aside and starts a new one
	// that continues the chain. 0 means never rotate. A file always holds at
	// least its first record and one more, whatever the limit.
	RotateBytes int64
	// Signer, when set, signs the chain: a LogCheckpoint record follows
	// every CheckpointEvery records or CheckpointInterval (whichever comes
	// first), immediately precedes LogClosed, and, when the log already
	// holds records and its last one is not a checkpoint, is written when
	// the log is opened, before LogOpened: a start signs what it found.
	// The interval is checked at each append and, on the real clock (Now
	// nil), by a timer as well, so that on a quiet system the last records
	// are signed within about 1.25 intervals rather than when the next
	// record comes. No more than CheckpointEvery records are ever left
	// unsigned, even by an append that also writes a rotated record.
	Signer ed25519.PrivateKey
	// CheckpointEvery and CheckpointInterval: 0 or more than the defaults
	// (DefaultCheckpointEvery, DefaultCheckpointInterval seconds) means the
	// defaults, which are what Verify with a public key allows.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Journal, when set, is the live-call journal as OpenJournal found it.
	// Before LogOpened, OpenWriter records each call it still holds that
	// has no record in the log yet (disposition unobserved), after a
	// LogUncleanStop event; once LogOpened is written it starts the
	// journal afresh for this run (Journal.Start).
	Journal *Journal
}

// logFile is the part of *os.File the Writer uses; tests substitute it to
// inject write and fsync failures.
type logFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

type openFunc func(name string, flag int, perm os.FileMode) (logFile, error)

func osOpen(name string, flag int, perm os.FileMode) (logFile, error) {
	return os.OpenFile(name, flag, perm)
}

// Writer appends records to a hash-chained JSON Lines log. Each record is one
// line written with a single write(2) and fsync'd before Append returns; each
// line carries the hash of the line before it (see docs/records.md for the
// exact format). A head file, <log>.head, names the last record written so
// that removing records from the end of the log is detected.
//
// A Writer is safe for concurrent use: appends are serialised. It assumes it
// is the only writer of its log; two processes appending to one log would
// fork the chain.
type Writer struct {
	mu   sync.Mutex
	path string
	opts WriterOptions
	open openFunc

	f           logFile // nil after a failed rotation until recovery
	size        int64   // bytes in the current file
	fileRecords int     // complete lines in the current file
	seq         uint64  // Seq of the last record written
	hash        string  // Hash of the last record written
	// lastSeq mirrors seq for LastSeq, which must not wait for an fsync.
	lastSeq atomic.Uint64
	// ended is the last record the previous run wrote (set by OpenWriter),
	// and unclean what OpenWriter recorded of an unclean stop (nil: none).
	ended   lastRecord
	unclean *UncleanStop

	// needRecover is set when the file's state is unknown (a partial write
	// that could not be undone, a failed rotation): the next Append re-reads
	// the file, seals any torn line and continues from what is on disk.
	needRecover bool
	closed      bool
	headErr     error

	// cpSeq is the seq of the last checkpoint (0: none known, as when the
	// log was opened and its last record was not a checkpoint); cpAt is
	// the time it was written, or the log opened.
	cpSeq uint64
	cpAt  time.Time
	// stopSign ends the checkpoint timer (nil when there is none).
	stopSign chan struct{}
}

// headState is the content of the head file.
type headState struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	File string `json:"file"`
}

// OpenWriter opens (or creates) the log at path and appends a LogOpened
// event. Parent directories are created 0700 and the file 0600.
//
// If the file ends with a torn line (a crash mid-write), OpenWriter ends it
// with a newline and appends a LogRecovered event that chains from the last
// complete record and names the torn line. If the head file records a later
// record than the log holds, records were removed and OpenWriter fails: the
// log must be verified before anything is appended to it.
func OpenWriter(path string, opts WriterOptions) (*Writer, error) {
	return openWriter(path, opts, osOpen)
}

func openWriter(path string, opts WriterOptions, open openFunc) (*Writer, error) {
	if path == "" {
		return nil, errors.New("open compliance log: no path configured")
	}
	realClock := opts.Now == nil
	if realClock {
		opts.Now = time.Now
	}
	if opts.RotateBytes < 0 {
		return nil, fmt.Errorf("open compliance log %s: negative rotation size %d", path, opts.RotateBytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open compliance log: %w", err)
	}
	w := &Writer{path: path, opts: opts, open: open}
	if opts.Signer != nil {
		if e := opts.CheckpointEvery; e <= 0 || e > DefaultCheckpointEvery {
			w.opts.CheckpointEvery = DefaultCheckpointEvery
		}
		if d := opts.CheckpointInterval; d <= 0 || d > DefaultCheckpointInterval*time.Second {
			w.opts.CheckpointInterval = DefaultCheckpointInterval * time.Second
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.recoverLocked(true); err != nil {
		w.closeFileLocked()
		return nil, err
	}
	if err := w.recordUncleanStopLocked(opts.Journal); err != nil {
		w.closeFileLocked()
		return nil, fmt.Errorf("open compliance log %s: %w", path, err)
	}
	// A start first signs the log as it found it (with the recovered
	// event and the records of an unclean stop, if any): what a previous
	// run left unsigned, by a crash or as its closed event, is then covered
	// before this run adds anything, and the unsigned tail never spans the
	// time parapet was down.
	if w.opts.Signer != nil && w.seq > w.cpSeq {
		if err := w.checkpointLocked(); err != nil {
			w.closeFileLocked()
			return nil, fmt.Errorf("open compliance log %s: %w", path, err)
		}
	}
	opened := w.logEvent(LogOpened, "", "")
	opened.Log.PolicyHash, opened.Log.Config = opts.PolicyHash, opts.Config
	if err := w.appendLocked(opened, true); err != nil {
		w.closeFileLocked()
		return nil, fmt.Errorf("open compliance log %s: %w", path, err)
	}
	if opts.Journal != nil {
		// Only now may the journal forget the previous run's calls: they
		// are in the log, and a crash before this point finds them there.
		if err := opts.Journal.Start(w.LastSeq); err != nil {
			w.closeFileLocked()
			return nil, fmt.Errorf("open compliance log %s: %w", path, err)
		}
	}
	w.cpAt = w.now()
	if opts.Signer != nil && realClock {
		w.stopSign = make(chan struct{})
		go w.signLoop(w.stopSign)
	}
	return w, nil
}

// signLoop writes the checkpoint that falls due with no append to trigger
// it, until stop is closed.
func (w *Writer) signLoop(stop <-chan struct{}) {
	t := time.NewTicker(max(w.opts.CheckpointInterval/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		if !w.closed && w.f != nil && !w.needRecover && w.checkpointDue() {
			// A failure is left to the next append or Close, as in Append.
			_ = w.checkpointLocked()
		}
		w.mu.Unlock()
	}
}

// checkpointLocked appends a signed checkpoint over the last record.
func (w *Writer) checkpointLocked() error {
	if err := w.appendLocked(w.logEvent(LogCheckpoint, checkpointDetail(w.opts.Signer, w.hash), ""), false); err != nil {
		return err
	}
	w.cpSeq, w.cpAt = w.seq, w.now()
	return nil
}

// signFirst reports whether a checkpoint must come before the record rec:
// CheckpointEvery records are unsigned already. Append signs as soon as
// that many are, so this is for the second record of one append (after the
// rotated record that starts a new file, or the record a recovery added)
// and for a record after a checkpoint that failed. A recovered event must
// directly follow the torn line it seals, and nothing is signed while the
// file is being recovered.
func (w *Writer) signFirst(rec *Record) bool {
	if w.opts.Signer == nil || w.needRecover || w.f == nil ||
		rec.Log != nil && (rec.Log.Event == LogCheckpoint || rec.Log.Event == LogRecovered) {
		return false
	}
	return w.seq-w.cpSeq >= uint64(w.opts.CheckpointEvery)
}

// checkpointDue reports whether a checkpoint should follow the last record.
func (w *Writer) checkpointDue() bool {
	return w.opts.Signer != nil && w.seq > w.cpSeq &&
		(w.seq-w.cpSeq >= uint64(w.opts.CheckpointEvery) || w.now().Sub(w.cpAt) >= w.opts.CheckpointInterval)
}

// Path returns the path of the live log file.
func (w *Writer) Path() string { return w.path }

// LastSeq returns the seq of the last record written. It does not wait for
// an append in progress.
func (w *Writer) LastSeq() uint64 { return w.lastSeq.Load() }

// UncleanStop returns what OpenWriter recorded of the previous run's
// unclean stop, or nil when that run stopped cleanly (or there was none).
func (w *Writer) UncleanStop() *UncleanStop {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unclean
}

// HeadErr returns the error of the last head file update, or nil once an
// update has succeeded. A stale head file weakens only the detection of
// records removed from the end of the log; Append does not fail for it.
func (w *Writer) HeadErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headErr
}

// Append writes r as the next record of the log. It fills V, Seq, Prev, Hash
// and, when zero, Time (and Type, when empty, from the payload that is set),
// and returns only once the line is fsync'd. Exactly one of Call, Conn and
// Log must be set.
//
// On error r is left unchanged and the writer stays usable, so the caller
// may retry. A failed write or fsync is undone by cutting the file back to
// its last complete record, so a retry does not write the record twice; if
// even that fails, the next Append first re-reads the file and seals what
// the failed write left, as OpenWriter does (a line that was written whole
// then stays in the log, and the retry writes the record a second time).
func (w *Writer) Append(r *Record) error {
	if r == nil {
		return errors.New("append compliance record: nil record")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.needRecover || w.f == nil {
		if err := w.recoverLocked(false); err != nil {
			return err
		}
	}
	if err := w.appendLocked(r, true); err != nil {
		return err
	}
	if w.checkpointDue() {
		// A failure is left to the next append: the record is durable
		// already and must not be reported as lost (it would be retried).
		_ = w.checkpointLocked()
	}
	return nil
}

// Close appends a LogClosed event, fsyncs and closes the file. With a
// Signer, a checkpoint immediately precedes LogClosed (Verify with a public
// key requires it), unless the last record already is one; when that
// checkpoint cannot be written, neither is LogClosed. It is idempotent:
// calls after the first return nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.stopSign != nil {
		close(w.stopSign)
	}
	var errs []error
	if w.needRecover || w.f == nil {
		if err := w.recoverLocked(false); err != nil {
			errs = append(errs, err)
		}
	}
	if w.f != nil {
		signed := true
		if !w.needRecover && w.opts.Signer != nil && w.seq > w.cpSeq {
			if err := w.checkpointLocked(); err != nil {
				// No closed without its checkpoint (Verify with the key
				// would take it for one removed): the log then ends as
				// a stop that was not clean, and the next start says so.
				signed = false
				errs = append(errs, err)
			}
		}
		if !w.needRecover && signed {
			if err := w.appendLocked(w.logEvent(LogClosed, "", ""), false); err != nil {
				errs = append(errs, err)
			}
		}
		if err := w.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close compliance log %s: %w", w.path, err))
		}
		w.f = nil
	}
	if w.headErr != nil {
		errs = append(errs, w.headErr)
	}
	return errors.Join(errs...)
}

func (w *Writer) now() time.Time { return w.opts.Now().UTC() }

func (w *Writer) logEvent(event LogEventKind, detail, prevFile string) *Record {
	return &Record{Type: TypeLog, Log: &LogEvent{Event: event, Detail: detail, PrevFile: prevFile, Version: w.opts.Version}}
}

func (w *Writer) closeFileLocked() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}

// checkRecord fills Type from the payload when empty and checks that exactly
// one payload is set and that it matches Type.
func checkRecord(r *Record) error {
	var have []string
	if r.Call != nil {
		have = append(have, TypeCall)
	}
	if r.Conn != nil {
		have = append(have, TypeConnection)
	}
	if r.Log != nil {
		have = append(have, TypeLog)
	}
	if len(have) != 1 {
		return fmt.Errorf("record must carry exactly one of call, conn and log (has %d)", len(have))
	}
	if r.Type == "" {
		r.Type = have[0]
	}
	if r.Type != have[0] {
		return fmt.Errorf("record of type %q carries a %s payload", r.Type, have[0])
	}
	return nil
}

// appendLocked encodes, writes and fsyncs one record, rotating first when
// allowRotate is set and the line would take the file past RotateBytes.
func (w *Writer) appendLocked(r *Record, allowRotate bool) error {
	rec := *r
	if err := checkRecord(&rec); err != nil {
		return fmt.Errorf("append compliance record: %w", err)
	}
	rec.V = SchemaVersion
	if rec.Time.IsZero() {
		rec.Time = w.now()
	}
	var line []byte
	var hash string
	encode := func() (err error) {
		rec.Seq, rec.Prev = w.seq+1, w.hash
		if line, hash, err = encodeLine(&rec); err != nil {
			return fmt.Errorf("append compliance record: %w", err)
		}
		return nil
	}
	if err := encode(); err != nil {
		return err
	}
	if allowRotate && w.opts.RotateBytes > 0 && w.fileRecords >= 2 && w.size+int64(len(line)) > w.opts.RotateBytes {
		if err := w.rotateLocked(); err != nil {
			return err
		}
		if err := encode(); err != nil {
			return err
		}
	}
	if w.signFirst(&rec) {
		// A failure leaves the record to be written all the same: a
		// record is never refused for want of a signature. But a
		// checkpoint that could not be cut back leaves the end of the
		// file unknown: the record is not written after it (it would
		// share a line with the torn bytes); the next Append recovers.
		if err := w.checkpointLocked(); err != nil && w.needRecover {
			return err
		}
		if err := encode(); err != nil {
			return err
		}
	}
	if err := w.writeLocked(line); err != nil {
		return err
	}
	w.seq, w.hash = rec.Seq, hash
	w.lastSeq.Store(w.seq)
	w.fileRecords++
	r.V, r.Type, r.Seq, r.Time, r.Prev, r.Hash = rec.V, rec.Type, rec.Seq, rec.Time, rec.Prev, hash
	w.writeHeadLocked(filepath.Base(w.path))
	return nil
}

// writeLocked writes line with one write and fsyncs it. On failure it cuts
// the file back to its previous size so that the log is as it was; if even
// that fails, the writer recovers from the file on the next Append.
func (w *Writer) writeLocked(line []byte) error {
	if w.f == nil {
		w.needRecover = true
		return fmt.Errorf("write compliance log %s: no open file", w.path)
	}
	n, err := w.f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("write compliance log %s: %w", w.path, err)
		if n > 0 {
			err = w.undoLocked(err)
		}
		return err
	}
	if err := w.f.Sync(); err != nil {
		// Whether the line reached the disk is unknown: remove it, so that
		// a retry does not write the record twice.
		return w.undoLocked(fmt.Errorf("fsync compliance log %s: %w", w.path, err))
	}
	w.size += int64(len(line))
	return nil
}

// undoLocked truncates the file back to the last complete record after a
// failed write.
func (w *Writer) undoLocked(cause error) error {
	if err := w.f.Truncate(w.size); err != nil {
		w.needRecover = true
		return fmt.Errorf("%w; removing the partial line failed too: %w", cause, err)
	}
	if err := w.f.Sync(); err != nil {
		w.needRecover = true
	}
	return cause
}

// writeHeadLocked records the last record in <log>.head via a temporary file
// and a rename. It is not fsync'd: a crash can leave the head behind the
// log, never ahead of it.
func (w *Writer) writeHeadLocked(file string) {
	b, err := json.Marshal(headState{Seq: w.seq, Hash: w.hash, File: file})
	if err == nil {
		tmp := headPath(w.path) + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o600); err == nil {
			err = os.Rename(tmp, headPath(w.path))
		}
	}
	if err != nil {
		w.headErr = fmt.Errorf("update compliance log head %s: %w", headPath(w.path), err)
		return
	}
	w.headErr = nil
}

// rotateLocked moves the current file aside and starts a new one whose first
// record is a LogRotated event continuing the chain. Rotation is not
// shutdown: no LogClosed is written.
func (w *Writer) rotateLocked() error {
	_ = w.f.Close() // everything in it was fsync'd already
	w.f = nil
	dst, err := w.rotatedName()
	if err == nil {
		err = os.Rename(w.path, dst)
	}
	if err != nil {
		// The file is still in place: recovery reopens it.
		w.needRecover = true
		return fmt.Errorf("rotate compliance log %s: %w", w.path, err)
	}
	dir := filepath.Dir(w.path)
	_ = syncDir(dir) // best effort: the next fsync of the new file follows
	w.writeHeadLocked(filepath.Base(dst))
	f, err := w.open(w.path, os.O_APPEND|os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		// Recovery finds no live file and continues from dst.
		w.needRecover = true
		return fmt.Errorf("rotate compliance log: create %s: %w", w.path, err)
	}
	_ = syncDir(dir)
	w.f, w.size, w.fileRecords = f, 0, 0
	if err := w.appendLocked(w.logEvent(LogRotated, "continues "+filepath.Base(dst), filepath.Base(dst)), false); err != nil {
		w.needRecover = true
		return fmt.Errorf("rotate compliance log: %w", err)
	}
	return nil
}

// rotatedName picks <log>.<UTC time>, adding .1, .2, ... when taken.
func (w *Writer) rotatedName() (string, error) {
	base := w.path + "." + w.now().Format(rotatedTimeLayout)
	name := base
	for n := 1; n < 100000; n++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", err
		}
		name = base + "." + strconv.Itoa(n)
	}
	return "", fmt.Errorf("no free rotated file name for %s", base)
}

// recoverLocked (re)establishes the writer's state from the files on disk:
// it opens the live file for appending, seals a torn final line, and
// continues the chain from the last complete record (or, when the live file
// holds none, from the newest rotated file). When opening, it also checks
// the head file and fails if records were removed from the end.
func (w *Writer) recoverLocked(opening bool) error {
	w.closeFileLocked()
	st, err := scanLog(w.path)
	if err != nil {
		return fmt.Errorf("open compliance log: %w", err)
	}
	seq, hash, last := st.lastSeq, st.lastHash, st.last
	var continues string // rotated file continued when the live file has no record
	if !st.hasRecord {
		sib, sst, err := newestRotated(w.path)
		if err != nil {
			return fmt.Errorf("open compliance log: %w", err)
		}
		if sib != "" {
			seq, hash, last, continues = sst.lastSeq, sst.lastHash, sst.last, filepath.Base(sib)
		}
	}
	if opening {
		w.ended = last
	}
	if opening {
		head, err := readHead(headPath(w.path))
		if err != nil {
			return fmt.Errorf("open compliance log %s: %w; run parapet verify", w.path, err)
		}
		if head != nil && head.Seq > seq {
			return fmt.Errorf("open compliance log %s: compliance log ends at seq %d but its head file records seq %d: records were removed; run parapet verify",
				w.path, seq, head.Seq)
		}
		if head != nil && head.Seq == seq && head.Hash != hash {
			return fmt.Errorf("open compliance log %s: the last record (seq %d) has hash %s but the head file records %s: the record was replaced; run parapet verify",
				w.path, seq, hash, head.Hash)
		}
	}
	f, err := w.open(w.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open compliance log: %w", err)
	}
	if !st.exists {
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			_ = f.Close()
			return fmt.Errorf("open compliance log %s: %w", w.path, err)
		}
	}
	w.f, w.size, w.fileRecords, w.seq, w.hash = f, st.size, st.lines, seq, hash
	if last.Kind == string(LogCheckpoint) {
		w.cpSeq = seq
	}
	w.lastSeq.Store(seq)
	w.needRecover = true // until the repairs below are done

	torn := st.unsealed
	if st.torn != nil {
		if torn != nil {
			return fmt.Errorf("open compliance log %s: lines %d and %d are both torn; run parapet verify", w.path, torn.n, st.lines+1)
		}
		torn = &rawLine{b: st.torn, n: st.lines + 1}
		if err := w.writeLocked([]byte{'\n'}); err != nil {
			return fmt.Errorf("open compliance log %s: seal torn line %d: %w", w.path, torn.n, err)
		}
		w.fileRecords++
	}
	switch {
	case torn != nil:
		// The chain skips the torn line: LogRecovered chains from the last
		// complete record and names the torn line and its bytes.
		ev := w.logEvent(LogRecovered, recoveredDetail(torn.b, torn.n), continues)
		if err := w.appendLocked(ev, false); err != nil {
			return fmt.Errorf("open compliance log %s: %w", w.path, err)
		}
	case continues != "":
		// A rotation was interrupted before the new file's first record.
		ev := w.logEvent(LogRotated, "continues "+continues+" (rotation completed on recovery)", continues)
		if err := w.appendLocked(ev, false); err != nil {
			return fmt.Errorf("open compliance log %s: %w", w.path, err)
		}
	}
	w.needRecover = false
	return nil
}

// logScan is what OpenWriter needs to know of an existing log file.
type logScan struct {
	exists    bool
	size      int64
	lines     int // complete ('\n'-terminated) lines
	hasRecord bool
	lastSeq   uint64
	lastHash  string
	// last is the last intact record: its seq, kind and time.
	last lastRecord
	// torn holds the bytes after the last newline (a crash mid-write).
	torn []byte
	// unsealed is a last complete line that is torn and not yet followed by
	// its LogRecovered event (a crash between sealing and announcing).
	unsealed *rawLine
}

// scanLog reads a log file and finds its last complete record. A missing
// file is an empty log.
func scanLog(path string) (*logScan, error) {
	st := &logScan{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st.exists = true
	var last, before *rawLine
	lr := newLineReader(f)
	for {
		l, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if l == nil {
			break
		}
		if l.tooLong {
			return nil, fmt.Errorf("%s: line %d is longer than %d bytes; run parapet verify", path, l.n, maxLineBytes)
		}
		if !l.term {
			st.torn = l.b
			st.size += int64(len(l.b))
			break
		}
		st.size += int64(len(l.b)) + 1
		st.lines = l.n
		before, last = last, l
	}
	if last == nil {
		return st, nil
	}
	if r, ok := intactRecord(last.b); ok {
		st.hasRecord, st.lastSeq, st.lastHash, st.last = true, r.Seq, r.Hash, lastOf(r)
		return st, nil
	}
	// The last complete line is not a record. The one case the writer can
	// leave behind is a torn line it sealed but could not announce yet.
	if !tornShape(last.b) {
		return nil, fmt.Errorf("%s: line %d is not a valid record; run parapet verify", path, last.n)
	}
	st.unsealed = last
	if before == nil {
		return st, nil
	}
	r, ok := intactRecord(before.b)
	if !ok {
		return nil, fmt.Errorf("%s: lines %d and %d are not valid records; run parapet verify", path, before.n, last.n)
	}
	st.hasRecord, st.lastSeq, st.lastHash, st.last = true, r.Seq, r.Hash, lastOf(r)
	return st, nil
}

var rotatedSuffixRE = regexp.MustCompile(`^\.([0-9]{8}T[0-9]{6}Z)(?:\.([0-9]{1,9}))?$`)

// rotatedFiles lists the files rotated away from the log at path, ordered
// by name (time, then counter).
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type rotated struct {
		name string
		ts   string
		n    int
	}
	var rs []rotated
	for _, e := range entries {
		name := e.Name()
		if len(name) <= len(base) || name[:len(base)] != base || !e.Type().IsRegular() {
			continue
		}
		m := rotatedSuffixRE.FindStringSubmatch(name[len(base):])
		if m == nil {
			continue
		}
		n := 0
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		rs = append(rs, rotated{name, m[1], n})
	}
	slices.SortFunc(rs, func(a, b rotated) int {
		return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.n, b.n))
	})
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = filepath.Join(dir, r.name)
	}
	return out, nil
}

// newestRotated returns the rotated file holding the highest seq (not
// trusting file names, which follow a clock that can step back), and its
// scan; "" when there is none.
func newestRotated(path string) (string, *logScan, error) {
	files, err := rotatedFiles(path)
	if err != nil {
		return "", nil, err
	}
	var best string
	var bestScan *logScan
	for _, name := range files {
		st, err := scanLog(name)
		if err != nil {
			return "", nil, err
		}
		if !st.hasRecord {
			continue
		}
		if bestScan == nil || st.lastSeq > bestScan.lastSeq {
			best, bestScan = name, st
		}
	}
	return best, bestScan, nil
}

// ChainFiles lists the files of the log at path in chain order, oldest
// first, for Verify: the rotated files still present, ordered by following
// each file's first record back to the file it continues, then the live
// file. Files whose links cannot be followed are ordered by name.
func ChainFiles(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, fmt.Errorf("list compliance log files: %w", err)
	}
	all := rotated
	if _, err := os.Stat(path); err == nil {
		all = append(all, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list compliance log files: %w", err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("list compliance log files: no log at %s", path)
	}
	// Walk back from the live (or newest) file along PrevFile links.
	byBase := make(map[string]string, len(all))
	for _, p := range all {
		byBase[filepath.Base(p)] = p
	}
	var chain []string
	seen := map[string]bool{}
	for cur := all[len(all)-1]; cur != "" && !seen[cur]; {
		seen[cur] = true
		chain = append(chain, cur)
		prev, err := firstPrevFile(cur)
		if err != nil {
			return nil, fmt.Errorf("list compliance log files: %w", err)
		}
		cur = byBase[prev]
	}
	slices.Reverse(chain)
	if len(chain) == len(all) {
		return chain, nil
	}
	// Some files are not linked (a missing file breaks the links): fall
	// back to name order, which Verify will check.
	return all, nil
}

// firstPrevFile returns the PrevFile of the first record of the file at path
// ("" when it continues no file).
func firstPrevFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	lr := newLineReader(f)
	for {
		l, err := lr.next()
		if err != nil || l == nil {
			return "", err
		}
		r, ok := intactRecord(l.b)
		if !ok {
			continue // a torn line sealed by the record after it
		}
		if r.Log != nil {
			return r.Log.PrevFile, nil
		}
		return "", nil
	}
}

func headPath(logPath string) string { return logPath + ".head" }

// headLost reports whether a head file's content is what a power loss can
// leave of a file renamed into place without fsync: nothing, or zeros. Such
// a head counts as absent (as a deleted head file does), not as corrupt.
func headLost(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// readHead reads a head file; a missing (or lost) one yields nil.
func readHead(path string) (*headState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read head file: %w", err)
	}
	if headLost(b) {
		return nil, nil
	}
	h, err := parseHead(b)
	if err != nil {
		return nil, fmt.Errorf("head file %s is corrupt: %w", path, err)
	}
	return h, nil
}

// syncDir fsyncs a directory so that a file created or renamed in it
// survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
