package b2bua

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/topology"
)

const strangerOptions = "OPTIONS sip:10.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bKscan1\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"sipvicious\" <sip:100@192.0.2.66>;tag=abc\r\n" +
	"To: <sip:100@10.0.0.1>\r\n" +
	"i : compact-call-id@192.0.2.66\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"User-Agent: friendly-scanner\r\n" +
	"Content-Length: 0\r\n\r\n" +
	"Call-ID: in-the-body\r\n"

func TestHeaderValue(t *testing.T) {
	for _, c := range []struct {
		msg, long, short, want string
	}{
		{strangerOptions, "call-id", "i", "compact-call-id@192.0.2.66"}, // compact form, space before the colon
		{strangerOptions, "cseq", "", "1 OPTIONS"},
		{strings.ReplaceAll(strangerOptions, "i : compact", "CALL-ID:\tcompact"), "call-id", "i", "compact-call-id@192.0.2.66"},
		{strangerOptions, "contact", "m", ""},                                     // none: the body's lines are not headers
		{"INVITE sip:x SIP/2.0\nCall-ID: lf-only\n\n", "call-id", "i", "lf-only"}, // bare LF line ends
		{"garbage", "call-id", "i", ""},
		{"", "call-id", "i", ""},
	} {
		if got := string(headerValue([]byte(c.msg), c.long, c.short)); got != c.want {
			t.Errorf("%s in %q: %q, want %q", c.long, c.msg[:min(len(c.msg), 30)], got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { headerValue([]byte(strangerOptions), "call-id", "i") }); n != 0 {
		t.Errorf("headerValue allocates %.0f times", n)
	}
}

func TestMethodOf(t *testing.T) {
	for msg, want := range map[string]string{
		"INVITE sip:x SIP/2.0":       "INVITE",
		"OPTIONS sip:x SIP/2.0":      "OPTIONS",
		"FOO sip:x SIP/2.0":          "other",
		"INVITEINVITEINVITE sip:x":   "other",
		"":                           "other",
		"SIP/2.0 200 OK":             "other",
		"invite sip:x SIP/2.0":       "other", // methods are case-sensitive (RFC 3261 section 7.1)
		"REGISTER sip:x.example SIP": "REGISTER",
	} {
		if got := methodOf([]byte(msg)); got != want {
			t.Errorf("methodOf(%q) = %q, want %q", msg, got, want)
		}
	}
}

func parseReq(t *testing.T, msg string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func TestIsScanner(t *testing.T) {
	if !isScanner(parseReq(t, strangerOptions)) {
		t.Error("friendly-scanner not recognised")
	}
	plain := strings.ReplaceAll(strangerOptions, "User-Agent: friendly-scanner\r\n", "User-Agent: Yealink SIP-T46S\r\n")
	plain = strings.ReplaceAll(plain, `"sipvicious" `, "")
	if isScanner(parseReq(t, plain)) {
		t.Error("a phone taken for a scanner")
	}
	byFrom := strings.ReplaceAll(strangerOptions, "User-Agent: friendly-scanner\r\n", "")
	if !isScanner(parseReq(t, byFrom)) {
		t.Error("a scanner's From display name not recognised")
	}
	sipcli := strings.ReplaceAll(plain, "Yealink SIP-T46S", "sipcli/v1.8")
	if !isScanner(parseReq(t, sipcli)) {
		t.Error("sipcli not recognised")
	}
}

// A stateless 403 has the mandatory headers only, and the same To tag for
// every copy of a request; its ACK is recognised as the 403's.
func TestStatelessForbidden(t *testing.T) {
	req := parseReq(t, strangerOptions)
	req.SetSource("192.0.2.66:5060")
	a, b := statelessForbidden(req), statelessForbidden(parseReq(t, strangerOptions))
	ta, _ := a.To().Params.Get("tag")
	tb, _ := b.To().Params.Get("tag")
	if ta == "" || ta != tb {
		t.Errorf("To tags %q and %q: want one, the same for a retransmission", ta, tb)
	}
	other := parseReq(t, strings.ReplaceAll(strangerOptions, "z9hG4bKscan1", "z9hG4bKscan2"))
	if to, _ := statelessForbidden(other).To().Params.Get("tag"); to == ta {
		t.Error("another request got the same To tag")
	}
	text := a.String()
	for _, h := range []string{"Server:", "Allow:", "Warning:", "User-Agent:"} {
		if strings.Contains(text, h) {
			t.Errorf("the 403 to a stranger carries %s:\n%s", h, text)
		}
	}
	if a.StatusCode != 403 || a.CallID() == nil || a.CSeq() == nil || a.Via() == nil || a.From() == nil {
		t.Errorf("403 lacks what RFC 3261 section 8.2.6.2 asks for:\n%s", text)
	}
	ack := strings.Replace(strangerOptions, "OPTIONS sip:10.0.0.1", "ACK sip:10.0.0.1", 1)
	ack = strings.Replace(ack, "CSeq: 1 OPTIONS", "CSeq: 1 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:100@10.0.0.1>", "To: <sip:100@10.0.0.1>;tag="+ta, 1)
	if !ackOfOurs(parseReq(t, ack)) {
		t.Error("the ACK of our 403 not recognised")
	}
	if ackOfOurs(parseReq(t, strings.Replace(ack, ta, "other", 1))) {
		t.Error("a stray ACK taken for the ACK of our 403")
	}
}

// The outsider budgets: a source beyond its own rate does not draw on its
// prefix's or the site's; a prefix beyond its rate stops all its sources;
// the site's budget stops everyone.
func TestOutsiderBudget(t *testing.T) {
	lim := topology.DefaultLimits
	lim.SourceRate, lim.PrefixRate, lim.OutsiderRate = 2, 5, 8
	b := newOutsiderBudget(lim)
	one := netip.MustParseAddr("192.0.2.1")
	got := 0
	for range 10 {
		if b.allow(one) {
			got++
		}
	}
	if got != 2 {
		t.Errorf("one source: %d of 10 answered, want its burst of 2", got)
	}
	// Its /24 has 5, of which 2 went: 3 more for its neighbours.
	got = 0
	for i := range 10 {
		if b.allow(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("the rest of the /24: %d answered, want 3", got)
	}
	// The site has 8, of which 5 went: 3 more across other prefixes.
	got = 0
	for i := range 10 {
		if b.allow(netip.AddrFrom4([4]byte{198, 51, byte(i), 1})) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("other prefixes: %d answered, want the site's last 3", got)
	}
	// An IPv6 /64 is one prefix.
	v6 := newOutsiderBudget(lim)
	got = 0
	for i := range 10 {
		a := netip.MustParseAddr("2001:db8::1").As16()
		a[15] = byte(i)
		a[8] = byte(i)
		if v6.allow(netip.AddrFrom16(a)) {
			got++
		}
	}
	if got != 5 {
		t.Errorf("ten addresses of one /64: %d answered, want the prefix's 5", got)
	}
	// Budgets refill.
	time.Sleep(600 * time.Millisecond)
	if !b.allow(one) {
		t.Error("a source's budget did not refill")
	}
}

// The tally keeps every count however many sources send, and its tables
// stay bounded.
func TestOutsiderTallyBounded(t *testing.T) {
	o := newOutsiderTallies()
	now := time.Now()
	const n = 5000
	for i := range n {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		o.add("pbx", src, "INVITE", fateOverBudget, now)
	}
	o.add("pbx", netip.MustParseAddr("10.0.0.1"), "INVITE", fateRefused, now)
	o.add("pbx", netip.Addr{}, "", fateConnection, now)
	for i := range 40 {
		o.add("pbx", netip.MustParseAddr("10.0.0.1"), "M"+string(rune('A'+i)), fateDropped, now)
	}
	sl := o.zones["pbx"]
	if len(sl.sources) > tallyTable || len(sl.prefixes) > tallyTable || len(sl.t.Methods) > tallyMethods+1 {
		t.Errorf("tables grew: %d sources, %d prefixes, %d methods", len(sl.sources), len(sl.prefixes), len(sl.t.Methods))
	}
	recs := o.flush()
	if len(recs) != 1 || recs[0].Zone != "pbx" {
		t.Fatalf("records %+v", recs)
	}
	tt := recs[0].Tally
	if tt.OverBudget != n || tt.Refused != 1 || tt.Connections != 1 || tt.Dropped != 40 || tt.Total() != n+42 {
		t.Errorf("counts %+v", tt)
	}
	if len(tt.Sources) != tallyListed || tt.Sources[0].Key != "10.0.0.1" || tt.Sources[0].Count != 42 ||
		len(tt.Prefixes) != tallyListed || tt.Prefixes[0].Key != "10.0.0.0/24" {
		t.Errorf("busiest: sources %v prefixes %v", tt.Sources, tt.Prefixes)
	}
	if tt.Methods["INVITE"] != n+1 || tt.Methods["other"] == 0 {
		t.Errorf("methods %v", tt.Methods)
	}
	if len(o.flush()) != 0 {
		t.Error("a flush after a flush wrote a record for an empty period")
	}
}

func FuzzHeaderValue(f *testing.F) {
	f.Add([]byte(strangerOptions))
	f.Add([]byte("INVITE x\r\n:\r\n\r\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := headerValue(data, "call-id", "i")
		if len(v) > len(data) {
			t.Fatalf("value longer than the message")
		}
		methodOf(data)
		isResponse(data)
		if code, _ := rawFault(data); code != 0 && code != 400 && code != 416 {
			t.Fatalf("rawFault gave %d", code)
		}
		z := &zone{}
		z.rawResponse(data, 400, "fuzz")
	})
}

// What sipgo's parser would drop unanswered, the gate answers: 400, or
// 416 for a scheme sipgo's URI parser refuses; well-formed requests pass.
func TestRawFault(t *testing.T) {
	ok := strangerOptions
	for _, c := range []struct {
		name string
		msg  string
		code int
	}{
		{"well formed", ok, 0},
		{"a response", "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", 0},
		{"angle brackets", strings.Replace(ok, "OPTIONS sip:10.0.0.1 SIP/2.0", "OPTIONS <sip:10.0.0.1> SIP/2.0", 1), 400},
		{"space in the URI", strings.Replace(ok, "OPTIONS sip:10.0.0.1 SIP/2.0", "OPTIONS sip:10.0.0.1; lr SIP/2.0", 1), 400},
		{"two spaces", strings.Replace(ok, "OPTIONS sip:10.0.0.1 SIP/2.0", "OPTIONS  sip:10.0.0.1 SIP/2.0", 1), 400},
		{"trailing space", strings.Replace(ok, "OPTIONS sip:10.0.0.1 SIP/2.0", "OPTIONS sip:10.0.0.1 SIP/2.0 ", 1), 400},
		{"scheme of other characters", strings.Replace(ok, "OPTIONS sip:10.0.0.1", "OPTIONS soap.beep://10.0.0.1:3002", 1), 416},
		{"tel: (sipgo parses it; the handler answers 416)", strings.Replace(ok, "OPTIONS sip:10.0.0.1", "OPTIONS tel:+15551230000", 1), 0},
		{"CSeq past 2**31", strings.Replace(ok, "CSeq: 1 OPTIONS", "CSeq: 2147483648 OPTIONS", 1), 400},
		{"CSeq at 2**31-1", strings.Replace(ok, "CSeq: 1 OPTIONS", "CSeq: 2147483647 OPTIONS", 1), 0},
		{"Content-Length past the end", strings.Replace(ok, "Content-Length: 0", "Content-Length: 9999", 1), 400},
		{"no line end", "OPTIONS sip:x SIP/2.0", 0},
	} {
		if code, why := rawFault([]byte(c.msg)); code != c.code {
			t.Errorf("%s: %d (%s), want %d", c.name, code, why, c.code)
		}
	}
	data := []byte(ok)
	if n := testing.AllocsPerRun(100, func() { rawFault(data) }); n != 0 {
		t.Errorf("rawFault allocates %.0f times on a well-formed request", n)
	}
}

// The gate's own response copies the request's Vias, From, To (tagging
// it), Call-ID and CSeq as they were, and says why; without a Via there
// is nothing to answer to.
func TestRawResponse(t *testing.T) {
	z := &zone{responder: responder{userAgent: "parapet"}}
	msg := strings.Replace(strangerOptions, "Max-Forwards: 70\r\n", "v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKsecond\r\nMax-Forwards: 70\r\n", 1)
	res := string(z.rawResponse([]byte(msg), 400, "malformed request line"))
	for _, want := range []string{"SIP/2.0 400 Bad Request\r\n", "Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bKscan1\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKsecond\r\n",
		"From: \"sipvicious\" <sip:100@192.0.2.66>;tag=abc\r\n", "To: <sip:100@10.0.0.1>;tag=", "Call-ID: compact-call-id@192.0.2.66\r\n",
		"CSeq: 1 OPTIONS\r\n", "Server: parapet\r\n", "Warning: 399 parapet \"malformed request line\"\r\n", "Content-Length: 0\r\n\r\n"} {
		if !strings.Contains(res, want) {
			t.Errorf("the raw 400 lacks %q:\n%s", want, res)
		}
	}
	if again := string(z.rawResponse([]byte(msg), 400, "malformed request line")); again != res {
		t.Error("a retransmission got another response (its To tag)")
	}
	noVia := strings.Replace(strangerOptions, "Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bKscan1\r\n", "", 1)
	if r := z.rawResponse([]byte(noVia), 400, "x"); r != nil {
		t.Errorf("a request without Via answered:\n%s", r)
	}
}
