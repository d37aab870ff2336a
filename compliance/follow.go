package compliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultFollowInterval is how often Follow looks for new lines and for a
// rotation.
const DefaultFollowInterval = 200 * time.Millisecond

// Follow tails the live log at path: it starts at its end (or, with
// fromStart, at its beginning), calls fn for each complete record appended,
// in order, and follows rotation: when the Writer moves the file aside, the
// rest of the old file is read before the new one, from its start. A line is
// delivered only once its newline is written. Lines that are not intact
// records are skipped. A log that does not exist yet is waited for.
//
// Follow returns when ctx is done (with ctx.Err()), when fn returns an
// error (that error), or when reading fails.
func Follow(ctx context.Context, path string, fromStart bool, fn func(rec *Record) error) error {
	f := &Follower{Path: path, FromStart: fromStart}
	return f.Run(ctx, func(_ []byte, rec *Record) error { return fn(rec) })
}

// Follower is Follow with its options, for callers that want each record's
// line as stored, or the lines that are not intact records.
type Follower struct {
	// Path is the live log file.
	Path string
	// FromStart delivers the records already in the file first.
	FromStart bool
	// Interval is how often the file is polled; 0 means
	// DefaultFollowInterval.
	Interval time.Duration
	// Bad, when set, is called with each line that is not an intact record:
	// the file it was read from (the name it had when opened), its 1-based
	// line number, and why (wrapping ErrTornLine or ErrDamagedLine).
	Bad func(file string, line int, err error)
}

// tailFile is one file being followed.
type tailFile struct {
	f    *os.File
	fi   fs.FileInfo
	name string
	lr   *lineReader
	l    rawLine // the line being read; holds a partial line between polls
}

func openTail(name string) (*tailFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("follow compliance log: %w", err)
	}
	return &tailFile{f: f, fi: fi, name: name, lr: newLineReader(f)}, nil
}

func (t *tailFile) close() {
	if t != nil {
		t.f.Close()
	}
}

// Run follows the log, calling fn with each intact record and its line as
// stored (without the newline; valid only during the call). It returns as
// Follow does.
func (fl *Follower) Run(ctx context.Context, fn func(raw []byte, rec *Record) error) error {
	interval := fl.Interval
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			return nil
		}
	}

	cur, err := openTail(fl.Path)
	switch {
	case err == nil:
		if !fl.FromStart {
			err = fl.read(ctx, cur, nil)
		}
	case errors.Is(err, fs.ErrNotExist):
		// Not created yet (or between the two steps of a rotation):
		// whatever appears now is new, in the live file and in the files
		// it may already have rotated to, but not in those there now.
		cur, err = fl.await(ctx, wait, fn)
	default:
		err = fmt.Errorf("follow compliance log: %w", err)
	}
	defer func() { cur.close() }()
	if err != nil {
		return err
	}
	for {
		if err := fl.read(ctx, cur, fn); err != nil {
			return err
		}
		next, err := fl.successor(ctx, cur, fn)
		if err != nil {
			return err
		}
		if next != nil {
			cur.close()
			cur = next
			continue // read the new file at once
		}
		if err := wait(); err != nil {
			return err
		}
	}
}

// await waits for the live file to appear and delivers what was rotated
// away from it since Run started; it returns the live file at its start.
func (fl *Follower) await(ctx context.Context, wait func() error, fn func([]byte, *Record) error) (*tailFile, error) {
	old, err := rotatedFiles(fl.Path)
	if err != nil {
		return nil, fmt.Errorf("follow compliance log: %w", err)
	}
	var known []fs.FileInfo
	for _, name := range old {
		if fi, err := os.Stat(name); err == nil {
			known = append(known, fi)
		}
	}
	isKnown := func(fi fs.FileInfo) bool {
		return slices.ContainsFunc(known, func(k fs.FileInfo) bool { return os.SameFile(k, fi) })
	}
	for {
		if err := wait(); err != nil {
			return nil, err
		}
		live, err := openTail(fl.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("follow compliance log: %w", err)
		}
		ok, err := fl.catchUp(ctx, live, isKnown, false, fn)
		if ok && err == nil {
			return live, nil
		}
		live.close()
		if err != nil {
			return nil, err
		}
	}
}

// read delivers the complete lines of t from where it stands to the end of
// what is written, keeping a line without its newline yet for the next call.
// With fn nil it only moves past them.
func (fl *Follower) read(ctx context.Context, t *tailFile, fn func([]byte, *Record) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := t.lr.readInto(&t.l)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("follow compliance log %s: %w", t.name, err)
		}
		if fn != nil {
			rec, err := lineRecord(&t.l)
			if err != nil {
				fl.bad(t.name, t.l.n, err)
			} else if err := fn(t.l.b, rec); err != nil {
				return err
			}
		}
		t.l.b, t.l.term, t.l.tooLong = t.l.b[:0], false, false
	}
}

func (fl *Follower) bad(file string, line int, err error) {
	if fl.Bad != nil {
		fl.Bad(file, line, err)
	}
}

// successor looks at whether the live file is still cur. When the Writer
// has rotated it away, it finishes cur, delivers the files rotated since
// cur in full (several rotations can fall between two polls), and returns
// the new live file, opened at its start. It returns nil while there is
// nothing new to follow: no rotation, or one not finished yet (the new live
// file is not there, or holds no record yet).
func (fl *Follower) successor(ctx context.Context, cur *tailFile, fn func([]byte, *Record) error) (*tailFile, error) {
	fi, statErr := os.Stat(fl.Path)
	if statErr == nil && os.SameFile(fi, cur.fi) {
		return nil, nil
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("follow compliance log: %w", statErr)
	}
	// The Writer closes a file before moving it aside: what cur holds now
	// is all it will ever hold.
	if err := fl.read(ctx, cur, fn); err != nil {
		return nil, err
	}
	if statErr != nil {
		return nil, nil // the new live file is not created yet
	}
	live, err := openTail(fl.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow compliance log: %w", err)
	}
	fl.finish(cur)
	isCur := func(fi fs.FileInfo) bool { return os.SameFile(fi, cur.fi) }
	ok, err := fl.catchUp(ctx, live, isCur, true, fn)
	if err != nil || !ok {
		live.close()
		return nil, err
	}
	return live, nil
}

// finish reports what is left of a file that will not grow any more: a line
// without its newline.
func (fl *Follower) finish(t *tailFile) {
	if len(t.l.b) > 0 || t.l.tooLong {
		fl.bad(t.name, t.lr.n+1, fmt.Errorf("%w: the file ends inside a record", ErrTornLine))
		t.l.b, t.l.tooLong = t.l.b[:0], false
	}
}

// catchUp delivers, in full and oldest first, the files rotated away
// before live since the last file already read: it follows the chain back
// from live (each file starts with an event whose PrevFile names the file it
// continues) to the first file for which seen is true. It returns false when
// live holds no record yet (its first record is being written), so the
// caller tries again at the next poll.
//
// When the chain ends without a file already seen, its files are all
// delivered unless mustMeet is set: then the file last read was removed, or
// the log replaced, and live is taken on its own rather than deliver twice.
func (fl *Follower) catchUp(ctx context.Context, live *tailFile, seen func(fs.FileInfo) bool, mustMeet bool, fn func([]byte, *Record) error) (bool, error) {
	first, err := firstRecordOf(live.f)
	if err != nil {
		return false, fmt.Errorf("follow compliance log %s: %w", live.name, err)
	}
	if first == nil {
		return false, nil
	}
	dir := filepath.Dir(fl.Path)
	var chain []string // newest first
	met := false
	visited := map[string]bool{}
	for prev := prevFileOf(first); prev != "" && !visited[prev]; {
		visited[prev] = true
		name := filepath.Join(dir, filepath.Base(prev))
		f, err := os.Open(name)
		if err != nil {
			break // removed: the chain ends here
		}
		fi, err := f.Stat()
		if err == nil && seen(fi) {
			f.Close()
			met = true
			break
		}
		rec, err := firstRecordOf(f)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("follow compliance log %s: %w", name, err)
		}
		chain = append(chain, name)
		if rec == nil {
			break
		}
		prev = prevFileOf(rec)
	}
	if mustMeet && !met {
		return true, nil
	}
	for _, name := range slices.Backward(chain) {
		t, err := openTail(name)
		if err != nil {
			return false, fmt.Errorf("follow compliance log: %w", err)
		}
		err = fl.read(ctx, t, fn)
		fl.finish(t)
		t.close()
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

func prevFileOf(r *Record) string {
	if r.Log == nil {
		return ""
	}
	return r.Log.PrevFile
}

// firstRecordOf returns the first intact record of f, read from its start
// whatever f's offset, or nil when it holds none yet.
func firstRecordOf(f *os.File) (*Record, error) {
	lr := newLineReader(io.NewSectionReader(f, 0, 1<<62))
	var l rawLine
	for {
		l.b, l.tooLong, l.term = l.b[:0], false, false
		err := lr.readInto(&l)
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if rec, err := lineRecord(&l); err == nil {
			return rec, nil
		}
	}
}
