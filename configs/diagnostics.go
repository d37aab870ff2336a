package configs

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Severity of a diagnostic.
type Severity int

const (
	// SeverityError means the configuration cannot be used.
	SeverityError Severity = iota
	// SeverityWarning flags a weak or surprising choice; the configuration
	// loads.
	SeverityWarning
)

func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// Diagnostic is one error or warning, with the source position it concerns.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	// File is the file name as given to Load or LoadBytes
	// (or "embedded:lab.hcl").
	File string
	// Line and Column are 1-based; 0 when the diagnostic has no position.
	Line, Column int
	// Snippet is the source line(s) concerned, for display.
	Snippet string

	// endLine and endColumn close the range (exclusive column), for the
	// underline Format draws.
	endLine, endColumn int
}

// String renders the diagnostic on one line:
// "FILE:LINE:COL: error: SUMMARY: DETAIL".
func (d Diagnostic) String() string {
	var b strings.Builder
	switch {
	case d.File != "" && d.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Column)
	case d.File != "":
		fmt.Fprintf(&b, "%s: ", d.File)
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	b.WriteString(oneLine(d.Summary))
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(d.Detail))
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Diagnostics is a list of diagnostics, sorted by position when it comes
// from Load or LoadBytes.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == SeverityError })
}

// Errors returns the errors only.
func (ds Diagnostics) Errors() Diagnostics { return ds.only(SeverityError) }

// Warnings returns the warnings only.
func (ds Diagnostics) Warnings() Diagnostics { return ds.only(SeverityWarning) }

func (ds Diagnostics) only(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Error joins the String form of every diagnostic with newlines, so that
// Diagnostics can be returned as an error. Use Err to get a nil error when
// there are no errors.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns the errors among ds as an error, or nil when there are none.
// Warnings are left out.
func (ds Diagnostics) Err() error {
	if errs := ds.Errors(); len(errs) > 0 {
		return errs
	}
	return nil
}

// Format writes the diagnostics in a multi-line human form: severity and
// summary, the position, the source line with the range underlined, and
// the detail. It uses no colour.
func (ds Diagnostics) Format(w io.Writer) {
	for _, d := range ds {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s\n", d.Severity, d.Summary)
		if d.File != "" && d.Line > 0 {
			fmt.Fprintf(&b, "  on %s line %d, column %d:\n", d.File, d.Line, d.Column)
		} else if d.File != "" {
			fmt.Fprintf(&b, "  in %s:\n", d.File)
		}
		if d.Snippet != "" && d.Line > 0 {
			lines := strings.Split(d.Snippet, "\n")
			width := len(fmt.Sprint(d.Line + len(lines) - 1))
			for i, l := range lines {
				fmt.Fprintf(&b, "  %*d | %s\n", width, d.Line+i, l)
			}
			if len(lines) == 1 && d.Column > 0 {
				fmt.Fprintf(&b, "  %*s | %s\n", width, "", underline(lines[0], d.Column, d.endColumn, d.endLine == d.Line))
			}
		}
		if d.Detail != "" {
			for _, l := range strings.Split(d.Detail, "\n") {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
		b.WriteString("\n")
		_, _ = io.WriteString(w, b.String())
	}
}

// underline returns the marker line for a 1-based column range of line,
// copying tabs so that the carets align under the source.
func underline(line string, col, endCol int, sameLine bool) string {
	rs := []rune(line)
	var b strings.Builder
	for i := 0; i < col-1 && i < len(rs); i++ {
		if rs[i] == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	n := 1
	if sameLine && endCol > col {
		n = endCol - col
	}
	if !sameLine {
		n = max(1, len(rs)-(col-1))
	}
	b.WriteString(strings.Repeat("^", n))
	return b.String()
}

// diagSink collects hcl diagnostics during a load and converts them at the
// end.
type diagSink struct {
	hcl.Diagnostics
}

// add appends diagnostics from hcl. gohcl follows an error in an expression
// (an unknown variable, say) with "value must be known" when it converts the
// resulting unknown value; that second error says nothing new and is dropped.
func (s *diagSink) add(ds hcl.Diagnostics) {
	for _, d := range ds {
		if d.Severity == hcl.DiagError && strings.HasSuffix(d.Detail, "value must be known") && len(ds.Errs()) > 1 {
			continue
		}
		s.Diagnostics = append(s.Diagnostics, d)
	}
}

func (s *diagSink) errorf(r hcl.Range, summary, format string, args ...any) {
	s.Diagnostics = append(s.Diagnostics, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: r.Ptr(),
	})
}

func (s *diagSink) warnf(r hcl.Range, summary, format string, args ...any) {
	s.Diagnostics = append(s.Diagnostics, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: r.Ptr(),
	})
}

// convertDiags turns hcl diagnostics into ours, with snippets taken from
// src, sorted by position (ties broken by severity and text so the order
// never depends on map iteration inside hcl).
func convertDiags(name string, src []byte, in hcl.Diagnostics) Diagnostics {
	if len(in) == 0 {
		return nil
	}
	lines := strings.Split(string(src), "\n")
	out := make(Diagnostics, 0, len(in))
	for _, hd := range in {
		d := Diagnostic{
			Severity: SeverityError,
			Summary:  lowerFirst(hd.Summary),
			Detail:   hd.Detail,
			File:     name,
		}
		if hd.Severity == hcl.DiagWarning {
			d.Severity = SeverityWarning
		}
		r := hd.Subject
		if r == nil {
			r = hd.Context
		}
		if r != nil {
			if r.Filename != "" {
				d.File = r.Filename
			}
			d.Line, d.Column = r.Start.Line, r.Start.Column
			d.endLine, d.endColumn = r.End.Line, r.End.Column
			d.Snippet = snippet(lines, r)
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b Diagnostic) int {
		// Diagnostics without a position go last.
		if za, zb := a.Line == 0, b.Line == 0; za != zb {
			if za {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Summary, b.Summary),
			cmp.Compare(a.Detail, b.Detail),
		)
	})
	return slices.CompactFunc(out, func(a, b Diagnostic) bool { return a == b })
}

const maxSnippetLines = 3

// snippet returns the source lines a range covers (at most three).
func snippet(lines []string, r *hcl.Range) string {
	first, last := r.Start.Line, r.End.Line
	if r.End.Column == 1 && last > first {
		last-- // a range ending at the start of a line does not cover it
	}
	if first < 1 || first > len(lines) {
		return ""
	}
	last = min(max(last, first), len(lines), first+maxSnippetLines-1)
	out := make([]string, 0, last-first+1)
	for _, l := range lines[first-1 : last] {
		out = append(out, strings.TrimRight(l, "\r"))
	}
	return strings.Join(out, "\n")
}

// lowerFirst lowercases hcl's capitalised summaries ("Unsupported argument")
// so that they read like ours, but leaves acronyms ("TLS floor ...") alone.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	if r2, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(r2) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
