package compliance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// Problem kinds.
const (
	// ProblemAltered: a line's bytes do not match its hash, or it does not
	// chain to the record before it.
	ProblemAltered = "altered"
	// ProblemMissing: the sequence numbers jump forward (records removed).
	ProblemMissing = "missing"
	// ProblemReordered: a sequence number repeats or goes backwards.
	ProblemReordered = "reordered"
	// ProblemMalformed: a line is not a record of this format.
	ProblemMalformed = "malformed"
	// ProblemTruncated: an incomplete line with no newline. At the end of
	// the last file it is a crash, reported in VerifyResult.Truncated; in any
	// other file it is a Problem.
	ProblemTruncated = "truncated"
	// ProblemHead: the head file records a later or different last record
	// than the log holds (records removed from the end, or replaced).
	ProblemHead = "head"
	// ProblemChainStart: the first record walked points at a predecessor
	// that was not given, and is not the start of a rotated file.
	ProblemChainStart = "chain-start"
	// ProblemSignature: a checkpoint's signature does not verify with the
	// given public key: the log was rewritten by someone without the key.
	ProblemSignature = "signature"
	// ProblemUnsigned: with VerifyOptions.PublicKey, records that no
	// checkpoint covers, beyond what the writer leaves unsigned: more than
	// MaxUnsignedRecords records after the last checkpoint, or their time
	// stamps more than MaxUnsignedSpan apart, or a LogClosed event not
	// immediately preceded by a checkpoint. Checkpoints were removed and
	// the chain recomputed by someone without the key, or the log was
	// written without signing.
	ProblemUnsigned = "unsigned"
)

// Problem locates what Verify found.
type Problem struct {
	File string
	// Line is the 1-based line number in File.
	Line int
	// Kind is one of the Problem* constants.
	Kind    string
	Message string
}

// String formats p as "file:line: kind: message".
func (p *Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Message)
}

// VerifyResult is the outcome of walking a chain.
type VerifyResult struct {
	Files []string
	// Records counts the complete, valid records walked.
	Records    int
	Calls      int
	ConnEvents int
	LogEvents  int
	FirstSeq   uint64
	LastSeq    uint64
	LastHash   string
	// Problem is the first tampering problem found; nil when the chain is
	// intact. Verification stops there.
	Problem *Problem
	// Truncated reports a torn final line of the last file: a crash
	// mid-write, not tampering.
	Truncated *Problem
	// Recovered lists torn lines that a later LogRecovered event sealed
	// (informational).
	Recovered []Problem
	// HeadChecked is true when a head file was found and compared.
	HeadChecked bool
	// ContinuesFrom is set when the first file given starts with a rotation
	// record: it names the file the chain continues, which was not given.
	// The chain start is then accepted as is.
	ContinuesFrom string
	// Checkpoints counts the signed checkpoints verified with
	// VerifyOptions.PublicKey; SignedSeq is the seq of the last record a
	// checkpoint covers (0: none) and SignedTime its time stamp. Records
	// after it are covered by the hash chain only.
	Checkpoints int
	SignedSeq   uint64
	SignedTime  time.Time
	// UnsignedRecords counts, with VerifyOptions.PublicKey, the records
	// after the last checkpoint (all of them when there is none), and
	// UnsignedSpan is how far apart their time stamps are. They are set
	// when the whole chain was walked.
	UnsignedRecords int
	UnsignedSpan    time.Duration
}

// OK reports whether no tampering was found.
func (r *VerifyResult) OK() bool { return r.Problem == nil }

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Head checks the last file's head file (<file>.head) when present.
	Head bool
	// PublicKey, when set, verifies every checkpoint's signature: one that
	// does not verify (or names another key) is a ProblemSignature. It
	// also requires every record to be covered by a checkpoint, except an
	// unsigned tail within MaxUnsignedRecords and MaxUnsignedSpan, and
	// every LogClosed event to follow a checkpoint immediately; otherwise
	// the result is a ProblemUnsigned.
	PublicKey ed25519.PublicKey
}

// Verify walks the chain through the files at paths, given oldest first,
// and reports the first problem. The error is for I/O failures only; what
// is wrong with the log is in the result.
func Verify(paths []string, opts VerifyOptions) (*VerifyResult, error) {
	if len(paths) == 0 {
		return nil, errors.New("verify compliance log: no files given")
	}
	res := &VerifyResult{Files: slices.Clone(paths)}
	v := &verifier{res: res, pub: opts.PublicKey}
	last := paths[len(paths)-1]
	var head *headState
	var headErr error
	if opts.Head {
		b, err := os.ReadFile(headPath(last))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("verify compliance log: %w", err)
		case headLost(b):
		default:
			head, headErr = parseHead(b)
			if head != nil {
				v.headSeq = head.Seq
			}
		}
	}
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("verify compliance log: %w", err)
		}
		err = v.walk(p, f, i == len(paths)-1)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("verify compliance log: %w", err)
		}
		if res.Problem != nil {
			return res, nil
		}
	}
	switch {
	case headErr != nil:
		res.HeadChecked = true
		res.Problem = &Problem{File: headPath(last), Line: 1, Kind: ProblemHead,
			Message: fmt.Sprintf("head file is corrupt: %v", headErr)}
	case head != nil:
		v.checkHead(last, head)
	}
	if res.Problem == nil && v.pub != nil {
		v.checkTail()
	}
	return res, nil
}

// VerifyReader walks one file read from r, named name in problems. A
// non-empty prevHash (or non-zero prevSeq) says the file continues a chain
// whose last record had that hash and seq; otherwise the file's first record
// must start a log or a rotated file. The input is treated as the last file
// of its chain.
func VerifyReader(name string, r io.Reader, prevHash string, prevSeq uint64) (*VerifyResult, error) {
	res := &VerifyResult{Files: []string{name}}
	v := &verifier{res: res, started: prevHash != "" || prevSeq != 0, prevHash: prevHash, prevSeq: prevSeq}
	if err := v.walk(name, r, true); err != nil {
		return nil, fmt.Errorf("verify compliance log: %w", err)
	}
	return res, nil
}

// verifier carries the chain state from line to line and file to file.
type verifier struct {
	res      *VerifyResult
	started  bool // a predecessor is known (walked or given)
	prevHash string
	prevSeq  uint64
	prevFile string // where the predecessor is ("" when given by the caller)
	prevLine int

	lastFileLines int // lines in the last file walked

	tornFile string // where the last torn line sealed by a recovery record is
	tornLine int

	pub ed25519.PublicKey // checks checkpoints when set

	// With pub: the records walked since the last valid checkpoint (the
	// unsigned run), where the run starts, and the earliest and latest
	// time stamps in it.
	run     int
	runFile string
	runLine int
	runSeq  uint64
	runMin  time.Time
	runMax  time.Time
	badTime *Problem // a time stamp in the run that cannot be read
	cpFile  string   // where the last valid checkpoint is
	cpLine  int
	// prevSigned: the record before is a valid checkpoint; prevTime is the
	// time stamp of the record before (zero: unreadable).
	prevSigned bool
	prevTime   time.Time

	headSeq  uint64 // seq the head file records (0: none)
	headHash string // hash of the walked record with seq headSeq
	headFile string
	headLine int
}

// walk verifies the lines of one file. It returns only I/O errors; problems
// go to v.res.
func (v *verifier) walk(name string, r io.Reader, last bool) error {
	lr := newLineReader(r)
	// The two lines after the current one are read ahead: a torn line is
	// explained by the recovery record after it, and that record's own
	// damage is told apart from the torn line's by the line after it.
	var ahead []*rawLine
	for {
		for len(ahead) < 3 {
			l, err := lr.next()
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if l == nil {
				break
			}
			ahead = append(ahead, l)
		}
		if len(ahead) == 0 {
			return nil
		}
		at := func(i int) *rawLine {
			if i < len(ahead) {
				return ahead[i]
			}
			return nil
		}
		cur := ahead[0]
		v.lastFileLines = cur.n
		if p := v.line(name, cur, at(1), at(2), last); p != nil {
			v.res.Problem = p
			return nil
		}
		ahead = ahead[1:]
	}
}

// line judges one line, given the two lines after it (nil at the end of the
// file). It applies the rules in order: malformed, altered (hash), seq,
// chain.
func (v *verifier) line(name string, cur, nxt, nxt2 *rawLine, last bool) *Problem {
	prob := func(kind string, line int, format string, args ...any) *Problem {
		return &Problem{File: name, Line: line, Kind: kind, Message: fmt.Sprintf(format, args...)}
	}
	k := cur.n
	if cur.tooLong {
		return prob(ProblemMalformed, k, "line %d is longer than %d bytes", k, maxLineBytes)
	}
	if !cur.term {
		switch {
		case tornShape(cur.b) && last:
			v.res.Truncated = prob(ProblemTruncated, k,
				"line %d is an incomplete record of %d bytes with no newline: the writer stopped mid-write (a crash or power loss); this is not tampering, and parapet seals the line when it next opens the log",
				k, len(cur.b))
			return nil
		case tornShape(cur.b):
			return prob(ProblemTruncated, k, "line %d is an incomplete record with no newline, but %s is not the last file of the chain", k, name)
		default:
			return prob(ProblemMalformed, k, "line %d has no newline and is not a record", k)
		}
	}

	// A torn line sealed by the LogRecovered event right after it is
	// skipped; that event carries its length and checksum.
	if sealedBy(cur, nxt) {
		n, _, sum, _ := recoveryNamed(nxt.b)
		got := sha256.Sum256(cur.b)
		if n != len(cur.b) || hex.EncodeToString(got[:]) != sum {
			if !intact(nxt.b) {
				return prob(ProblemAltered, nxt.n, "line %d has been altered: its content does not match its hash (it records the recovery of torn line %d)", nxt.n, k)
			}
			return prob(ProblemAltered, k,
				"line %d was sealed as a torn line by line %d, but its %d bytes no longer match the length (%d) and checksum recorded there",
				k, nxt.n, len(cur.b), n)
		}
		v.tornFile, v.tornLine = name, k
		v.res.Recovered = append(v.res.Recovered, *prob(ProblemTruncated, k,
			"line %d is a torn line of %d bytes left by an interrupted write; line %d records its recovery", k, n, nxt.n))
		return nil
	}

	// (1) malformed.
	stored, computed, hasSuffix := lineHash(cur.b)
	var rec envelope
	jsonErr := json.Unmarshal(cur.b, &rec)
	if !hasSuffix || jsonErr != nil {
		if nxt != nil && tornShape(cur.b) && damagedRecord(nxt.b) && !sealedBy(nxt, nxt2) {
			// An incomplete line followed by a damaged record (that is not
			// itself a sealed torn line): most likely the damaged record
			// was the LogRecovered event sealing it.
			return prob(ProblemAltered, nxt.n,
				"line %d has been altered: its content does not match its hash (line %d before it is an incomplete record that line %d may have been written to seal)",
				nxt.n, k, nxt.n)
		}
		if nxt == nil && last && tornShape(cur.b) {
			return prob(ProblemMalformed, k,
				"line %d is not a record: it looks like an incomplete record ended with a newline; if parapet crashed while recovering the log, opening the log again records the recovery", k)
		}
		if !hasSuffix {
			return prob(ProblemMalformed, k, "line %d is not a record: it does not end with its hash field", k)
		}
		return prob(ProblemMalformed, k, "line %d is not a record: %v", k, jsonErr)
	}
	if rec.Hash != stored {
		return prob(ProblemMalformed, k, "line %d is not a record: its hash field is out of place", k)
	}
	// (2) altered.
	if computed != stored {
		return prob(ProblemAltered, k, "line %d has been altered: its content does not match its hash", k)
	}
	if rec.V < 1 || rec.V > SchemaVersion {
		return prob(ProblemMalformed, k, "line %d has schema version %d; this verifier reads versions 1 to %d", k, rec.V, SchemaVersion)
	}
	if err := rec.checkShape(); err != nil {
		return prob(ProblemMalformed, k, "line %d: %v", k, err)
	}

	if !v.started {
		// The first record walked.
		switch {
		case rec.Prev == "" && rec.Seq != 1:
			return prob(ProblemChainStart, k, "line %d starts a new chain (no prev) at seq %d, but a new log starts at seq 1", k, rec.Seq)
		case rec.Prev == "":
		case rec.Log != nil && rec.Log.PrevFile != "" && (rec.Log.Event == LogRotated || rec.Log.Event == LogRecovered):
			v.res.ContinuesFrom = rec.Log.PrevFile
		default:
			return prob(ProblemChainStart, k,
				"line %d (seq %d) is the first record walked but chains to an earlier record that was not given, and it does not start a rotated file: records before it were removed, or files are missing or out of order",
				k, rec.Seq)
		}
	} else {
		// (3) seq.
		if want := v.prevSeq + 1; rec.Seq != want {
			if rec.Seq > want {
				if ns, ok := peekSeq(nxt); ok && ns > v.prevSeq && ns < rec.Seq {
					return prob(ProblemReordered, k, "line %d (seq %d) is out of order: seq %d follows it at line %d", k, rec.Seq, ns, nxt.n)
				}
				return prob(ProblemMissing, k, "%d record(s) missing before line %d: seq jumps from %d (%s) to %d",
					rec.Seq-want, k, v.prevSeq, v.prevWhere(name), rec.Seq)
			}
			return prob(ProblemReordered, k, "line %d has seq %d, which does not follow seq %d (%s)", k, rec.Seq, v.prevSeq, v.prevWhere(name))
		}
		// (4) chain.
		if rec.Prev != v.prevHash {
			return prob(ProblemAltered, k, "line %d does not chain to %s: its prev is not that record's hash", k, v.prevWhere(name))
		}
	}

	// A recovery record must follow the torn line it names, so that
	// removing a torn line cannot pass unnoticed.
	if rec.Log != nil && rec.Log.Event == LogRecovered {
		if _, line, _, ok := parseRecoveredDetail(rec.Log.Detail); !ok || line != k-1 || v.tornFile != name || v.tornLine != k-1 {
			return prob(ProblemAltered, k, "line %d records the recovery of a torn line that is not the line before it: a line was removed or altered", k)
		}
	}

	if v.pub != nil {
		if p := v.signed(name, k, &rec); p != nil {
			return p
		}
	}
	v.started = true
	v.prevHash, v.prevSeq, v.prevFile, v.prevLine = rec.Hash, rec.Seq, name, k
	res := v.res
	res.Records++
	switch rec.Type {
	case TypeCall:
		res.Calls++
	case TypeConnection:
		res.ConnEvents++
	case TypeLog:
		res.LogEvents++
	}
	if res.Records == 1 {
		res.FirstSeq = rec.Seq
	}
	res.LastSeq, res.LastHash = rec.Seq, rec.Hash
	if v.headSeq != 0 && rec.Seq == v.headSeq {
		v.headHash, v.headFile, v.headLine = rec.Hash, name, k
	}
	return nil
}

// signed applies the signature rules to the record rec at line k of name:
// a checkpoint must verify and covers everything before it; closed must
// follow a checkpoint immediately; any other record (and closed) joins the
// unsigned run, which checkTail judges at the end.
func (v *verifier) signed(name string, k int, rec *envelope) *Problem {
	t, terr := recordTime(rec.Time)
	checkpoint := rec.Log != nil && rec.Log.Event == LogCheckpoint
	switch {
	case checkpoint:
		if err := checkCheckpoint(v.pub, rec.Log.Detail, rec.Prev); err != nil {
			return &Problem{File: name, Line: k, Kind: ProblemSignature,
				Message: fmt.Sprintf("line %d is a checkpoint that does not prove the log: %v", k, err)}
		}
		v.res.Checkpoints++
		v.res.SignedSeq, v.res.SignedTime = rec.Seq-1, v.prevTime
		v.run, v.badTime = 0, nil
		v.cpFile, v.cpLine = name, k
	case rec.Log != nil && rec.Log.Event == LogClosed && !v.prevSigned && rec.V >= 2:
		// Writers of version 1 records signed before closed only when a
		// record had come since the last checkpoint.
		return &Problem{File: name, Line: k, Kind: ProblemUnsigned,
			Message: fmt.Sprintf("line %d is a %q event not immediately preceded by a checkpoint: parapet signs everything before %q with a checkpoint just before it, so that checkpoint was removed and the chain recomputed by someone without the key, or the log was written without signing",
				k, LogClosed, LogClosed)}
	}
	if !checkpoint {
		v.run++
		if v.run == 1 {
			v.runFile, v.runLine, v.runSeq = name, k, rec.Seq
			v.runMin, v.runMax = time.Time{}, time.Time{}
		}
		switch {
		case terr != nil && v.badTime == nil:
			v.badTime = &Problem{File: name, Line: k, Kind: ProblemUnsigned,
				Message: fmt.Sprintf("line %d follows the last checkpoint unsigned and its time stamp cannot be read (%v), so how long the writer left it unsigned cannot be told", k, terr)}
		case terr != nil:
		default:
			if v.runMin.IsZero() || t.Before(v.runMin) {
				v.runMin = t
			}
			if t.After(v.runMax) {
				v.runMax = t
			}
		}
	}
	v.prevSigned, v.prevTime = checkpoint, t
	return nil
}

// checkTail judges the unsigned run left at the end of the chain: the
// writer signs at least every MaxUnsignedRecords records and within
// MaxUnsignedSpan (see there), so a longer run is records no signature
// covers that the writer would have signed.
func (v *verifier) checkTail() {
	res := v.res
	res.UnsignedRecords = v.run
	if !v.runMin.IsZero() {
		res.UnsignedSpan = v.runMax.Sub(v.runMin)
	}
	if v.run == 0 {
		return
	}
	var what string
	switch v.cpFile {
	case "":
		what = fmt.Sprintf("no checkpoint signed with this key covers the %d %s from line %d to the end (seq %d..%d)",
			v.run, plural(v.run, "record"), v.runLine, v.runSeq, res.LastSeq)
	default:
		at := fmt.Sprintf("line %d", v.cpLine)
		if v.cpFile != v.runFile {
			at += " of " + v.cpFile
		}
		what = fmt.Sprintf("no checkpoint covers the %d %s after the last one (%s), from line %d to the end (seq %d..%d)",
			v.run, plural(v.run, "record"), at, v.runLine, v.runSeq, res.LastSeq)
	}
	const why = "checkpoints were removed and the chain recomputed by someone without the key, or the log was written without signing"
	var msg string
	switch {
	case v.badTime != nil:
		res.Problem = v.badTime
		return
	case v.run > MaxUnsignedRecords:
		msg = fmt.Sprintf("%s, but parapet signs at least every %d records: %s", what, MaxUnsignedRecords, why)
	case res.UnsignedSpan > MaxUnsignedSpan:
		msg = fmt.Sprintf("%s, whose time stamps span %v, but parapet signs what it writes within %v: %s",
			what, res.UnsignedSpan.Round(time.Millisecond), MaxUnsignedSpan, why)
	default:
		return
	}
	res.Problem = &Problem{File: v.runFile, Line: v.runLine, Kind: ProblemUnsigned, Message: msg}
}

// recordTime reads a record's time stamp.
func recordTime(raw json.RawMessage) (time.Time, error) {
	var t time.Time
	if len(raw) == 0 {
		return t, errors.New("no time")
	}
	if err := t.UnmarshalJSON(raw); err != nil {
		return time.Time{}, err
	}
	if t.IsZero() {
		return t, errors.New("no time")
	}
	return t, nil
}

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// prevWhere names the predecessor's position for messages.
func (v *verifier) prevWhere(name string) string {
	switch v.prevFile {
	case "":
		return "the record given as its predecessor"
	case name:
		return fmt.Sprintf("line %d", v.prevLine)
	}
	return fmt.Sprintf("line %d of %s", v.prevLine, v.prevFile)
}

// checkHead compares the walked chain with the head file.
func (v *verifier) checkHead(last string, h *headState) {
	res := v.res
	res.HeadChecked = true
	switch {
	case h.Seq > res.LastSeq && res.Truncated != nil:
		// A crash mid-write leaves the head file at the last complete
		// record; one that records more says the torn line, at least, had
		// been written whole: the log was cut, not interrupted.
		res.Problem = &Problem{File: res.Truncated.File, Line: res.Truncated.Line, Kind: ProblemHead,
			Message: fmt.Sprintf("the head file records seq %d but the log ends at seq %d and then line %d, cut short: %d record(s) cut from the end",
				h.Seq, res.LastSeq, res.Truncated.Line, h.Seq-res.LastSeq)}
		res.Truncated = nil
	case h.Seq > res.LastSeq:
		res.Problem = &Problem{File: last, Line: v.lastFileLines + 1, Kind: ProblemHead,
			Message: fmt.Sprintf("the head file records seq %d but the log ends at seq %d: %d record(s) removed from the end",
				h.Seq, res.LastSeq, h.Seq-res.LastSeq)}
	case v.headHash != "" && v.headHash != h.Hash:
		res.Problem = &Problem{File: v.headFile, Line: v.headLine, Kind: ProblemHead,
			Message: fmt.Sprintf("line %d (seq %d) is not the record the head file records: it was altered or replaced", v.headLine, h.Seq)}
	}
}

// parseHead decodes a head file.
func parseHead(b []byte) (*headState, error) {
	var h headState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, err
	}
	if _, err := hex.DecodeString(h.Hash); err != nil || len(h.Hash) != hashHexLen || h.Seq == 0 {
		return nil, errors.New("no valid seq and hash")
	}
	return &h, nil
}

// recoveryNamed reports whether b is a LogRecovered event and, if so, the
// torn line's length, number and checksum it records. b's own integrity is
// checked when b is walked.
func recoveryNamed(b []byte) (n, line int, sum string, ok bool) {
	if !bytes.Contains(b, []byte(`"`+LogRecovered+`"`)) {
		return 0, 0, "", false
	}
	var r envelope
	if err := json.Unmarshal(b, &r); err != nil || r.Type != TypeLog || r.Log == nil || r.Log.Event != LogRecovered {
		return 0, 0, "", false
	}
	return parseRecoveredDetail(r.Log.Detail)
}

// sealedBy reports whether next is a LogRecovered event naming l as the
// torn line it sealed.
func sealedBy(l, next *rawLine) bool {
	if l == nil || next == nil || !l.term || next.tooLong {
		return false
	}
	_, line, _, ok := recoveryNamed(next.b)
	return ok && line == l.n
}

// intact reports whether line matches its own hash.
func intact(line []byte) bool {
	stored, computed, ok := lineHash(line)
	return ok && stored == computed
}

// damagedRecord reports whether b starts like a record line but does not
// match its hash. (The start, not the hash field: the end of a line split in
// two by a stray newline has a hash field, but no record starts there.)
func damagedRecord(b []byte) bool {
	return bytes.HasPrefix(b, []byte(`{"v":`)) && !intact(b)
}

// peekSeq reads the seq of a line without judging it.
func peekSeq(l *rawLine) (uint64, bool) {
	if l == nil || l.tooLong {
		return 0, false
	}
	var s struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(l.b, &s); err != nil || s.Seq == nil {
		return 0, false
	}
	return *s.Seq, true
}
