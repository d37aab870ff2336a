package report

import (
	"os"
	"testing"
)

func TestDumpSample(t *testing.T) {
	dir := os.Getenv("REPORT_SAMPLE_DIR")
	if dir == "" {
		t.Skip("REPORT_SAMPLE_DIR not set")
	}
	r := sampleReport()
	for _, x := range []struct {
		name string
		fn   func(*os.File) error
	}{
		{"report-sample.txt", func(f *os.File) error { return WriteText(f, r) }},
		{"report-sample.html", func(f *os.File) error { return WriteHTML(f, r) }},
		{"report-sample.json", func(f *os.File) error { return WriteJSON(f, r) }},
		{"report-sample.pdf", func(f *os.File) error { return WritePDF(f, r, "A4") }},
		{"report-sample-letter.pdf", func(f *os.File) error { return WritePDF(f, r, "Letter") }},
		{"report-empty.pdf", func(f *os.File) error { return WritePDF(f, emptyReport(), "A4") }},
		{"report-empty.txt", func(f *os.File) error { return WriteText(f, emptyReport()) }},
	} {
		f, err := os.Create(dir + "/" + x.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.fn(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}
