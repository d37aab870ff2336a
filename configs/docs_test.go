package configs

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// Every argument the schema accepts has a row in docs/config.md.
func TestEveryFieldDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]any{
		"zone": zoneBlock{}, "zone › tls": tlsBlock{}, "zone › media": zoneMediaBlock{}, "zone › registrar": registrarBlock{},
		"route": routeBlock{}, "route › auth": authBlock{},
		"media": mediaBlock{}, "compliance": complianceBlock{}, "admin": adminBlock{},
		"limits": limitsBlock{}, "emergency": emergencyBlock{},
	}
	n := 0
	for block, v := range blocks {
		section := docSection(string(doc), block)
		if section == "" {
			t.Errorf("docs/config.md has no section %q", block)
			continue
		}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("hcl"), ",")
			if name == "" {
				continue // ,body and ,def_range
			}
			n++
			if !strings.Contains(section, "| `"+name+"`") {
				t.Errorf("docs/config.md section %q has no row for %q", block, name)
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d fields found; the schema types changed?", n)
	}
	if !strings.Contains(docSection(string(doc), "Top level"), "| `state_dir`") {
		t.Error("docs/config.md documents no state_dir")
	}
}

// docSection returns the text under the "## title" or "### title" heading,
// up to the next heading.
func docSection(doc, title string) string {
	for _, h := range []string{"\n## " + title + "\n", "\n### " + title + "\n"} {
		if i := strings.Index(doc, h); i >= 0 {
			rest := doc[i+len(h):]
			if j := strings.Index(rest, "\n#"); j >= 0 {
				rest = rest[:j]
			}
			return rest
		}
	}
	return ""
}
