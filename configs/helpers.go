package configs

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// scope gives the positions inside one decoded block body, so that
// conversion errors point at the attribute, or at the list element, they
// concern.
type scope struct {
	attrs   hclsyntax.Attributes
	def     hcl.Range // the block header, e.g. `zone "pbx"`
	missing hcl.Range // where hcl reports a missing argument
	diags   hcl.Diagnostics
}

// newScope wraps a block body and the diagnostics gohcl returned when
// decoding it.
func newScope(body hcl.Body, def hcl.Range, diags hcl.Diagnostics) *scope {
	s := &scope{def: def, missing: def, diags: diags}
	if sb, ok := body.(*hclsyntax.Body); ok {
		s.attrs = sb.Attributes
		s.missing = sb.MissingItemRange()
	}
	return s
}

// has reports whether the attribute is written in the body.
func (s *scope) has(name string) bool { return s.attrs[name] != nil }

// ok reports whether the attribute is written and gohcl decoded it without
// error, so that its value can be checked further without cascading errors.
func (s *scope) ok(name string) bool {
	a := s.attrs[name]
	if a == nil {
		return false
	}
	for _, d := range s.diags {
		if d.Severity == hcl.DiagError && d.Subject != nil &&
			d.Subject.Filename == a.SrcRange.Filename && a.SrcRange.ContainsOffset(d.Subject.Start.Byte) {
			return false
		}
	}
	return true
}

// value is the range of the attribute's value, or the block header when
// the attribute is absent.
func (s *scope) value(name string) hcl.Range {
	if a := s.attrs[name]; a != nil {
		return a.Expr.Range()
	}
	return s.def
}

// elem is the range of element i of a list attribute, or of the whole value
// when the list is not written literally.
func (s *scope) elem(name string, i int) hcl.Range {
	a := s.attrs[name]
	if a == nil {
		return s.def
	}
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() || i < 0 || i >= len(exprs) {
		return a.Expr.Range()
	}
	return exprs[i].Range()
}

// at returns the first range in rs that is not empty (a zero hcl.Range has
// an empty file name).
func at(rs ...hcl.Range) hcl.Range {
	for _, r := range rs {
		if r.Filename != "" {
			return r
		}
	}
	return hcl.Range{}
}

// where renders a range as "FILE:LINE" for "previous declaration at ..."
// details.
func where(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// sentence turns an error into a diagnostic detail: first letter upper
// case, final period.
func sentence(err error) string {
	s := err.Error()
	r, n := utf8.DecodeRuneInString(s)
	if n > 0 {
		s = string(unicode.ToUpper(r)) + s[n:]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

// suggest returns ` Did you mean "x"?` for the candidate closest to given,
// or "" when none is close.
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein(given, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// isDNSName reports whether s is a syntactically valid DNS host name (a
// trailing dot is allowed). A name made only of digits and dots is not: it
// is a malformed IPv4 address.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	numeric := true
	for _, label := range strings.Split(s, ".") {
		if !dnsLabel.MatchString(label) {
			return false
		}
		if _, err := strconv.Atoi(label); err != nil {
			numeric = false
		}
	}
	return !numeric
}

// checkHost accepts a DNS name or an IP literal (IPv6 without brackets).
func checkHost(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if _, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return fmt.Errorf("write the IPv6 address %s without brackets", s[1:len(s)-1])
		}
	}
	if !isDNSName(s) {
		return fmt.Errorf("%q is neither an IP address nor a valid host name", s)
	}
	return nil
}

// parsePort parses a decimal port in 1..65535.
func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range (1-65535)", p)
	}
	return p, nil
}

var zoneNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
