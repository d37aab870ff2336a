package b2bua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parapet-sbc/parapet/compliance"
)

// The handler sipgo's logs go through redacts key material and demotes
// sipgo's benign close-race warnings to debug.
func TestRedactHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})

	log.Warn("TCP ref went negative", "ref", -1)
	if buf.Len() != 0 {
		t.Errorf("benign sipgo warning logged at info level: %s", buf.String())
	}
	log.Warn("something else", "body", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
	out := buf.String()
	if !strings.Contains(out, "something else") || strings.Contains(out, "WVNfX19zZW1jdGwg") {
		t.Errorf("other warnings must be logged, with keys redacted: %s", out)
	}

	// A TCP read that began with the key: sipgo logs the chunk it could
	// not parse, and quotes it in the error.
	buf.Reset()
	log.Error("failed to parse", "error", "transmission beginning 'WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31' is not a SIP message",
		"data", "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\nhello world\r\n")
	out = buf.String()
	if !strings.Contains(out, "failed to parse") || strings.Contains(out, "WVNfX19zZW1jdGwg") || !strings.Contains(out, "bytes of SIP data withheld") {
		t.Errorf("wire data or a key logged: %s", out)
	}
	// Hex identifiers (call ids, tags) stay readable.
	buf.Reset()
	log.Warn("tx", "key", "z9hg4bk-0123456789abcdef0123456789abcdef", "call", "3f2a9c0e5b7d41a68e2c90b1d4f7a6c3@parapet")
	if out := buf.String(); !strings.Contains(out, "0123456789abcdef0123456789abcdef") || !strings.Contains(out, "3f2a9c0e5b7d41a68e2c90b1d4f7a6c3") {
		t.Errorf("identifiers masked: %s", out)
	}

	buf.Reset()
	debug := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Warn("TCP ref went negative", "ref", -1)
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("demoted warning at debug level: %q", buf.String())
	}
}

// Alike connection events fold into one record per interval; different
// refusals from one host do not; and every folded event is accounted for.
func TestEventFolder(t *testing.T) {
	f := newEventFolder(10 * time.Second)
	t0 := time.Unix(1000, 0)
	ev := func(version, remote string) *compliance.ConnEvent {
		return &compliance.ConnEvent{Event: compliance.EventTLSRefused, Zone: "carrier", Remote: remote,
			ClientMaxVersion: version, Error: "tls: client offered only unsupported versions: [302 301]"}
	}
	if f.fold(ev("TLS1.1", "192.0.2.1:40000"), t0) == nil {
		t.Fatal("the first event was folded")
	}
	for i := range 5 {
		if e := f.fold(ev("TLS1.1", fmt.Sprintf("192.0.2.1:%d", 40001+i)), t0.Add(time.Duration(i)*time.Second)); e != nil {
			t.Fatalf("event %d within the interval recorded: %+v", i, e)
		}
	}
	if f.fold(ev("TLS1.0", "192.0.2.1:40010"), t0.Add(time.Second)) == nil {
		t.Error("a TLS 1.0 attempt was folded into the TLS 1.1 ones")
	}
	if out := f.drain(t0.Add(5*time.Second), false); len(out) != 0 {
		t.Errorf("drained before the interval passed: %+v", out)
	}
	out := f.drain(t0.Add(11*time.Second), false)
	if len(out) != 1 || out[0].Suppressed != 4 || out[0].Remote != "192.0.2.1:40005" || out[0].ClientMaxVersion != "TLS1.1" {
		t.Fatalf("drain: %+v, want the latest folded event standing for itself and 4 others", out)
	}
	// A quiet kind is forgotten; the next event of it is recorded at once.
	f.drain(t0.Add(22*time.Second), false)
	f.drain(t0.Add(33*time.Second), false)
	if e := f.fold(ev("TLS1.1", "192.0.2.1:40020"), t0.Add(34*time.Second)); e == nil || e.Suppressed != 0 {
		t.Errorf("after a quiet interval: %+v", e)
	}
	// At shutdown everything folded is written, however recent.
	f.fold(ev("TLS1.1", "192.0.2.1:40021"), t0.Add(35*time.Second))
	if out := f.drain(t0.Add(35*time.Second), true); len(out) != 1 || out[0].Suppressed != 0 || out[0].Remote != "192.0.2.1:40021" {
		t.Errorf("final drain: %+v", out)
	}
}

// FuzzRedact: whatever surrounds an SDES key in a value sipgo logs, the key
// does not come out.
func FuzzRedact(f *testing.F) {
	const key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	f.Add("transmission beginning '", "|2^31' is not a SIP message")
	f.Add("", "")
	f.Add("abc", "\r\nhello")
	f.Fuzz(func(t *testing.T, before, after string) {
		for _, attr := range []string{"error", "data", "msg"} {
			if out := redactValue(attr, before+key+after); strings.Contains(out, key) {
				t.Fatalf("%s: key survived: %q", attr, out)
			}
		}
	})
}

// Free text bound for a record carries no number: not in a URI a library
// quoted, not the call's own caller or callee; and it is one bounded line.
func TestRecordText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`fail to write request on init req="INVITE sips:8150006@127.0.0.1:16062 SIP/2.0": connection reset`,
			`fail to write request on init req="INVITE sips:<user>@127.0.0.1:16062 SIP/2.0": connection reset`},
		{"transaction terminated\nTimer_B timed out", "transaction terminated Timer_B timed out"},
		{"To: <SIP:+15551230000@carrier.example>;tag=1", "To: <SIP:<user>@carrier.example>;tag=1"},
		{"dialled tel:+1-555-123-0000;phone-context=x", "dialled tel:<number>;phone-context=x"},
		{"from 5551239999 to 15557654321", "from <number> to <number>"},
		{"sip:carrier.example:5061 has no user", "sip:carrier.example:5061 has no user"},
		{"callee said 486 Busy +15551239999", "callee said 486 Busy <number>"},
		{"busy 18150006, try 4155550123 or +44 20", "busy <number>, try <number> or +44 20"},
		{"fingerprint ab12345678cd, serial 1234567890abcdef, port 50600", "fingerprint ab12345678cd, serial 1234567890abcdef, port 50600"},
		{"2026-12-03T13:16:25.424Z after 1h0m0s", "2026-12-03T13:16:25.424Z after 1h0m0s"},
		{"bad line a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", "[redacted: SIP message or key material]"},
		{"key WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz seen", "key […] seen"},
	} {
		if got := recordText(tc.in, nil, "5551239999", "+1 555-765-4321"); got != tc.want {
			t.Errorf("recordText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	// parapet's own names stay, even when a caller's user part is the
	// same word (the demo's PBX calls as "pbx"); the caller's name outside
	// them goes.
	vocab := []string{"pbx", "carrier", "outbound", "5551239999"}
	for _, tc := range []struct{ in, want string }{
		{`zone "pbx" requires SRTP; offer has plain RTP`, `zone "pbx" requires SRTP; offer has plain RTP`},
		{`plain RTP from zone "pbx" upgraded to SRTP toward zone "carrier"`, `plain RTP from zone "pbx" upgraded to SRTP toward zone "carrier"`},
		{`route "outbound" is carrying its maximum`, `route "outbound" is carrying its maximum`},
		{`pbx hung up in zone "pbx"`, `<number> hung up in zone "pbx"`},
		{`zone "5551239999" is a name, 5551239999 a number`, `zone "5551239999" is a name, <number> a number`},
	} {
		if got := recordText(tc.in, vocab, "pbx", "5551239999"); got != tc.want {
			t.Errorf("recordText(%q) with vocabulary\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	long := recordText(strings.Repeat("é", 400), nil)
	if !utf8.ValidString(long) || len(long) > maxRecordText+len("…") {
		t.Errorf("long text: %d bytes, valid UTF-8 %v", len(long), utf8.ValidString(long))
	}
}

// flakySink fails while fail is set.
type flakySink struct{ fail bool }

func (f *flakySink) Append(*compliance.Record) error {
	if f.fail {
		return errors.New("no space left on device")
	}
	return nil
}

// countHandler counts the log records at each level.
type countHandler struct {
	mu     sync.Mutex
	levels map[slog.Level]int
	msgs   []string
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels[r.Level]++
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// A compliance log that cannot be written is said so once, not once per
// attempt (a full disk must not fill the log too); when it can be written
// again, one line says so. No record is lost meanwhile.
func TestRecorderFailureLoggedOnce(t *testing.T) {
	h := &countHandler{levels: map[slog.Level]int{}}
	sink := &flakySink{fail: true}
	st := &stats{}
	r := newRecorder(sink, slog.New(h), st)
	for range 500 {
		r.append(&compliance.Record{Type: compliance.TypeLog, Log: &compliance.LogEvent{Event: compliance.LogOpened}})
		r.healthy()
	}
	if n := h.levels[slog.LevelError]; n != 1 {
		t.Errorf("%d error lines for 1,000 failed attempts within %v, want 1: %q", n, failWarnEvery, h.msgs)
	}
	if got := st.recordFailures.Load(); got < 500 {
		t.Errorf("%d failures counted, want every attempt (at least 500)", got)
	}
	sink.fail = false
	r.flush()
	if r.backlog() != 0 || st.records.Load() != 500 {
		t.Fatalf("backlog %d, %d records written; want all 500 written", r.backlog(), st.records.Load())
	}
	if n := h.levels[slog.LevelInfo]; n != 1 || h.msgs[len(h.msgs)-1] != "compliance log writable again" {
		t.Errorf("recovery lines: %q", h.msgs)
	}
}

// A backlog over maxBacklog drops its oldest records, but never an
// emergency call's.
func TestRecorderBacklogKeepsEmergencyCalls(t *testing.T) {
	r := newRecorder(&flakySink{fail: true}, slog.New(slog.DiscardHandler), &stats{})
	call := func(id string, emergency bool) *compliance.Record {
		return &compliance.Record{Type: compliance.TypeCall, Call: &compliance.Call{ID: id, Emergency: emergency}}
	}
	r.append(call("first", false))
	r.append(call("911", true))
	for range maxBacklog - 1 {
		r.append(call("other", false))
	}
	r.append(call("last", false))
	if n := r.backlog(); n != maxBacklog {
		t.Fatalf("backlog %d, want %d", n, maxBacklog)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if first := r.pending[0].Call; first.ID != "911" {
		t.Errorf("the backlog starts with %q, want the emergency call kept", first.ID)
	}
	if r.pending[1].Call.ID != "other" || r.pending[maxBacklog-1].Call.ID != "last" {
		t.Error("the backlog lost its order")
	}
}
