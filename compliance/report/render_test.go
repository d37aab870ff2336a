package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func renderText(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	return buf.String()
}

func renderHTML(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return buf.String()
}

func TestWriteText(t *testing.T) {
	r := sampleReport()
	out := renderText(t, r)
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > textWidth {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, l)
		}
		for _, c := range l {
			if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
				t.Errorf("line %d holds control character %U: %q", i+1, c, l)
			}
		}
	}
	// Each control with its status word on its row of the summary.
	for _, c := range r.Controls {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.ID) + `\s+` + regexp.QuoteMeta(c.Title) + `\s+` + statusWord(c.Status) + `$`)
		if !re.MatchString(out) {
			t.Errorf("summary lacks the row %s %s %s", c.ID, c.Title, statusWord(c.Status))
		}
		if !strings.Contains(out, c.ID+" "+c.Title+" ["+statusWord(c.Status)+"]") {
			t.Errorf("details lack %s with [%s]", c.ID, statusWord(c.Status))
		}
	}
	for _, want := range []string{
		sampleHashA, sampleHashB, // the last hashes in full
		"TAMPERED: compliance.log:412",
		"SATISFIED", "NEEDS ATTENTION", "NOT APPLICABLE",
		"Yealink SIP-T46S", // the user agent, perhaps wrapped
		"baresip v1.1.0",
		"TLS below 1.2: at most TLS 1.1",
		"98.3%", // 3,050 of 3,100: floored, not rounded up
		"EXPIRED 36 days ago",
		"12 (expires soon)",
		"5 more peers omitted",
		"AES_CM_128_HMAC_SHA1_32",
		"12. What the capture showed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	// The bar of the largest disposition is the longest.
	if !regexp.MustCompile(`answered\s+5,200\s+88\.8%\s+#{40}\n`).MatchString(out) {
		t.Errorf("disposition chart lacks a full bar for answered")
	}
}

func TestWriteTextEmpty(t *testing.T) {
	out := renderText(t, emptyReport())
	if n := strings.Count(out, noneInPeriod); n < 10 {
		t.Errorf("empty report says %q %d times, want a section's worth", noneInPeriod, n)
	}
	for _, want := range []string{"no external legs", "n/a", "no control was judged", "11. Legacy inventory"} {
		if !strings.Contains(out, want) {
			t.Errorf("empty text lacks %q", want)
		}
	}
	if strings.Contains(out, "capture showed") {
		t.Errorf("a report without a capture section renders one")
	}
}

func TestWriteHTML(t *testing.T) {
	r := sampleReport()
	out := renderHTML(t, r)
	// Each control's summary row names its status in words, with its colour.
	for _, c := range r.Controls {
		re := regexp.MustCompile(`<tr><td class="mono">` + regexp.QuoteMeta(c.ID) + `</td><td>[^<]*</td><td><span class="badge ` +
			statusClass(c.Status) + `">` + statusWord(c.Status) + `</span></td></tr>`)
		if !re.MatchString(out) {
			t.Errorf("summary lacks %s with %s", c.ID, statusWord(c.Status))
		}
	}
	for _, want := range []string{
		"<!DOCTYPE html>", "<style>", "@media print", "break-before: page",
		sampleHashA, sampleHashB,
		"<svg", "<rect class=\"bar\"", "stroke-dasharray", // charts
		sampleUA, "baresip v1.1.0",
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"EXPIRED 36 days ago",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(out, sampleHostile) {
		t.Errorf("a record string reached the HTML unescaped")
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape character reached the HTML")
	}
	// Self-contained: nothing is fetched, nothing runs.
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=\"http"} {
		if strings.Contains(strings.ToLower(out), bad) {
			t.Errorf("HTML holds %q: not self-contained", bad)
		}
	}
	for _, u := range regexp.MustCompile(`https?://[^"' <]+`).FindAllString(out, -1) {
		if u != "http://www.w3.org/2000/svg" {
			t.Errorf("HTML names %s", u)
		}
	}
}

func TestWriteHTMLEmpty(t *testing.T) {
	out := renderHTML(t, emptyReport())
	for _, want := range []string{"none in this period", "no external legs", "n/a", "no control was judged"} {
		if !strings.Contains(out, want) {
			t.Errorf("empty HTML lacks %q", want)
		}
	}
	if strings.Contains(out, "stroke-dasharray") {
		t.Errorf("an empty share draws an arc")
	}
}

// pdfTools returns the paths of pdftotext and pdfinfo. The tests need
// them and fail without them: install poppler-utils.
func pdfTools(t *testing.T) (pdftotext, pdfinfo string) {
	t.Helper()
	var err error
	if pdftotext, err = exec.LookPath("pdftotext"); err != nil {
		t.Fatalf("pdftotext is missing (install poppler-utils): %v", err)
	}
	if pdfinfo, err = exec.LookPath("pdfinfo"); err != nil {
		t.Fatalf("pdfinfo is missing (install poppler-utils): %v", err)
	}
	return pdftotext, pdfinfo
}

// renderPDF writes r as a PDF in a temporary directory and returns its path.
func renderPDF(t *testing.T, r *Report, page string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePDF(&buf, r, page); err != nil {
		t.Fatalf("WritePDF: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("output does not start with %%PDF-")
	}
	path := filepath.Join(t.TempDir(), "report-"+page+".pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type pdfInfo struct {
	pages  int
	size   string // "595.28 x 841.89 pts (A4)"
	errors string
}

func readPDFInfo(t *testing.T, pdfinfo, path string) pdfInfo {
	t.Helper()
	cmd := exec.Command(pdfinfo, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdfinfo %s: %v\n%s", path, err, stderr.String())
	}
	var info pdfInfo
	info.errors = stderr.String()
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Pages":
			info.pages, _ = strconv.Atoi(v)
		case "Page size":
			info.size = v
		}
	}
	return info
}

// extractPDFText extracts a PDF's text: laid out as on the page, or in
// reading order with runs of white space made one space (so that a table
// cell's wrapped lines read as one string).
func extractPDFText(t *testing.T, pdftotext, path string, layout bool) string {
	t.Helper()
	args := []string{path, "-"}
	if layout {
		args = append([]string{"-layout"}, args...)
	}
	out, err := exec.Command(pdftotext, args...).Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	if layout {
		return string(out)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func TestWritePDF(t *testing.T) {
	pdftotext, pdfinfo := pdfTools(t)
	r := sampleReport()
	a4 := renderPDF(t, r, "A4")
	letter := renderPDF(t, r, "letter")

	ia, il := readPDFInfo(t, pdfinfo, a4), readPDFInfo(t, pdfinfo, letter)
	if ia.errors != "" || il.errors != "" {
		t.Errorf("pdfinfo complained: %s %s", ia.errors, il.errors)
	}
	if !strings.Contains(ia.size, "(A4)") {
		t.Errorf("A4 page size is %q", ia.size)
	}
	if !strings.Contains(strings.ToLower(il.size), "letter") {
		t.Errorf("Letter page size is %q", il.size)
	}
	if ia.size == il.size {
		t.Errorf("A4 and Letter pages are both %q", ia.size)
	}
	if ia.pages < 3 {
		t.Errorf("A4 report has %d pages, want the rich sample to span several", ia.pages)
	}

	text := extractPDFText(t, pdftotext, a4, true)
	for _, c := range r.Controls {
		re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(c.ID) + `\s+` + regexp.QuoteMeta(c.Title) + `\s+` + statusWord(c.Status) + `\s*$`)
		if !re.MatchString(text) {
			t.Errorf("PDF summary lacks the row %s %s %s", c.ID, c.Title, statusWord(c.Status))
		}
	}
	text = extractPDFText(t, pdftotext, a4, false)
	for _, want := range []string{
		"parapet compliance report",
		sampleHashA, sampleHashB, // in full, in the sources section
		shortHash(sampleHashA), // in the footer
		"page 1 of " + strconv.Itoa(ia.pages),
		"page " + strconv.Itoa(ia.pages) + " of " + strconv.Itoa(ia.pages),
		"TAMPERED: compliance.log:412",
		"user agent: " + sampleUA,
		"user agent: baresip v1.1.0 (x86_64/linux)",
		"TLS below 1.2: at most TLS 1.1, 12 times, refused 12",
		"<script>alert(1)</script>", // a PDF shows record strings as text
		"98.3%", "99.6%",
		"EXPIRED 36",
		"What the capture showed",
		"Ünïcødé", // Latin-1 runes survive the code page
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	// The inventory table breaks across pages with its header repeated,
	// or fits: either way its header shows at least once per page it is on.
	if strings.Count(text, "Issues (offered, times, refused)") < 1 {
		t.Errorf("inventory header missing")
	}
}

func TestWritePDFRepeatsTableHeaders(t *testing.T) {
	pdftotext, pdfinfo := pdfTools(t)
	r := sampleReport()
	// Enough peers to fill several pages.
	peer := r.Inventory.Peers[1]
	for range 60 {
		r.Inventory.Peers = append(r.Inventory.Peers, peer)
	}
	path := renderPDF(t, r, "A4")
	text := extractPDFText(t, pdftotext, path, true)
	pages := strings.Split(text, "\f")
	headers := 0
	for _, pg := range pages {
		if strings.Contains(pg, "CN=phone-51.clinic.example") { // only in the inventory
			if !strings.Contains(pg, "Issues (offered, times, refused)") {
				t.Errorf("a page of the inventory lacks its header:\n%s", pg)
			}
			headers++
		}
	}
	if headers < 3 {
		t.Errorf("inventory spans %d pages, want at least 3", headers)
	}
	if n := readPDFInfo(t, pdfinfo, path).pages; n < 6 {
		t.Errorf("%d pages", n)
	}
}

func TestWritePDFEmpty(t *testing.T) {
	pdftotext, _ := pdfTools(t)
	text := extractPDFText(t, pdftotext, renderPDF(t, emptyReport(), "Letter"), false)
	for _, want := range []string{"none in this period", "no external legs", "no control was judged", "page 1 of"} {
		if !strings.Contains(text, want) {
			t.Errorf("empty PDF lacks %q", want)
		}
	}
}

func TestWritePDFPageSize(t *testing.T) {
	for _, page := range []string{"", "A5", "legal", "A4 "} {
		if err := WritePDF(io.Discard, sampleReport(), page); err == nil {
			t.Errorf("page %q accepted", page)
		}
	}
}

func TestWritersRejectNil(t *testing.T) {
	for name, write := range map[string]func(io.Writer, *Report) error{
		"text": WriteText, "json": WriteJSON, "html": WriteHTML,
		"pdf": func(w io.Writer, r *Report) error { return WritePDF(w, r, PageA4) },
	} {
		if err := write(io.Discard, nil); err == nil {
			t.Errorf("%s: nil report accepted", name)
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWritersReportWriteErrors(t *testing.T) {
	for name, write := range map[string]func(io.Writer, *Report) error{
		"text": WriteText, "json": WriteJSON, "html": WriteHTML,
		"pdf": func(w io.Writer, r *Report) error { return WritePDF(w, r, PageA4) },
	} {
		err := write(failWriter{}, sampleReport())
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: write error %v, want the writer's error wrapped", name, err)
		}
	}
}

// TestOddStrings renders record strings no device should send: invalid
// UTF-8, NULs, escapes, bidi overrides, runes outside Latin-1, very long
// words. No renderer may fail, and the text form must stay clean.
func TestOddStrings(t *testing.T) {
	odd := []string{
		"\xff\xfe\x00bad utf-8", "\x1b]0;pwned\x07title", "abc\u202edcba", "emoji 📞🔒 and 中文",
		strings.Repeat("A", 500), "", "\r\n\t", "ÿ€‰",
	}
	for _, s := range odd {
		r := sampleReport()
		r.Inventory.Peers[0].UserAgent = s
		r.Certs[0].Subject = s
		r.Controls[0].Evidence = []string{s}
		r.Sources[0].Name = s
		r.Decisions.Rejected[0].Examples[0].Reason = s
		text := renderText(t, r)
		if strings.ContainsAny(text, "\x00\x1b\x07\u202e") {
			t.Errorf("%q: a control or bidi character reached the text", s)
		}
		renderHTML(t, r)
		if err := WritePDF(io.Discard, r, PageA4); err != nil {
			t.Errorf("%q: WritePDF: %v", s, err)
		}
		if err := WriteJSON(io.Discard, r); err != nil {
			t.Errorf("%q: WriteJSON: %v", s, err)
		}
	}
}

func FuzzRenderers(f *testing.F) {
	for _, s := range []string{"Yealink", "<script>", "\x1b[2J", "\xff", "Ünï ☎", strings.Repeat("x ", 80)} {
		f.Add(s, 12)
	}
	f.Fuzz(func(t *testing.T, s string, days int) {
		r := sampleReport()
		marked := "MARK" + s + "MARK"
		r.Inventory.Peers[0].UserAgent = marked
		r.Inventory.Peers[0].Action = s
		r.Certs[0].Subject = s
		r.Certs[0].DaysToExpiry = days
		r.Negotiated.CipherSuites[0].Name = s
		r.Controls[1].Status = s
		var buf bytes.Buffer
		if err := WriteText(&buf, r); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(buf.String(), "\n") {
			if utf8.RuneCountInString(l) > textWidth {
				t.Fatalf("line wider than %d: %q", textWidth, l)
			}
			if strings.ContainsRune(l, '\x1b') {
				t.Fatalf("escape in text: %q", l)
			}
		}
		buf.Reset()
		if err := WriteHTML(&buf, r); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(s, "<>&") && strings.Contains(buf.String(), marked) {
			t.Fatalf("unescaped record string in HTML: %q", s)
		}
		if err := WritePDF(io.Discard, r, PageLetter); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRenderingsAreReproducible: the same report renders to the same bytes
// in every format, so a pack can be regenerated and compared.
func TestRenderingsAreReproducible(t *testing.T) {
	for name, write := range map[string]func(io.Writer, *Report) error{
		"text": WriteText, "json": WriteJSON, "html": WriteHTML,
		"pdf": func(w io.Writer, r *Report) error { return WritePDF(w, r, PageA4) },
	} {
		var a, b bytes.Buffer
		if err := write(&a, sampleReport()); err != nil {
			t.Fatal(err)
		}
		if err := write(&b, sampleReport()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two renderings of one report differ", name)
		}
	}
}

// TestZeroReport renders a Report no builder filled: nothing fails.
func TestZeroReport(t *testing.T) {
	for name, write := range map[string]func(io.Writer, *Report) error{
		"text": WriteText, "json": WriteJSON, "html": WriteHTML,
		"pdf": func(w io.Writer, r *Report) error { return WritePDF(w, r, PageLetter) },
	} {
		var buf bytes.Buffer
		if err := write(&buf, &Report{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if buf.Len() == 0 {
			t.Errorf("%s: nothing written", name)
		}
	}
}
