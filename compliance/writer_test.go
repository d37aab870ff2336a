package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	const n = 30
	path := writeLog(t, n, WriterOptions{})
	res, err := Verify([]string{path}, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Truncated != nil || len(res.Recovered) != 0 {
		t.Fatalf("verify: problem %s, truncated %s, recovered %v", problemString(res.Problem), problemString(res.Truncated), res.Recovered)
	}
	wantCalls, wantConns := 0, 0
	for i := range n {
		if i%3 == 2 {
			wantConns++
		} else {
			wantCalls++
		}
	}
	if res.Calls != wantCalls || res.ConnEvents != wantConns || res.LogEvents != 2 || res.Records != n+2 {
		t.Errorf("counts: calls %d conns %d logs %d records %d; want %d %d 2 %d", res.Calls, res.ConnEvents, res.LogEvents, res.Records, wantCalls, wantConns, n+2)
	}
	if res.FirstSeq != 1 || res.LastSeq != n+2 || !res.HeadChecked || res.ContinuesFrom != "" {
		t.Errorf("first %d last %d headChecked %v continues %q", res.FirstSeq, res.LastSeq, res.HeadChecked, res.ContinuesFrom)
	}

	data := readFile(t, path)
	lines := splitLines(data)
	if len(lines) != n+2 || !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatalf("%d lines, want %d", len(lines), n+2)
	}
	p := NewPseudonymizer(testKey())
	hashRE := regexp.MustCompile(`,"hash":"[0-9a-f]{64}"}\n$`)
	prev := ""
	for i, l := range lines {
		if !hashRE.Match(l) {
			t.Fatalf("line %d does not end with the hash field: %q", i+1, l[max(0, len(l)-80):])
		}
		var r Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if r.V != SchemaVersion || r.Seq != uint64(i+1) || r.Prev != prev {
			t.Errorf("line %d: v %d seq %d prev %q; want %d %d %q", i+1, r.V, r.Seq, r.Prev, SchemaVersion, i+1, prev)
		}
		prev = r.Hash
		// Re-encoding the parsed record gives the same bytes: the
		// encoding is deterministic and loses nothing.
		again, hash, err := encodeLine(&r)
		if err != nil || !bytes.Equal(again, l) || hash != r.Hash {
			t.Errorf("line %d does not re-encode to itself:\n got %s\nwant %s", i+1, again, l)
		}
		switch {
		case i == 0:
			if r.Log == nil || r.Log.Event != LogOpened || r.Log.Version != "v0.1.0-test" {
				t.Errorf("line 1 = %s, want the opened event", l)
			}
		case i == len(lines)-1:
			if r.Log == nil || r.Log.Event != LogClosed {
				t.Errorf("last line = %s, want the closed event", l)
			}
		default:
			want := sampleRecord(p, i-1)
			want.V, want.Seq, want.Time, want.Prev, want.Hash = r.V, r.Seq, r.Time, r.Prev, r.Hash
			wantLine, _, _ := encodeLine(want)
			if !bytes.Equal(wantLine, l) {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, l, wantLine)
			}
		}
	}

	// Nothing secret or identifying is written: no SDES keys, no SDP, no
	// private keys, no raw telephone numbers.
	text := string(data)
	for _, bad := range []string{"inline:", "a=crypto", "v=0", "m=audio", "PRIVATE KEY", "5550109999", "555) 010", "0100142"} {
		if strings.Contains(text, bad) {
			t.Errorf("log contains %q", bad)
		}
	}
	b64 := regexp.MustCompile(`[A-Za-z0-9+/]{30,}={0,2}`)
	for _, m := range b64.FindAllString(text, -1) {
		if strings.ContainsAny(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ+/=") {
			t.Errorf("log contains something like a base64 key: %q", m)
		}
	}
	if !strings.Contains(text, `"caller":"hmac-sha256:`) || !strings.Contains(text, `"pseudonymized":true`) {
		t.Error("caller is not pseudonymised")
	}
}

func TestAppendFillsRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	w, err := OpenWriter(path, WriterOptions{Now: newClock(time.Second).Now})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := &Record{Conn: sampleConn(0).Conn}
	if err := w.Append(r); err != nil {
		t.Fatal(err)
	}
	if r.V != SchemaVersion || r.Type != TypeConnection || r.Seq != 2 || r.Time.IsZero() || r.Prev == "" || len(r.Hash) != 64 {
		t.Errorf("record not filled: %+v", r)
	}
	set := t0.Add(-time.Hour)
	r2 := &Record{Type: TypeConnection, Conn: sampleConn(1).Conn, Time: set}
	if err := w.Append(r2); err != nil {
		t.Fatal(err)
	}
	if !r2.Time.Equal(set) || r2.Prev != r.Hash || r2.Seq != 3 {
		t.Errorf("second record: time %v prev %q seq %d", r2.Time, r2.Prev, r2.Seq)
	}
	if w.Path() != path {
		t.Errorf("Path() = %q", w.Path())
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	w, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	call := sampleCall(NewPseudonymizer(testKey()), 0).Call
	for name, r := range map[string]*Record{
		"nil":           nil,
		"no payload":    {Type: TypeCall},
		"two payloads":  {Call: call, Log: &LogEvent{Event: "x"}},
		"type mismatch": {Type: TypeConnection, Call: call},
	} {
		if err := w.Append(r); err == nil {
			t.Errorf("%s: Append succeeded", name)
		}
	}
	// The failures left the log intact and the writer usable.
	if err := w.Append(&Record{Call: call}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if res, _ := Verify([]string{path}, VerifyOptions{Head: true}); !res.OK() || res.Records != 3 {
		t.Fatalf("verify: %s, %d records", problemString(res.Problem), res.Records)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	w, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Append(sampleConn(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	lines := splitLines(readFile(t, path))
	if len(lines) != 2 || !bytes.Contains(lines[1], []byte(`"event":"closed"`)) {
		t.Fatalf("log = %q, want opened then one closed event", lines)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "c.jsonl")
	w, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + ".head": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestHeadFile(t *testing.T) {
	path := writeLog(t, 3, WriterOptions{})
	var h headState
	if err := json.Unmarshal(readFile(t, path+".head"), &h); err != nil {
		t.Fatal(err)
	}
	res, _ := Verify([]string{path}, VerifyOptions{})
	if h.Seq != res.LastSeq || h.Hash != res.LastHash || h.File != "compliance.jsonl" {
		t.Errorf("head = %+v; log ends at seq %d hash %s", h, res.LastSeq, res.LastHash)
	}
}

// lineOf returns the 1-based line holding byte offset off.
func lineOf(b []byte, off int) int { return 1 + bytes.Count(b[:off], []byte{'\n'}) }

// TestTamperMatrix changes every byte of a log, one at a time, three ways,
// and requires that each change is reported at the line it is in.
func TestTamperMatrix(t *testing.T) {
	path := writeLog(t, 4, WriterOptions{})
	orig := readFile(t, path)
	tamperMatrix(t, orig, nil)
}

// tamperMatrix applies the byte changes to orig. lenient, when non-nil,
// returns the lines also accepted for a change at a given byte offset.
func tamperMatrix(t *testing.T, orig []byte, lenient func(off int) []int) {
	t.Helper()
	base := verifyBytes(t, orig)
	if !base.OK() {
		t.Fatalf("original log does not verify: %s", problemString(base.Problem))
	}
	mut := bytes.Clone(orig)
	failures := 0
	stride := 1
	if testing.Short() {
		stride = 7
	}
	for off := 0; off < len(orig); off += stride {
		for _, change := range []func(byte) byte{
			func(c byte) byte { return c ^ 0x01 },
			func(c byte) byte { return c ^ 0x80 },
			func(c byte) byte {
				if c == '\n' {
					return ' '
				}
				return '\n'
			},
		} {
			mut[off] = change(orig[off])
			res := verifyBytes(t, mut)
			mut[off] = orig[off]
			want := lineOf(orig, off)
			ok := res.Problem != nil && res.Problem.Line == want
			if !ok && res.Problem != nil && lenient != nil {
				ok = slices.Contains(lenient(off), res.Problem.Line)
			}
			if !ok {
				failures++
				if failures <= 10 {
					t.Errorf("byte %d (line %d) %q -> %q: problem %s, truncated %s", off, want, orig[off], change(orig[off]),
						problemString(res.Problem), problemString(res.Truncated))
				}
			}
		}
	}
	if failures > 10 {
		t.Errorf("... %d failures in all", failures)
	}
}

func TestRemoveMiddleLine(t *testing.T) {
	path := writeLog(t, 6, WriterOptions{})
	lines := splitLines(readFile(t, path))
	for _, drop := range []int{1, 3, len(lines) - 2} { // 0-based
		mut := bytes.Join(slices.Delete(slices.Clone(lines), drop, drop+1), nil)
		res := verifyBytes(t, mut)
		if res.Problem == nil || res.Problem.Kind != ProblemMissing || res.Problem.Line != drop+1 {
			t.Errorf("removing line %d: problem %s; want missing at line %d", drop+1, problemString(res.Problem), drop+1)
		}
		if res.Problem != nil && !strings.Contains(res.Problem.Message, "1 record(s) missing") {
			t.Errorf("message %q does not count the missing record", res.Problem.Message)
		}
	}
	// Removing several.
	mut := bytes.Join(slices.Delete(slices.Clone(lines), 2, 5), nil)
	if res := verifyBytes(t, mut); res.Problem == nil || res.Problem.Kind != ProblemMissing || !strings.Contains(res.Problem.Message, "3 record(s)") {
		t.Errorf("removing 3 lines: %s", problemString(res.Problem))
	}
}

func TestRemoveFirstLine(t *testing.T) {
	path := writeLog(t, 3, WriterOptions{})
	lines := splitLines(readFile(t, path))
	res := verifyBytes(t, bytes.Join(lines[1:], nil))
	if res.Problem == nil || res.Problem.Kind != ProblemChainStart || res.Problem.Line != 1 {
		t.Fatalf("problem %s; want chain-start at line 1", problemString(res.Problem))
	}
}

func TestRemoveLastLineCaughtByHead(t *testing.T) {
	path := writeLog(t, 4, WriterOptions{})
	lines := splitLines(readFile(t, path))
	writeFile(t, path, bytes.Join(lines[:len(lines)-1], nil))
	// Without the head the shorter log is a valid chain...
	res, err := Verify([]string{path}, VerifyOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("without head: %v %s", err, problemString(res.Problem))
	}
	// ...the head file tells.
	res, err = Verify([]string{path}, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Problem == nil || res.Problem.Kind != ProblemHead || res.Problem.Line != len(lines) || !strings.Contains(res.Problem.Message, "1 record(s) removed from the end") {
		t.Fatalf("problem %s; want head at line %d", problemString(res.Problem), len(lines))
	}
	// And the writer refuses to continue such a log.
	if _, err := OpenWriter(path, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "records were removed") {
		t.Fatalf("OpenWriter = %v, want records-removed error", err)
	}
}

func TestHeadMismatch(t *testing.T) {
	path := writeLog(t, 2, WriterOptions{})
	var h headState
	json.Unmarshal(readFile(t, path+".head"), &h)
	h.Hash = strings.Repeat("0", 64)
	b, _ := json.Marshal(h)
	writeFile(t, path+".head", b)
	res, err := Verify([]string{path}, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Problem == nil || res.Problem.Kind != ProblemHead {
		t.Fatalf("problem %s; want head", problemString(res.Problem))
	}
	if _, err := OpenWriter(path, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "head file records") {
		t.Fatalf("OpenWriter = %v, want a head mismatch error", err)
	}
	writeFile(t, path+".head", []byte("{not json"))
	if res, _ := Verify([]string{path}, VerifyOptions{Head: true}); res.Problem == nil || res.Problem.Kind != ProblemHead {
		t.Fatalf("corrupt head: problem %s", problemString(res.Problem))
	}
	if _, err := OpenWriter(path, WriterOptions{}); err == nil {
		t.Fatal("OpenWriter accepted a corrupt head file")
	}
}

func TestHeadLostInCrash(t *testing.T) {
	// A power loss can leave the head file (renamed, not fsync'd) empty or
	// zero-filled: that counts as no head file, not as a corrupt one.
	for _, content := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x00"} {
		path := writeLog(t, 2, WriterOptions{})
		writeFile(t, path+".head", []byte(content))
		res, err := Verify([]string{path}, VerifyOptions{Head: true})
		if err != nil || !res.OK() || res.HeadChecked {
			t.Fatalf("%q: %v %s headChecked %v", content, err, problemString(res.Problem), res.HeadChecked)
		}
		w, err := OpenWriter(path, WriterOptions{})
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		w.Close()
		if res, _ := Verify([]string{path}, VerifyOptions{Head: true}); !res.OK() || !res.HeadChecked {
			t.Fatalf("%q: after reopening: %s", content, problemString(res.Problem))
		}
	}
}

func TestSwapLines(t *testing.T) {
	path := writeLog(t, 6, WriterOptions{})
	lines := splitLines(readFile(t, path))
	for _, pair := range [][2]int{{2, 3}, {1, 4}, {5, 6}} {
		mut := slices.Clone(lines)
		mut[pair[0]], mut[pair[1]] = mut[pair[1]], mut[pair[0]]
		res := verifyBytes(t, bytes.Join(mut, nil))
		if res.Problem == nil || res.Problem.Kind != ProblemReordered || res.Problem.Line != pair[0]+1 {
			t.Errorf("swap lines %d and %d: problem %s; want reordered at line %d", pair[0]+1, pair[1]+1, problemString(res.Problem), pair[0]+1)
		}
	}
	// A duplicated line repeats a seq.
	mut := slices.Insert(slices.Clone(lines), 3, lines[2])
	if res := verifyBytes(t, bytes.Join(mut, nil)); res.Problem == nil || res.Problem.Kind != ProblemReordered || res.Problem.Line != 4 {
		t.Errorf("duplicated line: problem %s; want reordered at line 4", problemString(res.Problem))
	}
}

func TestTruncatedLastLine(t *testing.T) {
	path := writeLog(t, 3, WriterOptions{})
	data := readFile(t, path)
	lines := splitLines(data)
	last := lines[len(lines)-1]
	for _, keep := range []int{1, 10, len(last) / 2, len(last) - 2, len(last) - 1} {
		mut := append(bytes.Join(lines[:len(lines)-1], nil), last[:keep]...)
		res := verifyBytes(t, mut)
		if res.Problem != nil || res.Truncated == nil || res.Truncated.Line != len(lines) || res.Truncated.Kind != ProblemTruncated {
			t.Errorf("keeping %d bytes: problem %s, truncated %s", keep, problemString(res.Problem), problemString(res.Truncated))
		}
		if res.Records != len(lines)-1 {
			t.Errorf("keeping %d bytes: %d records, want %d", keep, res.Records, len(lines)-1)
		}
	}
	// The head file knew the record had been written completely: with it,
	// the cut is tampering, reported at the cut line and only as that.
	writeFile(t, path, append(bytes.Join(lines[:len(lines)-1], nil), last[:20]...))
	res, err := Verify([]string{path}, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Problem == nil || res.Problem.Kind != ProblemHead || res.Problem.Line != len(lines) || res.Truncated != nil {
		t.Fatalf("with head: problem %s truncated %s", problemString(res.Problem), problemString(res.Truncated))
	}
	// Two records cut: the last whole, the one before it torn.
	prev := lines[len(lines)-2]
	writeFile(t, path, append(bytes.Join(lines[:len(lines)-2], nil), prev[:20]...))
	if res, _ = Verify([]string{path}, VerifyOptions{Head: true}); res.Problem == nil || res.Problem.Kind != ProblemHead ||
		res.Problem.Line != len(lines)-1 || res.Truncated != nil || !strings.Contains(res.Problem.Message, "2 record(s) cut") {
		t.Fatalf("two cut, with head: problem %s truncated %s", problemString(res.Problem), problemString(res.Truncated))
	}
}

// crashLog writes n records and abandons the writer without Close, as a
// crash would; it returns the path and the writer's last record.
func crashLog(t *testing.T, n int) (string, *Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Now: newClock(time.Second).Now})
	if err != nil {
		t.Fatal(err)
	}
	var last *Record
	for i := range n {
		last = sampleRecord(NewPseudonymizer(testKey()), i)
		if err := w.Append(last); err != nil {
			t.Fatal(err)
		}
	}
	w.closeFileLocked()
	return path, last
}

func TestReopenTornLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		torn func(next []byte) []byte // what the crash left of the next line
	}{
		{"mid-line", func(next []byte) []byte { return next[:len(next)/3] }},
		{"one byte", func(next []byte) []byte { return next[:1] }},
		{"all but newline", func(next []byte) []byte { return next[:len(next)-1] }},
		{"sealed, not announced", func(next []byte) []byte { return next[: len(next)/2 : len(next)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, last := crashLog(t, 3)
			before := len(splitLines(readFile(t, path)))
			next := &Record{V: 1, Seq: last.Seq + 1, Type: TypeConnection, Time: t0, Conn: sampleConn(9).Conn, Prev: last.Hash}
			line, _, err := encodeLine(next)
			if err != nil {
				t.Fatal(err)
			}
			torn := tc.torn(line)
			appendix := torn
			if tc.name == "sealed, not announced" {
				appendix = append(appendix, '\n')
			}
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(appendix)
			f.Close()

			// Before recovery the torn line is reported as a crash.
			res, err := Verify([]string{path}, VerifyOptions{Head: true})
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "sealed, not announced" && (res.Problem != nil || res.Truncated == nil || res.Truncated.Line != before+1) {
				t.Fatalf("before recovery: problem %s truncated %s", problemString(res.Problem), problemString(res.Truncated))
			}

			w, err := OpenWriter(path, WriterOptions{Version: "v2"})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append(sampleConn(4)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res, err = Verify([]string{path}, VerifyOptions{Head: true})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() || res.Truncated != nil || len(res.Recovered) != 1 || res.Recovered[0].Line != before+1 {
				t.Fatalf("after recovery: problem %s truncated %s recovered %v", problemString(res.Problem), problemString(res.Truncated), res.Recovered)
			}
			lines := splitLines(readFile(t, path))
			if !bytes.Equal(lines[before], append(slices.Clip(torn), '\n')) {
				t.Errorf("torn line = %q, want %q sealed", lines[before], torn)
			}
			var rec Record
			json.Unmarshal(lines[before+1], &rec)
			wantDetail := fmt.Sprintf("sealed %d torn bytes at line %d (sha256:", len(torn), before+1)
			if rec.Log == nil || rec.Log.Event != LogRecovered || !strings.HasPrefix(rec.Log.Detail, wantDetail) ||
				rec.Seq != last.Seq+1 || rec.Prev != last.Hash {
				t.Errorf("line after the torn one = %s; want a recovered event chaining from seq %d", lines[before+1], last.Seq)
			}
			// Removing the torn line is caught at the recovery record.
			cut := bytes.Join(slices.Delete(slices.Clone(lines), before, before+1), nil)
			if res := verifyBytes(t, cut); res.Problem == nil || res.Problem.Line != before+1 || res.Problem.Kind != ProblemAltered {
				t.Errorf("torn line removed: problem %s", problemString(res.Problem))
			}
			// The torn bytes are protected too: change one and it is caught.
			data := readFile(t, path)
			off := len(bytes.Join(lines[:before], nil))
			data[off] ^= 0x01
			if res := verifyBytes(t, data); res.Problem == nil || res.Problem.Line != before+1 || res.Problem.Kind != ProblemAltered {
				t.Errorf("altered torn line: problem %s", problemString(res.Problem))
			}
		})
	}
}

// TestTamperMatrixRecovered runs the byte matrix over a log holding a
// sealed torn line. A change to the first bytes of the recovery record can
// leave nothing to show that the record was there, so the torn line before
// it is reported instead; everywhere else the line must be exact.
func TestTamperMatrixRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	path, last := crashLog(t, 2)
	line, _, _ := encodeLine(&Record{V: 1, Seq: last.Seq + 1, Type: TypeLog, Time: t0, Log: &LogEvent{Event: LogOpened}, Prev: last.Hash})
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(line[:40])
	f.Close()
	w, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	orig := readFile(t, path)
	lines := splitLines(orig)
	rec := slices.IndexFunc(lines, func(l []byte) bool { return bytes.Contains(l, []byte(`"event":"recovered"`)) })
	if rec < 1 || !bytes.Equal(lines[rec-1], append(line[:40:40], '\n')) {
		t.Fatalf("no sealed torn line before the recovered event")
	}
	start := len(bytes.Join(lines[:rec], nil)) // offset of the recovered line
	tamperMatrix(t, orig, func(off int) []int {
		if off >= start && off < start+len(`{"v":`) {
			return []int{rec} // 1-based line of the torn line
		}
		return nil
	})
}

func TestOpenRefusesGarbageTail(t *testing.T) {
	path := writeLog(t, 2, WriterOptions{})
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("this is not a record\n")
	f.Close()
	if _, err := OpenWriter(path, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "not a valid record") {
		t.Fatalf("OpenWriter = %v", err)
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	// A stuck clock: every rotated name collides and gets a counter,
	// past .10 so that numeric ordering matters.
	stuck := func() time.Time { return t0 }
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 6000, Now: stuck, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	p := NewPseudonymizer(testKey())
	for i := range n {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("%d files, want at least 12", len(files))
	}
	if files[len(files)-1] != path || files[0] != path+".20260314T092653Z" || files[11] != path+".20260314T092653Z.11" {
		t.Fatalf("files out of order: %v", files)
	}
	byName, _ := rotatedFiles(path)
	if !slices.Equal(append(byName, path), files) {
		t.Errorf("chain order %v differs from name order %v", files, byName)
	}

	var seqs []uint64
	for i, f := range files {
		data := readFile(t, f)
		if i < len(files)-1 && int64(len(data)) > 6000 {
			// A file exceeds the limit only when it holds just its first
			// record and one more.
			if c := len(splitLines(data)); c > 2 {
				t.Errorf("%s: %d bytes in %d lines exceeds RotateBytes", f, len(data), c)
			}
		}
		for j, l := range splitLines(data) {
			var r Record
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, r.Seq)
			if j == 0 && i > 0 && (r.Log == nil || r.Log.Event != LogRotated || r.Log.PrevFile != filepath.Base(files[i-1])) {
				t.Errorf("%s starts with %s; want a rotated event naming %s", f, l, filepath.Base(files[i-1]))
			}
			if r.Log != nil && r.Log.Event == LogClosed && i != len(files)-1 {
				t.Errorf("%s: rotation wrote a closed event", f)
			}
		}
		fi, _ := os.Stat(f)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, fi.Mode())
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq %d at position %d of the concatenated chain", s, i)
		}
	}

	res, err := Verify(files, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || !res.HeadChecked || res.Records != len(seqs) || res.Calls+res.ConnEvents != n || res.ContinuesFrom != "" {
		t.Fatalf("verify all: %s, %d records, continues %q", problemString(res.Problem), res.Records, res.ContinuesFrom)
	}
	// The newest file alone: its start is accepted, and named.
	res, err = Verify(files[len(files)-1:], VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.ContinuesFrom != filepath.Base(files[len(files)-2]) || !res.HeadChecked {
		t.Fatalf("verify newest: %s, continues %q", problemString(res.Problem), res.ContinuesFrom)
	}
	// A file left out of the middle is caught.
	res, _ = Verify(slices.Delete(slices.Clone(files), 3, 4), VerifyOptions{})
	if res.Problem == nil || res.Problem.Kind != ProblemMissing || res.Problem.File != files[4] || res.Problem.Line != 1 {
		t.Fatalf("missing file: %s", problemString(res.Problem))
	}
	// Files given out of order are caught.
	swapped := slices.Clone(files)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	if res, _ := Verify(swapped, VerifyOptions{}); res.OK() {
		t.Fatal("files out of order verified")
	}
	// A rotated file that does not end with a newline is a problem, not a crash.
	mid := files[2]
	data := readFile(t, mid)
	writeFile(t, mid, data[:len(data)-5])
	if res, _ := Verify(files, VerifyOptions{}); res.Problem == nil || res.Problem.Kind != ProblemTruncated || res.Problem.File != mid {
		t.Fatalf("torn rotated file: %s", problemString(res.Problem))
	}
}

func TestRotationTinyLimit(t *testing.T) {
	// A limit smaller than one record: every file still holds its first
	// record and one more, and nothing rotates forever.
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 100, Now: newClock(time.Second).Now})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range 3 {
		if err := w.Append(sampleCall(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files, _ := ChainFiles(path)
	if len(files) != 3 {
		t.Fatalf("%d files, want 3: %v", len(files), files)
	}
	for i, f := range files {
		lines := splitLines(readFile(t, f))
		want := 2
		if i == len(files)-1 {
			want = 3 // and the closed event
		}
		if len(lines) != want || !bytes.Contains(lines[1], []byte(`"type":"call"`)) {
			t.Errorf("%s: %d lines; want %d with a call second", f, len(lines), want)
		}
	}
	if res, _ := Verify(files, VerifyOptions{Head: true}); !res.OK() || res.Calls != 3 {
		t.Fatalf("verify: %s", problemString(res.Problem))
	}
}

func TestRotationInterrupted(t *testing.T) {
	// A crash after the rename, before the new file's first record.
	path := writeLog(t, 3, WriterOptions{})
	rotated := path + ".20260101T000000Z"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	files, _ := ChainFiles(path)
	if !slices.Equal(files, []string{rotated, path}) {
		t.Fatalf("files %v", files)
	}
	res, _ := Verify(files, VerifyOptions{Head: true})
	if !res.OK() {
		t.Fatalf("verify: %s", problemString(res.Problem))
	}
	first := splitLines(readFile(t, path))[0]
	if !bytes.Contains(first, []byte(`"event":"rotated"`)) {
		t.Errorf("first record %s, want a rotated event", first)
	}
	// Also a torn first line of a new rotated file.
	path2 := writeLog(t, 2, WriterOptions{})
	os.Rename(path2, path2+".20260101T000000Z")
	writeFile(t, path2, []byte(`{"v":1,"seq":5,"type":"log","ti`))
	w, err = OpenWriter(path2, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	files, _ = ChainFiles(path2)
	for _, fs := range [][]string{files, files[1:]} {
		res, _ = Verify(fs, VerifyOptions{Head: true})
		if !res.OK() || len(res.Recovered) != 1 {
			t.Fatalf("verify %v: %s, recovered %v", fs, problemString(res.Problem), res.Recovered)
		}
	}
	if res.ContinuesFrom != filepath.Base(path2)+".20260101T000000Z" {
		t.Errorf("continues from %q", res.ContinuesFrom)
	}
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	p := NewPseudonymizer(testKey())
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(p, g*each+i)
				if err := w.Append(r); err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for s := range seqs {
		got = append(got, s)
	}
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != workers*each {
		t.Fatalf("duplicate seqs")
	}
	files, _ := ChainFiles(path)
	res, err := Verify(files, VerifyOptions{Head: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Calls+res.ConnEvents != workers*each {
		t.Fatalf("verify: %s, %d records", problemString(res.Problem), res.Records)
	}
	// Seqs are continuous: every record's seq in the log, log events and
	// all, runs 1..LastSeq; the appended ones are among them.
	if res.LastSeq != uint64(res.Records) {
		t.Errorf("last seq %d, %d records", res.LastSeq, res.Records)
	}
}

// fakeFile wraps a real file, recording operations and failing on demand.
type fakeFile struct {
	f   *os.File
	ops *[]string
	// failures, consumed in order: "write", "short-write", "sync", "truncate".
	fail *[]string
}

func (f *fakeFile) take(op string) bool {
	if len(*f.fail) > 0 && (*f.fail)[0] == op {
		*f.fail = (*f.fail)[1:]
		return true
	}
	return false
}

func (f *fakeFile) Write(b []byte) (int, error) {
	*f.ops = append(*f.ops, fmt.Sprintf("write %d", len(b)))
	if f.take("write") {
		return 0, errors.New("injected write failure")
	}
	if f.take("short-write") {
		n, _ := f.f.Write(b[:len(b)/2])
		return n, errors.New("injected: no space left on device")
	}
	return f.f.Write(b)
}

func (f *fakeFile) Sync() error {
	*f.ops = append(*f.ops, "sync")
	if f.take("sync") {
		return errors.New("injected fsync failure")
	}
	return f.f.Sync()
}

func (f *fakeFile) Truncate(n int64) error {
	*f.ops = append(*f.ops, "truncate")
	if f.take("truncate") {
		return errors.New("injected truncate failure")
	}
	return f.f.Truncate(n)
}

func (f *fakeFile) Close() error { return f.f.Close() }

func openFake(ops, fail *[]string) openFunc {
	return func(name string, flag int, perm os.FileMode) (logFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &fakeFile{f: f, ops: ops, fail: fail}, nil
	}
}

// TestAppendIsDurableWhenItReturns checks that each record is one write,
// fsync'd before Append returns, and readable from the file at once.
func TestAppendIsDurableWhenItReturns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compliance.jsonl")
	var ops, fail []string
	w, err := openWriter(path, WriterOptions{}, openFake(&ops, &fail))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := NewPseudonymizer(testKey())
	for i := range 5 {
		ops = nil
		r := sampleRecord(p, i)
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
		if len(ops) != 2 || !strings.HasPrefix(ops[0], "write ") || ops[1] != "sync" {
			t.Fatalf("append %d did %v; want one write then fsync", i, ops)
		}
		// Reopen and read: the line is there, complete.
		data := readFile(t, path)
		lines := splitLines(data)
		if !bytes.HasSuffix(data, []byte("\n")) || !bytes.Contains(lines[len(lines)-1], []byte(`"hash":"`+r.Hash+`"}`)) {
			t.Fatalf("append %d: last line on disk is not the record", i)
		}
		if fmt.Sprintf("write %d", len(lines[len(lines)-1])) != ops[0] {
			t.Fatalf("append %d: %s for a %d-byte line", i, ops[0], len(lines[len(lines)-1]))
		}
	}
}

func TestAppendRetryAfterFailure(t *testing.T) {
	for _, tc := range []struct {
		fail      []string
		recovered int  // torn lines the writer had to seal
		dup       bool // the failed record stayed in the log
	}{
		{fail: []string{"write"}},
		{fail: []string{"short-write"}},
		{fail: []string{"sync"}},
		{fail: []string{"short-write", "truncate"}, recovered: 1},
		// The line was written whole but could not be fsync'd or removed:
		// it stays, valid, and the retry writes the record again.
		{fail: []string{"sync", "truncate"}, dup: true},
	} {
		t.Run(strings.Join(tc.fail, "+"), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compliance.jsonl")
			var ops, fail []string
			w, err := openWriter(path, WriterOptions{}, openFake(&ops, &fail))
			if err != nil {
				t.Fatal(err)
			}
			p := NewPseudonymizer(testKey())
			if err := w.Append(sampleRecord(p, 0)); err != nil {
				t.Fatal(err)
			}
			before := readFile(t, path)
			fail = slices.Clone(tc.fail)
			r := sampleRecord(p, 1)
			if err := w.Append(r); err == nil {
				t.Fatal("Append succeeded despite the injected failure")
			}
			if r.Seq != 0 || r.Hash != "" {
				t.Errorf("failed Append changed the record: seq %d hash %q", r.Seq, r.Hash)
			}
			if len(fail) != 0 {
				t.Fatalf("injected failures not reached: %v", fail)
			}
			if after := readFile(t, path); tc.recovered == 0 && !tc.dup && !bytes.Equal(after, before) {
				t.Errorf("the failed record was left in the log")
			}
			if err := w.Append(r); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res, err := Verify([]string{path}, VerifyOptions{Head: true})
			if err != nil {
				t.Fatal(err)
			}
			wantCalls := 2
			if tc.dup {
				wantCalls = 3
			}
			if !res.OK() || res.Truncated != nil || len(res.Recovered) != tc.recovered || res.Calls != wantCalls {
				t.Fatalf("verify: %s, truncated %s, recovered %v, calls %d", problemString(res.Problem), problemString(res.Truncated), res.Recovered, res.Calls)
			}
		})
	}
}

func TestRotationFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "compliance.jsonl")
	var ops, fail []string
	opens := 0
	base := openFake(&ops, &fail)
	open := func(name string, flag int, perm os.FileMode) (logFile, error) {
		opens++
		if flag&os.O_EXCL != 0 && opens == 2 {
			return nil, errors.New("injected: cannot create file")
		}
		return base(name, flag, perm)
	}
	w, err := openWriter(path, WriterOptions{RotateBytes: 3000}, open)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	var failed int
	for i := range 4 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			failed++
			if err := w.Append(sampleRecord(p, i)); err != nil {
				t.Fatalf("retry: %v", err)
			}
		}
	}
	w.Close()
	if failed != 1 {
		t.Fatalf("%d failed appends, want 1", failed)
	}
	files, _ := ChainFiles(path)
	res, _ := Verify(files, VerifyOptions{Head: true})
	if !res.OK() || res.Calls != 3 || res.ConnEvents != 1 {
		t.Fatalf("verify %v: %s, %d calls", files, problemString(res.Problem), res.Calls)
	}
}
