package compliance

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// The byte-level rules of a log line, shared by the Writer and the verifier.
//
// A line is the compact JSON encoding of a Record (encoding/json, HTML
// escaping off), then '\n'. Because Hash is the last field of Record, every
// line ends with
//
//	,"hash":"<64 lowercase hex digits>"}
//
// and the hash is the SHA-256 of the same line with those 64 digits removed
// (that is, with "hash":""), without the trailing newline.

const (
	// maxLineBytes bounds one line. The writer refuses larger records and
	// the verifier reports a longer line as malformed.
	maxLineBytes = 1 << 20

	hashHexLen = 2 * sha256.Size
	// hashSuffixLen is len(`,"hash":"`) + 64 + len(`"}`).
	hashSuffixLen = len(hashKeyPrefix) + hashHexLen + len(hashSuffixEnd)
)

const (
	hashKeyPrefix = `,"hash":"`
	hashSuffixEnd = `"}`
)

var emptyHashSuffix = []byte(`,"hash":""}`)

// encodeLine marshals r with Hash blanked, computes the hash and returns the
// complete line (with its '\n') and the hash. r.Hash is ignored.
func encodeLine(r *Record) (line []byte, hash string, err error) {
	rc := *r
	rc.Hash = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&rc); err != nil {
		return nil, "", fmt.Errorf("encode record: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	if !bytes.HasSuffix(b, emptyHashSuffix) {
		// Cannot happen while Hash is the last field of Record.
		return nil, "", errors.New("encode record: encoding does not end with the hash field")
	}
	if len(b)+hashHexLen+1 > maxLineBytes {
		return nil, "", fmt.Errorf("encode record: %d bytes exceeds the %d-byte line limit", len(b)+hashHexLen+1, maxLineBytes)
	}
	sum := sha256.Sum256(b)
	hash = hex.EncodeToString(sum[:])
	line = make([]byte, 0, len(b)+hashHexLen+1)
	line = append(line, b[:len(b)-len(hashSuffixEnd)]...) // ...,"hash":"
	line = append(line, hash...)
	line = append(line, hashSuffixEnd...)
	line = append(line, '\n')
	return line, hash, nil
}

// lineHash checks that line (without its '\n') ends with the hash suffix and
// returns the stored hash and the hash recomputed from the line's bytes.
func lineHash(line []byte) (stored, computed string, ok bool) {
	n := len(line)
	if n < hashSuffixLen+1 {
		return "", "", false
	}
	if string(line[n-hashSuffixLen:n-hashHexLen-len(hashSuffixEnd)]) != hashKeyPrefix ||
		string(line[n-len(hashSuffixEnd):]) != hashSuffixEnd {
		return "", "", false
	}
	hexPart := line[n-hashHexLen-len(hashSuffixEnd) : n-len(hashSuffixEnd)]
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	h := sha256.New()
	h.Write(line[:n-hashHexLen-len(hashSuffixEnd)])
	h.Write([]byte(hashSuffixEnd))
	return string(hexPart), hex.EncodeToString(h.Sum(nil)), true
}

// envelope is what the chain needs of a line: its place in the chain and
// its log event. The call and connection payloads are kept raw, so that
// verifying the chain depends on nothing but this file: a payload type that
// learns new values cannot make an old, intact line unreadable.
type envelope struct {
	V    int             `json:"v"`
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	Time json.RawMessage `json:"time"` // read only to judge unsigned records
	Call json.RawMessage `json:"call"`
	Conn json.RawMessage `json:"conn"`
	Log  *LogEvent       `json:"log"`
	Prev string          `json:"prev"`
	Hash string          `json:"hash"`
}

// checkShape checks that the payload present matches Type.
func (e *envelope) checkShape() error {
	present := func(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }
	var have []string
	if present(e.Call) {
		have = append(have, TypeCall)
	}
	if present(e.Conn) {
		have = append(have, TypeConnection)
	}
	if e.Log != nil {
		have = append(have, TypeLog)
	}
	switch {
	case e.Type != TypeCall && e.Type != TypeConnection && e.Type != TypeLog:
		return fmt.Errorf("unknown record type %q", e.Type)
	case len(have) != 1:
		return fmt.Errorf("record must carry exactly one of call, conn and log (has %d)", len(have))
	case have[0] != e.Type:
		return fmt.Errorf("record of type %q carries a %s payload", e.Type, have[0])
	case e.Type != TypeLog && (e.Call != nil && e.Call[0] != '{' || e.Conn != nil && e.Conn[0] != '{'):
		return fmt.Errorf("%s payload is not an object", e.Type)
	}
	return nil
}

// intactRecord parses line and reports whether it is a well-formed record
// whose stored hash matches its bytes.
func intactRecord(line []byte) (*envelope, bool) {
	stored, computed, ok := lineHash(line)
	if !ok || stored != computed {
		return nil, false
	}
	var r envelope
	if err := json.Unmarshal(line, &r); err != nil || r.Hash != stored || r.checkShape() != nil {
		return nil, false
	}
	return &r, true
}

// tornShape reports whether b could be what a crash left of one line: a
// proper prefix of a JSON object, or a complete record line that lost only
// its newline. Anything else (a complete object followed by more bytes, a
// syntax error) cannot come from an interrupted write.
func tornShape(b []byte) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	err := dec.Decode(&v)
	if err == nil {
		_, _, ok := lineHash(b)
		return ok && dec.InputOffset() == int64(len(b))
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// recoveredDetail is the Detail of a LogRecovered event. The verifier parses
// it back, so its format is part of the log format.
func recoveredDetail(tornBytes []byte, line int) string {
	sum := sha256.Sum256(tornBytes)
	return fmt.Sprintf("sealed %d torn bytes at line %d (sha256:%s)", len(tornBytes), line, hex.EncodeToString(sum[:]))
}

var recoveredDetailRE = regexp.MustCompile(`^sealed ([0-9]{1,9}) torn bytes at line ([0-9]{1,12}) \(sha256:([0-9a-f]{64})\)$`)

// parseRecoveredDetail is the inverse of recoveredDetail.
func parseRecoveredDetail(s string) (n, line int, sum string, ok bool) {
	m := recoveredDetailRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, "", false
	}
	n, err1 := strconv.Atoi(m[1])
	line, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return 0, 0, "", false
	}
	return n, line, m[3], true
}

// rawLine is one line of a log file as read, without its '\n'.
type rawLine struct {
	b    []byte
	n    int  // 1-based line number
	term bool // ended with '\n'
	// tooLong is set when the line exceeded maxLineBytes; b then holds only
	// its first maxLineBytes bytes.
	tooLong bool
}

// lineReader splits a log into lines without limiting the line length it
// can skip over, while keeping at most maxLineBytes of any line.
type lineReader struct {
	br *bufio.Reader
	n  int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, or nil at the end of the input.
func (lr *lineReader) next() (*rawLine, error) {
	var l rawLine
	err := lr.readInto(&l)
	switch {
	case err == nil:
		return &l, nil
	case errors.Is(err, io.EOF):
		if len(l.b) == 0 && !l.tooLong {
			return nil, nil
		}
		lr.n++
		l.n = lr.n
		return &l, nil
	default:
		return nil, err
	}
}

// readInto reads the rest of a line into l, appending to the bytes l already
// holds (a line whose start an earlier call read before the input ended), so
// that a caller can reuse one rawLine for every line and can wait for a line
// still being written. On a newline it numbers the line, strips the newline
// and returns nil. When the input ends first it returns io.EOF with the bytes
// read so far in l.b, and the line is neither numbered nor terminated.
func (lr *lineReader) readInto(l *rawLine) error {
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if room := maxLineBytes - len(l.b); len(chunk) > room {
			l.tooLong = true
			l.b = append(l.b, chunk[:max(room, 0)]...)
		} else {
			l.b = append(l.b, chunk...)
		}
		switch {
		case err == nil:
			lr.n++
			l.n, l.term = lr.n, true
			if !l.tooLong {
				l.b = l.b[:len(l.b)-1]
			}
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return err
		}
	}
}
