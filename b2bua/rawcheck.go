package b2bua

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
)

// Some malformed requests never reach parapet's handlers: sipgo's parser
// drops them without a word (RFC 4475 section 3.1.2: a Request-URI in
// angle brackets or with whitespace in it, more than one SP between the
// request line's elements or one at its end, a CSeq number past 2**31-1,
// a Content-Length past the datagram's end; section 3.3.3: a URI scheme
// of other characters than letters). RFC 3261 asks for 400 (416 for the
// scheme), so the gate looks for them in a datagram from a peer before
// sipgo does, and answers them itself, statelessly, from the raw headers.
// Strangers get the gate's 403 or nothing whatever they send.

// rawFault says why sipgo would drop the request in data unanswered, and
// with what status parapet answers it; 0 when the request is none of
// those. It allocates nothing.
func rawFault(data []byte) (int, string) {
	line, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return 0, "" // not a whole message: sipgo says what it is
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	method, after, _ := bytes.Cut(line, []byte(" "))
	uri, version, _ := bytes.Cut(after, []byte(" "))
	switch {
	case len(method) == 0 || len(uri) == 0 || len(version) == 0,
		bytes.ContainsAny(version, " \t") || bytes.ContainsAny(uri, " \t"):
		return 400, "malformed request line: elements not separated by single spaces"
	case uri[0] == '<':
		return 400, "malformed request line: Request-URI in angle brackets"
	case !bytes.HasPrefix(version, []byte("SIP/")):
		return 0, "" // not a request sipgo would take for one
	}
	if scheme, _, ok := bytes.Cut(uri, []byte(":")); ok && !letters(scheme) {
		return 416, "Request-URI scheme is not served"
	}
	cseq, length, body := scanHead(rest)
	if n, ok := decimal(cseq); ok && n > 1<<31-1 {
		return 400, "CSeq number is not below 2**31"
	}
	if n, ok := decimal(length); ok && body >= 0 && n > uint64(body) {
		return 400, "Content-Length past the end of the datagram"
	}
	return 0, ""
}

// scanHead reads, in one pass over the headers in head (a message after
// its start line), the CSeq number, the Content-Length and the length of
// the body (-1 when the head does not end). It allocates nothing.
func scanHead(head []byte) (cseq, length []byte, body int) {
	for rest := head; ; {
		line, more, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return cseq, length, -1
		}
		line, rest = bytes.TrimSuffix(line, []byte("\r")), more
		if len(line) == 0 {
			return cseq, length, len(rest)
		}
		if c := line[0] | 0x20; c != 'c' && c != 'l' { // the names sought start so
			continue
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		name, value = bytes.TrimRight(name, " \t"), bytes.TrimSpace(value)
		switch {
		case cseq == nil && bytes.EqualFold(name, []byte("cseq")):
			cseq, _, _ = bytes.Cut(value, []byte(" "))
		case length == nil && (bytes.EqualFold(name, []byte("content-length")) || bytes.EqualFold(name, []byte("l"))):
			length = value
		}
	}
}

// decimal reads digits as a number, saturating at 2**63 (not a number:
// false; sipgo says what is wrong with it).
func decimal(b []byte) (uint64, bool) {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n >= 1<<59 { // ten times it would pass 2**63
			n = 1 << 63
			continue
		}
		n = n*10 + uint64(c-'0')
	}
	return n, len(b) > 0
}

func letters(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return len(b) > 0
}

// rawResponse is the stateless response of code to the raw request data:
// its Via, From, To (with a To tag of the request's own, or one derived
// from it), Call-ID and CSeq copied as they are, the zone's Server, and a
// Warning saying why. It returns nil when data has no Via to answer to.
func (z *zone) rawResponse(data []byte, code int, why string) []byte {
	vias := headerValues(data, "via", "v")
	if len(vias) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("SIP/2.0 " + strconv.Itoa(code) + " " + reasonPhrase(code) + "\r\n")
	for _, v := range vias {
		b.WriteString("Via: ")
		b.Write(v)
		b.WriteString("\r\n")
	}
	for _, h := range [][3]string{{"From", "from", "f"}, {"To", "to", "t"}, {"Call-ID", "call-id", "i"}, {"CSeq", "cseq", ""}} {
		v := headerValue(data, h[1], h[2])
		if v == nil {
			continue
		}
		b.WriteString(h[0] + ": ")
		b.Write(v)
		if h[0] == "To" && !bytes.Contains(v, []byte(";tag=")) {
			b.WriteString(";tag=" + rawTag(data))
		}
		b.WriteString("\r\n")
	}
	if z.userAgent != "" {
		b.WriteString("Server: " + z.userAgent + "\r\n")
	}
	b.WriteString("Warning: " + warningValue(why) + "\r\nContent-Length: 0\r\n\r\n")
	return b.Bytes()
}

// rawTag is a To tag that is the same for every copy of the raw request.
func rawTag(data []byte) string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	return strconv.FormatUint(hashBytes(head), 16)
}

// headerValues returns the values of every header named long or short
// (lower case) in the message head in data, comma-separated values of one
// header line kept together.
func headerValues(data []byte, long, short string) [][]byte {
	var out [][]byte
	_, rest, ok := bytes.Cut(data, []byte("\n"))
	for ok {
		var line []byte
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		name = bytes.TrimRight(name, " \t")
		if found && (bytes.EqualFold(name, []byte(long)) || short != "" && bytes.EqualFold(name, []byte(short))) {
			out = append(out, bytes.TrimSpace(value))
		}
	}
	return out
}

// answerRaw sends the stateless response to a datagram rawFault found
// fault with; it reports whether one was sent.
func (s *Server) answerRaw(z *zone, local net.Addr, src netip.AddrPort, data []byte, code int, why string) bool {
	res := z.rawResponse(data, code, why)
	if res == nil {
		return false
	}
	c := z.udp[local.String()]
	if c == nil {
		return false
	}
	if _, err := c.WriteToUDPAddrPort(res, src); err != nil {
		s.log.Debug("stateless response not sent", "zone", z.name, "status", code, "error", err)
		return false
	}
	return true
}
