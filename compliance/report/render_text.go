package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// textWidth is the widest line WriteText writes.
const textWidth = 100

// WriteText writes the report for a terminal: headed sections, aligned
// tables and bar charts drawn with '#', at most 100 columns wide. Statuses
// are written as words (SATISFIED, NEEDS ATTENTION, NOT APPLICABLE).
// Record-derived strings are stripped of control characters, so a hostile
// User-Agent cannot move the cursor or recolour the terminal.
func WriteText(w io.Writer, r *Report) error {
	if r == nil {
		return fmt.Errorf("write text report: no report")
	}
	bw := bufio.NewWriter(w)
	t := &textWriter{w: bw}
	t.doc(buildView(r))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// textWriter lays out a docView as text; writes go to a bufio.Writer whose
// error surfaces at Flush.
type textWriter struct {
	w *bufio.Writer
}

func (t *textWriter) line(s string) {
	t.w.WriteString(strings.TrimRight(s, " "))
	t.w.WriteByte('\n')
}

func (t *textWriter) doc(d *docView) {
	title := strings.ToUpper(d.Title)
	t.line(title)
	t.line(strings.Repeat("=", len(title)))
	t.pairs(d.Meta)
	if len(d.Ties) > 0 {
		t.line("")
		t.line("Tied to its sources:")
		// The source in full and the hash whole on a line of its own:
		// they are what a reader copies to compare with parapet verify.
		for _, tie := range d.Ties {
			t.line("  " + tie.Source)
			t.line("    " + tie.Label + " " + tie.Hash)
		}
	}
	for i, s := range d.Sections {
		t.line("")
		head := fmt.Sprintf("%d. %s", i+1, s.Title)
		t.line(head)
		under := "-"
		if s.Box {
			under = "="
		}
		t.line(strings.Repeat(under, runeLen(head)))
		for _, b := range s.Blocks {
			t.block(b)
		}
	}
}

func (t *textWriter) block(b block) {
	switch b.Kind {
	case blockText:
		for _, l := range wrap(b.Text, textWidth) {
			t.line(l)
		}
	case blockNote:
		for _, l := range wrap(b.Text, textWidth) {
			t.line(l)
		}
	case blockSub:
		t.line("")
		s := b.Text
		if b.Status != "" {
			s += "  [" + statusWord(b.Status) + "]"
		}
		for _, l := range wrap(s, textWidth) {
			t.line(l)
		}
	case blockPairs:
		t.pairs(b.Pairs)
	case blockTable:
		t.table(b.Table)
	case blockList:
		for _, it := range b.Items {
			for i, l := range wrap(it, textWidth-4) {
				if i == 0 {
					t.line("  - " + l)
				} else {
					t.line("    " + l)
				}
			}
		}
	case blockBars:
		t.bars(b.Bars)
	case blockDonuts:
		t.donuts(b.Donuts)
	}
}

func (t *textWriter) pairs(ps []pair) { t.indented(ps, 0) }

// indented writes label/value lines indented by indent columns.
func (t *textWriter) indented(ps []pair, indent int) {
	in := strings.Repeat(" ", indent)
	lw := 0
	for _, p := range ps {
		lw = max(lw, runeLen(p.Label))
	}
	lw = min(lw, 34)
	vw := textWidth - indent - lw - 2
	for _, p := range ps {
		label := p.Label
		if runeLen(label) > lw {
			label = truncate(label, lw)
		}
		for i, l := range wrap(p.Value.Text, vw) {
			if i == 0 {
				t.line(in + pad(label, lw) + "  " + l)
			} else {
				t.line(in + strings.Repeat(" ", lw+2) + l)
			}
		}
	}
}

// table writes a table whose columns fit textWidth: the widest columns
// shrink and their cells wrap.
func (t *textWriter) table(tb *table) {
	n := len(tb.Head)
	if n == 0 {
		return
	}
	widths, floors := make([]int, n), make([]int, n)
	for i, h := range tb.Head {
		widths[i] = runeLen(h)
		for _, word := range strings.Fields(h) {
			floors[i] = max(floors[i], runeLen(word))
		}
	}
	for _, row := range tb.Rows {
		for i := 0; i < n && i < len(row); i++ {
			for _, l := range strings.Split(row[i].Text, "\n") {
				widths[i] = max(widths[i], min(runeLen(l), 60))
			}
		}
	}
	sum := 2 * (n - 1)
	for _, w := range widths {
		sum += w
	}
	if sum > textWidth+textSlack {
		t.records(tb)
		return
	}
	fitWidths(widths, floors, textWidth-2*(n-1))
	t.row(tb.Head, widths, nil)
	rule := make([]string, n)
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	t.line(strings.Join(rule, "  "))
	for _, row := range tb.Rows {
		texts := make([]string, n)
		for i := 0; i < n && i < len(row); i++ {
			texts[i] = row[i].Text
		}
		t.row(texts, widths, tb.Num)
	}
}

// textSlack is how much wider than the screen a table may be and still be
// drawn as a table (its cells wrapped); a wider one is written as records.
const textSlack = 20

// records writes each row of a table too wide for a terminal as a record:
// the first column as its heading, the others as labelled lines.
func (t *textWriter) records(tb *table) {
	for i, row := range tb.Rows {
		if i > 0 {
			t.line("")
		}
		var ps []pair
		for j, c := range row {
			if j == 0 {
				first := strings.Split(c.Text, "\n")
				for k, l := range first {
					prefix := "* "
					if k > 0 {
						prefix = "  "
					}
					for _, w := range wrap(l, textWidth-2) {
						t.line(prefix + w)
						prefix = "  "
					}
				}
				continue
			}
			if j < len(tb.Head) {
				ps = append(ps, pair{Label: tb.Head[j], Value: cell{Text: c.Text}})
			}
		}
		t.indented(ps, 2)
	}
}

// fitWidths makes columns fit total when their natural widths do not: each
// keeps a floor (its header's longest word, at least 10, at most its
// natural width) and the rest of the room goes to the columns in proportion
// to what they lack, so long columns wrap and short ones stay whole.
func fitWidths(widths, floors []int, total int) {
	natural := append([]int(nil), widths...)
	sum, floorSum, need := 0, 0, 0
	for i, w := range natural {
		sum += w
		floors[i] = min(w, max(10, floors[i]))
		floorSum += floors[i]
		need += w - floors[i]
	}
	if sum <= total || need == 0 {
		return
	}
	extra := max(total-floorSum, 0)
	for i, w := range natural {
		widths[i] = floors[i] + extra*(w-floors[i])/need
		extra -= widths[i] - floors[i]
		need -= w - floors[i]
	}
}

// row writes one table row, its cells wrapped to their columns.
func (t *textWriter) row(texts []string, widths []int, num []bool) {
	cols := make([][]string, len(widths))
	height := 1
	for i := range widths {
		cols[i] = wrap(texts[i], widths[i])
		height = max(height, len(cols[i]))
	}
	for l := 0; l < height; l++ {
		parts := make([]string, len(widths))
		for i := range widths {
			s := ""
			if l < len(cols[i]) {
				s = cols[i][l]
			}
			if i < len(num) && num[i] {
				parts[i] = padLeft(s, widths[i])
			} else {
				parts[i] = pad(s, widths[i])
			}
		}
		t.line(strings.Join(parts, "  "))
	}
}

func (t *textWriter) bars(b *barChart) {
	lw, vw := 0, 0
	for _, r := range b.Rows {
		lw = max(lw, runeLen(r.Label))
		vw = max(vw, len(num(r.Value)))
	}
	lw = min(lw, 40)
	barw := min(textWidth-lw-vw-13, 40)
	for _, r := range b.Rows {
		n := int(r.Frac*float64(barw) + 0.5)
		if n == 0 && r.Value > 0 {
			n = 1
		}
		t.line(fmt.Sprintf("%s  %s  %7s  %s", pad(truncate(r.Label, lw), lw), padLeft(num(r.Value), vw), r.Pct, strings.Repeat("#", n)))
	}
}

func (t *textWriter) donuts(ds []donut) {
	lw := 0
	for _, d := range ds {
		lw = max(lw, runeLen(d.Label))
	}
	const barw = 30
	for _, d := range ds {
		n := int(d.Frac*barw + 0.5)
		if n == 0 && d.Num > 0 {
			n = 1
		}
		if n == barw && d.Num < d.Den {
			n = barw - 1
		}
		gauge := "[" + strings.Repeat("#", n) + strings.Repeat(".", barw-n) + "]"
		l := fmt.Sprintf("%s  %6s  %s", pad(d.Label, lw), d.Pct, gauge)
		if runeLen(l)+2+runeLen(d.Of) <= textWidth {
			t.line(l + "  " + d.Of)
			continue
		}
		t.line(l)
		for _, o := range wrap(d.Of, textWidth-lw-2) {
			t.line(strings.Repeat(" ", lw+2) + o)
		}
	}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func pad(s string, w int) string {
	if n := runeLen(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func padLeft(s string, w int) string {
	if n := runeLen(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// truncate shortens s to w runes, marking the cut with "~".
func truncate(s string, w int) string {
	if runeLen(s) <= w || w < 2 {
		return s
	}
	rs := []rune(s)
	return string(rs[:w-1]) + "~"
}

// wrap breaks s into lines of at most w runes: at newlines, between words,
// and inside words longer than a line (hashes).
func wrap(s string, w int) []string {
	if w < 1 {
		w = 1
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := []rune{}
		for _, word := range strings.Fields(para) {
			wr := []rune(word)
			if len(line) > 0 && len(line)+1+len(wr) <= w {
				line = append(append(line, ' '), wr...)
				continue
			}
			if len(line) > 0 {
				out = append(out, string(line))
				line = line[:0:0]
			}
			for len(wr) > w {
				out = append(out, string(wr[:w]))
				wr = wr[w:]
			}
			line = append(line, wr...)
		}
		out = append(out, string(line))
	}
	return out
}
