package report

import (
	"fmt"
	"io"
	"strings"

	"codeberg.org/go-pdf/fpdf"
)

// Page sizes WritePDF accepts.
const (
	PageA4     = "A4"
	PageLetter = "Letter"
)

// Layout of the PDF, in millimetres and points.
const (
	pdfMarginX   = 14.0
	pdfMarginTop = 16.0
	pdfMarginBot = 20.0 // room for the footer
	pdfLineH     = 4.2  // a line of body text
	pdfCellPad   = 1.3  // inside table cells, vertically
	pdfBody      = 9.0  // body font size
	pdfSmall     = 8.0  // tables
	pdfMaxLines  = 40   // the most lines a table cell shows
)

type rgb struct{ r, g, b int }

// Colours: text and a light tint per class, so that printing wastes no
// toner and grey-scale copies still show the word.
var (
	pdfInk    = rgb{31, 41, 55}
	pdfNavy   = rgb{31, 59, 92}
	pdfGrey   = rgb{90, 98, 110}
	pdfRule   = rgb{209, 213, 219}
	pdfHead   = rgb{241, 245, 249}
	pdfBar    = rgb{59, 110, 168}
	pdfTrack  = rgb{229, 231, 235}
	pdfText   = map[string]rgb{classOK: {20, 83, 45}, classWarn: {120, 53, 15}, classBad: {127, 29, 29}, classNA: {55, 65, 81}}
	pdfTint   = map[string]rgb{classOK: {220, 252, 231}, classWarn: {254, 243, 199}, classBad: {254, 226, 226}, classNA: {243, 244, 246}}
	pdfStroke = map[string]rgb{classOK: {22, 163, 74}, classWarn: {217, 119, 6}, classBad: {220, 38, 38}, classNA: {156, 163, 175}}
)

// WritePDF writes the report as a PDF on A4 or Letter pages (page is
// "A4" or "Letter", any case), with the same content as WriteHTML: the
// controls with their status as words on coloured tints, bar and ring
// charts drawn as vector graphics, tables that wrap their cells and repeat
// their header on each page, and a footer on every page with "page N of M"
// and the last hash of each source, shortened (the full hashes are in the
// sources section). Text is set in the PDF core fonts (Latin-1): other
// characters are shown as '.'.
func WritePDF(w io.Writer, r *Report, page string) error {
	if r == nil {
		return fmt.Errorf("write pdf report: no report")
	}
	size, err := pageSize(page)
	if err != nil {
		return fmt.Errorf("write pdf report: %w", err)
	}
	p := newPDFWriter(size, r)
	p.doc(buildView(r))
	if err := p.f.Error(); err != nil {
		return fmt.Errorf("write pdf report: %w", err)
	}
	if err := p.f.Output(w); err != nil {
		return fmt.Errorf("write pdf report: %w", err)
	}
	return nil
}

func pageSize(page string) (string, error) {
	switch {
	case strings.EqualFold(page, PageA4):
		return PageA4, nil
	case strings.EqualFold(page, PageLetter):
		return PageLetter, nil
	}
	return "", fmt.Errorf("page size %q: want %s or %s", page, PageA4, PageLetter)
}

// pdfWriter lays out a docView with fpdf.
type pdfWriter struct {
	f     *fpdf.Fpdf
	tr    func(string) string
	width float64 // usable width
	pageH float64
	ties  string
}

func newPDFWriter(size string, r *Report) *pdfWriter {
	f := fpdf.New("P", "mm", size, "")
	p := &pdfWriter{f: f, tr: f.UnicodeTranslatorFromDescriptor("")}
	pw, ph := f.GetPageSize()
	p.width, p.pageH = pw-2*pdfMarginX, ph
	f.SetMargins(pdfMarginX, pdfMarginTop, pdfMarginX)
	f.SetAutoPageBreak(true, pdfMarginBot)
	f.SetCellMargin(1.2)
	f.AliasNbPages("{nb}")
	f.SetCatalogSort(true)
	f.SetCreationDate(r.Generated)
	f.SetModificationDate(r.Generated)
	f.SetTitle("parapet compliance report", true)
	f.SetCreator(clean(r.Generator), true)
	f.SetSubject(periodText(r.Period), true)

	var ties []string
	for _, t := range buildView(r).Ties {
		ties = append(ties, fmt.Sprintf("%s %s %s", t.Source, t.Label, shortHash(t.Hash)))
	}
	if len(ties) == 0 {
		p.ties = "no source verified"
	} else {
		p.ties = "Tied to: " + strings.Join(ties, "; ")
	}
	gen := "generated " + fmtTime(r.Generated) + " by " + orDash(r.Generator)
	f.SetHeaderFunc(func() {
		if f.PageNo() == 1 {
			return
		}
		f.SetY(8)
		p.font("", 7.5, pdfGrey)
		f.CellFormat(0, 4, p.tr("parapet compliance report, "+periodText(r.Period)), "", 1, "L", false, 0, "")
		f.SetY(pdfMarginTop)
	})
	f.SetFooterFunc(func() {
		f.SetY(-pdfMarginBot + 6)
		p.draw(pdfRule)
		f.SetLineWidth(0.2)
		f.Line(pdfMarginX, f.GetY(), pdfMarginX+p.width, f.GetY())
		f.Ln(1)
		p.font("", 7, pdfGrey)
		f.CellFormat(0, 3.5, p.fit(p.ties, p.width), "", 1, "L", false, 0, "")
		pageText := fmt.Sprintf("page %d of {nb}", f.PageNo())
		f.CellFormat(p.width-30, 3.5, p.fit(gen, p.width-30), "", 0, "L", false, 0, "")
		f.CellFormat(30, 3.5, pageText, "", 1, "R", false, 0, "")
	})
	return p
}

// font sets the font family ("" Helvetica, "mono" Courier), style, size and
// colour in one call.
func (p *pdfWriter) font(style string, size float64, c rgb) {
	family := "Helvetica"
	if strings.Contains(style, "M") {
		family = "Courier"
		style = strings.ReplaceAll(style, "M", "")
	}
	p.f.SetFont(family, style, size)
	p.f.SetTextColor(c.r, c.g, c.b)
}

func (p *pdfWriter) fill(c rgb) { p.f.SetFillColor(c.r, c.g, c.b) }
func (p *pdfWriter) draw(c rgb) { p.f.SetDrawColor(c.r, c.g, c.b) }

// fit translates s to the font's code page and shortens it with "..." to
// fit w millimetres in the current font.
func (p *pdfWriter) fit(s string, w float64) string {
	t := p.tr(s)
	if p.f.GetStringWidth(t) <= w-2.4 {
		return t
	}
	for len(t) > 0 && p.f.GetStringWidth(t+"...") > w-2.4 {
		t = t[:len(t)-1]
	}
	return t + "..."
}

// left is the current left margin (the summary box indents it).
func (p *pdfWriter) left() float64 {
	l, _, _, _ := p.f.GetMargins()
	return l
}

// bottom is the y below which nothing but the footer goes.
func (p *pdfWriter) bottom() float64 { return p.pageH - pdfMarginBot }

// room starts a new page unless h millimetres remain on this one.
func (p *pdfWriter) room(h float64) {
	if p.f.GetY()+h > p.bottom() {
		p.f.AddPage()
	}
}

func (p *pdfWriter) doc(d *docView) {
	f := p.f
	f.AddPage()
	p.font("B", 20, pdfNavy)
	f.CellFormat(0, 10, p.tr(d.Title), "", 1, "L", false, 0, "")
	f.Ln(2)
	p.pairs(d.Meta, 32)
	if len(d.Ties) > 0 {
		f.Ln(2)
		p.font("B", pdfBody, pdfInk)
		f.CellFormat(0, 5, "Tied to its sources", "", 1, "L", false, 0, "")
		for _, t := range d.Ties {
			p.font("", pdfSmall, pdfInk)
			f.CellFormat(0, 4, p.fit(t.Source+", "+t.Label+":", p.width), "", 1, "L", false, 0, "")
			p.font("M", 7.5, pdfInk)
			f.MultiCell(0, 3.6, p.tr(t.Hash), "", "L", false)
		}
	}
	for i, s := range d.Sections {
		p.section(i+1, s)
	}
}

func (p *pdfWriter) section(n int, s section) {
	f := p.f
	if s.Break && f.GetY() > pdfMarginTop+1 {
		f.AddPage()
	} else {
		f.Ln(5)
		p.room(30)
	}
	title := fmt.Sprintf("%d. %s", n, s.Title)
	f.Bookmark(title, 0, -1)
	top, page := f.GetY(), f.PageNo()
	if s.Box {
		f.SetLeftMargin(pdfMarginX + 3)
		f.SetRightMargin(pdfMarginX + 3)
		p.width -= 6
		f.SetXY(pdfMarginX+3, top+2)
	}
	p.font("B", 14, pdfNavy)
	f.CellFormat(0, 8, p.tr(title), "", 1, "L", false, 0, "")
	p.draw(pdfNavy)
	f.SetLineWidth(0.5)
	f.Line(f.GetX(), f.GetY(), f.GetX()+p.width, f.GetY())
	f.Ln(2.5)
	for _, b := range s.Blocks {
		p.block(b)
	}
	if s.Box {
		f.SetLeftMargin(pdfMarginX)
		f.SetRightMargin(pdfMarginX)
		p.width += 6
		if f.PageNo() == page {
			p.draw(pdfNavy)
			f.SetLineWidth(0.6)
			f.Rect(pdfMarginX, top, p.width, f.GetY()-top+1, "D")
		}
		f.SetXY(pdfMarginX, f.GetY()+2)
	}
}

func (p *pdfWriter) block(b block) {
	f := p.f
	switch b.Kind {
	case blockText:
		p.font("", pdfBody, pdfInk)
		f.MultiCell(0, pdfLineH, p.tr(b.Text), "", "L", false)
		f.Ln(1)
	case blockNote:
		p.font("I", pdfBody, pdfGrey)
		f.MultiCell(0, pdfLineH, p.tr(b.Text), "", "L", false)
		f.Ln(1)
	case blockSub:
		p.sub(b)
	case blockPairs:
		p.pairs(b.Pairs, 52)
	case blockTable:
		p.table(b.Table)
	case blockList:
		p.list(b.Items)
	case blockBars:
		p.bars(b.Bars)
	case blockDonuts:
		p.donuts(b.Donuts)
	}
}

func (p *pdfWriter) sub(b block) {
	f := p.f
	f.Ln(2)
	p.room(32)
	p.font("B", 11, pdfInk)
	word := ""
	if b.Status != "" {
		word = statusWord(b.Status)
	}
	badgeW := 0.0
	if word != "" {
		p.font("B", pdfSmall, pdfInk)
		badgeW = f.GetStringWidth(word) + 5
		p.font("B", 11, pdfInk)
	}
	f.CellFormat(p.width-badgeW-2, 6, p.fit(b.Text, p.width-badgeW-2), "", 0, "L", false, 0, "")
	if word != "" {
		p.badge(word, statusClass(b.Status), badgeW, 6)
	}
	f.Ln(7)
}

// badge writes a word on a tinted, framed cell at the current position.
func (p *pdfWriter) badge(word, class string, w, h float64) {
	p.fill(pdfTint[class])
	p.draw(pdfStroke[class])
	p.f.SetLineWidth(0.3)
	p.font("B", pdfSmall, pdfText[class])
	p.f.CellFormat(w, h, p.tr(word), "1", 0, "C", true, 0, "")
}

// cellFont sets the font of a table cell or pair value.
func (p *pdfWriter) cellFont(c cell, size float64) {
	style := ""
	if c.Mono {
		// Courier is wide: a smaller size holds a hash on fewer lines.
		style, size = "M", size*0.9
	}
	ink := pdfInk
	if c.Class != "" {
		style += "B"
		ink = pdfText[c.Class]
	}
	p.font(style, size, ink)
}

// lines splits a cell's text into lines that fit w in its font, at most
// pdfMaxLines of them.
func (p *pdfWriter) lines(c cell, w, size float64) []string {
	p.cellFont(c, size)
	var out []string
	for _, para := range strings.Split(c.Text, "\n") {
		t := p.tr(para)
		if t == "" {
			out = append(out, "")
			continue
		}
		for _, l := range p.f.SplitLines([]byte(t), w) {
			out = append(out, string(l))
		}
	}
	if len(out) > pdfMaxLines {
		out = append(out[:pdfMaxLines-1], "...")
	}
	return out
}

func (p *pdfWriter) pairs(ps []pair, labelW float64) {
	f := p.f
	x := f.GetX()
	valW := p.width - labelW
	for _, pr := range ps {
		ls := p.lines(pr.Value, valW, pdfBody)
		h := float64(len(ls))*pdfLineH + 0.8
		p.room(h)
		y := f.GetY()
		p.font("B", pdfBody, pdfGrey)
		f.SetXY(x, y)
		f.CellFormat(labelW, pdfLineH, p.fit(pr.Label, labelW), "", 0, "L", false, 0, "")
		if pr.Value.Class != "" {
			p.fill(pdfTint[pr.Value.Class])
			f.Rect(x+labelW, y, maxLineW(p, ls, pr.Value)+2.6, h-0.8, "F")
		}
		p.cellFont(pr.Value, pdfBody)
		for i, l := range ls {
			f.SetXY(x+labelW, y+float64(i)*pdfLineH)
			f.CellFormat(valW, pdfLineH, l, "", 0, "L", false, 0, "")
		}
		f.SetXY(x, y+h)
	}
	f.Ln(1.5)
}

// maxLineW is the width of the longest of a cell's lines in its font.
func maxLineW(p *pdfWriter, ls []string, c cell) float64 {
	p.cellFont(c, pdfBody)
	w := 0.0
	for _, l := range ls {
		w = max(w, p.f.GetStringWidth(l))
	}
	return w
}

// table draws a table whose rows wrap their cells; a row that does not fit
// goes to the next page, under a repeated header.
func (p *pdfWriter) table(t *table) {
	f := p.f
	n := len(t.Head)
	if n == 0 {
		return
	}
	widths := p.columns(t)
	lh := 3.6
	header := func() {
		ls := make([][]string, n)
		rows := 1
		for i, h := range t.Head {
			ls[i] = p.lines(cell{Text: h}, widths[i], pdfSmall)
			rows = max(rows, len(ls[i]))
		}
		p.row(ls, widths, make([]cell, n), t.Num, float64(rows)*lh+2*pdfCellPad, lh, true)
	}
	// Keep the header with at least the first row.
	first := 0.0
	if len(t.Rows) > 0 {
		first, _ = p.rowHeight(t.Rows[0], widths, lh)
	}
	p.room(12 + first)
	header()
	for _, r := range t.Rows {
		h, ls := p.rowHeight(r, widths, lh)
		if f.GetY()+h > p.bottom() {
			f.AddPage()
			header()
		}
		cells := make([]cell, n)
		copy(cells, r)
		p.row(ls, widths, cells, t.Num, h, lh, false)
	}
	f.Ln(2.5)
}

// columns shares the page width among a table's columns by weight.
func (p *pdfWriter) columns(t *table) []float64 {
	n := len(t.Head)
	total := 0.0
	for i := range n {
		total += weight(t, i)
	}
	ws := make([]float64, n)
	for i := range n {
		ws[i] = p.width * weight(t, i) / total
	}
	return ws
}

func weight(t *table, i int) float64 {
	if i < len(t.Weights) && t.Weights[i] > 0 {
		return t.Weights[i]
	}
	return 1
}

// rowHeight splits a row's cells and measures it; a row never grows beyond
// a page.
func (p *pdfWriter) rowHeight(r []cell, widths []float64, lh float64) (float64, [][]string) {
	ls := make([][]string, len(widths))
	rows := 1
	maxRows := int((p.bottom() - pdfMarginTop - 20) / lh)
	for i := range widths {
		if i < len(r) {
			ls[i] = p.lines(r[i], widths[i], pdfSmall)
		}
		if len(ls[i]) > maxRows {
			ls[i] = append(ls[i][:maxRows-1], "...")
		}
		rows = max(rows, len(ls[i]))
	}
	return float64(rows)*lh + 2*pdfCellPad, ls
}

// row draws one table row of height h at the current position.
func (p *pdfWriter) row(ls [][]string, widths []float64, cells []cell, num []bool, h, lh float64, head bool) {
	f := p.f
	x, y := p.left(), f.GetY()
	f.SetLineWidth(0.2)
	for i, w := range widths {
		c := cells[i]
		style := "D"
		switch {
		case head:
			p.fill(pdfHead)
			style = "FD"
		case c.Class != "":
			p.fill(pdfTint[c.Class])
			style = "FD"
		}
		p.draw(pdfRule)
		f.Rect(x, y, w, h, style)
		if head {
			p.font("B", pdfSmall, pdfInk)
		} else {
			p.cellFont(c, pdfSmall)
		}
		align := "L"
		if i < len(num) && num[i] {
			align = "R"
		}
		for j, l := range ls[i] {
			f.SetXY(x, y+pdfCellPad+float64(j)*lh)
			f.CellFormat(w, lh, l, "", 0, align, false, 0, "")
		}
		x += w
	}
	f.SetXY(p.left(), y+h)
}

func (p *pdfWriter) list(items []string) {
	f := p.f
	p.font("", pdfBody, pdfInk)
	for _, it := range items {
		ls := f.SplitLines([]byte(p.tr(it)), p.width-6)
		p.room(float64(len(ls)) * pdfLineH)
		y := f.GetY()
		f.SetXY(p.left()+1.5, y)
		f.CellFormat(4, pdfLineH, "-", "", 0, "L", false, 0, "")
		for i, l := range ls {
			f.SetXY(p.left()+5.5, y+float64(i)*pdfLineH)
			f.CellFormat(p.width-6, pdfLineH, string(l), "", 0, "L", false, 0, "")
		}
		f.SetXY(p.left(), y+float64(len(ls))*pdfLineH)
	}
	f.Ln(1.5)
}

// bars draws a horizontal bar chart: labels on the left, a bar per row and
// its count and share written after it.
func (p *pdfWriter) bars(b *barChart) {
	f := p.f
	const rowH = 5.5
	labelW := min(62.0, p.width*0.36)
	barMax := p.width - labelW - 36
	h := float64(len(b.Rows))*rowH + 2
	if h < p.bottom()-pdfMarginTop {
		p.room(h)
	}
	top := f.GetY()
	x0 := p.left() + labelW
	for i, r := range b.Rows {
		if f.GetY()+rowH > p.bottom() {
			f.AddPage()
			top = f.GetY()
		}
		y := f.GetY()
		p.font("", pdfSmall, pdfInk)
		f.SetXY(p.left(), y)
		f.CellFormat(labelW, rowH, p.fit(r.Label, labelW), "", 0, "L", false, 0, "")
		w := r.Frac * barMax
		if r.Value > 0 && w < 0.6 {
			w = 0.6
		}
		p.fill(pdfBar)
		if w > 0 {
			f.Rect(x0, y+1, w, rowH-2, "F")
		}
		p.font("", 7.5, pdfGrey)
		f.SetXY(x0+w+1, y)
		f.CellFormat(34, rowH, fmt.Sprintf("%s (%s)", num(r.Value), r.Pct), "", 0, "L", false, 0, "")
		f.SetXY(p.left(), y+rowH)
		if i == len(b.Rows)-1 || f.GetY()+rowH > p.bottom() {
			p.draw(rgb{156, 163, 175})
			f.SetLineWidth(0.3)
			f.Line(x0, top, x0, f.GetY())
		}
	}
	f.Ln(2)
}

// donuts draws share rings side by side, each with its percentage inside
// and its label and counts below.
func (p *pdfWriter) donuts(ds []donut) {
	f := p.f
	const radius, ring, h = 12.0, 4.5, 48.0
	p.room(h)
	y := f.GetY()
	colW := p.width / float64(max(len(ds), 1))
	for i, d := range ds {
		cx := p.left() + colW*float64(i) + colW/2
		cy := y + radius + 3
		f.SetLineWidth(ring)
		p.draw(pdfTrack)
		f.Circle(cx, cy, radius, "D")
		if d.Frac > 0 {
			p.draw(pdfStroke[d.Class])
			if d.Frac >= 1 {
				f.Circle(cx, cy, radius, "D")
			} else {
				f.Arc(cx, cy, radius, radius, 0, 90-360*d.Frac, 90, "D")
			}
		}
		p.font("B", 11, pdfInk)
		f.SetXY(cx-radius, cy-3)
		f.CellFormat(2*radius, 6, p.tr(d.Pct), "", 0, "C", false, 0, "")
		f.SetXY(cx-colW/2+2, cy+radius+4)
		p.font("B", pdfBody, pdfInk)
		f.CellFormat(colW-4, pdfLineH, p.fit(d.Label, colW-4), "", 2, "C", false, 0, "")
		p.font("", pdfSmall, pdfGrey)
		f.SetX(cx - colW/2 + 2)
		f.MultiCell(colW-4, 3.6, p.tr(d.Of), "", "C", false)
	}
	f.SetLineWidth(0.2)
	f.SetXY(p.left(), y+h)
}
