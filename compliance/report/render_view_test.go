package report

import (
	"slices"
	"testing"
)

func TestPct(t *testing.T) {
	cases := []struct {
		n, d int
		want string
	}{
		{0, 0, "n/a"},
		{5, 0, "n/a"},
		{0, 10, "0.0%"},
		{10, 10, "100%"},
		{9999, 10000, "99.9%"}, // never rounds up to 100%
		{1, 3, "33.3%"},
		{2, 3, "66.6%"},
		{1, 100000, "<0.1%"},
		{11, 10, "100%"},
	}
	for _, tc := range cases {
		if got := pct(tc.n, tc.d); got != tc.want {
			t.Errorf("pct(%d, %d) = %q, want %q", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestNum(t *testing.T) {
	cases := []struct {
		in   int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-4500, "-4,500"}}
	for _, tc := range cases {
		if got := num(tc.in); got != tc.want {
			t.Errorf("num(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := num(uint64(18446744073709551615)); got != "18,446,744,073,709,551,615" {
		t.Errorf("num(max uint64) = %q", got)
	}
}

func TestClean(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\x1b[31mb", "a\uFFFD[31mb"},
		{"line\nbreak\ttab", "line break tab"},
		{"\xffx", "\uFFFDx"},
		{"rtl\u202eoverride", "rtl\uFFFDoverride"},
		{"Ünïcødé ☎", "Ünïcødé ☎"},
	}
	for _, tc := range cases {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	cases := []struct {
		in   string
		w    int
		want []string
	}{
		{"a b c", 10, []string{"a b c"}},
		{"alpha beta gamma", 10, []string{"alpha beta", "gamma"}},
		{"0123456789abcdef", 6, []string{"012345", "6789ab", "cdef"}},
		{"one\ntwo", 10, []string{"one", "two"}},
		{"", 5, []string{""}},
	}
	for _, tc := range cases {
		if got := wrap(tc.in, tc.w); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.in, tc.w, got, tc.want)
		}
	}
}

func TestFitWidths(t *testing.T) {
	cases := []struct {
		name    string
		natural []int
		floors  []int
		total   int
		want    []int
	}{
		{"fits", []int{10, 20}, []int{4, 4}, 40, []int{10, 20}},
		{"long column gives way", []int{10, 80, 12}, []int{4, 6, 5}, 60, []int{10, 39, 11}},
		{"shares by need", []int{50, 50}, []int{6, 6}, 60, []int{30, 30}},
	}
	for _, tc := range cases {
		w := slices.Clone(tc.natural)
		fitWidths(w, slices.Clone(tc.floors), tc.total)
		if !slices.Equal(w, tc.want) {
			t.Errorf("%s: widths %v, want %v", tc.name, w, tc.want)
		}
		sum := 0
		for _, x := range w {
			sum += x
		}
		if sum > max(tc.total, 0) {
			t.Errorf("%s: widths sum to %d > %d", tc.name, sum, tc.total)
		}
	}
}

func TestExpiryCell(t *testing.T) {
	cases := []struct {
		days  int
		text  string
		class string
	}{
		{200, "200", ""},
		{31, "31", ""},
		{30, "30 (expires soon)", classWarn},
		{0, "0 (expires soon)", classWarn},
		{-1, "EXPIRED 1 days ago", classBad},
	}
	for _, tc := range cases {
		c := expiryCell(tc.days)
		if c.Text != tc.text || c.Class != tc.class {
			t.Errorf("expiryCell(%d) = %q/%q, want %q/%q", tc.days, c.Text, c.Class, tc.text, tc.class)
		}
	}
}

func TestStatusWords(t *testing.T) {
	cases := []struct{ status, word, class string }{
		{StatusSatisfied, "SATISFIED", classOK},
		{StatusNeedsAttention, "NEEDS ATTENTION", classWarn},
		{StatusNotApplicable, "NOT APPLICABLE", classNA},
		{"", "UNKNOWN", classBad},
		{"weird_state", "WEIRD STATE", classBad},
	}
	for _, tc := range cases {
		if w, c := statusWord(tc.status), statusClass(tc.status); w != tc.word || c != tc.class {
			t.Errorf("%q: %q/%q, want %q/%q", tc.status, w, c, tc.word, tc.class)
		}
	}
}

func TestSectionsInOrder(t *testing.T) {
	var ids []string
	for _, s := range buildView(sampleReport()).Sections {
		ids = append(ids, s.ID)
	}
	want := []string{"summary", "sources", "calls", "protection", "negotiated", "certificates", "decisions",
		"connections", "media-attacks", "controls", "inventory", "capture"}
	if !slices.Equal(ids, want) {
		t.Errorf("sections %v, want %v", ids, want)
	}
}
