package b2bua

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A warning repeated 100 times, from many addresses, is written once, then
// summarised with its count; other kinds, and lines below warning, are not
// folded; no count is lost.
func TestLogLinesFolded(t *testing.T) {
	var buf bytes.Buffer
	f := newLineFolder(time.Hour)
	log := slog.New(newFoldHandler(slog.NewJSONHandler(&buf, nil), f))
	zoneLog := log.With("zone", "pbx")
	for i := range 100 {
		zoneLog.Warn("accepting connections failed; retrying", "remote", "192.0.2."+string(rune('0'+i%10)))
		log.Info("call ended", "n", i)
	}
	log.Warn("accepting connections failed; retrying") // another kind: no zone
	zoneLog.Error("accepting connections failed; retrying")
	lines := func() []map[string]any {
		var out []map[string]any
		for l := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	count := func(ls []map[string]any, msg string, level string) (n int, repeated float64) {
		for _, l := range ls {
			if l["msg"] == msg && l["level"] == level {
				n++
				if r, ok := l["repeated"].(float64); ok {
					repeated += r
				}
			}
		}
		return n, repeated
	}
	ls := lines()
	if n, _ := count(ls, "call ended", "INFO"); n != 100 {
		t.Errorf("%d info lines, want all 100", n)
	}
	if n, r := count(ls, "accepting connections failed; retrying", "WARN"); n != 2 || r != 0 {
		t.Errorf("%d warnings (repeated %v), want the zone's first and the other kind's", n, r)
	}
	if n, _ := count(ls, "accepting connections failed; retrying", "ERROR"); n != 1 {
		t.Errorf("%d errors, want 1 (another level is another kind)", n)
	}
	f.drain(time.Now(), true)
	if n, r := count(lines(), "accepting connections failed; retrying", "WARN"); n != 3 || r != 99 {
		t.Errorf("after the drain: %d warnings, repeated %v; want a summary of the 99 folded", n, r)
	}
	f.drain(time.Now(), true)
	if n, _ := count(lines(), "accepting connections failed; retrying", "WARN"); n != 3 {
		t.Errorf("a second drain wrote %d warnings", n-3)
	}
	if len(f.kinds) > maxLineKinds {
		t.Errorf("%d kinds", len(f.kinds))
	}
}
