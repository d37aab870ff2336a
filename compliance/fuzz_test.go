package compliance

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fuzzSeeds returns two real logs: a plain one, and one holding a torn line
// sealed by a LogRecovered event. They are built once per process.
var fuzzSeeds = sync.OnceValues(func() ([2][]byte, error) {
	var out [2][]byte
	dir, err := os.MkdirTemp("", "parapet-fuzz-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	p := NewPseudonymizer(testKey())
	write := func(path string, from, n int) error {
		w, err := OpenWriter(path, WriterOptions{Now: newClock(time.Second).Now, Version: "fuzz"})
		if err != nil {
			return err
		}
		for i := from; i < from+n; i++ {
			if err := w.Append(sampleRecord(p, i)); err != nil {
				return err
			}
		}
		return w.Close()
	}
	plain := filepath.Join(dir, "plain.jsonl")
	recovered := filepath.Join(dir, "recovered.jsonl")
	if err := write(plain, 0, 3); err != nil {
		return out, err
	}
	if err := write(recovered, 2, 1); err != nil {
		return out, err
	}
	f, err := os.OpenFile(recovered, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return out, err
	}
	_, err = f.WriteString(`{"v":1,"seq":4,"type":"connection","time":"2026-`)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return out, err
	}
	if err := write(recovered, 3, 0); err != nil {
		return out, err
	}
	for i, path := range []string{plain, recovered} {
		if out[i], err = os.ReadFile(path); err != nil {
			return out, err
		}
	}
	if !bytes.Contains(out[1], []byte(`"event":"`+LogRecovered+`"`)) {
		return out, errors.New("the recovered seed log has no recovered event")
	}
	return out, nil
})

// seedLogs returns the fuzz seed logs, or fails f.
func seedLogs(f *testing.F) (plain, recovered []byte) {
	logs, err := fuzzSeeds()
	if err != nil {
		f.Fatalf("building the seed logs: %v", err)
	}
	return logs[0], logs[1]
}

// FuzzVerifyReader feeds arbitrary bytes to the verifier: it must never
// panic, and whatever it accepts must be a continuous chain.
func FuzzVerifyReader(f *testing.F) {
	plain, recovered := seedLogs(f)
	f.Add(plain)
	f.Add(recovered)
	f.Add(plain[:len(plain)/2])
	f.Add([]byte("{\n}\n"))
	f.Add([]byte(`{"v":1,"seq":1,"type":"log","log":{"event":"recovered","detail":"sealed 1 torn bytes at line 0 (sha256:` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `)"},"prev":"","hash":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := VerifyReader("fuzz", bytes.NewReader(data), "", 0)
		if err != nil {
			t.Fatalf("I/O error from a bytes.Reader: %v", err)
		}
		if res.OK() && res.Records > 0 && res.LastSeq-res.FirstSeq+1 != uint64(res.Records) {
			t.Fatalf("accepted %d records spanning seq %d..%d", res.Records, res.FirstSeq, res.LastSeq)
		}
		if res.Problem != nil && (res.Problem.Line < 1 || res.Problem.Kind == "") {
			t.Fatalf("problem without a place: %+v", res.Problem)
		}
	})
}

// FuzzVerifyTamper mutates a real log (substitute, delete or insert bytes)
// and checks two properties. Any substitution of one byte is a Problem
// reported at the line holding that byte. No change
// at all yields a log that verifies clean with the same records: the only
// ways to shorten a log without a Problem (cutting whole records off the
// end, or into the last line) show up as fewer records or a Truncated line.
func FuzzVerifyTamper(f *testing.F) {
	plain, recovered := seedLogs(f)
	f.Add(false, uint8(0), uint16(10), uint16(1), byte('x'))
	f.Add(false, uint8(0), uint16(len(plain)-1), uint16(1), byte(' '))
	f.Add(true, uint8(1), uint16(300), uint16(40), byte(0))
	f.Add(true, uint8(2), uint16(len(recovered)/2), uint16(1), byte('\n'))
	f.Add(false, uint8(1), uint16(len(plain)-5), uint16(5), byte(0))
	f.Fuzz(func(t *testing.T, useRecovered bool, op uint8, pos, n uint16, val byte) {
		orig := plain
		if useRecovered {
			orig = recovered
		}
		base := verifyBytes(t, orig)
		if !base.OK() {
			t.Fatalf("seed log does not verify: %s", problemString(base.Problem))
		}
		p := int(pos) % len(orig)
		var mut []byte
		switch op % 3 {
		case 0: // substitute one byte
			if orig[p] == val {
				return
			}
			mut = bytes.Clone(orig)
			mut[p] = val
		case 1: // delete n bytes
			end := min(p+max(int(n)%512, 1), len(orig))
			mut = append(bytes.Clone(orig[:p]), orig[end:]...)
		case 2: // insert one byte
			mut = append(append(bytes.Clone(orig[:p]), val), orig[p:]...)
		}
		res := verifyBytes(t, mut)
		if res.OK() && res.Truncated == nil && res.Records == base.Records && res.LastHash == base.LastHash &&
			len(res.Recovered) == len(base.Recovered) {
			t.Fatalf("op %d at %d: a changed log verifies as the original", op%3, p)
		}
		if op%3 == 0 {
			if res.Problem == nil {
				t.Fatalf("substituting byte %d (%q -> %q) is not reported", p, orig[p], val)
			}
			want := lineOf(orig, p)
			if res.Problem.Line != want {
				// In the recovered log, a change to the first bytes of the
				// recovery record may be reported at the torn line before
				// it (see TestTamperMatrixRecovered).
				start := bytes.LastIndexByte(orig[:max(bytes.Index(orig, []byte(`"event":"recovered"`)), 0)], '\n') + 1
				if !useRecovered || p < start || p >= start+len(`{"v":`) || res.Problem.Line != want-1 {
					t.Fatalf("substituting byte %d (%q -> %q): problem %s, want line %d", p, orig[p], val, problemString(res.Problem), want)
				}
			}
		}
	})
}
