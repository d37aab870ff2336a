package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// recordFilter is the filters of parapet records. Every filter set must
// match (AND); a filter holding several values matches any of them (OR). A
// record without the field a filter looks at (a log event for -zone, say)
// does not match it.
type recordFilter struct {
	since, until time.Time // zero: open

	types, zones, routes, dispositions, events, rules, verdicts map[string]bool

	peers    []netip.Prefix
	controls []controlMatch
	numbers  []idMatch
	callIDs  []idMatch
}

// match reports whether r passes every filter.
func (f *recordFilter) match(r *compliance.Record) bool {
	switch {
	case !f.since.IsZero() && r.Time.Before(f.since),
		!f.until.IsZero() && !r.Time.Before(f.until),
		f.types != nil && !f.types[r.Type]:
		return false
	}
	c, ev := r.Call, r.Conn
	if f.zones != nil && !f.anyLeg(c, func(l *compliance.Leg) bool { return f.zones[l.Zone] }) &&
		(ev == nil || !f.zones[ev.Zone]) {
		return false
	}
	if f.routes != nil && (c == nil || !f.routes[c.Route]) && (ev == nil || ev.Route == "" || !f.routes[ev.Route]) {
		return false
	}
	if f.dispositions != nil && (c == nil || !f.dispositions[string(c.Disposition)]) {
		return false
	}
	if f.events != nil && (ev == nil || !f.events[string(ev.Event)]) && (r.Log == nil || !f.events[string(r.Log.Event)]) {
		return false
	}
	if f.rules != nil && !anyDecision(r, func(d *policy.Decision) bool { return f.rules[d.Rule] }) {
		return false
	}
	if f.verdicts != nil && !anyDecision(r, func(d *policy.Decision) bool { return f.verdicts[string(d.Verdict)] }) {
		return false
	}
	if f.peers != nil && !f.anyLeg(c, func(l *compliance.Leg) bool { return inPrefixes(f.peers, l.Remote) }) &&
		(ev == nil || !inPrefixes(f.peers, ev.Remote)) {
		return false
	}
	if f.controls != nil && !f.anyLeg(c, f.legHasControl) {
		return false
	}
	if f.numbers != nil && (c == nil || !anyID(f.numbers, c.Pseudonymized, true, c.Caller, c.Callee)) {
		return false
	}
	if f.callIDs != nil && !f.anyLeg(c, func(l *compliance.Leg) bool { return anyID(f.callIDs, c.Pseudonymized, false, l.CallID) }) {
		return false
	}
	return true
}

func (f *recordFilter) anyLeg(c *compliance.Call, fn func(*compliance.Leg) bool) bool {
	if c == nil {
		return false
	}
	for i := range c.Legs {
		if fn(&c.Legs[i]) {
			return true
		}
	}
	return false
}

func (f *recordFilter) legHasControl(l *compliance.Leg) bool {
	for _, fd := range l.Controls {
		for _, m := range f.controls {
			if fd.Control == m.control && (m.status == "" || fd.Status == m.status) {
				return true
			}
		}
	}
	return false
}

// anyDecision reports whether fn holds for a decision of a call, or for a
// connection event's decision.
func anyDecision(r *compliance.Record, fn func(*policy.Decision) bool) bool {
	if r.Call != nil {
		for i := range r.Call.Decisions {
			if fn(&r.Call.Decisions[i]) {
				return true
			}
		}
	}
	return r.Conn != nil && r.Conn.Decision != nil && fn(r.Conn.Decision)
}

// inPrefixes reports whether the address of remote (ip:port, or an
// address) is in one of ps.
func inPrefixes(ps []netip.Prefix, remote string) bool {
	a, ok := remoteAddr(remote)
	if !ok {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func anyID(ms []idMatch, pseudonymized, party bool, stored ...string) bool {
	for _, m := range ms {
		for _, s := range stored {
			if m.matches(s, pseudonymized, party) {
				return true
			}
		}
	}
	return false
}

// recordPrinter writes matching records as a table or as JSON lines.
type recordPrinter struct {
	w      io.Writer
	jsonl  bool
	header bool // the table's header is written
}

func newRecordPrinter(w io.Writer, format string) *recordPrinter {
	return &recordPrinter{w: w, jsonl: format == "jsonl"}
}

// tableRow is the layout of a table line; widths fit a wide terminal and
// longer values push the line rather than being cut (tokens excepted).
const tableRow = "%-20s %7s %-4s %-17s %-13s %3s %-10s %-30s %-21s %s\n"

// print writes one record: its raw line in jsonl, a table row otherwise.
func (p *recordPrinter) print(raw []byte, r *compliance.Record) error {
	var err error
	if p.jsonl {
		if _, err = p.w.Write(raw); err == nil {
			_, err = p.w.Write([]byte{'\n'})
		}
	} else {
		if !p.header {
			p.header = true
			if _, err := fmt.Fprintf(p.w, tableRow, "TIME", "SEQ", "TYPE", "ZONES", "DISPOSITION", "SIP", "ROUTE", "RULE", "REMOTE", "CALLER→CALLEE"); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
		}
		fields := tableFields(r)
		for i, f := range fields {
			fields[i] = printable(f.(string))
		}
		_, err = fmt.Fprintf(p.w, tableRow, fields...)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// tableFields are the columns of r's table row.
func tableFields(r *compliance.Record) []any {
	t := r.Time.UTC().Format("2006-01-02T15:04:05Z")
	seq := strconv.FormatUint(r.Seq, 10)
	switch {
	case r.Call != nil:
		c := r.Call
		var zones []string
		remote := ""
		for _, l := range c.Legs {
			zones = append(zones, l.Zone)
			if remote == "" {
				remote = l.Remote
			}
		}
		rule := ""
		if d := decidingDecision(c.Decisions); d != nil {
			rule = d.Rule
		}
		return []any{t, seq, "call", dash(strings.Join(zones, ">")), string(c.Disposition), status(c.SIPStatus), dash(c.Route), dash(rule), dash(remote),
			shortID(c.Caller) + "→" + shortID(c.Callee)}
	case r.Conn != nil:
		ev := r.Conn
		rule := ""
		if ev.Decision != nil {
			rule = ev.Decision.Rule
		}
		// A trunk registration's route and new state (registered,
		// failed, unregistered): what an operator scans the table for.
		what := strings.TrimSpace(ev.Method + " " + ev.State)
		return []any{t, seq, "conn", dash(ev.Zone), string(ev.Event), status(ev.SIPStatus), dash(ev.Route), dash(rule), dash(ev.Remote), dash(what)}
	case r.Log != nil:
		return []any{t, seq, "log", "-", string(r.Log.Event), "-", "-", "-", "-", dash(truncate(r.Log.Detail, 72))}
	}
	return []any{t, seq, r.Type, "-", "-", "-", "-", "-", "-", "-"}
}

// decidingDecision is the decision that settled the call: the first of the
// most severe verdict (rejected, would_reject, upgraded, allowed).
func decidingDecision(ds []policy.Decision) *policy.Decision {
	rank := map[policy.Verdict]int{policy.VerdictRejected: 4, policy.VerdictWouldReject: 3, policy.VerdictUpgraded: 2, policy.VerdictAllowed: 1}
	var best *policy.Decision
	for i := range ds {
		if best == nil || rank[ds[i].Verdict] > rank[best.Verdict] {
			best = &ds[i]
		}
	}
	return best
}

// shortID shows a token by its first 8 hex digits (enough for -number);
// an identifier in clear is shown as stored.
func shortID(s string) string {
	if hexPart, ok := strings.CutPrefix(s, compliance.TokenPrefix); ok && len(hexPart) > 8 {
		return compliance.TokenPrefix + hexPart[:8]
	}
	return dash(s)
}

// printable replaces the characters a terminal would act on (controls,
// escapes) with '?': callers' identifiers, user agents and error texts
// come from the network.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func status(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
