package b2bua_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The RFC 4475 corpus: one file per message under testdata/rfc4475, written
// in the RFC's own notation (its section 2): each line of a file is a line
// of the message, ending in CRLF on the wire; the lines between
// <allOneLine> and </allOneLine> are one line; <hex>..</hex> stands for the
// bytes its hexadecimal digits spell (control characters, UTF-8, binary
// bodies, and whitespace at the end of a line, which editors would strip).
// index.tsv says what parapet answers to each.

// tortureCase is one line of the corpus index.
type tortureCase struct {
	name    string // the file, without .sip
	section string // RFC 4475 section
	// udp and tcp are what parapet answers over each transport: a status,
	// "none" for no answer at all (to a response, or a request parapet
	// cannot answer), alternatives joined by "|", or "-" for a message not
	// sent over that transport.
	udp, tcp string
	why      string
}

// loadCorpus reads the index and decodes every message it names.
func loadCorpus(t testing.TB) ([]tortureCase, map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "rfc4475")
	f, err := os.Open(filepath.Join(dir, "index.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tortureCase
	msgs := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		col := strings.Split(line, "\t")
		if len(col) != 5 {
			t.Fatalf("index.tsv: %d columns, want 5: %q", len(col), line)
		}
		c := tortureCase{name: col[0], section: col[1], udp: col[2], tcp: col[3], why: col[4]}
		raw, err := os.ReadFile(filepath.Join(dir, c.name+".sip"))
		if err != nil {
			t.Fatal(err)
		}
		if msgs[c.name], err = decodeTorture(raw); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases, msgs
}

var hexTag = regexp.MustCompile(`<hex>([0-9A-Fa-f]*)</hex>`)

// decodeTorture turns a corpus file into the message's bytes.
func decodeTorture(raw []byte) ([]byte, error) {
	text := strings.TrimSuffix(string(raw), "\n")
	var out bytes.Buffer
	joining := false
	for _, l := range strings.Split(text, "\n") {
		switch l {
		case "<allOneLine>":
			joining = true
			continue
		case "</allOneLine>":
			joining = false
			out.WriteString("\r\n")
			continue
		}
		out.WriteString(l)
		if !joining {
			out.WriteString("\r\n")
		}
	}
	if joining {
		return nil, fmt.Errorf("<allOneLine> not closed")
	}
	var bad error
	s := hexTag.ReplaceAllStringFunc(out.String(), func(m string) string {
		b, err := hex.DecodeString(hexTag.FindStringSubmatch(m)[1])
		if err != nil {
			bad = err
		}
		return string(b)
	})
	return []byte(s), bad
}
