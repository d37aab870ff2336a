package compliance

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyReaderContinuation(t *testing.T) {
	path := writeLog(t, 5, WriterOptions{})
	lines := splitLines(readFile(t, path))
	head, tail := bytes.Join(lines[:3], nil), bytes.Join(lines[3:], nil)
	first := verifyBytes(t, head)
	if !first.OK() {
		t.Fatal(problemString(first.Problem))
	}
	res, err := VerifyReader("tail", bytes.NewReader(tail), first.LastHash, first.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.FirstSeq != first.LastSeq+1 || res.Records != len(lines)-3 || res.ContinuesFrom != "" {
		t.Fatalf("continuation: %s first %d records %d", problemString(res.Problem), res.FirstSeq, res.Records)
	}
	// The wrong predecessor is caught at line 1.
	res, _ = VerifyReader("tail", bytes.NewReader(tail), strings.Repeat("ab", 32), first.LastSeq)
	if res.Problem == nil || res.Problem.Kind != ProblemAltered || res.Problem.Line != 1 {
		t.Fatalf("wrong prev hash: %s", problemString(res.Problem))
	}
	res, _ = VerifyReader("tail", bytes.NewReader(tail), first.LastHash, first.LastSeq-1)
	if res.Problem == nil || res.Problem.Kind != ProblemMissing || res.Problem.Line != 1 {
		t.Fatalf("wrong prev seq: %s", problemString(res.Problem))
	}
	// Alone, the tail starts with a record that is not a rotation.
	res = verifyBytes(t, tail)
	if res.Problem == nil || res.Problem.Kind != ProblemChainStart || res.Problem.Line != 1 {
		t.Fatalf("tail alone: %s", problemString(res.Problem))
	}
}

func TestVerifyEmpty(t *testing.T) {
	res := verifyBytes(t, nil)
	if !res.OK() || res.Records != 0 || res.Truncated != nil {
		t.Fatalf("empty log: %s", problemString(res.Problem))
	}
	if _, err := Verify(nil, VerifyOptions{}); err == nil {
		t.Fatal("Verify with no files succeeded")
	}
	if _, err := Verify([]string{filepath.Join(t.TempDir(), "absent")}, VerifyOptions{}); err == nil {
		t.Fatal("Verify of a missing file succeeded")
	}
}

func TestVerifyMalformed(t *testing.T) {
	path := writeLog(t, 2, WriterOptions{})
	lines := splitLines(readFile(t, path))
	for name, tc := range map[string]struct {
		insert string
		kind   string
	}{
		"blank line":       {"\n", ProblemMalformed},
		"not json":         {"hello\n", ProblemMalformed},
		"crlf":             {strings.TrimSuffix(string(lines[1]), "\n") + "\r\n", ProblemMalformed},
		"json, no hash":    {`{"v":1,"seq":2}` + "\n", ProblemMalformed},
		"array":            {`["v",1,"hash":"` + strings.Repeat("0", 64) + `"}` + "\n", ProblemMalformed},
		"bare hash suffix": {`{,"hash":"` + strings.Repeat("0", 64) + `"}` + "\n", ProblemMalformed},
	} {
		mut := bytes.Join([][]byte{lines[0], []byte(tc.insert), bytes.Join(lines[1:], nil)}, nil)
		res := verifyBytes(t, mut)
		if res.Problem == nil || res.Problem.Kind != tc.kind || res.Problem.Line != 2 {
			t.Errorf("%s: problem %s, want %s at line 2", name, problemString(res.Problem), tc.kind)
		}
	}
	// A complete record with junk instead of its newline is no crash.
	last := lines[len(lines)-1]
	mut := append(bytes.Join(lines[:len(lines)-1], nil), last[:len(last)-1]...)
	mut = append(mut, ' ')
	if res := verifyBytes(t, mut); res.Problem == nil || res.Truncated != nil || res.Problem.Line != len(lines) {
		t.Errorf("junk after the last record: problem %s truncated %s", problemString(res.Problem), problemString(res.Truncated))
	}
}

func TestVerifyRecomputedHashStillChains(t *testing.T) {
	// An attacker who edits a record and recomputes its hash breaks the
	// link from the next line.
	path := writeLog(t, 3, WriterOptions{})
	lines := splitLines(readFile(t, path))
	r := sampleCall(NewPseudonymizer(testKey()), 0)
	res0 := verifyBytes(t, bytes.Join(lines[:1], nil))
	r.Seq, r.Prev, r.V, r.Time = 2, res0.LastHash, 1, t0
	r.Call.Disposition = DispositionRejected
	forged, _, err := encodeLine(r)
	if err != nil {
		t.Fatal(err)
	}
	mut := bytes.Join([][]byte{lines[0], forged, bytes.Join(lines[2:], nil)}, nil)
	res := verifyBytes(t, mut)
	if res.Problem == nil || res.Problem.Kind != ProblemAltered || res.Problem.Line != 3 || !strings.Contains(res.Problem.Message, "does not chain to line 2") {
		t.Fatalf("forged line 2: problem %s; want altered at line 3", problemString(res.Problem))
	}
}

func TestVerifyRejectsUnknownSchema(t *testing.T) {
	next := SchemaVersion + 1
	r := &Record{V: next, Seq: 1, Type: TypeLog, Time: t0, Log: &LogEvent{Event: LogOpened}}
	line, _, _ := encodeLine(r)
	res := verifyBytes(t, line)
	if res.Problem == nil || res.Problem.Kind != ProblemMalformed || !strings.Contains(res.Problem.Message, fmt.Sprintf("schema version %d", next)) {
		t.Fatalf("v%d record: %s", next, problemString(res.Problem))
	}
	for v := 1; v <= SchemaVersion; v++ {
		r := &Record{V: v, Seq: 1, Type: TypeLog, Time: t0, Log: &LogEvent{Event: LogOpened}}
		line, _, _ := encodeLine(r)
		if res := verifyBytes(t, line); res.Problem != nil {
			t.Errorf("v%d record: %s", v, problemString(res.Problem))
		}
	}
	r = &Record{V: 1, Seq: 1, Type: TypeCall, Time: t0, Log: &LogEvent{Event: LogOpened}}
	line, _, _ = encodeLine(r)
	if res := verifyBytes(t, line); res.Problem == nil || res.Problem.Kind != ProblemMalformed {
		t.Fatalf("type/payload mismatch: %s", problemString(res.Problem))
	}
}

func TestProblemString(t *testing.T) {
	p := &Problem{File: "c.jsonl", Line: 7, Kind: ProblemAltered, Message: "line 7 has been altered"}
	if got := p.String(); got != "c.jsonl:7: altered: line 7 has been altered" {
		t.Fatalf("String() = %q", got)
	}
}

func TestLineHashRule(t *testing.T) {
	// The documented byte rule, applied by hand.
	r := &Record{V: 1, Seq: 1, Type: TypeLog, Time: t0, Log: &LogEvent{Event: LogOpened, Version: "<v&1>"}}
	line, hash, err := encodeLine(r)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(line), "\n")
	if !strings.HasSuffix(s, `,"hash":"`+hash+`"}`) || strings.Contains(s, `\u003c`) {
		t.Fatalf("line %s", s)
	}
	blank := strings.TrimSuffix(s, hash+`"}`) + `"}`
	if sum := sha256Hex(blank); sum != hash {
		t.Fatalf("sha256 of %s = %s, line says %s", blank, sum, hash)
	}
}
