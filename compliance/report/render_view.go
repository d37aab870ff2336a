package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The renderers share one view of a report: a document of sections made of
// blocks (paragraphs, key/value pairs, tables, lists, charts). Building it
// once keeps the text, HTML and PDF forms in the same order with the same
// content; each renderer only decides how a block looks.

// Block kinds.
const (
	blockText   = "text"   // a paragraph
	blockNote   = "note"   // a remark such as "none in this period"
	blockSub    = "sub"    // a subheading, optionally with a status
	blockPairs  = "pairs"  // label: value lines
	blockTable  = "table"  // a table with a header row
	blockList   = "list"   // a bulleted list
	blockBars   = "bars"   // a horizontal bar chart
	blockDonuts = "donuts" // share gauges
)

// Cell classes: the colour a renderer may give a cell. The word in the cell
// always says the same thing, so colour is never the only signal.
const (
	classOK   = "ok"   // green: satisfied, intact, verified
	classWarn = "warn" // amber: needs attention, expiring soon
	classBad  = "bad"  // red: tampered, expired, failed
	classNA   = "na"   // grey: not applicable, not checked
)

// noneInPeriod is what an empty section says.
const noneInPeriod = "none in this period"

// docView is the rendered form of a report, format-neutral.
type docView struct {
	Title    string
	Meta     []pair
	Sections []section
	// Ties tie the report to its log or capture: one per source.
	Ties []tie
}

// tie is one source's anchor: the last hash of a chain or a capture's hash.
type tie struct {
	Source string
	Label  string // "last hash" or "sha256"
	Hash   string
}

// section is a numbered part of the report.
type section struct {
	ID    string // anchor, stable
	Title string
	// Break starts the section on a new page when printed.
	Break bool
	// Box frames the section (the summary).
	Box    bool
	Blocks []block
}

// block is one element of a section; Kind says which fields are set.
type block struct {
	Kind   string
	Text   string
	Status string // blockSub: a control status, shown as a word
	Pairs  []pair
	Table  *table
	Items  []string
	Bars   *barChart
	Donuts []donut
}

// pair is a label and its value.
type pair struct {
	Label string
	Value cell
}

// cell is one value of a table or pair.
type cell struct {
	Text  string
	Class string // classOK, classWarn, classBad, classNA or ""
	Mono  bool   // hashes, addresses: a fixed-width font
	Num   bool   // right-aligned
}

// table is a table; Weights are the relative widths of its columns (for
// formats that lay out a fixed page width).
type table struct {
	Head    []string
	Weights []float64
	Num     []bool // columns that hold numbers (right-aligned)
	Rows    [][]cell
}

// barChart is a horizontal bar chart of counts.
type barChart struct {
	Title string
	Total int
	Rows  []bar
}

// bar is one row of a bar chart. Frac is the bar's length relative to the
// largest row (0..1).
type bar struct {
	Label string
	Value int
	Pct   string
	Frac  float64
}

// donut is a share: Num of Den, drawn as a ring.
type donut struct {
	Label string
	Num   int
	Den   int
	Pct   string  // "90.0%", or "n/a" when Den is 0
	Frac  float64 // 0..1
	Of    string  // "45 of 50 external legs", or why there is no share
	Class string
}

// statusWord is how a control status is written in every format.
func statusWord(s string) string {
	switch s {
	case StatusSatisfied:
		return "SATISFIED"
	case StatusNeedsAttention:
		return "NEEDS ATTENTION"
	case StatusNotApplicable:
		return "NOT APPLICABLE"
	case "":
		return "UNKNOWN"
	}
	return strings.ToUpper(strings.ReplaceAll(clean(s), "_", " "))
}

// statusClass is the colour of a control status.
func statusClass(s string) string {
	switch s {
	case StatusSatisfied:
		return classOK
	case StatusNeedsAttention:
		return classWarn
	case StatusNotApplicable:
		return classNA
	}
	return classBad
}

// clean makes a record-derived string safe to show anywhere: control
// characters (terminal escapes, NULs) and bidirectional overrides become
// U+FFFD, invalid UTF-8 too. Newlines and tabs become spaces.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if unsafeRune(r) || r == '\n' || r == '\t' || r == utf8RuneError {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteByte(' ')
		case unsafeRune(r) || r == utf8RuneError:
			b.WriteRune(utf8RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

const utf8RuneError = '\uFFFD'

// unsafeRune reports control and bidi-override runes.
func unsafeRune(r rune) bool {
	if unicode.IsControl(r) {
		return true
	}
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F:
		return true
	}
	return false
}

// pct writes n of d as a percentage, floored to one decimal so that 99.96%
// never shows as 100%; "n/a" when d is 0.
func pct(n, d int) string {
	if d <= 0 {
		return "n/a"
	}
	if n >= d {
		return "100%"
	}
	v := math.Floor(float64(n)*1000/float64(d)) / 10
	if v == 0 && n > 0 {
		return "<0.1%"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "%"
}

// frac is n/d clamped to 0..1 (0 when d is 0).
func frac(n, d int) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	if n >= d {
		return 1
	}
	return float64(n) / float64(d)
}

// fmtTime writes a time in UTC to the second; "-" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtDay writes a date in UTC; "-" for the zero time.
func fmtDay(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

// shortHash shortens a hash to its first and last 8 characters.
func shortHash(h string) string {
	h = clean(h)
	if len(h) <= 20 {
		return h
	}
	return h[:8] + "..." + h[len(h)-8:]
}

// num writes an integer with thousands separators.
func num[T int | int64 | uint64 | uint32 | uint8](v T) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// orDash is s, cleaned, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// kindTitle names a report kind.
func kindTitle(k string) string {
	switch k {
	case KindLog:
		return "compliance log"
	case KindCapture:
		return "packet capture audit"
	}
	return orDash(k)
}

// weaknessTitle names a weakness of the inventory.
func weaknessTitle(k string) string {
	switch k {
	case WeakTLSVersion:
		return "TLS below 1.2"
	case WeakNoTLS:
		return "no TLS"
	case WeakPlainRTP:
		return "plain RTP"
	case WeakSuite:
		return "weak SRTP suite"
	case WeakNoCert:
		return "no certificate"
	case WeakBadCert:
		return "bad certificate"
	}
	return orDash(k)
}

// periodText writes the period asked for; an open bound is not written.
func periodText(p Period) string {
	switch {
	case p.Since != nil && p.Until != nil:
		return "from " + fmtTime(*p.Since) + " to " + fmtTime(*p.Until)
	case p.Since != nil:
		return "from " + fmtTime(*p.Since)
	case p.Until != nil:
		return "until " + fmtTime(*p.Until)
	}
	return "all records, no bound asked for"
}

// recordsText says when the first and last counted records were written.
func recordsText(p Period) string {
	if p.First == nil || p.Last == nil {
		return "no record in the period"
	}
	return fmtTime(*p.First) + " to " + fmtTime(*p.Last)
}

// buildView turns a report into its document view.
func buildView(r *Report) *docView {
	d := &docView{Title: "parapet compliance report"}
	d.Meta = []pair{
		{"Kind", cell{Text: kindTitle(r.Kind) + " (" + orDash(r.Kind) + ")"}},
		{"Period", cell{Text: periodText(r.Period)}},
		{"Records counted", cell{Text: recordsText(r.Period)}},
		{"Generated", cell{Text: fmtTime(r.Generated)}},
		{"Generator", cell{Text: orDash(r.Generator)}},
		{"Report version", cell{Text: strconv.Itoa(r.ReportVersion)}},
	}
	for _, s := range r.Sources {
		switch {
		case s.Verification != nil:
			d.Ties = append(d.Ties, tie{Source: clean(s.Name), Label: "last hash", Hash: clean(s.Verification.LastHash)})
		case s.SHA256 != "":
			d.Ties = append(d.Ties, tie{Source: clean(s.Name), Label: "sha256", Hash: clean(s.SHA256)})
		}
	}
	d.Sections = []section{
		summarySection(r),
		sourcesSection(r),
		callsSection(r),
		legsSection(r),
		negotiatedSection(r),
		certsSection(r),
		decisionsSection(r),
		connectionsSection(r),
		attacksSection(r),
		controlsSection(r),
		inventorySection(r),
	}
	if r.Capture != nil {
		d.Sections = append(d.Sections, captureSection(r.Capture))
	}
	return d
}

func note(s string) block            { return block{Kind: blockNote, Text: s} }
func para(s string) block            { return block{Kind: blockText, Text: s} }
func sub(s string) block             { return block{Kind: blockSub, Text: s} }
func pairs(p ...pair) block          { return block{Kind: blockPairs, Pairs: p} }
func tableBlock(t *table) block      { return block{Kind: blockTable, Table: t} }
func listBlock(items []string) block { return block{Kind: blockList, Items: items} }

func txt(s string) cell  { return cell{Text: s} }
func mono(s string) cell { return cell{Text: s, Mono: true} }
func ncell(s string) cell {
	return cell{Text: s, Num: true}
}

func summarySection(r *Report) section {
	s := section{ID: "summary", Title: "Controls at a glance", Box: true}
	if len(r.Controls) == 0 {
		s.Blocks = append(s.Blocks, note("no control was judged"))
		return s
	}
	t := &table{Head: []string{"Control", "Title", "Status"}, Weights: []float64{1.3, 3, 1.4}}
	for _, c := range r.Controls {
		t.Rows = append(t.Rows, []cell{
			{Text: clean(c.ID), Mono: true},
			txt(clean(c.Title)),
			{Text: statusWord(c.Status), Class: statusClass(c.Status)},
		})
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	counts := map[string]int{}
	for _, c := range r.Controls {
		counts[c.Status]++
	}
	need := "need"
	if counts[StatusNeedsAttention] == 1 {
		need = "needs"
	}
	s.Blocks = append(s.Blocks, para(fmt.Sprintf("%d satisfied, %d %s attention, %d not applicable.",
		counts[StatusSatisfied], counts[StatusNeedsAttention], need, counts[StatusNotApplicable])))
	return s
}

func sourcesSection(r *Report) section {
	s := section{ID: "sources", Title: "Sources and their verification"}
	if len(r.Sources) == 0 {
		s.Blocks = append(s.Blocks, note("no source"))
		return s
	}
	for _, src := range r.Sources {
		s.Blocks = append(s.Blocks, sub(orDash(src.Name)))
		ps := []pair{
			{"Files", txt(orDash(strings.Join(cleanAll(src.Files), ", ")))},
			{"Records in period", ncell(num(src.Records))},
			{"Calls in period", ncell(num(src.Calls))},
		}
		if src.SHA256 != "" {
			ps = append(ps, pair{"SHA-256", mono(clean(src.SHA256))})
		}
		if v := src.Verification; v != nil {
			ps = append(ps, verificationPairs(v)...)
		}
		for _, n := range src.Notes {
			ps = append(ps, pair{"Note", cell{Text: clean(n), Class: classWarn}})
		}
		s.Blocks = append(s.Blocks, pairs(ps...))
	}
	return s
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}

func verificationPairs(v *Verification) []pair {
	chain := cell{Text: "INTACT", Class: classOK}
	if !v.Intact {
		chain = cell{Text: "TAMPERED: " + orDash(v.Problem), Class: classBad}
		if v.ProblemKind != "" {
			chain.Text += " (" + clean(v.ProblemKind) + ")"
		}
	}
	ps := []pair{
		{"Chain", chain},
		{"Records walked", ncell(fmt.Sprintf("%s (seq %d to %d)", num(v.Records), v.FirstSeq, v.LastSeq))},
		{"Last hash", mono(orDash(v.LastHash))},
		{"Head checked", txt(yesNo(v.HeadChecked))},
	}
	if v.ContinuesFrom != "" {
		ps = append(ps, pair{"Continues from", txt(clean(v.ContinuesFrom))})
	}
	sig := cell{Text: signatureText(v), Class: signatureClass(v.Signatures)}
	ps = append(ps, pair{"Signatures", sig})
	if v.Truncated != "" {
		ps = append(ps, pair{"Torn last line", cell{Text: clean(v.Truncated), Class: classWarn}})
	}
	ps = append(ps,
		pair{"Recovered lines", ncell(num(v.Recovered))},
		pair{"Starts / reloads / refused", txt(fmt.Sprintf("%d / %d / %d", v.Starts, v.Reloads, v.ReloadsRefused))},
	)
	us := txt(fmt.Sprintf("%d (calls whose end was lost: %d)", v.UncleanStops, v.Unobserved))
	if v.UncleanStops > 0 {
		us.Class = classWarn
	}
	ps = append(ps, pair{"Unclean stops", us})
	ph := "none recorded"
	if len(v.PolicyHashes) > 0 {
		ph = strings.Join(cleanAll(v.PolicyHashes), ", ")
	}
	ps = append(ps, pair{"Policy hashes", mono(ph)})
	return ps
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func signatureText(v *Verification) string {
	var s string
	switch v.Signatures {
	case SignaturesVerified:
		s = "VERIFIED"
	case SignaturesNotChecked:
		// Nothing was checked: no counts to give.
		return "NOT CHECKED (no key given: -key signing.pub)"
	case SignaturesFailed:
		s = "FAILED"
	case SignaturesNone:
		s = "NONE (the chain holds no checkpoint)"
	default:
		s = strings.ToUpper(orDash(v.Signatures))
	}
	if v.KeyID != "" {
		s += ", key " + clean(v.KeyID)
	}
	s += ", " + nOf(v.Checkpoints, "checkpoint verified", "checkpoints verified")
	if v.SignedSeq > 0 {
		s += fmt.Sprintf(", signed up to seq %d", v.SignedSeq)
	}
	if v.Intact {
		s += ", " + nOf(v.UnsignedRecords, "unsigned record", "unsigned records") + " after the last"
	}
	return s
}

// nOf is "1 thing" or "n things".
func nOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return num(n) + " " + many
}

func signatureClass(s string) string {
	switch s {
	case SignaturesVerified:
		return classOK
	case SignaturesFailed:
		return classBad
	case SignaturesNone:
		return classWarn
	}
	return classNA
}

// bars makes a bar chart of counts; total is the denominator of the
// percentages (the sum of the counts when 0).
func bars(title string, cs []Count, total int) *barChart {
	if total == 0 {
		for _, c := range cs {
			total += c.Count
		}
	}
	maxv := 0
	for _, c := range cs {
		maxv = max(maxv, c.Count)
	}
	b := &barChart{Title: title, Total: total}
	for _, c := range cs {
		b.Rows = append(b.Rows, bar{Label: orDash(c.Name), Value: c.Count, Pct: pct(c.Count, total), Frac: frac(c.Count, maxv)})
	}
	return b
}

func countsText(cs []Count) string {
	if len(cs) == 0 {
		return "-"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %s", orDash(c.Name), num(c.Count))
	}
	return strings.Join(parts, ", ")
}

func callsSection(r *Report) section {
	s := section{ID: "calls", Title: "Calls"}
	s.Blocks = append(s.Blocks, pairs(pair{"Calls in the period", ncell(num(r.Calls.Total))}))
	s.Blocks = append(s.Blocks, sub("By disposition"))
	if len(r.Calls.ByDisposition) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
	} else {
		s.Blocks = append(s.Blocks, block{Kind: blockBars, Bars: bars("Calls by disposition", r.Calls.ByDisposition, r.Calls.Total)})
	}
	s.Blocks = append(s.Blocks, sub("By zone"))
	if len(r.Calls.ByZone) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
		return s
	}
	t := &table{Head: []string{"Zone", "Calls", "By disposition"}, Weights: []float64{1.5, 0.8, 4}, Num: []bool{false, true, false}}
	for _, z := range r.Calls.ByZone {
		t.Rows = append(t.Rows, []cell{txt(orDash(z.Zone)), ncell(num(z.Calls)), txt(countsText(z.ByDisposition))})
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	return s
}

func shareDonut(label string, n, d int, unit, empty string) donut {
	dn := donut{Label: label, Num: n, Den: d, Pct: pct(n, d), Frac: frac(n, d)}
	switch {
	case d <= 0:
		dn.Of, dn.Class = empty, classNA
	case n >= d:
		dn.Of, dn.Class = fmt.Sprintf("%s of %s %s", num(n), num(d), unit), classOK
	default:
		dn.Of, dn.Class = fmt.Sprintf("%s of %s %s", num(n), num(d), unit), classWarn
	}
	return dn
}

func legsSection(r *Report) section {
	l := r.Legs
	s := section{ID: "protection", Title: "Protection of external legs"}
	s.Blocks = append(s.Blocks, para("External legs are those in zones whose policy requires protection. "+
		"Each should carry SIP over TLS 1.2 or later and, when it carries media, SRTP."))
	s.Blocks = append(s.Blocks, block{Kind: blockDonuts, Donuts: []donut{
		shareDonut("SIP over TLS 1.2+", l.TLS12, l.External, "external legs", "no external legs"),
		shareDonut("Media over SRTP", l.SRTP, l.ExternalWithMedia, "external legs with media", "no external legs with media"),
		shareDonut("Fully protected", l.Both, l.External, "external legs: TLS 1.2+, and SRTP where media flowed", "no external legs"),
	}})
	s.Blocks = append(s.Blocks, sub("By zone"))
	if len(l.ByZone) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
		return s
	}
	t := &table{
		Head:    []string{"Zone", "External", "Legs", "TLS 1.2+", "With media", "SRTP"},
		Weights: []float64{1.6, 0.9, 0.8, 1.3, 1, 1.3},
		Num:     []bool{false, false, true, true, true, true},
	}
	for _, z := range l.ByZone {
		t.Rows = append(t.Rows, []cell{
			txt(orDash(z.Zone)), txt(yesNo(z.External)), ncell(num(z.Legs)),
			shareCell(z.TLS12, z.Legs, z.External), ncell(num(z.WithMedia)), shareCell(z.SRTP, z.WithMedia, z.External),
		})
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	return s
}

// shareCell writes "n (p%)", amber when an external zone falls short.
func shareCell(n, d int, external bool) cell {
	c := ncell(fmt.Sprintf("%s (%s)", num(n), pct(n, d)))
	if external && d > 0 && n < d {
		c.Class = classWarn
	}
	return c
}

func negotiatedSection(r *Report) section {
	n := r.Negotiated
	s := section{ID: "negotiated", Title: "What the legs negotiated"}
	groups := []struct {
		title string
		cs    []Count
	}{
		{"Transports", n.Transports},
		{"TLS versions", n.TLSVersions},
		{"Cipher suites", n.CipherSuites},
		{"Media profiles", n.Profiles},
		{"SRTP suites", n.SRTPSuites},
		{"Key exchanges", n.KeyExchanges},
		{"Codecs", n.Codecs},
	}
	for _, g := range groups {
		s.Blocks = append(s.Blocks, sub(g.title))
		if len(g.cs) == 0 {
			s.Blocks = append(s.Blocks, note(noneInPeriod))
			continue
		}
		s.Blocks = append(s.Blocks, block{Kind: blockBars, Bars: bars(g.title, g.cs, 0)})
	}
	return s
}

// expiryText says when a certificate expires, counted from the report's
// generation.
func expiryText(days int) string {
	if days < 0 {
		return fmt.Sprintf("EXPIRED %d days ago", -days)
	}
	return fmt.Sprintf("expires in %d days", days)
}

// expiryCell writes a certificate's days to expiry, highlighted when 30 or
// fewer remain or when it has expired.
func expiryCell(days int) cell {
	switch {
	case days < 0:
		return cell{Text: fmt.Sprintf("EXPIRED %d days ago", -days), Class: classBad, Num: true}
	case days <= 30:
		return cell{Text: fmt.Sprintf("%d (expires soon)", days), Class: classWarn, Num: true}
	}
	return ncell(strconv.Itoa(days))
}

func verifiedCell(ok bool, errText string) cell {
	if ok {
		return cell{Text: "verified", Class: classOK}
	}
	if errText == "" {
		return cell{Text: "NOT VERIFIED", Class: classBad}
	}
	return cell{Text: "NOT VERIFIED: " + clean(errText), Class: classBad}
}

func certsSection(r *Report) section {
	s := section{ID: "certificates", Title: "Peer certificates"}
	if len(r.Certs) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
		return s
	}
	s.Blocks = append(s.Blocks, para("Days to expiry count from the report's generation; 30 days or fewer are marked, and expired certificates too."))
	t := &table{
		Head:    []string{"Subject / issuer", "SHA-256", "Not after", "Days to expiry", "Verified", "Zones", "Seen (last)"},
		Weights: []float64{2.4, 1.8, 1.1, 1.1, 1.3, 1, 1.1},
		Num:     []bool{false, false, false, true, false, false, true},
	}
	for _, c := range r.Certs {
		t.Rows = append(t.Rows, []cell{
			txt(orDash(c.Subject) + "\nissuer: " + orDash(c.Issuer)),
			mono(shortHash(c.SHA256)),
			txt(fmtDay(c.NotAfter)),
			expiryCell(c.DaysToExpiry),
			verifiedCell(c.Verified, c.VerifyError),
			txt(orDash(strings.Join(cleanAll(c.Zones), ", "))),
			ncell(num(c.Seen) + "\n" + fmtDay(c.LastSeen)),
		})
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	if r.CertsOmitted > 0 {
		s.Blocks = append(s.Blocks, note(fmt.Sprintf("%s more certificates omitted: those expiring last.", num(r.CertsOmitted))))
	}
	return s
}

// exampleTable lists pseudonymised examples.
// An empty lead leaves the first column out.
func exampleTable(lead string, rows []exampleRow) *table {
	t := &table{
		Head:    []string{"Record", "Zone / remote", "Caller -> callee", "Call-ID", "Reason"},
		Weights: []float64{1.6, 1.5, 1.5, 1.7, 2.2},
	}
	if lead != "" {
		t.Head = append([]string{lead}, t.Head...)
		t.Weights = append([]float64{1.8}, t.Weights...)
	}
	for _, er := range rows {
		e := er.ex
		row := []cell{
			txt(orDash(e.Source) + " #" + strconv.FormatUint(e.Seq, 10) + "\n" + fmtTime(e.Time)),
			txt(orDash(e.Zone) + "\n" + orDash(e.Remote)),
			txt(orDash(e.Caller) + " -> " + orDash(e.Callee)),
			mono(shortHash(orDash(e.CallID))),
			txt(orDash(e.Reason)),
		}
		if lead != "" {
			row = append([]cell{mono(orDash(er.lead))}, row...)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

type exampleRow struct {
	lead string
	ex   Example
}

func ruleBlocks(title, statusHead string, rcs []RuleCount) []block {
	bs := []block{sub(title)}
	if len(rcs) == 0 {
		return append(bs, note(noneInPeriod))
	}
	t := &table{
		Head:    []string{"Rule", "Count", statusHead, "Controls"},
		Weights: []float64{2.4, 0.8, 0.9, 2.5},
		Num:     []bool{false, true, true, false},
	}
	var ex []exampleRow
	for _, rc := range rcs {
		st := "-"
		if rc.Status != 0 {
			st = strconv.Itoa(rc.Status)
		}
		t.Rows = append(t.Rows, []cell{
			mono(orDash(rc.Rule)), ncell(num(rc.Count)), ncell(st),
			txt(orDash(strings.Join(cleanAll(rc.Controls), ", "))),
		})
		for _, e := range rc.Examples {
			ex = append(ex, exampleRow{lead: rc.Rule, ex: e})
		}
	}
	bs = append(bs, tableBlock(t))
	if len(ex) > 0 {
		bs = append(bs, para("Examples (pseudonymised):"), tableBlock(exampleTable("Rule", ex)))
	}
	return bs
}

func decisionsSection(r *Report) section {
	d := r.Decisions
	s := section{ID: "decisions", Title: "Policy decisions"}
	dg := ncell(num(d.Downgrades))
	if d.Downgrades > 0 {
		dg.Class = classWarn
	}
	s.Blocks = append(s.Blocks, pairs(
		pair{"Rejected", ncell(num(sumRules(d.Rejected)))},
		pair{"Upgraded", ncell(num(sumRules(d.Upgraded)))},
		pair{"Would reject (observe mode)", ncell(num(sumRules(d.WouldReject)))},
		pair{"Downgrade attempts", dg},
	))
	s.Blocks = append(s.Blocks, ruleBlocks("Rejected", "SIP status sent", d.Rejected)...)
	s.Blocks = append(s.Blocks, ruleBlocks("Upgraded", "SIP status", d.Upgraded)...)
	// Observe mode sent nothing: the status is what enforcing would send.
	s.Blocks = append(s.Blocks, ruleBlocks("Would reject (observe mode)", "Would send", d.WouldReject)...)
	return s
}

func sumRules(rcs []RuleCount) int {
	n := 0
	for _, rc := range rcs {
		n += rc.Count
	}
	return n
}

func connectionsSection(r *Report) section {
	s := section{ID: "connections", Title: "Connection events"}
	if len(r.Connections) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
		return s
	}
	t := &table{Head: []string{"Event", "Records", "Folded"}, Weights: []float64{3, 1, 1}, Num: []bool{false, true, true}}
	var ex []exampleRow
	for _, e := range r.Connections {
		t.Rows = append(t.Rows, []cell{mono(orDash(e.Event)), ncell(num(e.Count)), ncell(num(e.Folded))})
		for _, x := range e.Examples {
			ex = append(ex, exampleRow{lead: e.Event, ex: x})
		}
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	if len(ex) > 0 {
		s.Blocks = append(s.Blocks, para("Examples:"), tableBlock(exampleTable("Event", ex)))
	}
	return s
}

func attacksSection(r *Report) section {
	a := r.Attacks
	s := section{ID: "media-attacks", Title: "Media attacks"}
	s.Blocks = append(s.Blocks, para("Media packets parapet dropped as forged, replayed, from the wrong source, or unprotected where SRTP was required."))
	warnIf := func(v uint64) cell {
		c := ncell(num(v))
		if v > 0 {
			c.Class = classWarn
		}
		return c
	}
	s.Blocks = append(s.Blocks, pairs(
		pair{"Forged (authentication failures)", warnIf(a.AuthFailures)},
		pair{"Replayed", warnIf(a.Replays)},
		pair{"Wrong source", warnIf(a.WrongSource)},
		pair{"Unprotected", warnIf(a.Unprotected)},
		pair{"Calls affected", ncell(num(a.Calls))},
	))
	if len(a.Examples) == 0 {
		s.Blocks = append(s.Blocks, note("examples: "+noneInPeriod))
		return s
	}
	var ex []exampleRow
	for _, x := range a.Examples {
		ex = append(ex, exampleRow{ex: x})
	}
	s.Blocks = append(s.Blocks, para("Examples:"), tableBlock(exampleTable("", ex)))
	return s
}

func controlsSection(r *Report) section {
	s := section{ID: "controls", Title: "Controls in detail", Break: true}
	if len(r.Controls) == 0 {
		s.Blocks = append(s.Blocks, note("no control was judged"))
		return s
	}
	for _, c := range r.Controls {
		s.Blocks = append(s.Blocks, block{Kind: blockSub, Text: clean(c.ID) + "  " + clean(c.Title), Status: c.Status})
		s.Blocks = append(s.Blocks, pairs(
			pair{"Status", cell{Text: statusWord(c.Status), Class: statusClass(c.Status)}},
			pair{"Summary", txt(orDash(c.Summary))},
			pair{"Findings", txt(findingsText(c.Findings))},
			pair{"Requirement", txt(orDash(clean(c.Requirement)))},
			pair{"How judged", txt(orDash(clean(c.Basis)))},
		))
		if len(c.Evidence) > 0 {
			s.Blocks = append(s.Blocks, para("Evidence:"), listBlock(cleanAll(c.Evidence)))
		} else {
			s.Blocks = append(s.Blocks, note("evidence: "+noneInPeriod))
		}
		if len(c.References) > 0 {
			refs := make([]string, len(c.References))
			for i, ref := range c.References {
				refs[i] = clean(ref.ID) + ": " + clean(ref.Title)
			}
			s.Blocks = append(s.Blocks, para("References:"), listBlock(refs))
		}
	}
	return s
}

func findingsText(cs []Count) string {
	if len(cs) == 0 {
		return "no per-leg finding recorded"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = strings.ReplaceAll(orDash(c.Name), "_", " ") + " " + num(c.Count)
	}
	return strings.Join(parts, ", ")
}

func inventorySection(r *Report) section {
	inv := r.Inventory
	s := section{ID: "inventory", Title: "Legacy inventory: upgrade or replace", Break: true}
	s.Blocks = append(s.Blocks, para("Peers that offered TLS below 1.2, plain RTP, a weak SRTP suite, or no valid certificate where one was asked; worst first."))
	if len(inv.Peers) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
	} else {
		t := &table{
			Head:    []string{"Peer", "Device", "Seen", "Issues (offered, times, refused)", "Action"},
			Weights: []float64{1.4, 2, 1.4, 2.6, 2},
		}
		for _, p := range inv.Peers {
			t.Rows = append(t.Rows, []cell{
				mono(orDash(p.Address) + "\nzones: " + orDash(strings.Join(cleanAll(p.Zones), ", "))),
				txt("user agent: " + orDash(p.UserAgent) + "\ncert: " + orDash(p.CertSubject)),
				txt(times(p.Seen) + "\nfirst " + fmtTime(p.FirstSeen) + "\nlast " + fmtTime(p.LastSeen)),
				{Text: issuesText(p.Issues), Class: classWarn},
				txt(orDash(p.Action)),
			})
		}
		s.Blocks = append(s.Blocks, tableBlock(t))
	}
	if inv.Omitted > 0 {
		s.Blocks = append(s.Blocks, note(fmt.Sprintf("%s more peers omitted: the least severe and least seen.", num(inv.Omitted))))
	}
	return s
}

// times writes a count of occurrences.
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return num(n) + " times"
}

func issuesText(is []Issue) string {
	if len(is) == 0 {
		return "-"
	}
	lines := make([]string, len(is))
	for i, x := range is {
		lines[i] = fmt.Sprintf("%s: %s, %s, refused %s", weaknessTitle(x.Kind), orDash(x.Offered), times(x.Count), num(x.Refused))
	}
	return strings.Join(lines, "\n")
}

func captureSection(c *Capture) section {
	s := section{ID: "capture", Title: "What the capture showed", Break: true}
	s.Blocks = append(s.Blocks, pairs(
		pair{"Packets read", ncell(num(c.Packets))},
		pair{"Not decoded", ncell(num(c.Undecoded))},
		pair{"SIP dialogs in clear", ncell(num(c.Dialogs))},
		pair{"Omitted beyond the limit", ncell(num(c.Omitted))},
	))
	s.Blocks = append(s.Blocks, sub("TLS handshakes"))
	if len(c.Handshakes) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
	} else {
		t := &table{
			Head:    []string{"Client -> server", "Offered up to", "Chosen", "Cipher suite", "SNI", "Certificates", "Alert"},
			Weights: []float64{2, 1, 1, 2.2, 1.2, 2, 1},
		}
		for _, h := range c.Handshakes {
			ver := cell{Text: orDash(h.Version)}
			if h.Version == "" {
				ver.Text = "none"
			} else if tlsBelow12(h.Version) {
				ver.Class = classWarn
			}
			var certs []string
			for _, ct := range h.Certs {
				certs = append(certs, orDash(ct.Subject)+" ("+expiryText(ct.DaysToExpiry)+")")
			}
			alert := txt(orDash(h.Alert))
			if h.Alert != "" {
				alert.Class = classWarn
			}
			t.Rows = append(t.Rows, []cell{
				mono(orDash(h.Client) + " ->\n" + orDash(h.Server)),
				txt(orDash(h.ClientMaxVersion)), ver, mono(orDash(h.CipherSuite)), txt(orDash(h.SNI)),
				txt(orDash(strings.Join(certs, "\n"))), alert,
			})
		}
		s.Blocks = append(s.Blocks, tableBlock(t))
	}
	s.Blocks = append(s.Blocks, sub("Media flows"))
	if len(c.Flows) == 0 {
		s.Blocks = append(s.Blocks, note(noneInPeriod))
		return s
	}
	t := &table{
		Head:    []string{"Source -> destination", "Class", "Told by (packets say)", "Packets", "Bytes", "SSRC / PT", "Call-ID"},
		Weights: []float64{2.5, 0.9, 0.9, 1, 1.1, 1.4, 1.7},
		Num:     []bool{false, false, false, true, true, false, false},
	}
	for _, f := range c.Flows {
		cls := cell{Text: strings.ToUpper(orDash(f.Class))}
		switch f.Class {
		case FlowSRTP:
			cls.Class = classOK
		case FlowRTP:
			cls.Class = classWarn
		default:
			cls.Class = classNA
		}
		t.Rows = append(t.Rows, []cell{
			mono(orDash(f.Src) + " ->\n" + orDash(f.Dst)), cls, txt(orDash(f.By) + " (" + orDash(f.PacketClass) + ")"),
			ncell(num(f.Packets)), ncell(num(f.Bytes)),
			mono(fmt.Sprintf("%08x / %d", f.SSRC, f.PayloadType)), mono(shortHash(orDash(f.CallID))),
		})
	}
	s.Blocks = append(s.Blocks, tableBlock(t))
	return s
}

// tlsBelow12 reports a version name below TLS 1.2 ("TLS 1.0", "SSL 3.0").
func tlsBelow12(v string) bool {
	v = strings.ToUpper(strings.ReplaceAll(v, "v", " "))
	switch {
	case strings.Contains(v, "SSL"):
		return true
	case strings.Contains(v, "1.0"), strings.Contains(v, "1.1"):
		return strings.Contains(v, "TLS")
	}
	return false
}
