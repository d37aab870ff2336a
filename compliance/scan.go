package compliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Reading a log for what it says, not for whether it is whole: ScanFile and
// Follow deliver each intact record and pass over the lines that are not,
// without checking the chain between records (Verify does that).

// ErrTornLine marks a line that is what a crash left of a record: the start
// of one, sealed with a newline when the writer restarted (or, at the end of
// a file, not ended yet).
var ErrTornLine = errors.New("torn line")

// ErrDamagedLine marks a line that is not an intact record: not a record at
// all, too long, or one whose bytes no longer match its own hash.
var ErrDamagedLine = errors.New("damaged line")

// ScanFile streams the records of one log file, in order, calling fn for each
// complete record (line is 1-based). Lines that are not intact records (a
// torn line sealed after a crash, a damaged line) are passed to bad (may be
// nil) and skipped; reading never holds more than one line. fn may keep the
// record; an error from fn stops the scan and is returned as it is.
//
// A record is intact when its line is a record whose stored hash matches the
// line's bytes; the links between records are not checked (see Verify).
func ScanFile(path string, fn func(line int, rec *Record) error, bad func(line int, err error)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("scan compliance log: %w", err)
	}
	defer f.Close()
	if err := ScanReader(f, fn, bad); err != nil {
		if errors.Is(err, errRead) {
			return fmt.Errorf("scan compliance log %s: %w", path, err)
		}
		return err
	}
	return nil
}

// ScanReader is ScanFile reading from r.
func ScanReader(r io.Reader, fn func(line int, rec *Record) error, bad func(line int, err error)) error {
	s := NewScanner(r)
	s.Bad = bad
	for s.Scan() {
		if err := fn(s.Line(), s.Record()); err != nil {
			return err
		}
	}
	return s.Err()
}

// errRead marks the errors of the underlying reader, which ScanFile wraps
// with the file's name.
var errRead = errors.New("read")

// Scanner reads the intact records of a log one line at a time, as
// bufio.Scanner reads lines; it is what ScanFile is made of, for a caller
// that also needs each record's line as stored (Raw), such as one that copies
// records out so that they still verify by their hash.
type Scanner struct {
	// Bad, when set, is called with each line that is not an intact
	// record, which Scan then skips. The error wraps ErrTornLine or
	// ErrDamagedLine.
	Bad func(line int, err error)

	lr  *lineReader
	l   rawLine // reused for every line
	rec *Record
	err error
}

// NewScanner returns a Scanner reading the log from r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{lr: newLineReader(r)}
}

// Scan advances to the next intact record. It returns false at the end of
// the input or on a read error (see Err).
func (s *Scanner) Scan() bool {
	s.rec = nil
	if s.err != nil {
		return false
	}
	for {
		s.l.b, s.l.n, s.l.term, s.l.tooLong = s.l.b[:0], 0, false, false
		err := s.lr.readInto(&s.l)
		switch {
		case errors.Is(err, io.EOF):
			if len(s.l.b) > 0 || s.l.tooLong {
				s.lr.n++
				s.l.n = s.lr.n
				s.bad(fmt.Errorf("%w: the file ends inside a record (a crash mid-write, or a record still being written)", ErrTornLine))
			}
			return false
		case err != nil:
			s.err = fmt.Errorf("%w: %w", errRead, err)
			return false
		}
		rec, err := lineRecord(&s.l)
		if err != nil {
			s.bad(err)
			continue
		}
		s.rec = rec
		return true
	}
}

func (s *Scanner) bad(err error) {
	if s.Bad != nil {
		s.Bad(s.l.n, err)
	}
}

// Record returns the record Scan found. The caller may keep it.
func (s *Scanner) Record() *Record { return s.rec }

// Line returns the 1-based line number of the record Scan found.
func (s *Scanner) Line() int { return s.l.n }

// Raw returns the record's line as stored, without its newline. The slice is
// valid only until the next call to Scan.
func (s *Scanner) Raw() []byte { return s.l.b }

// Err returns the error that ended Scan, or nil at the end of the input.
func (s *Scanner) Err() error { return s.err }

// lineRecord decodes a complete line into a record, or says why it is not
// an intact one.
func lineRecord(l *rawLine) (*Record, error) {
	if l.tooLong {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrDamagedLine, maxLineBytes)
	}
	return DecodeLine(l.b)
}

// DecodeLine decodes one log line (with or without its newline) into a
// record after checking that it is intact: a record whose stored hash is the
// hash of its bytes, carrying the payload its type names. Records of every
// schema version decode. The error wraps ErrTornLine or ErrDamagedLine.
func DecodeLine(line []byte) (*Record, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if len(line) > maxLineBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrDamagedLine, maxLineBytes)
	}
	stored, computed, ok := lineHash(line)
	if !ok {
		if tornShape(line) {
			return nil, fmt.Errorf("%w: the start of a record cut short by a crash", ErrTornLine)
		}
		return nil, fmt.Errorf("%w: not a record line (no hash at its end)", ErrDamagedLine)
	}
	if stored != computed {
		return nil, fmt.Errorf("%w: its bytes do not match its hash (edited or corrupted; run parapet verify)", ErrDamagedLine)
	}
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamagedLine, err)
	}
	if r.Hash != stored {
		return nil, fmt.Errorf("%w: its hash field is ambiguous", ErrDamagedLine)
	}
	if r.Type == "" {
		return nil, fmt.Errorf("%w: record has no type", ErrDamagedLine)
	}
	if err := checkRecord(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamagedLine, err)
	}
	return &r, nil
}
