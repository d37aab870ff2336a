package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

//go:embed report.html.tmpl
var htmlSource string

// Geometry of the inline SVG charts, in SVG user units.
const (
	svgRowH    = 26  // one bar chart row
	svgBarX    = 330 // where bars start (labels are to the left)
	svgBarMaxW = 420 // the longest bar
	svgDonutR  = 48  // the ring's radius
)

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"inc":         func(i int) int { return i + 1 },
	"statusWord":  statusWord,
	"statusClass": statusClass,
	"num":         func(v int) string { return num(v) },
	"short":       truncate,
	"numCol": func(t *table, i int) bool {
		return i < len(t.Num) && t.Num[i]
	},
	"cellClass": cellClass,
	"sectionClass": func(s section) string {
		switch {
		case s.Break && s.Box:
			return "break box"
		case s.Break:
			return "break"
		case s.Box:
			return "box"
		}
		return ""
	},
	"barX":       func() int { return svgBarX },
	"barsHeight": func(b *barChart) int { return len(b.Rows)*svgRowH + 4 },
	"barY":       func(i int) int { return i*svgRowH + 4 },
	"textY":      func(i int) int { return i*svgRowH + 18 },
	"barW":       barWidth,
	"valX": func(f float64, v int) string {
		w, _ := strconv.ParseFloat(barWidth(f, v), 64)
		return fmtFloat(svgBarX + w + 8)
	},
	"donutR": func() int { return svgDonutR },
	"dash": func(f float64) string {
		c := 2 * math.Pi * svgDonutR
		return fmtFloat(f*c) + " " + fmtFloat(c)
	},
}).Parse(htmlSource))

// cellClass is the class attribute of a table cell ("" for none).
func cellClass(c cell) string {
	var cs []string
	if c.Num {
		cs = append(cs, "num")
	}
	if c.Mono {
		cs = append(cs, "mono")
	}
	return strings.Join(cs, " ")
}

// barWidth is a bar's length: at least 2 units when its value is not 0, so
// a small count is still seen.
func barWidth(f float64, v int) string {
	w := f * svgBarMaxW
	if v > 0 && w < 2 {
		w = 2
	}
	return fmtFloat(w)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// htmlData is what the template renders.
type htmlData struct {
	Doc       *docView
	Generated string
	Generator string
}

// WriteHTML writes the report as one self-contained HTML file: inline CSS
// and inline SVG charts, no script, no fonts or images fetched, readable when
// printed (big sections start on a new page, no dark backgrounds). Every
// string from the records goes through html/template's contextual escaping.
func WriteHTML(w io.Writer, r *Report) error {
	if r == nil {
		return fmt.Errorf("write html report: no report")
	}
	data := htmlData{Doc: buildView(r), Generated: fmtTime(r.Generated), Generator: orDash(r.Generator)}
	if err := htmlTemplate.Execute(w, data); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
