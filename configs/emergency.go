package configs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/parapet-sbc/parapet/topology"
)

// emergencyBlock is the HCL form of the emergency block.
type emergencyBlock struct {
	Numbers []string `hcl:"numbers"`
}

// dialStringRE is an emergency number once DialString has cleaned it:
// digits, * and #, at most 15 (E.164's length).
var dialStringRE = regexp.MustCompile(`^[0-9*#]{1,15}$`)

// emergency reads the emergency block: its numbers, cleaned as calls are
// compared (topology.DialString), each once.
func (l *loader) emergency(b *hcl.Block) topology.Emergency {
	var eb emergencyBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &eb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	var e topology.Emergency
	if !s.ok("numbers") {
		return e
	}
	if len(eb.Numbers) == 0 {
		l.errorf(s.value("numbers"), "no emergency numbers",
			`numbers must list at least one number, such as ["911", "933"]; omit the emergency block for none.`)
		return e
	}
	for i, raw := range eb.Numbers {
		n := topology.DialString(raw)
		if !dialStringRE.MatchString(n) {
			l.errorf(s.elem("numbers", i), "invalid emergency number",
				"Emergency number %q must be 1 to 15 digits (* and # allowed), as callers dial it.", raw)
			continue
		}
		if !slices.Contains(e.Numbers, n) {
			e.Numbers = append(e.Numbers, n)
		}
	}
	return e
}

// emergencyRouted warns about an emergency number that no route matches:
// calls to it would get 404.
func (l *loader) emergencyRouted(cfg *Config, at hcl.Range) {
	for _, n := range cfg.Emergency.Numbers {
		routed := slices.ContainsFunc(cfg.Routes, func(r topology.Route) bool {
			return r.Match == nil || r.Match.MatchString(n) || r.Match.MatchString("+"+n)
		})
		if !routed {
			l.warnf(at, fmt.Sprintf("emergency number %q has no route", n),
				"No route matches %q, so a call to it gets 404; add a route for it before the others, such as one with match = \"%s\" to the carrier.", n, hclRegexp(`^\+?`+regexp.QuoteMeta(n)+`$`))
		}
	}
}

// hclRegexp writes a regular expression as an HCL string holds it: each
// backslash doubled.
func hclRegexp(re string) string { return strings.ReplaceAll(re, `\`, `\\`) }
