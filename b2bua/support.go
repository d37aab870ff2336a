package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/parapet-sbc/parapet/compliance"
)

// recorder writes records to the sink. A record that cannot be written is
// kept and retried before the next one, so a full disk or a transient error
// loses nothing while memory lasts; meanwhile the server reports not ready
// and refuses new calls (fail closed).
type recorder struct {
	sink  compliance.Sink
	log   *slog.Logger
	stats *stats
	// journal, when set, is told when a call's record is in the log.
	journal Journal

	mu      sync.Mutex
	pending []*compliance.Record
	// While the sink fails, failed counts the attempts since the last
	// log line about them (one a failWarnEvery at most: a full disk
	// must not fill the log as well), failing since when.
	failed       int
	failedTotal  int
	failing      time.Time
	lastFailWarn time.Time
}

// maxBacklog bounds the records held in memory while the sink fails.
const maxBacklog = 100000

// failWarnEvery is how often, at most, a failing compliance log is said so
// in parapet's own log; the attempts between are counted in the next line.
const failWarnEvery = 10 * time.Second

func newRecorder(sink compliance.Sink, log *slog.Logger, st *stats) *recorder {
	return &recorder{sink: sink, log: log, stats: st}
}

func (r *recorder) append(rec *compliance.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, rec)
	r.drainLocked()
	if len(r.pending) > maxBacklog {
		lost := r.trimLocked(len(r.pending) - maxBacklog)
		r.log.Error("compliance records lost: backlog full", "lost", lost)
	}
}

// trimLocked drops the n oldest records of the backlog, but never an
// emergency call's: those are kept whatever the backlog holds. It returns
// how many it dropped.
func (r *recorder) trimLocked(n int) int {
	kept := r.pending[:0]
	lost := 0
	for _, rec := range r.pending {
		if lost < n && (rec.Call == nil || !rec.Call.Emergency) {
			lost++
			continue
		}
		kept = append(kept, rec)
	}
	clear(r.pending[len(kept):])
	r.pending = kept
	return lost
}

func (r *recorder) drainLocked() {
	for len(r.pending) > 0 {
		if err := r.sink.Append(r.pending[0]); err != nil {
			r.stats.recordFailures.Add(1)
			r.noteFailureLocked(err)
			return
		}
		r.stats.records.Add(1)
		if !r.failing.IsZero() {
			r.log.Info("compliance log writable again", "failed_attempts", r.failedTotal,
				"failing_for", time.Since(r.failing).Round(time.Millisecond), "backlog", len(r.pending))
			r.failed, r.failedTotal, r.failing, r.lastFailWarn = 0, 0, time.Time{}, time.Time{}
		}
		if rec := r.pending[0]; r.journal != nil && rec.Call != nil {
			// Only now, not while the record waits in the backlog: the
			// journal keeps the call until its record is safe.
			r.journal.End(rec.Call.ID)
		}
		r.pending[0] = nil
		r.pending = r.pending[1:]
	}
}

// noteFailureLocked counts a failed append and says so in the log: at once
// for the first, then once a failWarnEvery with the count of attempts
// since.
func (r *recorder) noteFailureLocked(err error) {
	now := time.Now()
	r.failed++
	r.failedTotal++
	if r.failing.IsZero() {
		r.failing = now
	}
	if !r.lastFailWarn.IsZero() && now.Sub(r.lastFailWarn) < failWarnEvery {
		return
	}
	r.log.Error("compliance record not written; will retry", "error", err, "backlog", len(r.pending),
		"failed_attempts", r.failed)
	r.failed, r.lastFailWarn = 0, now
}

// flush retries the backlog once.
func (r *recorder) flush() {
	r.mu.Lock()
	r.drainLocked()
	r.mu.Unlock()
}

func (r *recorder) healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		r.drainLocked()
	}
	return len(r.pending) == 0
}

func (r *recorder) backlog() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// eventFolder folds repeated events into one per interval: the first of a
// kind (a key) passes, the ones that follow within the interval are
// counted, and the count goes with the next one that passes. allow serves
// any key (log lines, the call records of refused INVITEs); fold and drain
// serve connection-event records, which lose nothing: drain writes out the
// counts of kinds that went quiet, or of all kinds at shutdown.
type eventFolder struct {
	every time.Duration
	mu    sync.Mutex
	slots map[string]*foldSlot
}

type foldSlot struct {
	last       time.Time // when an event of this kind last passed
	suppressed uint64
	latest     *compliance.ConnEvent // the latest folded connection event (fold only)
}

// maxFoldSlots bounds the folder's memory; beyond it, events of new kinds
// pass without folding until quiet kinds are forgotten.
const maxFoldSlots = 10000

func newEventFolder(every time.Duration) *eventFolder {
	return &eventFolder{every: every, slots: map[string]*foldSlot{}}
}

// allow reports whether an event of kind key passes now, and how many
// were folded since the last one that did.
func (f *eventFolder) allow(key string, now time.Time) (suppressed uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allowLocked(key, now, nil)
}

// allowLocked is allow; a folded e, when given, is kept as the kind's
// latest. Caller holds f.mu.
func (f *eventFolder) allowLocked(key string, now time.Time, e *compliance.ConnEvent) (uint64, bool) {
	sl := f.slots[key]
	if sl == nil {
		if len(f.slots) < maxFoldSlots {
			f.slots[key] = &foldSlot{last: now}
		}
		return 0, true
	}
	if now.Sub(sl.last) < f.every {
		sl.suppressed++
		if e != nil {
			sl.latest = e
		}
		return 0, false
	}
	n := sl.suppressed
	sl.last, sl.suppressed, sl.latest = now, 0, nil
	return n, true
}

// foldKey is a connection event's kind: zone, event, remote host and what
// was refused (client version, method, status, error with its numbers left
// out), so that a TLS 1.0 and a TLS 1.1 attempt from one host are apart.
func foldKey(e *compliance.ConnEvent) string {
	host := e.Remote
	if h, _, err := net.SplitHostPort(e.Remote); err == nil {
		host = h
	}
	why := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, e.Error)
	return strings.Join([]string{"conn", e.Zone, string(e.Event), host, e.ClientMaxVersion, e.Method, strconv.Itoa(e.SIPStatus), why}, "|")
}

// fold returns e, with Suppressed set, when it is to be recorded now, or
// nil when it was folded.
func (f *eventFolder) fold(e *compliance.ConnEvent, now time.Time) *compliance.ConnEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.allowLocked(foldKey(e), now, e)
	if !ok {
		return nil
	}
	e.Suppressed = n
	return e
}

// drain returns a record for every kind of connection event with folded
// events whose interval has passed (all of them when all is set): the
// latest folded event, standing for itself and Suppressed others. Other
// kinds quiet for an interval are forgotten (allow's folded counts with
// them: they only annotate log lines, and refused INVITEs are counted in
// connection events too).
func (f *eventFolder) drain(now time.Time, all bool) []*compliance.ConnEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*compliance.ConnEvent
	for key, sl := range f.slots {
		switch {
		case !all && now.Sub(sl.last) < f.every:
		case sl.latest != nil:
			e := *sl.latest
			e.Suppressed = sl.suppressed - 1
			out = append(out, &e)
			sl.last, sl.suppressed, sl.latest = now, 0, nil
		default:
			delete(f.slots, key)
		}
	}
	return out
}

// redactHandler keeps SIP message bodies out of the logs sipgo writes: any
// string attribute that looks like it carries SDP keys or a whole message is
// replaced. parapet's promise is no key material in logs, ever.
type redactHandler struct {
	h slog.Handler
	// parseErrors, when set, counts the messages sipgo could not parse.
	parseErrors *atomic.Uint64
}

// Enabled lets sipgo's errors through even when the output would drop
// them, so that parse failures are counted whatever the log level.
func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, l) || r.parseErrors != nil && l >= slog.LevelError
}

// sipgoNoise are warnings sipgo logs when both ends close a TCP or TLS
// connection at about the same time: its reference count goes below zero
// and its close_notify finds the socket gone. Nothing is lost; they are
// demoted to debug so that operators are not sent looking for a problem.
var sipgoNoise = map[string]bool{
	"TCP ref went negative":             true,
	"connection pool not clean cleanup": true,
}

// unparsable reports whether sipgo's log record says it dropped a message
// that is not SIP: bytes that do not parse, or a request without the Via
// branch a transaction (and any response) needs.
func unparsable(rec slog.Record) bool {
	switch rec.Message {
	case "failed to parse":
		return true
	case "Server tx failed to handle request":
		bad := false
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				bad = strings.Contains(a.Value.String(), "make key failed")
				return false
			}
			return true
		})
		return bad
	}
	return false
}

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	if r.parseErrors != nil && unparsable(rec) {
		r.parseErrors.Add(1)
	}
	if !r.h.Enabled(ctx, rec.Level) {
		return nil
	}
	if rec.Level == slog.LevelWarn && sipgoNoise[rec.Message] {
		if !r.h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		rec.Level = slog.LevelDebug
	}
	out := slog.NewRecord(rec.Time, rec.Level, redactString(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return &redactHandler{h: r.h.WithAttrs(red), parseErrors: r.parseErrors}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), parseErrors: r.parseErrors}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactValue(a.Key, v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		return slog.String(a.Key, redactValue(a.Key, v.String()))
	default: // numbers, times, bools: nothing of the wire in them
		return slog.Attr{Key: a.Key, Value: v}
	}
}

// redactValue withholds raw wire data: sipgo logs what it failed to parse
// as "data", and a TCP or TLS read can begin anywhere in a message, with an
// SDES key and none of the markers redactString looks for.
func redactValue(key, s string) string {
	if key == "data" || strings.ContainsAny(s, "\r\n") {
		return fmt.Sprintf("[%d bytes of SIP data withheld]", len(s))
	}
	return redactString(s)
}

// redactString drops whole SIP messages and anything with SDES keys, and
// masks any long base64 run (an SDES key is 40 to 64 characters of it) in
// what is left, such as a parse error quoting the bytes it choked on.
func redactString(s string) string {
	if strings.Contains(s, "inline:") || strings.Contains(s, "a=crypto") ||
		strings.Contains(s, "\r\n\r\n") || strings.Contains(s, "SIP/2.0\r\n") {
		return "[redacted: SIP message or key material]"
	}
	return maskKeyLike(s)
}

// keyLikeRun is the length from which a run of base64 characters with an
// upper-case letter, '+' or '/' in it is masked: shorter than any SRTP
// master key and salt in base64 (40), longer than hex identifiers need
// (those are kept, being lower-case).
const keyLikeRun = 24

func maskKeyLike(s string) string {
	var b strings.Builder
	start := -1
	flush := func(end int) {
		run := s[start:end]
		if len(run) >= keyLikeRun && strings.ContainsAny(run, "ABCDEFGHIJKLMNOPQRSTUVWXYZ+/") {
			b.WriteString("[…]")
		} else {
			b.WriteString(run)
		}
		start = -1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			flush(i)
		}
		b.WriteByte(c)
	}
	if start >= 0 {
		flush(len(s))
	}
	return b.String()
}

// uriUser matches the user part of a sip: or sips: URI, and a tel: URI's
// number.
var uriUser = regexp.MustCompile(`(?i)\b(sips?):([^@\s"'<>;,]+)@|\btel:[^\s"'<>;,]+`)

// word matches a word: what a number standing alone would be, and what a
// hex string or a name holding digits is.
var word = regexp.MustCompile(`[+0-9A-Za-z]+`)

// phoneLike reports whether w, a word, is a phone number: 7 or more
// digits, perhaps after a +.
func phoneLike(w string) bool {
	d := strings.TrimPrefix(w, "+")
	return len(d) >= 7 && strings.Trim(d, "0123456789") == ""
}

// protectQuoted replaces each quoted occurrence of a word of keep in s
// ("pbx" with its quotes) by a placeholder that no redaction matches (no
// letter, digit or space), and returns the result and a function that puts
// the words back.
func protectQuoted(s string, keep []string) (string, func(string) string) {
	var olds []string
	for i, w := range keep {
		q := `"` + w + `"`
		if w == "" || !strings.Contains(s, q) {
			continue
		}
		ph := "\x01" + strings.Repeat("\x02", i+1) + "\x01"
		s = strings.ReplaceAll(s, q, ph)
		olds = append(olds, ph, q)
	}
	if len(olds) == 0 {
		return s, func(t string) string { return t }
	}
	return s, strings.NewReplacer(olds...).Replace
}

// maxRecordText bounds free text in a record.
const maxRecordText = 300

// recordText makes free text fit for a record or a log line: one line,
// bounded, with no SIP message or key material (redactString, as for log
// lines), no SIP URI user part, tel: number, phone-like word, or any of
// secrets (the call's caller and callee). Libraries' errors can quote a
// request line, whose Request-URI is the number dialled, which a
// pseudonymised record must never hold in clear. parapet's own vocabulary
// in keep (zone and route names), where the text quotes it as policy does
// ("zone \"pbx\""), is left as it is, even when a caller's user part is the
// same word.
func recordText(s string, keep []string, secrets ...string) string {
	s = redactString(s)
	s, restore := protectQuoted(s, keep)
	s = uriUser.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(strings.ToLower(m), "tel:") {
			return "tel:<number>"
		}
		scheme, _, _ := strings.Cut(m, ":")
		return scheme + ":<user>@"
	})
	s = word.ReplaceAllStringFunc(s, func(w string) string {
		if phoneLike(w) {
			return "<number>"
		}
		return w
	})
	for _, secret := range secrets {
		// As given, and as its digits alone (+1 555-123 quoted back as
		// 1555123, say).
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, secret)
		for _, v := range []string{secret, digits} {
			if len(v) >= 3 {
				s = strings.ReplaceAll(s, v, "<number>")
			}
		}
	}
	s = restore(strings.Join(strings.Fields(s), " "))
	if len(s) > maxRecordText {
		cut := maxRecordText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
