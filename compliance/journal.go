package compliance

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// JournalFile is the name of the live-call journal in parapet's state
// directory.
const JournalFile = "live-calls.journal"

// DefaultJournalCompactBytes is the size from which the journal is
// rewritten with its live entries only (when they take less than half of it).
const DefaultJournalCompactBytes = 1 << 20

// DefaultJournalSyncDelay bounds how long an entry that is not waited for
// (Note, End) stays written but not fsync'd.
const DefaultJournalSyncDelay = 200 * time.Millisecond

// ErrJournalClosed is what an entry queued on a journal that is not running
// (not started yet, or closed) reports.
var ErrJournalClosed = errors.New("live-call journal is not running")

// Journal operations, the "op" of an entry.
const (
	journalBegin  = "begin"  // a call is live: its first snapshot
	journalUpdate = "update" // a later snapshot of a live call
	journalEnd    = "end"    // the call's final record is in the log
)

// journalVersion is the format version of journal entries ("v").
const journalVersion = 1

// JournalOptions configures OpenJournal.
type JournalOptions struct {
	// CompactBytes is the size from which the file is rewritten with the
	// live entries only, once they take less than half of it. 0 means
	// DefaultJournalCompactBytes.
	CompactBytes int64
	// SyncDelay is how long an entry not waited for may stay unsynced
	// (written, so a killed process loses none, but not yet fsync'd
	// against a power loss). 0 means DefaultJournalSyncDelay.
	SyncDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// journalEntry is one line of the journal file: compact JSON, then '\n'.
type journalEntry struct {
	V  int    `json:"v"`
	Op string `json:"op"`
	ID string `json:"id"`
	// Time is when the entry was queued: for begin and update, a moment
	// at which the call was known to be up.
	Time time.Time `json:"time"`
	// LogSeq is the seq of the last log record when the call was first
	// journaled: its final record, if written, comes after it.
	LogSeq uint64 `json:"log_seq"`
	// Call is the snapshot (begin and update).
	Call *Call `json:"call,omitempty"`
}

// LiveCall is a call that a journal still held live: what was known of it
// at its last entry.
type LiveCall struct {
	// Call is the latest snapshot: the call's record as it stood then,
	// with no disposition yet.
	Call *Call
	// Time is when the last entry was written.
	Time time.Time
	// LogSeq is the log's last seq when the call was first journaled.
	LogSeq uint64
}

// Journal keeps the calls that are up in a small file, so that a crash
// cannot make them vanish: at the next start, OpenWriter records every call
// the journal still holds (see WriterOptions.Journal and docs/records.md).
//
// Entries are written by one goroutine that takes whatever is queued and
// writes it with one write(2): from then on a killed process loses none of
// them. A batch holding an entry someone waits for (Commit) is fsync'd
// before the waiters hear of it, once for the whole batch (group commit);
// other entries (Note, End) are fsync'd with the next such batch or at the
// latest JournalOptions.SyncDelay later. When the file grows past
// JournalOptions.CompactBytes it is rewritten with the live entries only (a
// temporary file, fsync, rename, directory fsync). A failed write or fsync
// leaves the file suspect: the next batch, or a retry SyncDelay later,
// rewrites it whole from memory the same way.
//
// A Journal is safe for concurrent use. Like the log, it assumes one
// process uses it.
type Journal struct {
	path string
	opts JournalOptions

	// What the file held when opened: the previous run's live calls and
	// the entries that could not be read (a torn last line).
	prev []LiveCall
	torn int

	mu      sync.Mutex
	wake    *sync.Cond
	queue   []journalOp
	live    map[string]uint64 // calls with a live entry queued and no end: their LogSeq
	started bool
	closing bool
	syncDue bool // the sync timer fired
	done    chan struct{}
	logSeq  func() uint64

	// Owned by the commit goroutine (and by Start before it runs).
	f         *os.File
	size      int64
	lines     map[string][]byte // the last entry written for each live call
	liveBytes int64
	broken    bool // the file may not hold what was written: rewrite it
	dirty     bool // written since the last fsync
	timer     *time.Timer
	spare     []journalOp
	buf       bytes.Buffer

	failures atomic.Uint64
	syncs    atomic.Uint64
	lastErr  atomic.Pointer[error]
	// syncFile fsyncs the file after a batch is written; tests replace it.
	syncFile func(*os.File) error
}

type journalOp struct {
	op   string
	id   string
	at   time.Time
	seq  uint64
	call *Call
	done chan error // set for Commit: fsync before telling
}

// OpenJournal reads the journal at path, which the previous run left, and
// returns a Journal that reports those calls (Previous) but writes nothing
// until Start: the file keeps them until they are recorded in the log.
// A missing file is an empty journal.
func OpenJournal(path string, opts JournalOptions) (*Journal, error) {
	if path == "" {
		return nil, errors.New("open live-call journal: no path")
	}
	if opts.CompactBytes <= 0 {
		opts.CompactBytes = DefaultJournalCompactBytes
	}
	if opts.SyncDelay <= 0 {
		opts.SyncDelay = DefaultJournalSyncDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open live-call journal: %w", err)
	}
	// A rewrite interrupted before its rename: the file itself is whole.
	if err := os.Remove(path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open live-call journal: %w", err)
	}
	prev, torn, err := ReadJournal(path)
	if err != nil {
		return nil, fmt.Errorf("open live-call journal: %w", err)
	}
	j := &Journal{path: path, opts: opts, prev: prev, torn: torn, live: map[string]uint64{}, done: make(chan struct{}),
		syncFile: (*os.File).Sync}
	j.wake = sync.NewCond(&j.mu)
	return j, nil
}

// Previous returns the calls the file held live when it was opened, oldest
// first, and how many entries could not be read (a crash mid-write leaves
// at most the last one torn; those are ignored).
func (j *Journal) Previous() ([]LiveCall, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.prev), j.torn
}

// Start empties the file, forgetting the previous run's calls (OpenWriter
// calls it once they are in the log), and starts writing entries. logSeq,
// when set, returns the seq of the log's last record (Writer.LastSeq).
func (j *Journal) Start(logSeq func() uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.started || j.closing {
		return errors.New("live-call journal: already started or closed")
	}
	j.lines = map[string][]byte{}
	if err := j.rewrite(); err != nil {
		return err
	}
	j.timer = time.AfterFunc(time.Hour, j.syncTimer)
	j.timer.Stop()
	j.started, j.logSeq, j.prev, j.torn = true, logSeq, nil, 0
	go j.loop()
	return nil
}

// Commit queues an entry saying the call is up, as c shows it (the first
// for its ID is a begin entry, the others updates), to be fsync'd at once:
// the channel receives nil once it is on disk, or the error that kept it
// off. c must not be changed afterwards.
func (j *Journal) Commit(c *Call) <-chan error {
	done := make(chan error, 1)
	if err := j.queueLive(c, done); err != nil {
		done <- err
	}
	return done
}

// Note is Commit for an entry nobody waits for: it is written as soon as
// the journal's goroutine gets to it and fsync'd with the next Commit or
// within JournalOptions.SyncDelay.
func (j *Journal) Note(c *Call) { _ = j.queueLive(c, nil) }

func (j *Journal) queueLive(c *Call, done chan error) error {
	if c == nil || c.ID == "" {
		return errors.New("live-call journal: a call without ID")
	}
	at := j.opts.Now().UTC()
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.started || j.closing {
		return ErrJournalClosed
	}
	op := journalUpdate
	seq, known := j.live[c.ID]
	if !known {
		op = journalBegin
		if j.logSeq != nil {
			seq = j.logSeq()
		}
		j.live[c.ID] = seq
	}
	j.queue = append(j.queue, journalOp{op: op, id: c.ID, at: at, seq: seq, call: c, done: done})
	j.wake.Signal()
	return nil
}

// End queues an entry saying the call's final record is in the log: call it
// only once the log's Append returned. It is not waited for (as Note): if a
// crash loses it, the next start finds the record in the log. A call the
// journal does not hold live is ignored.
func (j *Journal) End(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	seq, known := j.live[id]
	if !known || !j.started || j.closing {
		return
	}
	delete(j.live, id)
	j.queue = append(j.queue, journalOp{op: journalEnd, id: id, at: j.opts.Now().UTC(), seq: seq})
	j.wake.Signal()
}

// Syncs counts the fsyncs of batches (compactions aside): with group
// commit, fewer than the entries written.
func (j *Journal) Syncs() uint64 { return j.syncs.Load() }

// Failures counts the batches that could not be written or fsync'd.
func (j *Journal) Failures() uint64 { return j.failures.Load() }

// Err returns the error of the last write or fsync, nil once one succeeded.
func (j *Journal) Err() error {
	if p := j.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close writes and fsyncs what is queued and closes the file. The calls it
// holds live stay in it, for the next start to record. It is idempotent.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closing {
		j.mu.Unlock()
		return nil
	}
	j.closing = true
	started := j.started
	j.wake.Signal()
	j.mu.Unlock()
	if !started {
		return nil
	}
	<-j.done
	j.timer.Stop()
	var err error
	if j.f != nil {
		err = j.f.Close()
		j.f = nil
	}
	return errors.Join(j.Err(), err)
}

// syncTimer runs when unsynced entries have waited SyncDelay.
func (j *Journal) syncTimer() {
	j.mu.Lock()
	j.syncDue = true
	j.wake.Signal()
	j.mu.Unlock()
}

// loop commits queued entries, one batch per write, until Close.
func (j *Journal) loop() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.queue) == 0 && !j.closing && !j.syncDue {
			j.wake.Wait()
		}
		batch := j.queue
		j.queue = j.spare[:0]
		closing, due := j.closing, j.syncDue
		j.syncDue = false
		j.mu.Unlock()
		j.commit(batch, due || closing)
		clear(batch)
		j.spare = batch
		if closing && len(batch) == 0 {
			return
		}
	}
}

// commit writes one batch, fsyncs it when someone waits for an entry of it
// (or forceSync), and tells the waiters.
func (j *Journal) commit(batch []journalOp, forceSync bool) {
	j.buf.Reset()
	enc := json.NewEncoder(&j.buf)
	enc.SetEscapeHTML(false)
	sync := forceSync
	for i := range batch {
		op := &batch[i]
		e := journalEntry{V: journalVersion, Op: op.op, ID: op.id, Time: op.at, LogSeq: op.seq, Call: op.call}
		start := j.buf.Len()
		if err := enc.Encode(&e); err != nil {
			// Cannot happen for a Call; the entry is left out.
			j.buf.Truncate(start)
			if op.done != nil {
				op.done <- fmt.Errorf("live-call journal: encode entry: %w", err)
				op.done = nil
			}
			continue
		}
		sync = sync || op.done != nil
		if op.op == journalEnd {
			j.liveBytes -= int64(len(j.lines[op.id]))
			delete(j.lines, op.id)
			continue
		}
		line := slices.Clone(j.buf.Bytes()[start:])
		j.liveBytes += int64(len(line) - len(j.lines[op.id]))
		j.lines[op.id] = line
	}
	var err error
	switch {
	case j.broken:
		err = j.rewrite()
	case j.buf.Len() > 0 || sync && j.dirty:
		err = j.write(j.buf.Bytes(), sync)
	}
	if err == nil && j.lastErr.Load() != nil && j.buf.Len() < probeBytes {
		// Recovering from a failure with little or nothing to write (an
		// empty journal rewrites fine on a full disk): the journal is
		// healthy again only once an entry's worth can be written.
		err = j.probe()
	}
	if err != nil {
		j.failures.Add(1)
		j.lastErr.Store(&err)
		// Retry on the sync timer, so that the error (which keeps
		// parapet unready) clears once the file can be written again,
		// not only when the next call's entry comes.
		j.timer.Reset(j.opts.SyncDelay)
	} else if j.buf.Len() > 0 || sync || j.lastErr.Load() != nil {
		j.lastErr.Store(nil)
	}
	for i := range batch {
		if d := batch[i].done; d != nil {
			d <- err
		}
	}
	if err == nil && j.size >= j.opts.CompactBytes && j.size >= 2*j.liveBytes {
		// Everything is written already: a failed compaction is retried
		// when the file next grows.
		_ = j.rewrite()
	}
}

// probeBytes is what a recovering journal must be able to write and fsync
// to count as healthy: about one entry.
const probeBytes = 4096

// probe writes probeBytes to a scratch file beside the journal, fsyncs and
// removes it.
func (j *Journal) probe() error {
	path := j.path + ".probe"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("live-call journal %s: probe: %w", j.path, err)
	}
	defer os.Remove(path)
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = j.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("live-call journal %s: probe: %w", j.path, err)
	}
	return nil
}

// write appends b to the file with one write, and fsyncs it (with whatever
// was written unsynced before) when sync is set; otherwise it has the sync
// timer fsync it within SyncDelay.
func (j *Journal) write(b []byte, sync bool) error {
	if len(b) > 0 {
		n, err := j.f.Write(b)
		if err == nil && n != len(b) {
			err = fmt.Errorf("short write (%d of %d bytes)", n, len(b))
		}
		if err != nil {
			// What reached the file is unknown: the next batch rewrites
			// the whole file from memory.
			j.broken = true
			return fmt.Errorf("write live-call journal %s: %w", j.path, err)
		}
		j.size += int64(n)
		if !j.dirty && !sync {
			j.timer.Reset(j.opts.SyncDelay)
		}
		j.dirty = true
	}
	if !sync {
		return nil
	}
	j.syncs.Add(1)
	if err := j.syncFile(j.f); err != nil {
		j.broken = true
		return fmt.Errorf("fsync live-call journal %s: %w", j.path, err)
	}
	j.dirty = false
	return nil
}

// rewrite replaces the file with the live entries only: written to a
// temporary file and fsync'd, renamed over the journal, the directory
// fsync'd. Until the rename the old file stands whole; once it is done, the
// journal appends to the new file.
func (j *Journal) rewrite() error {
	ids := make([]string, 0, len(j.lines))
	for id := range j.lines {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var all []byte
	for _, id := range ids {
		all = append(all, j.lines[id]...)
	}
	fail := func(err error) error {
		return fmt.Errorf("rewrite live-call journal %s: %w", j.path, err)
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Write(all); err != nil {
		f.Close()
		os.Remove(tmp)
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	// From here the old file is gone: whatever fails, the next batch
	// rewrites again rather than append to a file that may not last.
	j.broken = true
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return fail(err)
	}
	nf, err := os.OpenFile(j.path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fail(err)
	}
	j.f, j.size, j.broken, j.dirty = nf, int64(len(all)), false, false
	return nil
}

// ReadJournal returns the calls the journal file at path holds live, oldest
// first, and how many of its lines could not be read (and were ignored). It
// only reads: the file may be in use.
func ReadJournal(path string) ([]LiveCall, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	live := map[string]*LiveCall{}
	torn := 0
	lr := newLineReader(f)
	for {
		l, err := lr.next()
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", path, err)
		}
		if l == nil {
			break
		}
		var e journalEntry
		if !l.term || l.tooLong || json.Unmarshal(l.b, &e) != nil || e.V != journalVersion || e.ID == "" {
			// A line a crash tore (or that a power loss filled with
			// something else): it was never reported as written.
			torn++
			continue
		}
		switch e.Op {
		case journalBegin, journalUpdate:
			if e.Call == nil || e.Call.ID != e.ID {
				torn++
				continue
			}
			seq := e.LogSeq
			if prev := live[e.ID]; prev != nil {
				seq = min(seq, prev.LogSeq)
			}
			live[e.ID] = &LiveCall{Call: e.Call, Time: e.Time, LogSeq: seq}
		case journalEnd:
			delete(live, e.ID)
		default:
			torn++
		}
	}
	out := make([]LiveCall, 0, len(live))
	for _, lc := range live {
		out = append(out, *lc)
	}
	slices.SortFunc(out, func(a, b LiveCall) int {
		return cmp.Or(a.Call.Start.Compare(b.Call.Start), cmp.Compare(a.Call.ID, b.Call.ID))
	})
	return out, torn, nil
}

// lastRecord is what an unclean-stop event says of the previous run's last
// record.
type lastRecord struct {
	Seq  uint64
	Kind string // the record's type, or its event for a log record
	Time time.Time
}

// lastOf describes the intact record r.
func lastOf(r *envelope) lastRecord {
	l := lastRecord{Seq: r.Seq, Kind: r.Type}
	if r.Log != nil {
		l.Kind = string(r.Log.Event)
	}
	if t, err := recordTime(r.Time); err == nil {
		l.Time = t.UTC()
	}
	return l
}

// UncleanStop is what OpenWriter recorded after a run that did not stop
// cleanly.
type UncleanStop struct {
	// Detail is the LogUncleanStop event's detail.
	Detail string
	// Live counts the calls the journal held live; Unobserved those of
	// them recorded now (the others' records were in the log already).
	Live, Unobserved int
}

// recordUncleanStopLocked writes, when the previous run did not stop
// cleanly, a LogUncleanStop event and then a record, disposition
// unobserved, for every call the journal j (nil: none) still holds that
// has no record in the log. A run did not stop cleanly when its last record
// is not LogClosed, or when its journal holds a call whose record never
// reached the log.
//
// It is safe against a crash at any point: the journal is emptied only
// after LogOpened, and a call whose record is already in the log (written
// before the crash, or by an interrupted recovery) is not recorded again.
func (w *Writer) recordUncleanStopLocked(j *Journal) error {
	var live []LiveCall
	torn := 0
	if j != nil {
		live, torn = j.Previous()
	}
	var missing []LiveCall
	if len(live) > 0 {
		from := live[0].LogSeq
		for _, lc := range live {
			from = min(from, lc.LogSeq)
		}
		recorded, err := callsRecordedAfter(w.path, from)
		if err != nil {
			return fmt.Errorf("read the log for the journal's calls: %w", err)
		}
		for _, lc := range live {
			if !recorded[lc.Call.ID] {
				missing = append(missing, lc)
			}
		}
	}
	if (w.ended.Seq == 0 || w.ended.Kind == string(LogClosed)) && len(missing) == 0 {
		return nil
	}
	detail := uncleanDetail(w.ended, j != nil, len(live), len(missing), torn)
	if err := w.appendLocked(w.logEvent(LogUncleanStop, detail, ""), true); err != nil {
		return err
	}
	for _, lc := range missing {
		if err := w.appendLocked(&Record{Type: TypeCall, Call: unobservedCall(lc)}, true); err != nil {
			return err
		}
	}
	w.unclean = &UncleanStop{Detail: detail, Live: len(live), Unobserved: len(missing)}
	return nil
}

// uncleanDetail is the detail of a LogUncleanStop event (its form is in
// docs/records.md).
func uncleanDetail(last lastRecord, journal bool, live, unobserved, torn int) string {
	kind, at := "none", "none"
	if last.Seq > 0 {
		kind = last.Kind
		if !last.Time.IsZero() {
			at = last.Time.Format(time.RFC3339Nano)
		}
	}
	d := fmt.Sprintf("last_seq=%d last_kind=%s last_time=%s", last.Seq, kind, at)
	if journal {
		d += fmt.Sprintf(" live=%d unobserved=%d recorded=%d torn=%d", live, unobserved, live-unobserved, torn)
	}
	return d
}

// End reasons of unobserved calls.
const (
	unobservedAnswered = "parapet stopped uncleanly while the call was up: its end was not observed"
	unobservedSetup    = "parapet stopped uncleanly while the call was being set up: its outcome was not observed"
)

// unobservedCall is the record of a call the journal held live: its last
// snapshot, ended when it was taken.
func unobservedCall(lc LiveCall) *Call {
	c := *lc.Call
	c.Disposition = DispositionUnobserved
	if c.End.IsZero() {
		c.End = lc.Time
	}
	c.End = c.End.UTC()
	if c.Answer != nil {
		c.SIPStatus, c.EndReason = 200, unobservedAnswered
	} else {
		// Whatever outcome a snapshot caught while the call was being
		// settled, whether its final response went out is not known.
		c.SIPStatus, c.EndReason = 0, unobservedSetup
	}
	return &c
}

// callsRecordedAfter returns the IDs of the calls that have a record with a
// seq above from in the log at path (its rotated files included, newest
// first, as far back as needed).
func callsRecordedAfter(path string, from uint64) (map[string]bool, error) {
	files, err := ChainFiles(path)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for i := len(files) - 1; i >= 0; i-- {
		first, err := callIDsAfter(files[i], from, ids)
		if err != nil {
			return nil, err
		}
		if first != 0 && first <= from+1 {
			break // older files hold older records only
		}
	}
	return ids, nil
}

// callIDsAfter adds to ids the call IDs of the records of the file at path
// with a seq above from, and returns the seq of its first record. A torn
// line that a crash left and recovery sealed is not in the chain: the
// recovered event after it takes its seq, and replaces it here.
func callIDsAfter(path string, from uint64, ids map[string]bool) (first uint64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bySeq := map[uint64]string{} // seq -> call ID ("" for other records)
	lr := newLineReader(f)
	for {
		l, err := lr.next()
		if err != nil {
			return first, fmt.Errorf("read %s: %w", path, err)
		}
		if l == nil {
			break
		}
		r, ok := intactRecord(l.b)
		if !ok {
			continue
		}
		if first == 0 {
			first = r.Seq
		}
		if r.Seq <= from {
			continue
		}
		var c struct {
			ID string `json:"id"`
		}
		if r.Type == TypeCall && json.Unmarshal(r.Call, &c) == nil {
			bySeq[r.Seq] = c.ID
		} else {
			bySeq[r.Seq] = ""
		}
	}
	for _, id := range bySeq {
		if id != "" {
			ids[id] = true
		}
	}
	return first, nil
}
