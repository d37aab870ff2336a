package b2bua

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// What parapet checks of a request's syntax beyond sipgo's parser (RFC
// 3261 sections 7, 8.1.1, 8.2 and 20), as the RFC 4475 torture messages
// exercise it. Two layers: header parsers installed in each zone's sipgo
// parser (headerParsers), which accept the whitespace RFC 3261 allows in
// From and To and keep a malformed From, To or Content-Length as text
// rather than failing the whole message; and malformedRequest, run on
// every request parapet handles, which answers 400 (505 for another
// version).

// headerParsers are sipgo's header parsers with From, To and
// Content-Length (and their compact forms) wrapped in keepMalformed.
func headerParsers() map[string]sip.HeaderParser {
	base := sip.DefaultHeadersParser()
	out := make(map[string]sip.HeaderParser, len(base))
	for name, p := range base {
		out[name] = p
	}
	for name, canonical := range map[string]string{"from": "From", "f": "From", "to": "To", "t": "To"} {
		out[name] = keepMalformed(canonical, base[name], addressValue)
	}
	for _, name := range []string{"content-length", "l"} {
		out[name] = keepMalformed("Content-Length", base[name], nil)
	}
	return out
}

// keepMalformed wraps a header parser: a value that check (when given)
// refuses, or base cannot parse, is kept as text under the header's
// canonical name, so that the request still parses and malformedRequest
// answers it 400 naming the header, where sipgo would have dropped the
// whole message without an answer. check may also rewrite the value.
func keepMalformed(canonical string, base sip.HeaderParser, check func(string) (string, error)) sip.HeaderParser {
	return func(name []byte, text string) (sip.Header, error) {
		if check != nil {
			var err error
			if text, err = check(text); err != nil {
				return sip.NewHeader(canonical, text), nil
			}
		}
		h, err := base(name, text)
		if err != nil {
			return sip.NewHeader(canonical, text), nil
		}
		return h, nil
	}
}

// addressValue readies a From or To value for sipgo's parser: the
// whitespace RFC 3261 allows around a parameter's ";" and "=" is taken
// out (sipgo's parser would keep it in the parameter's name and value,
// and lose the tag), and the value must be an address (addressSyntax).
func addressValue(text string) (string, error) {
	text = trimParamLWS(text)
	return text, addressSyntax(text)
}

// singleHeaders are the headers a request may carry once at most (RFC
// 3261 section 7.3.1: none of them takes a comma-separated list), by
// their names in lower case, compact forms too.
var singleHeaders = map[string]string{"call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq", "from": "From",
	"f": "From", "to": "To", "t": "To", "max-forwards": "Max-Forwards", "content-length": "Content-Length",
	"l": "Content-Length", "content-type": "Content-Type", "c": "Content-Type"}

// repeatedHeader names the first of singleHeaders req carries twice, or
// returns "".
func repeatedHeader(req *sip.Request) string {
	var seen [7]string // one for each name singleHeaders gives
	n := 0
	for _, h := range req.Headers() {
		name, ok := singleHeaders[sip.HeaderToLower(h.Name())]
		if !ok {
			continue
		}
		for _, s := range seen[:n] {
			if s == name {
				return name
			}
		}
		seen[n] = name
		n++
	}
	return ""
}

// malformedRequest checks what RFC 3261 requires of every request and
// sipgo's parser lets through: the version, one each of the To, From,
// Call-ID and CSeq headers (section 8.1.1), in the syntax of their kind,
// no other single-valued header twice, a CSeq naming the request's method,
// a Request-URI without headers (section 19.1.1), and a Date, if any, in
// GMT (section 20.17). It returns the status to answer with, or 0.
func malformedRequest(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "only SIP/2.0 is supported"
	}
	if why := requiredHeaders(req); why != "" {
		return 400, why
	}
	if name := repeatedHeader(req); name != "" {
		return 400, "more than one " + name
	}
	// sipgo upper-cases the request line's method, not the CSeq's.
	if cs := req.CSeq(); !strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		return 400, fmt.Sprintf("CSeq method %s does not match the request's %s", cs.MethodName, req.Method)
	}
	if req.Recipient.Headers.Length() > 0 {
		return 400, "Request-URI with headers"
	}
	if h := req.GetHeader("Content-Length"); h != nil {
		if _, ok := h.(*sip.ContentLengthHeader); !ok {
			return 400, "malformed Content-Length"
		}
	}
	if h := req.GetHeader("Date"); h != nil && !sipDate(h.Value()) {
		return 400, "Date is not an RFC 1123 date in GMT"
	}
	return 0, ""
}

// requiredHeaders names what is missing or malformed among the headers
// every request carries, or returns "". A From or To that keepMalformed
// kept as text is malformed, though sipgo's accessors would parse it
// again, leniently, when asked.
func requiredHeaders(req *sip.Request) string {
	var missing, malformed []string
	note := func(name string, parsed bool) {
		switch {
		case parsed:
		case req.GetHeader(name) != nil:
			malformed = append(malformed, name)
		default:
			missing = append(missing, name)
		}
	}
	_, to := req.GetHeader("To").(*sip.ToHeader)
	note("To", to)
	_, from := req.GetHeader("From").(*sip.FromHeader)
	note("From", from)
	note("Call-ID", req.CallID() != nil && req.CallID().Value() != "")
	note("CSeq", req.CSeq() != nil)
	var why []string
	if len(missing) > 0 {
		why = append(why, "missing "+strings.Join(missing, ", "))
	}
	if len(malformed) > 0 {
		why = append(why, "malformed "+strings.Join(malformed, ", "))
	}
	return strings.Join(why, "; ")
}

// sipDate reports whether v is a SIP-date: RFC 1123's, in GMT only.
func sipDate(v string) bool {
	_, err := time.Parse("Mon, 02 Jan 2006 15:04:05 GMT", strings.TrimSpace(v))
	return err == nil
}

// copyAddresses puts into res the From and To of req that keepMalformed
// kept as text and sipgo could not parse either, which its response
// building leaves out: a response copies them (RFC 3261 section 8.2.6.2),
// even when they are what is wrong with the request.
func copyAddresses(req *sip.Request, res *sip.Response) {
	for _, name := range []string{"From", "To"} {
		if res.GetHeader(name) != nil {
			continue
		}
		if h := req.GetHeader(name); h != nil {
			res.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
}

// addrState is where a scan of a From or To value stands: outside any
// quoted string or angle brackets, inside a quoted string (just after a
// backslash in one), or inside angle brackets.
type addrState uint8

const (
	atTop addrState = iota
	inQuote
	inQuoteEscape
	inAngle
)

// next is the state after byte c.
func (st addrState) next(c byte) addrState {
	switch {
	case st == atTop && c == '"', st == inQuoteEscape:
		return inQuote
	case st == atTop && c == '<':
		return inAngle
	case st == inQuote && c == '\\':
		return inQuoteEscape
	case st == inQuote && c == '"', st == inAngle && c == '>':
		return atTop
	}
	return st
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' }

// trimParamLWS takes out the whitespace on either side of each ";" and
// "=" of v outside quoted strings and angle brackets (RFC 3261 section
// 25.1: SEMI and EQUAL allow it). It returns v itself, allocating
// nothing, when there is none to take out.
func trimParamLWS(v string) string {
	if !hasParamLWS(v) {
		return v
	}
	out := make([]byte, 0, len(v))
	st := atTop
	for i := 0; i < len(v); i++ {
		c := v[i]
		if st == atTop && (c == ';' || c == '=') {
			for len(out) > 0 && isLWS(out[len(out)-1]) {
				out = out[:len(out)-1]
			}
			out = append(out, c)
			for i+1 < len(v) && isLWS(v[i+1]) {
				i++
			}
			continue
		}
		out = append(out, c)
		st = st.next(c)
	}
	return string(out)
}

// hasParamLWS reports whether trimParamLWS has anything to take out of v.
func hasParamLWS(v string) bool {
	st := atTop
	for i := 0; i < len(v); i++ {
		c := v[i]
		if st == atTop && (c == ';' || c == '=') &&
			(i > 0 && isLWS(v[i-1]) || i+1 < len(v) && isLWS(v[i+1])) {
			return true
		}
		st = st.next(c)
	}
	return false
}

// topIndex is the index of the first c in v outside quoted strings and
// angle brackets, or -1.
func topIndex(v string, c byte) int {
	st := atTop
	for i := 0; i < len(v); i++ {
		if st == atTop && v[i] == c {
			return i
		}
		st = st.next(v[i])
	}
	return -1
}

// addressSyntax checks v, a From or To value after trimParamLWS, against
// RFC 3261's ( name-addr / addr-spec ) *( SEMI generic-param ) (section
// 25.1): a display name of tokens or a quoted string before a URI in
// angle brackets, or a URI alone without ",", ";" or "?"; no whitespace
// in the URI; then parameters. Bytes above 0x7f are let through in an
// unquoted display name: UTF-8 names go unquoted in the wild.
func addressSyntax(v string) error {
	rest, err := address(strings.TrimSpace(v))
	if err != nil {
		return err
	}
	return paramsSyntax(rest)
}

// address checks the name-addr or addr-spec at the start of v and
// returns what follows it.
func address(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		end, err := quotedEnd(v)
		if err != nil {
			return "", err
		}
		v = strings.TrimLeft(v[end:], " \t")
		if !strings.HasPrefix(v, "<") {
			return "", errors.New("quoted display name without a URI in angle brackets")
		}
		return angleURI(v)
	}
	if i := topIndex(v, '<'); i >= 0 {
		if err := displayName(v[:i]); err != nil {
			return "", err
		}
		return angleURI(v[i:])
	}
	end := topIndex(v, ';')
	if end < 0 {
		end = len(v)
	}
	if err := uriSyntax(v[:end], ",?"); err != nil {
		return "", err
	}
	return v[end:], nil
}

// quotedEnd returns the index just past the quoted string v starts with.
func quotedEnd(v string) (int, error) {
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, nil
		case c < 0x20 && c != '\t' || c == 0x7f:
			return 0, errors.New("control character in a quoted string")
		}
	}
	return 0, errors.New("unterminated quoted string")
}

// angleURI checks the "<URI>" v starts with and returns what follows.
func angleURI(v string) (string, error) {
	end := strings.IndexByte(v, '>')
	if end < 0 {
		return "", errors.New("< without >")
	}
	if err := uriSyntax(v[1:end], ""); err != nil {
		return "", err
	}
	return v[end+1:], nil
}

// displayName checks an unquoted display name: tokens and whitespace.
func displayName(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isToken(c) && !isLWS(c) && c < 0x80 {
			return fmt.Errorf("%q in an unquoted display name", c)
		}
	}
	return nil
}

// uriSyntax checks that u has a scheme (RFC 3986's: a letter, then
// letters, digits, "+", "-" or ".") and no whitespace, control character
// or byte of forbidden.
func uriSyntax(u, forbidden string) error {
	colon := strings.IndexByte(u, ':')
	if colon < 1 || !isAlpha(u[0]) {
		return errors.New("URI without a scheme")
	}
	for i := 1; i < colon; i++ {
		if c := u[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return errors.New("URI scheme with a character not allowed")
		}
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f || strings.IndexByte(forbidden, c) >= 0 {
			return fmt.Errorf("%q in a URI", c)
		}
	}
	return nil
}

// paramsSyntax checks *( ";" name [ "=" value ] ): a token name, and a
// quoted string or a value of no whitespace, control character, comma,
// quote or angle bracket. RFC 3261 asks a token or host of the value;
// parapet, which reads no more of a From or To parameter than its tag as
// an opaque string, refuses only what breaks the header's structure.
func paramsSyntax(v string) error {
	for v != "" {
		if v[0] != ';' {
			return fmt.Errorf("%q where a parameter should begin", v[0])
		}
		v = v[1:]
		end := topIndex(v, ';')
		if end < 0 {
			end = len(v)
		}
		if err := paramSyntax(v[:end]); err != nil {
			return err
		}
		v = v[end:]
	}
	return nil
}

func paramSyntax(p string) error {
	name, value, hasValue := strings.Cut(p, "=")
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !isToken(byte(r)) }) >= 0 {
		return fmt.Errorf("parameter name %q is not a token", name)
	}
	switch {
	case !hasValue:
		return nil
	case strings.HasPrefix(value, `"`):
		if end, err := quotedEnd(value); err != nil || end != len(value) {
			return errors.New("malformed quoted parameter value")
		}
		return nil
	case value == "":
		return fmt.Errorf("parameter %q with = and no value", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`,"<>`, c) >= 0 {
			return fmt.Errorf("%q in the value of parameter %q", c, name)
		}
	}
	return nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isToken reports whether c may appear in an RFC 3261 token.
func isToken(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// servedScheme reports whether u is of a scheme parapet serves (sip,
// sips: it routes on a SIP URI's user part), and its scheme. A URI
// without one is sip, as sipgo writes it.
func servedScheme(u sip.Uri) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = "sip"
	}
	return scheme, scheme == "sip" || scheme == "sips"
}

// acceptsSDP reports whether req's Accept headers, if any, let
// application/sdp through (application/*, */*); without one, SDP is what
// a request accepts (RFC 3261 section 20.1). An Accept header with no
// value accepts nothing.
func acceptsSDP(req *sip.Request) bool {
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, r := range strings.Split(h.Value(), ",") {
			r, _, _ = strings.Cut(r, ";")
			switch strings.ToLower(strings.TrimSpace(r)) {
			case "application/sdp", "application/*", "*/*":
				return true
			}
		}
	}
	return false
}
