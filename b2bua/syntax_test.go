package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestTrimParamLWS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<sip:a@b>;tag=1", "<sip:a@b>;tag=1"},
		{"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"},
		{`"J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8`, `"J Rosenberg \\\""       <sip:jdrosen@example.com>;tag=98asjd8`},
		// Inside quotes and angle brackets nothing changes.
		{`"a ; b = c" <sip:a@b; x = y> ;p= "q ; r"`, `"a ; b = c" <sip:a@b; x = y>;p="q ; r"`},
		{"<sip:a@b>\t;\ttag\t=\tx", "<sip:a@b>;tag=x"},
		{"", ""},
		{" ; = ", ";="},
	} {
		if got := trimParamLWS(tc.in); got != tc.want {
			t.Errorf("trimParamLWS(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A value with nothing to trim comes back as it is, without allocating.
func TestTrimParamLWSAllocatesNothingWhenClean(t *testing.T) {
	v := strings.Repeat(`"Alice" <sip:alice@example.com;transport=tcp>;tag=1928301774`, 2)
	if n := testing.AllocsPerRun(100, func() { _ = trimParamLWS(v) }); n != 0 {
		t.Errorf("%v allocations for a clean value", n)
	}
}

func TestAddressSyntax(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"<sip:alice@example.com>;tag=1", true},
		{"sip:alice@example.com;tag=1", true},
		{`"Alice" <sip:alice@example.com>`, true},
		{"Alice Smith <sips:alice@example.com>;tag=a;epid=x@y", true},
		{"caller<sip:caller@example.com>;tag=323", true}, // lwsdisp
		{"J\xc3\xbcrgen <sip:j@example.com>", true},      // UTF-8, unquoted
		{`"BEL:\` + "\x07" + ` NUL:\` + "\x00" + `" <sip:x@example.com>`, true},
		{"<sip:a@[2001:db8::1]:5060;transport=tcp>;tag=x", true},
		{"isbn:2983792873", true},                // unksm2: a URI of any scheme
		{"<http://www.example.com>;tag=1", true}, // unksm2
		{`<sip:a@b>;p="quoted ; value"`, true},
		{"Bell, Alexander <sip:a.g.bell@example.com>;tag=43", false}, // baddn
		{`"Mr. J. User <sip:j.user@example.com>`, false},             // quotbal
		{`"Watson, Thomas" < sip:t.watson@example.org >`, false},     // badaspec
		{"<sip:a@b", false},
		{"sip:a@b?Route=x", false},
		{"sip:a@b, sip:c@d", false},
		{"<sip:a@b>;=x", false},
		{"<sip:a@b>;tag=", false},
		{"<sip:a@b> junk", false},
		{"<nosuchscheme>", false},
		{"<1sip:a@b>", false},
		{"", false},
	} {
		if err := addressSyntax(tc.v); (err == nil) != tc.ok {
			t.Errorf("addressSyntax(%q) = %v, want ok %v", tc.v, err, tc.ok)
		}
	}
}

// parse reads a request with the header parsers parapet installs.
func parse(t *testing.T, lines ...string) *sip.Request {
	t.Helper()
	p := sip.NewParser(sip.WithHeadersParsers(headerParsers()))
	m, err := p.ParseSIP([]byte(strings.Join(append(lines, "", ""), "\r\n")))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m.(*sip.Request)
}

func TestMalformedRequest(t *testing.T) {
	base := []string{
		"OPTIONS sip:a@example.com SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
		"From: <sip:b@example.com>;tag=1",
		"To: <sip:a@example.com>",
		"Call-ID: c1",
		"CSeq: 1 OPTIONS",
	}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	edit := func(old, new string) []string {
		out := append([]string{}, base...)
		for i, l := range out {
			if strings.HasPrefix(l, old) {
				out[i] = new
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		lines []string
		code  int
		why   string
	}{
		{"well formed", base, 0, ""},
		{"lower-case CSeq method", edit("CSeq", "CSeq: 1 options"), 0, ""},
		{"SIP/3.0", edit("OPTIONS", "OPTIONS sip:a@example.com SIP/3.0"), 505, ""},
		{"duplicate Call-ID", with("Call-ID: c2"), 400, "more than one Call-ID"},
		{"duplicate compact Call-ID", with("i: c2"), 400, "more than one Call-ID"},
		{"duplicate From", with("From: <sip:c@example.com>;tag=2"), 400, "more than one From"},
		{"duplicate To", with("t: <sip:d@example.com>"), 400, "more than one To"},
		{"duplicate CSeq", with("CSeq: 2 OPTIONS"), 400, "more than one CSeq"},
		{"two Content-Lengths", with("Content-Length: 0", "l: 0"), 400, "more than one Content-Length"},
		{"malformed From", edit("From", "From: Bell, Alexander <sip:b@example.com>;tag=1"), 400, "malformed From"},
		{"malformed To", edit("To", `To: "Mr. J. User <sip:a@example.com>`), 400, "malformed To"},
		{"malformed Content-Length", with("Content-Length: -999"), 400, "malformed Content-Length"},
		{"no From", edit("From", "Max-Forwards: 70"), 400, "missing From"},
		{"Request-URI with headers", edit("OPTIONS", "OPTIONS sip:a@example.com?Route=%3Csip:x%3E SIP/2.0"), 400, "Request-URI with headers"},
		{"Date in EST", with("Date: Fri, 01 Jan 2010 16:00:00 EST"), 400, "Date"},
		{"Date in GMT", with("Date: Fri, 01 Jan 2010 16:00:00 GMT"), 0, ""},
		{"CSeq of another method", edit("CSeq", "CSeq: 1 INVITE"), 400, "CSeq method"},
	} {
		code, why := malformedRequest(parse(t, tc.lines...))
		if code != tc.code || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, why, tc.code, tc.why)
		}
	}
}

// The whitespace RFC 3261 allows around a parameter's ; and = (RFC 4475's
// wsinv) leaves the tags where sipgo finds them.
func TestAddressWhitespaceKeepsTags(t *testing.T) {
	req := parse(t,
		"INVITE sip:a@example.com SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1;branch=390skdjuw",
		"TO :",
		" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
		`from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>`,
		"  ;",
		"  tag = 98asjd8",
		"Call-ID: c1",
		"CSeq: 0009",
		"  INVITE",
	)
	if tag, _ := req.From().Params.Get("tag"); tag != "98asjd8" {
		t.Errorf("From tag %q", tag)
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "1918181833n" || req.To().Address.Host != "chair-dnrc.example.com" {
		t.Errorf("To %q tag %q", req.To().Address.Host, tag)
	}
	if code, why := malformedRequest(req); code != 0 {
		t.Errorf("%d %s", code, why)
	}
}

func TestAcceptsSDP(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		ok     bool
	}{
		{nil, true},
		{[]string{"application/sdp"}, true},
		{[]string{"text/plain, Application/SDP;level=1"}, true},
		{[]string{"application/*"}, true},
		{[]string{"*/*"}, true},
		{[]string{"text/nobodyKnowsThis"}, false}, // sdp01
		{[]string{""}, false},
		{[]string{"text/plain", "application/sdp"}, true},
	} {
		lines := []string{"INVITE sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
			"From: <sip:b@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c1", "CSeq: 1 INVITE"}
		for _, a := range tc.accept {
			lines = append(lines, "Accept: "+a)
		}
		if got := acceptsSDP(parse(t, lines...)); got != tc.ok {
			t.Errorf("Accept %q: %v, want %v", tc.accept, got, tc.ok)
		}
	}
}

func TestServedScheme(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"sip:a@b", true}, {"SIPS:a@b", true}, {"tel:+15551230000", false},
		{"nobodyKnowsThisScheme:totallyopaquecontent", false},
	} {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		if _, ok := servedScheme(u); ok != tc.ok {
			t.Errorf("%s: %v, want %v", tc.uri, ok, tc.ok)
		}
	}
}

// FuzzAddressValue: whatever a From or To says, reading it neither panics
// nor fails the message (a value parapet cannot take is kept as text),
// and trimming leaves no whitespace around a top-level ; or = and
// nothing more to trim.
func FuzzAddressValue(f *testing.F) {
	for _, s := range []string{
		"<sip:a@b>;tag=1", `"J Rosenberg \\\""  <sip:j@example.com> ; tag = 9`, "Bell, Alexander <sip:a@b>",
		`"unterminated <sip:a@b>`, "< sip:a@b >", "sip:a@b ;x= \"y ; z\"", "\"\\", "<", ";=;=", "isbn:1",
	} {
		f.Add(s)
	}
	from := headerParsers()["from"]
	f.Fuzz(func(t *testing.T, v string) {
		trimmed := trimParamLWS(v)
		if hasParamLWS(trimmed) || trimParamLWS(trimmed) != trimmed {
			t.Fatalf("trimParamLWS(%q) = %q, not settled", v, trimmed)
		}
		h, err := from([]byte("from"), v)
		if err != nil || h == nil || h.Name() != "From" {
			t.Fatalf("from parser: %v %v", h, err)
		}
	})
}
