package compliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

	var cur *tailFile
	defer func() { cur.close() }()
	for cur == nil {
		t, err := openTail(fl.Path)
		switch {
		case err == nil:
			cur = t
			if !fl.FromStart {
				if err := fl.read(ctx, cur, nil); err != nil {
					return err
				}
			}
		case errors.Is(err, fs.ErrNotExist):
			// Not created yet (or being rotated): everything will be new.
			if err := wait(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("follow compliance log: %w", err)
		}
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
	ok, err := fl.catchUp(ctx, cur, live, fn)
	if err != nil || !ok {
		live.close()
		return nil, err
	}
	fl.finish(cur)
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

// catchUp delivers, in full, the rotated files between cur (finished) and
// live, following the chain of PrevFile links: each file starts with a
// rotated event naming the file it continues. It returns false when live
// holds no record yet (its first record is being written), so the caller
// tries again at the next poll. When the link from live back to cur cannot
// be followed (cur was removed, or the log was replaced), live is taken as
// it is, from its start.
func (fl *Follower) catchUp(ctx context.Context, cur, live *tailFile, fn func([]byte, *Record) error) (bool, error) {
	first, err := firstRecordOf(live.f)
	if err != nil {
		return false, fmt.Errorf("follow compliance log %s: %w", live.name, err)
	}
	if first == nil {
		return false, nil
	}
	curName := renamedTo(fl.Path, cur.fi)
	seen := map[string]bool{}
	for curName != "" && !seen[curName] && prevFileOf(first) != curName {
		seen[curName] = true
		next, err := fl.continuing(curName)
		if err != nil {
			return false, err
		}
		if next == "" {
			break // the chain is broken: take live as it is
		}
		t, err := openTail(next)
		if err != nil {
			return false, fmt.Errorf("follow compliance log: %w", err)
		}
		err = fl.read(ctx, t, fn)
		fl.finish(t)
		t.close()
		if err != nil {
			return false, err
		}
		curName = filepath.Base(next)
	}
	return true, nil
}

// continuing returns the rotated file whose first record continues the file
// named prev (a base name), or "" when there is none.
func (fl *Follower) continuing(prev string) (string, error) {
	files, err := rotatedFiles(fl.Path)
	if err != nil {
		return "", fmt.Errorf("follow compliance log: %w", err)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue // removed meanwhile
		}
		rec, err := firstRecordOf(f)
		f.Close()
		if err == nil && rec != nil && prevFileOf(rec) == prev {
			return name, nil
		}
	}
	return "", nil
}

// renamedTo returns the base name the file fi now has among the log's
// rotated files, or "" when it is not one of them.
func renamedTo(path string, fi fs.FileInfo) string {
	files, err := rotatedFiles(path)
	if err != nil {
		return ""
	}
	for i := len(files) - 1; i >= 0; i-- {
		if st, err := os.Stat(files[i]); err == nil && os.SameFile(st, fi) {
			return filepath.Base(files[i])
		}
	}
	return ""
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
