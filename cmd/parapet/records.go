package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

const recordsHelp = `Usage: parapet records -log FILE [-log FILE ...] [filters] [-format table|jsonl] [-follow]
       parapet records -c CONFIG [filters] ...

Print the compliance records that match every filter given (filters of one
kind, repeated, match any of their values). Without -log, -c CONFIG reads the
configured log: its rotated files still present, then the live file. Give
rotated files oldest first to read them in order.

The records command reads; it does not verify the chain: a line that is not
an intact record (torn by a crash, damaged) is skipped with a warning, but a
log whose records were removed, reordered or rewritten is printed as it is.
Use parapet verify (or parapet report) for evidence.

Times: -since and -until take RFC 3339 (2026-12-01T08:00:00Z), a date
(2026-12-01, midnight UTC) or a duration ago (24h, 90m, 7d); -since is
inclusive, -until exclusive, both against the record's time (for a call, when
it ended). -number and -call-id take a token (hmac-sha256: and 32 hex digits,
or the first 8 or more as the table shows them) or, with the pseudonymisation
key (-c or -pseudonym-key), a number or SIP Call-ID, which is hashed and never
printed.

-format jsonl prints each matching line byte for byte as stored, so each still
carries its own valid hash. -follow prints the records appended to one live
log (one -log, or -c) from now on, across rotation, until interrupted.

Exit status 0 (matches or not), 2 on usage or I/O errors.`

// recordsOptions is the parsed command line of parapet records.
type recordsOptions struct {
	logs   []string
	format string
	follow bool
	filter recordFilter
}

func cmdRecords(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return records(ctx, args, stdout, stderr)
}

// records is parapet records, ended (when following) by ctx.
func records(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseRecordsFlags(args, stderr, time.Now())
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	p := newRecordPrinter(out, opts.format)
	skipped := 0
	warn := func(file string, line int, err error) {
		skipped++
		fmt.Fprintf(stderr, "parapet: records: %s:%d: skipped: %v\n", file, line, err)
	}
	if opts.follow {
		err = followRecords(ctx, opts, p, out, warn)
	} else {
		err = scanRecords(opts, p, warn)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "parapet: records: %d %s skipped (not intact records); run parapet verify\n", skipped, plural(skipped, "line"))
	}
	if err != nil {
		return exit(2, err)
	}
	return nil
}

func scanRecords(opts *recordsOptions, p *recordPrinter, warn func(string, int, error)) error {
	for _, name := range opts.logs {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		s := compliance.NewScanner(f)
		s.Bad = func(line int, err error) { warn(name, line, err) }
		for s.Scan() {
			if opts.filter.match(s.Record()) {
				if err := p.print(s.Raw(), s.Record()); err != nil {
					f.Close()
					return err
				}
			}
		}
		f.Close()
		if err := s.Err(); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
	return nil
}

func followRecords(ctx context.Context, opts *recordsOptions, p *recordPrinter, out *bufio.Writer, warn func(string, int, error)) error {
	if _, err := os.Stat(opts.logs[0]); err != nil {
		return err
	}
	fl := &compliance.Follower{Path: opts.logs[0], Bad: warn}
	err := fl.Run(ctx, func(raw []byte, rec *compliance.Record) error {
		if !opts.filter.match(rec) {
			return nil
		}
		if err := p.print(raw, rec); err != nil {
			return err
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of -follow
	}
	return err
}

// recordFlags is the command line of parapet records as given.
type recordFlags struct {
	logs, types, zones, routes, dispositions, events, rules, verdicts, peers, controls, numbers, callIDs multiFlag

	config, keyFile, format, since, until string
	follow                                bool
}

func (rf *recordFlags) define(fs *flag.FlagSet) {
	fs.Var(&rf.logs, "log", "compliance log `file` (repeat for rotated files, oldest first)")
	fs.StringVar(&rf.config, "c", "", "config `file`: its log when -log is not given, its state directory's pseudonymisation key")
	fs.StringVar(&rf.keyFile, "pseudonym-key", "", "pseudonymisation key `file` (pseudonym.key in the state directory) to hash -number and -call-id values")
	fs.StringVar(&rf.format, "format", "table", "output `format`: table (one line per record) or jsonl (the records as stored)")
	fs.BoolVar(&rf.follow, "follow", false, "print the records appended to the live log from now on, until interrupted")
	fs.StringVar(&rf.since, "since", "", "only records at or after `time` (RFC 3339, date, or duration ago: 24h, 7d)")
	fs.StringVar(&rf.until, "until", "", "only records before `time` (RFC 3339, date, or duration ago)")
	fs.Var(&rf.types, "type", "record `type`: call, connection or log (repeatable)")
	fs.Var(&rf.zones, "zone", "`zone` of any leg of a call, or of a connection event (repeatable)")
	fs.Var(&rf.routes, "route", "`route` of a call, or of a trunk_registration event (repeatable)")
	fs.Var(&rf.dispositions, "disposition", "call `disposition`: answered, rejected, cancelled, failed, timeout, shutdown, unobserved (repeatable)")
	fs.Var(&rf.events, "event", "connection or log `event`, e.g. tls_refused, rotated (repeatable)")
	fs.Var(&rf.rules, "rule", "`rule` of any decision of a call, or of a connection event's decision (repeatable)")
	fs.Var(&rf.verdicts, "verdict", "`verdict` of any decision: rejected, would_reject, upgraded, allowed (repeatable)")
	fs.Var(&rf.peers, "peer", "`address` or CIDR of any leg's remote, or of a connection event's remote (repeatable)")
	fs.Var(&rf.controls, "control", "`control[=status]` found on any leg, e.g. '164.312(e)(1)=violated' or '(e)(1)' (repeatable)")
	fs.Var(&rf.numbers, "number", "caller or callee: a `token` or, with the key, a number (repeatable)")
	fs.Var(&rf.callIDs, "call-id", "SIP Call-ID of any leg: a `token` or, with the key, the Call-ID (repeatable)")
}

// parseRecordsFlags parses the command line; now anchors durations ago.
// Usage errors are written to stderr and returned as exit status 2.
func parseRecordsFlags(args []string, stderr io.Writer, now time.Time) (*recordsOptions, error) {
	var rf recordFlags
	fs := newFlags("records", stderr, recordsHelp)
	rf.define(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	usageErr := func(err error) error {
		fmt.Fprintf(stderr, "parapet records: %v\nRun \"parapet records -h\" for the flags.\n", err)
		return exit(2, nil)
	}
	opts := &recordsOptions{logs: rf.logs, format: rf.format, follow: rf.follow}
	if opts.format != "table" && opts.format != "jsonl" {
		return nil, usageErr(fmt.Errorf("-format %q: want table or jsonl", opts.format))
	}
	keyPath, fromConfig := rf.keyFile, false
	if rf.config != "" {
		cfg, err := readConfigFor(rf.config, stderr)
		if err != nil {
			return nil, err
		}
		if keyPath == "" {
			keyPath, fromConfig = filepath.Join(cfg.StateDir, "pseudonym.key"), true
		}
		if len(opts.logs) == 0 {
			if opts.logs, err = configLogs(cfg.Compliance.Log, opts.follow); err != nil {
				return nil, exit(2, err)
			}
		}
	}
	switch {
	case len(opts.logs) == 0:
		return nil, usageErr(errors.New("give -log FILE, or -c CONFIG for the log it configures"))
	case opts.follow && len(opts.logs) != 1:
		return nil, usageErr(errors.New("-follow follows one live log: give one -log (the live file)"))
	}
	if err := rf.filter(&opts.filter, now); err != nil {
		return nil, usageErr(err)
	}
	p, err := loadPseudonymizer(&rf, keyPath, fromConfig, stderr)
	if err != nil {
		return nil, exit(2, err)
	}
	f := &opts.filter
	if f.numbers, err = parseIDs("-number", rf.numbers, p, (*compliance.Pseudonymizer).Token); err == nil {
		f.callIDs, err = parseIDs("-call-id", rf.callIDs, p, (*compliance.Pseudonymizer).CallID)
	}
	if err != nil {
		return nil, usageErr(err)
	}
	return opts, nil
}

// configLogs is what a configuration's log means to parapet records: the
// live file to follow, or every file of its chain, oldest first.
func configLogs(log string, follow bool) ([]string, error) {
	if follow {
		return []string{log}, nil
	}
	return compliance.ChainFiles(log)
}

// filter fills f from the filter flags other than -number and -call-id.
func (rf *recordFlags) filter(f *recordFilter, now time.Time) error {
	var err error
	if f.since, err = parseWhen(rf.since, now); err != nil {
		return fmt.Errorf("-since: %w", err)
	}
	if f.until, err = parseWhen(rf.until, now); err != nil {
		return fmt.Errorf("-until: %w", err)
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.since.Before(f.until) {
		return fmt.Errorf("-since %s is not before -until %s", f.since.Format(time.RFC3339), f.until.Format(time.RFC3339))
	}
	if f.types, err = oneOf("-type", rf.types, compliance.TypeCall, compliance.TypeConnection, compliance.TypeLog); err != nil {
		return err
	}
	if f.dispositions, err = oneOf("-disposition", rf.dispositions, compliance.DispositionAnswered, compliance.DispositionRejected,
		compliance.DispositionCancelled, compliance.DispositionFailed, compliance.DispositionTimeout,
		compliance.DispositionShutdown, compliance.DispositionUnobserved); err != nil {
		return err
	}
	if f.verdicts, err = oneOf("-verdict", rf.verdicts, string(policy.VerdictRejected), string(policy.VerdictWouldReject),
		string(policy.VerdictUpgraded), string(policy.VerdictAllowed)); err != nil {
		return err
	}
	if f.peers, err = parsePeers(rf.peers); err != nil {
		return err
	}
	if f.controls, err = parseControls(rf.controls); err != nil {
		return err
	}
	f.zones, f.routes, f.events, f.rules = set(rf.zones), set(rf.routes), set(rf.events), set(rf.rules)
	return nil
}

// loadPseudonymizer returns the Pseudonymizer that hashes the -number and
// -call-id values that are not tokens, or nil when there are none or no key:
// those values then match only records written in clear (a note says so). A
// key named by -pseudonym-key must load; one only implied by -c may be
// missing (a site that never pseudonymised).
func loadPseudonymizer(rf *recordFlags, keyPath string, fromConfig bool, stderr io.Writer) (*compliance.Pseudonymizer, error) {
	if !hasRaw(rf.numbers) && !hasRaw(rf.callIDs) {
		return nil, nil
	}
	if keyPath != "" {
		key, err := compliance.LoadKey(keyPath)
		switch {
		case err == nil:
			return compliance.NewPseudonymizer(key), nil
		case !fromConfig || !errors.Is(err, iofs.ErrNotExist):
			return nil, err
		}
	}
	fmt.Fprintln(stderr, "parapet records: note: without the pseudonymisation key (-c or -pseudonym-key), a -number or -call-id that is not a token matches only records written without pseudonymisation")
	return nil, nil
}

// parseWhen parses a -since or -until value: RFC 3339, a date (midnight
// UTC), or a duration before now (Go syntax, or whole days: 7d). Empty is
// the zero time (no bound).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			if n > 100*366 {
				return time.Time{}, fmt.Errorf("%q is too long ago", s)
			}
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-12-01T08:00:00Z), a date (2026-12-01, UTC) or a duration ago (24h, 7d)", s)
	}
	return now.Add(-d), nil
}

// oneOf checks that every value is one of allowed and returns them as a set.
func oneOf[T ~string](flagName string, values []string, allowed ...T) (map[string]bool, error) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	for _, v := range values {
		if !contains(names, v) {
			return nil, fmt.Errorf("%s %q: want one of %s", flagName, v, strings.Join(names, ", "))
		}
	}
	return set(values), nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// set returns values as a set, nil when there are none (no filter).
func set(values []string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// parsePeers parses addresses (a one-address prefix) and CIDR prefixes.
func parsePeers(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("-peer %q: not an address or CIDR prefix", v)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("-peer %q: not an address or CIDR prefix", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// controlMatch is one -control value.
type controlMatch struct {
	control policy.Control
	status  policy.FindingStatus // "" matches any
}

func parseControls(values []string) ([]controlMatch, error) {
	var out []controlMatch
	for _, v := range values {
		id, status, hasStatus := strings.Cut(v, "=")
		c, ok := findControl(id)
		if !ok {
			ids := make([]string, len(policy.Controls))
			for i, c := range policy.Controls {
				ids[i] = string(c)
			}
			return nil, fmt.Errorf("-control %q: unknown control (want one of %s, optionally =STATUS)", v, strings.Join(ids, ", "))
		}
		m := controlMatch{control: c}
		if hasStatus {
			switch s := policy.FindingStatus(status); s {
			case policy.StatusSatisfied, policy.StatusViolated, policy.StatusNotRequired, policy.StatusNotApplicable:
				m.status = s
			default:
				return nil, fmt.Errorf("-control %q: unknown status %q (want satisfied, violated, not_required or not_applicable)", v, status)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// findControl accepts a control's full ID or the part after "164.312".
func findControl(id string) (policy.Control, bool) {
	id = strings.TrimSpace(id)
	for _, c := range policy.Controls {
		if string(c) == id || string(c) == "164.312"+id {
			return c, true
		}
	}
	return "", false
}

// idMatch is one -number or -call-id value: a token (or the start of one,
// as the table shows it) for pseudonymised records, the value itself for
// records written in clear.
type idMatch struct {
	token string // "hmac-sha256:" and 8 to 32 hex digits; "" when unknown
	clear string // the value as given; "" when a token was given
}

// hasRaw reports whether any value is not a token.
func hasRaw(values []string) bool {
	for _, v := range values {
		if !strings.HasPrefix(v, compliance.TokenPrefix) {
			return true
		}
	}
	return false
}

// parseIDs turns -number or -call-id values into matches; values that are
// not tokens are hashed with p when it is set. Error messages never repeat a
// value that is not a token.
func parseIDs(flagName string, values []string, p *compliance.Pseudonymizer, hash func(*compliance.Pseudonymizer, string) string) ([]idMatch, error) {
	var out []idMatch
	for _, v := range values {
		if hexPart, ok := strings.CutPrefix(v, compliance.TokenPrefix); ok {
			if _, err := hex.DecodeString(hexPart); err != nil || len(hexPart) < 8 || len(hexPart) > 32 {
				return nil, fmt.Errorf("%s %q: a token is %s followed by 8 to 32 lowercase hex digits", flagName, v, compliance.TokenPrefix)
			}
			out = append(out, idMatch{token: strings.ToLower(v)})
			continue
		}
		if strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%s: empty value", flagName)
		}
		m := idMatch{clear: v}
		if p != nil {
			m.token = hash(p, v)
		}
		out = append(out, m)
	}
	return out, nil
}

// sameParty compares two identifiers the way pseudonymisation does
// (telephone numbers without their visual separators): under one key, two
// tokens are equal exactly when the normalised identifiers are.
var sameParty = func() func(a, b string) bool {
	p := compliance.NewPseudonymizer(make([]byte, compliance.KeySize))
	return func(a, b string) bool { return a != "" && p.Token(a) == p.Token(b) }
}()

func (m idMatch) matches(stored string, pseudonymized, party bool) bool {
	if stored == "" {
		return false
	}
	if pseudonymized {
		return m.token != "" && strings.HasPrefix(stored, m.token)
	}
	if m.clear == "" {
		return false
	}
	if party {
		return sameParty(m.clear, stored)
	}
	return m.clear == stored
}
