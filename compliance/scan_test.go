package compliance

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A log as the writer leaves it after a crash and a restart, then damaged:
// ScanFile delivers every intact record with its line number and reports
// the others.
func TestScanFileSkipsBadLines(t *testing.T) {
	path := writeLog(t, 6, WriterOptions{})
	lines := splitLines(readFile(t, path))
	// Line 3 edited in place, a sealed torn line after line 5, a line of
	// garbage, and an unterminated line at the end.
	lines[2] = bytes.Replace(lines[2], []byte(`"seq":3`), []byte(`"seq":9`), 1)
	var b bytes.Buffer
	for i, l := range lines {
		b.Write(l)
		if i == 4 {
			b.WriteString(`{"v":2,"seq":6,"type":"call","ti` + "\n")
			b.WriteString("not json at all\n")
		}
	}
	b.Write(lines[len(lines)-1][:40])
	writeFile(t, path, b.Bytes())

	var got []int
	var seqs []uint64
	type badLine struct {
		n    int
		torn bool
	}
	var bad []badLine
	err := ScanFile(path, func(line int, rec *Record) error {
		got = append(got, line)
		seqs = append(seqs, rec.Seq)
		return nil
	}, func(line int, err error) {
		if !errors.Is(err, ErrTornLine) && !errors.Is(err, ErrDamagedLine) {
			t.Errorf("line %d: error %v wraps neither ErrTornLine nor ErrDamagedLine", line, err)
		}
		bad = append(bad, badLine{line, errors.Is(err, ErrTornLine)})
	})
	if err != nil {
		t.Fatal(err)
	}
	n := len(lines)
	wantLines := []int{1, 2, 4, 5}
	for i := 6; i <= n; i++ {
		wantLines = append(wantLines, i+2)
	}
	if !equal(got, wantLines) {
		t.Errorf("records at lines %v, want %v", got, wantLines)
	}
	for i, s := range seqs {
		want := uint64(wantLines[i])
		if want > 5 {
			want -= 2 // after the two inserted lines
		}
		if s != want {
			t.Errorf("line %d: seq %d, want %d", wantLines[i], s, want)
		}
	}
	wantBad := []badLine{{3, false}, {6, true}, {7, false}, {n + 3, true}}
	if len(bad) != len(wantBad) {
		t.Fatalf("bad lines %v, want %v", bad, wantBad)
	}
	for i := range bad {
		if bad[i] != wantBad[i] {
			t.Errorf("bad line %d: %+v, want %+v", i, bad[i], wantBad[i])
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Raw gives each line byte for byte: the lines of an intact log put back
// together are the log.
func TestScannerRawIsTheLine(t *testing.T) {
	path := writeLog(t, 9, WriterOptions{RotateBytes: 1 << 20})
	want := readFile(t, path)
	s := NewScanner(bytes.NewReader(want))
	s.Bad = func(line int, err error) { t.Errorf("line %d: %v", line, err) }
	var got bytes.Buffer
	for s.Scan() {
		got.Write(s.Raw())
		got.WriteByte('\n')
		if s.Record().Hash == "" || s.Line() != bytes.Count(got.Bytes(), []byte{'\n'}) {
			t.Errorf("line %d: record %+v", s.Line(), s.Record())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("raw lines differ from the log")
	}
}

// A version 1 record (as a version 1 build wrote it: no version 2 fields)
// decodes.
func TestDecodeLineVersion1(t *testing.T) {
	rec := sampleCall(NewPseudonymizer(testKey()), 1)
	rec.V, rec.Seq, rec.Time = 1, 7, t0
	rec.Call.DurationMS = nil
	line, _, err := encodeLine(rec)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(line, []byte("duration_ms")) {
		t.Fatal("test line has a version 2 field")
	}
	got, err := DecodeLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.V != 1 || got.Seq != 7 || got.Call == nil || got.Call.ID != rec.Call.ID || len(got.Call.Legs) != 2 ||
		got.Call.Legs[1].Controls[0] != rec.Call.Legs[1].Controls[0] || got.Call.Decisions[2].Verdict != rec.Call.Decisions[2].Verdict {
		t.Errorf("decoded %+v", got.Call)
	}
}

func TestDecodeLineRefuses(t *testing.T) {
	good, _, err := encodeLine(sampleConn(1))
	if err != nil {
		t.Fatal(err)
	}
	noPayload, _, err := encodeLine(&Record{Type: TypeCall})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		line []byte
		want error
	}{
		{"torn", good[:len(good)/2], ErrTornLine},
		{"edited", bytes.Replace(good, []byte("203.0.113.66"), []byte("203.0.113.67"), 1), ErrDamagedLine},
		{"no payload", noPayload, ErrDamagedLine},
		{"empty", nil, ErrDamagedLine},
		{"too long", bytes.Repeat([]byte("x"), maxLineBytes+1), ErrDamagedLine},
	} {
		if _, err := DecodeLine(tc.line); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeLine(good); err != nil {
		t.Errorf("intact line: %v", err)
	}
}

// An error from fn stops the scan and comes back as it is; a read error
// comes back wrapped.
func TestScanErrors(t *testing.T) {
	path := writeLog(t, 3, WriterOptions{})
	stop := errors.New("stop")
	calls := 0
	err := ScanFile(path, func(int, *Record) error { calls++; return stop }, nil)
	if err != stop || calls != 1 { //nolint:errorlint // the contract is fn's error itself, unwrapped
		t.Errorf("fn error: %v after %d calls", err, calls)
	}
	if err := ScanFile(path+".missing", func(int, *Record) error { return nil }, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	failing := io.MultiReader(strings.NewReader(string(readFile(t, path))), errReader{})
	n := 0
	err = ScanReader(failing, func(int, *Record) error { n++; return nil }, nil)
	if !errors.Is(err, errBoom) || n == 0 {
		t.Errorf("read error: %v after %d records", err, n)
	}
}

var errBoom = errors.New("boom")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

// repeatLog produces n records' lines by cycling through a few real ones:
// each line is intact (the chain is not, which a scan does not check).
type repeatLog struct {
	lines [][]byte
	n, i  int
	cur   []byte
}

func newRepeatLog(tb testing.TB, n int) *repeatLog {
	tb.Helper()
	p := NewPseudonymizer(testKey())
	var lines [][]byte
	for i := range 3 {
		rec := sampleRecord(p, i)
		rec.V, rec.Seq, rec.Time = SchemaVersion, uint64(i+1), t0
		l, _, err := encodeLine(rec)
		if err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, l)
	}
	return &repeatLog{lines: lines, n: n}
}

func (r *repeatLog) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(r.cur) == 0 {
			if r.i == r.n {
				break
			}
			r.cur = r.lines[r.i%len(r.lines)]
			r.i++
		}
		c := copy(p, r.cur)
		r.cur, p, total = r.cur[c:], p[c:], total+c
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// A long log streams in flat memory: the heap stays small however many
// records go by.
func TestScanFlatMemory(t *testing.T) {
	// 200k records take some 6 s; a million (PARAPET_SCAN_RECORDS=1000000)
	// about 25 s, with the same flat heap.
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("PARAPET_SCAN_RECORDS")); err == nil && v > 0 {
		n = v
	} else if testing.Short() || raceEnabled {
		n = 20_000
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	count := 0
	start := time.Now()
	err := ScanReader(newRepeatLog(t, n), func(_ int, rec *Record) error {
		count++
		if count%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		return nil
	}, func(line int, err error) { t.Fatalf("line %d: %v", line, err) })
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("%d records, want %d", count, n)
	}
	if grew := int64(peak) - int64(base); grew > 32<<20 {
		t.Errorf("heap grew by %d MiB over %d records", grew>>20, n)
	}
	t.Logf("%d records in %v, heap in use at most %d KiB above the start", n, time.Since(start), (int64(peak)-int64(base))>>10)
}

func BenchmarkScan(b *testing.B) {
	r := newRepeatLog(b, b.N)
	var size int
	for _, l := range r.lines {
		size += len(l)
	}
	b.SetBytes(int64(size / len(r.lines)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	err := ScanReader(r, func(int, *Record) error { n++; return nil }, func(line int, err error) { b.Fatalf("line %d: %v", line, err) })
	if err != nil || n != b.N {
		b.Fatalf("%d records of %d: %v", n, b.N, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// FuzzScanReader: whatever the bytes, scanning never panics, delivers only
// lines that decode as intact records (so their hash matches their bytes),
// and numbers every line once.
func FuzzScanReader(f *testing.F) {
	seeds, err := fuzzSeeds()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte("{\n\n}\n{\"v\":2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewScanner(bytes.NewReader(b))
		last := 0
		s.Bad = func(line int, err error) {
			if line <= last || (!errors.Is(err, ErrTornLine) && !errors.Is(err, ErrDamagedLine)) {
				t.Fatalf("bad line %d after %d: %v", line, last, err)
			}
			last = line
		}
		for s.Scan() {
			if s.Line() <= last {
				t.Fatalf("line %d after %d", s.Line(), last)
			}
			last = s.Line()
			stored, computed, ok := lineHash(s.Raw())
			if !ok || stored != computed || s.Record().Hash != stored {
				t.Fatalf("line %d delivered without a matching hash", s.Line())
			}
			if !bytes.Contains(b, s.Raw()) {
				t.Fatalf("line %d is not in the input", s.Line())
			}
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		if want := bytes.Count(b, []byte{'\n'}); last > want+1 || (len(b) > 0 && b[len(b)-1] == '\n' && last > want) {
			t.Fatalf("last line %d, input has %d newlines", last, want)
		}
	})
}
